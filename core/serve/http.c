/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c: the instance's HTTP server on libmicrohttpd (MHD): exact-path
 * routing, 404/405/413 answers, and the response plumbing for handlers.
 *
 * DESIGN
 *   MHD runs one internal polling thread (poll(2): at most a few hundred
 *   connections, and MHD's poll path is the one suspend/resume is most
 *   used with); every route handler runs on that thread. The route
 *   table is filled before sq_http_start() and read-only afterwards, so the
 *   HTTP thread reads it without a lock. MHD's own error log goes through
 *   SQ_LOG; while MHD_start_daemon() runs on the caller's thread its last
 *   message is also kept so a failed start can say why (address in use).
 *
 *   A request is answered once its whole body has arrived: MHD calls the
 *   access handler first with the headers, then with body chunks, then
 *   once more with none. Bodies are not used yet; they are counted and
 *   discarded, and one larger than HTTP_BODY_MAX is answered 413 (at once
 *   when Content-Length says so, else after the last chunk). The per-request
 *   state is freed by MHD's completion callback.
 *
 *   Ownership: a handler's body is sq_malloc()ed (malloc) and handed to MHD
 *   with MHD_RESPMEM_MUST_FREE, which releases it with free() once sent.
 *   Limits (connections, per-IP connections, per-connection memory and an
 *   idle timeout) keep slow or greedy clients from starving the others: a
 *   client trickling one byte a second holds one connection, never the
 *   thread, because MHD reads whatever has arrived and moves on.
 *
 *   Streams (SSE): a handler may answer with a read callback instead of a
 *   body. When the callback has nothing, its connection is parked: marked
 *   under streams_lock, then MHD_suspend_connection(). sq_http_streams_wake
 *   (any thread) bumps wake_gen and resumes every parked connection under
 *   the same lock. A reader that saw wake_gen change between its read and
 *   its park reads once more before parking (the wake-up it would miss
 *   already happened); a resume that reaches MHD before the suspend
 *   cancels the suspend (MHD keeps a `resuming` flag). A wake-up that
 *   slips past the second read costs at most one tick of latency, never
 *   a lost event, and a storm of wake-ups never makes a parked stream
 *   spin. A ticker thread wakes parked streams once a
 *   second while any exist, for keep-alives and rate-limit refills, and
 *   sleeps on a condvar when there are none. Before MHD stops, every
 *   stream is woken and ends (MHD must not stop with suspended
 *   connections). A stream's state is freed by MHD's response free
 *   callback, which unlinks it first.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "list.h"

#define HTTP_MAX_ROUTES     32
#define HTTP_MAX_METHODS    8
#define HTTP_BODY_MAX       (64 * 1024)
#define HTTP_CONN_TIMEOUT_S 10
#define HTTP_CONN_MEMORY    (32 * 1024)
#define HTTP_DEFAULT_CTYPE  "text/plain; charset=utf-8"
#define HTTP_STREAM_BLOCK   8192 /* MHD's buffer for one stream read */
#define HTTP_STREAM_TICK_MS 1000 /* parked streams woken this often */

typedef struct http_route_s {
        char *path;                      /* owned */
        char *methods[HTTP_MAX_METHODS]; /* owned, upper case */
        int methods_cnt;
        char *allow; /* owned: the Allow header value */
        sq_http_handler_t *handler;
        void *opaque; /* borrowed */
} http_route_t;

/* Per-request state, freed by on_completed(). */
typedef struct http_req_s {
        size_t body_len;
        bool too_large;
        bool answered;
} http_req_t;

struct sq_http_request_s {
        struct MHD_Connection *conn; /* borrowed */
};

/* A streamed response's state (see DESIGN). */
typedef struct http_stream_s {
        struct sq_http_s *http;
        struct MHD_Connection *conn; /* borrowed from MHD */
        void *stream;                /* owned: freed by free_cb */
        sq_http_stream_read_t *read_cb;
        sq_http_stream_free_t *free_cb;
        bool parked; /* under streams_lock */
        struct http_stream_s *prev, *next;
} http_stream_t;

struct sq_http_s {
        struct MHD_Daemon *mhd;
        char *tls_cert;               /* owned PEM, NULL: plain HTTP */
        char *tls_key;                /* owned PEM */
        struct sockaddr_storage addr; /* port 0 for ephemeral */
        char bind[INET6_ADDRSTRLEN];
        int port; /* as configured (-1) until started, then bound */
        http_route_t routes[HTTP_MAX_ROUTES];
        int routes_cnt;
        unsigned conn_limit;   /* open connections, all clients */
        unsigned per_ip_limit; /* from one address; 0 = none */
        pthread_t starter;     /* the thread in sq_http_start() */
        char start_error[256]; /* MHD's last message on that thread */

        /* Streams: the list, parked marks and the ticker (see DESIGN). */
        pthread_mutex_t streams_lock;
        pthread_cond_t streams_cond; /* the ticker waits on it */
        http_stream_t *streams;      /* under streams_lock */
        int parked_cnt;              /* under streams_lock */
        atomic_uint_fast64_t wake_gen;
        atomic_bool stopping;
        pthread_t ticker;
        bool ticker_started;
};

/*
 * MHD log
 */

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        sq_http_t *http = cls;
        char msg[512];
        size_t len;

        vsnprintf(msg, sizeof(msg), fmt, ap);
        len = strlen(msg);
        while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
                msg[--len] = '\0';
        /* Only the starting thread writes and reads start_error (MHD's
         * own thread is never it), so no lock is needed. */
        if (pthread_equal(pthread_self(), http->starter))
                sq_strlcpy(http->start_error, msg, sizeof(http->start_error));
        SQ_LOG(SQ_LOG_WARNING, "HTTP", "libmicrohttpd: %s", msg);
}

/*
 * Construction and routes
 */

sq_http_t *sq_http_new(const char *bind, int port, char *errstr,
                       size_t errstr_size) {
        sq_http_t *http           = sq_calloc(1, sizeof(*http));
        struct sockaddr_in *sin   = (struct sockaddr_in *)&http->addr;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&http->addr;
        uint16_t nport;

        if (port != -1 && (port < 1 || port > 65535)) {
                sq_errstr_set(errstr, errstr_size,
                              "invalid HTTP port %d: expected 1..65535, or "
                              "-1 for an ephemeral port",
                              port);
                goto fail;
        }
        nport = htons(port == -1 ? 0 : (uint16_t)port);
        if (bind && inet_pton(AF_INET, bind, &sin->sin_addr) == 1) {
                sin->sin_family = AF_INET;
                sin->sin_port   = nport;
        } else if (bind && inet_pton(AF_INET6, bind, &sin6->sin6_addr) == 1) {
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port   = nport;
        } else {
                sq_errstr_set(errstr, errstr_size,
                              "invalid HTTP bind address \"%s\": expected an "
                              "IPv4 or IPv6 address literal such as "
                              "127.0.0.1 or ::1",
                              bind ? bind : "(null)");
                goto fail;
        }
        sq_strlcpy(http->bind, bind, sizeof(http->bind));
        http->port         = port;
        http->conn_limit   = 256;
        http->per_ip_limit = 64;
        pthread_mutex_init(&http->streams_lock, NULL);
        pthread_cond_init(&http->streams_cond, NULL);
        return http;

fail:
        sq_free(http);
        return NULL;
}

sq_err_t sq_http_set_tls(sq_http_t *http, const char *cert_pem,
                         const char *key_pem, char *errstr,
                         size_t errstr_size) {
        sq_assert(!http->mhd && cert_pem && key_pem);
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
                sq_errstr_set(errstr, errstr_size,
                              "HTTPS requested (http.tls.cert) but this "
                              "libmicrohttpd was built without TLS support");
                return SQ_ERR_UNSUPPORTED;
        }
        sq_free(http->tls_cert);
        sq_free(http->tls_key);
        http->tls_cert = sq_strdup(cert_pem);
        http->tls_key  = sq_strdup(key_pem);
        return SQ_OK;
}

bool sq_http_tls(const sq_http_t *http) {
        return http->tls_cert != NULL;
}

void sq_http_route(sq_http_t *http, const char *path, const char *methods,
                   sq_http_handler_t *handler, void *opaque) {
        http_route_t *route;
        const char *p = methods;
        bool has_get = false, has_head = false;
        size_t allow_size = 1;
        int i;

        sq_assert(!http->mhd);
        sq_assert(http->routes_cnt < HTTP_MAX_ROUTES);
        sq_assert(path && path[0] == '/' && methods && handler);
        for (i = 0; i < http->routes_cnt; i++)
                sq_assert(strcmp(http->routes[i].path, path) != 0);

        route          = &http->routes[http->routes_cnt++];
        route->path    = sq_strdup(path);
        route->handler = handler;
        route->opaque  = opaque;

        /* "GET, head,POST" -> {"GET", "HEAD", "POST"} */
        while (*p) {
                const char *end;
                size_t len;
                char *method;

                while (*p == ' ' || *p == ',')
                        p++;
                end = p;
                while (*end && *end != ',' && *end != ' ')
                        end++;
                if (end == p)
                        break;
                len    = (size_t)(end - p);
                method = sq_strndup(p, len);
                for (i = 0; method[i]; i++)
                        if (method[i] >= 'a' && method[i] <= 'z')
                                method[i] = (char)(method[i] - 'a' + 'A');
                sq_assert(route->methods_cnt < HTTP_MAX_METHODS - 1);
                route->methods[route->methods_cnt++] = method;
                has_get |= !strcmp(method, MHD_HTTP_METHOD_GET);
                has_head |= !strcmp(method, MHD_HTTP_METHOD_HEAD);
                p = end;
        }
        sq_assert(route->methods_cnt > 0);
        /* HEAD is allowed wherever GET is; MHD drops the body. */
        if (has_get && !has_head)
                route->methods[route->methods_cnt++] =
                    sq_strdup(MHD_HTTP_METHOD_HEAD);

        for (i = 0; i < route->methods_cnt; i++)
                allow_size += strlen(route->methods[i]) + 2;
        route->allow    = sq_malloc(allow_size);
        route->allow[0] = '\0';
        for (i = 0; i < route->methods_cnt; i++) {
                size_t len = strlen(route->allow);
                snprintf(route->allow + len, allow_size - len, "%s%s",
                         i ? ", " : "", route->methods[i]);
        }
}

/*
 * Request handling (MHD's thread)
 */

static const http_route_t *route_find(const sq_http_t *http, const char *path) {
        int i;

        for (i = 0; i < http->routes_cnt; i++)
                if (!strcmp(http->routes[i].path, path))
                        return &http->routes[i];
        return NULL;
}

static bool route_allows(const http_route_t *route, const char *method) {
        int i;

        for (i = 0; i < route->methods_cnt; i++)
                if (!strcmp(route->methods[i], method))
                        return true;
        return false;
}

/*
 * Streams (MHD's thread, except sq_http_streams_wake)
 */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
        http_stream_t *hs = cls;
        sq_http_t *http   = hs->http;
        int attempt;

        (void)pos;
        for (attempt = 0;; attempt++) {
                uint64_t gen = atomic_load(&http->wake_gen);
                ssize_t n;

                if (atomic_load(&http->stopping))
                        return MHD_CONTENT_READER_END_OF_STREAM;
                n = hs->read_cb(hs->stream, buf, max);
                if (n > 0)
                        return n;
                if (n < 0)
                        return MHD_CONTENT_READER_END_OF_STREAM;
                pthread_mutex_lock(&http->streams_lock);
                if (attempt == 0 && atomic_load(&http->wake_gen) != gen) {
                        /* Woken since the read: read once more. (Only
                         * once: under a storm of wake-ups a stream that
                         * is rate-limited must park, not spin; a wake-up
                         * missed by the second read is caught by the
                         * tick.) */
                        pthread_mutex_unlock(&http->streams_lock);
                        continue;
                }
                hs->parked = true;
                http->parked_cnt++;
                pthread_mutex_unlock(&http->streams_lock);
                MHD_suspend_connection(hs->conn);
                return 0;
        }
}

static void stream_free(void *cls) {
        http_stream_t *hs = cls;
        sq_http_t *http   = hs->http;

        pthread_mutex_lock(&http->streams_lock);
        if (hs->parked)
                http->parked_cnt--;
        SQ_LIST_UNLINK(http->streams, hs);
        pthread_mutex_unlock(&http->streams_lock);
        hs->free_cb(hs->stream);
        sq_free(hs);
}

void sq_http_streams_wake(sq_http_t *http) {
        http_stream_t *hs;

        pthread_mutex_lock(&http->streams_lock);
        atomic_fetch_add(&http->wake_gen, 1);
        if (http->parked_cnt > 0) {
                for (hs = http->streams; hs; hs = hs->next) {
                        if (!hs->parked)
                                continue;
                        hs->parked = false;
                        MHD_resume_connection(hs->conn);
                }
                http->parked_cnt = 0;
        }
        pthread_mutex_unlock(&http->streams_lock);
}

/* Wakes parked streams once per tick while any stream exists. */
static void *ticker_main(void *arg) {
        sq_http_t *http = arg;

        pthread_mutex_lock(&http->streams_lock);
        while (!atomic_load(&http->stopping)) {
                struct timespec ts;
                if (!http->streams) {
                        pthread_cond_wait(&http->streams_cond,
                                          &http->streams_lock);
                        continue;
                }
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += (long)HTTP_STREAM_TICK_MS * 1000000L;
                ts.tv_sec += ts.tv_nsec / 1000000000L;
                ts.tv_nsec %= 1000000000L;
                pthread_cond_timedwait(&http->streams_cond, &http->streams_lock,
                                       &ts);
                if (atomic_load(&http->stopping))
                        break;
                pthread_mutex_unlock(&http->streams_lock);
                sq_http_streams_wake(http);
                pthread_mutex_lock(&http->streams_lock);
        }
        pthread_mutex_unlock(&http->streams_lock);
        return NULL;
}

/* Creates the MHD response for a handler's stream (takes ownership of
 * the stream in every case). @returns NULL on failure. */
static struct MHD_Response *stream_response(sq_http_t *http,
                                            struct MHD_Connection *conn,
                                            sq_http_response_t *resp) {
        http_stream_t *hs = sq_calloc(1, sizeof(*hs));
        struct MHD_Response *mresp;

        hs->http     = http;
        hs->conn     = conn;
        hs->stream   = resp->stream;
        hs->read_cb  = resp->stream_read;
        hs->free_cb  = resp->stream_free;
        resp->stream = NULL;
        pthread_mutex_lock(&http->streams_lock);
        SQ_LIST_PUSH(http->streams, hs);
        pthread_cond_signal(&http->streams_cond);
        pthread_mutex_unlock(&http->streams_lock);
        mresp = MHD_create_response_from_callback(
            MHD_SIZE_UNKNOWN, HTTP_STREAM_BLOCK, stream_reader, hs,
            stream_free);
        if (!mresp)
                stream_free(hs);
        return mresp;
}

/* Queues @p body (takes ownership; NULL for none), or @p resp's stream,
 * with our headers and @p resp's. */
static enum MHD_Result queue(sq_http_t *http, struct MHD_Connection *conn,
                             int status, const char *content_type, char *body,
                             size_t body_len, const char *allow,
                             sq_http_response_t *resp) {
        struct MHD_Response *mresp;
        enum MHD_Result ret;
        int i;

        if (resp && resp->stream) {
                sq_free(body);
                mresp = stream_response(http, conn, resp);
        } else if (body && body_len > 0) {
                mresp = MHD_create_response_from_buffer(body_len, body,
                                                        MHD_RESPMEM_MUST_FREE);
        } else {
                sq_free(body);
                body  = NULL;
                mresp = MHD_create_response_from_buffer(0, NULL,
                                                        MHD_RESPMEM_PERSISTENT);
        }
        if (!mresp) {
                SQ_LOG(SQ_LOG_ERR, "HTTP",
                       "could not create a response of %zu bytes", body_len);
                sq_free(body);
                return MHD_NO;
        }
        MHD_add_response_header(mresp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                content_type ? content_type
                                             : HTTP_DEFAULT_CTYPE);
        MHD_add_response_header(mresp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                "no-store");
        MHD_add_response_header(mresp, "X-Content-Type-Options", "nosniff");
        if (allow)
                MHD_add_response_header(mresp, MHD_HTTP_HEADER_ALLOW, allow);
        for (i = 0; resp && i < resp->headers_cnt; i++)
                MHD_add_response_header(mresp, resp->headers[i][0],
                                        resp->headers[i][1]);
        ret = MHD_queue_response(conn, (unsigned int)status, mresp);
        MHD_destroy_response(mresp);
        return ret;
}

static void response_headers_free(sq_http_response_t *resp) {
        int i;

        for (i = 0; i < resp->headers_cnt; i++) {
                sq_free(resp->headers[i][0]);
                sq_free(resp->headers[i][1]);
        }
        resp->headers_cnt = 0;
}

/* A short printf-formatted text/plain answer. */
static enum MHD_Result queue_text(struct MHD_Connection *conn, int status,
                                  const char *allow, const char *fmt, ...)
    SQ_ATTR_PRINTF(4, 5);

static enum MHD_Result queue_text(struct MHD_Connection *conn, int status,
                                  const char *allow, const char *fmt, ...) {
        char *body;
        va_list ap;
        int len;

        va_start(ap, fmt);
        len = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (len < 0)
                len = 0;
        body = sq_malloc((size_t)len + 1);
        va_start(ap, fmt);
        vsnprintf(body, (size_t)len + 1, fmt, ap);
        va_end(ap);
        return queue(NULL, conn, status, NULL, body, (size_t)len, allow, NULL);
}

static enum MHD_Result dispatch(sq_http_t *http, struct MHD_Connection *conn,
                                const char *method, const char *path) {
        const http_route_t *route = route_find(http, path);
        sq_http_request_t req     = {.conn = conn};
        sq_http_response_t resp   = {.status = 200, .req = &req};
        enum MHD_Result ret;

        if (!route)
                return queue_text(conn, MHD_HTTP_NOT_FOUND, NULL,
                                  "not found: %s\n", path);
        if (!route_allows(route, method))
                return queue_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                  route->allow,
                                  "method not allowed: %s %s (allowed: %s)\n",
                                  method, path, route->allow);

        route->handler(route->opaque, method, path, &resp);
        sq_assert(resp.body || resp.body_len == 0);
        sq_assert(!resp.stream || (resp.stream_read && resp.stream_free));
        if (resp.status < 100 || resp.status > 599) {
                SQ_LOG(SQ_LOG_ERR, "HTTP",
                       "handler for %s returned invalid status %d", path,
                       resp.status);
                sq_free(resp.body);
                if (resp.stream)
                        resp.stream_free(resp.stream);
                response_headers_free(&resp);
                return queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
                                  "internal error: invalid status\n");
        }
        ret = queue(http, conn, resp.status, resp.content_type, resp.body,
                    resp.body_len, NULL, &resp);
        response_headers_free(&resp);
        return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
        sq_http_t *http = cls;
        http_req_t *req = *req_cls;

        (void)version;
        (void)upload_data;

        if (!req) {
                /* Headers only: set up state, refuse big bodies early. */
                const char *clen = MHD_lookup_connection_value(
                    conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                int64_t declared;

                req      = sq_calloc(1, sizeof(*req));
                *req_cls = req;
                if (clen &&
                    sq_parse_int64(clen, 0, INT64_MAX, &declared) == SQ_OK &&
                    declared > HTTP_BODY_MAX) {
                        req->answered = true;
                        return queue_text(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                                          NULL,
                                          "request body too large: %lld "
                                          "bytes (limit %d)\n",
                                          (long long)declared, HTTP_BODY_MAX);
                }
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                /* Bodies are unused for now: count and discard. */
                req->body_len += *upload_data_size;
                if (req->body_len > HTTP_BODY_MAX)
                        req->too_large = true;
                *upload_data_size = 0;
                return MHD_YES;
        }

        if (req->answered)
                return MHD_YES;
        req->answered = true;
        if (req->too_large)
                return queue_text(conn, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                                  "request body too large: more than %d "
                                  "bytes\n",
                                  HTTP_BODY_MAX);
        return dispatch(http, conn, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
        (void)cls;
        (void)conn;
        (void)toe;
        sq_free(*req_cls);
        *req_cls = NULL;
}

/*
 * Lifecycle
 */

void sq_http_set_limits(sq_http_t *http, unsigned conn_limit,
                        unsigned per_ip_limit) {
        http->conn_limit   = conn_limit;
        http->per_ip_limit = per_ip_limit;
}

sq_err_t sq_http_start(sq_http_t *http, char *errstr, size_t errstr_size) {
        unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD |
                             MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
        struct MHD_OptionItem tls_opts[3] = {{MHD_OPTION_END, 0, NULL},
                                             {MHD_OPTION_END, 0, NULL},
                                             {MHD_OPTION_END, 0, NULL}};
        const union MHD_DaemonInfo *info;
        struct MHD_Daemon *mhd = NULL;
        sq_err_t err           = SQ_OK;
        int perr;

        sq_assert(!http->mhd);
        if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES)
                flags |= MHD_USE_POLL;
        if (http->tls_cert) {
                flags |= MHD_USE_TLS;
                tls_opts[0].option    = MHD_OPTION_HTTPS_MEM_KEY;
                tls_opts[0].ptr_value = http->tls_key;
                tls_opts[1].option    = MHD_OPTION_HTTPS_MEM_CERT;
                tls_opts[1].ptr_value = http->tls_cert;
        }
        /* MHD sizes the SOCK_ADDR by this flag. */
        if (http->addr.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;

        http->starter        = pthread_self();
        http->start_error[0] = '\0';
        /* The logger goes first so MHD logs nothing on its own. The port
         * argument only names the port in MHD's messages: SOCK_ADDR wins. */
        mhd = MHD_start_daemon(
            flags, (uint16_t)(http->port == -1 ? 0 : http->port), NULL, NULL,
            on_request, http, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, http,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&http->addr,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_CONN_TIMEOUT_S,
            MHD_OPTION_CONNECTION_LIMIT, http->conn_limit,
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, http->per_ip_limit,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
            MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
        if (!mhd) {
                char port_desc[32];
                if (http->port == -1)
                        sq_strlcpy(port_desc, "an ephemeral port",
                                   sizeof(port_desc));
                else
                        snprintf(port_desc, sizeof(port_desc), "port %d",
                                 http->port);
                sq_errstr_set(errstr, errstr_size,
                              "could not start the HTTP server on %s %s: %s",
                              http->bind, port_desc,
                              http->start_error[0] ? http->start_error
                                                   : "libmicrohttpd failed");
                err = SQ_ERR_HTTP;
                goto done;
        }

        info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
        if (!info || info->port == 0) {
                sq_errstr_set(errstr, errstr_size,
                              "HTTP server on %s started but its bound port "
                              "is unknown",
                              http->bind);
                err = SQ_ERR_HTTP;
                goto done;
        }
        if ((perr = pthread_create(&http->ticker, NULL, ticker_main, http))) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot start the HTTP stream ticker: %s",
                              strerror(perr));
                err = SQ_ERR_HTTP;
                goto done;
        }
        http->ticker_started = true;
        http->port           = (int)info->port;
        http->mhd            = mhd;
        mhd                  = NULL;
        SQ_LOG(SQ_LOG_INFO, "HTTP", "listening bind=%s port=%d tls=%s",
               http->bind, http->port, http->tls_cert ? "on" : "off");

done:
        if (mhd)
                MHD_stop_daemon(mhd);
        return err;
}

/**
 * @brief The bound port after a successful sq_http_start(), else -1.
 */
int sq_http_port(const sq_http_t *http) {
        return http->mhd ? http->port : -1;
}

void sq_http_destroy(sq_http_t *http) {
        int i, m;

        if (!http)
                return;
        /* Streams end first: MHD must not stop with suspended
         * connections, and the ticker must not wake a stopped server. */
        pthread_mutex_lock(&http->streams_lock);
        atomic_store(&http->stopping, true);
        pthread_cond_broadcast(&http->streams_cond);
        pthread_mutex_unlock(&http->streams_lock);
        if (http->ticker_started)
                pthread_join(http->ticker, NULL);
        if (http->mhd) {
                sq_http_streams_wake(http);
                MHD_stop_daemon(http->mhd);
        }
        sq_assert(!http->streams);
        pthread_cond_destroy(&http->streams_cond);
        pthread_mutex_destroy(&http->streams_lock);
        sq_free(http->tls_cert);
        sq_free(http->tls_key);
        for (i = 0; i < http->routes_cnt; i++) {
                http_route_t *route = &http->routes[i];
                sq_free(route->path);
                sq_free(route->allow);
                for (m = 0; m < route->methods_cnt; m++)
                        sq_free(route->methods[m]);
        }
        sq_free(http);
}

const char *sq_http_request_header(const sq_http_request_t *req,
                                   const char *name) {
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *sq_http_request_arg(const sq_http_request_t *req,
                                const char *name) {
        return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
                                           name);
}

typedef struct args_iter_s {
        const char *name;
        const char **out;
        size_t max;
        size_t cnt;
} args_iter_t;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind,
                                   const char *key, const char *value) {
        args_iter_t *it = cls;
        (void)kind;
        if (value && !strcmp(key, it->name) && it->cnt < it->max)
                it->out[it->cnt++] = value;
        return MHD_YES;
}

size_t sq_http_request_args(const sq_http_request_t *req, const char *name,
                            const char **values, size_t max) {
        args_iter_t it = {name, values, max, 0};
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_arg,
                                  &it);
        return it.cnt;
}

void sq_http_response_header(sq_http_response_t *resp, const char *name,
                             const char *value) {
        sq_assert(resp->headers_cnt < SQ_HTTP_HEADERS_MAX);
        resp->headers[resp->headers_cnt][0] = sq_strdup(name);
        resp->headers[resp->headers_cnt][1] = sq_strdup(value);
        resp->headers_cnt++;
}

void sq_http_respond(sq_http_response_t *resp, int status,
                     const char *content_type, const char *fmt, ...) {
        va_list ap;
        int len;

        va_start(ap, fmt);
        len = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (len < 0)
                len = 0;
        sq_free(resp->body);
        resp->body = sq_malloc((size_t)len + 1);
        va_start(ap, fmt);
        vsnprintf(resp->body, (size_t)len + 1, fmt, ap);
        va_end(ap);
        resp->body_len     = (size_t)len;
        resp->status       = status;
        resp->content_type = content_type;
}
