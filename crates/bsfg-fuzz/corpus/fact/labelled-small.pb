
]
m-0002plant-bplant-a €’‚ç3*c-1:	
line3:

shiftbBapplication/jsonJurn:order:v1order:line-3/4711
has_status"({"status":"released","qty":[1,2.5,null]}