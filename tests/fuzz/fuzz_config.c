/*
 * fuzz_config - the configuration parser (libconfig and cm_config's key table, type and
 * range checks) on arbitrary text, through cm_config_load_string, the path
 * cm_config_load takes once it has read the file. Texts with @include are skipped: they
 * would read files of this machine, which is not what is tested here.
 */
#include <string.h>

#include "cm/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cm_config_t conf;
        char err[1024];
        if (memmem(data, size, "@include", 8))
                return 0;
        err[0] = '\0';
        cm_config_err_t rc = cm_config_load_string(&conf, (const char *)data, size,
                                                   "/fuzz/cm.conf", err, sizeof(err));
        if (rc != CM_CONFIG_OK) {
                FUZZ_CHECK(err[0], "error %d without a message", (int)rc);
                FUZZ_CHECK(!conf.path && !conf.kafka.bootstrap_servers,
                           "an error left strings behind");
                return 0;
        }
        FUZZ_CHECK(conf.path && strcmp(conf.path, "/fuzz/cm.conf") == 0, "path");
        FUZZ_CHECK(conf.postgres.reconnect_min_ms <= conf.postgres.reconnect_max_ms,
                   "reconnect_min_ms > reconnect_max_ms accepted");
        FUZZ_CHECK(conf.job.heartbeat_s < conf.job.lease_s,
                   "heartbeat >= lease accepted");
        cm_config_destroy(&conf);
        return 0;
}
