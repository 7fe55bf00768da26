/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_delay.c: the retry lane's rule for records with a due time
 * (core/delivery/delay.c): run when due, wait at most the hold, then move.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "delay.h"

static void test_decide_table(void **state) {
        static const struct {
                const char *name;
                int64_t due, written, now, hold;
                sq_delay_action_t want;
                int64_t wake; /* for SQ_DELAY_WAIT */
        } rows[] = {
            {"due now", 1000, 0, 1000, 60000, SQ_DELAY_RUN, 0},
            {"overdue", 500, 0, 1000, 60000, SQ_DELAY_RUN, 0},
            {"due within the hold: wait until due", 5000, 1000, 1000, 60000,
             SQ_DELAY_WAIT, 5000},
            {"due after the hold: wait for the hold", 600000, 1000, 2000, 60000,
             SQ_DELAY_WAIT, 61000},
            {"held its hold, not due: move", 600000, 1000, 61000, 60000,
             SQ_DELAY_MOVE, 0},
            {"held its hold, due then: run", 61000, 1000, 61000, 60000,
             SQ_DELAY_RUN, 0},
            {"no timestamp: hold from now", 600000, -1, 2000, 60000,
             SQ_DELAY_WAIT, 62000},
            {"timestamp ahead of our clock: hold from now", 600000, 9000, 2000,
             60000, SQ_DELAY_WAIT, 62000},
            {"a fresh copy waits, never moves at once", 600000, 2000, 2000,
             1000, SQ_DELAY_WAIT, 3000},
            {"hold past the end of time", INT64_MAX, 1000, 2000, INT64_MAX,
             SQ_DELAY_WAIT, INT64_MAX},
        };
        size_t i;
        (void)state;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                int64_t wake = -7;
                sq_delay_action_t a =
                    sq_delay_decide(rows[i].due, rows[i].written, rows[i].now,
                                    rows[i].hold, &wake);
                if (a != rows[i].want)
                        fail_msg("%s: action %d, want %d", rows[i].name, a,
                                 rows[i].want);
                if (a == SQ_DELAY_WAIT && wake != rows[i].wake)
                        fail_msg("%s: wake %lld, want %lld", rows[i].name,
                                 (long long)wake, (long long)rows[i].wake);
                if (a == SQ_DELAY_WAIT && wake <= rows[i].now)
                        fail_msg("%s: wakes in the past", rows[i].name);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_decide_table),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
