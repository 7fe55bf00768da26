/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 0088-instance-txn-records: under processing.guarantee=exactly_once, the
 * records that end a task (its result and its terminal event) go into one
 * transaction, in-process on the instance's embedded broker.
 *
 * Why it matters: the terminal event is what makes a task's offset
 * committable. Were the result committed in one transaction and the event
 * left in the next, a crash before that next commit would abort the
 * event, the task's offset would stay uncommitted, and the restarted
 * instance would run the task again: a read_committed reader would see
 * two results for it (tests/broker/0610 saw 3,001 results for 3,000
 * tasks so, once under ASan; 3,003 with commit.interval.ms=1).
 *
 * How: the mock cluster writes no transaction markers, so this test
 * watches the transactions at the librdkafka API the instance calls. It
 * defines rd_kafka_producev() and rd_kafka_commit_transaction() itself
 * (the instance is linked into this program, so its calls come here),
 * notes each record of the results and events topics that a job tracks
 * (a non-NULL opaque) and each commit, and passes every call on to
 * librdkafka. 2,000 tasks of 1 ms run on 4 executors with a transaction
 * committed every millisecond (so commits fall between a task's two
 * records often: without the fix, hundreds of splits per run). Then every
 * task has its result and its terminal event in the same transaction,
 * and at least 10 transactions were committed.
 */
#include "test.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_TASKS 2000
#define ID_FMT  "t88-%05d"

/* The spy's record of the run: for each task (by its number), the
 * transaction its tracked result and its tracked event went into (-1:
 * none yet). Transactions are numbered by the commits before them. */
static struct {
        pthread_mutex_t lock;
        int commits;
        int result_txn[N_TASKS];
        int event_txn[N_TASKS];
        int unexpected; /* a second tracked result or event for a task */
} spy = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The task number of key @p key ("t88-00042"), or -1. */
static int task_number(const void *key, size_t len) {
        char buf[16];
        int n;
        if (!key || len == 0 || len >= sizeof(buf))
                return -1;
        memcpy(buf, key, len);
        buf[len] = '\0';
        if (sscanf(buf, "t88-%d", &n) != 1 || n < 0 || n >= N_TASKS)
                return -1;
        return n;
}

/* Notes a record the instance produced into the open transaction. */
static void spy_record(const char *topic, const void *key, size_t key_len,
                       const void *opaque) {
        int *txn, n = task_number(key, key_len);

        if (!opaque || n < 0 || !topic)
                return; /* untracked: received and started events */
        if (!strcmp(topic, "swarmq-results"))
                txn = &spy.result_txn[n];
        else if (!strcmp(topic, "swarmq-events"))
                txn = &spy.event_txn[n];
        else
                return;
        pthread_mutex_lock(&spy.lock);
        if (*txn != -1)
                spy.unexpected++;
        *txn = spy.commits;
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
        if (!err)
                spy_record(call.topic, call.key, call.key_len, call.opaque);
        return err;
}

/* The instance's transaction commits: counted (what was produced before
 * one belongs to the transaction it ends), then passed on. */
rd_kafka_error_t *rd_kafka_commit_transaction(rd_kafka_t *rk, int timeout_ms) {
        static rd_kafka_error_t *(*real)(rd_kafka_t *, int);
        rd_kafka_error_t *error;

        if (!real)
                *(void **)&real =
                    dlsym(RTLD_NEXT, "rd_kafka_commit_transaction");
        TEST_ASSERT(real, "librdkafka's rd_kafka_commit_transaction not found");
        pthread_mutex_lock(&spy.lock);
        error = real(rk, timeout_ms);
        if (!error)
                spy.commits++;
        pthread_mutex_unlock(&spy.lock);
        return error;
}

int SQ_TEST_MAIN(int argc, char **argv) {
        sq_daemon_t *daemon;
        test_reader_t *results;
        rd_kafka_t *producer;
        const char *bootstrap;
        int i, split = 0, missing = 0;
        char first[256] = "";

        (void)argc;
        (void)argv;
        test_timeout_set(150);
        for (i = 0; i < N_TASKS; i++)
                spy.result_txn[i] = spy.event_txn[i] = -1;

        TEST_PHASE("start an exactly_once instance");
        daemon = test_instance_start(
            test_conf_new(NULL, "c1", "processing.guarantee", "exactly_once",
                          "commit.interval.ms", "1", "executor.threads", "4",
                          "embedded.partitions", "4", NULL));
        bootstrap = sq_daemon_bootstrap_servers(daemon);
        test_wait_ready(daemon, 30000);

        TEST_PHASE("run the tasks");
        producer = test_producer_new(bootstrap);
        for (i = 0; i < N_TASKS; i++) {
                char id[32];
                sq_task_t *task;
                snprintf(id, sizeof(id), ID_FMT, i);
                task = test_task_new(id, "sleep", "1");
                test_produce_task(producer, NULL, "swarmq-tasks", task, NULL);
                sq_task_destroy(task);
        }
        test_producer_flush(producer);
        rd_kafka_destroy(producer);
        results = test_reader_new(bootstrap, "swarmq-results");
        test_read_results(results, N_TASKS, 90000);
        test_reader_destroy(results);

        TEST_PHASE("stop");
        test_instance_stop(daemon, 30000);

        TEST_PHASE("check the transactions");
        pthread_mutex_lock(&spy.lock);
        for (i = 0; i < N_TASKS; i++) {
                if (spy.result_txn[i] < 0 || spy.event_txn[i] < 0) {
                        missing++;
                        continue;
                }
                if (spy.result_txn[i] == spy.event_txn[i])
                        continue;
                if (!split++)
                        snprintf(first, sizeof(first),
                                 "task " ID_FMT
                                 ": result in transaction %d, its "
                                 "succeeded event in transaction %d",
                                 i, spy.result_txn[i], spy.event_txn[i]);
        }
        TEST_SAY("%d transactions committed; %d of %d tasks had their "
                 "result and event in two transactions",
                 spy.commits, split, N_TASKS);
        TEST_ASSERT(missing == 0,
                    "%d tasks with no tracked result or terminal event seen",
                    missing);
        TEST_ASSERT(spy.unexpected == 0,
                    "%d tracked results or events produced twice",
                    spy.unexpected);
        TEST_ASSERT(spy.commits >= 10,
                    "only %d transactions committed in the run: the test "
                    "proves nothing",
                    spy.commits);
        TEST_ASSERT(split == 0,
                    "%d tasks had their result committed in one transaction "
                    "and the event that makes their offset committable in "
                    "the next (first: %s): a crash between the two commits "
                    "runs them again",
                    split, first);
        pthread_mutex_unlock(&spy.lock);
        TEST_SAY("every task's result and terminal event in one transaction");
        return 0;
}
