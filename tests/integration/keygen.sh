#!/usr/bin/env bash
# cm-keygen creates the sealing key pair an operator installs: the secret key file is 0600,
# the public key it prints is the one in the public key file, existing files are never
# replaced without --force, and errors say what went wrong on stderr with a non-zero exit.
set -euo pipefail
bin=${CM_BINARY_DIR:?CM_BINARY_DIR is not set (run through ctest)}/tools/cm-keygen
[ -x "$bin" ] || { echo "FAIL: $bin is not built" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
pub=$dir/seal.pub
sec=$dir/seal.key

# success: prints the base64 public key, which is line 2 of the public key file
umask 022
out=$("$bin" --public "$pub" --secret "$sec" 2>"$dir/err") || fail "first run exited $?: $(cat "$dir/err")"
[ -s "$dir/err" ] && fail "stderr not empty on success: $(cat "$dir/err")"
[[ $out =~ ^[A-Za-z0-9+/]{43}=$ ]] || fail "stdout is not a 32-byte base64 key: '$out'"
[ "$(sed -n 1p "$pub")" = "cm-seal-v1 x25519-public" ] || fail "public key file header: $(sed -n 1p "$pub")"
[ "$(sed -n 2p "$pub")" = "$out" ] || fail "printed key differs from the public key file"
[ "$(sed -n 1p "$sec")" = "cm-seal-v1 x25519-secret" ] || fail "secret key file header"
[ "$(wc -l <"$sec")" -eq 2 ] || fail "secret key file is not 2 lines"
[ "$(sed -n 2p "$sec")" != "$out" ] || fail "secret key equals public key"

# the resulting file modes
[ "$(stat -c %a "$sec")" = 600 ] || fail "secret key file mode $(stat -c %a "$sec"), want 600"
[ "$(stat -c %a "$pub")" = 644 ] || fail "public key file mode $(stat -c %a "$pub"), want 644"
# and under a permissive umask too
umask 000
"$bin" -p "$dir/u.pub" -s "$dir/u.key" >/dev/null || fail "run under umask 000 failed"
[ "$(stat -c %a "$dir/u.key")" = 600 ] || fail "umask 000: secret key file mode $(stat -c %a "$dir/u.key")"
umask 022

# refusal to overwrite: exit non-zero, message names the file, both files unchanged
before_pub=$(sha256sum <"$pub")
before_sec=$(sha256sum <"$sec")
if "$bin" --public "$pub" --secret "$sec" >"$dir/out" 2>"$dir/err"; then
        fail "second run without --force succeeded"
fi
grep -qF "$sec" "$dir/err" || fail "refusal does not name $sec: $(cat "$dir/err")"
grep -q -- "--force" "$dir/err" || fail "refusal does not mention --force: $(cat "$dir/err")"
[ -s "$dir/out" ] && fail "stdout not empty on refusal"
[ "$(sha256sum <"$pub")" = "$before_pub" ] || fail "public key file changed on refusal"
[ "$(sha256sum <"$sec")" = "$before_sec" ] || fail "secret key file changed on refusal"

# only the public file exists: still refused, and no secret file is left behind
rm "$sec"
if "$bin" --public "$pub" --secret "$sec" >/dev/null 2>"$dir/err"; then
        fail "run over an existing public key file succeeded"
fi
grep -qF "$pub" "$dir/err" || fail "refusal does not name $pub: $(cat "$dir/err")"
[ -e "$sec" ] && fail "secret key file written although the public one blocked"

# --force replaces, with a new key, and restores a safe mode on a loosened secret file
echo old >"$sec"
chmod 644 "$sec"
new=$("$bin" --public "$pub" --secret "$sec" --force 2>"$dir/err") || fail "--force exited $?: $(cat "$dir/err")"
[ "$new" != "$out" ] || fail "--force printed the old key"
[ "$(sed -n 2p "$pub")" = "$new" ] || fail "--force: public key file does not hold the printed key"
[ "$(stat -c %a "$sec")" = 600 ] || fail "--force: secret key file mode $(stat -c %a "$sec"), want 600"
ls "$dir" | grep -q tmp && fail "temporary files left: $(ls "$dir")"

# usage errors: exit 2 with a message
set +e
"$bin" --public "$dir/only.pub" >/dev/null 2>"$dir/err"
rc=$?
set -e
[ $rc -eq 2 ] || fail "missing --secret exited $rc, want 2"
grep -q -- "--secret" "$dir/err" || fail "usage error does not name --secret"
[ -e "$dir/only.pub" ] && fail "file written on a usage error"

# an unwritable place: exit 1, the path named
if "$bin" --public "$dir/no/such/dir.pub" --secret "$dir/no/such/dir.key" >/dev/null 2>"$dir/err"; then
        fail "writing into a missing directory succeeded"
fi
grep -qF "$dir/no/such/dir.key" "$dir/err" || fail "I/O error does not name the file: $(cat "$dir/err")"

# same file for both
if "$bin" --public "$dir/same" --secret "$dir/same" >/dev/null 2>"$dir/err"; then
        fail "same path for both files accepted"
fi

if [ $fails -ne 0 ]; then
        echo "keygen: $fails failure(s)" >&2
        exit 1
fi
echo "keygen: ok"
