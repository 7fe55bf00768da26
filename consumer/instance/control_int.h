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
        /* exactly_once: the plain idempotent producer of POST
         * /admin/cancel's records (control.c says why not the
         * transaction's), its delivery reports served by the control
         * thread; NULL when cancelling is off or at_least_once (the
         * instance's producer sends them). producer_lock: HTTP threads
         * produce while the poll thread may stop it. */
        pthread_mutex_t producer_lock;
        rd_kafka_t *producer;
        rd_kafka_queue_t *producer_q; /* its main queue, on the pipe */
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
 * @brief The delivery report of a cancel record (POST /admin/cancel) that
 *        was not delivered: logs it as an error naming the task id and the
 *        cause (an ACL by name), since the caller had its answer already.
 *        Poll thread (the instance's producer's delivery reports) or
 *        the control thread (exactly_once: the control producer's).
 */
void sq_control_dr_failed(const rd_kafka_message_t *rkm);

/**
 * @brief Produces a control record cancelling @p task_id (POST
 *        /admin/cancel), not tracked: the producer's own retries deliver
 *        it; under exactly_once through the control producer, outside
 *        any transaction. Any thread.
 * @returns SQ_OK, or an error with @p errstr naming why.
 */
sq_err_t sq_control_send_cancel(sq_daemon_t *daemon, const char *task_id,
                                char *errstr, size_t errstr_size);

#endif /* SQ_CONTROL_INT_H */
