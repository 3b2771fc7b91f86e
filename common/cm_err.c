/* cm_err.c - the errstr helpers of cm/err.h. */
#include <stdarg.h>
#include <stdio.h>

#include "cm/err.h"

static void cm_err_vformat(char *errstr, size_t errstr_size, const char *fmt, va_list ap)
{
        if (errstr && errstr_size)
                vsnprintf(errstr, errstr_size, fmt, ap);
}

int cm_errf(char *errstr, size_t errstr_size, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        cm_err_vformat(errstr, errstr_size, fmt, ap);
        va_end(ap);
        return code;
}

void cm_seterr(char *errstr, size_t errstr_size, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        cm_err_vformat(errstr, errstr_size, fmt, ap);
        va_end(ap);
}
