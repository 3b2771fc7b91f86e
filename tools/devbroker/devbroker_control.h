/*
 * devbroker_control.h - the fault-injection control socket of cm-devbroker.
 *
 * A Unix stream socket; each connection sends one command line and reads one answer line
 * ("ok ..." or "error: ..."). Commands (broker ids are 1..N, as the mock cluster numbers
 * them):
 *   ping
 *   broker-down ID | broker-up ID          the broker closes / accepts connections
 *   rtt ID MS                              added round-trip time of a broker
 *   errors API COUNT ERR [ERR...]          the next COUNT requests of API fail with the
 *                                          ERRs in turn (API: produce, fetch, metadata,
 *                                          offsetcommit, offsetfetch, findcoordinator,
 *                                          joingroup, heartbeat, syncgroup, initproducerid,
 *                                          or a number; ERR: a Kafka error name such as
 *                                          NOT_LEADER_FOR_PARTITION, or a number; COUNT
 *                                          ERRs are cycled when fewer are given)
 *   clear-errors API
 *   leader TOPIC PARTITION ID              move a partition's leader
 *   coordinator group|transaction KEY ID   move a group's coordinator
 * Client side: `cm-devbroker --ctl PATH COMMAND...` sends one command and prints the answer.
 */
#ifndef CM_DEVBROKER_CONTROL_H
#define CM_DEVBROKER_CONTROL_H

#include <librdkafka/rdkafka_mock.h>
#include <stddef.h>

/* Listens on path (an existing socket file is replaced). Returns the fd or -1 (logged). */
int devbroker_control_listen(const char *path);

/* Accepts one connection on lfd, reads one command, applies it to mcluster, answers. */
void devbroker_control_serve(int lfd, rd_kafka_mock_cluster_t *mcluster, int brokers);

/* Applies one command line; writes the answer (without newline) into out. Returns 0 when
 * the command was applied. Exposed for the client-free unit test. */
int devbroker_control_apply(rd_kafka_mock_cluster_t *mcluster, int brokers, char *line,
                            char *out, size_t out_size);

/* Client: sends argv joined by spaces to path, prints the answer. Returns an exit code. */
int devbroker_control_client(const char *path, int argc, char **argv);

#endif
