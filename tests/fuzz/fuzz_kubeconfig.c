/*
 * fuzz_kubeconfig - cm_kubeconfig_parse on arbitrary text (YAML or JSON), with
 * current-context and with a named context; a parsed kubeconfig must copy and free
 * cleanly and hold what the header promises (server, a way to authenticate).
 */
#include <string.h>
#include <strings.h>

#include "cm/kubeconfig.h"
#include "fuzz.h"

static void fuzz_parse(const uint8_t *data, size_t size, const char *context)
{
        cm_kubeconfig_t *kc = NULL;
        char err[1024];
        err[0] = '\0';
        cm_kubeconfig_err_t rc =
            cm_kubeconfig_parse(data, size, context, &kc, err, sizeof(err));
        if (rc != CM_KUBECONFIG_OK) {
                FUZZ_CHECK(!kc, "an error left a kubeconfig");
                FUZZ_CHECK(strncmp(err, "kubeconfig: ", 12) == 0 ||
                               rc == CM_KUBECONFIG_ERR_NOMEM,
                           "error \"%s\" does not start with \"kubeconfig: \"", err);
                return;
        }
        FUZZ_CHECK(kc && kc->context && kc->cluster && kc->user && kc->server,
                   "a parsed kubeconfig lacks a required field");
        FUZZ_CHECK(strncasecmp(kc->server, "https://", 8) == 0, "server %s", kc->server);
        FUZZ_CHECK(kc->token || (kc->client_cert_pem && kc->client_key_pem),
                   "no way to authenticate");
        cm_kubeconfig_t *dup = cm_kubeconfig_dup(kc);
        FUZZ_CHECK(dup && strcmp(dup->server, kc->server) == 0, "dup differs");
        cm_kubeconfig_free(dup);
        cm_kubeconfig_free(kc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fuzz_parse(data, size, NULL);
        fuzz_parse(data, size, "fuzz");
        return 0;
}
