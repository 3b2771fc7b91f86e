/*
 * replay_main.c - runs a fuzz target's LLVMFuzzerTestOneInput on every file of the
 * folders (or files) given as arguments, without libFuzzer: the regression inputs a fuzz
 * run once crashed on, and the seed corpus, replayed by ctest in every build.
 *
 *   fuzz_replay_<target> DIR|FILE...
 *
 * Exits 0 when every input ran (a crash aborts the process, naming the file first),
 * 1 when an argument cannot be read. A missing folder counts as empty.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        size_t cap = 4096, len = 0, n;
        unsigned char *buf = malloc(cap);
        while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
                len += n;
                if (len == cap) {
                        unsigned char *nb = realloc(buf, cap *= 2);
                        if (!nb) {
                                free(buf);
                                buf = NULL;
                        }
                        buf = nb;
                }
        }
        int bad = ferror(f) || !buf;
        fclose(f);
        if (bad) {
                fprintf(stderr, "%s: cannot read\n", path);
                free(buf);
                return -1;
        }
        fprintf(stderr, "replay %s (%zu bytes)\n", path, len);
        /* an exact-size copy, so ASan sees a read past the input's end */
        unsigned char *exact = malloc(len ? len : 1);
        memcpy(exact, buf, len);
        free(buf);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
        return 0;
}

static int cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir, size_t *count)
{
        DIR *d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -1;
        char **names = NULL;
        size_t n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.')
                        continue;
                char **nn = realloc(names, (n + 1) * sizeof(*names));
                if (!nn)
                        break;
                names = nn;
                if (asprintf(&names[n], "%s/%s", dir, e->d_name) < 0)
                        break;
                n++;
        }
        closedir(d);
        if (n > 1)
                qsort(names, n, sizeof(*names), cmp);
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
                        if (replay_file(names[i]) != 0)
                                rc = -1;
                        else
                                (*count)++;
                }
                free(names[i]);
        }
        free(names);
        return rc;
}

int main(int argc, char **argv)
{
        size_t count = 0;
        int rc = 0;
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
                        if (replay_dir(argv[i], &count) != 0)
                                rc = 1;
                } else if (stat(argv[i], &st) == 0) {
                        if (replay_file(argv[i]) != 0)
                                rc = 1;
                        else
                                count++;
                }
        }
        printf("%s: %zu inputs replayed\n", argc > 0 ? argv[0] : "replay", count);
        return rc;
}
