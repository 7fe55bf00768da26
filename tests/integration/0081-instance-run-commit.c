/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 0081-instance-run-commit: admit, run and commit, in-process on the
 * instance's embedded broker, read back by independent clients.
 *
 * 340 tasks go to the tasks topic (echo and noop as JSON written here,
 * sha256 as Avro from core/wire's encoder) and to the critical topic.
 * Each task gets exactly one result: SUCCEEDED, on the agent its type
 * names, with the right output bytes (echo: the payload; sha256: the hex
 * digest computed here with OpenSSL; noop: empty), attempt 1, this
 * instance, the source coordinates its record's delivery report gave,
 * and ordered timings. Each has the events received, started, succeeded,
 * in that order. Then the group's committed offset of every partition of
 * both input topics reaches its high watermark, the results and events
 * topics hold exactly one result and three events per task (no
 * duplicates), /status shows every input partition with the committed
 * offset and high watermark the broker has and lag 0, and 340 tasks
 * received, finished and succeeded, and /metrics counts 340 SUCCEEDED.
 */
#include "test.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_ECHO     100
#define N_SHA      100
#define N_NOOP     100
#define N_CRITICAL 40
#define N_TASKS    (N_ECHO + N_SHA + N_NOOP + N_CRITICAL)
#define PARTITIONS 4

typedef struct sent_s {
        char id[32];
        const char *type;
        const char *topic;
        char payload[32];
        test_rec_t rec;
} sent_t;

static void sha256_hex(const char *in, char *out /* 65 bytes */) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0, i;
        if (!EVP_Digest(in, strlen(in), md, &len, EVP_sha256(), NULL))
                TEST_FAIL("EVP_Digest failed");
        for (i = 0; i < len; i++)
                snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void check_result(const sent_t *sent, const sq_result_t *result) {
        char want[65]  = "";
        const char *id = sent->id;

        TEST_ASSERT(result->status == SQ_STATUS_SUCCEEDED,
                    "task %s: status %s (error %s)", id,
                    sq_status_name(result->status),
                    result->error ? result->error : "none");
        if (!strcmp(sent->type, "echo"))
                sq_strlcpy(want, sent->payload, sizeof(want));
        else if (!strcmp(sent->type, "sha256"))
                sha256_hex(sent->payload, want);
        TEST_ASSERT(result->output_len == strlen(want) &&
                        (result->output_len == 0 ||
                         !memcmp(result->output, want, result->output_len)),
                    "task %s (%s of \"%s\"): output \"%.*s\", expected "
                    "\"%s\"",
                    id, sent->type, sent->payload, (int)result->output_len,
                    result->output ? (const char *)result->output : "", want);
        TEST_ASSERT(result->agent && !strcmp(result->agent, sent->type),
                    "task %s: agent %s, expected %s", id,
                    result->agent ? result->agent : "(none)", sent->type);
        TEST_ASSERT(result->instance && !strcmp(result->instance, "c1"),
                    "task %s: instance %s", id,
                    result->instance ? result->instance : "(none)");
        TEST_ASSERT(result->attempts == 1, "task %s: attempts %d", id,
                    (int)result->attempts);
        TEST_ASSERT(result->source.topic &&
                        !strcmp(result->source.topic, sent->topic) &&
                        result->source.partition == sent->rec.partition &&
                        result->source.offset == sent->rec.offset,
                    "task %s: source %s [%d] @%lld, but it was produced to "
                    "%s [%d] @%lld",
                    id, result->source.topic ? result->source.topic : "-",
                    (int)result->source.partition,
                    (long long)result->source.offset, sent->topic,
                    (int)sent->rec.partition, (long long)sent->rec.offset);
        TEST_ASSERT(result->created_at <= result->started_at &&
                        result->started_at <= result->finished_at,
                    "task %s: created %lld started %lld finished %lld", id,
                    (long long)result->created_at,
                    (long long)result->started_at,
                    (long long)result->finished_at);
}

static int64_t sum_high(const char *bootstrap, const char *topic) {
        int64_t high[64], sum = 0;
        int i, cnt            = test_partition_count(bootstrap, topic);
        test_high_watermarks(bootstrap, topic, cnt, high);
        for (i = 0; i < cnt; i++)
                sum += high[i];
        return sum;
}

typedef struct status_ctx_s {
        sq_daemon_t *daemon;
        const char *bootstrap;
        char why[512];
} status_ctx_t;

/* /status agrees with the broker: every partition of both input topics
 * assigned, its committed offset and high watermark those an independent
 * client reads, lag 0; 340 tasks received, finished and succeeded. */
static bool status_agrees(void *opaque) {
        status_ctx_t *ctx                 = opaque;
        static const char *const topics[] = {"swarmq-tasks",
                                             "swarmq-tasks-critical"};
        int64_t high[2][PARTITIONS];
        json_t *doc, *parts, *p, *tasks;
        json_error_t jerr;
        char *body = NULL;
        int t, seen = 0;
        size_t i;
        bool ok = false;

        for (t = 0; t < 2; t++)
                test_high_watermarks(ctx->bootstrap, topics[t], PARTITIONS,
                                     high[t]);
        if (test_http_get(ctx->daemon, "/status", &body) != 200 || !body) {
                snprintf(ctx->why, sizeof(ctx->why), "GET /status failed");
                goto done;
        }
        if (!(doc = json_loads(body, 0, &jerr)))
                TEST_FAIL("/status is not JSON: %s", jerr.text);
        parts = json_object_get(doc, "partitions");
        json_array_foreach(parts, i, p) {
                const char *topic =
                    json_string_value(json_object_get(p, "topic"));
                int partition =
                    (int)json_integer_value(json_object_get(p, "partition"));
                json_t *committed = json_object_get(p, "committed");
                json_t *hw        = json_object_get(p, "high_watermark");
                json_t *lag       = json_object_get(p, "lag");
                for (t = 0; t < 2; t++) {
                        if (!topic || strcmp(topic, topics[t]))
                                continue;
                        seen++;
                        if (!json_is_integer(committed) ||
                            json_integer_value(committed) !=
                                high[t][partition] ||
                            !json_is_integer(hw) ||
                            json_integer_value(hw) != high[t][partition] ||
                            !json_is_integer(lag) ||
                            json_integer_value(lag) != 0) {
                                char *text = json_dumps(p, JSON_COMPACT);
                                snprintf(ctx->why, sizeof(ctx->why),
                                         "%s, the broker's high watermark "
                                         "%lld",
                                         text, (long long)high[t][partition]);
                                free(text);
                                json_decref(doc);
                                goto done;
                        }
                }
        }
        tasks = json_object_get(doc, "tasks");
        if (seen != 2 * PARTITIONS ||
            json_integer_value(json_object_get(tasks, "received")) != N_TASKS ||
            json_integer_value(json_object_get(tasks, "finished")) != N_TASKS ||
            json_integer_value(json_object_get(tasks, "succeeded")) !=
                N_TASKS ||
            !json_string_value(json_object_get(doc, "instance")) ||
            strcmp(json_string_value(json_object_get(doc, "instance")), "c1")) {
                char *text = json_dumps(tasks, JSON_COMPACT);
                snprintf(ctx->why, sizeof(ctx->why),
                         "%d input partitions listed, tasks %s", seen, text);
                free(text);
                json_decref(doc);
                goto done;
        }
        json_decref(doc);
        ok = true;
done:
        sq_free(body);
        return ok;
}

int main_0081_instance_run_commit(int argc, char **argv) {
        static sent_t sent[N_TASKS];
        test_reader_t *results, *events;
        status_ctx_t status;
        sq_daemon_t *daemon;
        sq_codec_t *codec;
        const char *bootstrap;
        char errstr[512];
        rd_kafka_t *rk;
        size_t read;
        double succeeded;
        int i;

        (void)argc;
        (void)argv;
        test_timeout_set(90);

        TEST_PHASE("start");
        daemon = test_instance_start(
            test_conf_new(NULL, "c1", "embedded.partitions", "4",
                          "executor.threads", "3", NULL));
        bootstrap = sq_daemon_bootstrap_servers(daemon);
        if (!(codec = sq_codec_new(errstr, sizeof(errstr))))
                TEST_FAIL("sq_codec_new: %s", errstr);

        TEST_PHASE("produce");
        /* Produced before the group's first assignment (the mock holds it
         * 3 s): the instance starts from the earliest offsets. */
        rk = test_producer_new(bootstrap);
        for (i = 0; i < N_TASKS; i++) {
                sent_t *s = &sent[i];
                sq_task_t *task;
                bool avro = false;
                snprintf(s->id, sizeof(s->id), "t-%03d", i);
                s->topic = "swarmq-tasks";
                if (i < N_ECHO) {
                        s->type = "echo";
                } else if (i < N_ECHO + N_SHA) {
                        s->type = "sha256";
                        avro    = true;
                } else if (i < N_ECHO + N_SHA + N_NOOP) {
                        s->type = "noop";
                } else {
                        s->type  = i % 2 ? "sha256" : "echo";
                        s->topic = "swarmq-tasks-critical";
                        avro     = i % 4 < 2;
                }
                if (strcmp(s->type, "noop"))
                        snprintf(s->payload, sizeof(s->payload),
                                 "%s payload %d", s->type, i);
                task = test_task_new(s->id, s->type, s->payload);
                test_produce_task(rk, avro ? codec : NULL, s->topic, task,
                                  &s->rec);
                sq_task_destroy(task);
        }
        test_producer_flush(rk);

        TEST_PHASE("results");
        results = test_reader_new(bootstrap, "swarmq-results");
        read    = test_read_results(results, N_TASKS, 60000);
        TEST_ASSERT(read == N_TASKS, "%zu results read for %d tasks", read,
                    N_TASKS);
        for (i = 0; i < N_TASKS; i++) {
                const test_entry_t *entry = test_entry(results, sent[i].id);
                TEST_ASSERT(entry && entry->results == 1,
                            "task %s has %d results", sent[i].id,
                            entry ? entry->results : 0);
                check_result(&sent[i], entry->result);
        }
        TEST_SAY("%d results checked", N_TASKS);

        TEST_PHASE("events");
        events = test_reader_new(bootstrap, "swarmq-events");
        test_read_events(events, "succeeded", N_TASKS, 30000);
        for (i = 0; i < N_TASKS; i++) {
                const test_entry_t *entry = test_entry(events, sent[i].id);
                TEST_ASSERT(entry && !strcmp(entry->types,
                                             "received started succeeded"),
                            "task %s: events \"%s\"", sent[i].id,
                            entry ? entry->types : "");
        }

        TEST_PHASE("commit");
        test_wait_committed_all(bootstrap, "swarmq", "swarmq-tasks", PARTITIONS,
                                10000);
        test_wait_committed_all(bootstrap, "swarmq", "swarmq-tasks-critical",
                                PARTITIONS, 10000);
        /* Everything committed was acknowledged first: the topics now hold
         * all there will ever be for these tasks. */
        TEST_ASSERT(sum_high(bootstrap, "swarmq-results") == N_TASKS,
                    "the results topic holds %lld records for %d tasks",
                    (long long)sum_high(bootstrap, "swarmq-results"), N_TASKS);
        TEST_ASSERT(sum_high(bootstrap, "swarmq-events") == 3 * N_TASKS,
                    "the events topic holds %lld records for %d tasks",
                    (long long)sum_high(bootstrap, "swarmq-events"), N_TASKS);
        status.daemon    = daemon;
        status.bootstrap = bootstrap;
        status.why[0]    = '\0';
        test_wait_until_why("/status agrees with the broker", 10000,
                            status_agrees, &status, status.why);
        succeeded =
            test_metric(daemon, "swarmq_tasks_total{status=\"SUCCEEDED\"");
        TEST_ASSERT(succeeded == N_TASKS,
                    "/metrics counts %g SUCCEEDED tasks, %d ran", succeeded,
                    N_TASKS);

        TEST_PHASE("stop");
        test_reader_destroy(results);
        test_reader_destroy(events);
        rd_kafka_destroy(rk);
        sq_codec_destroy(codec);
        test_instance_stop(daemon, 15000);
        return 0;
}
