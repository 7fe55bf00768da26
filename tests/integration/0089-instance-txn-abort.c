/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 0089-instance-txn-abort: under processing.guarantee=exactly_once, an
 * abortable transaction error is recovered from in place: the
 * transaction is aborted, the partitions rewound to their last committed
 * offsets, and each task's result is committed exactly once, none lost,
 * none twice, while the instance keeps running.
 *
 * Why it matters: a refused TxnOffsetCommit (UNKNOWN_MEMBER_ID, when the
 * group coordinator's node dies: tests/broker/0711) used to stop the
 * instance. Recovering in place must not commit later the offsets of
 * tasks whose results were aborted (they would be lost), nor let a task
 * still running at the rewind put its result into the next transaction
 * (it would be committed twice: once from that run, once from the rerun).
 *
 * How: the mock cluster writes no transaction markers (a reader sees the
 * aborted results too), so, as in 0088, the test watches the
 * transactions at the librdkafka API the instance calls: it defines
 * rd_kafka_producev(), rd_kafka_commit_transaction() and
 * rd_kafka_abort_transaction() (the instance is linked into this program,
 * so its calls come here), numbers the transactions by the ones that
 * ended before, notes which transaction each task's tracked result went
 * into, and which transactions committed. 2,000 tasks of 1-3 ms run on
 * 4 executors in five batches, twice (dedup on, then off); before the
 * second batch a TxnOffsetCommit is refused with UNKNOWN_MEMBER_ID,
 * before the third a cancel is sent over HTTP (POST /admin/cancel: its
 * record goes out once, at once, through a producer with no
 * transactional.id, so no abort can lose it or make it fail the
 * instance) and, once it is on topic.control, the next Produce to the
 * broker that leads the results is refused with INVALID_RECORD, before
 * the fourth TxnOffsetCommit again;
 * with dedup off also before the first (nothing committed yet: the
 * rewind goes back to the first record admitted). With dedup on, the
 * group forgets the member in the middle of the fifth batch (a Heartbeat
 * answered UNKNOWN_MEMBER_ID): the lost assignment aborts the open
 * transaction (counted as assignment_lost). Then every task has exactly
 * one result in a committed transaction, the aborts are counted in
 * swarmq_transactions_aborted_total{reason}, /healthz and /readyz answer
 * 200 after every batch, and the instance stops cleanly (sq_daemon_wait()
 * SQ_OK: it did not stop on the errors). Without the check that keeps a
 * job of an older generation out of the transaction the dedup-off round
 * sees tasks committed twice; without the dedup map forgetting the
 * aborted successes the dedup-on round loses tasks. (What the lost
 * assignment's abort prevents, results committed without their offsets
 * and written again by the next owner, needs the group to keep
 * transactional offsets, which the mock does not: tests/broker/0711.)
 */
#include "test.h"
#include "topics.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_TASKS    2000
#define N_BATCHES  5
#define PARTITIONS 4
#define ID_FMT     "t89-%05d"
#define MAX_RUNS   8            /* results noted per task */
#define CANCEL_ID  "t89-cancel" /* cancelled over HTTP in batch 3 */
#define TOKEN      "tok-0089"

/* The spy's record of the run: the transactions (numbered by those that
 * ended before them) each task's tracked result went into, and which
 * transactions committed. */
static struct {
        pthread_mutex_t lock;
        int ended; /* transactions committed or aborted */
        int aborts;
        unsigned char committed[4096]; /* by transaction number */
        int result_txn[N_TASKS][MAX_RUNS];
        int results[N_TASKS];
        int overflow; /* a task with more than MAX_RUNS results */
        /* The lost member of batch 5 (see run_batch()). */
        rd_kafka_mock_cluster_t *lose_cluster; /* armed: push the fault */
        int64_t ended_ms; /* when the last transaction ended */
        int open_results; /* tracked results in the open transaction */
        bool lose_pushed;
        /* The cancel of batch 3: how often its record was produced, and
         * how often by a transactional producer. */
        int cancels;
        int cancels_transactional;
} spy = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The task number of key @p key ("t89-00042"), or -1. */
static int task_number(const void *key, size_t len) {
        char buf[16];
        int n;
        if (!key || len == 0 || len >= sizeof(buf))
                return -1;
        memcpy(buf, key, len);
        buf[len] = '\0';
        if (sscanf(buf, "t89-%d", &n) != 1 || n < 0 || n >= N_TASKS)
                return -1;
        return n;
}

/* Notes a record the instance produced (@p transactional: by a
 * producer with a transactional.id, into the open transaction). */
static void spy_record(const char *topic, const void *key, size_t key_len,
                       const void *opaque, bool transactional) {
        int n = task_number(key, key_len);

        if (topic && !strcmp(topic, SQ_TOPIC_DEFAULT_CONTROL) &&
            key_len == strlen(CANCEL_ID) && !memcmp(key, CANCEL_ID, key_len)) {
                pthread_mutex_lock(&spy.lock);
                spy.cancels++;
                if (transactional)
                        spy.cancels_transactional++;
                pthread_mutex_unlock(&spy.lock);
                return;
        }
        if (!opaque || n < 0 || !topic || strcmp(topic, "swarmq-results"))
                return; /* only tracked results count */
        pthread_mutex_lock(&spy.lock);
        if (spy.results[n] < MAX_RUNS)
                spy.result_txn[n][spy.results[n]++] = spy.ended;
        else
                spy.overflow++;
        spy.open_results++;
        /* The group forgets the member while the open transaction holds
         * results, early in it: the next heartbeat (every 300 ms) hears
         * it long before the next commit (3 s after the last in this
         * round, and this is within 1.5 s of the last), so the lost
         * assignment finds records to abort. (Heard
         * during or just before a commit, the poll thread would serve it
         * right after that commit, before any executor produced into the
         * next, empty, transaction: then there is nothing to abort, and
         * the test would not test the abort; CI under ASan saw that with
         * 500 ms transactions.) */
        if (spy.lose_cluster && !spy.lose_pushed && spy.open_results >= 3 &&
            test_elapsed_ms() - spy.ended_ms < 1500) {
                rd_kafka_mock_push_request_errors(
                    spy.lose_cluster, 12 /* Heartbeat */, 1,
                    RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID);
                spy.lose_pushed = true;
        }
        pthread_mutex_unlock(&spy.lock);
}

/* The instance's produce calls: passed on, and noted when accepted. */
rd_kafka_resp_err_t rd_kafka_producev(rd_kafka_t *rk, ...) {
        test_produce_call_t call;
        rd_kafka_resp_err_t err;
        va_list ap;

        va_start(ap, rk);
        err = test_producev_pass_on(rk, ap, &call);
        va_end(ap);
        if (!err) {
                char txn_id[256] = "";
                size_t size      = sizeof(txn_id);
                rd_kafka_conf_get(rd_kafka_conf(rk), "transactional.id", txn_id,
                                  &size);
                spy_record(call.topic, call.key, call.key_len, call.opaque,
                           txn_id[0] != '\0');
        }
        return err;
}

/* The instance's transaction commits and aborts: each ends the
 * transaction its records went into. */
rd_kafka_error_t *rd_kafka_commit_transaction(rd_kafka_t *rk, int timeout_ms) {
        static rd_kafka_error_t *(*real)(rd_kafka_t *, int);
        rd_kafka_error_t *error;

        if (!real)
                *(void **)&real =
                    dlsym(RTLD_NEXT, "rd_kafka_commit_transaction");
        TEST_ASSERT(real, "librdkafka's rd_kafka_commit_transaction not found");
        pthread_mutex_lock(&spy.lock);
        error = real(rk, timeout_ms);
        if (!error) {
                TEST_ASSERT(spy.ended < (int)sizeof(spy.committed),
                            "more transactions than the spy holds");
                spy.committed[spy.ended++] = 1;
                spy.ended_ms               = test_elapsed_ms();
                spy.open_results           = 0;
        }
        pthread_mutex_unlock(&spy.lock);
        return error;
}

rd_kafka_error_t *rd_kafka_abort_transaction(rd_kafka_t *rk, int timeout_ms) {
        static rd_kafka_error_t *(*real)(rd_kafka_t *, int);
        rd_kafka_error_t *error;

        if (!real)
                *(void **)&real =
                    dlsym(RTLD_NEXT, "rd_kafka_abort_transaction");
        TEST_ASSERT(real, "librdkafka's rd_kafka_abort_transaction not found");
        pthread_mutex_lock(&spy.lock);
        error = real(rk, timeout_ms);
        if (!error) {
                TEST_ASSERT(spy.ended < (int)sizeof(spy.committed),
                            "more transactions than the spy holds");
                spy.ended++;
                spy.aborts++;
                spy.ended_ms     = test_elapsed_ms();
                spy.open_results = 0;
        }
        pthread_mutex_unlock(&spy.lock);
        return error;
}

/* Results of task @p n in committed transactions. */
static int committed_results(int n) {
        int r, cnt = 0;
        for (r = 0; r < spy.results[n] && r < MAX_RUNS; r++)
                if (spy.committed[spy.result_txn[n][r]])
                        cnt++;
        return cnt;
}

/* Every task of the first @p opaque batches has a committed result. */
static bool batches_committed(void *opaque) {
        int want = *(int *)opaque * (N_TASKS / N_BATCHES), n;
        bool all = true;
        pthread_mutex_lock(&spy.lock);
        for (n = 0; n < want && all; n++)
                all = committed_results(n) > 0;
        pthread_mutex_unlock(&spy.lock);
        return all;
}

/* The spy pushed the fault that makes the group forget the member. */
static bool lose_pushed(void *opaque) {
        bool pushed;
        (void)opaque;
        pthread_mutex_lock(&spy.lock);
        pushed = spy.lose_pushed;
        pthread_mutex_unlock(&spy.lock);
        return pushed;
}

/* Runs batch @p b (tasks of @p sleep_ms ms and up); with @p lose_member,
 * once it is under way (transactions committing its results, more of it
 * running), the group forgets the member. */
static void run_batch(test_cluster_t *cluster, sq_daemon_t *daemon, int b,
                      int sleep_ms, bool lose_member) {
        rd_kafka_t *producer = test_producer_new(cluster->bootstrap);
        int i, done = b + 1;

        for (i = b * (N_TASKS / N_BATCHES); i < done * (N_TASKS / N_BATCHES);
             i++) {
                char id[32], ms[8];
                sq_task_t *task;
                snprintf(id, sizeof(id), ID_FMT, i);
                snprintf(ms, sizeof(ms), "%d", sleep_ms + i % 3);
                task = test_task_new(id, "sleep", ms);
                test_produce_task(producer, NULL, SQ_TOPIC_DEFAULT_TASKS, task,
                                  NULL);
                sq_task_destroy(task);
        }
        test_producer_flush(producer);
        rd_kafka_destroy(producer);
        if (lose_member) {
                /* The spy pushes the fault once the open transaction
                 * holds results (spy_record()); the next heartbeat hears
                 * it, and librdkafka revokes the assignment as lost. */
                pthread_mutex_lock(&spy.lock);
                spy.lose_cluster = cluster->mcluster;
                pthread_mutex_unlock(&spy.lock);
                test_wait_until("the member lost mid-transaction", 30000,
                                lose_pushed, NULL);
                pthread_mutex_lock(&spy.lock);
                spy.lose_cluster = NULL;
                pthread_mutex_unlock(&spy.lock);
        }
        test_wait_until("every task so far has a committed result", 60000,
                        batches_committed, &done);
        TEST_ASSERT(test_http_get(daemon, "/healthz", NULL) == 200,
                    "/healthz is not 200 after batch %d", b);
        TEST_ASSERT(test_http_get(daemon, "/readyz", NULL) == 200,
                    "/readyz is not 200 after batch %d", b);
}

/* One run of the scenario on a cluster of its own, with dedup on or off:
 * on, the aborted transaction's successes must leave the dedup map (else
 * the reruns are dropped as duplicates: lost); off, nothing hides a task
 * that ran at the rewind and put its result in the next transaction. */
static void scenario(bool dedup) {
        test_cluster_t *cluster;
        sq_daemon_t *daemon;
        int n, lost = 0, twice = 0, p, aborts, status;
        test_reader_t *control;
        rd_kafka_message_t *rkm;
        bool cancel_read = false;
        char first[128]  = "";
        double offsets_aborts, produce_aborts, lost_aborts, all_aborts;

        pthread_mutex_lock(&spy.lock);
        memset(spy.committed, 0, sizeof(spy.committed));
        memset(spy.results, 0, sizeof(spy.results));
        spy.ended = spy.aborts = spy.overflow = 0;
        spy.lose_cluster                      = NULL;
        spy.ended_ms                          = test_elapsed_ms();
        spy.open_results                      = 0;
        spy.lose_pushed                       = false;
        spy.cancels = spy.cancels_transactional = 0;
        pthread_mutex_unlock(&spy.lock);
        TEST_SAY("dedup %s", dedup ? "on" : "off");
        TEST_PHASE("start an exactly_once instance");
        cluster = test_cluster_new_brokers(PARTITIONS, 2);
        /* The results and the control topic on broker 2 alone: an error
         * pushed there meets the instance's records, not the test's task
         * records. */
        TEST_ASSERT(!rd_kafka_mock_topic_create(cluster->mcluster,
                                                SQ_TOPIC_DEFAULT_CONTROL, 1, 1),
                    "cannot create %s", SQ_TOPIC_DEFAULT_CONTROL);
        rd_kafka_mock_partition_set_leader(cluster->mcluster,
                                           SQ_TOPIC_DEFAULT_CONTROL, 0, 2);
        for (p = 0; p < PARTITIONS; p++)
                rd_kafka_mock_partition_set_leader(
                    cluster->mcluster, SQ_TOPIC_DEFAULT_TASKS, p, 1);
        for (p = 0; p < 2; p++)
                rd_kafka_mock_partition_set_leader(
                    cluster->mcluster, SQ_TOPIC_DEFAULT_RESULTS, p, 2);
        daemon = test_instance_start(test_conf_new(
            cluster->bootstrap, "c1", "processing.guarantee", "exactly_once",
            "commit.interval.ms", dedup ? "3000" : "50", "executor.threads",
            "4", "dedup.max.entries", dedup ? "100000" : "0",
            "http.admin.token", TOKEN, NULL));
        test_wait_ready(daemon, 30000);

        if (dedup) {
                TEST_PHASE("batch 1: no fault");
        } else {
                /* Nothing committed yet: the rewind goes back to the first
                 * record admitted. */
                TEST_PHASE("batch 1: TxnOffsetCommit refused before any "
                           "commit");
                rd_kafka_mock_push_request_errors(
                    cluster->mcluster, 28 /* TxnOffsetCommit */, 1,
                    RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID);
        }
        run_batch(cluster, daemon, 0, 1, false);

        TEST_PHASE("batch 2: TxnOffsetCommit refused, UNKNOWN_MEMBER_ID");
        rd_kafka_mock_push_request_errors(cluster->mcluster,
                                          28 /* TxnOffsetCommit */, 1,
                                          RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID);
        run_batch(cluster, daemon, 1, 1, false);

        /* A cancellation sent over HTTP goes out at once, outside the
         * transactions (control.c): on topic.control before any commit,
         * and an abort neither loses it nor sends it again. The Produce
         * fault waits for it to be there, so that it meets the open
         * transaction's results, not the cancel record. */
        TEST_PHASE("batch 3: a cancel sent over HTTP, then a Produce to "
                   "broker 2 refused, INVALID_RECORD");
        control = test_reader_new(cluster->bootstrap, SQ_TOPIC_DEFAULT_CONTROL);
        status =
            test_http_request(daemon, "POST", "/admin/cancel?id=" CANCEL_ID,
                              "Authorization: Bearer " TOKEN, NULL);
        TEST_ASSERT(status == 202, "POST /admin/cancel answered %d, not 202",
                    status);
        for (n = 0; n < 300 && !cancel_read; n++) {
                if (!(rkm = test_reader_poll(control, 100)))
                        continue;
                cancel_read = !rkm->err && rkm->key_len == strlen(CANCEL_ID) &&
                              !memcmp(rkm->key, CANCEL_ID, rkm->key_len);
                rd_kafka_message_destroy(rkm);
        }
        test_reader_destroy(control);
        TEST_ASSERT(cancel_read,
                    "the cancel record of %s is not on %s "
                    "within 30 s",
                    CANCEL_ID, SQ_TOPIC_DEFAULT_CONTROL);
        rd_kafka_mock_broker_push_request_error_rtts(
            cluster->mcluster, 2, 0 /* Produce */, 1,
            RD_KAFKA_RESP_ERR_INVALID_RECORD, 0);
        run_batch(cluster, daemon, 2, 1, false);

        TEST_PHASE("batch 4: TxnOffsetCommit refused again");
        rd_kafka_mock_push_request_errors(cluster->mcluster,
                                          28 /* TxnOffsetCommit */, 1,
                                          RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID);
        run_batch(cluster, daemon, 3, 1, false);

        /* The group forgets the member mid-batch (tasks of 20 ms, and
         * transactions of 3 s in this round, so that the open one holds
         * records when the revocation comes): librdkafka revokes the assignment
         * as lost, and the open transaction must be aborted, not committed
         * without its offsets. Once, with dedup on: the mock does not
         * keep the offsets a transaction commits, so the reassignment
         * starts the partitions from the beginning, and only the dedup
         * map (holding every committed success, none of the aborted
         * ones) stands between that and a second result for every
         * task. */
        if (dedup) {
                TEST_PHASE("batch 5: Heartbeat answered UNKNOWN_MEMBER_ID");
        } else {
                TEST_PHASE("batch 5: no fault");
        }
        run_batch(cluster, daemon, 4, 20, dedup);

        TEST_PHASE("check the transactions");
        offsets_aborts = test_metric(
            daemon,
            "swarmq_transactions_aborted_total{reason=\"send_offsets\"}");
        produce_aborts = test_metric(
            daemon, "swarmq_transactions_aborted_total{reason=\"produce\"}");
        lost_aborts = test_metric(
            daemon,
            "swarmq_transactions_aborted_total{reason=\"assignment_lost\"}");
        all_aborts = test_metric(daemon, "swarmq_transactions_aborted_total{");
        pthread_mutex_lock(&spy.lock);
        for (n = 0; n < N_TASKS; n++) {
                int c = committed_results(n);
                if (c == 0)
                        lost++;
                if (c > 1 && !twice++)
                        snprintf(first, sizeof(first),
                                 "task " ID_FMT " has %d committed results", n,
                                 c);
        }
        aborts = spy.aborts;
        TEST_SAY("%d transactions ended, %d of them aborted; "
                 "swarmq_transactions_aborted_total: %.0f, send_offsets %.0f, "
                 "produce %.0f, assignment_lost %.0f; committed results: %d "
                 "tasks lost, %d twice",
                 spy.ended, aborts, all_aborts, offsets_aborts, produce_aborts,
                 lost_aborts, lost, twice);
        TEST_ASSERT(spy.overflow == 0, "a task had more than %d results",
                    MAX_RUNS);
        TEST_SAY("the cancel record of %s: produced %d times, %d of them "
                 "by a transactional producer",
                 CANCEL_ID, spy.cancels, spy.cancels_transactional);
        TEST_ASSERT(spy.cancels == 1,
                    "the cancel record was produced %d times, expected once",
                    spy.cancels);
        TEST_ASSERT(spy.cancels_transactional == 0,
                    "the cancel record went into a transaction");
        TEST_ASSERT(lost == 0, "%d tasks have no committed result", lost);
        TEST_ASSERT(twice == 0,
                    "%d tasks have more than one committed result (first: "
                    "%s)",
                    twice, first);
        pthread_mutex_unlock(&spy.lock);
        TEST_ASSERT(aborts >= 3,
                    "only %d transactions aborted: the faults "
                    "did not meet a transaction",
                    aborts);
        TEST_ASSERT(offsets_aborts >= 2,
                    "swarmq_transactions_aborted_total{reason=\"send_offsets\"}"
                    " = %.0f, expected 2 or more",
                    offsets_aborts);
        TEST_ASSERT(!dedup || lost_aborts >= 1,
                    "swarmq_transactions_aborted_total{reason="
                    "\"assignment_lost\"} = %.0f, expected 1 or more",
                    lost_aborts);
        /* The refused Produce aborts the transaction at whichever step
         * hears of it first (a delivery report: produce; a commit already
         * under way: send_offsets or commit), so its reason is not
         * checked; every abort is counted under one. */
        TEST_ASSERT(all_aborts == aborts,
                    "swarmq_transactions_aborted_total = %.0f, but %d "
                    "transactions were aborted",
                    all_aborts, aborts);

        TEST_PHASE("stop");
        /* SQ_OK: the instance did not stop on the errors (a fatal one
         * makes sq_daemon_wait() return SQ_ERR_KAFKA). */
        test_instance_stop(daemon, 30000);
        test_cluster_destroy(cluster);
        TEST_SAY("dedup %s: every task's result committed exactly once "
                 "through %d aborted transactions",
                 dedup ? "on" : "off", aborts);
}

int SQ_TEST_MAIN(int argc, char **argv) {
        (void)argc;
        (void)argv;
        test_timeout_set(150);
        scenario(true);
        scenario(false);
        return 0;
}
