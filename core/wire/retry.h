/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retry.h: retries and dead letters of failed tasks: the backoff policy,
 * the Spring Kafka style headers of retry and dead-letter records, and a
 * job's copy of the record it came from.
 *
 * DESIGN
 *   A task that fails or times out is not answered with a FAILED result:
 *   while it has attempts left its original record (value and key
 *   untouched) is produced again to topic.retry with attempt+1 and a due
 *   time in `retry_topic-backoff-timestamp`; out of attempts, the same
 *   bytes go to topic.dlt and the task gets a DEAD_LETTERED result. The
 *   coordinates and timestamp of the first record (in topic.tasks or
 *   topic.critical) travel in the `kafka_dlt-original-*` and
 *   `retry_topic-original-timestamp` headers from one retry record to the
 *   next, so the dead letter names the record upstream wrote. Header
 *   values are decimal text (readable with kcat and any language).
 *   Everything here is pure or thread-safe: executor threads and the I/O
 *   loop call it with their own codec; the record copy is owned by its job.
 */
#ifndef SQ_RETRY_H
#define SQ_RETRY_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "task.h"

/* Header names (Spring Kafka's, then ours). */
#define SQ_HDR_ATTEMPTS         "retry_topic-attempts"
#define SQ_HDR_BACKOFF_TS       "retry_topic-backoff-timestamp"
#define SQ_HDR_ORIGINAL_TS      "retry_topic-original-timestamp"
#define SQ_HDR_DLT_TOPIC        "kafka_dlt-original-topic"
#define SQ_HDR_DLT_PARTITION    "kafka_dlt-original-partition"
#define SQ_HDR_DLT_OFFSET       "kafka_dlt-original-offset"
#define SQ_HDR_DLT_TIMESTAMP    "kafka_dlt-original-timestamp"
#define SQ_HDR_DLT_GROUP        "kafka_dlt-original-consumer-group"
#define SQ_HDR_DLT_EXCEPTION    "kafka_dlt-exception-message"
#define SQ_HDR_AGENT            "swarmq-agent"
#define SQ_HDR_INSTANCE         "swarmq-instance"
#define SQ_HDR_REASON           "swarmq-reason"
#define SQ_HDR_TASK_ID          "swarmq-task-id"
#define SQ_HDR_DEAD_LETTERED_AT "swarmq-dead-lettered-at"
/* When the task's first attempt started (ms since the epoch), carried on
 * its retry and dead-letter records so that the last attempt's result says
 * it (result.avsc's started_at). */
#define SQ_HDR_FIRST_STARTED "swarmq-first-started-at"
#define SQ_HDR_REDRIVEN_FROM "swarmq-redriven-from"
#define SQ_HDR_REDRIVEN_AT   "swarmq-redriven-at"

/** The record a job was admitted from, copied off the consumer's
 *  message (which is borrowed only until it is destroyed). */
typedef struct sq_record_s {
        char *topic;
        int32_t partition;
        int64_t offset;
        int64_t timestamp; /**< ms, -1 when the broker gave none */
        void *key;         /**< NULL when the record had none */
        size_t key_len;
        void *value;
        size_t value_len;
        rd_kafka_headers_t *headers; /**< NULL when none */
} sq_record_t;

/** Where a task's first record is, and when it was written. */
typedef struct sq_origin_s {
        char topic[256];
        char partition[16];
        char offset[24];
        char timestamp[24];
} sq_origin_t;

/**
 * @brief Copies @p rkm (borrowed) into a new record.
 * @returns the copy (caller owns, free with sq_record_destroy()).
 */
sq_record_t *sq_record_new(const rd_kafka_message_t *rkm);
/** @brief Frees a record; NULL is a no-op. */
void sq_record_destroy(sq_record_t *rec);

/**
 * @brief The bytes a copy of @p rkm takes: for a caller that keeps the
 *        record inside an allocation of its own (the consumer's job, one
 *        allocation per task instead of two).
 */
size_t sq_record_size(const rd_kafka_message_t *rkm);
/**
 * @brief Copies @p rkm (borrowed) into @p mem, sq_record_size() zeroed
 *        bytes aligned for a pointer.
 * @returns the record at @p mem (caller owns the memory; give back what
 *          the record holds with sq_record_term()).
 */
sq_record_t *sq_record_init(void *mem, const rd_kafka_message_t *rkm);
/** @brief Frees what a record of sq_record_init() holds (its headers),
 *         not its memory; NULL is a no-op. */
void sq_record_term(sq_record_t *rec);

/**
 * @brief A header's value as a NUL-terminated string.
 * @param hdrs borrowed, may be NULL.
 * @returns true with @p buf filled when the last header named @p name
 *          exists and fits (and holds no NUL).
 */
bool sq_retry_header_get(const rd_kafka_headers_t *hdrs, const char *name,
                         char *buf, size_t size);

/**
 * @brief Reads a header holding a decimal integer.
 * @returns true with *valp set when present and a number in [min, max].
 */
bool sq_retry_header_int(const rd_kafka_headers_t *hdrs, const char *name,
                         int64_t min, int64_t max, int64_t *valp);

/**
 * @brief Whether swarmq writes header @p name itself on retry and dead-letter
 *        records (every retry_topic-* and kafka_dlt-* header, and
 *        swarmq-{agent,instance,reason,task-id,dead-lettered-at,
 *        first-started-at}): such a
 *        header is replaced, never duplicated, and a re-driven task carries
 *        it renamed.
 */
bool sq_retry_header_is_ours(const char *name);

/**
 * @brief The origin of @p rec: the `kafka_dlt-original-*` headers it
 *        carries when it came from the retry topic, else its own
 *        coordinates.
 * @param retry_topic the configured topic.retry (borrowed).
 */
void sq_retry_origin(const sq_record_t *rec, const char *retry_topic,
                     sq_origin_t *origin);

/**
 * @brief The headers for a retry or dead-letter record of @p rec: its own
 *        headers minus every retry_topic-*, kafka_dlt-* and
 *        swarmq-{agent,instance,reason,task-id,dead-lettered-at} header,
 *        plus the origin's and the consumer group's kafka_dlt-* headers
 *        and `kafka_dlt-exception-message`, `swarmq-reason`,
 *        `swarmq-instance`, `swarmq-agent` (when @p agent) and
 *        `swarmq-task-id` (when @p task_id).
 * @returns new headers (caller owns; produce() takes them).
 */
rd_kafka_headers_t *sq_retry_headers(const sq_record_t *rec,
                                     const sq_origin_t *origin,
                                     const char *group, const char *instance,
                                     const char *agent, const char *task_id,
                                     const char *reason_code,
                                     const char *message);

/** @brief Adds a header whose value is the decimal @p val. */
void sq_retry_header_add_int(rd_kafka_headers_t *hdrs, const char *name,
                             int64_t val);

/**
 * @brief The attempts a task gets: its own max_attempts, capped by
 *        retry.max.attempts.
 */
int32_t sq_retry_max_attempts(const sq_config_t *conf, const sq_task_t *task);

/**
 * @brief The delay before the attempt after @p failed_attempt (1-based):
 *        d = min(retry.backoff.max.ms, initial * multiplier^(n-1)), then
 *        retry.backoff.jitter: full = uniform [0, d], equal = d/2 +
 *        uniform [0, d/2], none = d.
 * @param rnd a uniformly random 64-bit number (tests pass fixed ones).
 * @returns milliseconds, >= 0.
 */
int64_t sq_retry_backoff_ms(const sq_config_t *conf, int32_t failed_attempt,
                            uint64_t rnd);

/** @returns a random 64-bit number (getrandom, else the clock). */
uint64_t sq_retry_random(void);

#endif /* SQ_RETRY_H */
