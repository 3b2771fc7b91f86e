/*
 * cm_ssh.c - SSH sessions to the nodes: connect with a timeout, handshake, host key check
 * (pinned, or trusted on first use and handed back), public-key authentication from the
 * in-memory cluster key. libssh2 runs non-blocking; every wait is a poll of at most 100
 * ms between which the deadline and the cancellation flag are checked.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libssh2.h>
#include <sodium.h>

#include "cm/ssh.h"
#include "cm_ssh_int.h"

#define CM_SSH_DEFAULT_CONNECT_MS 10000
#define CM_SSH_SLICE_MS           100
#define CM_SSH_CLOSE_MS           1000

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_result = -1;

static void global_init(void)
{
        /* libssh2_init is not thread-safe, hence the once. */
        if (sodium_init() >= 0 && libssh2_init(0) == 0)
                global_result = 0;
}

int cm_ssh_global_init(void)
{
        pthread_once(&global_once, global_init);
        return global_result;
}

long cm_ssh_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

int cm_ssh_canceled(const cm_ssh_t *s)
{
        return s->cancel != NULL && atomic_load(s->cancel) != 0;
}

/* Polls fd for events up to 100 ms, never past deadline; checks cancel first. */
static cm_ssh_err_t poll_slice(int fd, short events, long deadline,
                               const atomic_int *cancel)
{
        if (cancel != NULL && atomic_load(cancel) != 0)
                return CM_SSH_ERR_CANCELED;
        long now = cm_ssh_now_ms(), slice = CM_SSH_SLICE_MS;
        if (deadline > 0) {
                if (now >= deadline)
                        return CM_SSH_ERR_TIMEOUT;
                if (deadline - now < slice)
                        slice = deadline - now;
        }
        struct pollfd p = {.fd = fd, .events = events};
        (void)poll(&p, 1, (int)slice);
        return CM_SSH_OK;
}

cm_ssh_err_t cm_ssh_wait(cm_ssh_t *s, long deadline_ms)
{
        int dir = libssh2_session_block_directions(s->session);
        short events = 0;
        if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
                events |= POLLIN;
        if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
                events |= POLLOUT;
        return poll_slice(s->fd, events ? events : POLLIN, deadline_ms, s->cancel);
}

const char *cm_ssh_last_error(cm_ssh_t *s)
{
        char *msg = NULL;
        libssh2_session_last_error(s->session, &msg, NULL, 0);
        return msg && *msg ? msg : "unknown libssh2 error";
}

const char *cm_ssh_fmt_secs(long ms, char *out, size_t out_size)
{
        if (ms % 1000 == 0)
                snprintf(out, out_size, "%ld s", ms / 1000);
        else
                snprintf(out, out_size, "%.1f s", (double)ms / 1000.0);
        return out;
}

const char *cm_ssh_fmt_command(const char *command, char *out, size_t out_size)
{
        size_t n = strlen(command), max = 60;
        if (n > max)
                snprintf(out, out_size, "%.*s...", (int)max, command);
        else
                snprintf(out, out_size, "%s", command);
        /* one line in a message: newlines of a script become spaces */
        for (char *p = out; *p; p++)
                if (*p == '\n' || *p == '\r' || *p == '\t')
                        *p = ' ';
        return out;
}

/* strerror(err) with a lower-case first letter, as messages continue a sentence. */
static const char *errno_text(int err, char *buf, size_t size)
{
        snprintf(buf, size, "%s", strerror(err));
        buf[0] = (char)tolower((unsigned char)buf[0]);
        return buf;
}

/* Non-blocking TCP connect to every address of host in turn, until one answers. */
static cm_ssh_err_t tcp_connect(cm_ssh_t *s, const char *host, int port, long deadline,
                                long budget_ms, char *errstr, size_t errstr_size)
{
        char portstr[16], secs[32], etxt[128];
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        snprintf(portstr, sizeof(portstr), "%d", port);
        int grc = getaddrinfo(host, portstr, &hints, &res);
        if (grc != 0) {
                snprintf(errstr, errstr_size, "connect %s: cannot resolve host: %s",
                         s->peer,
                         grc == EAI_SYSTEM ? errno_text(errno, etxt, sizeof(etxt))
                                           : gai_strerror(grc));
                return CM_SSH_ERR_CONNECT;
        }
        int last_err = ECONNREFUSED;
        cm_ssh_err_t rc = CM_SSH_ERR_CONNECT;
        for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
                int fd =
                    socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                           ai->ai_protocol);
                if (fd < 0) {
                        last_err = errno;
                        continue;
                }
                int err = 0;
                if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
                        err = errno;
                        while (err == EINPROGRESS) {
                                cm_ssh_err_t w =
                                    poll_slice(fd, POLLOUT, deadline, s->cancel);
                                if (w != CM_SSH_OK) {
                                        close(fd);
                                        rc = w;
                                        goto out;
                                }
                                struct pollfd p = {.fd = fd, .events = POLLOUT};
                                if (poll(&p, 1, 0) == 1) {
                                        socklen_t len = sizeof(err);
                                        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
                                                       &len))
                                                err = errno;
                                }
                        }
                }
                if (err == 0) {
                        s->fd = fd;
                        freeaddrinfo(res);
                        return CM_SSH_OK;
                }
                last_err = err;
                close(fd);
        }
        snprintf(errstr, errstr_size, "connect %s: %s", s->peer,
                 errno_text(last_err, etxt, sizeof(etxt)));
        freeaddrinfo(res);
        return CM_SSH_ERR_CONNECT;
out:
        freeaddrinfo(res);
        if (rc == CM_SSH_ERR_TIMEOUT)
                snprintf(errstr, errstr_size, "timeout after %s connecting to %s",
                         cm_ssh_fmt_secs(budget_ms, secs, sizeof(secs)), s->peer);
        else
                snprintf(errstr, errstr_size, "connecting to %s canceled", s->peer);
        return rc;
}

/* The message of a wait that ended the connection phase (timeout or cancel). */
static cm_ssh_err_t connect_wait_failed(cm_ssh_t *s, cm_ssh_err_t w, long budget_ms,
                                        const char *stage, char *errstr,
                                        size_t errstr_size)
{
        char secs[32];
        if (w == CM_SSH_ERR_TIMEOUT)
                snprintf(errstr, errstr_size, "timeout after %s connecting to %s (%s)",
                         cm_ssh_fmt_secs(budget_ms, secs, sizeof(secs)), s->peer, stage);
        else
                snprintf(errstr, errstr_size, "connecting to %s canceled (%s)", s->peer,
                         stage);
        return w;
}

/* Reads the offered host key into s->host_key and checks it against pin (NULL: TOFU). */
static cm_ssh_err_t check_host_key(cm_ssh_t *s, const char *pin, char *errstr,
                                   size_t errstr_size)
{
        size_t len = 0;
        int ktype = 0;
        const char *blob = libssh2_session_hostkey(s->session, &len, &ktype);
        const unsigned char *p = (const unsigned char *)blob;
        if (blob == NULL || len < 4) {
                snprintf(errstr, errstr_size, "%s offered no host key", s->peer);
                return CM_SSH_ERR_PROTOCOL;
        }
        uint32_t tlen = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
                        ((uint32_t)p[2] << 8) | p[3];
        if (tlen == 0 || tlen > len - 4 || tlen > 64) {
                snprintf(errstr, errstr_size, "%s offered a malformed host key", s->peer);
                return CM_SSH_ERR_PROTOCOL;
        }
        size_t b64_size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
        s->host_key = malloc(tlen + 1 + b64_size);
        if (s->host_key == NULL) {
                snprintf(errstr, errstr_size, "out of memory");
                return CM_SSH_ERR_PROTOCOL;
        }
        memcpy(s->host_key, p + 4, tlen);
        s->host_key[tlen] = ' ';
        sodium_bin2base64(s->host_key + tlen + 1, b64_size, p, len,
                          sodium_base64_VARIANT_ORIGINAL);
        if (pin == NULL) {
                s->host_key_new = 1;
                return CM_SSH_OK;
        }
        char ptype[64], perr[200], fp_pin[64], fp_off[64];
        unsigned char *pblob;
        size_t plen;
        if (cm_ssh_pubkey_parse(pin, ptype, sizeof(ptype), &pblob, &plen, perr,
                                sizeof(perr)) != 0) {
                snprintf(errstr, errstr_size,
                         "pinned host key for %s: %s; refusing to connect", s->peer,
                         perr);
                return CM_SSH_ERR_HOSTKEY;
        }
        int same = plen == len && memcmp(pblob, blob, len) == 0;
        cm_ssh_fingerprint(pblob, plen, fp_pin, sizeof(fp_pin));
        free(pblob);
        if (same)
                return CM_SSH_OK;
        cm_ssh_fingerprint(p, len, fp_off, sizeof(fp_off));
        if (strlen(ptype) == tlen && memcmp(ptype, p + 4, tlen) == 0)
                snprintf(
                    errstr, errstr_size,
                    "host key for %s changed: pinned %s, offered %s; refusing to connect",
                    s->peer, fp_pin, fp_off);
        else
                snprintf(errstr, errstr_size,
                         "host key for %s changed: pinned %s (%s), offered %s (%.*s); "
                         "refusing to connect",
                         s->peer, fp_pin, ptype, fp_off, (int)tlen, (const char *)p + 4);
        return CM_SSH_ERR_HOSTKEY;
}

static cm_ssh_err_t authenticate(cm_ssh_t *s, const cm_ssh_key_t *key, long deadline,
                                 long budget_ms, char *errstr, size_t errstr_size)
{
        const char *kname = cm_ssh_key_type_name(cm_ssh_key_type(key));
        unsigned int ulen = (unsigned int)strlen(s->user);
        char *methods;
        for (;;) {
                methods = libssh2_userauth_list(s->session, s->user, ulen);
                if (methods != NULL || libssh2_userauth_authenticated(s->session))
                        break;
                if (libssh2_session_last_errno(s->session) != LIBSSH2_ERROR_EAGAIN) {
                        snprintf(errstr, errstr_size,
                                 "auth failed for user \"%s\" on %s: %s", s->user,
                                 s->peer, cm_ssh_last_error(s));
                        return CM_SSH_ERR_AUTH;
                }
                cm_ssh_err_t w = cm_ssh_wait(s, deadline);
                if (w != CM_SSH_OK)
                        return connect_wait_failed(s, w, budget_ms, "authentication",
                                                   errstr, errstr_size);
        }
        if (methods == NULL)
                return CM_SSH_OK; /* the node let the user in with "none" */
        if (strstr(methods, "publickey") == NULL) {
                snprintf(
                    errstr, errstr_size,
                    "auth failed for user \"%s\" on %s: the node accepts only %s, not "
                    "publickey",
                    s->user, s->peer, methods);
                return CM_SSH_ERR_AUTH;
        }
        size_t klen;
        const unsigned char *kbytes = cm_ssh_key_bytes(key, &klen);
        int rc;
        while ((rc = libssh2_userauth_publickey_frommemory(
                    s->session, s->user, ulen, NULL, 0, (const char *)kbytes, klen,
                    NULL)) == LIBSSH2_ERROR_EAGAIN) {
                cm_ssh_err_t w = cm_ssh_wait(s, deadline);
                if (w != CM_SSH_OK)
                        return connect_wait_failed(s, w, budget_ms, "authentication",
                                                   errstr, errstr_size);
        }
        if (rc == 0)
                return CM_SSH_OK;
        if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED ||
            rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED)
                snprintf(errstr, errstr_size,
                         "auth failed for user \"%s\" with the cluster's %s key on %s",
                         s->user, kname, s->peer);
        else
                snprintf(
                    errstr, errstr_size,
                    "auth failed for user \"%s\" with the cluster's %s key on %s: %s",
                    s->user, kname, s->peer, cm_ssh_last_error(s));
        return CM_SSH_ERR_AUTH;
}

cm_ssh_err_t cm_ssh_connect(const cm_ssh_target_t *t, cm_ssh_t **out, char *errstr,
                            size_t errstr_size)
{
        *out = NULL;
        int port = t->port == 0 ? 22 : t->port;
        if (t->host == NULL || t->host[0] == '\0' || port < 1 || port > 65535) {
                snprintf(errstr, errstr_size, "SSH target: host \"%s\" port %d: %s",
                         t->host ? t->host : "", t->port,
                         (t->host == NULL || t->host[0] == '\0')
                             ? "host is empty"
                             : "port out of 1..65535");
                return CM_SSH_ERR_ARG;
        }
        if (t->user == NULL || t->user[0] == '\0' || strlen(t->user) >= 128) {
                snprintf(errstr, errstr_size,
                         "SSH target %s: user \"%s\" is empty or too long", t->host,
                         t->user ? t->user : "");
                return CM_SSH_ERR_ARG;
        }
        if (t->key == NULL) {
                snprintf(errstr, errstr_size, "SSH target %s: no key given", t->host);
                return CM_SSH_ERR_KEY;
        }
        if (cm_ssh_global_init() != 0) {
                snprintf(errstr, errstr_size, "libssh2 or libsodium failed to initialize");
                return CM_SSH_ERR_PROTOCOL;
        }
        cm_ssh_t *s = calloc(1, sizeof(*s));
        if (s == NULL) {
                snprintf(errstr, errstr_size, "out of memory");
                return CM_SSH_ERR_PROTOCOL;
        }
        s->fd = -1;
        s->cancel = t->cancel;
        cm_ssh_format_peer(t->host, port, s->peer, sizeof(s->peer));
        snprintf(s->user, sizeof(s->user), "%s", t->user);
        long budget =
            t->connect_timeout_ms > 0 ? t->connect_timeout_ms : CM_SSH_DEFAULT_CONNECT_MS;
        long deadline = cm_ssh_now_ms() + budget;

        cm_ssh_err_t rc =
            tcp_connect(s, t->host, port, deadline, budget, errstr, errstr_size);
        if (rc != CM_SSH_OK)
                goto fail;
        s->session = libssh2_session_init();
        if (s->session == NULL) {
                snprintf(errstr, errstr_size, "connect %s: libssh2 session init failed",
                         s->peer);
                rc = CM_SSH_ERR_PROTOCOL;
                goto fail;
        }
        libssh2_session_set_blocking(s->session, 0);
        if (t->host_key != NULL) {
                /* Ask for the pinned key's type, so a node with several host keys offers
                   the one we know. */
                char ptype[64];
                size_t n = strcspn(t->host_key + strspn(t->host_key, " "), " ");
                if (n > 0 && n < sizeof(ptype)) {
                        memcpy(ptype, t->host_key + strspn(t->host_key, " "), n);
                        ptype[n] = '\0';
                        (void)libssh2_session_method_pref(s->session,
                                                          LIBSSH2_METHOD_HOSTKEY, ptype);
                }
        }
        int hrc;
        while ((hrc = libssh2_session_handshake(s->session, s->fd)) ==
               LIBSSH2_ERROR_EAGAIN) {
                cm_ssh_err_t w = cm_ssh_wait(s, deadline);
                if (w != CM_SSH_OK) {
                        rc = connect_wait_failed(s, w, budget, "SSH handshake", errstr,
                                                 errstr_size);
                        goto fail;
                }
        }
        if (hrc != 0) {
                snprintf(errstr, errstr_size, "SSH handshake with %s failed: %s%s",
                         s->peer, cm_ssh_last_error(s),
                         t->host_key ? " (does the node still offer the pinned host key "
                                       "type?)"
                                     : "");
                rc = CM_SSH_ERR_PROTOCOL;
                goto fail;
        }
        rc = check_host_key(s, t->host_key, errstr, errstr_size);
        if (rc != CM_SSH_OK)
                goto fail;
        rc = authenticate(s, t->key, deadline, budget, errstr, errstr_size);
        if (rc != CM_SSH_OK)
                goto fail;
        *out = s;
        return CM_SSH_OK;
fail:
        cm_ssh_close(s);
        return rc;
}

const char *cm_ssh_host_key(const cm_ssh_t *s)
{
        return s->host_key;
}

int cm_ssh_host_key_is_new(const cm_ssh_t *s)
{
        return s->host_key_new;
}

const char *cm_ssh_peer(const cm_ssh_t *s)
{
        return s->peer;
}

void cm_ssh_close(cm_ssh_t *s)
{
        if (s == NULL)
                return;
        if (s->session != NULL) {
                /* Blocking with a timeout: a dead node costs at most about a second. */
                libssh2_session_set_timeout(s->session, CM_SSH_CLOSE_MS);
                libssh2_session_set_blocking(s->session, 1);
                (void)libssh2_session_disconnect(s->session, "closed by cm");
                (void)libssh2_session_free(s->session);
        }
        if (s->fd >= 0)
                close(s->fd);
        free(s->host_key);
        free(s);
}
