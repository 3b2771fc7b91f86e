/* cm_plan_int.h - shared by cm_plan.c, cm_plan_render.c and cm_plan_steps.c; not part of
 * libcm's API. */
#ifndef CM_PLAN_INT_H
#define CM_PLAN_INT_H

#include <stddef.h>
#include <jansson.h>

struct cm_plan_s {
        char *name;   /* "v1.28" */
        json_t *root; /* the plan file */
};

typedef struct cm_plan_var_s {
        char *name;
        char *value;
} cm_plan_var_t;

/* Placeholder values; a later entry of the same name wins (per-node over cluster-wide).
 */
typedef struct cm_plan_vars_s {
        cm_plan_var_t *items;
        size_t count;
} cm_plan_vars_t;

void cm_plan_seterr(char *errstr, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cm_plan_vars_set(cm_plan_vars_t *v, const char *name, const char *value);
/* Drops entries from count on (0: frees all). */
void cm_plan_vars_truncate(cm_plan_vars_t *v, size_t count);
/* tmpl with every {{name}} filled (malloc'd), or NULL with errstr naming where and the
 * placeholder. */
char *cm_plan_fill(const char *tmpl, const cm_plan_vars_t *v, const char *where,
                   char *errstr, size_t errstr_size);
/* The sha256 of s as lower-case hex, cut to hexlen (<= 64) characters (malloc'd), or
 * NULL when out of memory. */
char *cm_plan_sha256_hex(const char *s, size_t hexlen);

#endif
