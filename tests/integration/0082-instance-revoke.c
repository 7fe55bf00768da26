/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 0082-instance-revoke: rebalances between two instances of one group,
 * in-process on a mock cluster the test owns.
 *
 * c2 joins while c1 works: c1 runs alone with a small admission window
 * (50) while 600 sleep tasks wait in 6 partitions, so most are not yet
 * admitted when c2 joins. c1 revokes everything (eager), the group
 * splits the 6 tasks partitions between them, each takes some, and 300
 * more tasks follow. Every task gets a SUCCEEDED result and both
 * instances run some. Duplicates are bounded by the handover: the
 * committed offsets when c1 gave its partitions up (read while the group
 * rebalances). No task below them runs twice; a task that does ran on
 * c1 and then once on c2, above the handover offset of its partition.
 * (On real Kafka the revocation's commit makes that zero, as
 * docs/architecture.md says; librdkafka's mock cluster refuses every
 * OffsetCommit while the group is joining, so there the tasks c1
 * finished since its last periodic commit run again on c2. c1 finds its
 * own again in its dedup map.)
 *
 * c1 leaves: it stops cleanly (drain, final commit, leave), c2 owns all 6
 * partitions, and 300 more tasks each run exactly once with no task of
 * before running again. After each step the group's committed offsets
 * reach the high watermarks.
 */
#include "test.h"

#include <stdio.h>
#include <string.h>

#define PARTITIONS 6
#define N_FIRST    600
#define N_SECOND   300
#define N_THIRD    300
#define N_ALL      (N_FIRST + N_SECOND + N_THIRD)

static char ids[N_ALL][16];
static test_rec_t recs[N_ALL];

static void produce_batch(rd_kafka_t *rk, int from, int to) {
        int i;
        for (i = from; i < to; i++) {
                sq_task_t *task;
                snprintf(ids[i], sizeof(ids[i]), "r-%04d", i);
                task = test_task_new(ids[i], "sleep", "5");
                test_produce_task(rk, NULL, "swarmq-tasks", task, &recs[i]);
                sq_task_destroy(task);
        }
        test_producer_flush(rk);
        TEST_SAY("produced tasks %d..%d", from, to - 1);
}

/* After each rebalance, tasks on the other two lanes: critical ones
 * (the fast lane's own queue, forwarded per assigned partition) and
 * flaky ones that fail once and succeed from the retry lane. */
#define N_CRIT  10
#define N_FLAKY 2
#define N_EXTRA (N_CRIT + N_FLAKY)

static void produce_extras(rd_kafka_t *rk, sq_codec_t *codec, int phase) {
        char id[32];
        int i;
        for (i = 0; i < N_CRIT + N_FLAKY; i++) {
                sq_task_t *task;
                if (i < N_CRIT) {
                        snprintf(id, sizeof(id), "k%d-%d", phase, i);
                        task = test_task_new(id, "echo", id);
                        test_produce_task(rk, NULL, "swarmq-tasks-critical",
                                          task, NULL);
                } else {
                        snprintf(id, sizeof(id), "f%d-%d", phase, i);
                        task = test_task_new(id, "fail", "flaky");
                        sq_task_add_header(task, "succeed_on_attempt", "2");
                        /* Avro: JSON tasks written here carry no headers. */
                        test_produce_task(rk, codec, "swarmq-tasks", task,
                                          NULL);
                }
                sq_task_destroy(task);
        }
        test_producer_flush(rk);
}

static void check_extras(test_reader_t *results, int phase) {
        char id[32];
        int i;
        for (i = 0; i < N_CRIT + N_FLAKY; i++) {
                const test_entry_t *entry;
                const sq_result_t *result;
                const char *want = i < N_CRIT ? id : "succeeded on attempt 2";
                snprintf(id, sizeof(id), i < N_CRIT ? "k%d-%d" : "f%d-%d",
                         phase, i);
                entry = test_entry(results, id);
                TEST_ASSERT(entry && entry->results == 1,
                            "task %s has %d results", id,
                            entry ? entry->results : 0);
                result = entry->result;
                TEST_ASSERT(result->status == SQ_STATUS_SUCCEEDED &&
                                result->attempts == (i < N_CRIT ? 1 : 2) &&
                                result->output_len == strlen(want) &&
                                !memcmp(result->output, want, strlen(want)),
                            "task %s: %s after %d attempts, output \"%.*s\"",
                            id, sq_status_name(result->status),
                            (int)result->attempts, (int)result->output_len,
                            result->output ? (const char *)result->output : "");
                if (i < N_CRIT)
                        TEST_ASSERT(result->source.topic &&
                                        !strcmp(result->source.topic,
                                                "swarmq-tasks-critical"),
                                    "task %s came from %s", id,
                                    result->source.topic);
        }
}

static sq_config_t *conf_new(const char *bootstrap, const char *instance_id) {
        return test_conf_new(bootstrap, instance_id, "executor.threads", "3",
                             "admission.high.mark", "50", "admission.low.mark",
                             "25", "retry.backoff.initial.ms", "100", NULL);
}

static double tasks_assigned(sq_daemon_t *daemon) {
        return test_metric(daemon,
                           "swarmq_partitions_assigned{lane=\"tasks\"}");
}

static bool revoked_all(void *opaque) {
        return tasks_assigned(opaque) == 0;
}

static int64_t committed_sum(const char *bootstrap) {
        int64_t offsets[PARTITIONS], sum = 0;
        int p;
        test_committed(bootstrap, "swarmq", "swarmq-tasks", PARTITIONS,
                       offsets);
        for (p = 0; p < PARTITIONS; p++)
                sum += offsets[p] > 0 ? offsets[p] : 0;
        return sum;
}

static bool committed_some(void *opaque) {
        return committed_sum(opaque) >= 50;
}

typedef struct split_s {
        sq_daemon_t *c1, *c2; /* c1 NULL: c2 alone */
        double n1, n2;
} split_t;

static bool split_done(void *opaque) {
        split_t *split = opaque;
        split->n1      = split->c1 ? tasks_assigned(split->c1) : 0;
        split->n2      = tasks_assigned(split->c2);
        return split->n1 + split->n2 == PARTITIONS &&
               (split->c1 ? split->n1 > 0 : true) && split->n2 > 0;
}

/* Tasks [0, upto): each has a SUCCEEDED result; a task with more than one
 * ran on c1 and then on c2, above the handover offset of its partition.
 * @returns the number of duplicates; counts the tasks run on each. */
static int check_results(test_reader_t *results, int upto,
                         const int64_t *handover, int *on_c1, int *on_c2) {
        int i, dups = 0;
        *on_c1 = *on_c2 = 0;
        for (i = 0; i < upto; i++) {
                const test_entry_t *entry = test_entry(results, ids[i]);
                const test_rec_t *rec     = &recs[i];
                TEST_ASSERT(entry && entry->result, "task %s has no result",
                            ids[i]);
                TEST_ASSERT(entry->result->status == SQ_STATUS_SUCCEEDED,
                            "task %s: %s %s", ids[i],
                            sq_status_name(entry->result->status),
                            entry->result->error ? entry->result->error : "");
                if (entry->results > 1) {
                        TEST_ASSERT(
                            entry->results == 2 &&
                                !strcmp(entry->instances, "c1 c2") &&
                                handover &&
                                rec->offset >= handover[rec->partition],
                            "task %s (partition %d offset %lld, "
                            "handover offset %lld) has results "
                            "from \"%s\"",
                            ids[i], (int)rec->partition, (long long)rec->offset,
                            handover ? (long long)handover[rec->partition]
                                     : -1LL,
                            entry->instances);
                        dups++;
                }
                if (!strcmp(entry->result->instance, "c1"))
                        (*on_c1)++;
                else if (!strcmp(entry->result->instance, "c2"))
                        (*on_c2)++;
                else
                        TEST_FAIL("task %s ran on instance %s", ids[i],
                                  entry->result->instance);
        }
        return dups;
}

static int64_t results_in_topic(const char *bootstrap) {
        int64_t high[2];
        test_high_watermarks(bootstrap, "swarmq-results", 2, high);
        return high[0] + high[1];
}

int main_0082_instance_revoke(int argc, char **argv) {
        int64_t handover[PARTITIONS], handover_sum = 0;
        test_cluster_t *cluster;
        test_reader_t *results;
        sq_daemon_t *c1, *c2;
        split_t split;
        sq_codec_t *codec;
        char errstr[512];
        rd_kafka_t *rk;
        int on_c1, on_c2, dups, p;
        size_t read = 0;

        (void)argc;
        (void)argv;
        test_timeout_set(120);

        TEST_PHASE("c1 alone");
        cluster = test_cluster_new(PARTITIONS);
        c1      = test_instance_start(conf_new(cluster->bootstrap, "c1"));
        rk      = test_producer_new(cluster->bootstrap);
        if (!(codec = sq_codec_new(errstr, sizeof(errstr))))
                TEST_FAIL("sq_codec_new: %s", errstr);
        produce_batch(rk, 0, N_FIRST);
        results = test_reader_new(cluster->bootstrap, "swarmq-results");
        read += test_read_results(results, 50, 30000);
        test_wait_until("c1 committed 50 offsets", 10000, committed_some,
                        cluster->bootstrap);

        TEST_PHASE("c2 joins while c1 works");
        c2 = test_instance_start(conf_new(cluster->bootstrap, "c2"));
        test_wait_until("c1 revoked its partitions for the rebalance", 15000,
                        revoked_all, c1);
        /* The group is joining: no commit goes through until it is
         * synced, so these are the offsets the new owners start from. */
        test_committed(cluster->bootstrap, "swarmq", "swarmq-tasks", PARTITIONS,
                       handover);
        for (p = 0; p < PARTITIONS; p++)
                handover_sum += handover[p] > 0 ? handover[p] : 0;
        TEST_SAY("handover offsets: %lld %lld %lld %lld %lld %lld",
                 (long long)handover[0], (long long)handover[1],
                 (long long)handover[2], (long long)handover[3],
                 (long long)handover[4], (long long)handover[5]);
        TEST_ASSERT(handover_sum >= 50,
                    "the group's committed offsets went back from 50 to "
                    "%lld in the rebalance",
                    (long long)handover_sum);
        split.c1 = c1;
        split.c2 = c2;
        test_wait_until("c1 and c2 share the 6 tasks partitions", 30000,
                        split_done, &split);
        TEST_SAY("tasks partitions: c1 %g, c2 %g", split.n1, split.n2);
        produce_batch(rk, N_FIRST, N_FIRST + N_SECOND);
        produce_extras(rk, codec, 2);
        read += test_read_results(results, N_FIRST + N_SECOND + N_EXTRA, 60000);
        test_wait_committed_all(cluster->bootstrap, "swarmq", "swarmq-tasks",
                                PARTITIONS, 10000);
        /* Committed: every result is in the topic. Read them all. */
        read += test_read_results_to_end(results, 10000);
        dups = check_results(results, N_FIRST + N_SECOND, handover, &on_c1,
                             &on_c2);
        TEST_SAY("%d tasks ran on c1, %d on c2, %d ran again on c2 above "
                 "the handover",
                 on_c1, on_c2, dups);
        TEST_ASSERT(on_c1 > 0 && on_c2 > 0,
                    "c1 ran %d tasks and c2 %d: one of them did nothing", on_c1,
                    on_c2);
        check_extras(results, 2);
        TEST_ASSERT(results_in_topic(cluster->bootstrap) ==
                        N_FIRST + N_SECOND + N_EXTRA + dups,
                    "the results topic holds %lld records for %d tasks "
                    "and %d duplicates",
                    (long long)results_in_topic(cluster->bootstrap),
                    N_FIRST + N_SECOND + N_EXTRA, dups);

        TEST_PHASE("c1 leaves");
        test_instance_stop(c1, 30000);
        split.c1 = NULL;
        test_wait_until("c2 owns all 6 tasks partitions", 30000, split_done,
                        &split);
        produce_batch(rk, N_FIRST + N_SECOND, N_ALL);
        produce_extras(rk, codec, 3);
        read += test_read_results(results, N_ALL + 2 * N_EXTRA, 60000);
        test_wait_committed_all(cluster->bootstrap, "swarmq", "swarmq-tasks",
                                PARTITIONS, 10000);
        read += test_read_results_to_end(results, 10000);
        TEST_ASSERT(check_results(results, N_ALL, handover, &on_c1, &on_c2) ==
                        dups,
                    "tasks ran again after c1 left cleanly");
        for (p = N_FIRST + N_SECOND; p < N_ALL; p++)
                TEST_ASSERT(
                    !strcmp(test_entry(results, ids[p])->instances, "c2"),
                    "task %s ran on \"%s\" after c1 left", ids[p],
                    test_entry(results, ids[p])->instances);
        check_extras(results, 3);
        TEST_ASSERT(read == (size_t)(N_ALL + 2 * N_EXTRA + dups),
                    "%zu results read for %d tasks and %d duplicates", read,
                    N_ALL + 2 * N_EXTRA, dups);
        TEST_ASSERT(results_in_topic(cluster->bootstrap) ==
                        N_ALL + 2 * N_EXTRA + dups,
                    "the results topic holds %lld records for %d tasks and "
                    "%d duplicates",
                    (long long)results_in_topic(cluster->bootstrap),
                    N_ALL + 2 * N_EXTRA, dups);

        TEST_PHASE("stop");
        test_reader_destroy(results);
        rd_kafka_destroy(rk);
        sq_codec_destroy(codec);
        test_instance_stop(c2, 30000);
        test_cluster_destroy(cluster);
        return 0;
}
