/*
 * cm/ssh.h - the SSH executor of the zke jobs (DESIGN §7), on libssh2.
 *
 * A session (cm_ssh_t) is one authenticated SSH connection to one node. It runs commands
 * with a timeout, bounded output capture and a cancellation flag, and uploads files over
 * SFTP. cm_ssh_parallel() runs a function per node on a bounded number of threads and
 * collects every node's result.
 *
 * Keys: the cluster's private key (ed25519 or ECDSA, unencrypted, OpenSSH or PEM format)
 * is loaded once into a cm_ssh_key_t (libsodium guarded memory, zeroed on free) and
 * shared read-only by every session. RSA keys are refused before any connection: Debian
 * 12's libssh2 1.10 signs with them only as ssh-rsa (SHA-1), which OpenSSH 8.8 and later
 * refuse.
 *
 * Host keys: a node's key is given as an OpenSSH one-line "type base64" (what
 * cluster_state stores), or NULL on the first connection: the key offered is then trusted
 * and handed to the caller to pin. A key that differs from the pin is refused, naming
 * both SHA256 fingerprints. The check is never skipped.
 *
 * Every blocking step polls in slices of at most 100 ms and checks the cancellation flag
 * between slices, so a canceled job lets go of a node within about 1.7 s (the remote
 * command is killed first, see cm_ssh_exec()).
 *
 * Error messages never hold key material. Those of connections and uploads name the node
 * as host:port; those of commands do not (the caller says which node ran it, as
 * cm_ssh_parallel_summary() does):
 *   connect 127.0.0.12:22: connection refused
 *   timeout after 10 s connecting to 127.0.0.12:22
 *   host key for 127.0.0.12:22 changed: pinned SHA256:..., offered SHA256:...;
 *       refusing to connect                                         (one line)
 *   auth failed for user "cm" with the cluster's ed25519 key on 127.0.0.12:22
 *   command "docker ps" exited 3: <last stderr lines, joined by " | ">
 *   command "sleep 100" timed out after 5 s
 *
 * Thread safety: everything here may be called from any thread; one cm_ssh_t is used by
 * one thread at a time (libssh2 sessions are not thread-safe), a cm_ssh_key_t by any
 * number.
 */
#ifndef CM_SSH_H
#define CM_SSH_H

#include <stdatomic.h>
#include <stddef.h>

typedef enum {
        CM_SSH_OK = 0,
        CM_SSH_ERR_KEY,     /* the private key is unusable (RSA, encrypted, malformed) */
        CM_SSH_ERR_CONNECT, /* TCP: refused, unreachable, unresolvable */
        CM_SSH_ERR_TIMEOUT, /* connect, handshake, auth, a command or an upload ran out */
        CM_SSH_ERR_HOSTKEY, /* the host key differs from the pin (or the pin is bad) */
        CM_SSH_ERR_AUTH,    /* public-key authentication refused */
        CM_SSH_ERR_PROTOCOL, /* SSH handshake, channel or transport failure */
        CM_SSH_ERR_EXIT,     /* the command exited non-zero or was killed by a signal */
        CM_SSH_ERR_SFTP, /* an SFTP operation failed (permission, no such folder ...) */
        CM_SSH_ERR_CANCELED, /* the cancellation flag was raised */
        CM_SSH_ERR_ARG,      /* invalid argument (e.g. empty host, port out of range) */
} cm_ssh_err_t;

/* A static description of err. Thread-safe. */
const char *cm_ssh_err2str(cm_ssh_err_t err);

/* ---- keys and fingerprints (pure helpers) ---- */

typedef enum {
        CM_SSH_KEY_UNKNOWN = 0,
        CM_SSH_KEY_ED25519,
        CM_SSH_KEY_ECDSA,
} cm_ssh_key_type_t;

/* "ed25519", "ECDSA", "unknown" (as messages name a key). Static. */
const char *cm_ssh_key_type_name(cm_ssh_key_type_t type);

/*
 * 0 if key is usable by this executor (unencrypted ed25519 or ECDSA); otherwise -1 with
 * the reason in errstr, e.g. for RSA the reason of DESIGN §7 and what to use instead. The
 * message never holds key material. Thread-safe.
 */
int cm_ssh_key_check(const unsigned char *key, size_t len, char *errstr,
                     size_t errstr_size);

/*
 * Writes the OpenSSH SHA256 fingerprint of a public key blob (the SSH wire encoding):
 * "SHA256:" + unpadded base64 of its SHA-256, 50 characters. Returns 0, or -1 if out is
 * smaller than 51 bytes. Thread-safe.
 */
int cm_ssh_fingerprint(const unsigned char *blob, size_t len, char *out, size_t out_size);

/*
 * Parses an OpenSSH one-line public key "type base64 [comment]" into its type (copied
 * into type, at most type_size-1 bytes) and blob (malloc'd, caller frees). Checks that
 * the type inside the blob equals the leading type. Returns 0, or -1 with a reason in
 * errstr.
 */
int cm_ssh_pubkey_parse(const char *line, char *type, size_t type_size,
                        unsigned char **blob, size_t *blob_len, char *errstr,
                        size_t errstr_size);

/* Fingerprint of an OpenSSH one-line public key; 0, or -1 if it does not parse. */
int cm_ssh_pubkey_fingerprint(const char *line, char *out, size_t out_size);

/*
 * Formats host and port as "host:port", or "[host]:port" for an IPv6 address, the way
 * every message of this module names a node. Returns out.
 */
char *cm_ssh_format_peer(const char *host, int port, char *out, size_t out_size);

/* ---- the cluster key ---- */

typedef struct cm_ssh_key_s cm_ssh_key_t;

/*
 * Loads a private key (cm_ssh_key_check() rules) into guarded memory. key is copied; the
 * caller may zero its own copy right away. Returns CM_SSH_OK and *out (freed with
 * cm_ssh_key_free()), or CM_SSH_ERR_KEY with the reason. Thread-safe.
 */
cm_ssh_err_t cm_ssh_key_new(const unsigned char *key, size_t len, cm_ssh_key_t **out,
                            char *errstr, size_t errstr_size);

/* The key's type. */
cm_ssh_key_type_t cm_ssh_key_type(const cm_ssh_key_t *key);

/* Zeroes and frees key. NULL is ignored. */
void cm_ssh_key_free(cm_ssh_key_t *key);

/* ---- sessions ---- */

typedef struct cm_ssh_s cm_ssh_t;

typedef struct {
        const char *host;        /* IPv4, IPv6 or DNS name (resolved without a timeout) */
        int port;                /* 1..65535; 0 means 22 */
        const char *user;        /* remote user */
        const cm_ssh_key_t *key; /* borrowed for the duration of cm_ssh_connect() */
        const char *host_key;    /* pinned "type base64", or NULL: trust the first key */
        int connect_timeout_ms;  /* TCP connect + handshake + auth; 0 means 10 s */
        const atomic_int *cancel; /* non-zero: give up at the next check; may be NULL */
} cm_ssh_target_t;

/*
 * Connects, checks the host key and authenticates. On CM_SSH_OK *out is an open session
 * the caller closes with cm_ssh_close(); on error *out is NULL and errstr holds the
 * message. The cancellation flag of t is kept for the session's later calls (it must
 * outlive the session).
 */
cm_ssh_err_t cm_ssh_connect(const cm_ssh_target_t *t, cm_ssh_t **out, char *errstr,
                            size_t errstr_size);

/*
 * The host key the node offered, as "type base64" (owned by s). When the target had no
 * pin this is the key to pin (cluster_state.host_keys); cm_ssh_host_key_is_new() then
 * says 1.
 */
const char *cm_ssh_host_key(const cm_ssh_t *s);
int cm_ssh_host_key_is_new(const cm_ssh_t *s);

/* "host:port" of the node (owned by s). */
const char *cm_ssh_peer(const cm_ssh_t *s);

/* Disconnects (waiting at most 1 s for the node) and frees s. NULL is ignored. */
void cm_ssh_close(cm_ssh_t *s);

/* ---- commands ---- */

typedef struct {
        int timeout_ms;         /* > 0; 0 means 600 s (zke.command_timeout_s's default) */
        size_t output_max;      /* bytes kept per stream, the last ones; 0 means 64 KiB */
        const void *stdin_data; /* sent to the command's stdin, then EOF; may be NULL. The
                                   way to hand a secret to a command without it showing in
                                   the command line or a message. */
        size_t stdin_len;
} cm_ssh_exec_opts_t;

typedef struct {
        int exit_status;      /* the command's exit status, or -1 if it has none */
        char exit_signal[32]; /* signal name ("KILL") if it was killed by one, else "" */
        char *out;            /* the last output_max bytes of stdout, NUL-terminated */
        size_t out_len;
        size_t out_dropped; /* bytes of stdout dropped before those */
        char *err;          /* the same for stderr */
        size_t err_len;
        size_t err_dropped;
} cm_ssh_result_t;

/*
 * Runs command (through the remote user's login shell, as OpenSSH does) and waits for it.
 * res (may be NULL) receives the exit status and the captured output, also on error; free
 * it with cm_ssh_result_free(). Returns:
 *   CM_SSH_OK            exit status 0;
 *   CM_SSH_ERR_EXIT      non-zero exit or a signal: "command "x" exited 3: <last lines>";
 *   CM_SSH_ERR_TIMEOUT   "command "x" timed out after 5 s";
 *   CM_SSH_ERR_CANCELED  the cancellation flag was raised;
 *   CM_SSH_ERR_PROTOCOL  the channel or the connection failed.
 * On timeout or cancel the remote command is ended. The command line sent starts with a
 * printf of the shell's pid (a marker line on stdout, removed from res->out); sshd starts
 * the shell as a session and process-group leader, so a second channel runs kill -TERM
 * on that process group, then kill -KILL 300 ms later if it is still there, and the
 * command's channel is closed (within about 1.5 s; the cancellation flag is ignored
 * meanwhile). A process that left the group (setsid, a daemon) survives, as it would a
 * Ctrl-C. If the node cannot be reached for the kill, the message says the command may
 * still be running. (libssh2 1.10 cannot send the SSH "signal" request, and closing a
 * channel without a pty leaves the command running.) The remote login shell must know
 * printf and $$ (sh, bash, zsh, ksh do).
 * The session stays usable after a timeout; after a cancel or a protocol error, close it.
 * The command text appears in messages (cut at 60 characters): never put a secret in it;
 * hand secrets over stdin_data or cm_ssh_upload().
 */
cm_ssh_err_t cm_ssh_exec(cm_ssh_t *s, const char *command, const cm_ssh_exec_opts_t *opts,
                         cm_ssh_result_t *res, char *errstr, size_t errstr_size);

/* Frees the buffers of res (not res) and zeroes it. Safe on a zeroed result. */
void cm_ssh_result_free(cm_ssh_result_t *res);

/* ---- SFTP ---- */

#define CM_SSH_UPLOAD_MKDIRS 0x1 /* create missing parent folders (mode 0755) */

/*
 * Uploads len bytes of data to the absolute path with the exact mode (not masked by the
 * server's umask): written to a temporary name in the same folder, flushed
 * (fsync@openssh.com when the server has it), then renamed over path, so a partial file
 * never appears under path. A rename that SFTP v3 refuses because path exists falls back
 * to an atomic "mv -f" through an exec channel. timeout_ms (0: 600 s) bounds the whole
 * upload. Returns CM_SSH_OK or CM_SSH_ERR_SFTP / TIMEOUT / CANCELED / PROTOCOL with a
 * message naming the node and path.
 */
cm_ssh_err_t cm_ssh_upload(cm_ssh_t *s, const char *path, const void *data, size_t len,
                           int mode, int flags, int timeout_ms, char *errstr,
                           size_t errstr_size);

/* ---- many nodes ---- */

/*
 * Work on item i (0..n-1) of a parallel run, on some thread of the pool: returns 0 on
 * success, or non-zero with a message in errstr (cm_ssh_err_t values fit).
 */
typedef int (*cm_ssh_node_fn)(size_t i, void *ctx, char *errstr, size_t errstr_size);

typedef struct {
        int rc;           /* what fn returned */
        char error[1024]; /* its message when rc != 0, else "" */
} cm_ssh_node_result_t;

/*
 * Calls fn for every i in 0..n-1 with at most parallelism (>= 1; zke.parallelism) calls
 * at once, waits for all of them and stores each result in results[i] (n entries, the
 * caller's). Every item runs; a failure stops nothing. Returns the number of failed
 * items, or -1 if no thread could be started (then nothing ran).
 */
int cm_ssh_parallel(size_t n, int parallelism, cm_ssh_node_fn fn, void *ctx,
                    cm_ssh_node_result_t *results);

/*
 * One message for the failures of a parallel run, every failed node named:
 *   2 of 3 nodes failed: node1 (127.0.0.11:22): connect ...; node3 (...): ...
 * names[i] labels item i. Returns a malloc'd string the caller frees, or NULL when
 * nothing failed.
 */
char *cm_ssh_parallel_summary(size_t n, const char *const *names,
                              const cm_ssh_node_result_t *results);

#endif
