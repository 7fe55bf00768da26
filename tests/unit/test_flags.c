/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_flags.c: flag values parse and print as users write them; a task's
 * rollout bucket is the documented FNV-1a hash (stable across instances
 * and builds), independent between flags, and a rollout takes a
 * proportional, growing share of task ids; config keys flag.* are
 * validated with the flag named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "flags.h"

static void test_parse_and_format(void **state) {
        static const struct {
                const char *value;
                sq_err_t err;
                int bp;
                const char *printed;
        } cases[] = {
            {"on", SQ_OK, 10000, "on"},
            {"ON", SQ_OK, 10000, "on"},
            {"true", SQ_OK, 10000, "on"},
            {"off", SQ_OK, 0, "off"},
            {"false", SQ_OK, 0, "off"},
            {"0%", SQ_OK, 0, "off"},
            {"100%", SQ_OK, 10000, "on"},
            {"10%", SQ_OK, 1000, "10%"},
            {"12.5%", SQ_OK, 1250, "12.50%"},
            {"0.01%", SQ_OK, 1, "0.01%"},
            {"101%", SQ_ERR_CONFIG, 0, NULL},
            {"10", SQ_ERR_CONFIG, 0, NULL},
            {"%", SQ_ERR_CONFIG, 0, NULL},
            {"1.234%", SQ_ERR_CONFIG, 0, NULL},
            {"-5%", SQ_ERR_CONFIG, 0, NULL},
            {"half", SQ_ERR_CONFIG, 0, NULL},
            {"5.%", SQ_ERR_CONFIG, 0, NULL},
            {"", SQ_ERR_CONFIG, 0, NULL},
        };
        size_t i;
        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char errstr[256] = "", buf[16];
                int bp           = -1;
                sq_err_t err =
                    sq_flag_parse(cases[i].value, &bp, errstr, sizeof(errstr));
                if (err != cases[i].err)
                        fail_msg("\"%s\": err %d, want %d", cases[i].value, err,
                                 cases[i].err);
                if (err) {
                        assert_non_null(strstr(errstr, "percentage"));
                        continue;
                }
                assert_int_equal(bp, cases[i].bp);
                assert_string_equal(sq_flag_format(bp, buf, sizeof(buf)),
                                    cases[i].printed);
        }
}

/* Buckets are fnv1a64("<flag>:<id>") mod 10000: these values are what
 * docs/configuration.md lets any tool compute (checked with Python). */
static void test_bucket_is_the_documented_hash(void **state) {
        (void)state;
        assert_int_equal(sq_flag_bucket(SQ_FLAG_RANKED_SELECTION, "t-1"), 543);
        assert_int_equal(sq_flag_bucket(SQ_FLAG_RANKED_SELECTION, "task-42"),
                         4231);
        assert_int_equal(sq_flag_bucket(SQ_FLAG_WORK_STEALING, "t-1"), 1176);
        assert_int_equal(sq_flag_bucket(SQ_FLAG_WORK_STEALING, ""), 2014);
}

static void test_rollout_is_proportional_and_growing(void **state) {
        static const int rollouts[] = {0, 100, 1000, 2500, 5000, 10000};
        sq_flags_t flags;
        int r, i, f, in_prev[SQ_FLAG_CNT] = {0}, both = 0;
        char id[32];
        (void)state;
        for (r = 0; r < (int)(sizeof(rollouts) / sizeof(rollouts[0])); r++) {
                int rollout[SQ_FLAG_CNT], in[SQ_FLAG_CNT] = {0};
                for (f = 0; f < SQ_FLAG_CNT; f++)
                        rollout[f] = rollouts[r];
                sq_flags_set(&flags, rollout);
                for (i = 0; i < 100000; i++) {
                        snprintf(id, sizeof(id), "task-%d", i);
                        for (f = 0; f < SQ_FLAG_CNT; f++) {
                                bool on =
                                    sq_flags_enabled(&flags, (sq_flag_t)f, id);
                                in[f] += on;
                                /* Growing: in at a lower rollout => in. */
                                if (!on && sq_flag_bucket((sq_flag_t)f, id) <
                                               rollouts[r])
                                        fail_msg("%s off below its bucket", id);
                        }
                        if (rollouts[r] == 1000 &&
                            sq_flags_enabled(&flags, SQ_FLAG_RANKED_SELECTION,
                                             id) &&
                            sq_flags_enabled(&flags, SQ_FLAG_WORK_STEALING, id))
                                both++;
                }
                for (f = 0; f < SQ_FLAG_CNT; f++) {
                        /* Within 0.5 percentage points of the rollout. */
                        int want = rollouts[r] * 10;
                        if (abs(in[f] - want) > 500)
                                fail_msg("flag %d at %d bp: %d of 100000 ids",
                                         f, rollouts[r], in[f]);
                        assert_true(in[f] >= in_prev[f]);
                        in_prev[f] = in[f];
                }
        }
        /* Independent flags: 10 % x 10 % is about 1 %, not 10 %. */
        if (both < 700 || both > 1300)
                fail_msg("%d ids in both flags' first 10%%", both);
}

static void test_config_keys(void **state) {
        sq_config_t *conf = sq_config_new();
        char errstr[512];
        (void)state;
        assert_int_equal(conf->flag_rollout[SQ_FLAG_RANKED_SELECTION],
                         SQ_FLAG_ON);
        assert_int_equal(conf->flag_rollout[SQ_FLAG_WORK_STEALING], SQ_FLAG_ON);
        assert_int_equal(sq_config_set(conf, "flag.work_stealing", "25%", "t",
                                       errstr, sizeof(errstr)),
                         SQ_OK);
        assert_int_equal(conf->flag_rollout[SQ_FLAG_WORK_STEALING], 2500);
        assert_int_equal(sq_config_set(conf, "flag.work_steeling", "on",
                                       "f.properties:3", errstr,
                                       sizeof(errstr)),
                         SQ_ERR_CONFIG);
        assert_non_null(strstr(errstr, "f.properties:3"));
        assert_non_null(strstr(errstr, "\"work_steeling\""));
        assert_non_null(strstr(errstr, "did you mean work_stealing"));
        assert_int_equal(sq_config_set(conf, "flag.ranked_selection", "most",
                                       "t", errstr, sizeof(errstr)),
                         SQ_ERR_CONFIG);
        assert_non_null(strstr(errstr, "flag.ranked_selection=most"));
        assert_int_equal(conf->flag_rollout[SQ_FLAG_RANKED_SELECTION],
                         SQ_FLAG_ON);
        sq_config_destroy(conf);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_and_format),
            cmocka_unit_test(test_bucket_is_the_documented_hash),
            cmocka_unit_test(test_rollout_is_proportional_and_growing),
            cmocka_unit_test(test_config_keys),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
