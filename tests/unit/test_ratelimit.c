/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ratelimit.c: a rate limit's bucket (the burst, then one task per
 * interval; an instance's share of the group's limit; a reload) and the
 * ratelimit.<name>.<field> keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "config.h"
#include "ratelimit.h"

#define S INT64_C(1000000) /* one second in microseconds */

static void test_burst_then_rate(void **state) {
        sq_ratelimit_t rl;
        int64_t t0 = 100 * S;
        int i;
        (void)state;

        sq_ratelimit_init(&rl, 10, 4); /* 10/s, burst 4 */
        /* The burst starts at once, then one per 100 ms, in order. */
        for (i = 0; i < 4; i++)
                assert_true(sq_ratelimit_reserve(&rl, t0) == t0);
        for (i = 1; i <= 6; i++)
                assert_true(sq_ratelimit_reserve(&rl, t0) == t0 + i * S / 10);
        /* Idle for a while: the bucket is full again. */
        for (i = 0; i < 4; i++)
                assert_true(sq_ratelimit_reserve(&rl, t0 + 60 * S) ==
                            t0 + 60 * S);
        assert_true(sq_ratelimit_reserve(&rl, t0 + 60 * S) ==
                    t0 + 60 * S + S / 10);
        sq_ratelimit_term(&rl);
}

static void test_share(void **state) {
        sq_ratelimit_t rl;
        sq_ratelimit_view_t view;
        int64_t t0 = 100 * S;
        (void)state;

        sq_ratelimit_init(&rl, 10, 4);
        sq_ratelimit_set_share(&rl, 0.5); /* 6 of 12 partitions */
        view = sq_ratelimit_read(&rl);
        assert_true(view.rate == 5.0 && view.burst == 2.0);
        assert_true(view.group_rate == 10.0 && view.share == 0.5);
        /* Burst 2 here, then one per 200 ms. */
        assert_true(sq_ratelimit_reserve(&rl, t0) == t0);
        assert_true(sq_ratelimit_reserve(&rl, t0) == t0);
        assert_true(sq_ratelimit_reserve(&rl, t0) == t0 + S / 5);
        /* A tiny share still has a burst of one. */
        sq_ratelimit_set_share(&rl, 0.01);
        assert_true(sq_ratelimit_read(&rl).burst == 1.0);
        /* A reload keeps the share. */
        sq_ratelimit_set(&rl, 100, 100);
        view = sq_ratelimit_read(&rl);
        assert_true(view.share == 0.01 && view.rate == 1.0 &&
                    view.burst == 1.0);
        sq_ratelimit_term(&rl);
}

static void test_config_keys(void **state) {
        struct {
                const char *kv[8];
                const char *says; /* NULL: valid */
        } cases[] = {
            {{"ratelimit.a.type", "sha256", "ratelimit.a.rate", "50", NULL},
             NULL},
            {{"ratelimit.a.capability", "gpu", "ratelimit.a.rate", "0.5",
              "ratelimit.a.burst", "3", NULL},
             NULL},
            {{"ratelimit.a.rate", "0", NULL}, "expected a number from 0.001"},
            {{"ratelimit.a.rate", "fast", NULL}, "tasks per second"},
            {{"ratelimit.a.bursts", "3", NULL}, "did you mean burst?"},
            {{"ratelimit.a.type", "x", NULL}, "ratelimit.a.rate is not set"},
            {{"ratelimit.a.rate", "5", NULL},
             "set one of ratelimit.a.type and ratelimit.a.capability"},
            {{"ratelimit.a.rate", "5", "ratelimit.a.type", "x",
              "ratelimit.a.capability", "y", NULL},
             "not both"},
            {{"ratelimit.a", "5", NULL}, "ratelimit.<name>.<field>"},
        };
        char errstr[512];
        size_t i, k;
        (void)state;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                sq_config_t *conf = sq_config_new();
                sq_err_t err      = SQ_OK;
                errstr[0]         = '\0';
                for (k = 0; cases[i].kv[k] && !err; k += 2)
                        err = sq_config_set(conf, cases[i].kv[k],
                                            cases[i].kv[k + 1], "test", errstr,
                                            sizeof(errstr));
                if (!err)
                        err = sq_config_finalize(conf, errstr, sizeof(errstr));
                if (!cases[i].says) {
                        if (err)
                                fail_msg("case %zu: %s", i, errstr);
                        assert_int_equal(conf->ratelimits_cnt, 1);
                } else if (!err || !strstr(errstr, cases[i].says)) {
                        fail_msg("case %zu: \"%s\" does not say \"%s\"", i,
                                 errstr, cases[i].says);
                }
                if (i == 0) /* burst 0: one second's worth */
                        assert_true(sq_config_ratelimit_burst(
                                        &conf->ratelimits[0]) == 50.0);
                sq_config_destroy(conf);
        }
        assert_true(sq_config_key_reloadable("ratelimit.a.rate"));
        assert_true(sq_config_key_reloadable("ratelimit.a.burst"));
        assert_false(sq_config_key_reloadable("ratelimit.a.type"));
        assert_true(sq_config_key_scope("ratelimit.a.rate") ==
                    SQ_CONFIG_SCOPE_GROUP);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_burst_then_rate),
            cmocka_unit_test(test_share),
            cmocka_unit_test(test_config_keys),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
