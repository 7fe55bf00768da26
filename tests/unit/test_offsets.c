/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_offsets.c: the completed-offset tracker commits only the contiguous
 * completed prefix, whatever order tasks finish in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "offsets.h"

static void test_empty_tracker_has_nothing_to_commit(void **state) {
        sq_offsets_t *offsets = sq_offsets_new();
        (void)state;
        assert_int_equal(sq_offsets_committable(offsets), -1);
        assert_int_equal(sq_offsets_in_flight(offsets), 0);
        assert_int_equal(sq_offsets_mark_done(offsets, 0), SQ_ERR_NOT_FOUND);
        sq_offsets_destroy(offsets);
}

/* Each row: offsets admitted 10..10+n-1, then done in the given order; after
 * each completion the expected committable offset. */
static const struct {
        const char *name;
        int n;
        int done_order[8];
        int64_t expect_after[8];
} completion_cases[] = {
    {"in order", 4, {0, 1, 2, 3}, {11, 12, 13, 14}},
    {"reverse", 4, {3, 2, 1, 0}, {10, 10, 10, 14}},
    {"middle first", 5, {2, 0, 4, 1, 3}, {10, 11, 11, 13, 15}},
    {"head last", 3, {1, 2, 0}, {10, 10, 13}},
};

static void test_out_of_order_completion_commits_prefix(void **state) {
        size_t c;
        (void)state;
        for (c = 0; c < sizeof(completion_cases) / sizeof(completion_cases[0]);
             c++) {
                sq_offsets_t *offsets = sq_offsets_new();
                int i;
                for (i = 0; i < completion_cases[c].n; i++)
                        assert_int_equal(sq_offsets_admit(offsets, 10 + i),
                                         SQ_OK);
                assert_int_equal(sq_offsets_committable(offsets), 10);
                for (i = 0; i < completion_cases[c].n; i++) {
                        int64_t off = 10 + completion_cases[c].done_order[i];
                        assert_int_equal(sq_offsets_mark_done(offsets, off),
                                         SQ_OK);
                        if (sq_offsets_committable(offsets) !=
                            completion_cases[c].expect_after[i])
                                fail_msg(
                                    "case \"%s\" step %d: committable "
                                    "%lld, expected %lld",
                                    completion_cases[c].name, i,
                                    (long long)sq_offsets_committable(offsets),
                                    (long long)completion_cases[c]
                                        .expect_after[i]);
                }
                assert_int_equal(sq_offsets_in_flight(offsets), 0);
                assert_int_equal(sq_offsets_held(offsets), 0);
                sq_offsets_destroy(offsets);
        }
}

static void test_gaps_in_offsets_are_skipped(void **state) {
        /* Compacted topics and transaction markers leave holes. */
        sq_offsets_t *offsets = sq_offsets_new();
        (void)state;
        assert_int_equal(sq_offsets_admit(offsets, 5), SQ_OK);
        assert_int_equal(sq_offsets_admit(offsets, 9), SQ_OK);
        assert_int_equal(sq_offsets_admit(offsets, 20), SQ_OK);
        assert_int_equal(sq_offsets_mark_done(offsets, 9), SQ_OK);
        assert_int_equal(sq_offsets_committable(offsets), 5);
        assert_int_equal(sq_offsets_mark_done(offsets, 5), SQ_OK);
        assert_int_equal(sq_offsets_committable(offsets), 20);
        assert_int_equal(sq_offsets_mark_done(offsets, 20), SQ_OK);
        assert_int_equal(sq_offsets_committable(offsets), 21);
        sq_offsets_destroy(offsets);
}

static void test_rejects_duplicates_and_unknown(void **state) {
        sq_offsets_t *offsets = sq_offsets_new();
        (void)state;
        assert_int_equal(sq_offsets_admit(offsets, 3), SQ_OK);
        assert_int_equal(sq_offsets_admit(offsets, 3), SQ_ERR_INVALID_ARG);
        assert_int_equal(sq_offsets_admit(offsets, 2), SQ_ERR_INVALID_ARG);
        assert_int_equal(sq_offsets_admit(offsets, -1), SQ_ERR_INVALID_ARG);
        assert_int_equal(sq_offsets_mark_done(offsets, 4), SQ_ERR_NOT_FOUND);
        assert_int_equal(sq_offsets_mark_done(offsets, 3), SQ_OK);
        assert_int_equal(sq_offsets_mark_done(offsets, 3), SQ_ERR_NOT_FOUND);
        sq_offsets_destroy(offsets);
}

static void test_ring_grows_and_wraps(void **state) {
        /* 10,000 offsets, completed in a strided order so the ring holds
         * many done entries above a pending one and wraps repeatedly. */
        sq_offsets_t *offsets = sq_offsets_new();
        int64_t next, i;
        (void)state;
        for (i = 0; i < 10000; i++)
                assert_int_equal(sq_offsets_admit(offsets, i), SQ_OK);
        for (i = 1; i < 10000; i += 2)
                assert_int_equal(sq_offsets_mark_done(offsets, i), SQ_OK);
        assert_int_equal(sq_offsets_committable(offsets), 0);
        assert_int_equal(sq_offsets_in_flight(offsets), 5000);
        for (i = 0; i < 10000; i += 2) {
                assert_int_equal(sq_offsets_mark_done(offsets, i), SQ_OK);
                next = i + 2;
                assert_int_equal(sq_offsets_committable(offsets),
                                 next < 10000 ? next : 10000);
        }
        /* Wrap-around: admit and complete far more than the capacity,
         * pairs completed high first. */
        for (i = 10000; i < 200000; i += 2) {
                assert_int_equal(sq_offsets_admit(offsets, i), SQ_OK);
                assert_int_equal(sq_offsets_admit(offsets, i + 1), SQ_OK);
                assert_int_equal(sq_offsets_mark_done(offsets, i + 1), SQ_OK);
                assert_int_equal(sq_offsets_committable(offsets), i);
                assert_int_equal(sq_offsets_mark_done(offsets, i), SQ_OK);
                assert_int_equal(sq_offsets_committable(offsets), i + 2);
        }
        sq_offsets_reset(offsets);
        assert_int_equal(sq_offsets_committable(offsets), -1);
        assert_int_equal(sq_offsets_admit(offsets, 7), SQ_OK);
        assert_int_equal(sq_offsets_committable(offsets), 7);
        sq_offsets_destroy(offsets);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_empty_tracker_has_nothing_to_commit),
            cmocka_unit_test(test_out_of_order_completion_commits_prefix),
            cmocka_unit_test(test_gaps_in_offsets_are_skipped),
            cmocka_unit_test(test_rejects_duplicates_and_unknown),
            cmocka_unit_test(test_ring_grows_and_wraps),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
