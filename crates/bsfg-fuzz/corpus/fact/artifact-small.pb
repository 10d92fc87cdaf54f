
œ
m-0003plant-bplant-a €’‚ç3*c-1Rt
drawingspart/17.pdfGsha256:abababababababababababababababababababababababababababababababab è*application/pdf
drawing:17
has_status"({"status":"released","qty":[1,2.5,null]}