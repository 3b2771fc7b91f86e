/*
 * cm_addr.c - the syntax of names, addresses and CIDRs for validation (cm_addr.h).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm/utf8.h"
#include "cm_addr.h"

/* ---- names ------------------------------------------------------------------------ */

/* Labels of s: non-empty, at most 63, starting and ending with a letter or digit. */
static const char *labels_problem(const char *s)
{
        const char *p = s;
        for (;;) {
                size_t n = strcspn(p, ".");
                if (n == 0)
                        return "it has an empty label (a leading, trailing or doubled "
                               "'.')";
                if (n > 63)
                        return "it has a label longer than 63 characters";
                if (p[0] == '-' || p[n - 1] == '-')
                        return "each label must start and end with a letter or digit";
                if (p[n] == '\0')
                        return NULL;
                p += n + 1;
        }
}

const char *cm_addr_subdomain_problem(const char *s)
{
        if (!s || !*s)
                return "it is empty";
        if (strlen(s) > 253)
                return "it is longer than 253 characters";
        for (const char *p = s; *p; p++) {
                if (*p >= 'A' && *p <= 'Z')
                        return "it has uppercase letters; use lowercase";
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                      *p == '.'))
                        return "it may contain only lowercase letters, digits, '-' and "
                               "'.'";
        }
        return labels_problem(s);
}

const char *cm_addr_domain_problem(const char *s)
{
        const char *why = cm_addr_subdomain_problem(s);
        if (why)
                return why;
        const char *last = strrchr(s, '.');
        last = last ? last + 1 : s;
        if (strspn(last, "0123456789") == strlen(last))
                return "its last label must not be all digits";
        return NULL;
}

/* ---- hosts ------------------------------------------------------------------------ */

static const char *host_name_problem(const char *s)
{
        if (strlen(s) > 253)
                return "a host name is at most 253 characters";
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
                        return "a host name may contain only letters, digits, '-' and "
                               "'.'";
        return labels_problem(s);
}

const char *cm_addr_parse_host(const char *s, cm_addr_t *a)
{
        memset(a, 0, sizeof(*a));
        if (!s || !*s)
                return "it is empty";
        if (strchr(s, ':')) {
                if (inet_pton(AF_INET6, s, a->ip) != 1)
                        return "it is not a valid IPv6 address";
                static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
                                                         0, 0, 0, 0, 0xff, 0xff};
                if (memcmp(a->ip, mapped, sizeof(mapped)) == 0) {
                        memmove(a->ip, a->ip + 12, 4);
                        memset(a->ip + 4, 0, 12);
                        a->family = 4;
                } else {
                        a->family = 6;
                }
                return NULL;
        }
        if (inet_pton(AF_INET, s, a->ip) == 1) {
                a->family = 4;
                return NULL;
        }
        if (strspn(s, "0123456789.") == strlen(s))
                return "it is not a valid IPv4 address";
        const char *why = host_name_problem(s);
        if (why)
                return why;
        for (size_t i = 0; s[i]; i++)
                a->host[i] = (char)tolower((unsigned char)s[i]);
        return NULL;
}

static bool valid_port(const char *p)
{
        size_t n = strlen(p);
        if (n == 0 || n > 5 || strspn(p, "0123456789") != n || p[0] == '0')
                return false;
        return atoi(p) <= 65535;
}

static const char *split_authority(char *buf, bool url, const char **host)
{
        char *port = NULL;
        if (buf[0] == '\0')
                return "it has no host";
        if (buf[0] == '[') {
                char *close = strchr(buf, ']');
                if (!close)
                        return "it has an unclosed '['";
                *close = '\0';
                *host = buf + 1;
                if (!strchr(*host, ':'))
                        return "only an IPv6 address goes inside '[' ']'";
                if (close[1] == ':')
                        port = close + 2;
                else if (close[1] != '\0')
                        return "only \":port\" may follow ']'";
        } else {
                char *colon = strchr(buf, ':');
                *host = buf;
                if (colon && strchr(colon + 1, ':')) {
                        if (url)
                                return "an IPv6 address in a URL goes inside '[' ']'";
                } else if (colon) {
                        *colon = '\0';
                        port = colon + 1;
                }
        }
        if (port && !valid_port(port))
                return "its port must be a number 1-65535";
        if (!**host)
                return "it has no host";
        return NULL;
}

const char *cm_addr_parse_manager(const char *s, cm_addr_t *a)
{
        char buf[300];
        const char *p = s, *end, *host;
        bool url = false;
        memset(a, 0, sizeof(*a));
        if (!s || !*s)
                return "it is empty";
        const char *sep = strstr(s, "://");
        if (sep) {
                if (sep == s || !isalpha((unsigned char)s[0]))
                        return "its scheme (before \"://\") must start with a letter";
                for (const char *q = s; q < sep; q++)
                        if (!isalnum((unsigned char)*q) && !strchr("+-.", *q))
                                return "its scheme (before \"://\") is not valid";
                url = true;
                p = sep + 3;
                end = p + strcspn(p, "/?#");
                for (const char *q = p; q < end; q++)
                        if (*q == '@')
                                p = q + 1;
        } else {
                if (strpbrk(s, "/?#@"))
                        return "it has a path or user but no scheme (e.g. "
                               "\"https://host:port/\")";
                end = s + strlen(s);
        }
        if ((size_t)(end - p) >= sizeof(buf))
                return "its host part is too long";
        memcpy(buf, p, (size_t)(end - p));
        buf[end - p] = '\0';
        const char *why = split_authority(buf, url, &host);
        return why ? why : cm_addr_parse_host(host, a);
}

bool cm_addr_equal(const cm_addr_t *a, const cm_addr_t *b)
{
        if (a->family != b->family)
                return false;
        if (a->family == 4)
                return memcmp(a->ip, b->ip, 4) == 0;
        if (a->family == 6)
                return memcmp(a->ip, b->ip, 16) == 0;
        return strcmp(a->host, b->host) == 0;
}

static bool is_blank(const char *s)
{
        while (s && *s && isspace((unsigned char)*s))
                s++;
        return !s || !*s;
}

bool cm_addr_same_host(const char *a, const char *b)
{
        cm_addr_t x, y;
        if (is_blank(a) || is_blank(b))
                return false;
        if (!cm_addr_parse_host(a, &x) && !cm_addr_parse_host(b, &y))
                return cm_addr_equal(&x, &y);
        return strcmp(a, b) == 0;
}

/* ---- IPv4 and CIDRs --------------------------------------------------------------- */

bool cm_addr_ipv4(const char *s, uint32_t *out)
{
        struct in_addr in;
        if (!s || inet_pton(AF_INET, s, &in) != 1)
                return false;
        *out = ntohl(in.s_addr);
        return true;
}

const char *cm_addr_parse_cidr(const char *s, cm_cidr_t *c, char *fix, size_t fix_size)
{
        char ip[64];
        unsigned char v6[16];
        uint32_t addr;
        if (fix_size)
                fix[0] = '\0';
        if (!s || !*s)
                return "it is empty";
        const char *slash = strchr(s, '/');
        if (!slash)
                return "it has no \"/prefix\" (e.g. \"10.42.0.0/16\")";
        if ((size_t)(slash - s) >= sizeof(ip))
                return "its address part is not an IPv4 address";
        memcpy(ip, s, (size_t)(slash - s));
        ip[slash - s] = '\0';
        if (!cm_addr_ipv4(ip, &addr))
                return inet_pton(AF_INET6, ip, v6) == 1
                           ? "it is IPv6; only IPv4 is supported"
                           : "its address part is not an IPv4 "
                             "address";
        const char *pre = slash + 1;
        size_t n = strlen(pre);
        if (n == 0 || n > 2 || strspn(pre, "0123456789") != n ||
            (n == 2 && pre[0] == '0') || atoi(pre) > 32)
                return "its prefix length must be a number 0-32";
        c->prefix = atoi(pre);
        c->mask = c->prefix == 0 ? 0 : 0xffffffffu << (32 - c->prefix);
        c->network = addr & c->mask;
        if (addr != c->network) {
                struct in_addr net = {.s_addr = htonl(c->network)};
                char text[INET_ADDRSTRLEN];
                inet_ntop(AF_INET, &net, text, sizeof(text));
                snprintf(fix, fix_size, "%s/%d", text, c->prefix);
                return "has host bits set";
        }
        return NULL;
}

bool cm_cidr_overlap(const cm_cidr_t *a, const cm_cidr_t *b)
{
        uint32_t m = a->prefix < b->prefix ? a->mask : b->mask;
        return (a->network & m) == (b->network & m);
}

/* ---- quoting ---------------------------------------------------------------------- */

const char *cm_addr_quote(const char *s, char *buf, size_t size)
{
        if (!s) {
                snprintf(buf, size, "null");
                return buf;
        }
        const unsigned char *p = (const unsigned char *)s;
        size_t j = 0, chars = 0;
        if (size < 16) {
                snprintf(buf, size, "\"...\"");
                return buf;
        }
        buf[j++] = '"';
        while (*p && j + 12 < size) {
                if (chars == CM_QUOTE_MAX) {
                        memcpy(buf + j, "...", 3);
                        j += 3;
                        break;
                }
                size_t n =
                    *p >= 0x80 ? cm_utf8_seq_len(p, strnlen((const char *)p, 4)) : 1;
                if (*p == '"' || *p == '\\') {
                        buf[j++] = '\\';
                        buf[j++] = (char)*p;
                } else if (*p < 0x20 || *p == 0x7f) {
                        j += (size_t)snprintf(buf + j, size - j, "\\u%04x", *p);
                } else if (n == 0) {
                        j += (size_t)snprintf(buf + j, size - j, "\\x%02x", *p);
                        n = 1;
                } else {
                        memcpy(buf + j, p, n);
                        j += n;
                }
                p += n;
                chars++;
        }
        buf[j++] = '"';
        buf[j] = '\0';
        return buf;
}
