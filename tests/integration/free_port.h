/*
 * free_port.h - a free TCP port on loopback for a server a test starts, shared by the
 * integration harnesses.
 *
 * Ports are drawn at random below the kernel's ephemeral range (32768-60999 by default),
 * where outgoing connections never take their source port: a port from bind(port 0)
 * lies inside that range, and between the test picking it and the server binding it,
 * any client connection (Kafka, PostgreSQL, HTTP, many at once under ctest -j) may take
 * it - "Address already in use". The port is checked free when drawn.
 */
#ifndef CM_TEST_FREE_PORT_H
#define CM_TEST_FREE_PORT_H

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CM_TEST_PORT_LOW  20000
#define CM_TEST_PORT_HIGH 32759 /* +2 stays below the ephemeral range */

/* A port in [CM_TEST_PORT_LOW, CM_TEST_PORT_HIGH] nothing listens on, or -1. */
static inline int cm_test_free_port(void)
{
        static unsigned seed;
        if (!seed)
                seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
        for (int tries = 0; tries < 200; tries++) {
                int port =
                    CM_TEST_PORT_LOW +
                    (int)(rand_r(&seed) % (CM_TEST_PORT_HIGH - CM_TEST_PORT_LOW + 1));
                struct sockaddr_in a = {.sin_family = AF_INET,
                                        .sin_port = htons((uint16_t)port),
                                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
                int s = socket(AF_INET, SOCK_STREAM, 0);
                if (s < 0)
                        return -1;
                int ok = bind(s, (struct sockaddr *)&a, sizeof(a)) == 0;
                close(s);
                if (ok)
                        return port;
        }
        return -1;
}

/* cm_test_free_port() inside a Check test: failing the test when none is found. */
static inline int cm_test_port(void)
{
        int port = cm_test_free_port();
        ck_assert_msg(port > 0, "no free port on loopback in [%d, %d]", CM_TEST_PORT_LOW,
                      CM_TEST_PORT_HIGH);
        return port;
}

#endif
