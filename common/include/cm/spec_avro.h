/*
 * cm/spec_avro.h - cm_spec_t / cm_node_t (cm/spec.h) to and from avro-c generic values of
 * the cm.ClusterSpec and cm.Node records, wherever they appear (standalone, inside
 * cm.Command's Create and Update payloads, inside cm.ClusterEvent). Kept apart from
 * cm/spec.h so the JSON side (cm_spec.c) and the Avro side evolve in their own files.
 *
 * Encoding copies every string into the value; decoding allocates the struct's strings,
 * which the caller owns. Errors name the field path ("nodes[1].roles[0]: NULL string
 * (required)"). Thread-safe on distinct values and structs.
 */
#ifndef CM_SPEC_AVRO_H
#define CM_SPEC_AVRO_H

#include <stddef.h>
#include <avro.h>

#include "cm/spec.h"

/* rec is a cm.Node record value. Returns 0 or a cm_avro_err_t. */
int cm_node_to_avro(const cm_node_t *node, avro_value_t *rec, char *errstr,
                    size_t errstr_size);
/* Fills *node (zeroed first; on error nothing is left allocated). */
int cm_node_from_avro(cm_node_t *node, const avro_value_t *rec, char *errstr,
                      size_t errstr_size);

/* arr is an array-of-cm.Node value; it is emptied first. */
int cm_nodes_to_avro(const cm_node_t *nodes, size_t count, avro_value_t *arr,
                     char *errstr, size_t errstr_size);
/* *nodes (NULL when empty) and *count; free with cm_nodes_free.
 */
int cm_nodes_from_avro(cm_node_t **nodes, size_t *count, const avro_value_t *arr,
                       char *errstr, size_t errstr_size);

/* rec is a cm.ClusterSpec record value. Every string of spec is required (NULL is an
 * error). */
int cm_spec_to_avro(const cm_spec_t *spec, avro_value_t *rec, char *errstr,
                    size_t errstr_size);
/* Fills *spec (zeroed first; on error nothing is left allocated); free with
 * cm_spec_destroy. */
int cm_spec_from_avro(cm_spec_t *spec, const avro_value_t *rec, char *errstr,
                      size_t errstr_size);

#endif
