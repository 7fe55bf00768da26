/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test.h: the harness of the C integration tests (tests/integration/
 * NNNN-<slug>.c), in the style of librdkafka's tests/test.h: each file is
 * one program whose entry point is main_NNNN_<slug>(), with TEST_SAY,
 * TEST_FAIL, TEST_ASSERT and a per-test timeout. The tests run swarmq
 * instances in-process (consumer/instance/daemon.h, public functions only)
 * on librdkafka's mock cluster and check what a user would see through
 * clients of their own: the records in the results, events and dead-letter
 * topics, the group's committed offsets, /readyz and /metrics over a
 * socket.
 *
 * DESIGN
 *   A failure prints where and why, then _exit(1)s at once: the instances'
 *   threads are still running and must not race a normal exit's
 *   destructors. A watchdog thread does the same when the test's timeout
 *   (test_timeout_set) passes, naming the phase the test was in
 *   (TEST_PHASE), so a hang is a failure with a reason, not a ctest kill.
 *   Waiting is on events: a reader blocks in the consumer poll until its
 *   records arrive or the deadline passes, and a deadline is a failure.
 *   Only what has no event to wait for (/readyz, a committed offset, a
 *   gauge) is polled by test_wait_until() at short intervals, bounded by
 *   its deadline. On success every object is freed (CI runs these under
 *   ASan+UBSan with leak detection).
 */
#ifndef SQ_TEST_H
#define SQ_TEST_H

#include <stdarg.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "codec.h"
#include "common.h"
#include "config.h"
#include "daemon.h"
#include "task.h"

/** The test's entry point: main_NNNN_<slug>(), named by the build. */
int SQ_TEST_MAIN(int argc, char **argv);

/*
 * Reporting and timeouts
 */

void test_say(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void test_fail(const char *file, int line, const char *func, const char *fmt,
               ...) __attribute__((format(printf, 4, 5), noreturn));

/** Prints one progress line with the test's name and elapsed time. */
#define TEST_SAY(...) test_say(__FILE__, __LINE__, __VA_ARGS__)
/** Fails the test at once (exit status 1) with a sentence saying why. */
#define TEST_FAIL(...) test_fail(__FILE__, __LINE__, __func__, __VA_ARGS__)
/** Fails unless @p expr holds; the message says what a user would see. */
#define TEST_ASSERT(expr, ...)                                                 \
        do {                                                                   \
                if (!(expr))                                                   \
                        TEST_FAIL("assertion failed: " #expr                   \
                                  ": " __VA_ARGS__);                           \
        } while (0)

/** Names what the test does now (in progress lines and on a timeout). */
#define TEST_PHASE(name) test_phase(name)
void test_phase(const char *name);

/**
 * @brief Arms the watchdog: the test fails if it has not ended within
 *        @p seconds from now (re-arming replaces the previous deadline).
 */
void test_timeout_set(int seconds);

/** @returns milliseconds since the test started. */
int64_t test_elapsed_ms(void);

/**
 * @brief Calls @p cond every 20 ms until it returns true; fails the test
 *        naming @p what when @p timeout_ms pass first. For conditions with
 *        no event to wait on (an HTTP answer, a committed offset).
 */
void test_wait_until(const char *what, int timeout_ms,
                     bool (*cond)(void *opaque), void *opaque);

/**
 * @brief test_wait_until() for a condition that explains itself: on the
 *        deadline the failure also prints @p why, which @p cond fills
 *        each time it returns false.
 */
void test_wait_until_why(const char *what, int timeout_ms,
                         bool (*cond)(void *opaque), void *opaque,
                         const char *why);

/*
 * The broker: librdkafka's mock cluster, owned by the test (so that
 * instances can stop and start while the data lives on)
 */

typedef struct test_cluster_s {
        rd_kafka_t *rk; /**< owns the cluster */
        rd_kafka_mock_cluster_t *mcluster;
        char *bootstrap;
} test_cluster_t;

/**
 * @brief Starts a one-broker mock cluster with swarmq's six default topics:
 *        the tasks topic with @p partitions partitions, the others with 2.
 * @returns the cluster (free with test_cluster_destroy()).
 */
test_cluster_t *test_cluster_new(int partitions);
/** As test_cluster_new(), with @p brokers brokers (ids 1..brokers); the
 *  mock spreads partition leaders over them (set them with
 *  rd_kafka_mock_partition_set_leader() where a test needs to know). */
test_cluster_t *test_cluster_new_brokers(int partitions, int brokers);
void test_cluster_destroy(test_cluster_t *cluster);

/*
 * Instances
 */

/**
 * @brief A finalized instance configuration: @p bootstrap (NULL: the
 *        instance's own embedded broker), instance.id @p instance_id, an
 *        ephemeral HTTP port, commits every 200 ms, a 4 s session (the
 *        mock cluster holds a rebalance that long, less 1 s), then the
 *        key/value
 *        pairs that follow, NULL-terminated. A key swarmq rejects fails
 *        the test.
 * @returns the config (caller owns: sq_daemon_new() takes it).
 */
sq_config_t *test_conf_new(const char *bootstrap, const char *instance_id, ...)
    __attribute__((sentinel));

/** @brief sq_daemon_new() and sq_daemon_start(); fails the test on error. */
sq_daemon_t *test_instance_start(sq_config_t *conf);

/**
 * @brief sq_daemon_stop() and sq_daemon_wait(), which must return SQ_OK
 *        within @p timeout_ms, then sq_daemon_destroy().
 */
void test_instance_stop(sq_daemon_t *daemon, int timeout_ms);

/**
 * @brief test_instance_stop() without the destroy: the instance's HTTP
 *        server still answers (/readyz says stopping, /metrics counts).
 */
void test_instance_stop_wait(sq_daemon_t *daemon, int timeout_ms);

/** @brief Waits until the instance's /readyz answers 200. */
void test_wait_ready(sq_daemon_t *daemon, int timeout_ms);

/**
 * @brief GET @p path from the instance's HTTP port over a plain socket.
 * @param bodyp when not NULL, set to the body (caller frees, sq_free()).
 * @returns the HTTP status, or -1 when the connection failed.
 */
int test_http_get(sq_daemon_t *daemon, const char *path, char **bodyp);

/**
 * @brief Sends @p method @p path (an empty body) to the instance's HTTP
 *        port, with the header line @p header ("Name: value") when not
 *        NULL; as test_http_get() otherwise.
 */
int test_http_request(sq_daemon_t *daemon, const char *method, const char *path,
                      const char *header, char **bodyp);

/**
 * @brief Sums the samples of /metrics whose line starts with @p prefix
 *        (a family name, optionally with the start of its labels).
 */
double test_metric(sq_daemon_t *daemon, const char *prefix);

/*
 * Producing tasks
 */

/** Where one produced record landed (filled by its delivery report). */
typedef struct test_rec_s {
        int32_t partition;
        int64_t offset;
        rd_kafka_resp_err_t err;
        bool delivered;
} test_rec_t;

/** @returns an idempotent producer (free with rd_kafka_destroy()). */
rd_kafka_t *test_producer_new(const char *bootstrap);

/**
 * @brief Produces @p len bytes of @p value keyed by @p key to @p topic.
 * @param rec where its delivery report is written (borrowed, must live
 *            until test_producer_flush()); may be NULL.
 */
void test_produce(rd_kafka_t *rk, const char *topic, const char *key,
                  const void *value, size_t len, test_rec_t *rec);

/**
 * @brief Produces a task keyed by its id: as JSON (@p codec NULL) or
 *        as Avro in the Confluent framing (core/wire's encoder).
 */
void test_produce_task(rd_kafka_t *rk, sq_codec_t *codec, const char *topic,
                       const sq_task_t *task, test_rec_t *rec);

/** @brief Flushes; fails the test if any record was not delivered. */
void test_producer_flush(rd_kafka_t *rk);

/** What a spied produce call named (tests that watch the instance's
 *  produce calls: 0088, 0089). */
typedef struct test_produce_call_s {
        const char *topic; /**< by name or by its rd_kafka_topic_t */
        /** A copy of the key (NULL without one), taken before the call
         *  goes on: the key is the caller's (a job's task id), and once
         *  the record is accepted its delivery report can free the job
         *  on another thread before the spy has read it. */
        const void *key;
        size_t key_len; /**< the copy's, at most sizeof(key_copy) */
        char key_copy[64];
        const void *opaque; /**< non-NULL: a record a job tracks (only
                             *   compared with NULL: it may be gone) */
} test_produce_call_t;

/**
 * @brief For a test that defines rd_kafka_producev() itself to watch the
 *        instance's produce calls (the instance is linked into the test
 *        program, so its calls come there): passes the call's arguments
 *        @p ap on to librdkafka as rd_kafka_produceva() (the same call
 *        with its arguments in an array) and notes in @p call what it
 *        named. Fails the test on an argument type it does not know.
 * @returns the produce call's error code.
 */
rd_kafka_resp_err_t test_producev_pass_on(rd_kafka_t *rk, va_list ap,
                                          test_produce_call_t *call);

/** @returns a new task (caller owns) with @p id, @p type and @p payload. */
sq_task_t *test_task_new(const char *id, const char *type, const char *payload);

/*
 * Reading topics back
 */

typedef struct test_reader_s test_reader_t;

/**
 * @brief A consumer that reads every partition of @p topic from the
 *        beginning: assigned, no group, nothing committed.
 */
test_reader_t *test_reader_new(const char *bootstrap, const char *topic);
void test_reader_destroy(test_reader_t *reader);

/**
 * @returns the next record (caller destroys it), or NULL when none came
 *          within @p timeout_ms. Errors other than end-of-partition fail
 *          the test.
 */
rd_kafka_message_t *test_reader_poll(test_reader_t *reader, int timeout_ms);

/** What a reader saw for one task id. */
typedef struct test_entry_s {
        char *id;
        int results;         /**< results read for this id */
        sq_result_t *result; /**< the first one */
        char instances[128]; /**< the instance of each, in read order */
        int events;          /**< events read for this id */
        char types[256];     /**< their types in order, space-separated */
        struct test_entry_s *next;
} test_entry_t;

/**
 * @brief Reads results (decoded with core/wire's codec) into the reader's
 *        table until @p want distinct task ids have one; fails the test
 *        when @p timeout_ms pass first.
 * @returns the number of results read in all (duplicates included).
 */
size_t test_read_results(test_reader_t *reader, size_t want, int timeout_ms);

/**
 * @brief Reads results until the reader has read every record the topic
 *        holds now (its high watermarks); fails the test when
 *        @p timeout_ms pass first.
 * @returns the number of results read.
 */
size_t test_read_results_to_end(test_reader_t *reader, int timeout_ms);

/**
 * @brief Reads events until @p want distinct task ids have had an event
 *        of type @p type; fails the test when @p timeout_ms pass first.
 */
void test_read_events(test_reader_t *reader, const char *type, size_t want,
                      int timeout_ms);

/**
 * @brief Reads events until the reader has read every record the topic
 *        holds now; fails the test when @p timeout_ms pass first.
 */
size_t test_read_events_to_end(test_reader_t *reader, int timeout_ms);

/** @returns what the reader saw for @p id, or NULL. */
const test_entry_t *test_entry(const test_reader_t *reader, const char *id);

/** @returns the number of distinct task ids with a result. */
size_t test_results_distinct(const test_reader_t *reader);

/**
 * @returns the partition count of @p topic from the cluster's metadata
 *          (an error, or a topic that does not exist, fails the test).
 */
int test_partition_count(const char *bootstrap, const char *topic);

/*
 * Offsets
 */

/**
 * @brief The committed offsets of @p group for partitions 0..@p cnt-1 of
 *        @p topic (-1001 where none), read by a client of that group that
 *        never joins it.
 */
void test_committed(const char *bootstrap, const char *group, const char *topic,
                    int cnt, int64_t *offsets);

/** @brief The high watermarks of partitions 0..@p cnt-1 of @p topic. */
void test_high_watermarks(const char *bootstrap, const char *topic, int cnt,
                          int64_t *offsets);

/**
 * @brief Waits until @p group's committed offset of every partition of
 *        @p topic equals its high watermark (everything done, committed).
 */
void test_wait_committed_all(const char *bootstrap, const char *group,
                             const char *topic, int cnt, int timeout_ms);

#endif /* SQ_TEST_H */
