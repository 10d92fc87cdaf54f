
&
m-0005plant-bplant-a €’‚ç3*c-1order:line-3/4711
has_status"{'a':1}