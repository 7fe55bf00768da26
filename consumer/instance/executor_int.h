/* SPDX-License-Identifier: Apache-2.0 */
/*
 * executor_int.h: the executor threads (executor.c), and the I/O loop
 * that runs the out-of-process agents (their runtimes: runtimes_int.h).
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
        /* The out-of-process agents: the I/O loop, its codec, and the
         * exec and pool runtimes (runtimes.c). Main creates and destroys
         * them; the I/O loop thread runs them. */
        sq_ioloop_t *ioloop;
        sq_codec_t *io_codec;
        struct sq_runtimes_s *runtimes;
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

#endif /* SQ_EXECUTOR_INT_H */
