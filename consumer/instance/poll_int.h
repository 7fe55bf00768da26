/* SPDX-License-Identifier: Apache-2.0 */
/*
 * poll_int.h: the poll thread (poll.c).
 *
 * DESIGN
 *   Started once by sq_daemon_start(), joined by sq_daemon_wait(); any
 *   thread may wake it.
 */
#ifndef SQ_POLL_INT_H
#define SQ_POLL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "codec.h"
#include "common.h"
#include "daemon.h"

/**
 * The poll thread's own (poll.c). librdkafka writes the three pipes (io
 * events of the consumer, critical and delivery-report queues), any thread
 * writes wake_fd, the poll thread reads them all. Main creates and closes
 * them, starts and joins the thread.
 */
typedef struct sq_poll_s {
        pthread_t thread;
        int consumer_pipe[2];
        int critical_pipe[2];
        int producer_pipe[2];
        int wake_fd;       /* eventfd: stop requests, dropped jobs */
        sq_codec_t *codec; /* the poll thread's own codec */
        /* Each loop iteration's start: the poll thread writes it,
         * /healthz reads it. */
        atomic_int_least64_t heartbeat_us;
        /* Stopping, after the drain: when the rest of the stop (commits,
         * the consumer's close, the last deliveries) must be over
         * (shutdown.close.timeout.ms); 0 before. Poll thread. */
        int64_t close_deadline_us;
        /* The consumer did not close by then: a revocation librdkafka
         * still delivers (from rd_kafka_destroy()) neither waits nor
         * commits. Poll thread, then main. */
        bool close_abandoned;
        /* When the critical partitions' queues are forwarded again
         * (sq_rebalance_tick()), and until when often. Poll thread. */
        int64_t critical_forward_next_us;
        int64_t critical_forward_until_us;
} sq_poll_t;

/**
 * @brief Creates the wake-up eventfd and the three queue pipes.
 * @returns SQ_OK, or SQ_ERR_IO with @p errstr set (the ones made are
 *          closed by sq_poll_term()).
 * @locality main, the first fallible step of sq_daemon_new()
 */
sq_err_t sq_poll_init(sq_daemon_t *daemon, char *errstr, size_t errstr_size);

/**
 * @brief Creates the poll thread's codec.
 * @returns SQ_OK, or an error with @p errstr set.
 * @locality main
 */
sq_err_t sq_poll_new_codec(sq_daemon_t *daemon, char *errstr,
                           size_t errstr_size);

/**
 * @brief Has librdkafka write the pipes when an op is enqueued on the
 *        consumer, critical and delivery-report queues. Main, once the
 *        Kafka clients exist.
 */
void sq_poll_watch_queues(sq_daemon_t *daemon);

/**
 * @brief Frees the codec and closes the pipes and the eventfd. Main,
 *        after the Kafka clients are destroyed (librdkafka writes the
 *        pipes until then).
 */
void sq_poll_term(sq_daemon_t *daemon);

/**
 * @brief Starts the poll thread.
 * @returns SQ_OK, or SQ_ERR_IO with @p errstr set.
 * @locality main
 */
sq_err_t sq_poll_start(sq_daemon_t *daemon, char *errstr, size_t errstr_size);

/**
 * @brief Wakes the poll thread (its eventfd): a stop request, a dropped
 *        job, an opened breaker, an admin action.
 * @locality any thread
 */
void sq_daemon_wake(sq_daemon_t *daemon);

/**
 * @brief Serves the producer's delivery reports, waiting up to
 *        @p timeout_ms for the first.
 * @locality poll thread
 */
void sq_poll_serve_reports(sq_daemon_t *daemon, int timeout_ms);

#endif /* SQ_POLL_INT_H */
