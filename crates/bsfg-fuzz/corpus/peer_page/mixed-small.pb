
|q
&
m-0001plant-bplant-a €’‚ç3*c-1order:line-3/4711
has_status"({"status":"released","qty":[1,2.5,null]}ä’‚ç3
´¨
]
m-0002plant-bplant-a €’‚ç3*c-1:	
line3:

shiftbBapplication/jsonJurn:order:v1order:line-3/4711
has_status"({"status":"released","qty":[1,2.5,null]}È‘’‚ç3
íá
œ
m-0003plant-bplant-a €’‚ç3*c-1Rt
drawingspart/17.pdfGsha256:abababababababababababababababababababababababababababababababab è*application/pdf
drawing:17
has_status"({"status":"released","qty":[1,2.5,null]}¬’’‚ç3
~s
(
m-0006	elsewhereplant-a €’‚ç3*c-1order:line-3/4711
has_status"({"status":"released","qty":[1,2.5,null]}“’‚ç3
ti
&
m-0004plant-bplant-a €’‚ç3*c-1	Order:a b
has_status"({"status":"released","qty":[1,2.5,null]}ô“’‚ç3
	Ø”’‚ç3