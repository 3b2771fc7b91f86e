/* api_auth.c - bearer tokens: only their SHA-256 is stored, compared in the database. */
#include <microhttpd.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cm/log.h"

#define API_TOKEN_PREFIX       "cm_"
#define API_TOKEN_RANDOM_BYTES 32

static pthread_key_t api_auth_pg_key;
static pthread_once_t api_auth_pg_once = PTHREAD_ONCE_INIT;

static void api_auth_pg_free(void *pg)
{
        cm_pg_destroy(pg);
}

static void api_auth_pg_key_init(void)
{
        pthread_key_create(&api_auth_pg_key, api_auth_pg_free);
}

/* Each MHD worker thread keeps its own connection (a cm_pg_t is single-threaded); the
 * key's destructor closes it when the thread ends. */
cm_pg_t *api_thread_pg(api_t *api, char *errstr, size_t errstr_size)
{
        pthread_once(&api_auth_pg_once, api_auth_pg_key_init);
        cm_pg_t *pg = pthread_getspecific(api_auth_pg_key);
        if (!pg) {
                if (!(pg = cm_pg_new_config(&api->svc->conf, errstr, errstr_size)))
                        return NULL;
                pthread_setspecific(api_auth_pg_key, pg);
        }
        if (cm_pg_ensure(pg, 2000, errstr, errstr_size) != CM_PG_OK)
                return NULL;
        return pg;
}

static void api_auth_sha256_hex(const char *token,
                                char hex[2 * crypto_hash_sha256_BYTES + 1])
{
        unsigned char sum[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(sum, (const unsigned char *)token, strlen(token));
        sodium_bin2hex(hex, 2 * crypto_hash_sha256_BYTES + 1, sum, sizeof(sum));
}

int api_auth_check(api_request_t *req, char *errstr, size_t errstr_size)
{
        const char *h = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION);
        if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7])
                return 1;
        cm_pg_t *pg = api_thread_pg(req->api, errstr, errstr_size);
        if (!pg)
                return -1;
        char hex[2 * crypto_hash_sha256_BYTES + 1];
        api_auth_sha256_hex(h + 7, hex);
        const char *params[] = {hex};
        PGresult *res = NULL;
        cm_pg_err_t err = cm_pg_exec_params(
            pg,
            "SELECT name, role FROM api_tokens "
            "WHERE token_sha256 = decode($1, 'hex') AND revoked_at IS NULL",
            1, params, &res, errstr, errstr_size);
        if (err != CM_PG_OK)
                return -1;
        int rc = 1;
        if (PQntuples(res) == 1) {
                req->actor = strdup(PQgetvalue(res, 0, 0));
                req->role = strcmp(PQgetvalue(res, 0, 1), "admin") == 0 ? API_ROLE_ADMIN
                                                                        : API_ROLE_USER;
                rc = req->actor ? 0 : -1;
        }
        PQclear(res);
        return rc;
}

int api_auth_create_token(cm_pg_t *pg, const char *name, const char *role, int replace,
                          char **token, char *errstr, size_t errstr_size)
{
        unsigned char rnd[API_TOKEN_RANDOM_BYTES];
        char hex[2 * crypto_hash_sha256_BYTES + 1];
        size_t len = strlen(API_TOKEN_PREFIX) + 2 * sizeof(rnd) + 1;
        char *t = malloc(len);
        if (!t) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        randombytes_buf(rnd, sizeof(rnd));
        strcpy(t, API_TOKEN_PREFIX);
        sodium_bin2hex(t + strlen(API_TOKEN_PREFIX), 2 * sizeof(rnd) + 1, rnd,
                       sizeof(rnd));
        sodium_memzero(rnd, sizeof(rnd));
        api_auth_sha256_hex(t, hex);

        const char *del[] = {name};
        const char *ins[] = {hex, name, role};
        if (cm_pg_begin(pg, errstr, errstr_size) != CM_PG_OK)
                goto fail;
        if (replace && cm_pg_exec_params(pg, "DELETE FROM api_tokens WHERE name = $1", 1,
                                         del, NULL, errstr, errstr_size) != CM_PG_OK)
                goto rollback;
        if (cm_pg_exec_params(pg,
                              "INSERT INTO api_tokens (token_sha256, name, role) "
                              "VALUES (decode($1, 'hex'), $2, $3)",
                              3, ins, NULL, errstr, errstr_size) != CM_PG_OK) {
                if (strcmp(cm_pg_sqlstate(pg), "23505") == 0)
                        snprintf(
                            errstr, errstr_size,
                            "a token named \"%s\" exists (use --replace to revoke it)",
                            name);
                else if (strcmp(cm_pg_sqlstate(pg), "23514") == 0)
                        snprintf(errstr, errstr_size,
                                 "role \"%s\" is not one of admin, user (or the name is "
                                 "empty)",
                                 role);
                goto rollback;
        }
        if (cm_pg_commit(pg, errstr, errstr_size) != CM_PG_OK)
                goto fail;
        cm_log_info("api token created", "name", name, "role", role);
        *token = t;
        return 0;
rollback:
        cm_pg_rollback(pg, NULL, 0);
fail:
        sodium_memzero(t, len);
        free(t);
        return -1;
}
