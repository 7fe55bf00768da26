/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_agents.c: the capability index finds exactly the capable agents
 * (also at 1,100 agents); slots go to the least-loaded agent or by rank
 * (free capacity, success rate, key affinity); a full agent parks jobs
 * and hands its slot over on release; breakers take an agent out of
 * selection and probe it back; idle agents steal parked jobs; a reload
 * hands over slots and parked jobs; builtin handlers produce what users
 * see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <stdio.h>
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
        uint64_t bits[SQ_AGENTS_MAX / 64] = {0};
        sq_err_t err;

        task->id   = sq_strdup("t");
        task->type = sq_strdup(type);
        if (caps) {
                sq_strlcpy(buf, caps, sizeof(buf));
                for (tok = strtok_r(buf, ",", &save); tok;
                     tok = strtok_r(NULL, ",", &save))
                        sq_task_add_capability(task, tok);
        }
        err = sq_agents_candidates(agents, task, bits, errstr, sizeof(errstr));
        assert_int_equal(err, want_err);
        if (want_errstr && !strstr(errstr, want_errstr))
                fail_msg("errstr \"%s\" lacks \"%s\"", errstr, want_errstr);
        sq_task_destroy(task);
        return bits[0];
}

/* The requirement mask of a comma-separated capability list. */
static uint64_t req_of(sq_agents_t *agents, const char *caps) {
        sq_task_t *task = sq_task_new();
        char buf[256], errstr[256], *tok, *save = NULL;
        uint64_t req = 0;

        task->id   = sq_strdup("t");
        task->type = sq_strdup("t");
        sq_strlcpy(buf, caps, sizeof(buf));
        for (tok = strtok_r(buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save))
                sq_task_add_capability(task, tok);
        if (sq_agents_requirement(agents, task, &req, errstr, sizeof(errstr)) !=
            SQ_OK)
                fail_msg("requirement %s: %s", caps, errstr);
        sq_task_destroy(task);
        return req;
}

static sq_agents_t *agents_with(const char *const *kv, sq_config_t **confp) {
        char errstr[256];
        sq_agents_t *agents;
        *confp = config_with(kv);
        agents = sq_agents_new(*confp, NULL, errstr, sizeof(errstr));
        if (!agents)
                fail_msg("sq_agents_new: %s", errstr);
        return agents;
}

/* Acquires for @p caps; returns the agent's name, "parked" or "stale". */
static const char *acquire(sq_agents_t *agents, const char *caps,
                           const char *key, bool ranked, void *job,
                           sq_slot_t *slot) {
        sq_select_t sel = {0};
        char errstr[256];
        sq_slot_t local;
        sq_acquire_t acq;

        sel.req    = req_of(agents, caps);
        sel.key    = key;
        sel.ranked = ranked;
        acq = sq_agents_acquire(agents, &sel, job, slot ? slot : &local, errstr,
                                sizeof(errstr));
        switch (acq) {
        case SQ_ACQ_RUN:
                return sq_agent_name((slot ? slot : &local)->agent);
        case SQ_ACQ_PARKED:
                return "parked";
        case SQ_ACQ_STALE:
                return "stale";
        default:
                return "none";
        }
}

static void test_capability_index(void **state) {
        sq_config_t *conf;
        sq_agents_t *agents = agents_with(three_agents, &conf);
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
        sq_agents_release_ref(agents);
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
        sq_config_t *conf;
        sq_agents_t *agents = agents_with(kv, &conf);
        (void)state;
        candidates_of(agents, "t", "p,q", SQ_ERR_NO_AGENT,
                      "no single agent has all 2");
        assert_string_equal(acquire(agents, "p,q", NULL, true, NULL, NULL),
                            "none");
        sq_agents_release_ref(agents);
        sq_config_destroy(conf);
}

/* 1,100 agents over 64 capabilities: agent i has capabilities i % 64 and
 * (i * 7 + 3) % 64, so candidates span all 18 bitset words. */
static void test_index_at_scale(void **state) {
        sq_config_t *conf = sq_config_new();
        sq_agents_t *agents;
        char key[64], val[64], errstr[256];
        int i, found = 0;
        uint64_t bits[SQ_AGENTS_MAX / 64];
        sq_task_t *task = sq_task_new();
        (void)state;
        for (i = 0; i < 1100; i++) {
                snprintf(key, sizeof(key), "agent.a%d.handler", i);
                assert_int_equal(
                    sq_config_set(conf, key, "noop", "t", errstr, 256), SQ_OK);
                snprintf(key, sizeof(key), "agent.a%d.capabilities", i);
                if ((i * 7 + 3) % 64 == i % 64)
                        snprintf(val, sizeof(val), "c%d", i % 64);
                else
                        snprintf(val, sizeof(val), "c%d,c%d", i % 64,
                                 (i * 7 + 3) % 64);
                assert_int_equal(
                    sq_config_set(conf, key, val, "t", errstr, 256), SQ_OK);
        }
        assert_int_equal(sq_config_finalize(conf, errstr, 256), SQ_OK);
        agents = sq_agents_new(conf, NULL, errstr, sizeof(errstr));
        assert_non_null(agents);
        assert_int_equal(sq_agents_words(agents), 18);
        task->id   = sq_strdup("t");
        task->type = sq_strdup("t");
        sq_task_add_capability(task, "c5");
        sq_task_add_capability(task, "c38"); /* 5 * 7 + 3 */
        assert_int_equal(
            sq_agents_candidates(agents, task, bits, errstr, sizeof(errstr)),
            SQ_OK);
        for (i = 0; i < 1100; i++) {
                bool want = (i % 64 == 5 && (i * 7 + 3) % 64 == 38) ||
                            (i % 64 == 38 && (i * 7 + 3) % 64 == 5);
                bool got = (bits[i / 64] >> (i % 64)) & 1;
                if (want != got)
                        fail_msg("agent a%d: candidate %d, want %d", i, got,
                                 want);
                found += got;
        }
        assert_true(found > 0);
        sq_task_destroy(task);
        sq_agents_release_ref(agents);
        sq_config_destroy(conf);
}

static void test_slots_park_and_hand_over(void **state) {
        sq_config_t *conf;
        sq_agents_t *agents = agents_with(three_agents, &conf);
        sq_agents_out_t out = {0};
        sq_slot_t sa1, sa2, sc;
        sq_select_t sel = {0};
        int job1, job2, job3, crit;
        char errstr[256];
        (void)state;
        /* Candidates a (2 slots) and c (1 slot): least loaded first. */
        assert_string_equal(acquire(agents, "x", NULL, false, &job1, &sa1),
                            "a");
        assert_string_equal(acquire(agents, "x", NULL, false, &job1, &sa2),
                            "a");
        assert_string_equal(acquire(agents, "x", NULL, false, &job1, &sc), "c");
        assert_int_equal(sq_agent_in_flight(sa1.agent), 2);
        /* All full: jobs park (on the shortest queue: a, c, a); a
         * critical one goes to the front of its queue. */
        sel.req = req_of(agents, "x");
        assert_int_equal(sq_agents_acquire(agents, &sel, &job2, &sa1, errstr,
                                           sizeof(errstr)),
                         SQ_ACQ_PARKED);
        assert_int_equal(sq_agents_acquire(agents, &sel, &job3, &sa1, errstr,
                                           sizeof(errstr)),
                         SQ_ACQ_PARKED);
        sel.critical = true;
        assert_int_equal(sq_agents_acquire(agents, &sel, &crit, &sa1, errstr,
                                           sizeof(errstr)),
                         SQ_ACQ_PARKED);
        assert_int_equal(sq_agent_parked(sa2.agent), 2);
        assert_int_equal(sq_agent_parked(sc.agent), 1);
        /* Releases hand the slot to the agent's parked jobs in order. */
        assert_ptr_equal(sq_agents_release(agents, &sa2,
                                           SQ_AGENT_OUTCOME_SUCCESS, 10, NULL,
                                           NULL, &out),
                         &crit);
        assert_ptr_equal(sq_agents_release(agents, &sa2,
                                           SQ_AGENT_OUTCOME_SUCCESS, 10, NULL,
                                           NULL, &out),
                         &job2);
        assert_ptr_equal(sq_agents_release(agents, &sc,
                                           SQ_AGENT_OUTCOME_SUCCESS, 10, NULL,
                                           NULL, &out),
                         &job3);
        assert_null(sq_agents_release(agents, &sa2, SQ_AGENT_OUTCOME_SUCCESS,
                                      10, NULL, NULL, &out));
        assert_null(sq_agents_release(agents, &sa2, SQ_AGENT_OUTCOME_SUCCESS,
                                      10, NULL, NULL, &out));
        assert_int_equal(sq_agent_in_flight(sa2.agent), 0);
        assert_null(sq_agents_release(agents, &sc, SQ_AGENT_OUTCOME_SUCCESS, 10,
                                      NULL, NULL, &out));
        assert_int_equal(sq_agent_in_flight(sc.agent), 0);
        assert_int_equal(out.requeue_cnt, 0);
        sq_agents_out_reset(&out);
        sq_agents_release_ref(agents);
        sq_config_destroy(conf);
}

static const char *const pair_kv[] = {"agent.a.handler",
                                      "noop",
                                      "agent.a.capabilities",
                                      "w,aonly",
                                      "agent.a.concurrency",
                                      "4",
                                      "agent.a.breaker.failures",
                                      "2",
                                      "agent.a.breaker.open.ms",
                                      "1",
                                      "agent.a.breaker.probes",
                                      "2",
                                      "agent.b.handler",
                                      "noop",
                                      "agent.b.capabilities",
                                      "w,bonly",
                                      "agent.b.concurrency",
                                      "4",
                                      "agent.b.breaker.failures",
                                      "0",
                                      NULL};

/* Runs one task needing @p caps on the agent picked, with @p outcome. */
static const char *run_one(sq_agents_t *agents, const char *caps,
                           const char *key, sq_agent_outcome_t outcome,
                           sq_agents_out_t *out) {
        sq_slot_t slot;
        const char *name = acquire(agents, caps, key, true, NULL, &slot);
        if (!strcmp(name, "parked") || !strcmp(name, "none") ||
            !strcmp(name, "stale"))
                return name;
        assert_null(
            sq_agents_release(agents, &slot, outcome, 1000, NULL, NULL, out));
        return name;
}

static void test_ranking(void **state) {
        sq_config_t *conf;
        sq_agents_t *agents = agents_with(pair_kv, &conf);
        sq_agents_out_t out = {0};
        sq_slot_t held[3];
        int i, on_a = 0, on_b = 0;
        const char *first;
        char key[32];
        (void)state;
        /* Free capacity: with 3 of a's 4 slots busy, b wins. */
        for (i = 0; i < 3; i++)
                assert_string_equal(
                    acquire(agents, "aonly", NULL, true, NULL, &held[i]), "a");
        for (i = 0; i < 5; i++)
                assert_string_equal(
                    run_one(agents, "w", NULL, SQ_AGENT_OUTCOME_SUCCESS, &out),
                    "b");
        for (i = 0; i < 3; i++)
                assert_null(sq_agents_release(agents, &held[i],
                                              SQ_AGENT_OUTCOME_NONE, 0, NULL,
                                              NULL, &out));
        /* Affinity: one key always goes to the same agent... */
        first = run_one(agents, "w", "key-1", SQ_AGENT_OUTCOME_SUCCESS, &out);
        for (i = 0; i < 20; i++)
                assert_string_equal(run_one(agents, "w", "key-1",
                                            SQ_AGENT_OUTCOME_SUCCESS, &out),
                                    first);
        /* ...and keys spread over both. */
        for (i = 0; i < 200; i++) {
                snprintf(key, sizeof(key), "key-%d", i);
                if (!strcmp(run_one(agents, "w", key, SQ_AGENT_OUTCOME_SUCCESS,
                                    &out),
                            "a"))
                        on_a++;
                else
                        on_b++;
        }
        if (on_a < 50 || on_b < 50)
                fail_msg("keys on a: %d, on b: %d", on_a, on_b);
        /* Success rate: after b failed ten times (its breaker is off),
         * a wins keyless tasks and keyed ones alike. */
        for (i = 0; i < 10; i++)
                assert_string_equal(run_one(agents, "bonly", NULL,
                                            SQ_AGENT_OUTCOME_FAILURE, &out),
                                    "b");
        for (i = 0; i < 50; i++) {
                snprintf(key, sizeof(key), "key-%d", i);
                assert_string_equal(run_one(agents, "w", i % 2 ? key : NULL,
                                            SQ_AGENT_OUTCOME_SUCCESS, &out),
                                    "a");
        }
        assert_int_equal(out.changes_cnt, 0);
        sq_agents_out_reset(&out);
        sq_agents_release_ref(agents);
        sq_config_destroy(conf);
}

/* The breaker through the registry: failures open it (the selection
 * cache drops the agent at once), parked jobs are handed back, the
 * open period passes, probes run, successes close it. */
static void test_breaker_in_selection(void **state) {
        sq_config_t *conf;
        sq_agents_t *agents = agents_with(pair_kv, &conf);
        sq_agents_out_t out = {0};
        sq_agent_t *a       = sq_agents_find(agents, "a");
        sq_slot_t s1, s2, s3;
        sq_agent_stats_t st;
        int parked_job;
        char errstr[256];
        sq_select_t sel = {0};
        int i;
        (void)state;
        /* Fill a with aonly work, park one more job on it. */
        assert_string_equal(acquire(agents, "aonly", NULL, true, NULL, &s1),
                            "a");
        assert_string_equal(acquire(agents, "aonly", NULL, true, NULL, &s2),
                            "a");
        assert_string_equal(acquire(agents, "aonly", NULL, true, NULL, &s3),
                            "a");
        {
                sq_slot_t s4;
                assert_string_equal(
                    acquire(agents, "aonly", NULL, true, NULL, &s4), "a");
                /* Two failures in the window open a's breaker. */
                assert_null(sq_agents_release(agents, &s1,
                                              SQ_AGENT_OUTCOME_FAILURE, 5, NULL,
                                              NULL, &out));
                assert_int_equal(sq_agent_breaker_state(a), SQ_BREAKER_CLOSED);
                assert_string_equal(
                    acquire(agents, "aonly", NULL, true, NULL, &s1), "a");
                sel.req = req_of(agents, "aonly");
                assert_int_equal(sq_agents_acquire(agents, &sel, &parked_job,
                                                   &s4, errstr, 256),
                                 SQ_ACQ_PARKED);
                assert_null(sq_agents_release(agents, &s2,
                                              SQ_AGENT_OUTCOME_FAILURE, 5, NULL,
                                              NULL, &out));
                assert_int_equal(sq_agent_breaker_state(a), SQ_BREAKER_OPEN);
                assert_int_equal(out.changes_cnt, 1);
                assert_ptr_equal(out.changes[0].agent, a);
                assert_int_equal(out.changes[0].to, SQ_BREAKER_OPEN);
                /* The parked job comes back to be selected again. */
                assert_int_equal(out.requeue_cnt, 1);
                assert_ptr_equal(out.requeue[0], &parked_job);
                sq_agents_out_reset(&out);
                /* Open: w goes to b only; aonly parks (wait policy). */
                for (i = 0; i < 10; i++)
                        assert_string_equal(run_one(agents, "w", "k",
                                                    SQ_AGENT_OUTCOME_SUCCESS,
                                                    &out),
                                            "b");
                assert_string_equal(
                    acquire(agents, "aonly", NULL, true, &parked_job, NULL),
                    "parked");
                assert_null(sq_agents_release(
                    agents, &s1, SQ_AGENT_OUTCOME_NONE, 0, NULL, NULL, &out));
                assert_null(sq_agents_release(
                    agents, &s3, SQ_AGENT_OUTCOME_NONE, 0, NULL, NULL, &out));
                assert_null(sq_agents_release(
                    agents, &s4, SQ_AGENT_OUTCOME_NONE, 0, NULL, NULL, &out));
        }
        /* Its open period (1 ms) passes: the tick makes it half-open and
         * hands the parked job back; two probes close it. */
        assert_true(sq_agents_next_due(agents) > 0);
        sq_agents_tick(agents, sq_agents_next_due(agents), &out);
        assert_int_equal(sq_agent_breaker_state(a), SQ_BREAKER_HALF_OPEN);
        assert_int_equal(out.requeue_cnt, 1);
        assert_int_equal(out.changes_cnt, 1);
        sq_agents_out_reset(&out);
        assert_string_equal(acquire(agents, "aonly", NULL, true, NULL, &s1),
                            "a");
        assert_true(s1.probe);
        assert_string_equal(acquire(agents, "aonly", NULL, true, NULL, &s2),
                            "a");
        assert_true(s2.probe);
        /* Both probes out: a third task parks. */
        assert_string_equal(
            acquire(agents, "aonly", NULL, true, &parked_job, NULL), "parked");
        assert_null(sq_agents_release(agents, &s1, SQ_AGENT_OUTCOME_SUCCESS, 5,
                                      NULL, NULL, &out));
        assert_int_equal(sq_agent_breaker_state(a), SQ_BREAKER_HALF_OPEN);
        /* The last probe's success closes it and its slot goes to the
         * parked job. */
        assert_ptr_equal(sq_agents_release(agents, &s2,
                                           SQ_AGENT_OUTCOME_SUCCESS, 5, NULL,
                                           NULL, &out),
                         &parked_job);
        assert_int_equal(sq_agent_breaker_state(a), SQ_BREAKER_CLOSED);
        assert_false(s2.probe);
        assert_null(sq_agents_release(agents, &s2, SQ_AGENT_OUTCOME_SUCCESS, 5,
                                      NULL, NULL, &out));
        sq_agent_stats(a, &st);
        assert_int_equal(st.transitions[SQ_BREAKER_OPEN], 1);
        assert_int_equal(st.transitions[SQ_BREAKER_HALF_OPEN], 1);
        assert_int_equal(st.transitions[SQ_BREAKER_CLOSED], 1);
        assert_int_equal(st.in_flight, 0);
        sq_agents_out_reset(&out);
        sq_agents_release_ref(agents);
        sq_config_destroy(conf);
}

static void test_fail_when_all_open(void **state) {
        static const char *const kv[] = {"agent.a.handler",
                                         "noop",
                                         "agent.a.breaker.failures",
                                         "1",
                                         "breaker.when.open",
                                         "fail",
                                         NULL};
        sq_config_t *conf;
        sq_agents_t *agents = agents_with(kv, &conf);
        sq_agents_out_t out = {0};
        sq_select_t sel     = {0};
        sq_slot_t slot;
        char errstr[256] = "";
        (void)state;
        assert_string_equal(
            run_one(agents, "noop", NULL, SQ_AGENT_OUTCOME_FAILURE, &out), "a");
        sel.req = req_of(agents, "noop");
        assert_int_equal(sq_agents_acquire(agents, &sel, NULL, &slot, errstr,
                                           sizeof(errstr)),
                         SQ_ACQ_NO_HEALTHY);
        assert_non_null(strstr(errstr, "no healthy agent"));
        sq_agents_out_reset(&out);
        sq_agents_release_ref(agents);
        sq_config_destroy(conf);
}

static bool steal_all(void *opaque, void *job) {
        (void)job;
        return *(bool *)opaque;
}

/* A job parked on a busy agent moves to another capable agent when that
 * one frees a slot, if stealing is allowed. */
static void test_work_stealing(void **state) {
        static const char *const kv[] = {"agent.a.handler",
                                         "noop",
                                         "agent.a.capabilities",
                                         "w",
                                         "agent.a.concurrency",
                                         "1",
                                         "agent.b.handler",
                                         "noop",
                                         "agent.b.capabilities",
                                         "w",
                                         "agent.b.concurrency",
                                         "1",
                                         NULL};
        sq_config_t *conf;
        sq_agents_t *agents = agents_with(kv, &conf);
        sq_agents_out_t out = {0};
        sq_slot_t sa, sb;
        int j1, j2;
        bool allow = false;
        (void)state;
        assert_string_equal(acquire(agents, "w", NULL, true, NULL, &sa), "a");
        assert_string_equal(acquire(agents, "w", NULL, true, NULL, &sb), "b");
        /* j1 parks on a (tie: first), j2 on b. */
        assert_string_equal(acquire(agents, "w", NULL, true, &j1, NULL),
                            "parked");
        assert_string_equal(acquire(agents, "w", NULL, true, &j2, NULL),
                            "parked");
        assert_int_equal(sq_agent_parked(sa.agent), 1);
        assert_int_equal(sq_agent_parked(sb.agent), 1);
        /* b frees a slot: its own parked job first. */
        assert_ptr_equal(sq_agents_release(agents, &sb,
                                           SQ_AGENT_OUTCOME_SUCCESS, 1,
                                           steal_all, &allow, &out),
                         &j2);
        /* b frees again: nothing of its own; stealing off: j1 stays. */
        assert_null(sq_agents_release(agents, &sb, SQ_AGENT_OUTCOME_SUCCESS, 1,
                                      steal_all, &allow, &out));
        assert_int_equal(sq_agent_parked(sa.agent), 1);
        /* With stealing on, b takes j1 from a's queue. */
        assert_string_equal(acquire(agents, "w", NULL, true, NULL, &sb), "b");
        allow = true;
        assert_ptr_equal(sq_agents_release(agents, &sb,
                                           SQ_AGENT_OUTCOME_SUCCESS, 1,
                                           steal_all, &allow, &out),
                         &j1);
        assert_ptr_equal(sb.agent, sq_agents_find(agents, "b"));
        assert_int_equal(out.stolen, 1);
        assert_int_equal(sq_agent_parked(sa.agent), 0);
        assert_null(sq_agents_release(agents, &sb, SQ_AGENT_OUTCOME_SUCCESS, 1,
                                      steal_all, &allow, &out));
        assert_null(sq_agents_release(agents, &sa, SQ_AGENT_OUTCOME_SUCCESS, 1,
                                      steal_all, &allow, &out));
        sq_agents_out_reset(&out);
        sq_agents_release_ref(agents);
        sq_config_destroy(conf);
}

/* A reload: the new registry counts the old one's running tasks against
 * the new concurrency, keeps breaker state, and the old registry hands
 * its parked jobs back and answers "stale". */
static void test_reload_hand_over(void **state) {
        static const char *const v1[] = {"agent.a.handler",
                                         "noop",
                                         "agent.a.capabilities",
                                         "w",
                                         "agent.a.concurrency",
                                         "1",
                                         "agent.a.breaker.failures",
                                         "1",
                                         NULL};
        static const char *const v2[] = {"agent.a.handler",
                                         "echo",
                                         "agent.a.capabilities",
                                         "w",
                                         "agent.a.concurrency",
                                         "2",
                                         "agent.a.breaker.failures",
                                         "1",
                                         "agent.b.handler",
                                         "noop",
                                         NULL};
        sq_config_t *conf1, *conf2;
        sq_agents_t *old    = agents_with(v1, &conf1), *new;
        sq_agents_out_t out = {0};
        sq_slot_t s_old, s_new;
        int parked;
        char errstr[256];
        (void)state;
        assert_string_equal(acquire(old, "w", NULL, true, NULL, &s_old), "a");
        assert_string_equal(acquire(old, "w", NULL, true, &parked, NULL),
                            "parked");
        conf2 = config_with(v2);
        new   = sq_agents_new(conf2, old, errstr, sizeof(errstr));
        assert_non_null(new);
        sq_agents_retire(old, &out);
        assert_int_equal(out.requeue_cnt, 1);
        assert_ptr_equal(out.requeue[0], &parked);
        sq_agents_out_reset(&out);
        assert_string_equal(acquire(old, "w", NULL, true, NULL, NULL), "stale");
        /* a: 1 running (old) of 2 (new): one more fits, then parks. */
        assert_int_equal(sq_agent_in_flight(sq_agents_find(new, "a")), 1);
        assert_string_equal(acquire(new, "w", NULL, true, NULL, &s_new), "a");
        assert_string_equal(acquire(new, "w", NULL, true, &parked, NULL),
                            "parked");
        /* The old task finishes, fails: the shared breaker opens, and the
         * job parked through the new registry is handed back. */
        assert_null(sq_agents_release(old, &s_old, SQ_AGENT_OUTCOME_FAILURE, 1,
                                      NULL, NULL, &out));
        assert_int_equal(sq_agent_breaker_state(sq_agents_find(new, "a")),
                         SQ_BREAKER_OPEN);
        assert_int_equal(out.requeue_cnt, 1);
        sq_agents_release_ref(old);
        sq_config_destroy(conf1);
        assert_null(sq_agents_release(new, &s_new, SQ_AGENT_OUTCOME_NONE, 0,
                                      NULL, NULL, &out));
        assert_int_equal(sq_agent_in_flight(sq_agents_find(new, "a")), 0);
        sq_agents_out_reset(&out);
        sq_agents_release_ref(new);
        sq_config_destroy(conf2);
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
            cmocka_unit_test(test_index_at_scale),
            cmocka_unit_test(test_slots_park_and_hand_over),
            cmocka_unit_test(test_ranking),
            cmocka_unit_test(test_breaker_in_selection),
            cmocka_unit_test(test_fail_when_all_open),
            cmocka_unit_test(test_work_stealing),
            cmocka_unit_test(test_reload_hand_over),
            cmocka_unit_test(test_builtin_handlers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
