/*
 * check_main.h - the end of a Check test program's main(), shared by tests/unit/test_*.c
 * and tests/integration/it_*.c (include it as "../check_main.h").
 *
 * cm_check_run() runs every test of the suite with Check's default fork mode and normal
 * output, and returns EXIT_SUCCESS when all passed, EXIT_FAILURE otherwise, for main() to
 * return. It takes ownership of the suite: the suite is freed with its runner, so do not
 * use it afterwards. Programs that need another fork mode or output level build their own
 * SRunner.
 */
#ifndef CM_CHECK_MAIN_H
#define CM_CHECK_MAIN_H

#include <stdlib.h>

#include <check.h>

static inline int cm_check_run(Suite *s)
{
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
