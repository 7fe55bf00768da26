/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h: the instance's HTTP server (libmicrohttpd): exact-path routes
 * for /healthz, /readyz, /metrics, /status, /events, the live page and the
 * admin actions. An unknown path is 404, a method the route does not allow
 * is 405 with an Allow header, a body over 64 KiB is 413. Optional TLS.
 *
 * DESIGN
 *   libmicrohttpd runs one internal polling thread; route handlers run on
 *   it and must only read snapshots or atomics of the daemon (never block
 *   on the poll thread or an executor). Long-lived responses (Server-Sent
 *   Events) are streams: a read callback that returns 0 when it has
 *   nothing parks its connection (MHD suspend) until sq_http_streams_wake()
 *   or the one-second stream tick, so an idle stream costs no thread and
 *   no CPU. Binds loopback unless configured otherwise. Connection limits
 *   and a per-connection timeout keep slow clients from starving others.
 */
#ifndef SQ_HTTP_H
#define SQ_HTTP_H

#include <sys/types.h>

#include "common.h"

typedef struct sq_http_s sq_http_t;
/** The request being answered (opaque; see sq_http_request_*()). */
typedef struct sq_http_request_s sq_http_request_t;

#define SQ_HTTP_HEADERS_MAX 4
/** What a stream read callback returns at the end of its stream. */
#define SQ_HTTP_STREAM_END ((ssize_t)-1)

/**
 * @brief Fills @p buf with the next bytes of a streamed body. Runs on the
 *        HTTP thread; must not block.
 * @returns bytes written (1..@p size), 0 when nothing is ready yet (the
 *          connection is parked until sq_http_streams_wake()), or
 *          SQ_HTTP_STREAM_END.
 */
typedef ssize_t(sq_http_stream_read_t)(void *stream, char *buf, size_t size);
/** @brief Frees a stream once its connection is done. HTTP thread. */
typedef void(sq_http_stream_free_t)(void *stream);

/** What a route handler fills in. */
typedef struct sq_http_response_s {
        int status;               /**< HTTP status, default 200 */
        const char *content_type; /**< static string, default text/plain */
        char *body;               /**< sq_malloc()ed; the server frees it */
        size_t body_len;
        /** The request (borrowed, valid during the handler call only). */
        const sq_http_request_t *req;
        /** Extra headers, owned copies: set with sq_http_response_header. */
        char *headers[SQ_HTTP_HEADERS_MAX][2];
        int headers_cnt;
        /** A streamed body instead of @p body: the server takes ownership
         *  of @p stream and frees it with @p stream_free. */
        void *stream;
        sq_http_stream_read_t *stream_read;
        sq_http_stream_free_t *stream_free;
} sq_http_response_t;

/**
 * @brief A route handler. Runs on the HTTP thread.
 * @param method "GET", "POST", ...; @p path the request path; both
 *        borrowed for the call. resp->req gives headers and arguments.
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
 * @brief Serves HTTPS instead of HTTP. Call before sq_http_start().
 * @param cert_pem, key_pem PEM text (borrowed; copied).
 * @returns SQ_OK, or SQ_ERR_UNSUPPORTED when libmicrohttpd was built
 *          without TLS, with @p errstr saying so.
 */
sq_err_t sq_http_set_tls(sq_http_t *http, const char *cert_pem,
                         const char *key_pem, char *errstr, size_t errstr_size);

/**
 * @brief Registers @p handler for the exact @p path, allowing the
 *        comma-separated @p methods ("GET" or "GET,HEAD,POST").
 *        Call before sq_http_start().
 */
void sq_http_route(sq_http_t *http, const char *path, const char *methods,
                   sq_http_handler_t *handler, void *opaque);

/**
 * @brief Caps open connections: @p conn_limit in all (default 256) and
 *        @p per_ip_limit from one client address (default 64; 0 = no
 *        per-address cap). Over the per-address cap libmicrohttpd closes
 *        a new connection at once; at the overall cap it stops accepting
 *        (new ones wait in the listen backlog). Call before
 *        sq_http_start().
 */
void sq_http_set_limits(sq_http_t *http, unsigned conn_limit,
                        unsigned per_ip_limit);

/** @brief Starts listening. @returns SQ_OK or SQ_ERR_HTTP with errstr. */
sq_err_t sq_http_start(sq_http_t *http, char *errstr, size_t errstr_size);

/** @returns the bound port (after start), e.g. the ephemeral one. */
int sq_http_port(const sq_http_t *http);

/** @returns whether the server speaks TLS. */
bool sq_http_tls(const sq_http_t *http);

/**
 * @brief Resumes every parked stream so its read callback runs again.
 *        Any thread; cheap when nothing is parked.
 */
void sq_http_streams_wake(sq_http_t *http);

/** @brief Stops the server and frees it; NULL is a no-op. */
void sq_http_destroy(sq_http_t *http);

/** @returns request header @p name (case-insensitive), borrowed, or NULL. */
const char *sq_http_request_header(const sq_http_request_t *req,
                                   const char *name);
/** @returns query-string argument @p name (decoded), borrowed, or NULL. */
const char *sq_http_request_arg(const sq_http_request_t *req, const char *name);
/**
 * @brief Every value of a query-string argument given more than once
 *        (?name[]=a&name[]=b), decoded and borrowed, in order.
 * @returns how many were stored in @p values (at most @p max).
 */
size_t sq_http_request_args(const sq_http_request_t *req, const char *name,
                            const char **values, size_t max);

/**
 * @brief Helper for handlers: sets status, content type and a copy of a
 *        printf-formatted body.
 */
void sq_http_respond(sq_http_response_t *resp, int status,
                     const char *content_type, const char *fmt, ...)
    SQ_ATTR_PRINTF(4, 5);

/** @brief Adds a response header (both strings copied). */
void sq_http_response_header(sq_http_response_t *resp, const char *name,
                             const char *value);

#endif /* SQ_HTTP_H */
