/*
 * cm_config_int.h - the key table of the configuration, shared by the loader
 * (cm_config.c) and the documented example (cm_config_example.c). Internal to libcm.
 */
#ifndef CM_CONFIG_INT_H
#define CM_CONFIG_INT_H

#include <stddef.h>

#include "cm/config.h"

typedef enum {
        CM_CONFIG_T_STRING,
        CM_CONFIG_T_INT,
        CM_CONFIG_T_ENUM, /* a string from a fixed set */
} cm_config_type_t;

typedef struct cm_config_key_s {
        const char *section;
        const char *key;
        cm_config_type_t type;
        const char *def_str; /* STRING and ENUM */
        long long def_int;   /* INT */
        long long min, max;  /* INT: inclusive range; STRING: min is the minimum length */
        const char *const *allowed; /* ENUM: NULL-terminated set */
        size_t offset;              /* of the char * or int field in cm_config_t */
        const char *doc;
} cm_config_key_t;

/* Every key, in the order of the example (cm_config_keys.c). Static storage. */
extern const cm_config_key_t cm_config_keys[];
extern const size_t cm_config_nkeys;
#define CM_CONFIG_NKEYS cm_config_nkeys

/* One line about a section, for the example. */
const char *cm_config_section_doc(const char *name);
/* "a, b, c": the allowed values of an ENUM key. */
void cm_config_allowed_list(const cm_config_key_t *k, char *out, size_t out_size);
/* CM_<SECTION>_<KEY>, upper-cased. */
void cm_config_env_name(const cm_config_key_t *k, char *out, size_t out_size);

#endif
