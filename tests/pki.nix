# The test CA and certificates, generated at build time (never committed).
# Output files:
#   ca.pem                                zone trust root
#   controller.pem / controller.key       zone controller (CN and SAN plant-t-bsfg, SAN IP = VIP), 365 days
#   controller-short.pem / .key           same identity, valid 10 days: below the 30-day policy threshold
#   producer.pem / producer.key           the client node's producer identity
{
  runCommand,
  openssl,
  vip,
}:
runCommand "triad-test-pki" {nativeBuildInputs = [openssl];} ''
  mkdir -p $out && cd $out
  key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
  sign() { # name days cn extensions
    key "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$3" -out "$1.csr"
    printf '%b' "$4" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
      -days "$2" -extfile "$1.ext" -out "$1.pem"
    rm "$1.csr" "$1.ext"
  }

  key ca.key
  openssl req -x509 -new -key ca.key -subj "/CN=triad-test-ca" -days 3650 -out ca.pem

  server="subjectAltName=DNS:plant-t-bsfg,IP:${vip}\nextendedKeyUsage=serverAuth,clientAuth\n"
  sign controller 365 plant-t-bsfg "$server"
  sign controller-short 10 plant-t-bsfg "$server"
  sign producer 365 producer "subjectAltName=DNS:producer\nextendedKeyUsage=clientAuth\n"

  rm ca.key ca.srl
  openssl verify -CAfile ca.pem controller.pem controller-short.pem producer.pem
''
