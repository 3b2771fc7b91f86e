/* api_json.c - request bodies as JSON objects, field error lists, database availability.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cm/log.h"

json_t *api_body_object(api_request_t *req, int *ret)
{
        char err[JSON_ERROR_TEXT_LENGTH + 64];
        if (!req->body || req->body_len == 0) {
                *ret = api_respond_error(req, MHD_HTTP_BAD_REQUEST, "bad_request",
                                         "a JSON object is required as the request body");
                return NULL;
        }
        json_t *j = api_json_parse_object(req->body, req->body_len, err, sizeof(err));
        if (!j)
                *ret =
                    api_respond_error(req, MHD_HTTP_BAD_REQUEST, "malformed", "%s", err);
        return j;
}

cm_pg_t *api_db(api_request_t *req, int *ret)
{
        char err[512];
        cm_pg_t *pg = api_thread_pg(req->api, err, sizeof(err));
        if (!pg)
                *ret = api_respond_db_error(req, "connect", err);
        return pg;
}

int api_respond_db_error(api_request_t *req, const char *what, const char *err)
{
        cm_log_warn("database error", "route", req->route, "operation", what, "error",
                    err);
        return api_respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                                 "the database did not answer (%s); retry", what);
}

char *api_fields_join(const cm_field_errors_t *errs)
{
        size_t cap = 1, n = 0;
        for (size_t i = 0; i < errs->count; i++)
                cap += strlen(errs->items[i].field) + strlen(errs->items[i].message) + 4;
        char *s = malloc(cap);
        if (!s)
                return NULL;
        s[0] = '\0';
        for (size_t i = 0; i < errs->count; i++)
                n += (size_t)snprintf(s + n, cap - n, "%s%s: %s", i ? "; " : "",
                                      errs->items[i].field, errs->items[i].message);
        return s;
}
