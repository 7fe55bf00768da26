/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lag_int.h: the consumer lag of owned partitions and the lag refresher
 * thread (lag.c).
 *
 * DESIGN
 *   Main initializes and terminates the state and starts the refresher;
 *   the poll thread stops it (joins it) before it closes the consumer, and
 *   main again on a failed start; stop is idempotent. The refresher writes
 *   only the partitions' queried watermarks (atomics) and, under the
 *   instance's snap_lock, their lag.
 */
#ifndef SQ_LAG_INT_H
#define SQ_LAG_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "common.h"
#include "daemon.h"
#include "partitions_int.h"

/** The lag refresher thread (lag.refresh.interval.ms). */
typedef struct sq_lag_s {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond; /* CLOCK_MONOTONIC; signalled on stop */
        bool stop;           /* under lock */
        bool started;        /* main; poll thread on its way out */
} sq_lag_t;

/** @brief Initializes the refresher's lock and condition. Main. */
void sq_lag_init(sq_daemon_t *daemon);

/** @brief Destroys what sq_lag_init() made. Main, refresher stopped. */
void sq_lag_term(sq_daemon_t *daemon);

/**
 * @brief Starts the refresher (not with lag.refresh.interval.ms=0).
 * @returns SQ_OK, or SQ_ERR_IO with @p errstr set.
 */
sq_err_t sq_lag_start(sq_daemon_t *daemon, char *errstr, size_t errstr_size);

/** @brief Stops and joins the refresher; idempotent. */
void sq_lag_stop(sq_daemon_t *daemon);

/**
 * @brief Recomputes part->lag and part->snap_high from the snapshot's
 *        position and the newer of the fetched and queried watermarks.
 * @locks the caller holds snap_lock
 */
void sq_lag_compute(sq_partition_t *part);

#endif /* SQ_LAG_INT_H */
