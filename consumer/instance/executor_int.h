/* SPDX-License-Identifier: Apache-2.0 */
/*
 * executor_int.h: the executor threads and the out-of-process agents'
 * runtimes (executor.c).
 *
 * DESIGN
 *   Main creates and starts them; the poll thread joins the executors
 *   and shuts the runtimes down when it stops (main, when the poll thread
 *   never started). Executors and the I/O loop write progress_us, which
 *   /healthz reads.
 */
#ifndef SQ_EXECUTOR_INT_H
#define SQ_EXECUTOR_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "codec.h"
#include "common.h"
#include "daemon.h"
#include "ioloop.h"

typedef struct sq_executor_s {
        struct sq_daemon_s *daemon;
        pthread_t thread;
        int idx;
        sq_codec_t *codec;
} sq_executor_t;

/** The executors and the out-of-process agents (executor.c). */
typedef struct sq_executors_s {
        sq_executor_t *threads; /* NULL until started (main) */
        int cnt;
        /* The out-of-process agents: the I/O loop, its codec, and per
         * agent index an sq_exec_t or sq_pool_t (NULL for builtin
         * agents). All NULL when every agent is builtin. Main creates
         * and destroys them; the I/O loop thread runs them. */
        sq_ioloop_t *ioloop;
        sq_codec_t *io_codec;
        void **runtimes;
        void *rt_collectors; /* /metrics collector contexts */
        /* The last time an executor or the I/O loop made progress, for
         * /healthz (HTTP thread). */
        atomic_int_least64_t progress_us;
} sq_executors_t;

/**
 * @brief Starts executor.threads threads, each with its own codec.
 * @returns SQ_OK, or an error with @p errstr set.
 * @locality main
 */
sq_err_t sq_executors_start(sq_daemon_t *daemon, char *errstr,
                            size_t errstr_size);

/**
 * @brief Joins the executor threads (the scheduler shut down first).
 * @locality the poll thread when it stops, or main
 */
void sq_executors_join(sq_daemon_t *daemon);

/**
 * @brief Creates the I/O loop and a runtime for each exec and pool agent
 *        of the configuration (none when every agent is builtin).
 * @returns SQ_OK, or an error with @p errstr set.
 * @locality main, while the instance is built
 */
sq_err_t sq_runtimes_new(sq_daemon_t *daemon, char *errstr, size_t errstr_size);

/**
 * @brief Starts the I/O loop and the runtimes, before the executors.
 * @returns SQ_OK, or an error with @p errstr set.
 * @locality main
 */
sq_err_t sq_runtimes_start(sq_daemon_t *daemon, char *errstr,
                           size_t errstr_size);

/**
 * @brief Shuts the runtimes down after the executors are joined: children
 *        killed, their jobs dropped.
 * @locality the poll thread when it stops
 */
void sq_runtimes_shutdown(sq_daemon_t *daemon);

/**
 * @brief Asks every exec and pool runtime to end the task @p task_id if
 *        it runs it (CANCELLED). Any thread, before sq_runtimes_shutdown()
 *        (which stops the control thread first).
 */
void sq_runtimes_cancel(sq_daemon_t *daemon, const char *task_id);

/** @brief Frees the runtimes and the I/O loop. Main. */
void sq_runtimes_destroy(sq_daemon_t *daemon);

/**
 * @brief Frees the runtimes' /metrics collector contexts. Main, after the
 *        metrics registry is destroyed.
 */
void sq_runtimes_free_collectors(sq_daemon_t *daemon);

#endif /* SQ_EXECUTOR_INT_H */
