/*
 * cm-api: the REST API of DESIGN §6. This file starts the process (configuration, sealing
 * keys, PostgreSQL, Kafka producer, HTTP server) and serves --create-token.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cm/log.h"

typedef struct {
        const char *config_path;
        const char *token_name;
        const char *token_role;
        int token_replace;
} api_args_t;

static const char api_usage[] =
    "usage: cm-api [-c FILE]\n"
    "       cm-api [-c FILE] --create-token NAME [--role admin|user] [--replace]\n"
    "  -c, --config FILE     configuration file (see config/cm.conf.example)\n"
    "  --create-token NAME   create an API token, print it once on stdout and exit;\n"
    "                        only its SHA-256 is stored\n"
    "  --role ROLE           admin (every endpoint) or user (reads only); default user\n"
    "  --replace             delete an existing token of that name first\n";

/* Returns 0 to go on, 1 to exit 0, 2 on a usage error. */
static int api_parse_args(int argc, char **argv, api_args_t *a)
{
        enum { OPT_CREATE = 256, OPT_ROLE, OPT_REPLACE };
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"help", no_argument, NULL, 'h'},
            {"create-token", required_argument, NULL, OPT_CREATE},
            {"role", required_argument, NULL, OPT_ROLE},
            {"replace", no_argument, NULL, OPT_REPLACE},
            {NULL, 0, NULL, 0}};
        int c;
        memset(a, 0, sizeof(*a));
        a->token_role = "user";
        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        a->config_path = optarg;
                        break;
                case OPT_CREATE:
                        a->token_name = optarg;
                        break;
                case OPT_ROLE:
                        a->token_role = optarg;
                        break;
                case OPT_REPLACE:
                        a->token_replace = 1;
                        break;
                case 'h':
                        fputs(api_usage, stdout);
                        return 1;
                default:
                        fputs(api_usage, stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "cm-api: unexpected argument \"%s\"\n%s", argv[optind],
                        api_usage);
                return 2;
        }
        if (strcmp(a->token_role, "admin") != 0 && strcmp(a->token_role, "user") != 0) {
                fprintf(stderr, "cm-api: --role \"%s\": expected admin or user\n",
                        a->token_role);
                return 2;
        }
        return 0;
}

static int api_create_token(cm_service_t *svc, const api_args_t *a)
{
        char err[512];
        char *token = NULL;
        if (cm_service_connect_db(svc, err, sizeof(err)) ||
            api_auth_create_token(svc->pg, a->token_name, a->token_role, a->token_replace,
                                  &token, err, sizeof(err))) {
                fprintf(stderr, "cm-api: cannot create token \"%s\": %s\n", a->token_name,
                        err);
                return 1;
        }
        printf("%s\n", token);
        free(token);
        return 0;
}

static int api_load_keys(api_t *api, char *errstr, size_t errstr_size)
{
        const cm_config_t *conf = &api->svc->conf;
        if (cm_seal_keypair_load(&api->keys, conf->seal.public_key_file,
                                 conf->seal.secret_key_file, errstr,
                                 errstr_size) != CM_SEAL_OK)
                return -1;
        api->publickey_b64 = cm_seal_pubkey_to_base64(cm_seal_keypair_pubkey(api->keys));
        return api->publickey_b64 ? 0 : -1;
}

static int api_run(cm_service_t *svc)
{
        char err[512];
        api_t api = {.svc = svc};
        int rc = 1;

        if (api_load_keys(&api, err, sizeof(err))) {
                cm_log_error("cannot load the sealing keys", "error", err);
                goto out;
        }
        if (api_produce_start(&api, err, sizeof(err))) {
                cm_log_error("cannot create the Kafka producer", "error", err);
                goto out;
        }
        svc->ready_producer = api.producer;
        cm_health_set_metrics(svc->health, api_metrics_render, &api);
        if (cm_service_serve_health(svc, NULL, err, sizeof(err)) ||
            api_wait_start(&api, err, sizeof(err)) ||
            api_watch_start(&api, err, sizeof(err)) ||
            api_server_start(&api, svc->conf.api.listen, svc->conf.api.threads, err,
                             sizeof(err))) {
                cm_log_error("cannot serve the API", "error", err);
                goto out;
        }
        char port[16];
        snprintf(port, sizeof(port), "%d", api.port);
        cm_log_info("api listening", "listen", svc->conf.api.listen, "port", port);
        int db = cm_service_connect_db(svc, err, sizeof(err));
        if (db < 0) {
                cm_log_error("cannot prepare the database", "error", err);
                goto out;
        }
        while (!cm_service_stopping())
                cm_service_sleep_ms(500);
        cm_log_info("api stopping");
        rc = 0;
out:
        /* Suspended requests and streams are answered first: MHD must not stop while a
         * connection is suspended. */
        api_watch_stop(&api);
        api_produce_stop(&api); /* before the waits: a produced command may start one */
        api_wait_stop(&api);
        api_server_stop(&api);
        cm_health_destroy(svc->health); /* no readiness check may use the producer now */
        svc->health = NULL;
        api_watch_free(&api);
        api_produce_free(&api);
        cm_seal_keypair_destroy(api.keys);
        free(api.publickey_b64);
        return rc;
}

int main(int argc, char **argv)
{
        api_args_t args;
        int rc = api_parse_args(argc, argv, &args);
        if (rc)
                return rc == 1 ? 0 : rc;
        char err[512];
        cm_service_t svc;
        if (cm_service_init(&svc, "api", args.config_path, err, sizeof(err))) {
                fprintf(stderr, "cm-api: %s\n", err);
                cm_service_destroy(&svc);
                return 1;
        }
        rc = args.token_name ? api_create_token(&svc, &args) : api_run(&svc);
        cm_service_destroy(&svc);
        return rc;
}
