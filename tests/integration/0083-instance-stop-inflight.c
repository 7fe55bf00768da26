/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 0083-instance-stop-inflight: stopping an instance while tasks run, on a
 * mock cluster the test owns, so the next instance picks up from what
 * the stopped one committed.
 *
 * Within the drain deadline: c1 (admission window 4) is stopped while
 * its first sleep tasks run and most of the 10 are not yet admitted.
 * sq_daemon_wait() returns SQ_OK; every task c1 admitted (it wrote its
 * "received" event) has a SUCCEEDED result from c1, no other task has
 * one, and in each partition the committed offset is exactly the end of
 * that finished prefix: nothing admitted is lost, nothing unfinished is
 * committed. c2 then runs the rest, each once.
 *
 * Past the drain deadline (300 ms): c2 is stopped while 2 s tasks run.
 * It still returns SQ_OK; the running tasks are abandoned (no result, no
 * terminal event, counted in swarmq_tasks_dropped_total) and the
 * committed offset of each partition stays at its first abandoned task.
 * c3 runs every abandoned task once.
 */
#include "test.h"

#include <stdio.h>
#include <string.h>

#define PARTITIONS 2
#define N_A        10
#define N_B        4

typedef struct sent_s {
        char id[16];
        test_rec_t rec;
} sent_t;

static sent_t sent_a[N_A], sent_b[N_B];

static void produce(rd_kafka_t *rk, sent_t *sent, int cnt, const char *prefix,
                    const char *sleep_ms) {
        int i;
        for (i = 0; i < cnt; i++) {
                sq_task_t *task;
                snprintf(sent[i].id, sizeof(sent[i].id), "%s-%d", prefix, i);
                task = test_task_new(sent[i].id, "sleep", sleep_ms);
                test_produce_task(rk, NULL, "swarmq-tasks", task, &sent[i].rec);
                sq_task_destroy(task);
        }
        test_producer_flush(rk);
}

static bool has_event(const test_entry_t *entry, const char *type) {
        char padded[sizeof(entry->types) + 2], word[64];
        if (!entry)
                return false;
        snprintf(padded, sizeof(padded), " %s ", entry->types);
        snprintf(word, sizeof(word), " %s ", type);
        return strstr(padded, word) != NULL;
}

int main_0083_instance_stop_inflight(int argc, char **argv) {
        int64_t committed[PARTITIONS], first_b[PARTITIONS];
        test_reader_t *results, *events;
        test_cluster_t *cluster;
        sq_daemon_t *c1, *c2, *c3;
        int i, p, admitted = 0, started = 0;
        double dropped;
        rd_kafka_t *rk;
        const char *bootstrap;

        (void)argc;
        (void)argv;
        test_timeout_set(90);

        TEST_PHASE("stop within the drain deadline");
        cluster   = test_cluster_new(PARTITIONS);
        bootstrap = cluster->bootstrap;
        c1        = test_instance_start(
                   test_conf_new(bootstrap, "c1", "executor.threads", "3",
                                 "admission.high.mark", "4", "admission.low.mark", "2",
                                 "shutdown.drain.timeout.ms", "30000", NULL));
        rk = test_producer_new(bootstrap);
        produce(rk, sent_a, N_A, "a", "500");
        events = test_reader_new(bootstrap, "swarmq-events");
        test_read_events(events, "started", 2, 30000);
        test_instance_stop(c1, 30000);

        results = test_reader_new(bootstrap, "swarmq-results");
        test_read_results_to_end(results, 10000);
        test_read_events_to_end(events, 10000);
        test_committed(bootstrap, "swarmq", "swarmq-tasks", PARTITIONS,
                       committed);
        for (i = 0; i < N_A; i++) {
                const sent_t *s            = &sent_a[i];
                const test_entry_t *result = test_entry(results, s->id);
                bool received =
                    has_event(test_entry(events, s->id), "received");
                int64_t c = committed[s->rec.partition];
                if (received) {
                        admitted++;
                        TEST_ASSERT(result && result->results == 1 &&
                                        result->result->status ==
                                            SQ_STATUS_SUCCEEDED &&
                                        !strcmp(result->instances, "c1"),
                                    "task %s was admitted by c1 but has "
                                    "results from \"%s\"",
                                    s->id, result ? result->instances : "");
                        TEST_ASSERT(s->rec.offset < c,
                                    "task %s finished at partition %d "
                                    "offset %lld, but the committed offset "
                                    "is %lld",
                                    s->id, (int)s->rec.partition,
                                    (long long)s->rec.offset, (long long)c);
                } else {
                        TEST_ASSERT(!result,
                                    "task %s was never admitted but has "
                                    "results from \"%s\"",
                                    s->id, result->instances);
                        TEST_ASSERT(s->rec.offset >= c,
                                    "task %s never ran, at partition %d "
                                    "offset %lld, below the committed "
                                    "offset %lld",
                                    s->id, (int)s->rec.partition,
                                    (long long)s->rec.offset, (long long)c);
                }
        }
        TEST_SAY("c1 admitted %d of %d tasks before the stop; committed "
                 "%lld %lld",
                 admitted, N_A, (long long)committed[0],
                 (long long)committed[1]);
        TEST_ASSERT(admitted >= 2 && admitted < N_A,
                    "c1 admitted %d of %d tasks: the stop did not happen "
                    "with work both in flight and not yet admitted",
                    admitted, N_A);

        TEST_PHASE("the next instance runs the rest");
        c2 = test_instance_start(
            test_conf_new(bootstrap, "c2", "executor.threads", "3",
                          "shutdown.drain.timeout.ms", "300", NULL));
        test_read_results(results, N_A, 30000);
        for (i = 0; i < N_A; i++) {
                const test_entry_t *result = test_entry(results, sent_a[i].id);
                TEST_ASSERT(result->results == 1 &&
                                result->result->status == SQ_STATUS_SUCCEEDED,
                            "task %s has %d results", sent_a[i].id,
                            result->results);
        }
        test_wait_committed_all(bootstrap, "swarmq", "swarmq-tasks", PARTITIONS,
                                10000);

        TEST_PHASE("stop past the drain deadline");
        produce(rk, sent_b, N_B, "b", "2000");
        for (p = 0; p < PARTITIONS; p++)
                first_b[p] = INT64_MAX;
        for (i = 0; i < N_B; i++)
                first_b[sent_b[i].rec.partition] = SQ_MIN(
                    first_b[sent_b[i].rec.partition], sent_b[i].rec.offset);
        test_read_events(events, "started", N_A + 2, 30000);
        test_instance_stop_wait(c2, 15000);
        dropped = test_metric(c2, "swarmq_tasks_dropped_total");
        sq_daemon_destroy(c2);
        test_read_results_to_end(results, 10000);
        test_read_events_to_end(events, 10000);
        test_committed(bootstrap, "swarmq", "swarmq-tasks", PARTITIONS,
                       committed);
        for (i = 0; i < N_B; i++) {
                const test_entry_t *ev = test_entry(events, sent_b[i].id);
                TEST_ASSERT(!test_entry(results, sent_b[i].id),
                            "task %s has a result though its instance "
                            "stopped 300 ms into a 2 s run",
                            sent_b[i].id);
                TEST_ASSERT(!has_event(ev, "succeeded") &&
                                !has_event(ev, "failed"),
                            "task %s: events \"%s\" after the stop",
                            sent_b[i].id, ev ? ev->types : "");
                if (has_event(ev, "started"))
                        started++;
        }
        TEST_ASSERT(started >= 2, "%d tasks started before the stop", started);
        TEST_ASSERT(dropped >= started,
                    "swarmq_tasks_dropped_total is %g with %d tasks "
                    "abandoned while running",
                    dropped, started);
        for (p = 0; p < PARTITIONS; p++)
                TEST_ASSERT(first_b[p] == INT64_MAX
                                ? committed[p] >= 0
                                : committed[p] == first_b[p],
                            "partition %d: committed offset %lld, the first "
                            "abandoned task is at %lld",
                            p, (long long)committed[p], (long long)first_b[p]);
        TEST_SAY("%d tasks abandoned while running, %g dropped; committed "
                 "%lld %lld",
                 started, dropped, (long long)committed[0],
                 (long long)committed[1]);

        TEST_PHASE("the abandoned tasks run again");
        c3 = test_instance_start(
            test_conf_new(bootstrap, "c3", "executor.threads", "3", NULL));
        test_read_results(results, N_A + N_B, 30000);
        for (i = 0; i < N_B; i++) {
                const test_entry_t *result = test_entry(results, sent_b[i].id);
                TEST_ASSERT(result->results == 1 &&
                                !strcmp(result->instances, "c3") &&
                                result->result->status == SQ_STATUS_SUCCEEDED,
                            "task %s: results from \"%s\"", sent_b[i].id,
                            result->instances);
        }
        test_wait_committed_all(bootstrap, "swarmq", "swarmq-tasks", PARTITIONS,
                                10000);

        TEST_PHASE("stop");
        test_reader_destroy(results);
        test_reader_destroy(events);
        rd_kafka_destroy(rk);
        test_instance_stop(c3, 30000);
        test_cluster_destroy(cluster);
        return 0;
}
