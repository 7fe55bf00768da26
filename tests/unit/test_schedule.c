/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_schedule.c: cron expressions (parsing, refusals, the next tick),
 * the missed-tick policies, the tick record, and the
 * schedule.<name>.<field> keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "schedule.h"

/* 2027-01-01T00:00:00Z, a Friday. */
#define JAN1   INT64_C(1798761600000)
#define MINUTE INT64_C(60000)
#define HOUR   (60 * MINUTE)
#define DAY    (24 * HOUR)

static void test_cron_next(void **state) {
        static const struct {
                const char *expr;
                int64_t after, want;
        } cases[] = {
            {"*/5 * * * *", JAN1, JAN1 + 5 * MINUTE},
            {"*/5 * * * *", JAN1 + 1, JAN1 + 5 * MINUTE},
            {"* * * * *", JAN1 + 59999, JAN1 + MINUTE},
            {"30 9 * * 1-5", JAN1, JAN1 + 9 * HOUR + 30 * MINUTE},
            /* Friday 09:30, then Monday 09:30 (no weekend). */
            {"30 9 * * 1-5", JAN1 + 9 * HOUR + 30 * MINUTE,
             JAN1 + 3 * DAY + 9 * HOUR + 30 * MINUTE},
            {"0 0 1 * *", JAN1, INT64_C(1801440000000)},  /* Feb 1 */
            {"0 0 29 2 *", JAN1, INT64_C(1835395200000)}, /* 2028-02-29 */
            /* Both day fields restricted: the 13th or a Friday. */
            {"0 0 13 * 5", JAN1, JAN1 + 7 * DAY},
            {"0 0 13 * 5", JAN1 + 7 * DAY, JAN1 + 12 * DAY},
            {"0 0 * * 7", JAN1, JAN1 + 2 * DAY}, /* 7 is Sunday */
            {"@hourly", JAN1, JAN1 + HOUR},
            {"@daily", JAN1, JAN1 + DAY},
            {"15,45 */6 * * *", JAN1, JAN1 + 15 * MINUTE},
            {"15,45 */6 * * *", JAN1 + 45 * MINUTE,
             JAN1 + 6 * HOUR + 15 * MINUTE},
            {"5-10/5 0 * * *", JAN1 + 5 * MINUTE, JAN1 + 10 * MINUTE},
        };
        char errstr[256];
        size_t i;
        (void)state;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                sq_cron_t cron;
                assert_int_equal(
                    sq_cron_parse(cases[i].expr, &cron, errstr, sizeof(errstr)),
                    SQ_OK);
                if (sq_cron_next(&cron, cases[i].after) != cases[i].want)
                        fail_msg("%s after %lld: %lld, want %lld",
                                 cases[i].expr, (long long)cases[i].after,
                                 (long long)sq_cron_next(&cron, cases[i].after),
                                 (long long)cases[i].want);
        }
}

static void test_cron_refuses(void **state) {
        static const struct {
                const char *expr, *says;
        } cases[] = {
            {"60 * * * *", "minute field: \"60\" is outside 0-59"},
            {"* 24 * * *", "hour field"},
            {"* * 0 * *", "day of month field"},
            {"* * * 13 *", "month field"},
            {"* * * * 8", "day of week field"},
            {"* * * *", "4 fields, expected five"},
            {"* * * * * *", "more than five fields"},
            {"a * * * *", "\"a\" is not a number"},
            {"*/0 * * * *", "a step is /N with N >= 1"},
            {"5-1 * * * *", "outside"},
            {"1,,2 * * * *", "minute field"},
            {"0 0 31 2 *", "never matches"},
            {"", "0 fields"},
        };
        char errstr[256];
        size_t i;
        (void)state;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                sq_cron_t cron;
                assert_int_equal(
                    sq_cron_parse(cases[i].expr, &cron, errstr, sizeof(errstr)),
                    SQ_ERR_CONFIG);
                if (!strstr(errstr, cases[i].says))
                        fail_msg("\"%s\": \"%s\" does not say \"%s\"",
                                 cases[i].expr, errstr, cases[i].says);
        }
}

/* The longest field (127 bytes) with an unexpected tail: the reason
 * quotes the item and the tail whole, not cut short. */
static void test_cron_refuses_long_field_whole(void **state) {
        char expr[160], tail[130], says[160], errstr[1024];
        sq_cron_t cron;
        (void)state;

        memset(tail, 'x', 126);
        tail[126] = '\0';
        snprintf(expr, sizeof(expr), "1%s * * * *", tail);
        snprintf(says, sizeof(says), ": unexpected \"%s\"", tail);
        assert_int_equal(sq_cron_parse(expr, &cron, errstr, sizeof(errstr)),
                         SQ_ERR_CONFIG);
        if (!strstr(errstr, says))
                fail_msg("\"%s\" does not say \"%s\"", errstr, says);
}

static void test_plan(void **state) {
        const sq_schedule_spec_t every = {.every_ms = 1000};
        static const struct {
                sq_missed_t missed;
                int64_t cursor, now, late, catchup;
                int64_t fire, new_cursor, skipped;
        } cases[] = {
            /* Nothing due yet. */
            {SQ_MISSED_ALL, 10000, 10500, 1500, 1000, 0, 10000, 0},
            /* On time (within late): fires whatever the policy. */
            {SQ_MISSED_SKIP, 10000, 11200, 1500, 1000, 11000, 10000, 0},
            /* 11000..20000 due (10 ticks), the oldest 8.5 s late. */
            {SQ_MISSED_ALL, 10000, 20000, 1500, 1000, 11000, 10000, 0},
            {SQ_MISSED_ALL, 10000, 20000, 1500, 3, 18000, 17000, 7},
            {SQ_MISSED_ALL, 10000, 20000, 1500, 0, 0, 20000, 10},
            {SQ_MISSED_ONCE, 10000, 20000, 1500, 1000, 20000, 19000, 9},
            /* skip: the newest is on time, so it fires; the rest not. */
            {SQ_MISSED_SKIP, 10000, 20000, 1500, 1000, 20000, 19000, 9},
            /* skip: the newest is late too: nothing fires. */
            {SQ_MISSED_SKIP, 10000, 20600, 500, 1000, 0, 20000, 10},
        };
        size_t i;
        (void)state;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                sq_schedule_plan_t plan = sq_schedule_plan(
                    &every, cases[i].missed, cases[i].cursor, cases[i].now,
                    cases[i].late, cases[i].catchup);
                if (plan.fire != cases[i].fire ||
                    plan.cursor != cases[i].new_cursor ||
                    plan.skipped != cases[i].skipped)
                        fail_msg(
                            "case %zu: fire %lld cursor %lld skipped "
                            "%lld, want %lld %lld %lld",
                            i, (long long)plan.fire, (long long)plan.cursor,
                            (long long)plan.skipped, (long long)cases[i].fire,
                            (long long)cases[i].new_cursor,
                            (long long)cases[i].skipped);
        }
}

/* A cron schedule down for 10.5 minutes: all fires each minute in
 * order, once only the newest, skip none. */
static void test_plan_cron_catch_up(void **state) {
        sq_schedule_spec_t spec = {0};
        int64_t now = JAN1 + 10 * MINUTE + 30000, cursor = JAN1, fired = 0;
        sq_schedule_plan_t plan;
        char errstr[256];
        (void)state;

        assert_int_equal(
            sq_cron_parse("* * * * *", &spec.cron, errstr, sizeof(errstr)),
            SQ_OK);
        for (;;) {
                plan = sq_schedule_plan(&spec, SQ_MISSED_ALL, cursor, now, 5000,
                                        1000);
                assert_int_equal(plan.skipped, 0);
                if (!plan.fire)
                        break;
                assert_int_equal(plan.fire, cursor + MINUTE);
                cursor = plan.fire;
                fired++;
        }
        assert_int_equal(fired, 10);
        plan = sq_schedule_plan(&spec, SQ_MISSED_ONCE, JAN1, now, 5000, 1000);
        assert_int_equal(plan.fire, JAN1 + 10 * MINUTE);
        assert_int_equal(plan.skipped, 9);
        plan = sq_schedule_plan(&spec, SQ_MISSED_SKIP, JAN1, now, 5000, 1000);
        assert_int_equal(plan.fire, 0);
        assert_int_equal(plan.skipped, 10);
        assert_int_equal(plan.cursor, JAN1 + 10 * MINUTE);
}

static void test_record_and_id(void **state) {
        char id[128], errstr[256], *name = NULL;
        char *rec;
        int64_t tick = 0;
        (void)state;

        sq_schedule_task_id("nightly", JAN1, id, sizeof(id));
        assert_string_equal(id, "schedule-nightly-1798761600000");
        rec = sq_schedule_record("nightly", JAN1, id, JAN1 + 3, "c1");
        assert_int_equal(sq_schedule_record_parse(rec, strlen(rec), &name,
                                                  &tick, errstr,
                                                  sizeof(errstr)),
                         SQ_OK);
        assert_string_equal(name, "nightly");
        assert_true(tick == JAN1);
        sq_free(name);
        sq_free(rec);
        assert_int_equal(sq_schedule_record_parse("{\"schedule\":\"x\"}", 16,
                                                  &name, &tick, errstr,
                                                  sizeof(errstr)),
                         SQ_ERR_DECODE);
        assert_non_null(strstr(errstr, "\"tick\""));
        assert_int_equal(sq_schedule_record_parse("nope", 4, &name, &tick,
                                                  errstr, sizeof(errstr)),
                         SQ_ERR_DECODE);
        assert_non_null(strstr(errstr, "not JSON"));
}

static void test_config_keys(void **state) {
        const struct {
                const char *const *kv; /* key, value, ..., NULL */
                const char *says;      /* NULL: valid */
        } cases[] = {
            {(const char *const[]){"schedule.n.cron", "*/5 * * * *",
                                   "schedule.n.type", "report", NULL},
             NULL},
            {(const char *const[]){
                 "schedule.n.every.ms", "1000", "schedule.n.type", "report",
                 "schedule.n.missed", "skip", "schedule.n.priority", "high",
                 "schedule.n.capabilities", "a,b", NULL},
             NULL},
            {(const char *const[]){"schedule.n.cron", "61 * * * *", NULL},
             "schedule.n.cron=61 * * * *: cron \"61 * * * *\": minute field"},
            {(const char *const[]){"schedule.n.every.ms", "5", NULL},
             "expected an integer from 100"},
            {(const char *const[]){"schedule.n.missed", "never", NULL},
             "expected all, once or skip"},
            {(const char *const[]){"schedule.n.evry.ms", "1000", NULL},
             "did you mean every.ms?"},
            {(const char *const[]){"schedule.a b.type", "x", NULL},
             "invalid schedule name"},
            {(const char *const[]){"schedule.n", "x", NULL},
             "schedule.<name>.<field>"},
            {(const char *const[]){"schedule.n.every.ms", "1000", NULL},
             "schedule.n.type is not set"},
            {(const char *const[]){"schedule.n.type", "x", NULL},
             "set one of schedule.n.cron and schedule.n.every.ms"},
            {(const char *const[]){"schedule.n.type", "x", "schedule.n.cron",
                                   "@daily", "schedule.n.every.ms", "1000",
                                   NULL},
             "not both"},
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
                        assert_int_equal(conf->schedules_cnt, 1);
                        assert_true(sq_config_key_scope("schedule.n.type") ==
                                    SQ_CONFIG_SCOPE_GROUP);
                        assert_false(
                            sq_config_key_reloadable("schedule.n.type"));
                } else if (!err || !strstr(errstr, cases[i].says)) {
                        fail_msg("case %zu: \"%s\" does not say \"%s\"", i,
                                 errstr, cases[i].says);
                }
                sq_config_destroy(conf);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_cron_next),
            cmocka_unit_test(test_cron_refuses),
            cmocka_unit_test(test_cron_refuses_long_field_whole),
            cmocka_unit_test(test_plan),
            cmocka_unit_test(test_plan_cron_catch_up),
            cmocka_unit_test(test_record_and_id),
            cmocka_unit_test(test_config_keys),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
