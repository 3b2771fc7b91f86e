/* cm_utf8.c - UTF-8 checks and JSON string escaping (cm/utf8.h). */
#include <stdio.h>
#include <string.h>

#include "cm/utf8.h"

size_t cm_utf8_seq_len(const unsigned char *s, size_t n)
{
        size_t len;
        unsigned char lo = 0x80, hi = 0xBF;

        if (n == 0)
                return 0;
        if (s[0] >= 0xC2 && s[0] <= 0xDF)
                len = 2;
        else if (s[0] >= 0xE0 && s[0] <= 0xEF)
                len = 3;
        else if (s[0] >= 0xF0 && s[0] <= 0xF4)
                len = 4;
        else
                return 0;
        if (s[0] == 0xE0)
                lo = 0xA0; /* overlong */
        else if (s[0] == 0xED)
                hi = 0x9F; /* surrogates */
        else if (s[0] == 0xF0)
                lo = 0x90; /* overlong */
        else if (s[0] == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        if (n < len || s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if (s[i] < 0x80 || s[i] > 0xBF)
                        return 0;
        return len;
}

size_t cm_utf8_cut(const char *s, size_t max)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t len = strlen(s), i = 0;
        while (i < len) {
                size_t n = p[i] >= 0x80 ? cm_utf8_seq_len(p + i, len - i) : 1;
                if (n == 0)
                        n = 1; /* an invalid byte stays; only a valid sequence is kept
                                  whole */
                if (i + n > max)
                        break;
                i += n;
        }
        return i;
}

/* The escape of byte c (not part of a valid sequence), or NULL when c stands as is. */
static const char *json_escape_of(unsigned char c, char esc[8])
{
        switch (c) {
        case '"':
                return "\\\"";
        case '\\':
                return "\\\\";
        case '\n':
                return "\\n";
        case '\r':
                return "\\r";
        case '\t':
                return "\\t";
        case '\b':
                return "\\b";
        case '\f':
                return "\\f";
        default:
                if (c >= 0x80)
                        return "\xEF\xBF\xBD";
                if (c < 0x20 || c == 0x7f) {
                        snprintf(esc, 8, "\\u%04x", c);
                        return esc;
                }
                return NULL;
        }
}

size_t cm_utf8_json_escape(const char *s, size_t n, char *out)
{
        const unsigned char *u = (const unsigned char *)s;
        size_t i = 0, w = 0;
        char esc[8];

        while (i < n) {
                size_t l = u[i] >= 0x80 ? cm_utf8_seq_len(u + i, n - i) : 0;
                const char *rep = l ? NULL : json_escape_of(u[i], esc);
                if (!rep) {
                        l = l ? l : 1;
                        if (out)
                                memcpy(out + w, s + i, l);
                        w += l;
                        i += l;
                        continue;
                }
                size_t rl = strlen(rep);
                if (out)
                        memcpy(out + w, rep, rl);
                w += rl;
                i++;
        }
        return w;
}
