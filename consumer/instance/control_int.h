/* SPDX-License-Identifier: Apache-2.0 */
/*
 * control_int.h: the control topic's reader and the cancelled task ids
 * (control.c).
 *
 * DESIGN
 *   Main initializes the state and starts the control thread; it stops
 *   (joins) it before the exec and pool runtimes shut down (so no
 *   cancellation is posted to a stopped I/O loop) and frees the set once
 *   every thread that looks ids up (poll, executors, I/O loop) is gone.
 *   The thread owns its consumer and its pipe; the set (cancels.h) has
 *   its own lock.
 */
#ifndef SQ_CONTROL_INT_H
#define SQ_CONTROL_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "cancels.h"
#include "common.h"
#include "daemon.h"
#include "qthread_int.h"

/** The control reader (topic.control) and what it learnt. */
typedef struct sq_control_s {
        /* Task ids cancelled within cancel.ttl.ms: the control thread
         * adds, admission and executors look up (its own lock). */
        sq_cancels_t *cancels;
        sq_qthread_t qt;      /* the thread and its consumer (no group) */
        atomic_long received; /* control records read (for /metrics) */
        /* exactly_once: the cancel records sent into the open transaction
         * (POST /admin/cancel), sent again into the next one if it is
         * aborted (an aborted record is never read), forgotten once it
         * commits. Added under txn_lock read-held and pending_lock;
         * sent again or forgotten under txn_lock write-held. */
        pthread_mutex_t pending_lock;
        struct sq_control_pending_s *pending; /* newest first */
} sq_control_t;

/** @brief Creates the set of cancelled ids. Main. */
void sq_control_init(sq_daemon_t *daemon);

/**
 * @brief Reads topic.control's partitions, assigns all of them from the
 *        beginning to a consumer with no group and starts the control
 *        thread. A control topic that cannot be read is logged (cancelling
 *        is then off on this instance), not fatal. Main.
 */
sq_err_t sq_control_start(sq_daemon_t *daemon, char *errstr,
                          size_t errstr_size);

/** @brief Stops and joins the control thread, closes its consumer;
 *         idempotent. Main or the poll thread (on its way out). */
void sq_control_stop(sq_daemon_t *daemon);

/** @brief Frees the set. Main, every thread stopped. */
void sq_control_term(sq_daemon_t *daemon);

/**
 * @brief Whether @p task was cancelled (within cancel.ttl.ms), by its id
 *        or with its workflow. O(1); no lock while nothing was cancelled.
 *        Any thread.
 * @returns NULL when not, else how: "by its id", "with its workflow".
 */
const char *sq_control_cancelled(sq_daemon_t *daemon, const sq_task_t *task);

/**
 * @brief exactly_once: the open transaction committed: its cancel
 *        records are in Kafka. The poll thread, txn_lock write-held.
 */
void sq_control_txn_committed(sq_daemon_t *daemon);

/**
 * @brief exactly_once: the open transaction was aborted and the next
 *        one begun: sends its cancel records again, into the new one. A
 *        record that cannot be produced is logged with its task id (that
 *        cancellation is lost). The poll thread, txn_lock write-held.
 */
void sq_control_txn_aborted(sq_daemon_t *daemon);

/**
 * @brief The delivery report of a cancel record (POST /admin/cancel) that
 *        was not delivered: logs it as an error naming the task id and the
 *        cause (an ACL by name), since the caller had its answer already.
 *        Poll thread (the producer's delivery reports).
 */
void sq_control_dr_failed(const rd_kafka_message_t *rkm);

/**
 * @brief Produces a control record cancelling @p task_id (POST
 *        /admin/cancel), not tracked: the producer's own retries deliver
 *        it; under exactly_once it goes into the open transaction, and
 *        into the next if that one is aborted. Any thread.
 * @returns SQ_OK, or an error with @p errstr naming why.
 */
sq_err_t sq_control_send_cancel(sq_daemon_t *daemon, const char *task_id,
                                char *errstr, size_t errstr_size);

#endif /* SQ_CONTROL_INT_H */
