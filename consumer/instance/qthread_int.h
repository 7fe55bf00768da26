/* SPDX-License-Identifier: Apache-2.0 */
/*
 * qthread_int.h: a thread that reads one consumer of its own (qthread.c):
 * the control thread (control.c: topic.control, assigned by hand), and
 * the owners of partitions in a group of their own, the schedules thread
 * (schedules.c: topic.schedules) and the workflows thread (workflows.c:
 * topic.workflows).
 *
 * DESIGN
 *   Main creates the consumer (with its module's rebalance callback, if
 *   any), sets it in `rk`, and calls sq_qthread_start(), which plugs the
 *   consumer's queue into a pipe, subscribes it to the topic (when one
 *   is given) and starts the thread. The thread's loop is its module's:
 *   sq_qthread_drain(), read the queue with no wait (which also serves
 *   the rebalance callback), act, then sq_qthread_sleep() until the
 *   queue has something, main asks the thread to stop, or the module's
 *   timeout (its next timer) passes. sq_qthread_stop() ends the thread,
 *   then closes the consumer, which runs the revoke callback on main's
 *   thread: a module gives its partitions up there, and the group hands
 *   them to another member at once.
 */
#ifndef SQ_QTHREAD_INT_H
#define SQ_QTHREAD_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdbool.h>

#include "common.h"

typedef struct sq_qthread_s {
        rd_kafka_t *rk;        /* the consumer: set by the module, then
                                  closed and destroyed by sq_qthread_stop() */
        rd_kafka_queue_t *rkq; /* its queue, signalling pipe_fds[1] */
        int pipe_fds[2];
        int stop_fd; /* eventfd: main asks the thread to end */
        pthread_t thread;
        bool started;
} sq_qthread_t;

/** @brief No consumer, nothing open: sq_qthread_stop() is a no-op. */
void sq_qthread_init(sq_qthread_t *qt);

/**
 * @brief Plugs qt->rk's queue into the thread's pipe, subscribes it to
 *        @p topic (NULL: the module assigned its partitions) and starts
 *        @p thread_main(@p arg). Main.
 * @param key the topic's configuration key ("topic.workflows") and
 *        @p what the thread's name ("workflows"), for the messages.
 * @returns SQ_OK, or an error with @p errstr naming what failed (then
 *          sq_qthread_stop() frees what was opened).
 */
sq_err_t sq_qthread_start(sq_qthread_t *qt, const char *key, const char *topic,
                          const char *what, void *(*thread_main)(void *),
                          void *arg, char *errstr, size_t errstr_size);

/** @brief Empties the pipe: call it before reading the queue, so that a
 *         signal written while it is read is never missed. Thread. */
void sq_qthread_drain(sq_qthread_t *qt);

/**
 * @brief Sleeps until the queue signals, main asks the thread to stop,
 *        or @p timeout_ms passes (-1: no timeout). Thread.
 * @returns false when the thread must end (asked to; or poll(2) failed,
 *          logged under @p fac).
 */
bool sq_qthread_sleep(sq_qthread_t *qt, int timeout_ms, const char *fac);

/** @brief Ends and joins the thread, then closes the consumer (a revoke
 *         callback runs here) and frees what sq_qthread_start() opened;
 *         idempotent. Main. */
void sq_qthread_stop(sq_qthread_t *qt);

#endif /* SQ_QTHREAD_INT_H */
