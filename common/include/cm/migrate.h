/*
 * cm/migrate.h - applies the SQL migrations of schemas/sql/ (embedded in libcm) in order.
 *
 * Every service runs cm_migrate_run() at start. The whole run holds a session advisory
 * lock, so services starting at the same moment migrate one after the other: the first
 * applies, the others find everything recorded and apply nothing. Each file runs in its
 * own transaction together with its row in schema_migrations (version, name, sha256
 * checksum, applied_at), so a file is applied entirely or not at all.
 *
 * A recorded migration whose checksum differs from the embedded file (someone edited a
 * file after it was applied) stops the run before anything is applied, naming the file. A
 * database that has migrations newer than this binary knows is accepted (a rolling
 * upgrade: the new release migrated first) with a warning log.
 *
 * Files are named NNN_description.sql: NNN (decimal) is the version; versions increase
 * strictly in file order.
 */
#ifndef CM_MIGRATE_H
#define CM_MIGRATE_H

#include <stddef.h>

#include "cm/embedded.h"
#include "cm/pg.h"

typedef enum {
        CM_MIGRATE_OK = 0,
        CM_MIGRATE_ERR_CONN, /* connection lost: cm_pg_ensure() and run again */
        CM_MIGRATE_ERR_SQL,  /* a migration (or the bookkeeping) failed; rolled back */
        CM_MIGRATE_ERR_CHECKSUM, /* an applied migration was changed, or is missing here
                                  */
        CM_MIGRATE_ERR_FILE, /* a file name is not NNN_name.sql or versions are unordered
                              */
} cm_migrate_err_t;

/* Advisory lock key held during a run ("cm_migr" in ASCII). Locks are per database. */
#define CM_MIGRATE_LOCK_KEY 0x636d5f6d696772LL

/*
 * Applies the embedded files under "sql/" not yet recorded. pg must be connected
 * (cm_pg_ensure). *applied (may be NULL) gets the number of files applied by this call (0
 * when the schema is current). On error errstr names the file and the reason. Not
 * thread-safe on one pg; concurrent runs on different connections (threads, processes)
 * are safe.
 */
cm_migrate_err_t cm_migrate_run(cm_pg_t *pg, int *applied, char *errstr,
                                size_t errstr_size);

/*
 * Same, with an explicit list of files (path's last component must be NNN_name.sql);
 * files are used in the order given. For tests and tools.
 */
cm_migrate_err_t cm_migrate_run_files(cm_pg_t *pg, const cm_embedded_file_t *files,
                                      size_t count, int *applied, char *errstr,
                                      size_t errstr_size);

/* Lowercase hex SHA-256 of data into hex (65 bytes with the NUL). Thread-safe. */
void cm_migrate_checksum(const unsigned char *data, size_t len, char hex[65]);

#endif
