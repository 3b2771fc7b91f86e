/*
 * cm_ssh_int.h - what cm_ssh.c, cm_ssh_key.c, cm_ssh_exec.c, cm_ssh_sftp.c and
 * cm_ssh_pool.c share. Not installed.
 */
#ifndef CM_SSH_INT_H
#define CM_SSH_INT_H

#include <libssh2.h>

#include "cm/ssh.h"

struct cm_ssh_s {
        LIBSSH2_SESSION *session;
        int fd;
        char peer[300]; /* host:port */
        char user[128];
        char *host_key;   /* "type base64" offered by the node */
        int host_key_new; /* 1: no pin was given, host_key is to be pinned */
        const atomic_int *cancel;
};

/* libssh2_init and sodium_init, once per process (pthread_once); 0, or -1 if either
   failed. Thread-safe. */
int cm_ssh_global_init(void);

/* The key's PEM bytes (owned by key). */
const unsigned char *cm_ssh_key_bytes(const cm_ssh_key_t *key, size_t *len);

/* Monotonic milliseconds. */
long cm_ssh_now_ms(void);

/* 1 if the session's cancellation flag is raised. */
int cm_ssh_canceled(const cm_ssh_t *s);

/*
 * After libssh2 said EAGAIN: waits for the socket in the directions libssh2 is blocked
 * on, at most 100 ms and never past deadline_ms (monotonic; 0: none). Returns CM_SSH_OK
 * to try again, CM_SSH_ERR_CANCELED or CM_SSH_ERR_TIMEOUT.
 */
cm_ssh_err_t cm_ssh_wait(cm_ssh_t *s, long deadline_ms);

/* libssh2's last error message of the session (static to the session). */
const char *cm_ssh_last_error(cm_ssh_t *s);

/* "5 s" or "0.3 s" into out. */
const char *cm_ssh_fmt_secs(long ms, char *out, size_t out_size);

/* The command as messages show it: quoted-safe, cut at 60 characters with "...". */
const char *cm_ssh_fmt_command(const char *command, char *out, size_t out_size);

#endif
