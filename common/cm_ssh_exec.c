/*
 * cm_ssh_exec.c - one remote command on an open session: stdin fed, stdout and stderr
 * kept up to a bound (the last bytes), exit status or signal, timeout and cancellation
 * ending the remote command.
 *
 * Ending a remote command: libssh2 1.10 cannot send the SSH "signal" request (a channel
 * takes one process request only: "Channel can not be reused"), and closing the channel
 * leaves a command without a pty running. So the command is prefixed with a line that
 * prints the shell's pid on stdout (a marker line, removed from the captured output);
 * sshd starts the shell as a session leader, so that pid is the process group of the
 * command and its children. On timeout or cancel a second channel runs kill -TERM on
 * that group, then -KILL 300 ms later if it is still there, and the command's channel is
 * closed.
 */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libssh2.h>

#include "cm/ssh.h"
#include "cm_ssh_int.h"

#define CM_SSH_DEFAULT_EXEC_MS  600000
#define CM_SSH_DEFAULT_OUTPUT   (64 * 1024)
#define CM_SSH_KILL_MS          1500 /* budget of the kill command */
#define CM_SSH_CHANNEL_CLOSE_MS 1000
#define CM_SSH_MESSAGE_LINES    5
#define CM_SSH_MESSAGE_BYTES    400

typedef struct {
        char *buf;
        size_t len, cap, dropped;
} ring_t;

/* Appends n bytes, keeping the last cap bytes. */
static void ring_add(ring_t *r, const char *data, size_t n)
{
        if (n >= r->cap) {
                r->dropped += r->len + (n - r->cap);
                memcpy(r->buf, data + (n - r->cap), r->cap);
                r->len = r->cap;
                return;
        }
        if (r->len + n > r->cap) {
                size_t drop = r->len + n - r->cap;
                memmove(r->buf, r->buf + drop, r->len - drop);
                r->len -= drop;
                r->dropped += drop;
        }
        memcpy(r->buf + r->len, data, n);
        r->len += n;
}

void cm_ssh_result_free(cm_ssh_result_t *res)
{
        if (res == NULL)
                return;
        free(res->out);
        free(res->err);
        memset(res, 0, sizeof(*res));
}

/* The last lines of buf (up to 5 lines, 400 bytes), joined by " | ", into out. */
static const char *last_lines(const char *buf, size_t len, char *out, size_t out_size)
{
        while (len > 0 &&
               (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
                len--;
        size_t start = len;
        int lines = 0;
        while (start > 0 && len - start < CM_SSH_MESSAGE_BYTES) {
                if (buf[start - 1] == '\n' && ++lines == CM_SSH_MESSAGE_LINES)
                        break;
                start--;
        }
        size_t o = 0;
        for (size_t i = start; i < len && o + 4 < out_size; i++) {
                char c = buf[i];
                if (c == '\r')
                        continue;
                if (c == '\n') {
                        memcpy(out + o, " | ", 3);
                        o += 3;
                } else {
                        out[o++] = (c == '\t' || (unsigned char)c >= 0x20) ? c : '?';
                }
        }
        out[o] = '\0';
        return out;
}

#define CM_SSH_PID_MARKER "cm-exec-pid:"

typedef struct {
        cm_ssh_t *s;
        LIBSSH2_CHANNEL *ch;
        ring_t out, err;
        long pid;        /* the remote shell's pid (its process group), 0 until known */
        int marker_done; /* the first stdout line was looked at */
        char line[64];   /* the first stdout line so far */
        size_t line_len;
} exec_t;

/* Waits like cm_ssh_wait() but ignores the cancellation flag (used while ending a
 * command). */
static void wait_nocancel(cm_ssh_t *s, long deadline)
{
        const atomic_int *saved = s->cancel;
        s->cancel = NULL;
        (void)cm_ssh_wait(s, deadline);
        s->cancel = saved;
}

/* stdout data: the marker line (the first) gives the pid and is dropped; the rest is
 * kept. */
static void add_stdout(exec_t *x, const char *data, size_t n)
{
        while (!x->marker_done && n > 0) {
                char c = *data++;
                n--;
                if (c != '\n' && x->line_len < sizeof(x->line) - 1) {
                        x->line[x->line_len++] = c;
                        continue;
                }
                x->line[x->line_len] = '\0';
                x->marker_done = 1;
                size_t ml = sizeof(CM_SSH_PID_MARKER) - 1;
                if (c == '\n' && strncmp(x->line, CM_SSH_PID_MARKER, ml) == 0) {
                        x->pid = strtol(x->line + ml, NULL, 10);
                } else {
                        /* something printed before the marker (a login script): keep it
                         */
                        ring_add(&x->out, x->line, x->line_len);
                        ring_add(&x->out, &c, 1);
                }
        }
        if (n > 0)
                ring_add(&x->out, data, n);
}

/* Reads what is available of both streams; returns 1 if anything came, 0 if not, a
   libssh2 error code (< 0) on failure; sets *eof when both streams are at their end. */
static int drain(exec_t *x, int *eof)
{
        char buf[16384];
        int got = 0, ends = 0;
        for (int stream = 0; stream < 2; stream++) {
                for (;;) {
                        ssize_t n =
                            libssh2_channel_read_ex(x->ch, stream, buf, sizeof(buf));
                        if (n > 0) {
                                if (stream == 0)
                                        add_stdout(x, buf, (size_t)n);
                                else
                                        ring_add(&x->err, buf, (size_t)n);
                                got = 1;
                                continue;
                        }
                        if (n == 0 && libssh2_channel_eof(x->ch))
                                ends++;
                        if (n < 0 && n != LIBSSH2_ERROR_EAGAIN)
                                return (int)n;
                        break;
                }
        }
        *eof = ends == 2;
        return got;
}

/* Closes ch, stores its exit status or signal in res (if not NULL) and frees it, waiting
   at most a second for the node. */
static void channel_finish(cm_ssh_t *s, LIBSSH2_CHANNEL *ch, cm_ssh_result_t *res)
{
        long deadline = cm_ssh_now_ms() + CM_SSH_CHANNEL_CLOSE_MS;
        while (libssh2_channel_close(ch) == LIBSSH2_ERROR_EAGAIN &&
               cm_ssh_now_ms() < deadline)
                wait_nocancel(s, deadline);
        while (libssh2_channel_wait_closed(ch) == LIBSSH2_ERROR_EAGAIN &&
               cm_ssh_now_ms() < deadline)
                wait_nocancel(s, deadline);
        if (res != NULL) {
                char *sig = NULL;
                size_t siglen = 0;
                res->exit_status = -1;
                res->exit_signal[0] = '\0';
                if (libssh2_channel_get_exit_signal(ch, &sig, &siglen, NULL, NULL, NULL,
                                                    NULL) == 0 &&
                    sig != NULL) {
                        snprintf(res->exit_signal, sizeof(res->exit_signal), "%.*s",
                                 (int)siglen, sig);
                        libssh2_free(s->session, sig);
                } else {
                        res->exit_status = libssh2_channel_get_exit_status(ch);
                }
        }
        while (libssh2_channel_free(ch) == LIBSSH2_ERROR_EAGAIN &&
               cm_ssh_now_ms() < deadline)
                wait_nocancel(s, deadline);
}

/* Opens a session channel, retrying while libssh2 says EAGAIN. */
static LIBSSH2_CHANNEL *open_channel(cm_ssh_t *s, long deadline, cm_ssh_err_t *why)
{
        LIBSSH2_CHANNEL *ch;
        while ((ch = libssh2_channel_open_session(s->session)) == NULL) {
                if (libssh2_session_last_errno(s->session) != LIBSSH2_ERROR_EAGAIN) {
                        *why = CM_SSH_ERR_PROTOCOL;
                        return NULL;
                }
                cm_ssh_err_t w = cm_ssh_wait(s, deadline);
                if (w != CM_SSH_OK) {
                        *why = w;
                        return NULL;
                }
        }
        *why = CM_SSH_OK;
        return ch;
}

/* Starts command (with the pid marker in front) on x->ch. */
static cm_ssh_err_t start(exec_t *x, const char *command, long deadline)
{
        size_t len = strlen(command) + 64;
        char *full = malloc(len);
        if (full == NULL)
                return CM_SSH_ERR_PROTOCOL;
        /* printf and $$ are the same in sh, bash, zsh, ksh; the newline keeps the command
           intact whatever it starts with */
        snprintf(full, len, "printf '" CM_SSH_PID_MARKER "%%s\\n' \"$$\"\n%s", command);
        int r;
        cm_ssh_err_t w = CM_SSH_OK;
        while ((r = libssh2_channel_exec(x->ch, full)) == LIBSSH2_ERROR_EAGAIN)
                if ((w = cm_ssh_wait(x->s, deadline)) != CM_SSH_OK)
                        break;
        free(full);
        if (w != CM_SSH_OK)
                return w;
        return r == 0 ? CM_SSH_OK : CM_SSH_ERR_PROTOCOL;
}

/* Reads and writes until the command's output ends; CM_SSH_OK, a wait's failure or
   CM_SSH_ERR_PROTOCOL (*lerr: libssh2's code). */
static cm_ssh_err_t pump(exec_t *x, const cm_ssh_exec_opts_t *opts, long deadline,
                         int *lerr)
{
        const char *in = opts->stdin_data;
        size_t in_left = in ? opts->stdin_len : 0;
        int eof_sent = 0, eof = 0;
        while (!eof) {
                int progress = 0;
                while (in_left > 0) {
                        ssize_t n = libssh2_channel_write(x->ch, in, in_left);
                        if (n == LIBSSH2_ERROR_EAGAIN)
                                break;
                        if (n < 0) {
                                in_left = 0; /* the command closed its stdin: not fatal */
                                break;
                        }
                        in += n;
                        in_left -= (size_t)n;
                        progress = 1;
                }
                if (in_left == 0 && !eof_sent &&
                    libssh2_channel_send_eof(x->ch) != LIBSSH2_ERROR_EAGAIN)
                        eof_sent = 1;
                int got = drain(x, &eof);
                if (got < 0) {
                        *lerr = got;
                        return CM_SSH_ERR_PROTOCOL;
                }
                if (got || progress || eof)
                        continue;
                cm_ssh_err_t w = cm_ssh_wait(x->s, deadline);
                if (w != CM_SSH_OK)
                        return w;
        }
        return CM_SSH_OK;
}

/*
 * Ends the remote command's process group from a second channel: TERM, then KILL if it
 * is still there 300 ms later. Returns 1 if the kill command ran, 0 if the pid is unknown
 * or the node could not be reached. Ignores the cancellation flag (bounded by 1.5 s).
 */
static int kill_remote(exec_t *x)
{
        if (x->pid <= 1)
                return 0;
        cm_ssh_t *s = x->s;
        const atomic_int *saved = s->cancel;
        s->cancel = NULL;
        long deadline = cm_ssh_now_ms() + CM_SSH_KILL_MS;
        char cmd[512];
        snprintf(
            cmd, sizeof(cmd),
            "kill -TERM -- -%ld 2>/dev/null || exit 0; for i in 1 2 3; do sleep 0.1; "
            "kill -0 -- -%ld 2>/dev/null || exit 0; done; kill -KILL -- -%ld "
            "2>/dev/null; exit 0",
            x->pid, x->pid, x->pid);
        cm_ssh_err_t w;
        int ok = 0;
        LIBSSH2_CHANNEL *ch = open_channel(s, deadline, &w);
        if (ch != NULL) {
                int r;
                while ((r = libssh2_channel_exec(ch, cmd)) == LIBSSH2_ERROR_EAGAIN &&
                       cm_ssh_wait(s, deadline) == CM_SSH_OK)
                        ;
                if (r == 0) {
                        /* wait for the kill command's end: both streams at EOF */
                        char buf[256];
                        while (cm_ssh_now_ms() < deadline) {
                                ssize_t n = libssh2_channel_read(ch, buf, sizeof(buf));
                                ssize_t e =
                                    libssh2_channel_read_stderr(ch, buf, sizeof(buf));
                                if (n > 0 || e > 0)
                                        continue;
                                if (libssh2_channel_eof(ch)) {
                                        ok = 1;
                                        break;
                                }
                                if ((n < 0 && n != LIBSSH2_ERROR_EAGAIN) ||
                                    (e < 0 && e != LIBSSH2_ERROR_EAGAIN))
                                        break;
                                (void)cm_ssh_wait(s, deadline);
                        }
                }
                channel_finish(s, ch, NULL);
        }
        s->cancel = saved;
        return ok;
}

/* The message and code of a command that ran to its end. */
static cm_ssh_err_t judge_exit(const cm_ssh_result_t *res, const char *cmd, char *errstr,
                               size_t errstr_size)
{
        char tail[CM_SSH_MESSAGE_BYTES + 64];
        if (res->exit_status == 0 && res->exit_signal[0] == '\0')
                return CM_SSH_OK;
        if (res->err_len > 0)
                last_lines(res->err, res->err_len, tail, sizeof(tail));
        else if (res->out_len > 0)
                last_lines(res->out, res->out_len, tail, sizeof(tail));
        else
                snprintf(tail, sizeof(tail), "(no output)");
        if (res->exit_signal[0] != '\0')
                snprintf(errstr, errstr_size, "command \"%s\" killed by signal %s: %s",
                         cmd, res->exit_signal, tail);
        else if (res->exit_status < 0)
                snprintf(errstr, errstr_size,
                         "command \"%s\" ended without an exit status: %s", cmd, tail);
        else
                snprintf(errstr, errstr_size, "command \"%s\" exited %d: %s", cmd,
                         res->exit_status, tail);
        return CM_SSH_ERR_EXIT;
}

cm_ssh_err_t cm_ssh_exec(cm_ssh_t *s, const char *command, const cm_ssh_exec_opts_t *opts,
                         cm_ssh_result_t *res, char *errstr, size_t errstr_size)
{
        cm_ssh_exec_opts_t defaults = {0};
        cm_ssh_result_t local = {0};
        char cmd[80], secs[32];
        if (opts == NULL)
                opts = &defaults;
        if (res == NULL)
                res = &local;
        memset(res, 0, sizeof(*res));
        res->exit_status = -1;
        cm_ssh_fmt_command(command, cmd, sizeof(cmd));
        long timeout = opts->timeout_ms > 0 ? opts->timeout_ms : CM_SSH_DEFAULT_EXEC_MS;
        size_t cap = opts->output_max > 0 ? opts->output_max : CM_SSH_DEFAULT_OUTPUT;
        exec_t x = {.s = s,
                    .out = {.buf = malloc(cap + 1), .cap = cap},
                    .err = {.buf = malloc(cap + 1), .cap = cap}};
        long t0 = cm_ssh_now_ms(), deadline = t0 + timeout;
        cm_ssh_err_t rc = CM_SSH_OK;
        int lerr = 0;
        if (x.out.buf == NULL || x.err.buf == NULL) {
                snprintf(errstr, errstr_size, "command \"%s\": out of memory", cmd);
                rc = CM_SSH_ERR_PROTOCOL;
                goto done;
        }
        x.ch = open_channel(s, deadline, &rc);
        if (x.ch == NULL) {
                if (rc == CM_SSH_ERR_TIMEOUT)
                        snprintf(errstr, errstr_size, "command \"%s\" timed out after %s",
                                 cmd, cm_ssh_fmt_secs(timeout, secs, sizeof(secs)));
                else if (rc == CM_SSH_ERR_CANCELED)
                        snprintf(errstr, errstr_size, "command \"%s\" canceled", cmd);
                else
                        snprintf(errstr, errstr_size,
                                 "command \"%s\": cannot open a channel to %s: %s", cmd,
                                 s->peer, cm_ssh_last_error(s));
                goto done;
        }
        rc = start(&x, command, deadline);
        if (rc == CM_SSH_ERR_PROTOCOL) {
                snprintf(errstr, errstr_size,
                         "command \"%s\": %s refused to start it: %s", cmd, s->peer,
                         cm_ssh_last_error(s));
                goto done;
        }
        if (rc == CM_SSH_OK)
                rc = pump(&x, opts, deadline, &lerr);
        if (rc == CM_SSH_ERR_TIMEOUT || rc == CM_SSH_ERR_CANCELED) {
                const char *left = kill_remote(&x)
                                       ? ""
                                       : " (could not signal it on the node: it "
                                         "may still be running)";
                if (rc == CM_SSH_ERR_TIMEOUT)
                        snprintf(errstr, errstr_size,
                                 "command \"%s\" timed out after %s%s", cmd,
                                 cm_ssh_fmt_secs(timeout, secs, sizeof(secs)), left);
                else
                        snprintf(
                            errstr, errstr_size, "command \"%s\" canceled after %s%s",
                            cmd,
                            cm_ssh_fmt_secs(cm_ssh_now_ms() - t0, secs, sizeof(secs)),
                            left);
                goto done;
        }
        if (rc != CM_SSH_OK) {
                snprintf(errstr, errstr_size,
                         "command \"%s\": connection to %s failed: %s (libssh2 error %d)",
                         cmd, s->peer, cm_ssh_last_error(s), lerr);
                goto done;
        }
        channel_finish(s, x.ch, res);
        x.ch = NULL;
done:
        if (x.ch != NULL)
                channel_finish(s, x.ch, NULL);
        if (x.out.buf)
                x.out.buf[x.out.len] = '\0';
        if (x.err.buf)
                x.err.buf[x.err.len] = '\0';
        res->out = x.out.buf;
        res->out_len = x.out.len;
        res->out_dropped = x.out.dropped;
        res->err = x.err.buf;
        res->err_len = x.err.len;
        res->err_dropped = x.err.dropped;
        if (rc == CM_SSH_OK)
                rc = judge_exit(res, cmd, errstr, errstr_size);
        if (res == &local)
                cm_ssh_result_free(&local);
        return rc;
}
