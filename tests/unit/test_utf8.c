/* test_utf8 - UTF-8 checks and JSON escaping (common/cm_utf8.c). */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cm/utf8.h"
#include "../check_main.h"

static size_t seq(const char *s)
{
        return cm_utf8_seq_len((const unsigned char *)s, strlen(s));
}

START_TEST(test_seq_len)
{
        ck_assert_uint_eq(seq("a"), 0);
        ck_assert_uint_eq(seq("\xC3\xA9"), 2);         /* é */
        ck_assert_uint_eq(seq("\xE2\x82\xAC"), 3);     /* € */
        ck_assert_uint_eq(seq("\xF0\x9F\x98\x80"), 4); /* 😀 */
        ck_assert_uint_eq(seq("\xC0\xAF"), 0);         /* overlong '/' */
        ck_assert_uint_eq(seq("\xE0\x80\xAF"), 0);     /* overlong */
        ck_assert_uint_eq(seq("\xED\xA0\x80"), 0);     /* surrogate U+D800 */
        ck_assert_uint_eq(seq("\xF4\x90\x80\x80"), 0); /* above U+10FFFF */
        ck_assert_uint_eq(seq("\xC3"), 0);             /* cut short */
        ck_assert_uint_eq(seq("\xE2\x82"), 0);
        ck_assert_uint_eq(seq("\x80"), 0); /* a lone continuation byte */
}
END_TEST

START_TEST(test_cut)
{
        ck_assert_uint_eq(cm_utf8_cut("abc", 2), 2);
        ck_assert_uint_eq(cm_utf8_cut("abc", 10), 3);
        ck_assert_uint_eq(cm_utf8_cut("a\xC3\xA9", 2), 1); /* not inside é */
        ck_assert_uint_eq(cm_utf8_cut("a\xC3\xA9", 3), 3);
        ck_assert_uint_eq(cm_utf8_cut("\xF0\x9F\x98\x80z", 3), 0);
        ck_assert_uint_eq(cm_utf8_cut("\xFF\xFE", 1),
                          1); /* invalid bytes count one each */
        ck_assert_uint_eq(cm_utf8_cut("", 5), 0);
}
END_TEST

static char *escaped(const char *s, size_t n)
{
        size_t need = cm_utf8_json_escape(s, n, NULL);
        char *out = malloc(need + 1);
        ck_assert_uint_eq(cm_utf8_json_escape(s, n, out), need);
        out[need] = '\0';
        return out;
}

START_TEST(test_json_escape)
{
        char *e = escaped("a\"b\\c\n\r\t\b\f\x01\x7f", 12);
        ck_assert_str_eq(e, "a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u007f");
        free(e);
        e = escaped("caf\xC3\xA9 \xFF end", 11);
        ck_assert_str_eq(e, "caf\xC3\xA9 \xEF\xBF\xBD end"); /* invalid byte -> U+FFFD */
        free(e);
        e = escaped("a\0b", 3); /* n, not the NUL, bounds the input */
        ck_assert_str_eq(e, "a\\u0000b");
        free(e);
}
END_TEST

/* Whatever the bytes, the result inside quotes is a JSON string jansson reads back. */
START_TEST(test_json_escape_always_valid)
{
        unsigned char in[256];
        for (int i = 0; i < 256; i++)
                in[i] = (unsigned char)i;
        char *e = escaped((const char *)in, sizeof(in));
        size_t len = strlen(e);
        char *doc = malloc(len + 3);
        doc[0] = '"';
        memcpy(doc + 1, e, len);
        doc[len + 1] = '"';
        doc[len + 2] = '\0';
        json_error_t err;
        json_t *v = json_loads(doc, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        ck_assert_msg(v != NULL, "not JSON: %s", err.text);
        ck_assert(json_is_string(v));
        /* the 128 ASCII bytes come back as they were */
        ck_assert_int_eq(memcmp(json_string_value(v), in, 128), 0);
        json_decref(v);
        free(doc);
        free(e);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("utf8");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_seq_len);
        tcase_add_test(tc, test_cut);
        tcase_add_test(tc, test_json_escape);
        tcase_add_test(tc, test_json_escape_always_valid);
        suite_add_tcase(s, tc);
        return cm_check_run(s);
}
