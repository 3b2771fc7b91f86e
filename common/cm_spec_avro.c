/*
 * cm_spec_avro.c - the cluster spec and its nodes as Avro cm.ClusterSpec / cm.Node
 * values.
 *
 * The free functions here mirror cm_spec_destroy()/cm_nodes_free() of cm_spec.c on
 * purpose: a decoder must be able to release what it built without depending on the JSON
 * module.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/err.h"
#include "cm/avro.h"
#include "cm/spec_avro.h"

int cm_node_to_avro(const cm_node_t *node, avro_value_t *rec, char *errstr,
                    size_t errstr_size)
{
        int rc;

        if ((rc = cm_avro_set_string(rec, "name", node->name, errstr, errstr_size)) ||
            (rc = cm_avro_set_string(rec, "address", node->address, errstr,
                                     errstr_size)) ||
            (rc = cm_avro_set_string_array(rec, "roles", node->roles, node->role_count,
                                           errstr, errstr_size)))
                return rc;
        return 0;
}

int cm_node_from_avro(cm_node_t *node, const avro_value_t *rec, char *errstr,
                      size_t errstr_size)
{
        int rc;

        memset(node, 0, sizeof(*node));
        if ((rc = cm_avro_get_string(rec, "name", &node->name, errstr, errstr_size)) ||
            (rc = cm_avro_get_string(rec, "address", &node->address, errstr,
                                     errstr_size)) ||
            (rc = cm_avro_get_string_array(rec, "roles", &node->roles, &node->role_count,
                                           errstr, errstr_size))) {
                cm_node_destroy(node);
                return rc;
        }
        return 0;
}

int cm_nodes_to_avro(const cm_node_t *nodes, size_t count, avro_value_t *arr,
                     char *errstr, size_t errstr_size)
{
        avro_value_t elem;
        char prefix[32];
        int rc;

        if (avro_value_get_type(arr) != AVRO_ARRAY || avro_value_reset(arr)) {
                cm_seterr(errstr, errstr_size, ": not an array of cm.Node in the schema");
                return CM_AVRO_ERR_INTERNAL;
        }
        if (count && !nodes) {
                cm_seterr(errstr, errstr_size, ": NULL node array with %zu nodes", count);
                return CM_AVRO_ERR_INVALID;
        }
        for (size_t i = 0; i < count; i++) {
                snprintf(prefix, sizeof(prefix), "[%zu].", i);
                if (avro_value_append(arr, &elem, NULL)) {
                        cm_seterr(errstr, errstr_size, "cannot append");
                        rc = CM_AVRO_ERR_NOMEM;
                } else {
                        rc = cm_node_to_avro(&nodes[i], &elem, errstr, errstr_size);
                }
                if (rc) {
                        cm_avro_errprefix(errstr, errstr_size, prefix);
                        return rc;
                }
        }
        return 0;
}

int cm_nodes_from_avro(cm_node_t **nodes, size_t *count, const avro_value_t *arr,
                       char *errstr, size_t errstr_size)
{
        avro_value_t elem;
        char prefix[32];
        cm_node_t *out;
        size_t n;
        int rc;

        *nodes = NULL;
        *count = 0;
        if (avro_value_get_type(arr) != AVRO_ARRAY || avro_value_get_size(arr, &n)) {
                cm_seterr(errstr, errstr_size, ": not an array of cm.Node in the schema");
                return CM_AVRO_ERR_INTERNAL;
        }
        if (!n)
                return 0;
        if (!(out = calloc(n, sizeof(*out)))) {
                cm_seterr(errstr, errstr_size, ": out of memory for %zu nodes", n);
                return CM_AVRO_ERR_NOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                snprintf(prefix, sizeof(prefix), "[%zu].", i);
                if (avro_value_get_by_index(arr, i, &elem, NULL)) {
                        cm_seterr(errstr, errstr_size, "cannot read");
                        rc = CM_AVRO_ERR_INTERNAL;
                } else {
                        rc = cm_node_from_avro(&out[i], &elem, errstr, errstr_size);
                }
                if (rc) {
                        cm_avro_errprefix(errstr, errstr_size, prefix);
                        cm_nodes_free(out, n);
                        return rc;
                }
        }
        *nodes = out;
        *count = n;
        return 0;
}

int cm_spec_to_avro(const cm_spec_t *spec, avro_value_t *rec, char *errstr,
                    size_t errstr_size)
{
        avro_value_t net, nodes;
        int rc;

        if ((rc = cm_avro_set_string(rec, "name", spec->name, errstr, errstr_size)) ||
            (rc = cm_avro_set_string(rec, "sshUser", spec->ssh_user, errstr,
                                     errstr_size)) ||
            (rc = cm_avro_set_int(rec, "sshPort", spec->ssh_port, errstr, errstr_size)) ||
            (rc = cm_avro_set_string(rec, "managerAddress", spec->manager_address, errstr,
                                     errstr_size)) ||
            (rc = cm_avro_set_string(rec, "clusterDomain", spec->cluster_domain, errstr,
                                     errstr_size)) ||
            (rc = cm_avro_set_string(rec, "kubernetesVersion", spec->kubernetes_version,
                                     errstr, errstr_size)) ||
            (rc = cm_avro_set_string(rec, "clusterCidr", spec->cluster_cidr, errstr,
                                     errstr_size)) ||
            (rc = cm_avro_set_string(rec, "serviceCidr", spec->service_cidr, errstr,
                                     errstr_size)) ||
            (rc =
                 cm_avro_set_string(rec, "clusterDNSServiceIP",
                                    spec->cluster_dns_service_ip, errstr, errstr_size)) ||
            (rc = cm_avro_set_string_array(
                 rec, "clusterUpstreamDNS", spec->cluster_upstream_dns,
                 spec->cluster_upstream_dns_count, errstr, errstr_size)))
                return rc;
        if ((rc = cm_avro_field(rec, "network", &net, errstr, errstr_size)))
                return rc;
        if ((rc = cm_avro_set_string(&net, "plugin", spec->network_plugin, errstr,
                                     errstr_size))) {
                cm_avro_errprefix(errstr, errstr_size, "network.");
                return rc;
        }
        if ((rc = cm_avro_field(rec, "nodes", &nodes, errstr, errstr_size)))
                return rc;
        if ((rc = cm_nodes_to_avro(spec->nodes, spec->node_count, &nodes, errstr,
                                   errstr_size))) {
                cm_avro_errprefix(errstr, errstr_size, "nodes");
                return rc;
        }
        return 0;
}

int cm_spec_from_avro(cm_spec_t *spec, const avro_value_t *rec, char *errstr,
                      size_t errstr_size)
{
        avro_value_t net, nodes;
        int32_t port = 0;
        int rc;

        memset(spec, 0, sizeof(*spec));
        if ((rc = cm_avro_get_string(rec, "name", &spec->name, errstr, errstr_size)) ||
            (rc = cm_avro_get_string(rec, "sshUser", &spec->ssh_user, errstr,
                                     errstr_size)) ||
            (rc = cm_avro_get_int(rec, "sshPort", &port, errstr, errstr_size)) ||
            (rc = cm_avro_get_string(rec, "managerAddress", &spec->manager_address,
                                     errstr, errstr_size)) ||
            (rc = cm_avro_get_string(rec, "clusterDomain", &spec->cluster_domain, errstr,
                                     errstr_size)) ||
            (rc = cm_avro_get_string(rec, "kubernetesVersion", &spec->kubernetes_version,
                                     errstr, errstr_size)) ||
            (rc = cm_avro_get_string(rec, "clusterCidr", &spec->cluster_cidr, errstr,
                                     errstr_size)) ||
            (rc = cm_avro_get_string(rec, "serviceCidr", &spec->service_cidr, errstr,
                                     errstr_size)) ||
            (rc = cm_avro_get_string(rec, "clusterDNSServiceIP",
                                     &spec->cluster_dns_service_ip, errstr,
                                     errstr_size)) ||
            (rc = cm_avro_get_string_array(
                 rec, "clusterUpstreamDNS", &spec->cluster_upstream_dns,
                 &spec->cluster_upstream_dns_count, errstr, errstr_size)))
                goto fail;
        spec->ssh_port = port;
        if ((rc = cm_avro_field(rec, "network", &net, errstr, errstr_size)))
                goto fail;
        if ((rc = cm_avro_get_string(&net, "plugin", &spec->network_plugin, errstr,
                                     errstr_size))) {
                cm_avro_errprefix(errstr, errstr_size, "network.");
                goto fail;
        }
        if ((rc = cm_avro_field(rec, "nodes", &nodes, errstr, errstr_size)))
                goto fail;
        if ((rc = cm_nodes_from_avro(&spec->nodes, &spec->node_count, &nodes, errstr,
                                     errstr_size))) {
                cm_avro_errprefix(errstr, errstr_size, "nodes");
                goto fail;
        }
        return 0;
fail:
        cm_spec_destroy(spec);
        return rc;
}
