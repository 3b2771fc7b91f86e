/*
 * cm/progress.h - cm.JobProgress (schemas/avro/JobProgress.avsc) as a C struct, and its
 * single-object Avro encoding for the cm.progress topic (DESIGN §5).
 *
 * Ownership: a cm_job_progress_t owns every string it points to (lines too); release it
 * with cm_job_progress_destroy(). node is NULL for a step of the whole cluster. Log lines
 * must already be free of secrets: this module copies them as given. Thread-safety:
 * thread-safe on distinct structs (the Avro registry is shared, read-only).
 */
#ifndef CM_PROGRESS_H
#define CM_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <avro.h>

typedef struct cm_job_progress_s {
        char *cluster;
        char *job_id; /* UUID */
        char *kind;   /* zke-up | zke-remove | connect */
        int32_t attempt;
        char *step;
        char *node;   /* optional */
        char *status; /* started | ok | failed | skipped | canceled */
        int64_t at;   /* milliseconds since the Unix epoch, UTC */
        char **lines; /* NULL when line_count is 0 */
        size_t line_count;
} cm_job_progress_t;

/* Encodes p as a cm.JobProgress message; *buf (free()) and *len on success. */
int cm_job_progress_encode(const cm_job_progress_t *p, unsigned char **buf, size_t *len,
                           char *errstr, size_t errstr_size);

/* Decodes into *p (zeroed first); the caller owns *p on success, nothing on error. */
int cm_job_progress_decode(const unsigned char *buf, size_t len, cm_job_progress_t *p,
                           char *errstr, size_t errstr_size);

/* Frees everything p owns and zeroes it. Safe on a zeroed struct. */
void cm_job_progress_destroy(cm_job_progress_t *p);

/* Conversions to/from a cm.JobProgress generic value. */
int cm_job_progress_to_avro(const cm_job_progress_t *p, avro_value_t *rec, char *errstr,
                            size_t errstr_size);
int cm_job_progress_from_avro(cm_job_progress_t *p, const avro_value_t *rec, char *errstr,
                              size_t errstr_size);

#endif
