# The test CA and certificates, generated at build time (never committed).
# The derivation is cacheable, so nothing in it may depend on when it was
# built: the certificates are valid for 100 years, and the short-lived one
# the certificate gate needs is made inside the VM when the test runs (from
# ca.key, kept here; this CA exists only for the VM tests).
# Output files:
#   ca.pem / ca.key                       zone trust root (100 years)
#   controller.pem / controller.key       zone controller (CN and SAN plant-t-bsfg, SAN IP = VIP), 100 years
#   controller.ext                        its extensions, to sign a short-lived copy at test time
#   producer.pem / producer.key           the client node's producer identity, 100 years
#   nats-route-<host>.pem / .key          each zone host's JetStream route certificate (CN and
#                                         DNS SAN routeIdentity, IP SAN = its address: as the
#                                         simulator issues them), server and client auth, 100 years
{
  runCommand,
  openssl,
  vip,
  # { <host> = "<address>"; }: the zone hosts that get a route certificate.
  routeHosts,
  # The DNS SAN nats-server's verify_and_map admits (modules/lib/nats.nix).
  routeIdentity,
}:
runCommand "triad-test-pki" {nativeBuildInputs = [openssl];} ''
  mkdir -p $out && cd $out
  days=36500
  key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
  sign() { # name cn extensions
    key "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
    printf '%b' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
      -days "$days" -extfile "$1.ext" -out "$1.pem"
    rm "$1.csr"
  }

  key ca.key
  openssl req -x509 -new -key ca.key -subj "/CN=triad-test-ca" -days "$days" -out ca.pem

  sign controller plant-t-bsfg "subjectAltName=DNS:plant-t-bsfg,IP:${vip}\nextendedKeyUsage=serverAuth,clientAuth\n"
  sign producer producer "subjectAltName=DNS:producer\nextendedKeyUsage=clientAuth\n"
  ${builtins.concatStringsSep "\n" (map (host: ''
    sign nats-route-${host} ${routeIdentity} "subjectAltName=DNS:${routeIdentity},IP:${routeHosts.${host}}\nextendedKeyUsage=serverAuth,clientAuth\n"
    rm nats-route-${host}.ext
    openssl verify -CAfile ca.pem nats-route-${host}.pem
  '') (builtins.attrNames routeHosts))}

  rm ca.srl producer.ext
  openssl verify -CAfile ca.pem controller.pem producer.pem
''
