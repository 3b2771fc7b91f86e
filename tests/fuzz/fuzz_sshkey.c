/*
 * fuzz_sshkey - cm_sshkey_inspect, the reading of an untrusted SSH private key (base64,
 * the OpenSSH container, PEM/DER of SEC 1 and PKCS#8), on arbitrary text. An accepted
 * key must come with its type and a one-line public key of that type; a refusal with a
 * message.
 */
#include <string.h>

#include "cm/sshkey.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cm_sshkey_info_t info;
        char err[512];
        memset(&info, 0xa5, sizeof(info));
        err[0] = '\0';
        cm_sshkey_err_t rc = cm_sshkey_inspect(data, size, &info, err, sizeof(err));
        if (rc != CM_SSHKEY_OK) {
                FUZZ_CHECK(err[0], "refusal %d without a message", (int)rc);
                FUZZ_CHECK(memchr(err, '\0', sizeof(err)), "message not terminated");
                return 0;
        }
        FUZZ_CHECK(memchr(info.public_key, '\0', sizeof(info.public_key)),
                   "public key not terminated");
        const char *type = cm_sshkey_type_name(info.type);
        size_t tl = strlen(type);
        FUZZ_CHECK(strcmp(type, "unknown") != 0, "type %d", (int)info.type);
        FUZZ_CHECK(strncmp(info.public_key, type, tl) == 0 && info.public_key[tl] == ' ',
                   "public key \"%s\" is not of type %s", info.public_key, type);
        FUZZ_CHECK(!strchr(info.public_key, '\n'), "newline in the public key");
        return 0;
}
