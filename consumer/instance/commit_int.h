/* SPDX-License-Identifier: Apache-2.0 */
/*
 * commit_int.h: offset commits and exactly-once transactions (commit.c).
 *
 * DESIGN
 *   Poll thread only (librdkafka serves the commit callback there too).
 */
#ifndef SQ_COMMIT_INT_H
#define SQ_COMMIT_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "daemon.h"

/**
 * What commits keep (commit.c). Threads: the poll thread, except the
 * transaction's produce side (emit.c, executor threads and the I/O loop),
 * which holds txn_lock for reading, counts txn_produced and sets
 * txn_failed.
 */
typedef struct sq_commit_s {
        char *map_buf;   /* commit.metadata.max.bytes + 1: one map encoded
                          * at a time (poll thread) */
        int64_t next_us; /* the next periodic commit (poll thread) */
        /* processing.guarantee=exactly_once */
        pthread_rwlock_t txn_lock; /* produce: read; end a transaction:
                                    * write (poll thread) */
        atomic_long txn_produced;  /* records in the open transaction */
        atomic_bool txn_failed;    /* it cannot commit: abort and stop */
        bool txn_dead;             /* poll thread: no more transactions */
} sq_commit_t;

/**
 * @brief Initializes the transaction lock (writer-preferring) and the map
 *        buffer. Main.
 */
void sq_commit_init(sq_daemon_t *daemon);

/** @brief Frees what sq_commit_init() made. Main, threads stopped. */
void sq_commit_term(sq_daemon_t *daemon);

/**
 * @brief Commits the completed prefix (with its completed-offset map) of
 *        the partitions in @p only, or of every assigned one when NULL.
 *        The periodic asynchronous commit skips what the broker already
 *        acknowledged; a synchronous one (revocation, shutdown) sends every
 *        prefix again. exactly_once: ends the open transaction instead.
 * @param only borrowed, or NULL.
 * @locality poll thread
 */
void sq_commit_offsets(sq_daemon_t *daemon,
                       const rd_kafka_topic_partition_list_t *only, bool sync);

/**
 * @brief exactly_once: the transaction failed. Logs @p what failed,
 *        aborts the transaction, stops the instance with SQ_ERR_KAFKA and
 *        starts no transaction again.
 * @param what borrowed.
 * @param error takes ownership, or NULL (a produce failed).
 * @locality poll thread
 */
void sq_commit_fail_transaction(sq_daemon_t *daemon, const char *what,
                                rd_kafka_error_t *error);

/**
 * @brief librdkafka's offset-commit callback (kafka.c sets it up): counts
 *        the commit and records which partitions the broker acknowledged.
 * @param opaque the instance.
 * @locality poll thread (from consumer poll)
 */
void sq_daemon_offset_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *offsets,
                                void *opaque);

#endif /* SQ_COMMIT_INT_H */
