/*
 * cm/utf8.h - UTF-8 checks and JSON string escaping shared by the modules that write
 * text for clients or logs (cm_log, cm_spec, cm_addr, cm_pki_store).
 *
 * UTF-8 is judged as RFC 3629 has it: no overlong forms, no surrogates, nothing above
 * U+10FFFF. Every function is pure and thread-safe.
 */
#ifndef CM_UTF8_H
#define CM_UTF8_H

#include <stddef.h>

/* Length (2-4) of the valid multi-byte UTF-8 sequence at s, looking at no more than n
 * bytes; 0 when s[0] does not start one (ASCII included). */
size_t cm_utf8_seq_len(const unsigned char *s, size_t n);

/* Bytes of the longest prefix of the NUL-terminated s, at most max bytes, that does not
 * end inside a valid UTF-8 sequence: where a message cuts a client's value, so that the
 * message stays valid UTF-8. Invalid bytes count one each. */
size_t cm_utf8_cut(const char *s, size_t max);

/* s[0..n) escaped for the inside of a JSON string ('"', '\\' and control characters
 * escaped, invalid UTF-8 replaced by U+FFFD), written to out when out is not NULL (no
 * NUL added). Returns the bytes written, or that would be: call once with NULL to size
 * the buffer. */
size_t cm_utf8_json_escape(const char *s, size_t n, char *out);

#endif
