/*
 * api_body.c - a request body as one JSON object, refused with a clear message when it
 * is not JSON, not an object, or nests deeper than API_JSON_MAX_DEPTH. Pure (no HTTP):
 * api_json.c answers with what it says, and tests/fuzz/fuzz_api_json.c links it alone.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"

int api_json_too_deep(const char *s, size_t len, int max)
{
        int depth = 0, in_string = 0;
        for (size_t i = 0; i < len; i++) {
                char ch = s[i];
                if (in_string) {
                        if (ch == '\\')
                                i++; /* the escaped character cannot end the string */
                        else if (ch == '"')
                                in_string = 0;
                } else if (ch == '"') {
                        in_string = 1;
                } else if (ch == '[' || ch == '{') {
                        if (++depth > max)
                                return 1;
                } else if ((ch == ']' || ch == '}') && depth > 0) {
                        depth--;
                }
        }
        return 0;
}

json_t *api_json_parse_object(const char *body, size_t len, char *errstr,
                              size_t errstr_size)
{
        json_error_t jerr;
        /* jansson recurses per level (up to 2048): refuse long before the stack or any
         * later recursive walk of the tree matters. */
        if (api_json_too_deep(body, len, API_JSON_MAX_DEPTH)) {
                snprintf(errstr, errstr_size, "request body nests deeper than %d levels",
                         API_JSON_MAX_DEPTH);
                return NULL;
        }
        json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!j) {
                snprintf(errstr, errstr_size, "malformed JSON at line %d, column %d: %s",
                         jerr.line, jerr.column, jerr.text);
                return NULL;
        }
        if (!json_is_object(j)) {
                json_decref(j);
                snprintf(errstr, errstr_size, "the request body must be a JSON object");
                return NULL;
        }
        return j;
}
