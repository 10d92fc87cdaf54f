
&
m-0001plant-bplant-a €’‚ç3*c-1order:line-3/4711
has_status"({"status":"released","qty":[1,2.5,null]}