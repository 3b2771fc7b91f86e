#!/usr/bin/env bash
# The cluster certificates, checked by the openssl CLI rather than by the library that made
# them: every certificate verifies against kube-ca for its purpose (TLS server or client),
# SANs and subjects are what Kubernetes needs, keys match and are 0600, the public JSON holds
# no private key, the admin kubeconfig's credentials verify, and a second run with one more
# node keeps every existing file byte for byte and issues only that node's certificate.
set -euo pipefail
bin=${CM_BINARY_DIR:?CM_BINARY_DIR is not set (run through ctest)}/tools/cm-zke-plan
src=${CM_SOURCE_DIR:?CM_SOURCE_DIR is not set (run through ctest)}
[ -x "$bin" ] || { echo "FAIL: $bin is not built" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
pki=$dir/pki
mkdir "$pki"
spec=$src/tests/fixtures/zke-plan/spec-3node.json

"$bin" --pki "$pki" "$spec" >"$dir/changes" 2>"$dir/err" || fail "--pki exited $?: $(cat "$dir/err")"
[ "$(grep -c '^new ' "$dir/changes")" -eq 15 ] || fail "first run: want 15 new entries: $(cat "$dir/changes")"
ca=$pki/kube-ca.pem

verify() { # cert purpose
        openssl verify -CAfile "$ca" -purpose "$2" "$pki/$1.pem" >"$dir/v" 2>&1 ||
                fail "$1 does not verify for $2: $(cat "$dir/v")"
}
for n in kube-apiserver kube-etcd-m1 kube-etcd-m2 kube-etcd-w1; do verify "$n" sslserver; done
for n in kube-etcd-m1 kube-apiserver-etcd-client kube-apiserver-kubelet-client \
        kube-controller-manager kube-scheduler kube-proxy kube-admin kube-node-m1 kube-node-w1; do
        verify "$n" sslclient
done
openssl verify -CAfile "$ca" -purpose sslserver "$pki/kube-admin.pem" >/dev/null 2>&1 &&
        fail "a client certificate verifies as a TLS server"
openssl verify -CAfile "$ca" -purpose sslclient "$pki/kube-apiserver.pem" >/dev/null 2>&1 &&
        fail "the apiserver certificate verifies as a TLS client"

sans() { openssl x509 -in "$pki/$1.pem" -noout -ext subjectAltName | tail -n +2 | tr -d ' '; }
want='DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IPAddress:10.0.0.11,IPAddress:10.0.0.12,IPAddress:10.43.0.1,IPAddress:127.0.0.1'
[ "$(sans kube-apiserver)" = "$want" ] || fail "kube-apiserver SANs: $(sans kube-apiserver)"
[ "$(sans kube-etcd-w1)" = "DNS:localhost,IPAddress:10.0.0.21,IPAddress:127.0.0.1" ] ||
        fail "kube-etcd-w1 SANs: $(sans kube-etcd-w1)"

subj() { openssl x509 -in "$pki/$1.pem" -noout -subject -nameopt compat | sed 's/^subject=//'; }
[ "$(subj kube-admin)" = "/O=system:masters/CN=kube-admin" ] || fail "kube-admin subject: $(subj kube-admin)"
[ "$(subj kube-node-w1)" = "/O=system:nodes/CN=system:node:w1" ] || fail "kube-node-w1 subject: $(subj kube-node-w1)"
[ "$(subj kube-scheduler)" = "/CN=system:kube-scheduler" ] || fail "kube-scheduler subject: $(subj kube-scheduler)"
openssl x509 -in "$ca" -noout -ext basicConstraints,keyUsage | grep -q 'CA:TRUE' || fail "kube-ca is not a CA"
openssl x509 -in "$pki/kube-apiserver.pem" -noout -ext basicConstraints | grep -q 'CA:FALSE' ||
        fail "kube-apiserver is a CA"
openssl x509 -in "$ca" -noout -text | grep -q 'ASN1 OID: prime256v1' || fail "CA key is not P-256"

for cert in "$pki"/kube-*.pem; do
        case $cert in *-key.pem) continue ;; esac
        name=$(basename "$cert" .pem)
        key=$pki/$name-key.pem
        [ "$(stat -c %a "$key")" = 600 ] || fail "$key mode $(stat -c %a "$key")"
        [ "$(openssl x509 -in "$cert" -noout -pubkey)" = "$(openssl pkey -in "$key" -pubout)" ] ||
                fail "$name: key does not match"
        openssl verify -CAfile "$ca" "$cert" >/dev/null 2>&1 || fail "$name does not verify"
done
grep -q 'PRIVATE KEY' "$pki/certificates.json" && fail "certificates.json holds a private key"
[ "$(stat -c %a "$pki/keys.json")" = 600 ] || fail "keys.json mode"

# the admin kubeconfig: its CA is kube-ca, its client certificate verifies and matches its key
python3 - "$pki/kubeconfig.yaml" "$dir" <<'PY' || fail "kubeconfig does not parse as expected"
import base64, sys, yaml
kc = yaml.safe_load(open(sys.argv[1]))
out = sys.argv[2]
assert kc["clusters"][0]["cluster"]["server"] == "https://10.0.0.11:6443", kc["clusters"]
assert kc["current-context"] == "prod" and kc["users"][0]["name"] == "prod"
u = kc["users"][0]["user"]
for name, data in (("ca", kc["clusters"][0]["cluster"]["certificate-authority-data"]),
                   ("crt", u["client-certificate-data"]), ("key", u["client-key-data"])):
    open(f"{out}/kc-{name}.pem", "wb").write(base64.b64decode(data))
PY
cmp -s "$dir/kc-ca.pem" "$ca" || fail "kubeconfig CA is not kube-ca"
openssl verify -CAfile "$dir/kc-ca.pem" -purpose sslclient "$dir/kc-crt.pem" >/dev/null 2>&1 ||
        fail "kubeconfig client certificate does not verify"
[ "$(openssl x509 -in "$dir/kc-crt.pem" -noout -pubkey)" = "$(openssl pkey -in "$dir/kc-key.pem" -pubout)" ] ||
        fail "kubeconfig key does not match its certificate"

# reuse: one more worker issues only its kubelet certificate; everything else is unchanged
(cd "$pki" && sha256sum kube-*.pem) >"$dir/before"
python3 - "$spec" "$dir/spec4.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["nodes"].append({"name": "w9", "address": "10.0.0.29", "roles": ["worker"]})
json.dump(s, open(sys.argv[2], "w"))
PY
"$bin" --pki "$pki" "$dir/spec4.json" >"$dir/changes2" 2>"$dir/err" || fail "second run exited $?: $(cat "$dir/err")"
[ "$(cat "$dir/changes2")" = "new kube-node-w9: not issued before" ] || fail "second run changes: $(cat "$dir/changes2")"
(cd "$pki" && sha256sum -c --quiet "$dir/before") || fail "existing certificate files changed"
verify kube-node-w9 sslclient
# and the same spec again changes nothing
"$bin" --pki "$pki" "$dir/spec4.json" >"$dir/changes3" || fail "third run exited $?"
[ -s "$dir/changes3" ] && fail "unchanged spec changed: $(cat "$dir/changes3")"

if [ $fails -ne 0 ]; then
        echo "pki_openssl: $fails failure(s)" >&2
        exit 1
fi
echo "pki_openssl: ok"
