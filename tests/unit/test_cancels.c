/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cancels.c: the cancelled-ids set (remembered for the TTL, bounded,
 * lock-free while empty) and the control record's JSON, both ways.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cancels.h"

static void test_set_ttl_and_bound(void **state) {
        sq_cancels_t *c = sq_cancels_new(2, 1000000); /* 2 ids, 1 s */
        (void)state;

        assert_false(sq_cancels_contains(c, "t-1", 0));
        assert_true(sq_cancels_add(c, "t-1", 100));
        assert_false(sq_cancels_add(c, "t-1", 200)); /* already there */
        assert_true(sq_cancels_contains(c, "t-1", 500000));
        assert_false(sq_cancels_contains(c, "t-2", 500000));
        assert_int_equal(sq_cancels_count(c), 1);
        /* Before its task comes, and for the TTL only. */
        assert_true(sq_cancels_contains(c, "t-1", 1000099));
        assert_false(sq_cancels_contains(c, "t-1", 1000100));
        assert_int_equal(sq_cancels_count(c), 0);
        /* Bounded: the oldest goes when full. */
        sq_cancels_add(c, "a", 2000000);
        sq_cancels_add(c, "b", 2000001);
        sq_cancels_add(c, "c", 2000002);
        assert_false(sq_cancels_contains(c, "a", 2000003));
        assert_true(sq_cancels_contains(c, "b", 2000003));
        assert_true(sq_cancels_contains(c, "c", 2000003));
        sq_cancels_destroy(c);
        sq_cancels_destroy(NULL);
}

static void test_record_round_trip(void **state) {
        char *json = sq_cancels_record("t-\xc3\xa9-1", "swarmq-producer", 42);
        char *id   = NULL;
        char errstr[256];
        (void)state;

        assert_string_equal(json, "{\"cancel\":\"t-\xc3\xa9-1\",\"at\":42,"
                                  "\"by\":\"swarmq-producer\"}");
        assert_int_equal(
            sq_cancels_parse(json, strlen(json), &id, errstr, sizeof(errstr)),
            SQ_OK);
        assert_string_equal(id, "t-\xc3\xa9-1");
        sq_free(id);
        sq_free(json);
}

static void test_parse_refuses(void **state) {
        static const char *bad[] = {
            "",
            "not json",
            "[\"t-1\"]",
            "{\"cancel\": 7}",
            "{\"cancel\": \"\"}",
            "{\"id\": \"t-1\"}",
            "{\"cancel\": \"a\\u0000b\"}",
        };
        size_t i;
        (void)state;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *id = NULL;
                char errstr[256];
                if (sq_cancels_parse(bad[i], strlen(bad[i]), &id, errstr,
                                     sizeof(errstr)) != SQ_ERR_DECODE)
                        fail_msg("accepted \"%s\"", bad[i]);
                assert_null(id);
                assert_non_null(strstr(errstr, "control record"));
        }
        {
                /* Other fields are ignored (later kinds of record). */
                const char *ok = "{\"cancel\":\"x\",\"workflow\":\"w\"}";
                char *id       = NULL;
                char errstr[256];
                assert_int_equal(sq_cancels_parse(ok, strlen(ok), &id, errstr,
                                                  sizeof(errstr)),
                                 SQ_OK);
                assert_string_equal(id, "x");
                sq_free(id);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_set_ttl_and_bound),
            cmocka_unit_test(test_record_round_trip),
            cmocka_unit_test(test_parse_refuses),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
