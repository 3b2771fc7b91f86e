/*
 * cm_validate.c - the validation rules of DESIGN §4 (and seed 000's 配置校验).
 *
 * Each rule is one static function; the table `rules` at the end lists them all with the
 * requests they apply to (create, update, import), in the order their errors are
 * reported. Every failure names the field path and quotes the offending value; secrets
 * (the SSH key, the kubeconfig) are never quoted.
 *
 * Decisions where DESIGN §4 is silent:
 * - CIDRs must be written as their network address ("10.42.0.0/16", not "10.42.1.0/16"):
 *   a CIDR with host bits set is almost always a typo, and the message suggests the fix.
 * - clusterCidr and serviceCidr must not overlap, serviceCidr may be at most a /12
 *   (kube-apiserver's limit), and clusterDNSServiceIP must be a usable service address
 *   (not the network, broadcast, or first address, which the kubernetes service takes).
 * - Addresses are compared as addresses: IPs in binary form ("::1" == "0::1", an
 *   IPv4-mapped IPv6 address == its IPv4 address), host names case-insensitively. No DNS
 *   lookups: the functions are pure.
 * - Values are checked as given: " 10.0.0.1" is not an address (only emptiness is judged
 *   after trimming).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/sshkey.h"
#include "cm/validate.h"
#include "cm_addr.h"

/* ---- inputs, outputs, messages
 * --------------------------------------------------------- */

typedef struct {
        const cm_spec_t *spec;    /* create: the spec; update: NULL */
        const cm_spec_t *current; /* update: the stored spec */
        const cm_node_t *nodes;   /* create: spec's nodes; update: the new list */
        size_t node_count;
        const char *manager_address; /* create: spec's; update: current's */
        const unsigned char *key;    /* NULL: none given */
        size_t key_len;
        const char *name; /* import */
        size_t kubeconfig_len;
} vin_t;

typedef struct {
        cm_field_errors_t *errs;
        int found;
} vout_t;

static void verr(vout_t *o, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void verr(vout_t *o, const char *field, const char *fmt, ...)
{
        char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&m, fmt, ap);
        va_end(ap);
        /* counted even when it cannot be recorded: out of memory must not mean valid */
        o->found++;
        if (n >= 0) {
                (void)cm_field_errors_add(o->errs, field, "%s", m);
                free(m);
        }
}

/* "nodes[2].roles": the path of a node's field */
#define NODE_FIELD(buf, i, member)                                                       \
        (snprintf((buf), sizeof(buf), "nodes[%zu]%s", (i), (member)), (buf))

static bool blank(const char *s)
{
        if (!s)
                return true;
        while (*s && isspace((unsigned char)*s))
                s++;
        return *s == '\0';
}

/* Reports a missing or blank required value; true when the value is there. */
static bool require(vout_t *o, const char *field, const char *value)
{
        if (!value || !*value) {
                verr(o, field, "is required");
                return false;
        }
        if (blank(value)) {
                verr(o, field, "%s is blank; a value is required", Q(value));
                return false;
        }
        return true;
}

/* ---- roles ---------------------------------------------------------------------------
 */

enum { ROLE_CONTROLPLANE = 1, ROLE_WORKER = 2, ROLE_ETCD = 4, ROLE_EDGE = 8 };

static const struct {
        const char *name;
        unsigned bit;
} role_names[] = {
    {"controlplane", ROLE_CONTROLPLANE},
    {"worker", ROLE_WORKER},
    {"etcd", ROLE_ETCD},
    {"edge", ROLE_EDGE},
};
#define ROLE_COUNT (sizeof(role_names) / sizeof(role_names[0]))

static unsigned role_bit(const char *r)
{
        for (size_t i = 0; r && i < ROLE_COUNT; i++)
                if (strcmp(r, role_names[i].name) == 0)
                        return role_names[i].bit;
        return 0;
}

/* The known roles of a node as bits; *unknown set when any role is not one of them. */
static unsigned node_roles(const cm_node_t *n, bool *unknown)
{
        unsigned bits = 0;
        if (unknown)
                *unknown = false;
        for (size_t i = 0; i < n->role_count; i++) {
                unsigned b = role_bit(n->roles[i]);
                bits |= b;
                if (!b && unknown)
                        *unknown = true;
        }
        return bits;
}

/* ["worker","edge"]: a node's roles as given, for messages */
static const char *roles_text(const cm_node_t *n, char *buf, size_t size)
{
        size_t used = 0;
        used += (size_t)snprintf(buf, size, "[");
        for (size_t i = 0; i < n->role_count && used < size; i++)
                used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? "," : "",
                                         Q(n->roles[i]));
        if (used < size)
                snprintf(buf + used, size - used, "]");
        return buf;
}

/* ---- create: the cluster's own fields
 * -------------------------------------------------- */

static void rule_required_fields(const vin_t *in, vout_t *o)
{
        require(o, "name", in->spec->name);
        require(o, "sshUser", in->spec->ssh_user);
        require(o, "managerAddress", in->spec->manager_address);
        require(o, "clusterDomain", in->spec->cluster_domain);
}

static void rule_name_is_subdomain(const vin_t *in, vout_t *o)
{
        const char *name = in->spec ? in->spec->name : in->name;
        const char *why;
        if (!blank(name) && (why = cm_addr_subdomain_problem(name)) != NULL)
                verr(o, "name", "%s is not a DNS-1123 subdomain: %s", Q(name), why);
}

static void rule_import_name_required(const vin_t *in, vout_t *o)
{
        require(o, "name", in->name);
}

static void rule_cluster_domain_is_domain(const vin_t *in, vout_t *o)
{
        const char *d = in->spec->cluster_domain;
        const char *why;
        if (!blank(d) && (why = cm_addr_domain_problem(d)) != NULL)
                verr(o, "clusterDomain", "%s is not a domain name: %s", Q(d), why);
}

static void rule_manager_address_format(const vin_t *in, vout_t *o)
{
        const char *m = in->spec->manager_address;
        cm_addr_t a;
        const char *why;
        if (!blank(m) && (why = cm_addr_parse_manager(m, &a)) != NULL)
                verr(o, "managerAddress", "%s is not an address, host:port or URL: %s",
                     Q(m), why);
}

static void rule_ssh_port_range(const vin_t *in, vout_t *o)
{
        int p = in->spec->ssh_port;
        if (p < 1 || p > 65535)
                verr(o, "sshPort", "%d is not a port number; use 1-65535 (default 22)",
                     p);
}

/* A CIDR field: required, IPv4, canonical. True with *c filled when valid. */
static bool check_cidr(vout_t *o, const char *field, const char *v, const char *def,
                       cm_cidr_t *c)
{
        if (blank(v)) {
                verr(o, field, "is required (leave it out for the default \"%s\")", def);
                return false;
        }
        char fix[32];
        const char *why = cm_addr_parse_cidr(v, c, fix, sizeof(fix));
        if (why && fix[0])
                verr(o, field, "%s %s; did you mean \"%s\"?", Q(v), why, fix);
        else if (why)
                verr(o, field, "%s is not an IPv4 CIDR: %s", Q(v), why);
        return why == NULL;
}

static void rule_cluster_cidr(const vin_t *in, vout_t *o)
{
        cm_cidr_t c;
        check_cidr(o, "clusterCidr", in->spec->cluster_cidr, CM_SPEC_DEFAULT_CLUSTER_CIDR,
                   &c);
}

static void rule_service_cidr(const vin_t *in, vout_t *o)
{
        cm_cidr_t c;
        const char *v = in->spec->service_cidr;
        if (check_cidr(o, "serviceCidr", v, CM_SPEC_DEFAULT_SERVICE_CIDR, &c) &&
            c.prefix < 12)
                verr(o, "serviceCidr",
                     "%s is too large; kube-apiserver accepts at most a /12 (2^20 "
                     "addresses)",
                     Q(v));
}

static void rule_cidrs_disjoint(const vin_t *in, vout_t *o)
{
        cm_cidr_t a, b;
        char f[8];
        if (!cm_addr_parse_cidr(in->spec->cluster_cidr, &a, f, sizeof(f)) &&
            !cm_addr_parse_cidr(in->spec->service_cidr, &b, f, sizeof(f)) &&
            cm_cidr_overlap(&a, &b))
                verr(o, "serviceCidr",
                     "%s overlaps clusterCidr %s; pod and service addresses "
                     "must not overlap",
                     Q(in->spec->service_cidr), Q(in->spec->cluster_cidr));
}

static void rule_dns_service_ip(const vin_t *in, vout_t *o)
{
        const char *ip = in->spec->cluster_dns_service_ip;
        const char *cidr = in->spec->service_cidr;
        uint32_t a;
        cm_cidr_t c;
        char f[8];
        if (blank(ip)) {
                verr(o, "clusterDNSServiceIP",
                     "is required (leave it out for the default \"%s\")",
                     CM_SPEC_DEFAULT_DNS_SERVICE_IP);
                return;
        }
        if (!cm_addr_ipv4(ip, &a)) {
                verr(o, "clusterDNSServiceIP", "%s is not an IPv4 address", Q(ip));
                return;
        }
        if (cm_addr_parse_cidr(cidr, &c, f, sizeof(f)) != NULL)
                return; /* serviceCidr's own rule reports it */
        uint32_t host = a & ~c.mask;
        if ((a & c.mask) != c.network)
                verr(o, "clusterDNSServiceIP", "%s is not inside serviceCidr %s", Q(ip),
                     Q(cidr));
        else if (c.prefix < 31 && host == 0)
                verr(o, "clusterDNSServiceIP",
                     "%s is the network address of serviceCidr %s", Q(ip), Q(cidr));
        else if (c.prefix < 31 && host == ~c.mask)
                verr(o, "clusterDNSServiceIP",
                     "%s is the broadcast address of serviceCidr %s", Q(ip), Q(cidr));
        else if (host == 1)
                verr(o, "clusterDNSServiceIP",
                     "%s is taken by the kubernetes API service (the first address of "
                     "serviceCidr %s)",
                     Q(ip), Q(cidr));
}

static void rule_upstream_dns(const vin_t *in, vout_t *o)
{
        char f[48];
        uint32_t a;
        for (size_t i = 0; i < in->spec->cluster_upstream_dns_count; i++) {
                const char *s = in->spec->cluster_upstream_dns[i];
                snprintf(f, sizeof(f), "clusterUpstreamDNS[%zu]", i);
                if (!s || !cm_addr_ipv4(s, &a))
                        verr(o, f, "%s is not an IPv4 address", Q(s));
        }
}

static void rule_network_plugin(const vin_t *in, vout_t *o)
{
        const char *p = in->spec->network_plugin;
        if (blank(p))
                verr(o, "network.plugin",
                     "is required: flannel or calico (default flannel)");
        else if (strcmp(p, "flannel") != 0 && strcmp(p, "calico") != 0)
                verr(o, "network.plugin", "%s is not supported; use flannel or calico",
                     Q(p));
}

/* ---- the SSH key (DESIGN §7)
 * ------------------------------------------------------------- */

static void check_key(vout_t *o, const char *field, const unsigned char *key, size_t len)
{
        char why[512];
        if (cm_sshkey_inspect(key, len, NULL, why, sizeof(why)) != CM_SSHKEY_OK)
                verr(o, field, "%s", why);
}

static void rule_ssh_key(const vin_t *in, vout_t *o)
{
        if (in->spec && (!in->key || in->key_len == 0))
                verr(o, "sshKey", "is required");
        else if (in->key && in->key_len == 0)
                verr(o, "sshKey",
                     "is empty; give a key, or leave sshKey out to keep the "
                     "current one");
        else if (in->key)
                check_key(o, "sshKey", in->key, in->key_len);
}

/* ---- nodes, one at a time
 * ---------------------------------------------------------------- */

static void rule_nodes_present(const vin_t *in, vout_t *o)
{
        if (in->node_count == 0)
                verr(o, "nodes",
                     "is required: a cluster needs at least one controlplane, one etcd "
                     "and one "
                     "worker node");
}

static void rule_node_fields_required(const vin_t *in, vout_t *o)
{
        char f[48];
        for (size_t i = 0; i < in->node_count; i++) {
                const cm_node_t *n = &in->nodes[i];
                require(o, NODE_FIELD(f, i, ".name"), n->name);
                require(o, NODE_FIELD(f, i, ".address"), n->address);
                if (n->role_count == 0)
                        verr(o, NODE_FIELD(f, i, ".roles"),
                             "is required: one or more of controlplane, worker, etcd, "
                             "edge");
        }
}

static void rule_node_name_is_subdomain(const vin_t *in, vout_t *o)
{
        char f[48];
        const char *why;
        for (size_t i = 0; i < in->node_count; i++) {
                const char *name = in->nodes[i].name;
                if (!blank(name) && (why = cm_addr_subdomain_problem(name)) != NULL)
                        verr(o, NODE_FIELD(f, i, ".name"),
                             "%s is not a DNS-1123 subdomain: %s", Q(name), why);
        }
}

static void rule_node_address_format(const vin_t *in, vout_t *o)
{
        char f[48];
        cm_addr_t a;
        const char *why;
        for (size_t i = 0; i < in->node_count; i++) {
                const char *addr = in->nodes[i].address;
                if (!blank(addr) && (why = cm_addr_parse_host(addr, &a)) != NULL)
                        verr(o, NODE_FIELD(f, i, ".address"),
                             "%s is not an IPv4/IPv6 address or host name: %s", Q(addr),
                             why);
        }
}

static void rule_node_roles_known(const vin_t *in, vout_t *o)
{
        char f[64];
        for (size_t i = 0; i < in->node_count; i++) {
                const cm_node_t *n = &in->nodes[i];
                for (size_t r = 0; r < n->role_count; r++) {
                        if (role_bit(n->roles[r]))
                                continue;
                        snprintf(f, sizeof(f), "nodes[%zu].roles[%zu]", i, r);
                        verr(o, f,
                             "%s is not a role; use controlplane, worker, etcd or edge",
                             Q(n->roles[r]));
                }
        }
}

static void rule_node_roles_unique(const vin_t *in, vout_t *o)
{
        char f[64];
        for (size_t i = 0; i < in->node_count; i++) {
                const cm_node_t *n = &in->nodes[i];
                for (size_t r = 1; r < n->role_count; r++) {
                        for (size_t e = 0; e < r; e++) {
                                if (!n->roles[r] || !n->roles[e] ||
                                    strcmp(n->roles[r], n->roles[e]) != 0)
                                        continue;
                                snprintf(f, sizeof(f), "nodes[%zu].roles[%zu]", i, r);
                                verr(o, f, "%s is listed twice (also roles[%zu])",
                                     Q(n->roles[r]), e);
                                break;
                        }
                }
        }
}

static void rule_node_roles_exclusive(const vin_t *in, vout_t *o)
{
        char f[48];
        for (size_t i = 0; i < in->node_count; i++) {
                unsigned bits = node_roles(&in->nodes[i], NULL);
                if ((bits & ROLE_CONTROLPLANE) && (bits & ROLE_WORKER))
                        verr(o, NODE_FIELD(f, i, ".roles"),
                             "\"controlplane\" and \"worker\" exclude each other; a node "
                             "is one "
                             "or the other");
        }
}

static void rule_node_roles_not_alone(const vin_t *in, vout_t *o)
{
        char f[48];
        for (size_t i = 0; i < in->node_count; i++) {
                unsigned bits = node_roles(&in->nodes[i], NULL);
                if (bits & (ROLE_CONTROLPLANE | ROLE_WORKER))
                        continue;
                const char *alone = (bits & ROLE_ETCD) && (bits & ROLE_EDGE)
                                        ? "\"etcd\" and \"edge\" cannot"
                                    : (bits & ROLE_ETCD) ? "\"etcd\" cannot"
                                    : (bits & ROLE_EDGE) ? "\"edge\" cannot"
                                                         : NULL;
                if (alone)
                        verr(o, NODE_FIELD(f, i, ".roles"),
                             "%s stand alone; a node must be controlplane or worker",
                             alone);
        }
}

/* ---- nodes, together
 * ------------------------------------------------------------------- */

/*
 * Node lists are checked for duplicates through a sorted index, not by comparing every
 * pair: a request may carry tens of thousands of nodes within its size limit, and
 * cm-api and cm-worker must answer it in milliseconds (found by tests/fuzz).
 */
typedef struct {
        size_t idx;
        int valid;       /* 1: a (an address that parses), 0: raw text compared as is */
        const char *raw; /* the node's address or name */
        cm_addr_t a;
} vkey_t;

static int vkey_cmp_key(const vkey_t *x, const vkey_t *y)
{
        if (x->valid != y->valid)
                return x->valid - y->valid;
        if (!x->valid)
                return strcmp(x->raw, y->raw);
        if (x->a.family != y->a.family)
                return x->a.family - y->a.family;
        if (x->a.family)
                return memcmp(x->a.ip, y->a.ip, x->a.family == 4 ? 4 : 16);
        return strcmp(x->a.host, y->a.host);
}

static int vkey_cmp(const void *p, const void *q)
{
        const vkey_t *x = p, *y = q;
        int c = vkey_cmp_key(x, y);
        return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Fills k from s (an address when by_address, else a name); 0 when s never matches. */
static int vkey_set(vkey_t *k, size_t idx, const char *s, bool by_address)
{
        if (blank(s))
                return 0;
        k->idx = idx;
        k->raw = s;
        k->valid = by_address && !cm_addr_parse_host(s, &k->a);
        return 1;
}

/* A sorted index of the nodes' addresses or names (blank ones left out): *n entries,
 * free() it. NULL when out of memory. */
static vkey_t *vkey_index(const cm_node_t *nodes, size_t count, bool by_address,
                          size_t *n)
{
        vkey_t *ix = malloc((count ? count : 1) * sizeof(*ix));
        *n = 0;
        if (!ix)
                return NULL;
        for (size_t i = 0; i < count; i++)
                *n += (size_t)vkey_set(&ix[*n], i,
                                       by_address ? nodes[i].address : nodes[i].name,
                                       by_address);
        qsort(ix, *n, sizeof(*ix), vkey_cmp);
        return ix;
}

/* For each node, the first earlier node with the same address (or name): dup[i], or
 * SIZE_MAX. Returns -1 when out of memory. */
static int nodes_first_twin(const vin_t *in, bool by_address, size_t *dup)
{
        size_t n;
        vkey_t *ix = vkey_index(in->nodes, in->node_count, by_address, &n);
        if (!ix)
                return -1;
        for (size_t i = 0; i < in->node_count; i++)
                dup[i] = SIZE_MAX;
        for (size_t i = 1, first = 0; i < n; i++) {
                if (vkey_cmp_key(&ix[i], &ix[first]) != 0)
                        first = i;
                else
                        dup[ix[i].idx] = ix[first].idx;
        }
        free(ix);
        return 0;
}

static void rule_nodes_unique(const vin_t *in, vout_t *o, bool by_address)
{
        char f[48];
        size_t *dup = malloc((in->node_count ? in->node_count : 1) * sizeof(*dup));
        if (!dup || nodes_first_twin(in, by_address, dup) != 0) {
                free(dup);
                verr(o, "nodes", "out of memory while checking for duplicates");
                return;
        }
        for (size_t i = 1; i < in->node_count; i++) {
                if (dup[i] == SIZE_MAX)
                        continue;
                if (by_address)
                        verr(o, NODE_FIELD(f, i, ".address"),
                             "%s is also the address of nodes[%zu]",
                             Q(in->nodes[i].address), dup[i]);
                else
                        verr(o, NODE_FIELD(f, i, ".name"),
                             "%s is also the name of nodes[%zu]", Q(in->nodes[i].name),
                             dup[i]);
        }
        free(dup);
}

static void rule_nodes_unique_address(const vin_t *in, vout_t *o)
{
        rule_nodes_unique(in, o, true);
}

static void rule_nodes_unique_name(const vin_t *in, vout_t *o)
{
        rule_nodes_unique(in, o, false);
}

static void rule_nodes_role_counts(const vin_t *in, vout_t *o)
{
        unsigned all = 0;
        if (in->node_count == 0)
                return; /* rule_nodes_present said it */
        for (size_t i = 0; i < in->node_count; i++)
                all |= node_roles(&in->nodes[i], NULL);
        if (!(all & ROLE_CONTROLPLANE))
                verr(o, "nodes", "at least one controlplane node is required");
        if (!(all & ROLE_ETCD))
                verr(o, "nodes", "at least one etcd node is required");
        if (!(all & ROLE_WORKER))
                verr(o, "nodes", "at least one worker node is required");
}

static void rule_nodes_not_manager(const vin_t *in, vout_t *o)
{
        char f[48];
        cm_addr_t m;
        if (blank(in->manager_address) || cm_addr_parse_manager(in->manager_address, &m))
                return;
        for (size_t i = 0; i < in->node_count; i++) {
                cm_addr_t a;
                if (in->nodes[i].address &&
                    !cm_addr_parse_host(in->nodes[i].address, &a) &&
                    cm_addr_equal(&a, &m))
                        verr(o, NODE_FIELD(f, i, ".address"),
                             "%s is the manager itself (managerAddress)",
                             Q(in->nodes[i].address));
        }
}

/* ---- update: against the current spec -------------------------------------------------
 */

/* The index in list (its sorted index ix of n entries) of the first node at the same
 * address as node, or -1. */
static long find_by_address(const vkey_t *ix, size_t n, const cm_node_t *node)
{
        vkey_t k;
        if (!vkey_set(&k, 0, node->address, true))
                return -1;
        size_t lo = 0, hi = n; /* first entry not below k's key */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (vkey_cmp_key(&ix[mid], &k) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < n && vkey_cmp_key(&ix[lo], &k) == 0 ? (long)ix[lo].idx : -1;
}

static void rule_update_keeps_controlplane_and_etcd(const vin_t *in, vout_t *o)
{
        const cm_spec_t *cur = in->current;
        size_t nix;
        vkey_t *ix = vkey_index(in->nodes, in->node_count, true, &nix);
        if (!ix) {
                verr(o, "nodes", "out of memory while comparing the node lists");
                return;
        }
        for (size_t i = 0; i < cur->node_count; i++) {
                const cm_node_t *n = &cur->nodes[i];
                unsigned bits = node_roles(n, NULL) & (ROLE_CONTROLPLANE | ROLE_ETCD);
                if (!bits || find_by_address(ix, nix, n) >= 0)
                        continue;
                verr(o, "nodes",
                     "%s node %s (address %s) of the current cluster is missing; "
                     "controlplane and "
                     "etcd nodes can be added, never removed",
                     bits == (ROLE_CONTROLPLANE | ROLE_ETCD) ? "controlplane and etcd"
                     : bits == ROLE_CONTROLPLANE             ? "controlplane"
                                                             : "etcd",
                     Q(n->name), Q(n->address));
        }
        free(ix);
}

static void rule_update_keeps_name_and_roles(const vin_t *in, vout_t *o)
{
        const cm_spec_t *cur = in->current;
        char f[48], now[256], was[256];
        size_t nix;
        vkey_t *ix = vkey_index(cur->nodes, cur->node_count, true, &nix);
        if (!ix) {
                verr(o, "nodes", "out of memory while comparing the node lists");
                return;
        }
        for (size_t i = 0; i < in->node_count; i++) {
                const cm_node_t *n = &in->nodes[i];
                long j = find_by_address(ix, nix, n);
                if (j < 0)
                        continue;
                const cm_node_t *c = &cur->nodes[j];
                if (n->name && c->name && strcmp(n->name, c->name) != 0 &&
                    !blank(n->name))
                        verr(
                            o, NODE_FIELD(f, i, ".name"),
                            "%s differs from %s, the name of the existing node at %s; an "
                            "existing node keeps its name",
                            Q(n->name), Q(c->name), Q(c->address));
                bool unk_n, unk_c;
                unsigned rn = node_roles(n, &unk_n), rc = node_roles(c, &unk_c);
                if (rn != rc && !unk_n && n->role_count > 0)
                        verr(o, NODE_FIELD(f, i, ".roles"),
                             "%s differs from %s, the roles of the existing node %s; an "
                             "existing node keeps its roles",
                             roles_text(n, now, sizeof(now)),
                             roles_text(c, was, sizeof(was)), Q(c->name));
        }
        free(ix);
}

/* ---- import -------------------------------------------------------------------------
 */

static void rule_import_kubeconfig(const vin_t *in, vout_t *o)
{
        if (in->kubeconfig_len == 0)
                verr(o, "kubeconfig", "is required");
}

/* ---- the rules
 * -------------------------------------------------------------------------- */

enum { CREATE = 1, UPDATE = 2, IMPORT = 4 };

static const struct {
        const char *rule; /* DESIGN §4, in short */
        unsigned on;
        void (*check)(const vin_t *, vout_t *);
} rules[] = {
    {"name, sshUser, managerAddress, clusterDomain non-empty", CREATE,
     rule_required_fields},
    {"import: name non-empty", IMPORT, rule_import_name_required},
    {"name: DNS-1123 subdomain", CREATE | IMPORT, rule_name_is_subdomain},
    {"clusterDomain: domain name", CREATE, rule_cluster_domain_is_domain},
    {"managerAddress: address, host:port or URL", CREATE, rule_manager_address_format},
    {"sshKey: unencrypted ed25519/ECDSA, OpenSSH or PEM", CREATE | UPDATE, rule_ssh_key},
    {"sshPort 1-65535", CREATE, rule_ssh_port_range},
    {"clusterCidr: IPv4 CIDR", CREATE, rule_cluster_cidr},
    {"serviceCidr: IPv4 CIDR, at most /12", CREATE, rule_service_cidr},
    {"clusterCidr and serviceCidr disjoint", CREATE, rule_cidrs_disjoint},
    {"clusterDNSServiceIP: IPv4 inside serviceCidr", CREATE, rule_dns_service_ip},
    {"clusterUpstreamDNS: IPv4 list", CREATE, rule_upstream_dns},
    {"network.plugin: flannel or calico", CREATE, rule_network_plugin},
    {"nodes non-empty", CREATE | UPDATE, rule_nodes_present},
    {"node name, address, roles non-empty", CREATE | UPDATE, rule_node_fields_required},
    {"node name: DNS-1123 subdomain", CREATE | UPDATE, rule_node_name_is_subdomain},
    {"node address: IP or host name", CREATE | UPDATE, rule_node_address_format},
    {"roles from controlplane, worker, etcd, edge", CREATE | UPDATE,
     rule_node_roles_known},
    {"no duplicate role", CREATE | UPDATE, rule_node_roles_unique},
    {"controlplane and worker exclude each other", CREATE | UPDATE,
     rule_node_roles_exclusive},
    {"etcd and edge cannot stand alone", CREATE | UPDATE, rule_node_roles_not_alone},
    {"no two nodes with the same address", CREATE | UPDATE, rule_nodes_unique_address},
    {"no two nodes with the same name", CREATE | UPDATE, rule_nodes_unique_name},
    {"one controlplane, one etcd, one worker at least", CREATE | UPDATE,
     rule_nodes_role_counts},
    {"no node is the manager itself", CREATE | UPDATE, rule_nodes_not_manager},
    {"update: controlplane and etcd nodes never removed", UPDATE,
     rule_update_keeps_controlplane_and_etcd},
    {"update: an existing node keeps its name and roles", UPDATE,
     rule_update_keeps_name_and_roles},
    {"import: kubeconfig non-empty", IMPORT, rule_import_kubeconfig},
};

static int run(unsigned on, const vin_t *in, cm_field_errors_t *errs)
{
        vout_t o = {errs, 0};
        for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
                if (rules[i].on & on)
                        rules[i].check(in, &o);
        return o.found;
}

int cm_validate_create(const cm_spec_t *spec, const unsigned char *ssh_key,
                       size_t ssh_key_len, cm_field_errors_t *errs)
{
        vin_t in = {.spec = spec,
                    .nodes = spec->nodes,
                    .node_count = spec->node_count,
                    .manager_address = spec->manager_address,
                    .key = ssh_key,
                    .key_len = ssh_key_len};
        return run(CREATE, &in, errs);
}

int cm_validate_update(const cm_spec_t *current, const cm_node_t *nodes,
                       size_t node_count, const unsigned char *ssh_key,
                       size_t ssh_key_len, cm_field_errors_t *errs)
{
        vin_t in = {.current = current,
                    .nodes = nodes,
                    .node_count = nodes ? node_count : 0,
                    .manager_address = current->manager_address,
                    .key = ssh_key,
                    .key_len = ssh_key_len};
        return run(UPDATE, &in, errs);
}

int cm_validate_import(const char *name, size_t kubeconfig_len, cm_field_errors_t *errs)
{
        vin_t in = {.name = name, .kubeconfig_len = kubeconfig_len};
        return run(IMPORT, &in, errs);
}

int cm_validate_ssh_key(const unsigned char *key, size_t len, const char *field,
                        cm_field_errors_t *errs)
{
        vout_t o = {errs, 0};
        if (!field)
                field = "sshKey";
        if (!key || len == 0)
                verr(&o, field, "is required");
        else
                check_key(&o, field, key, len);
        return o.found;
}
