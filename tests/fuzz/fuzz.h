/*
 * fuzz.h - what the fuzz targets share. Each tests/fuzz/fuzz_<target>.c defines
 * LLVMFuzzerTestOneInput; it is linked either with libFuzzer (the CM_FUZZ build, run by
 * scripts/fuzz) or with replay_main.c, a plain main() that feeds it the files of the
 * corpus and regressions/ folders (the fuzz.replay.* ctest tests of every build).
 *
 * FUZZ_CHECK aborts on a broken invariant, so libFuzzer (and the replay) report it as a
 * crash with its input, in a sanitizer build or not.
 */
#ifndef CM_FUZZ_H
#define CM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                            \
        do {                                                                             \
                if (!(cond)) {                                                           \
                        fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);       \
                        fprintf(stderr, __VA_ARGS__);                                    \
                        fputc('\n', stderr);                                             \
                        abort();                                                         \
                }                                                                        \
        } while (0)

#endif
