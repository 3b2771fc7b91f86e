/*
 * cm_ssh_sftp.c - uploads over SFTP: parent folders on request, a temporary name in the
 * target folder (created 0600, so a secret is never readable by others while it is
 * written), the exact mode set, flushed, then renamed over the target.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <sodium.h>

#include "cm/ssh.h"
#include "cm_ssh_int.h"

#define CM_SSH_DEFAULT_UPLOAD_MS 600000
#define CM_SSH_CLEANUP_MS        1000

typedef struct {
        cm_ssh_t *s;
        LIBSSH2_SFTP *sftp;
        const char *path;
        long deadline;
        long timeout;
        char *errstr;
        size_t errstr_size;
} upload_t;

static const char *fx_text(unsigned long fx)
{
        switch (fx) {
        case LIBSSH2_FX_NO_SUCH_FILE:
        case LIBSSH2_FX_NO_SUCH_PATH:
                return "no such file or folder";
        case LIBSSH2_FX_PERMISSION_DENIED:
                return "permission denied";
        case LIBSSH2_FX_FILE_ALREADY_EXISTS:
                return "already exists";
        case LIBSSH2_FX_WRITE_PROTECT:
                return "read-only file system";
        case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
        case LIBSSH2_FX_QUOTA_EXCEEDED:
                return "no space left";
        case LIBSSH2_FX_NOT_A_DIRECTORY:
                return "not a folder";
        case LIBSSH2_FX_OP_UNSUPPORTED:
                return "not supported by the server";
        default:
                return "failure";
        }
}

/* Fills the message of a failed step; returns the code. */
static cm_ssh_err_t fail(upload_t *u, cm_ssh_err_t w, const char *step, const char *what)
{
        char secs[32];
        if (w == CM_SSH_ERR_TIMEOUT) {
                snprintf(u->errstr, u->errstr_size,
                         "upload to %s:%s timed out after %s (%s)", u->s->peer, u->path,
                         cm_ssh_fmt_secs(u->timeout, secs, sizeof(secs)), step);
                return w;
        }
        if (w == CM_SSH_ERR_CANCELED) {
                snprintf(u->errstr, u->errstr_size, "upload to %s:%s canceled (%s)",
                         u->s->peer, u->path, step);
                return w;
        }
        const char *reason;
        if (libssh2_session_last_errno(u->s->session) == LIBSSH2_ERROR_SFTP_PROTOCOL &&
            u->sftp != NULL)
                reason = fx_text(libssh2_sftp_last_error(u->sftp));
        else
                reason = cm_ssh_last_error(u->s);
        snprintf(u->errstr, u->errstr_size, "upload to %s:%s: %s %s: %s", u->s->peer,
                 u->path, step, what, reason);
        return w == CM_SSH_OK ? CM_SSH_ERR_SFTP : w;
}

/* Runs a libssh2 call that returns int until it stops saying EAGAIN. */
#define RETRY(u, call, rcvar, werr)                                                      \
        do {                                                                             \
                (werr) = CM_SSH_OK;                                                      \
                while (((rcvar) = (call)) == LIBSSH2_ERROR_EAGAIN)                       \
                        if (((werr) = cm_ssh_wait((u)->s, (u)->deadline)) != CM_SSH_OK)  \
                                break;                                                   \
        } while (0)

/* 1 if path is a folder, 0 if it does not exist or is not one, -1 on a wait failure. */
static int is_dir(upload_t *u, const char *dir, cm_ssh_err_t *w)
{
        LIBSSH2_SFTP_ATTRIBUTES a;
        int rc;
        RETRY(u, libssh2_sftp_stat(u->sftp, dir, &a), rc, *w);
        if (*w != CM_SSH_OK)
                return -1;
        return rc == 0 && (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
               LIBSSH2_SFTP_S_ISDIR(a.permissions);
}

/* mkdir -p of the folder of u->path (given as dir, of length len). */
static cm_ssh_err_t make_parents(upload_t *u, char *dir)
{
        cm_ssh_err_t w;
        int d = is_dir(u, dir, &w);
        if (d != 0)
                return d > 0 ? CM_SSH_OK : fail(u, w, "checking", dir);
        for (char *p = dir + 1;; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                char saved = *p;
                *p = '\0';
                int rc;
                RETRY(u, libssh2_sftp_mkdir(u->sftp, dir, 0755), rc, w);
                if (w != CM_SSH_OK)
                        return fail(u, w, "creating folder", dir);
                /* an existing folder fails mkdir: fine, if it is one */
                if (rc != 0) {
                        unsigned long fx = libssh2_sftp_last_error(u->sftp);
                        int d2 = is_dir(u, dir, &w);
                        if (d2 < 0)
                                return fail(u, w, "creating folder", dir);
                        if (d2 == 0) {
                                snprintf(u->errstr, u->errstr_size,
                                         "upload to %s:%s: creating folder %s: %s",
                                         u->s->peer, u->path, dir, fx_text(fx));
                                return CM_SSH_ERR_SFTP;
                        }
                }
                *p = saved;
                if (saved == '\0')
                        return CM_SSH_OK;
        }
}

static void shell_quote(const char *in, char *out, size_t out_size)
{
        size_t o = 0;
        out[o++] = '\'';
        for (; *in && o + 6 < out_size; in++) {
                if (*in == '\'') {
                        memcpy(out + o, "'\\''", 4);
                        o += 4;
                } else {
                        out[o++] = *in;
                }
        }
        out[o++] = '\'';
        out[o] = '\0';
}

/* SFTP v3 (OpenSSH) refuses to rename over an existing file: rename(2) through a shell.
 */
static cm_ssh_err_t rename_by_exec(upload_t *u, const char *tmp)
{
        char qa[4200], qb[4200], cmd[8500], err[512];
        shell_quote(tmp, qa, sizeof(qa));
        shell_quote(u->path, qb, sizeof(qb));
        snprintf(cmd, sizeof(cmd), "mv -f -- %s %s", qa, qb);
        long left = u->deadline - cm_ssh_now_ms();
        cm_ssh_exec_opts_t o = {.timeout_ms = left > 1000 ? (int)left : 1000};
        cm_ssh_err_t rc = cm_ssh_exec(u->s, cmd, &o, NULL, err, sizeof(err));
        if (rc != CM_SSH_OK)
                snprintf(u->errstr, u->errstr_size,
                         "upload to %s:%s: renaming into place: %s", u->s->peer, u->path,
                         err);
        return rc;
}

static cm_ssh_err_t write_all(upload_t *u, LIBSSH2_SFTP_HANDLE *h, const char *data,
                              size_t len, int mode, const char *tmp)
{
        cm_ssh_err_t w = CM_SSH_OK;
        while (len > 0) {
                ssize_t n = libssh2_sftp_write(h, data, len);
                if (n == LIBSSH2_ERROR_EAGAIN) {
                        if ((w = cm_ssh_wait(u->s, u->deadline)) != CM_SSH_OK)
                                return fail(u, w, "writing", tmp);
                        continue;
                }
                if (n < 0)
                        return fail(u, CM_SSH_OK, "writing", tmp);
                data += n;
                len -= (size_t)n;
        }
        LIBSSH2_SFTP_ATTRIBUTES a = {.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS,
                                     .permissions =
                                         LIBSSH2_SFTP_S_IFREG | (unsigned)mode};
        int rc;
        RETRY(u, libssh2_sftp_fsetstat(h, &a), rc, w);
        if (w != CM_SSH_OK || rc != 0)
                return fail(u, w, "setting the mode of", tmp);
        RETRY(u, libssh2_sftp_fsync(h), rc, w);
        if (w != CM_SSH_OK)
                return fail(u, w, "flushing", tmp);
        /* rc != 0: the server lacks fsync@openssh.com; the rename still orders nothing
           partial under the target name. */
        return CM_SSH_OK;
}

static cm_ssh_err_t upload_file(upload_t *u, const char *tmp, const void *data,
                                size_t len, int mode, int *tmp_exists)
{
        cm_ssh_err_t w;
        LIBSSH2_SFTP_HANDLE *h;
        while ((h = libssh2_sftp_open_ex(u->sftp, tmp, (unsigned)strlen(tmp),
                                         LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT |
                                             LIBSSH2_FXF_EXCL,
                                         0600, LIBSSH2_SFTP_OPENFILE)) == NULL) {
                if (libssh2_session_last_errno(u->s->session) != LIBSSH2_ERROR_EAGAIN)
                        return fail(u, CM_SSH_OK, "creating", tmp);
                if ((w = cm_ssh_wait(u->s, u->deadline)) != CM_SSH_OK)
                        return fail(u, w, "creating", tmp);
        }
        *tmp_exists = 1;
        cm_ssh_err_t rc = write_all(u, h, data, len, mode, tmp);
        int crc;
        long end = cm_ssh_now_ms() + CM_SSH_CLEANUP_MS;
        while ((crc = libssh2_sftp_close_handle(h)) == LIBSSH2_ERROR_EAGAIN &&
               cm_ssh_now_ms() < end)
                (void)cm_ssh_wait(u->s, end);
        if (rc == CM_SSH_OK && crc != 0)
                rc = fail(u, CM_SSH_OK, "closing", tmp);
        if (rc != CM_SSH_OK)
                return rc;
        RETRY(u,
              libssh2_sftp_rename_ex(
                  u->sftp, tmp, (unsigned)strlen(tmp), u->path, (unsigned)strlen(u->path),
                  LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC |
                      LIBSSH2_SFTP_RENAME_NATIVE),
              crc, w);
        if (w != CM_SSH_OK)
                return fail(u, w, "renaming", tmp);
        if (crc == 0) {
                *tmp_exists = 0;
                return CM_SSH_OK;
        }
        rc = rename_by_exec(u, tmp);
        if (rc == CM_SSH_OK)
                *tmp_exists = 0;
        return rc;
}

cm_ssh_err_t cm_ssh_upload(cm_ssh_t *s, const char *path, const void *data, size_t len,
                           int mode, int flags, int timeout_ms, char *errstr,
                           size_t errstr_size)
{
        upload_t u = {.s = s, .path = path, .errstr = errstr, .errstr_size = errstr_size};
        u.timeout = timeout_ms > 0 ? timeout_ms : CM_SSH_DEFAULT_UPLOAD_MS;
        u.deadline = cm_ssh_now_ms() + u.timeout;
        size_t plen = path ? strlen(path) : 0;
        const char *slash = path ? strrchr(path, '/') : NULL;
        if (path == NULL || path[0] != '/' || slash == NULL || slash[1] == '\0' ||
            plen > 4000 || (mode & ~07777) != 0) {
                snprintf(
                    errstr, errstr_size,
                    "upload to %s:%s: path must be absolute and name a file, mode within "
                    "07777 (got %o)",
                    s->peer, path ? path : "(null)", (unsigned)mode);
                return CM_SSH_ERR_ARG;
        }
        cm_ssh_err_t w;
        while ((u.sftp = libssh2_sftp_init(s->session)) == NULL) {
                if (libssh2_session_last_errno(s->session) != LIBSSH2_ERROR_EAGAIN)
                        return fail(&u, CM_SSH_OK, "starting", "SFTP");
                if ((w = cm_ssh_wait(s, u.deadline)) != CM_SSH_OK)
                        return fail(&u, w, "starting", "SFTP");
        }
        char dir[4096], tmp[4200];
        unsigned char rnd[6];
        char hex[13];
        size_t dlen = slash == path ? 1 : (size_t)(slash - path);
        memcpy(dir, path, dlen);
        dir[dlen] = '\0';
        randombytes_buf(rnd, sizeof(rnd));
        sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
        snprintf(tmp, sizeof(tmp), "%s/.%s.cm-tmp-%s", dlen == 1 ? "" : dir, slash + 1,
                 hex);

        cm_ssh_err_t rc = CM_SSH_OK;
        int tmp_exists = 0;
        if (flags & CM_SSH_UPLOAD_MKDIRS)
                rc = make_parents(&u, dir);
        if (rc == CM_SSH_OK)
                rc = upload_file(&u, tmp, data, len, mode, &tmp_exists);
        long end = cm_ssh_now_ms() + CM_SSH_CLEANUP_MS;
        if (tmp_exists) {
                /* best effort: a canceled or failed upload leaves no temporary file */
                u.deadline = end;
                const atomic_int *saved = s->cancel;
                s->cancel = NULL;
                int urc;
                RETRY(&u, libssh2_sftp_unlink(u.sftp, tmp), urc, w);
                (void)urc;
                s->cancel = saved;
        }
        while (libssh2_sftp_shutdown(u.sftp) == LIBSSH2_ERROR_EAGAIN &&
               cm_ssh_now_ms() < end)
                (void)cm_ssh_wait(s, end);
        return rc;
}
