/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_agents.c: the capability bitmask index finds exactly the capable
 * agents; slots go to the least-loaded agent; a full agent parks jobs and
 * hands its slot over on release; builtin handlers produce what users see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <string.h>

#include "agents.h"

static sq_config_t *config_with(const char *const *kv) {
        sq_config_t *conf = sq_config_new();
        char errstr[512];
        size_t i;
        for (i = 0; kv[i]; i += 2)
                if (sq_config_set(conf, kv[i], kv[i + 1], "test", errstr,
                                  sizeof(errstr)) != SQ_OK)
                        fail_msg("config %s=%s: %s", kv[i], kv[i + 1], errstr);
        if (sq_config_finalize(conf, errstr, sizeof(errstr)) != SQ_OK)
                fail_msg("finalize: %s", errstr);
        return conf;
}

static const char *const three_agents[] = {"agent.a.kind",
                                           "builtin",
                                           "agent.a.handler",
                                           "noop",
                                           "agent.a.capabilities",
                                           "x,y",
                                           "agent.a.concurrency",
                                           "2",
                                           "agent.b.kind",
                                           "builtin",
                                           "agent.b.handler",
                                           "echo",
                                           "agent.b.capabilities",
                                           "y,z",
                                           "agent.b.concurrency",
                                           "1",
                                           "agent.c.kind",
                                           "builtin",
                                           "agent.c.handler",
                                           "sha256",
                                           "agent.c.capabilities",
                                           "x,y,z",
                                           "agent.c.concurrency",
                                           "1",
                                           NULL};

static uint64_t candidates_of(sq_agents_t *agents, const char *type,
                              const char *caps, sq_err_t want_err,
                              const char *want_errstr) {
        sq_task_t *task = sq_task_new();
        char buf[64], errstr[256] = "", *tok, *save = NULL;
        uint64_t candidates = 0;
        sq_err_t err;

        task->id   = sq_strdup("t");
        task->type = sq_strdup(type);
        if (caps) {
                sq_strlcpy(buf, caps, sizeof(buf));
                for (tok = strtok_r(buf, ",", &save); tok;
                     tok = strtok_r(NULL, ",", &save))
                        sq_task_add_capability(task, tok);
        }
        err = sq_agents_candidates(agents, task, &candidates, errstr,
                                   sizeof(errstr));
        assert_int_equal(err, want_err);
        if (want_errstr && !strstr(errstr, want_errstr))
                fail_msg("errstr \"%s\" lacks \"%s\"", errstr, want_errstr);
        sq_task_destroy(task);
        return candidates;
}

static void test_capability_index(void **state) {
        sq_config_t *conf = config_with(three_agents);
        char errstr[256];
        sq_agents_t *agents = sq_agents_new(conf, errstr, sizeof(errstr));
        static const struct {
                const char *type, *caps;
                sq_err_t err;
                uint64_t want;
                const char *errstr;
        } cases[] = {
            {"any", "x", SQ_OK, 0x5, NULL},     /* a, c */
            {"any", "y", SQ_OK, 0x7, NULL},     /* a, b, c */
            {"any", "z", SQ_OK, 0x6, NULL},     /* b, c */
            {"any", "x,z", SQ_OK, 0x4, NULL},   /* c only */
            {"any", "x,y,z", SQ_OK, 0x4, NULL}, /* c only */
            {"z", NULL, SQ_OK, 0x6, NULL},      /* type as capability */
            {"any", "gpu", SQ_ERR_NO_AGENT, 0, "\"gpu\""},
            {"any", "x,gpu", SQ_ERR_NO_AGENT, 0, "\"gpu\""},
            {"render", NULL, SQ_ERR_NO_AGENT, 0, "\"render\""},
        };
        size_t i;
        (void)state;
        assert_non_null(agents);
        assert_int_equal(sq_agents_count(agents), 3);
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint64_t got =
                    candidates_of(agents, cases[i].type, cases[i].caps,
                                  cases[i].err, cases[i].errstr);
                if (cases[i].err == SQ_OK && got != cases[i].want)
                        fail_msg("case %zu (%s): candidates 0x%llx, want "
                                 "0x%llx",
                                 i, cases[i].caps ? cases[i].caps : "-",
                                 (unsigned long long)got,
                                 (unsigned long long)cases[i].want);
        }
        sq_agents_destroy(agents);
        sq_config_destroy(conf);
}

static void test_no_single_agent_has_all(void **state) {
        static const char *const kv[] = {"agent.p.capabilities",
                                         "p",
                                         "agent.p.handler",
                                         "noop",
                                         "agent.q.capabilities",
                                         "q",
                                         "agent.q.handler",
                                         "noop",
                                         NULL};
        sq_config_t *conf             = config_with(kv);
        sq_agents_t *agents           = sq_agents_new(conf, NULL, 0);
        (void)state;
        candidates_of(agents, "t", "p,q", SQ_ERR_NO_AGENT,
                      "no single agent has all 2");
        sq_agents_destroy(agents);
        sq_config_destroy(conf);
}

static void test_slots_park_and_hand_over(void **state) {
        sq_config_t *conf   = config_with(three_agents);
        sq_agents_t *agents = sq_agents_new(conf, NULL, 0);
        sq_agent_t *a = sq_agents_get(agents, 0), *c = sq_agents_get(agents, 2);
        int job1, job2, job3, crit;
        (void)state;
        /* Candidates a (2 slots) and c (1 slot): least loaded first. */
        assert_ptr_equal(sq_agents_acquire(agents, 0x5, &job1, false), a);
        assert_ptr_equal(sq_agents_acquire(agents, 0x5, &job1, false), a);
        assert_ptr_equal(sq_agents_acquire(agents, 0x5, &job1, false), c);
        assert_int_equal(sq_agent_in_flight(a), 2);
        /* All full: jobs park; a critical one goes to the front. */
        assert_null(sq_agents_acquire(agents, 0x1, &job2, false));
        assert_null(sq_agents_acquire(agents, 0x1, &job3, false));
        assert_null(sq_agents_acquire(agents, 0x1, &crit, true));
        assert_int_equal(sq_agent_parked(a), 3);
        /* Releases hand the slot to parked jobs in order, then free it. */
        assert_ptr_equal(sq_agents_release(agents, a), &crit);
        assert_ptr_equal(sq_agents_release(agents, a), &job2);
        assert_ptr_equal(sq_agents_release(agents, a), &job3);
        assert_int_equal(sq_agent_in_flight(a), 2);
        assert_null(sq_agents_release(agents, a));
        assert_null(sq_agents_release(agents, a));
        assert_int_equal(sq_agent_in_flight(a), 0);
        assert_null(sq_agents_release(agents, c));
        sq_agents_destroy(agents);
        sq_config_destroy(conf);
}

static sq_status_t run_builtin(const char *handler, const char *payload,
                               int64_t timeout_ms, sq_run_t *run,
                               sq_task_t **taskp) {
        sq_task_t *task = sq_task_new();
        task->id        = sq_strdup("t");
        task->type      = sq_strdup(handler);
        if (payload) {
                task->payload     = sq_memdup(payload, strlen(payload));
                task->payload_len = strlen(payload);
        }
        memset(run, 0, sizeof(*run));
        run->task = task;
        if (timeout_ms)
                run->deadline_us = sq_clock_us() + timeout_ms * 1000;
        *taskp = task;
        return sq_builtin_lookup(handler)(run);
}

static void test_builtin_handlers(void **state) {
        static const struct {
                const char *handler, *payload;
                int64_t timeout_ms;
                sq_status_t status;
                const char *output, *error;
        } cases[] = {
            {"noop", "x", 0, SQ_STATUS_SUCCEEDED, "", NULL},
            {"echo", "hello", 0, SQ_STATUS_SUCCEEDED, "hello", NULL},
            {"sha256", "abc", 0, SQ_STATUS_SUCCEEDED,
             "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
             NULL},
            {"sha256", NULL, 0, SQ_STATUS_SUCCEEDED,
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
             NULL},
            {"fail", "boom", 0, SQ_STATUS_FAILED, "", "boom"},
            {"fail", NULL, 0, SQ_STATUS_FAILED, "", "on purpose"},
            {"sleep", "1", 0, SQ_STATUS_SUCCEEDED, "", NULL},
            {"sleep", "5000", 50, SQ_STATUS_TIMED_OUT, "", "timed out"},
            {"sleep", "soon", 0, SQ_STATUS_FAILED, "", "milliseconds"},
            {"cpu", NULL, 0, SQ_STATUS_SUCCEEDED, NULL, NULL},
        };
        size_t i;
        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                sq_task_t *task;
                sq_run_t run;
                sq_status_t status =
                    run_builtin(cases[i].handler, cases[i].payload,
                                cases[i].timeout_ms, &run, &task);
                if (status != cases[i].status)
                        fail_msg("%s(%s): status %s, want %s", cases[i].handler,
                                 cases[i].payload ? cases[i].payload : "",
                                 sq_status_name(status),
                                 sq_status_name(cases[i].status));
                if (cases[i].output &&
                    (run.output_len != strlen(cases[i].output) ||
                     memcmp(run.output ? (const void *)run.output : "",
                            cases[i].output, run.output_len)))
                        fail_msg("%s: output \"%.*s\"", cases[i].handler,
                                 (int)run.output_len, (char *)run.output);
                if (cases[i].error && !strstr(run.error, cases[i].error))
                        fail_msg("%s: error \"%s\" lacks \"%s\"",
                                 cases[i].handler, run.error, cases[i].error);
                sq_free(run.output);
                sq_task_destroy(task);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_capability_index),
            cmocka_unit_test(test_no_single_agent_has_all),
            cmocka_unit_test(test_slots_park_and_hand_over),
            cmocka_unit_test(test_builtin_handlers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
