/*
 * cm/validate.h - the validation rules of DESIGN §4, run by cm-api before producing (fast
 * 4xx) and by cm-worker against the current state (authoritative). One rule per function in
 * common/cm_validate.c, listed in one table.
 *
 * Every failure is appended to errs naming the field and the offending value, e.g.
 *   nodes[2].roles: "etcd" cannot stand alone; a node must be controlplane or worker
 * Errors are collected, never first-only. All functions are pure and thread-safe.
 *
 * Each function returns the number of problems found, 0 meaning valid. Should memory run
 * out while recording a message, the problem is still counted (the count can then exceed
 * what errs gained): never treat a non-zero return as valid. The SSH key's own reading
 * (type, public key) is cm/sshkey.h.
 */
#ifndef CM_VALIDATE_H
#define CM_VALIDATE_H

#include <stddef.h>

#include "cm/spec.h"

/*
 * Create: every rule of DESIGN §4 on spec, and the SSH private key (plaintext, never copied
 * into a message; NULL or empty = missing). Returns the number of errors appended (0: valid).
 */
int cm_validate_create(const cm_spec_t *spec, const unsigned char *ssh_key, size_t ssh_key_len,
                       cm_field_errors_t *errs);

/*
 * Update of current (the stored spec) to the node list nodes: the node rules, controlplane
 * and etcd nodes of current still present, an existing node (same address) keeping its name
 * and roles, and the new SSH key when given (NULL: unchanged). Returns the number of errors
 * appended.
 */
int cm_validate_update(const cm_spec_t *current, const cm_node_t *nodes, size_t node_count,
                       const unsigned char *ssh_key, size_t ssh_key_len,
                       cm_field_errors_t *errs);

/* Import: name (DNS-1123 subdomain) and a non-empty kubeconfig. */
int cm_validate_import(const char *name, size_t kubeconfig_len, cm_field_errors_t *errs);

/*
 * The SSH key rule alone: an unencrypted ed25519 or ECDSA private key in OpenSSH or PEM
 * format. RSA is refused with the reason of DESIGN §7 and what to use instead.
 */
int cm_validate_ssh_key(const unsigned char *key, size_t len, const char *field,
                        cm_field_errors_t *errs);

#endif
