/*
 * cm-keygen - creates the manager's sealing key pair (cm/seal.h) and prints the public
 * key.
 *
 *   cm-keygen --public FILE --secret FILE [--force]
 *
 * The secret key file is created 0600; existing files are never replaced without --force.
 * Prints the public key as base64 on stdout (what GET /v1/publickey serves); exits 0 on
 * success, 1 on an error (message on stderr), 2 on a usage error.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "cm/seal.h"

static void usage(FILE *out)
{
        fprintf(
            out,
            "usage: cm-keygen --public FILE --secret FILE [--force]\n"
            "\n"
            "Generates the key pair cm uses to seal secrets (libsodium sealed boxes)\n"
            "and prints the public key as base64.\n"
            "\n"
            "  -p, --public FILE   public key file to write (mode 0644)\n"
            "  -s, --secret FILE   secret key file to write (mode 0600)\n"
            "  -f, --force         replace existing key files\n"
            "  -h, --help          show this help\n");
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"public", required_argument, NULL, 'p'},
            {"secret", required_argument, NULL, 's'},
            {"force", no_argument, NULL, 'f'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *pub = NULL, *sec = NULL;
        bool force = false;
        int c;
        while ((c = getopt_long(argc, argv, "p:s:fh", opts, NULL)) != -1) {
                switch (c) {
                case 'p':
                        pub = optarg;
                        break;
                case 's':
                        sec = optarg;
                        break;
                case 'f':
                        force = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "cm-keygen: unexpected argument \"%s\"\n", argv[optind]);
                usage(stderr);
                return 2;
        }
        if (!pub || !sec || !*pub || !*sec) {
                fprintf(stderr,
                        "cm-keygen: both --public FILE and --secret FILE are required\n");
                usage(stderr);
                return 2;
        }

        char errstr[512];
        cm_seal_keypair_t *kp = NULL;
        cm_seal_err_t err =
            cm_seal_keypair_generate(pub, sec, force, &kp, errstr, sizeof(errstr));
        if (err != CM_SEAL_OK) {
                fprintf(stderr, "cm-keygen: %s%s\n", errstr,
                        err == CM_SEAL_ERR_EXISTS ? " (--force replaces it)" : "");
                return 1;
        }
        char *b64 = cm_seal_pubkey_to_base64(cm_seal_keypair_pubkey(kp));
        cm_seal_keypair_destroy(kp);
        if (!b64) {
                fprintf(stderr, "cm-keygen: out of memory\n");
                return 1;
        }
        printf("%s\n", b64);
        free(b64);
        if (fflush(stdout) != 0) {
                perror("cm-keygen: stdout");
                return 1;
        }
        return 0;
}
