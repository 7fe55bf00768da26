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

/** exactly_once: the step of a transaction that failed (the reason label
 *  of swarmq_transactions_aborted_total). */
typedef enum {
        SQ_TXN_PRODUCE      = 0, /* a record of it was refused */
        SQ_TXN_FLUSH        = 1, /* its records were not all acknowledged */
        SQ_TXN_SEND_OFFSETS = 2, /* its offsets were refused */
        SQ_TXN_COMMIT       = 3, /* EndTxn (commit) failed */
        SQ_TXN_BEGIN        = 4, /* the next one could not begin */
        SQ_TXN_LOST         = 5, /* the group no longer knows the member */
} sq_txn_step_t;
#define SQ_TXN_STEP_CNT 6

/** @returns the label value of @p step ("send_offsets", ...). */
const char *sq_txn_step_name(sq_txn_step_t step);

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
        atomic_bool txn_failed;    /* a record of it failed: abort it */
        char txn_cause[256];       /* why a produce call failed, written
                                    * by whoever set txn_failed there
                                    * (under the read lock), read under
                                    * the write lock */
        char txn_dr_cause[256];    /* poll thread: the first delivery
                                    * error of the open transaction */
        bool txn_dead;             /* poll thread: a fatal error, no more
                                    * transactions (the instance stops) */
        size_t txn_dedup_new;      /* poll thread: task ids the open
                                    * transaction added to the dedup map
                                    * (forgotten if it aborts) */
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
 * @brief exactly_once: a record of the open transaction failed
 *        (txn_failed, set by emit.c). Takes the transaction's write lock
 *        and ends the transaction as a failed one: aborted and rewound
 *        (the instance carries on), or, on a fatal producer error, the
 *        instance stops.
 * @locality poll thread
 */
void sq_commit_produce_failed(sq_daemon_t *daemon);

/**
 * @brief exactly_once: the assignment was lost (the member's session
 *        ended): the open transaction holds results whose offsets this
 *        member can no longer commit, and the partitions' next owner runs
 *        those tasks again. Aborts it (when it holds records) and rewinds,
 *        as for an abortable error, under the write lock.
 * @locality poll thread (the rebalance callback)
 */
void sq_commit_assignment_lost(sq_daemon_t *daemon);

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
