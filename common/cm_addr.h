/*
 * cm_addr.h - (internal to libcm) the syntax of names and addresses that validation
 * judges: DNS-1123 subdomains, domain names, node addresses (IP or host name), the
 * manager's address (also host:port or a URL), IPv4 CIDRs; and quoting a value for a
 * message. Pure functions, thread-safe; "why" strings are static sentences such as
 * "it has an empty label (a leading, trailing or doubled '.')".
 */
#ifndef CM_ADDR_H
#define CM_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* NULL when s is a DNS-1123 subdomain (lowercase alnum, '-', '.', labels 1-63 starting
 * and ending alnum, at most 253); otherwise why not. */
const char *cm_addr_subdomain_problem(const char *s);
/* A domain name: the same, and the last label is not all digits ("10.0.0.1"). */
const char *cm_addr_domain_problem(const char *s);

/* A host: an IPv4 or IPv6 address (compared in binary form) or a host name (compared
 * case-insensitively). */
typedef struct cm_addr_s {
        int family; /* 4, 6, or 0 for a host name */
        unsigned char ip[16];
        char host[254]; /* lowercase host name */
} cm_addr_t;

/* A node address: IPv4, IPv6 or an RFC 1123 host name, no port. NULL when valid. */
const char *cm_addr_parse_host(const char *s, cm_addr_t *a);
/* The manager's address: a host, host:port, [IPv6]:port, or a URL
 * scheme://[user@]host[:port]
 * [/path]; *a gets the host. NULL when valid. */
const char *cm_addr_parse_manager(const char *s, cm_addr_t *a);
bool cm_addr_equal(const cm_addr_t *a, const cm_addr_t *b);
/* Node addresses a and b name the same host (valid ones compared as above, others as
 * strings; blank never matches). */
bool cm_addr_same_host(const char *a, const char *b);

/* Strict dotted-quad IPv4 (no leading zeros); *out in host byte order. */
bool cm_addr_ipv4(const char *s, uint32_t *out);

typedef struct cm_cidr_s {
        uint32_t network; /* host byte order */
        uint32_t mask;
        int prefix;
} cm_cidr_t;

/* NULL when s is an IPv4 CIDR written with its network address. With host bits set, fix
 * gets the canonical form (else fix is ""). */
const char *cm_addr_parse_cidr(const char *s, cm_cidr_t *c, char *fix, size_t fix_size);
bool cm_cidr_overlap(const cm_cidr_t *a, const cm_cidr_t *b);

/* s in double quotes for a message: '"', '\' and control characters escaped, invalid
 * UTF-8 as \xNN, cut to 64 characters ("..."); "null" for NULL. Returns buf. */
#define CM_QUOTE_MAX  64
#define CM_QUOTE_SIZE (CM_QUOTE_MAX * 6 + 8)
const char *cm_addr_quote(const char *s, char *buf, size_t size);
/* For a format argument: a buffer that lives until the end of the enclosing statement. */
#define Q(s) cm_addr_quote((s), (char[CM_QUOTE_SIZE]){0}, CM_QUOTE_SIZE)

#endif
