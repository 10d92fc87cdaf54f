
&
m-0004plant-bplant-a €’‚ç3*c-1	Order:a b
has_status"({"status":"released","qty":[1,2.5,null]}