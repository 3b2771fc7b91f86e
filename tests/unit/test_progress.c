/*
 * test_progress.c - cm.JobProgress round trips and field errors.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cm/avro.h"
#include "cm/progress.h"
#include "../check_main.h"

static void fill(cm_job_progress_t *p, size_t nlines, int with_node)
{
        memset(p, 0, sizeof(*p));
        p->cluster = strdup("prod");
        p->job_id = strdup("2c8f0f5e-9a4e-4b47-8a53-0f3a5c1d9e77");
        p->kind = strdup("zke-up");
        p->attempt = 3;
        p->step = strdup("install-docker");
        p->node = with_node ? strdup("worker-1") : NULL;
        p->status = strdup("failed");
        p->at = 1767225601000LL;
        p->line_count = nlines;
        p->lines = nlines ? calloc(nlines, sizeof(char *)) : NULL;
        for (size_t i = 0; i < nlines; i++)
                p->lines[i] = i % 2 ? strdup("")
                                    : strdup("apt-get: E: Unable to locate \xe2\x80\x9c"
                                             "docker-ce\xe2\x80\x9d");
}

START_TEST(test_roundtrip)
{
        size_t counts[] = {0, 1, 2, 300};
        for (size_t c = 0; c < 4; c++) {
                cm_job_progress_t p, out;
                unsigned char *buf;
                size_t len;
                char err[512] = "";
                fill(&p, counts[c], c % 2);
                ck_assert_msg(cm_job_progress_encode(&p, &buf, &len, err, sizeof(err)) ==
                                  0,
                              "%s", err);
                ck_assert_msg(cm_job_progress_decode(buf, len, &out, err, sizeof(err)) ==
                                  0,
                              "%s", err);
                ck_assert_str_eq(out.cluster, p.cluster);
                ck_assert_str_eq(out.job_id, p.job_id);
                ck_assert_str_eq(out.kind, p.kind);
                ck_assert_int_eq(out.attempt, 3);
                ck_assert_str_eq(out.step, p.step);
                if (p.node)
                        ck_assert_str_eq(out.node, p.node);
                else
                        ck_assert_ptr_null(out.node);
                ck_assert_str_eq(out.status, p.status);
                ck_assert_int_eq(out.at, p.at);
                ck_assert_uint_eq(out.line_count, p.line_count);
                for (size_t i = 0; i < p.line_count; i++)
                        ck_assert_str_eq(out.lines[i], p.lines[i]);
                cm_job_progress_destroy(&out);
                cm_job_progress_destroy(&p);
                free(buf);
        }
}
END_TEST

START_TEST(test_errors)
{
        cm_job_progress_t p, out;
        unsigned char *buf;
        size_t len;
        char err[512] = "";
        fill(&p, 3, 1);
        free(p.lines[2]);
        p.lines[2] = NULL;
        ck_assert_int_eq(cm_job_progress_encode(&p, &buf, &len, err, sizeof(err)),
                         CM_AVRO_ERR_INVALID);
        ck_assert_str_eq(err, "cm.JobProgress.lines[2]: NULL string (required)");
        p.lines[2] = strdup("x");
        ck_assert_int_eq(cm_job_progress_encode(&p, &buf, &len, err, sizeof(err)), 0);
        buf[len - 1] =
            0x05; /* the end marker becomes a block of -3 items: size missing */
        ck_assert_int_eq(cm_job_progress_decode(buf, len, &out, err, sizeof(err)),
                         CM_AVRO_ERR_MALFORMED);
        ck_assert_msg(strstr(err, "cm.JobProgress: truncated body") &&
                          strstr(err, "field lines"),
                      "%s", err);
        free(buf);
        cm_job_progress_destroy(&p);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("progress");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_roundtrip);
        tcase_add_test(tc, test_errors);
        suite_add_tcase(s, tc);
        return cm_check_run(s);
}
