/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h: the instance's HTTP server (libmicrohttpd): /healthz, /readyz,
 * /metrics, later /status, /events and the live page. Routes are exact
 * paths registered before start; an unknown path is 404, a method the
 * route does not allow is 405 with an Allow header.
 *
 * DESIGN
 *   libmicrohttpd runs its own thread (MHD_USE_INTERNAL_POLLING_THREAD with
 *   epoll); route handlers run on it and must only read snapshots or
 *   atomics of the daemon (never block on the poll thread or executor).
 *   Binds loopback unless configured otherwise. Connection limits and a
 *   per-connection timeout keep slow clients from starving the others.
 */
#ifndef SQ_HTTP_H
#define SQ_HTTP_H

#include "common.h"

typedef struct sq_http_s sq_http_t;

/** What a route handler fills in. */
typedef struct sq_http_response_s {
        int status;               /**< HTTP status, default 200 */
        const char *content_type; /**< static string, default text/plain */
        char *body;               /**< sq_malloc()ed; the server frees it */
        size_t body_len;
} sq_http_response_t;

/**
 * @brief A route handler. Runs on the HTTP thread.
 * @param method "GET", "POST", ...; @p path the request path; both
 *        borrowed for the call.
 */
typedef void(sq_http_handler_t)(void *opaque, const char *method,
                                const char *path, sq_http_response_t *resp);

/**
 * @brief Creates a server (not yet listening).
 * @param bind an IPv4/IPv6 address literal, e.g. "127.0.0.1".
 * @param port TCP port; -1 picks a free ephemeral port (see
 *        sq_http_port()). Port 0 is not valid here: "off" is the caller's
 *        business (do not create a server).
 */
sq_http_t *sq_http_new(const char *bind, int port, char *errstr,
                       size_t errstr_size);

/**
 * @brief Registers @p handler for the exact @p path, allowing the
 *        comma-separated @p methods ("GET" or "GET,HEAD,POST").
 *        Call before sq_http_start().
 */
void sq_http_route(sq_http_t *http, const char *path, const char *methods,
                   sq_http_handler_t *handler, void *opaque);

/** @brief Starts listening. @returns SQ_OK or SQ_ERR_HTTP with errstr. */
sq_err_t sq_http_start(sq_http_t *http, char *errstr, size_t errstr_size);

/** @returns the bound port (after start), e.g. the ephemeral one. */
int sq_http_port(const sq_http_t *http);

/** @brief Stops the server and frees it; NULL is a no-op. */
void sq_http_destroy(sq_http_t *http);

/**
 * @brief Helper for handlers: sets status, content type and a copy of a
 *        printf-formatted body.
 */
void sq_http_respond(sq_http_response_t *resp, int status,
                     const char *content_type, const char *fmt, ...)
    SQ_ATTR_PRINTF(4, 5);

#endif /* SQ_HTTP_H */
