#!/bin/sh
# Regenerates the TLS test fixtures in __test__/fixtures/tls/ (needs openssl):
#   ca.pem / ca.key            a test CA
#   server.pem / server.key    localhost, 127.0.0.1 and ::1, signed by the CA
#   server.enc.key             server.key as encrypted PKCS#8 (PBES2, AES-256-CBC),
#                              passphrase "runner-test-passphrase"
#   client.pem / client.key    a client certificate signed by the CA
#   rogue.pem / rogue.key      a self-signed client certificate (not signed by the CA)
#   other.key                  a key that matches none of the certificates
# Keys are EC P-256. Everything is valid for 10000 days. For tests only.
set -eu
DIR="$(cd "$(dirname "$0")/.." && pwd)/__test__/fixtures/tls"
DAYS=10000
mkdir -p "$DIR"
cd "$DIR"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

key ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$DAYS" -subj "/CN=runner-native test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem

sign() { # name subject extensions
  openssl req -new -key "$1.key" -subj "$2" -out "$TMP/$1.csr"
  printf '%s\n' "$3" > "$TMP/$1.ext"
  openssl x509 -req -in "$TMP/$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -CAserial "$TMP/ca.srl" \
    -days "$DAYS" -sha256 -extfile "$TMP/$1.ext" -out "$1.pem"
}

key server.key
sign server "/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"

key client.key
sign client "/CN=runner-native test client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"

key rogue.key
openssl req -x509 -new -key rogue.key -sha256 -days "$DAYS" -subj "/CN=rogue client" \
  -addext "extendedKeyUsage=clientAuth" -out rogue.pem

openssl pkcs8 -topk8 -in server.key -v2 aes-256-cbc -v2prf hmacWithSHA256 \
  -passout pass:runner-test-passphrase -out server.enc.key

key other.key
echo "wrote $DIR"
