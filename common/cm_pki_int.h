/* cm_pki_int.h - helpers shared by cm_pki.c and cm_pki_store.c; not part of libcm's API.
 */
#ifndef CM_PKI_INT_H
#define CM_PKI_INT_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* PEM text <-> OpenSSL objects. The *_to_pem results are malloc'd (the key's: wipe it).
 */
X509 *cm_pki_cert_from_pem(const char *pem);
EVP_PKEY *cm_pki_key_from_pem(const char *pem);
char *cm_pki_cert_to_pem(X509 *x);
char *cm_pki_key_to_pem(EVP_PKEY *key);

/* x's subjectAltNames as sorted "IP:a.b.c.d" / "DNS:name" strings (caller frees each and
 * the array). Returns 0 or -1. */
int cm_pki_cert_sans(X509 *x, char ***out, size_t *count);

#endif
