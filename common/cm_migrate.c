/*
 * cm_migrate.c - ordered, checksummed, concurrency-safe SQL migrations (see
 * cm/migrate.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cm/log.h"
#include "cm/migrate.h"

typedef struct migration_s {
        const cm_embedded_file_t *file;
        const char *name; /* last path component */
        long version;
        char checksum[65];
} migration_t;

void cm_migrate_checksum(const unsigned char *data, size_t len, char hex[65])
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        static const char digits[] = "0123456789abcdef";

        EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
        for (unsigned int i = 0; i < n && i < 32; i++) {
                hex[2 * i] = digits[md[i] >> 4];
                hex[2 * i + 1] = digits[md[i] & 15];
        }
        hex[64] = '\0';
}

static cm_migrate_err_t from_pg(cm_pg_err_t e)
{
        return e == CM_PG_ERR_CONN ? CM_MIGRATE_ERR_CONN : CM_MIGRATE_ERR_SQL;
}

/* Fills m[] from files; checks NNN_name.sql and strictly increasing versions. */
static cm_migrate_err_t parse_files(const cm_embedded_file_t *files, size_t count,
                                    migration_t *m, char *errstr, size_t errstr_size)
{
        for (size_t i = 0; i < count; i++) {
                const char *slash = strrchr(files[i].path, '/');
                const char *name = slash ? slash + 1 : files[i].path;
                size_t len = strlen(name);
                char *end;
                long v = strtol(name, &end, 10);

                if (end == name || *end != '_' || end[1] == '\0' || len < 5 ||
                    strcmp(name + len - 4, ".sql") || v < 0 || name[0] == '-' ||
                    name[0] == '+') {
                        snprintf(
                            errstr, errstr_size,
                            "migration \"%s\": file name must be NNN_description.sql",
                            files[i].path);
                        return CM_MIGRATE_ERR_FILE;
                }
                if (i > 0 && v <= m[i - 1].version) {
                        snprintf(
                            errstr, errstr_size,
                            "migration \"%s\": version %ld does not follow version %ld "
                            "of \"%s\"",
                            files[i].path, v, m[i - 1].version, m[i - 1].file->path);
                        return CM_MIGRATE_ERR_FILE;
                }
                m[i].file = &files[i];
                m[i].name = name;
                m[i].version = v;
                cm_migrate_checksum(files[i].data, files[i].len, m[i].checksum);
        }
        return CM_MIGRATE_OK;
}

static const migration_t *find_version(const migration_t *m, size_t count, long v)
{
        for (size_t i = 0; i < count; i++)
                if (m[i].version == v)
                        return &m[i];
        return NULL;
}

/*
 * Compares schema_migrations with the files. Marks files already applied in done[].
 * Changed or vanished migrations stop the run before anything is applied.
 */
static cm_migrate_err_t check_recorded(cm_pg_t *pg, const migration_t *m, size_t count,
                                       char *done, char *errstr, size_t errstr_size)
{
        PGresult *r;
        cm_pg_err_t e;
        cm_migrate_err_t err = CM_MIGRATE_OK;
        long max = count ? m[count - 1].version : -1;

        e = cm_pg_exec(pg,
                       "SELECT version, name, checksum FROM schema_migrations "
                       "ORDER BY version",
                       &r, errstr, errstr_size);
        if (e != CM_PG_OK)
                return from_pg(e);
        for (int i = 0; i < PQntuples(r) && err == CM_MIGRATE_OK; i++) {
                long v = strtol(PQgetvalue(r, i, 0), NULL, 10);
                const char *name = PQgetvalue(r, i, 1), *sum = PQgetvalue(r, i, 2);
                const migration_t *f = find_version(m, count, v);

                if (!f && v > max) {
                        char ver[24];
                        snprintf(ver, sizeof(ver), "%ld", v);
                        cm_log(CM_LOG_WARN,
                               "database schema is newer than this binary (rolling "
                               "upgrade?)",
                               "version", ver, "migration", name, NULL);
                        continue;
                }
                if (!f) {
                        snprintf(errstr, errstr_size,
                                 "migration \"%s\" (version %ld) is recorded in "
                                 "schema_migrations but this binary does not have it",
                                 name, v);
                        err = CM_MIGRATE_ERR_CHECKSUM;
                } else if (strcmp(f->name, name) || strcmp(f->checksum, sum)) {
                        snprintf(
                            errstr, errstr_size,
                            "migration \"%s\" (version %ld) was changed after it was "
                            "applied: schema_migrations has \"%s\" sha256 %.12s..., "
                            "the file has sha256 %.12s...; add a new migration instead "
                            "of editing an applied one",
                            f->file->path, v, name, sum, f->checksum);
                        err = CM_MIGRATE_ERR_CHECKSUM;
                } else {
                        done[f - m] = 1;
                }
        }
        PQclear(r);
        return err;
}

static cm_migrate_err_t apply_one(cm_pg_t *pg, const migration_t *m, char *errstr,
                                  size_t errstr_size)
{
        char why[768], ver[24];
        const char *params[3] = {ver, m->name, m->checksum};
        cm_pg_err_t e;

        snprintf(ver, sizeof(ver), "%ld", m->version);
        if ((e = cm_pg_begin(pg, why, sizeof(why))) != CM_PG_OK ||
            (e = cm_pg_exec(pg, (const char *)m->file->data, NULL, why, sizeof(why))) !=
                CM_PG_OK ||
            (e = cm_pg_exec_params(
                 pg,
                 "INSERT INTO schema_migrations (version, name, checksum) "
                 "VALUES ($1, $2, $3)",
                 3, params, NULL, why, sizeof(why))) != CM_PG_OK ||
            (e = cm_pg_commit(pg, why, sizeof(why))) != CM_PG_OK) {
                cm_pg_rollback(pg, NULL, 0);
                snprintf(errstr, errstr_size, "migration \"%s\" failed, rolled back: %s",
                         m->file->path, why);
                return from_pg(e);
        }
        cm_log(CM_LOG_INFO, "migration applied", "migration", m->file->path, "version",
               ver, NULL);
        return CM_MIGRATE_OK;
}

static cm_migrate_err_t run_locked(cm_pg_t *pg, const migration_t *m, size_t count,
                                   int *applied, char *errstr, size_t errstr_size)
{
        cm_pg_err_t e;
        cm_migrate_err_t err;
        char *done = calloc(count ? count : 1, 1);

        if (!done) {
                snprintf(errstr, errstr_size, "out of memory");
                return CM_MIGRATE_ERR_SQL;
        }
        /* a DO block, not IF NOT EXISTS: that one sends a NOTICE on every start */
        e = cm_pg_exec(pg,
                       "DO $$ BEGIN IF to_regclass('schema_migrations') IS NULL THEN "
                       "CREATE TABLE schema_migrations ("
                       " version integer PRIMARY KEY,"
                       " name text NOT NULL,"
                       " checksum text NOT NULL,"
                       " applied_at timestamptz NOT NULL DEFAULT now()); END IF; END $$",
                       NULL, errstr, errstr_size);
        if (e != CM_PG_OK) {
                free(done);
                return from_pg(e);
        }
        err = check_recorded(pg, m, count, done, errstr, errstr_size);
        for (size_t i = 0; i < count && err == CM_MIGRATE_OK; i++) {
                if (done[i])
                        continue;
                err = apply_one(pg, &m[i], errstr, errstr_size);
                if (err == CM_MIGRATE_OK)
                        (*applied)++;
        }
        free(done);
        return err;
}

cm_migrate_err_t cm_migrate_run_files(cm_pg_t *pg, const cm_embedded_file_t *files,
                                      size_t count, int *applied, char *errstr,
                                      size_t errstr_size)
{
        char lock[128], ignored[256];
        migration_t *m;
        cm_migrate_err_t err;
        cm_pg_err_t e;
        int n = 0;

        if (applied)
                *applied = 0;
        m = calloc(count ? count : 1, sizeof(*m));
        if (!m) {
                snprintf(errstr, errstr_size, "out of memory");
                return CM_MIGRATE_ERR_SQL;
        }
        if ((err = parse_files(files, count, m, errstr, errstr_size)) != CM_MIGRATE_OK) {
                free(m);
                return err;
        }
        /* A session lock, not a transaction one: the run spans one transaction per file.
         * If the connection dies the server releases it. */
        snprintf(lock, sizeof(lock), "SELECT pg_advisory_lock(%lld)",
                 CM_MIGRATE_LOCK_KEY);
        if ((e = cm_pg_exec(pg, lock, NULL, errstr, errstr_size)) != CM_PG_OK) {
                free(m);
                return from_pg(e);
        }
        err = run_locked(pg, m, count, &n, errstr, errstr_size);
        snprintf(lock, sizeof(lock), "SELECT pg_advisory_unlock(%lld)",
                 CM_MIGRATE_LOCK_KEY);
        cm_pg_exec(pg, lock, NULL, ignored, sizeof(ignored));
        free(m);
        if (applied)
                *applied = n;
        return err;
}

cm_migrate_err_t cm_migrate_run(cm_pg_t *pg, int *applied, char *errstr,
                                size_t errstr_size)
{
        size_t first = 0, count = 0;

        /* cm_embedded_files is sorted by path: the sql/ files are one contiguous run */
        for (size_t i = 0; i < cm_embedded_file_count; i++) {
                if (strncmp(cm_embedded_files[i].path, "sql/", 4))
                        continue;
                if (count == 0)
                        first = i;
                count++;
        }
        return cm_migrate_run_files(pg, &cm_embedded_files[first], count, applied, errstr,
                                    errstr_size);
}
