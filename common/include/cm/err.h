/*
 * cm/err.h - filling the (char *errstr, size_t errstr_size) pair every cm API takes.
 * Both functions are thread-safe and accept a NULL errstr or a zero size (nothing written).
 */
#ifndef CM_ERR_H
#define CM_ERR_H

#include <stddef.h>

/* Formats the message into errstr and returns code, so `return cm_errf(...)` reads well. */
int cm_errf(char *errstr, size_t errstr_size, int code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Formats the message into errstr. */
void cm_seterr(char *errstr, size_t errstr_size, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif
