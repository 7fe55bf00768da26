/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 0087-instance-critical-lane: the critical topic is a fast lane, in-
 * process on the embedded broker.
 *
 * 30 ordinary sleep tasks of 300 ms fill the ordinary slots (3 executors,
 * 1 reserved for critical work) and the admission window (6), about
 * 4.5 s of work. Then 5 tasks go to the critical topic, and one task
 * that says CRITICAL goes to the ordinary topic. The critical ones run
 * on the reserved slot while the backlog waits: the last of them
 * finishes at least a second before the last ordinary task, each
 * SUCCEEDED with its source the critical topic. The self-declared one
 * runs in the ordinary lane (its source the ordinary topic). Every task
 * has exactly one result and both topics' offsets commit.
 *
 * Then the critical partitions' queues lose their forwarding to the
 * critical lane, as librdkafka's fetcher stop does to them when an
 * assignment replaces one still in place (rebalance.c,
 * sq_rebalance_tick()): 3 more critical tasks still run, within seconds.
 */
#include "daemon_int.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

#define N_ORDINARY 30
#define N_CRITICAL 5

static void produce(rd_kafka_t *rk, const char *topic, const char *id,
                    const char *payload, sq_priority_t prio) {
        sq_task_t *task = test_task_new(id, "sleep", payload);
        task->priority  = prio;
        test_produce_task(rk, NULL, topic, task, NULL);
        sq_task_destroy(task);
}

static bool all_critical_done(const test_reader_t *results) {
        char id[16];
        int i;
        for (i = 0; i < N_CRITICAL; i++) {
                snprintf(id, sizeof(id), "c-%d", i);
                if (!test_entry(results, id))
                        return false;
        }
        return true;
}

/* What librdkafka does to a partition queue when it stops the partition's
 * fetcher: forwards it nowhere. Returns how many queues it did that to. */
static int unforward_critical(sq_daemon_t *daemon) {
        rd_kafka_topic_partition_list_t *assigned = NULL;
        rd_kafka_resp_err_t err;
        int i, cnt = 0;

        err = rd_kafka_assignment(daemon->consumer, &assigned);
        TEST_ASSERT(!err, "rd_kafka_assignment: %s", rd_kafka_err2str(err));
        for (i = 0; i < assigned->cnt; i++) {
                rd_kafka_queue_t *pq;
                if (strcmp(assigned->elems[i].topic, "swarmq-tasks-critical"))
                        continue;
                pq = rd_kafka_queue_get_partition(daemon->consumer,
                                                  assigned->elems[i].topic,
                                                  assigned->elems[i].partition);
                TEST_ASSERT(pq, "no queue for partition %d",
                            (int)assigned->elems[i].partition);
                rd_kafka_queue_forward(pq, NULL);
                rd_kafka_queue_destroy(pq);
                cnt++;
        }
        rd_kafka_topic_partition_list_destroy(assigned);
        return cnt;
}

int main_0087_instance_critical_lane(int argc, char **argv) {
        int64_t last_critical = 0, last_ordinary = 0, deadline;
        test_reader_t *results, *events;
        const char *bootstrap;
        sq_daemon_t *daemon;
        int i, ordinary_done = 0;
        rd_kafka_t *rk;
        char id[16];

        (void)argc;
        (void)argv;
        test_timeout_set(60);

        TEST_PHASE("an ordinary backlog");
        daemon    = test_instance_start(test_conf_new(
               NULL, "c1", "embedded.partitions", "2", "executor.threads", "3",
               "executor.critical.reserved", "1", "admission.high.mark", "6",
               "admission.low.mark", "3", NULL));
        bootstrap = sq_daemon_bootstrap_servers(daemon);
        rk        = test_producer_new(bootstrap);
        for (i = 0; i < N_ORDINARY; i++) {
                snprintf(id, sizeof(id), "o-%02d", i);
                produce(rk, "swarmq-tasks", id, "300", SQ_PRIO_NORMAL);
        }
        test_producer_flush(rk);
        events = test_reader_new(bootstrap, "swarmq-events");
        test_read_events(events, "started", 2, 30000);

        TEST_PHASE("critical tasks overtake it");
        for (i = 0; i < N_CRITICAL; i++) {
                snprintf(id, sizeof(id), "c-%d", i);
                produce(rk, "swarmq-tasks-critical", id, "50", SQ_PRIO_NORMAL);
        }
        produce(rk, "swarmq-tasks", "self-critical", "50", SQ_PRIO_CRITICAL);
        test_producer_flush(rk);
        results  = test_reader_new(bootstrap, "swarmq-results");
        deadline = sq_clock_us() + 30 * 1000000;
        while (!all_critical_done(results)) {
                int left = (int)((deadline - sq_clock_us()) / 1000);
                TEST_ASSERT(left > 0, "the critical tasks have no results "
                                      "after 30 s");
                test_read_results(results, test_results_distinct(results) + 1,
                                  left);
        }
        for (i = 0; i < N_ORDINARY; i++) {
                snprintf(id, sizeof(id), "o-%02d", i);
                ordinary_done += test_entry(results, id) != NULL;
        }
        TEST_SAY("the critical tasks finished with %d of %d ordinary ones "
                 "done",
                 ordinary_done, N_ORDINARY);

        TEST_PHASE("everything finishes once");
        test_read_results(results, N_ORDINARY + N_CRITICAL + 1, 30000);
        for (i = 0; i < N_ORDINARY + N_CRITICAL; i++) {
                const test_entry_t *entry;
                bool critical = i >= N_ORDINARY;
                if (critical)
                        snprintf(id, sizeof(id), "c-%d", i - N_ORDINARY);
                else
                        snprintf(id, sizeof(id), "o-%02d", i);
                entry = test_entry(results, id);
                TEST_ASSERT(entry->results == 1 &&
                                entry->result->status == SQ_STATUS_SUCCEEDED &&
                                !strcmp(entry->result->source.topic,
                                        critical ? "swarmq-tasks-critical"
                                                 : "swarmq-tasks"),
                            "task %s: %d results, %s from %s", id,
                            entry->results,
                            sq_status_name(entry->result->status),
                            entry->result->source.topic);
                if (critical)
                        last_critical =
                            SQ_MAX(last_critical, entry->result->finished_at);
                else
                        last_ordinary =
                            SQ_MAX(last_ordinary, entry->result->finished_at);
        }
        TEST_SAY("the last critical task finished %lld ms before the last "
                 "ordinary one",
                 (long long)(last_ordinary - last_critical));
        TEST_ASSERT(last_ordinary - last_critical >= 1000,
                    "the last critical task finished %lld ms before the "
                    "last ordinary one: it waited behind the backlog",
                    (long long)(last_ordinary - last_critical));
        {
                const test_entry_t *entry =
                    test_entry(results, "self-critical");
                TEST_ASSERT(
                    entry->results == 1 &&
                        !strcmp(entry->result->source.topic, "swarmq-tasks"),
                    "self-critical: %d results from %s", entry->results,
                    entry->result->source.topic);
        }
        test_wait_committed_all(bootstrap, "swarmq", "swarmq-tasks", 2, 10000);
        test_wait_committed_all(bootstrap, "swarmq", "swarmq-tasks-critical", 2,
                                10000);

        TEST_PHASE("critical queues that lost their forwarding");
        i = unforward_critical(daemon);
        TEST_SAY("%d critical partition queues forwarded nowhere", i);
        TEST_ASSERT(i >= 1, "no critical partition is assigned");
        for (i = 0; i < 3; i++) {
                snprintf(id, sizeof(id), "late-%d", i);
                produce(rk, "swarmq-tasks-critical", id, "1", SQ_PRIO_NORMAL);
        }
        test_producer_flush(rk);
        test_read_results(results, N_ORDINARY + N_CRITICAL + 1 + 3, 15000);
        for (i = 0; i < 3; i++) {
                const test_entry_t *entry;
                snprintf(id, sizeof(id), "late-%d", i);
                entry = test_entry(results, id);
                TEST_ASSERT(entry && entry->results == 1 &&
                                entry->result->status == SQ_STATUS_SUCCEEDED,
                            "task %s: no result 15 s after it was produced to "
                            "a critical partition whose queue lost its "
                            "forwarding",
                            id);
        }

        TEST_PHASE("stop");
        test_reader_destroy(results);
        test_reader_destroy(events);
        rd_kafka_destroy(rk);
        test_instance_stop(daemon, 15000);
        return 0;
}
