/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status.h: what an operator sees of one instance over HTTP besides
 * /metrics: GET /status (a JSON snapshot), GET /events (Server-Sent Events
 * from the event ring, or a JSON page of it) and the live page at GET /
 * (HTML, JS and CSS from consumer/www/, embedded at build time).
 *
 * DESIGN
 *   Everything here runs on the HTTP thread and reads only atomics, the
 *   agents' and scheduler's thread-safe getters, the metrics registry and
 *   the partition snapshots under the daemon's snap_lock, which the poll
 *   thread refreshes every commit interval. An /events client is a stream
 *   (http.h) with a cursor into the ring, a token bucket
 *   (http.events.rate per second) and a bounded buffer of rendered text:
 *   a client more than one second's worth of events behind skips ahead,
 *   and what it skipped is counted in swarmq_events_dropped_total and
 *   announced to it as an `event: dropped`. So neither a storm nor a slow
 *   reader grows memory: the ring is fixed, each client holds at most one
 *   batch, and the number of clients is capped (http.events.clients).
 */
#ifndef SQ_STATUS_H
#define SQ_STATUS_H

#include "daemon_int.h"

/**
 * @brief Registers GET /status, /events, / and the page's assets on the
 *        daemon's HTTP server. Call before sq_http_start().
 */
void sq_status_routes(sq_daemon_t *daemon);

/**
 * @brief Registers swarmq_events_dropped_total and swarmq_events_clients.
 */
void sq_status_register_metrics(sq_daemon_t *daemon);

/**
 * @brief Renders the /status snapshot.
 * @returns a NUL-terminated JSON document (caller owns, sq_free()).
 */
char *sq_status_json(sq_daemon_t *daemon, size_t *lenp);

/**
 * @brief The ring's notify callback: wakes parked /events streams.
 * @param opaque the daemon.
 */
void sq_status_events_notify(void *opaque);

#endif /* SQ_STATUS_H */
