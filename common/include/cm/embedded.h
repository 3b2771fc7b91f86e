/*
 * cm/embedded.h - the schemas/ files (Avro schemas, SQL migrations) and the zke install plans
 * (workers/zke/plans/, as "plans/...") compiled into libcm.
 *
 * Binaries embed the contracts they were built with, so a service never reads a schema from
 * a working directory that may hold another version.
 */
#ifndef CM_EMBEDDED_H
#define CM_EMBEDDED_H

#include <stddef.h>

typedef struct cm_embedded_file_s {
        const char *path;          /* "avro/Command.avsc", "plans/v1.28.json" */
        const unsigned char *data; /* NUL-terminated (the NUL is not counted in len) */
        size_t len;
} cm_embedded_file_t;

/* Sorted by path; the array ends with an all-zero entry. Static storage, thread-safe. */
extern const cm_embedded_file_t cm_embedded_files[];
extern const size_t cm_embedded_file_count;

/* Returns the file at path (as in cm_embedded_file_t) or NULL. Static storage, thread-safe. */
const cm_embedded_file_t *cm_embedded_find(const char *path);

#endif
