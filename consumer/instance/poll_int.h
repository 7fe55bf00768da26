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

#include <stddef.h>

#include "common.h"
#include "daemon.h"

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
