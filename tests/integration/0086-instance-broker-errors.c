/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 0086-instance-broker-errors: the broker refuses commits and records,
 * injected into a mock cluster the test owns
 * (rd_kafka_mock_push_request_errors), and nothing is lost.
 *
 * Refused commits: the next 8 OffsetCommit requests fail with an error
 * librdkafka does not retry itself (INVALID_COMMIT_OFFSET_SIZE) while 200
 * tasks run. Every task gets one result, swarmq_commits_total counts the
 * failures, and the group's committed offsets still reach the high
 * watermarks: a refused commit goes again on a later interval, also once
 * no new work arrives.
 *
 * Refused records: the next 3 Produce requests fail with an error that
 * librdkafka does not retry and that says nothing about the records
 * themselves (POLICY_VIOLATION) while 100 more tasks run. The instance
 * produces each refused result and terminal event again
 * (swarmq_delivery_errors_total counts them): every task has exactly one
 * SUCCEEDED result and one "succeeded" event, and the offsets commit.
 * ("received" and "started" events gate no commit and are not produced
 * again, emit.c: those the broker refused are missing.)
 *
 * Records refused for what they are: the next Produce request fails with
 * MSG_SIZE_TOO_LARGE while 100 more tasks run. Such a record is never
 * produced again as it was (it would be refused for ever: issue 13's poison
 * pill): a task whose result was refused gets one DEAD_LETTERED result
 * saying so (RECORD_REFUSED) instead, the others their SUCCEEDED one, each
 * exactly once, and the offsets still commit.
 */
#include "test.h"
#include "topics.h"

#include <stdio.h>
#include <string.h>

#define PARTITIONS    2
#define N_FIRST       200
#define N_SECOND      100
#define OUTPUT_BROKER 2

static void produce(rd_kafka_t *rk, int from, int to) {
        char id[16];
        int i;
        for (i = from; i < to; i++) {
                sq_task_t *task;
                snprintf(id, sizeof(id), "e-%03d", i);
                task = test_task_new(id, "echo", id);
                test_produce_task(rk, NULL, "swarmq-tasks", task, NULL);
                sq_task_destroy(task);
        }
        test_producer_flush(rk);
}

/* How many times @p word is in the space-separated @p list. */
static int count_word(const char *list, const char *word) {
        char padded[300], pword[64];
        const char *at;
        int cnt = 0;
        snprintf(padded, sizeof(padded), " %s ", list);
        snprintf(pword, sizeof(pword), " %s ", word);
        for (at = strstr(padded, pword); at; at = strstr(at + 1, pword))
                cnt++;
        return cnt;
}

static void check(test_reader_t *results, test_reader_t *events, int upto) {
        char id[16];
        int i;
        for (i = 0; i < upto; i++) {
                const test_entry_t *entry, *ev;
                snprintf(id, sizeof(id), "e-%03d", i);
                entry = test_entry(results, id);
                TEST_ASSERT(entry && entry->results == 1 &&
                                entry->result->status == SQ_STATUS_SUCCEEDED &&
                                entry->result->output_len == strlen(id) &&
                                !memcmp(entry->result->output, id, strlen(id)),
                            "task %s: %d results", id,
                            entry ? entry->results : 0);
                if (!events)
                        continue;
                ev = test_entry(events, id);
                TEST_ASSERT(ev && count_word(ev->types, "succeeded") == 1,
                            "task %s: events \"%s\"", id, ev ? ev->types : "");
        }
}

/* Tasks [from, to): each has exactly one result, SUCCEEDED with its bytes
 * or DEAD_LETTERED because its result record was refused. */
static void check_refused(test_reader_t *results, int from, int to) {
        char id[16];
        int i, dead = 0;
        for (i = from; i < to; i++) {
                const test_entry_t *entry;
                snprintf(id, sizeof(id), "e-%03d", i);
                entry = test_entry(results, id);
                TEST_ASSERT(entry && entry->results == 1, "task %s: %d results",
                            id, entry ? entry->results : 0);
                if (entry->result->status == SQ_STATUS_DEAD_LETTERED) {
                        TEST_ASSERT(
                            entry->result->error &&
                                strstr(entry->result->error, "was refused") &&
                                entry->result->output_len == 0,
                            "task %s: DEAD_LETTERED with error %s", id,
                            entry->result->error ? entry->result->error
                                                 : "(none)");
                        dead++;
                        continue;
                }
                TEST_ASSERT(entry->result->status == SQ_STATUS_SUCCEEDED &&
                                entry->result->output_len == strlen(id) &&
                                !memcmp(entry->result->output, id, strlen(id)),
                            "task %s: status %d", id,
                            (int)entry->result->status);
        }
        TEST_SAY("%d of %d tasks dead-lettered for a refused result", dead,
                 to - from);
}

/* Broker 1 leads the tasks and the events topics, OUTPUT_BROKER every
 * other topic the instance writes, so an error pushed on OUTPUT_BROKER
 * meets only the instance's tracked records: a result (or a retry or a
 * dead letter), never an event, whose refusal is only logged (the gate
 * once saw the one refusal of "records refused for their size" meet a
 * batch of events, and no result refused). */
static void split_leaders(test_cluster_t *cluster) {
        static const char *outputs[] = {SQ_TOPIC_DEFAULT_RETRY,
                                        SQ_TOPIC_DEFAULT_DLT,
                                        SQ_TOPIC_DEFAULT_RESULTS};
        size_t i;
        int p;
        for (p = 0; p < PARTITIONS; p++)
                rd_kafka_mock_partition_set_leader(
                    cluster->mcluster, SQ_TOPIC_DEFAULT_TASKS, p, 1);
        for (p = 0; p < 2; p++)
                rd_kafka_mock_partition_set_leader(
                    cluster->mcluster, SQ_TOPIC_DEFAULT_EVENTS, p, 1);
        for (i = 0; i < SQ_ARRAY_SIZE(outputs); i++)
                for (p = 0; p < 2; p++)
                        rd_kafka_mock_partition_set_leader(
                            cluster->mcluster, outputs[i], p, OUTPUT_BROKER);
}

int main_0086_instance_broker_errors(int argc, char **argv) {
        test_reader_t *results, *events;
        test_cluster_t *cluster;
        sq_daemon_t *c1;
        rd_kafka_t *rk;
        double failed;

        (void)argc;
        (void)argv;
        test_timeout_set(90);

        TEST_PHASE("refused commits");
        cluster = test_cluster_new_brokers(PARTITIONS, 2);
        split_leaders(cluster);
        c1 = test_instance_start(test_conf_new(cluster->bootstrap, "c1", NULL));
        rk = test_producer_new(cluster->bootstrap);
        test_wait_ready(c1, 30000);
        rd_kafka_mock_push_request_errors(
            cluster->mcluster, 8 /* OffsetCommit */, 8,
            RD_KAFKA_RESP_ERR_INVALID_COMMIT_OFFSET_SIZE,
            RD_KAFKA_RESP_ERR_INVALID_COMMIT_OFFSET_SIZE,
            RD_KAFKA_RESP_ERR_INVALID_COMMIT_OFFSET_SIZE,
            RD_KAFKA_RESP_ERR_INVALID_COMMIT_OFFSET_SIZE,
            RD_KAFKA_RESP_ERR_INVALID_COMMIT_OFFSET_SIZE,
            RD_KAFKA_RESP_ERR_INVALID_COMMIT_OFFSET_SIZE,
            RD_KAFKA_RESP_ERR_INVALID_COMMIT_OFFSET_SIZE,
            RD_KAFKA_RESP_ERR_INVALID_COMMIT_OFFSET_SIZE);
        produce(rk, 0, N_FIRST);
        results = test_reader_new(cluster->bootstrap, "swarmq-results");
        test_read_results(results, N_FIRST, 30000);
        test_wait_committed_all(cluster->bootstrap, "swarmq", "swarmq-tasks",
                                PARTITIONS, 20000);
        failed = test_metric(c1, "swarmq_commits_total{result=\"error\"}");
        TEST_SAY("%g commits failed", failed);
        TEST_ASSERT(failed >= 1,
                    "8 OffsetCommit requests were refused, "
                    "swarmq_commits_total{result=\"error\"} is %g",
                    failed);
        check(results, NULL, N_FIRST);

        TEST_PHASE("refused records");
        produce(rk, N_FIRST, N_FIRST + N_SECOND);
        rd_kafka_mock_push_request_errors(cluster->mcluster, 0 /* Produce */, 3,
                                          RD_KAFKA_RESP_ERR_POLICY_VIOLATION,
                                          RD_KAFKA_RESP_ERR_POLICY_VIOLATION,
                                          RD_KAFKA_RESP_ERR_POLICY_VIOLATION);
        test_read_results(results, N_FIRST + N_SECOND, 30000);
        test_wait_committed_all(cluster->bootstrap, "swarmq", "swarmq-tasks",
                                PARTITIONS, 20000);
        failed = test_metric(c1, "swarmq_delivery_errors_total");
        TEST_SAY("%g records refused", failed);
        TEST_ASSERT(failed >= 1,
                    "3 Produce requests were refused, "
                    "swarmq_delivery_errors_total is %g",
                    failed);
        test_read_results_to_end(results, 10000);
        events = test_reader_new(cluster->bootstrap, "swarmq-events");
        test_read_events_to_end(events, 10000);
        check(results, events, N_FIRST + N_SECOND);

        TEST_PHASE("records refused for their size");
        /* One refused request, pushed while the instance is idle and on
         * the broker that leads only the topics the instance writes: the
         * mock refuses whatever request comes next, so the first Produce
         * request after the tasks below is the instance's, never the test
         * producer's (which writes the tasks to broker 1). With more than
         * one, a second could refuse a replacement record (a small
         * DEAD_LETTERED result), which the instance rightly treats as
         * fatal; a real broker refuses by size only. */
        rd_kafka_mock_broker_push_request_error_rtts(
            cluster->mcluster, OUTPUT_BROKER, 0 /* Produce */, 1,
            RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, 0);
        produce(rk, N_FIRST + N_SECOND, N_FIRST + 2 * N_SECOND);
        test_read_results(results, N_FIRST + 2 * N_SECOND, 30000);
        test_wait_committed_all(cluster->bootstrap, "swarmq", "swarmq-tasks",
                                PARTITIONS, 20000);
        test_read_results_to_end(results, 10000);
        check_refused(results, N_FIRST + N_SECOND, N_FIRST + 2 * N_SECOND);
        TEST_ASSERT(test_metric(c1, "swarmq_records_refused_total") >= 1,
                    "a Produce request was refused for its size, "
                    "swarmq_records_refused_total is %g",
                    test_metric(c1, "swarmq_records_refused_total"));

        TEST_PHASE("stop");
        test_reader_destroy(results);
        test_reader_destroy(events);
        rd_kafka_destroy(rk);
        test_instance_stop(c1, 30000);
        test_cluster_destroy(cluster);
        return 0;
}
