/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_workflow.c: workflow documents (what they mean, what is refused
 * and how it is named), and the owner's side driven by records alone: a
 * chord, a chain that stops at a failed step, nesting, duplicate and
 * out-of-order records, a rebuild from the records a partition holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "workflow.h"

static sq_workflow_t *parse_ok(const char *json) {
        char errstr[512];
        sq_workflow_t *wf =
            sq_workflow_parse(json, strlen(json), "wf", errstr, sizeof(errstr));
        if (!wf)
                fail_msg("parse: %s", errstr);
        return wf;
}

static void test_refusals(void **state) {
        static const struct {
                const char *json, *want;
        } cases[] = {
            {"{\"workflow\": ", "not valid JSON at line 1"},
            {"[1]", "expected an object at the top level"},
            {"{\"workflow\": {\"type\": \"echo\"}}",
             "\"workflow\" is a single task"},
            {"{\"wokflow\": {}}", "unknown top-level field \"wokflow\""},
            {"{\"id\": \"a/b\", \"workflow\": {\"chain\": []}}",
             "workflow id \"a/b\": it must be 1 to 200 bytes without '/'"},
            {"{\"workflow\": {\"chain\": []}}",
             "workflow wf: workflow: \"chain\" must be a non-empty array"},
            {"{\"workflow\": {\"chain\": [{\"tpye\": \"echo\"}]}}",
             "workflow wf: workflow.chain[0]: it has none of type, chain and "
             "group"},
            {"{\"workflow\": {\"chain\": [{\"type\": \"echo\", \"paylod\": "
             "\"x\"}]}}",
             "workflow wf: workflow.chain[0]: task: unknown field "
             "\"paylod\""},
            {"{\"workflow\": {\"chain\": [{\"type\": \"echo\"}, {\"type\": "
             "\"echo\", \"payload\": \"x\"}]}}",
             "workflow.chain[1]: it sets a payload, but its payload is its "
             "input"},
            {"{\"workflow\": {\"group\": [{\"type\": \"echo\"}], \"join\": "
             "{\"type\": \"echo\", \"payload\": \"x\"}}}",
             "workflow.join: it sets a payload"},
            {"{\"workflow\": {\"group\": [{\"type\": \"echo\", \"id\": "
             "\"x\"}]}}",
             "workflow.group[0]: field \"id\" is set by the workflow"},
            {"{\"workflow\": {\"chain\": [{\"type\": \"echo\"}], \"join\": "
             "{\"type\": \"echo\"}}}",
             "workflow: unknown field \"join\" (a chain has: chain"},
            {"{\"workflow\": {\"group\": [{\"type\": \"echo\", \"priority\": "
             "\"URGENT\"}]}}",
             "workflow.group[0]: task: field \"priority\""},
            {"{\"workflow\": {\"group\": [{\"type\": \"echo\", \"chain\": "
             "[]}]}}",
             "workflow.group[0]: it has more than one of type, chain and "
             "group"},
            {"{\"workflow\": {\"group\": [3]}}",
             "workflow.group[0]: expected an object"},
        };
        size_t i;
        (void)state;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char errstr[512] = "";
                sq_workflow_t *wf =
                    sq_workflow_parse(cases[i].json, strlen(cases[i].json),
                                      "wf", errstr, sizeof(errstr));
                if (wf || !strstr(errstr, cases[i].want))
                        fail_msg("case %zu: got \"%s\", want \"%s\"", i,
                                 wf ? "(accepted)" : errstr, cases[i].want);
        }
}

static void test_depth_bound(void **state) {
        char json[4096] = "{\"workflow\": ";
        char errstr[512];
        int i;
        (void)state;

        for (i = 0; i < SQ_WORKFLOW_DEPTH_MAX + 2; i++)
                strcat(json, "{\"chain\": [");
        strcat(json, "{\"type\": \"echo\"}");
        for (i = 0; i < SQ_WORKFLOW_DEPTH_MAX + 2; i++)
                strcat(json, "]}");
        strcat(json, "}");
        assert_null(sq_workflow_parse(json, strlen(json), "wf", errstr,
                                      sizeof(errstr)));
        assert_non_null(strstr(errstr, "nested deeper than 32"));
}

/* Feeds an ended record of @p task_id to the set. */
static sq_workflow_t *end_task(sq_workflows_t *set, const char *task_id,
                               sq_status_t status, const char *output) {
        sq_result_t result;
        sq_workflow_t *wf = NULL;
        char key[256], errstr[256];
        char *rec;

        memset(&result, 0, sizeof(result));
        result.task_id     = (char *)task_id;
        result.workflow_id = "wf";
        result.status      = status;
        result.output      = (unsigned char *)output;
        result.output_len  = strlen(output);
        result.instance    = "i1";
        if (status != SQ_STATUS_SUCCEEDED)
                result.error = "exit status 1";
        rec = sq_workflow_ended_record(&result);
        assert_true(sq_workflow_key("wf", task_id, key, sizeof(key)) > 0);
        if (sq_workflows_apply(set, 0, key, strlen(key), rec, strlen(rec), &wf,
                               errstr, sizeof(errstr)) != SQ_OK)
                fail_msg("apply %s: %s", task_id, errstr);
        sq_free(rec);
        return wf;
}

static sq_workflow_t *declare(sq_workflows_t *set, const char *json) {
        sq_workflow_t *parsed = parse_ok(json), *wf = NULL;
        char *rec = sq_workflow_declaration(parsed, 1000);
        char key[256], errstr[256];

        sq_workflow_key("wf", "", key, sizeof(key));
        assert_string_equal(key, "wf/declared");
        if (sq_workflows_apply(set, 0, key, strlen(key), rec, strlen(rec), &wf,
                               errstr, sizeof(errstr)) != SQ_OK)
                fail_msg("declare: %s", errstr);
        sq_free(rec);
        sq_workflow_destroy(parsed);
        assert_non_null(wf);
        return wf;
}

static void test_chord(void **state) {
        sq_workflows_t *set = sq_workflows_new();
        sq_workflow_t *wf   = declare(
              set, "{\"priority\": \"HIGH\", \"headers\": {\"traceparent\": "
                     "\"t\"}, \"workflow\": {\"group\": [{\"type\": \"echo\", "
                     "\"payload\": \"a\"}, {\"type\": \"echo\", \"payload\": "
                     "\"b\", \"headers\": {\"x\": \"1\"}}], \"join\": "
                     "{\"type\": \"join\", \"priority\": \"LOW\"}}}");
        sq_workflow_step_t step;
        (void)state;

        assert_int_equal(sq_workflow_task_cnt(wf), 3);
        sq_workflow_step(wf, 2000, &step);
        assert_false(step.done);
        assert_int_equal(step.ready_cnt, 2);
        assert_string_equal(step.ready[0]->id, "wf.0");
        assert_string_equal(step.ready[1]->id, "wf.1");
        assert_string_equal(step.ready[0]->workflow_id, "wf");
        assert_null(step.ready[0]->parent_id);
        assert_int_equal(step.ready[0]->priority, SQ_PRIO_HIGH);
        assert_int_equal(step.ready[0]->created_at, 2000);
        assert_memory_equal(step.ready[1]->payload, "b", 1);
        /* Inherited headers, merged with the task's own. */
        assert_string_equal(sq_task_header(step.ready[1], "traceparent"), "t");
        assert_string_equal(sq_task_header(step.ready[1], "x"), "1");
        sq_workflow_mark(wf, &step, 2000);
        sq_workflow_step_term(&step);

        /* Nothing new until every child ended. */
        sq_workflow_step(wf, 2001, &step);
        assert_int_equal(step.ready_cnt, 0);
        sq_workflow_step_term(&step);
        assert_ptr_equal(end_task(set, "wf.1", SQ_STATUS_FAILED, "no"), wf);
        /* A second ending of the same task is ignored. */
        end_task(set, "wf.1", SQ_STATUS_SUCCEEDED, "late");
        sq_workflow_step(wf, 2002, &step);
        assert_int_equal(step.ready_cnt, 0);
        sq_workflow_step_term(&step);
        end_task(set, "wf.0", SQ_STATUS_SUCCEEDED, "A");

        /* The join, once, with both results in order. */
        sq_workflow_step(wf, 3000, &step);
        assert_int_equal(step.ready_cnt, 1);
        assert_string_equal(step.ready[0]->id, "wf.join");
        assert_int_equal(step.ready[0]->priority, SQ_PRIO_LOW);
        assert_string_equal(sq_task_header(step.ready[0], "traceparent"), "t");
        {
                const char *want =
                    "[{\"id\":\"wf.0\",\"status\":\"SUCCEEDED\",\"output\":"
                    "\"A\",\"error\":null},{\"id\":\"wf.1\",\"status\":"
                    "\"FAILED\",\"output\":\"no\",\"error\":\"exit status "
                    "1\"}]";
                assert_int_equal(step.ready[0]->payload_len, strlen(want));
                assert_memory_equal(step.ready[0]->payload, want, strlen(want));
        }
        sq_workflow_mark(wf, &step, 3000);
        sq_workflow_step_term(&step);
        sq_workflow_step(wf, 3001, &step);
        assert_int_equal(step.ready_cnt, 0);
        assert_false(step.done);
        sq_workflow_step_term(&step);

        end_task(set, "wf.join", SQ_STATUS_SUCCEEDED, "joined");
        sq_workflow_step(wf, 4000, &step);
        assert_true(step.done);
        assert_int_equal(step.status, SQ_STATUS_SUCCEEDED);
        assert_memory_equal(step.output, "joined", 6);
        sq_workflow_mark(wf, &step, 4000);
        sq_workflow_step_term(&step);
        assert_int_equal(sq_workflow_status(wf), SQ_STATUS_SUCCEEDED);
        /* Over: nothing more, whatever comes. */
        end_task(set, "wf.0", SQ_STATUS_SUCCEEDED, "again");
        sq_workflow_step(wf, 5000, &step);
        assert_false(step.done);
        assert_int_equal(step.ready_cnt, 0);
        sq_workflow_step_term(&step);
        sq_workflows_destroy(set);
}

/* A group whose unsuccessful children were all cancelled (its workflow
 * was) ends CANCELLED; with any other failure among them, FAILED. */
static void test_group_cancelled(void **state) {
        static const struct {
                sq_status_t a, b, want;
        } rows[] = {
            {SQ_STATUS_CANCELLED, SQ_STATUS_CANCELLED, SQ_STATUS_CANCELLED},
            {SQ_STATUS_SUCCEEDED, SQ_STATUS_CANCELLED, SQ_STATUS_CANCELLED},
            {SQ_STATUS_FAILED, SQ_STATUS_CANCELLED, SQ_STATUS_FAILED},
            {SQ_STATUS_SUCCEEDED, SQ_STATUS_SUCCEEDED, SQ_STATUS_SUCCEEDED},
        };
        size_t i;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(rows); i++) {
                sq_workflows_t *set = sq_workflows_new();
                sq_workflow_t *wf   = declare(
                      set, "{\"workflow\": {\"group\": [{\"type\": \"echo\", "
                             "\"payload\": \"a\"}, {\"type\": \"echo\", "
                             "\"payload\": \"b\"}]}}");
                sq_workflow_step_t step;

                sq_workflow_step(wf, 2000, &step);
                assert_int_equal(step.ready_cnt, 2);
                sq_workflow_mark(wf, &step, 2000);
                sq_workflow_step_term(&step);
                end_task(set, "wf.0", rows[i].a, "");
                end_task(set, "wf.1", rows[i].b, "");
                sq_workflow_step(wf, 3000, &step);
                assert_true(step.done);
                if (step.status != rows[i].want)
                        fail_msg("row %zu: %s, expected %s", i,
                                 sq_status_name(step.status),
                                 sq_status_name(rows[i].want));
                sq_workflow_step_term(&step);
                sq_workflows_destroy(set);
        }
}

/* Children from a task's output: only an object with "spawn" spawns;
 * the children's workflow is <task id>.spawn and inherits the task's
 * priority, timeout and headers; "output" is what the task keeps; a bad
 * node is refused naming its place. */
static void test_spawn(void **state) {
        sq_task_t *task = sq_task_new();
        sq_workflow_t *wf;
        sq_workflow_step_t step;
        char errstr[512], *kept;
        size_t kept_len;
        const char *env;
        (void)state;

        task->id         = sq_strdup("t1");
        task->type       = sq_strdup("fan");
        task->priority   = SQ_PRIO_HIGH;
        task->timeout_ms = 7000;
        sq_task_add_header(task, "traceparent", "00-t-01");

        /* Not an object, or an object without "spawn": nothing. */
        assert_int_equal(sq_workflow_spawn(task, "plain", 5, &wf, &kept,
                                           &kept_len, errstr, sizeof(errstr)),
                         SQ_OK);
        assert_null(wf);
        env = " {\"output\": \"x\"}";
        assert_int_equal(sq_workflow_spawn(task, env, strlen(env), &wf, &kept,
                                           &kept_len, errstr, sizeof(errstr)),
                         SQ_OK);
        assert_null(wf);

        env = "{\"spawn\": {\"group\": [{\"type\": \"a\", \"payload\": \"1\"}, "
              "{\"type\": \"b\", \"priority\": \"LOW\", \"payload\": \"2\"}], "
              "\"join\": {\"type\": \"j\"}}, \"output\": \"kept\"}";
        assert_int_equal(sq_workflow_spawn(task, env, strlen(env), &wf, &kept,
                                           &kept_len, errstr, sizeof(errstr)),
                         SQ_OK);
        assert_non_null(wf);
        assert_string_equal(sq_workflow_id(wf), "t1.spawn");
        assert_int_equal(sq_workflow_task_cnt(wf), 3);
        assert_int_equal(kept_len, 4);
        assert_memory_equal(kept, "kept", 4);
        sq_workflow_step(wf, 1000, &step);
        assert_int_equal(step.ready_cnt, 2);
        assert_string_equal(step.ready[0]->id, "t1.spawn.0");
        assert_string_equal(step.ready[0]->workflow_id, "t1.spawn");
        assert_int_equal(step.ready[0]->priority, SQ_PRIO_HIGH);
        assert_int_equal(step.ready[1]->priority, SQ_PRIO_LOW); /* its own */
        assert_true(step.ready[0]->timeout_ms == 7000);
        assert_string_equal(sq_task_header(step.ready[1], "traceparent"),
                            "00-t-01");
        sq_workflow_step_term(&step);
        sq_workflow_destroy(wf);
        sq_free(kept);

        /* Refused, naming the place; "output" must be a string. */
        env =
            "{\"spawn\": {\"group\": [{\"type\": \"a\", \"paylod\": \"1\"}]}}";
        assert_int_equal(sq_workflow_spawn(task, env, strlen(env), &wf, &kept,
                                           &kept_len, errstr, sizeof(errstr)),
                         SQ_ERR_DECODE);
        assert_null(wf);
        assert_non_null(strstr(errstr, "spawn: workflow.group[0]: task: "
                                       "unknown field \"paylod\""));
        env = "{\"spawn\": {\"type\": \"a\"}, \"output\": 3}";
        assert_int_equal(sq_workflow_spawn(task, env, strlen(env), &wf, &kept,
                                           &kept_len, errstr, sizeof(errstr)),
                         SQ_ERR_DECODE);
        assert_non_null(strstr(errstr, "\"output\" must be a string"));
        sq_task_destroy(task);
}

static void test_chain_stops_at_failure(void **state) {
        sq_workflows_t *set = sq_workflows_new();
        sq_workflow_t *wf   = declare(
              set, "{\"workflow\": {\"chain\": [{\"type\": \"a\", \"payload\": "
                     "\"in\"}, {\"group\": [{\"type\": \"b\"}, {\"type\": "
                     "\"c\"}]}, {\"type\": \"d\"}]}}");
        sq_workflow_step_t step;
        (void)state;

        sq_workflow_step(wf, 1, &step);
        assert_int_equal(step.ready_cnt, 1);
        assert_string_equal(step.ready[0]->id, "wf.0");
        sq_workflow_mark(wf, &step, 1);
        sq_workflow_step_term(&step);
        end_task(set, "wf.0", SQ_STATUS_SUCCEEDED, "out-a");

        /* The group's children both take a's output and follow it. */
        sq_workflow_step(wf, 2, &step);
        assert_int_equal(step.ready_cnt, 2);
        assert_string_equal(step.ready[0]->id, "wf.1.0");
        assert_string_equal(step.ready[1]->id, "wf.1.1");
        assert_string_equal(step.ready[1]->parent_id, "wf.0");
        assert_memory_equal(step.ready[1]->payload, "out-a", 5);
        sq_workflow_mark(wf, &step, 2);
        sq_workflow_step_term(&step);
        end_task(set, "wf.1.0", SQ_STATUS_SUCCEEDED, "b");
        end_task(set, "wf.1.1", SQ_STATUS_DEAD_LETTERED, "");

        /* A child of the group failed: the chain stops, d never runs. */
        sq_workflow_step(wf, 3, &step);
        assert_int_equal(step.ready_cnt, 0);
        assert_true(step.done);
        assert_int_equal(step.status, SQ_STATUS_FAILED);
        assert_non_null(strstr(step.error, "step wf.1 ended FAILED: 1 of the "
                                           "2 tasks of group wf.1 did not "
                                           "succeed"));
        sq_workflow_step_term(&step);
        sq_workflows_destroy(set);
}

static void test_chain_feeds_output(void **state) {
        sq_workflows_t *set = sq_workflows_new();
        sq_workflow_t *wf   = declare(
              set, "{\"workflow\": {\"chain\": [{\"type\": \"a\"}, {\"type\": "
                     "\"b\"}, {\"type\": \"c\"}]}}");
        sq_workflow_step_t step;
        (void)state;

        sq_workflow_step(wf, 1, &step);
        sq_workflow_mark(wf, &step, 1);
        sq_workflow_step_term(&step);
        end_task(set, "wf.0", SQ_STATUS_SUCCEEDED, "1");
        sq_workflow_step(wf, 2, &step);
        assert_int_equal(step.ready_cnt, 1);
        assert_string_equal(step.ready[0]->id, "wf.1");
        assert_string_equal(step.ready[0]->parent_id, "wf.0");
        assert_memory_equal(step.ready[0]->payload, "1", 1);
        sq_workflow_mark(wf, &step, 2);
        sq_workflow_step_term(&step);
        end_task(set, "wf.1", SQ_STATUS_SUCCEEDED, "12");
        sq_workflow_step(wf, 3, &step);
        assert_int_equal(step.ready_cnt, 1);
        assert_memory_equal(step.ready[0]->payload, "12", 2);
        sq_workflow_mark(wf, &step, 3);
        sq_workflow_step_term(&step);
        end_task(set, "wf.2", SQ_STATUS_TIMED_OUT, "");
        sq_workflow_step(wf, 4, &step);
        assert_true(step.done);
        assert_int_equal(step.status, SQ_STATUS_FAILED);
        assert_string_equal(step.error,
                            "step wf.2 ended TIMED_OUT: exit status 1");
        sq_workflow_step_term(&step);
        sq_workflows_destroy(set);
}

/* An owner that died after submitting the children but before writing
 * its state: the next one, reading the partition, submits only what
 * neither started nor ended. Then its state record, read by a third,
 * says what started. */
static void test_rebuild(void **state) {
        static const char *doc =
            "{\"workflow\": {\"group\": [{\"type\": \"a\"}, {\"type\": "
            "\"b\"}, {\"type\": \"c\"}], \"join\": {\"type\": \"j\"}}}";
        sq_workflows_t *set = sq_workflows_new(), *again;
        sq_workflow_t *wf = declare(set, doc), *wf2 = NULL;
        sq_workflow_step_t step;
        char errstr[256];
        char *rec;
        (void)state;

        /* b ended (its record came first), nothing recorded as started. */
        end_task(set, "wf.1", SQ_STATUS_SUCCEEDED, "B");
        sq_workflow_step(wf, 1, &step);
        assert_int_equal(step.ready_cnt, 2);
        assert_string_equal(step.ready[0]->id, "wf.0");
        assert_string_equal(step.ready[1]->id, "wf.2");
        sq_workflow_mark(wf, &step, 1);
        sq_workflow_step_term(&step);
        rec = sq_workflow_state_record(wf);

        again = sq_workflows_new();
        assert_int_equal(sq_workflows_apply(again, 3, "wf", 2, rec, strlen(rec),
                                            &wf2, errstr, sizeof(errstr)),
                         SQ_OK);
        assert_non_null(wf2);
        assert_int_equal(sq_workflow_started_cnt(wf2), 2);
        sq_workflow_step(wf2, 2, &step);
        /* b is not known to the new set as started nor ended: submitted
         * again (the same id; the consumers' dedup and the first ended
         * record absorb it). */
        assert_int_equal(step.ready_cnt, 1);
        assert_string_equal(step.ready[0]->id, "wf.1");
        sq_workflow_step_term(&step);
        sq_free(rec);

        /* A tombstone of the state forgets it; a partition's drop too. */
        assert_int_equal(sq_workflows_count(again, true), 1);
        assert_int_equal(sq_workflows_apply(again, 3, "wf", 2, NULL, 0, &wf2,
                                            errstr, sizeof(errstr)),
                         SQ_OK);
        assert_int_equal(sq_workflows_count(again, false), 0);
        assert_int_equal(sq_workflows_count(set, true), 1);
        sq_workflows_drop_partition(set, 0);
        assert_int_equal(sq_workflows_count(set, false), 0);
        sq_workflows_destroy(again);
        sq_workflows_destroy(set);
}

static void test_bad_records(void **state) {
        static const char *unknown =
            "{\"workflow\":\"wf\",\"ended\":\"wf.9\",\"status\":"
            "\"SUCCEEDED\",\"output_base64\":\"\"}";
        sq_workflows_t *set = sq_workflows_new();
        sq_workflow_t *wf   = NULL;
        char errstr[256];
        (void)state;

        declare(set, "{\"workflow\": {\"group\": [{\"type\": \"a\"}]}}");
        assert_int_equal(sq_workflows_apply(set, 0, "wf/x", 4, "nope", 4, &wf,
                                            errstr, sizeof(errstr)),
                         SQ_ERR_DECODE);
        assert_non_null(strstr(errstr, "not a JSON object naming it"));
        assert_int_equal(sq_workflows_apply(set, 0, "wf/wf.9", 7, unknown,
                                            strlen(unknown), &wf, errstr,
                                            sizeof(errstr)),
                         SQ_ERR_DECODE);
        assert_string_equal(errstr, "workflow wf has no task wf.9");
        assert_int_equal(sq_workflows_apply(set, 0, NULL, 0, "{}", 2, &wf,
                                            errstr, sizeof(errstr)),
                         SQ_ERR_DECODE);
        sq_workflows_destroy(set);
}

static void test_partition(void **state) {
        (void)state;
        assert_int_equal(sq_workflow_partition("anything", 1), 0);
        assert_true(sq_workflow_partition("wf-1", 12) >= 0 &&
                    sq_workflow_partition("wf-1", 12) < 12);
        /* Stable: the submitter and the instances must agree. */
        assert_int_equal(sq_workflow_partition("wf-1", 12),
                         sq_workflow_partition("wf-1", 12));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_refusals),
            cmocka_unit_test(test_depth_bound),
            cmocka_unit_test(test_chord),
            cmocka_unit_test(test_group_cancelled),
            cmocka_unit_test(test_spawn),
            cmocka_unit_test(test_chain_stops_at_failure),
            cmocka_unit_test(test_chain_feeds_output),
            cmocka_unit_test(test_rebuild),
            cmocka_unit_test(test_bad_records),
            cmocka_unit_test(test_partition),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
