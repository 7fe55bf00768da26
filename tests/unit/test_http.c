/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_http.c: the HTTP server as a client sees it on the wire: status
 * lines, headers and bodies for routed, unknown and disallowed requests,
 * HEAD, oversized bodies, bind errors and ephemeral ports, request
 * arguments and headers, extra response headers, and streams that park
 * and wake (the /events plumbing). The client is a
 * raw socket speaking HTTP/1.1 with "Connection: close".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http.h"

/*
 * A tiny HTTP/1.1 client
 */

typedef struct reply_s {
        char raw[256 * 1024]; /* the whole response, NUL-terminated */
        size_t raw_len;
        int status;
        const char *body; /* into raw */
        size_t body_len;
} reply_t;

/* Sends @p request to @p host:@p port and reads until the server closes.
 * @returns 0, or -1 when nothing parseable came back. */
static int http_exchange(const char *host, int port, const char *request,
                         size_t request_len, reply_t *reply) {
        struct sockaddr_storage ss = {0};
        struct sockaddr_in *sin    = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *sin6  = (struct sockaddr_in6 *)&ss;
        struct timeval tv          = {.tv_sec = 5};
        socklen_t ss_len;
        const char *hdr_end;
        size_t sent = 0;
        int fd;

        memset(reply, 0, sizeof(*reply));
        if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
                sin->sin_family = AF_INET;
                sin->sin_port   = htons((uint16_t)port);
                ss_len          = sizeof(*sin);
        } else {
                assert_int_equal(inet_pton(AF_INET6, host, &sin6->sin6_addr),
                                 1);
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port   = htons((uint16_t)port);
                ss_len            = sizeof(*sin6);
        }
        fd = socket(ss.ss_family, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *)&ss, ss_len) != 0) {
                close(fd);
                return -1;
        }
        while (sent < request_len) {
                ssize_t r =
                    send(fd, request + sent, request_len - sent, MSG_NOSIGNAL);
                if (r <= 0)
                        break; /* the server may answer early and close */
                sent += (size_t)r;
        }
        for (;;) {
                ssize_t r = recv(fd, reply->raw + reply->raw_len,
                                 sizeof(reply->raw) - 1 - reply->raw_len, 0);
                if (r <= 0)
                        break;
                reply->raw_len += (size_t)r;
                if (reply->raw_len == sizeof(reply->raw) - 1)
                        break;
        }
        close(fd);
        reply->raw[reply->raw_len] = '\0';
        if (sscanf(reply->raw, "HTTP/1.1 %d ", &reply->status) != 1)
                return -1;
        if (!(hdr_end = strstr(reply->raw, "\r\n\r\n")))
                return -1;
        reply->body     = hdr_end + 4;
        reply->body_len = reply->raw_len - (size_t)(reply->body - reply->raw);
        return 0;
}

static int http_get(const char *host, int port, const char *method,
                    const char *path, reply_t *reply) {
        char request[512];
        int len = snprintf(request, sizeof(request),
                           "%s %s HTTP/1.1\r\nHost: test\r\n"
                           "Connection: close\r\n\r\n",
                           method, path);
        return http_exchange(host, port, request, (size_t)len, reply);
}

/* Copies header @p name's value (case-insensitive name) into @p dst.
 * @returns false when absent. */
static bool header_get(const reply_t *reply, const char *name, char *dst,
                       size_t dst_size) {
        const char *line = strstr(reply->raw, "\r\n");
        size_t name_len  = strlen(name);

        while (line && line + 2 < reply->body) {
                const char *start = line + 2;
                const char *end   = strstr(start, "\r\n");
                if (!end)
                        break;
                if ((size_t)(end - start) > name_len + 1 &&
                    !strncasecmp(start, name, name_len) &&
                    start[name_len] == ':') {
                        const char *v = start + name_len + 1;
                        size_t n;
                        while (*v == ' ')
                                v++;
                        n = SQ_MIN((size_t)(end - v), dst_size - 1);
                        memcpy(dst, v, n);
                        dst[n] = '\0';
                        return true;
                }
                line = end;
        }
        return false;
}

/*
 * Handlers
 */

typedef struct seen_s {
        pthread_mutex_t lock;
        char method[16];
        char path[64];
        int calls;
} seen_t;

static void record(seen_t *seen, const char *method, const char *path) {
        pthread_mutex_lock(&seen->lock);
        sq_strlcpy(seen->method, method, sizeof(seen->method));
        sq_strlcpy(seen->path, path, sizeof(seen->path));
        seen->calls++;
        pthread_mutex_unlock(&seen->lock);
}

static void h_hello(void *opaque, const char *method, const char *path,
                    sq_http_response_t *resp) {
        record(opaque, method, path);
        sq_http_respond(resp, 200, NULL, "hello %s\n", "world");
}

static void h_json_unavailable(void *opaque, const char *method,
                               const char *path, sq_http_response_t *resp) {
        record(opaque, method, path);
        sq_http_respond(resp, 503, "application/json", "{\"ready\":%s}",
                        "false");
}

static void h_empty(void *opaque, const char *method, const char *path,
                    sq_http_response_t *resp) {
        record(opaque, method, path);
        (void)resp; /* status 200 and no body by default */
}

static void h_bad_status(void *opaque, const char *method, const char *path,
                         sq_http_response_t *resp) {
        record(opaque, method, path);
        sq_http_respond(resp, 42, NULL, "never sent");
}

typedef struct fixture_s {
        sq_http_t *http;
        seen_t seen;
        int port;
} fixture_t;

static int setup_server(void **state) {
        fixture_t *fx = sq_calloc(1, sizeof(*fx));
        char errstr[256];

        pthread_mutex_init(&fx->seen.lock, NULL);
        fx->http = sq_http_new("127.0.0.1", -1, errstr, sizeof(errstr));
        assert_non_null(fx->http);
        assert_int_equal(sq_http_port(fx->http), -1); /* not started */
        sq_http_route(fx->http, "/hello", "GET", h_hello, &fx->seen);
        sq_http_route(fx->http, "/json", "GET", h_json_unavailable, &fx->seen);
        sq_http_route(fx->http, "/empty", "GET", h_empty, &fx->seen);
        sq_http_route(fx->http, "/submit", "post, PUT", h_hello, &fx->seen);
        sq_http_route(fx->http, "/bad", "GET", h_bad_status, &fx->seen);
        if (sq_http_start(fx->http, errstr, sizeof(errstr)) != SQ_OK)
                fail_msg("start failed: %s", errstr);
        fx->port = sq_http_port(fx->http);
        assert_true(fx->port > 0 && fx->port < 65536);
        *state = fx;
        return 0;
}

static int teardown_server(void **state) {
        fixture_t *fx = *state;
        sq_http_destroy(fx->http);
        pthread_mutex_destroy(&fx->seen.lock);
        sq_free(fx);
        return 0;
}

/*
 * Routing as seen on the wire
 */

/* Each row: a request line and what the client must see. NULL header or
 * body means "not checked"; calls is whether a handler ran. */
static const struct {
        const char *method;
        const char *path;
        int status;
        const char *body;
        const char *header;
        const char *header_value;
        bool handler_runs;
} route_cases[] = {
    {"GET", "/hello", 200, "hello world\n", "Content-Type",
     "text/plain; charset=utf-8", true},
    {"GET", "/hello", 200, "hello world\n", "Cache-Control", "no-store", true},
    {"GET", "/hello", 200, "hello world\n", "Content-Length", "12", true},
    {"GET", "/hello?verbose=1", 200, "hello world\n", NULL, NULL, true},
    {"GET", "/json", 503, "{\"ready\":false}", "Content-Type",
     "application/json", true},
    {"GET", "/empty", 200, "", "Content-Length", "0", true},
    {"GET", "/nope", 404, "not found: /nope\n", "Content-Type",
     "text/plain; charset=utf-8", false},
    {"GET", "/hello/", 404, "not found: /hello/\n", NULL, NULL, false},
    {"GET", "/", 404, "not found: /\n", NULL, NULL, false},
    {"POST", "/hello", 405,
     "method not allowed: POST /hello (allowed: GET, HEAD)\n", "Allow",
     "GET, HEAD", false},
    {"DELETE", "/submit", 405, NULL, "Allow", "POST, PUT", false},
    {"HEAD", "/submit", 405, "", "Allow", "POST, PUT", false},
    {"PUT", "/submit", 200, "hello world\n", NULL, NULL, true},
    {"HEAD", "/hello", 200, "", "Content-Type", "text/plain; charset=utf-8",
     true},
    {"GET", "/bad", 500, "internal error: invalid status\n", NULL, NULL, true},
};

static void test_routing(void **state) {
        fixture_t *fx = *state;
        static reply_t reply;
        size_t c;

        for (c = 0; c < SQ_ARRAY_SIZE(route_cases); c++) {
                char value[128];
                int calls_before;

                pthread_mutex_lock(&fx->seen.lock);
                calls_before = fx->seen.calls;
                pthread_mutex_unlock(&fx->seen.lock);

                if (http_get("127.0.0.1", fx->port, route_cases[c].method,
                             route_cases[c].path, &reply) != 0)
                        fail_msg("case %zu (%s %s): no parseable reply: %s", c,
                                 route_cases[c].method, route_cases[c].path,
                                 reply.raw);
                if (reply.status != route_cases[c].status)
                        fail_msg("case %zu (%s %s): status %d, expected "
                                 "%d:\n%s",
                                 c, route_cases[c].method, route_cases[c].path,
                                 reply.status, route_cases[c].status,
                                 reply.raw);
                if (route_cases[c].body &&
                    strcmp(reply.body, route_cases[c].body) != 0)
                        fail_msg("case %zu (%s %s): body \"%s\", expected "
                                 "\"%s\"",
                                 c, route_cases[c].method, route_cases[c].path,
                                 reply.body, route_cases[c].body);
                if (route_cases[c].header) {
                        if (!header_get(&reply, route_cases[c].header, value,
                                        sizeof(value)))
                                fail_msg("case %zu: no %s header:\n%s", c,
                                         route_cases[c].header, reply.raw);
                        assert_string_equal(value, route_cases[c].header_value);
                }
                pthread_mutex_lock(&fx->seen.lock);
                assert_int_equal(fx->seen.calls - calls_before,
                                 route_cases[c].handler_runs ? 1 : 0);
                pthread_mutex_unlock(&fx->seen.lock);
        }
}

static void test_handler_sees_method_and_path(void **state) {
        fixture_t *fx = *state;
        static reply_t reply;

        assert_int_equal(
            http_get("127.0.0.1", fx->port, "HEAD", "/hello", &reply), 0);
        assert_int_equal(reply.status, 200);
        assert_int_equal(reply.body_len, 0); /* HEAD: headers only */
        pthread_mutex_lock(&fx->seen.lock);
        assert_string_equal(fx->seen.method, "HEAD");
        assert_string_equal(fx->seen.path, "/hello");
        pthread_mutex_unlock(&fx->seen.lock);

        assert_int_equal(
            http_get("127.0.0.1", fx->port, "GET", "/hello?a=b", &reply), 0);
        pthread_mutex_lock(&fx->seen.lock);
        assert_string_equal(fx->seen.method, "GET");
        assert_string_equal(fx->seen.path, "/hello"); /* no query string */
        pthread_mutex_unlock(&fx->seen.lock);
}

static void test_small_post_body_is_accepted(void **state) {
        fixture_t *fx = *state;
        static reply_t reply;
        static const char request[] = "POST /submit HTTP/1.1\r\n"
                                      "Host: test\r\n"
                                      "Connection: close\r\n"
                                      "Content-Length: 5\r\n\r\n"
                                      "hello";

        assert_int_equal(http_exchange("127.0.0.1", fx->port, request,
                                       sizeof(request) - 1, &reply),
                         0);
        assert_int_equal(reply.status, 200);
        assert_string_equal(reply.body, "hello world\n");
        pthread_mutex_lock(&fx->seen.lock);
        assert_string_equal(fx->seen.method, "POST");
        pthread_mutex_unlock(&fx->seen.lock);
}

/* A declared Content-Length past 64 KiB is refused before the body. */
static void test_declared_large_body_is_413(void **state) {
        fixture_t *fx = *state;
        static reply_t reply;
        static const char request[] = "POST /submit HTTP/1.1\r\n"
                                      "Host: test\r\n"
                                      "Connection: close\r\n"
                                      "Content-Length: 65537\r\n\r\n";
        int calls_before;

        pthread_mutex_lock(&fx->seen.lock);
        calls_before = fx->seen.calls;
        pthread_mutex_unlock(&fx->seen.lock);
        assert_int_equal(http_exchange("127.0.0.1", fx->port, request,
                                       sizeof(request) - 1, &reply),
                         0);
        assert_int_equal(reply.status, 413);
        assert_string_equal(reply.body, "request body too large: 65537 "
                                        "bytes (limit 65536)\n");
        pthread_mutex_lock(&fx->seen.lock);
        assert_int_equal(fx->seen.calls, calls_before);
        pthread_mutex_unlock(&fx->seen.lock);
}

/* Builds a chunked POST of @p total body bytes in 4 KiB chunks. */
static char *chunked_request(size_t total, size_t *lenp) {
        size_t cap = total + total / 1024 * 16 + 512, len = 0;
        char *req = sq_malloc(cap);

        len += (size_t)snprintf(req, cap,
                                "POST /submit HTTP/1.1\r\nHost: test\r\n"
                                "Connection: close\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n");
        while (total > 0) {
                size_t n = SQ_MIN(total, (size_t)4096);
                len += (size_t)snprintf(req + len, cap - len, "%zx\r\n", n);
                memset(req + len, 'x', n);
                len += n;
                memcpy(req + len, "\r\n", 2);
                len += 2;
                total -= n;
        }
        len += (size_t)snprintf(req + len, cap - len, "0\r\n\r\n");
        *lenp = len;
        return req;
}

/* Without Content-Length the body is counted as it arrives. */
static void test_chunked_body_size_limit(void **state) {
        fixture_t *fx = *state;
        static reply_t reply;
        const struct {
                size_t size;
                int status;
        } cases[] = {{65536, 200}, {65537, 413}, {200000, 413}};
        size_t c, len;

        for (c = 0; c < SQ_ARRAY_SIZE(cases); c++) {
                char *req = chunked_request(cases[c].size, &len);
                assert_int_equal(
                    http_exchange("127.0.0.1", fx->port, req, len, &reply), 0);
                sq_free(req);
                if (reply.status != cases[c].status)
                        fail_msg("chunked body of %zu bytes: status %d, "
                                 "expected %d",
                                 cases[c].size, reply.status, cases[c].status);
        }
        assert_string_equal(reply.body, "request body too large: more than "
                                        "65536 bytes\n");
}

/*
 * Construction and binding
 */

/* Each row: bind address and port that sq_http_new() must refuse, and a
 * piece of the error sentence. */
static const struct {
        const char *bind;
        int port;
        const char *errpart;
} bad_new_cases[] = {
    {"not-an-ip", 8080, "\"not-an-ip\""},
    {"localhost", 8080, "\"localhost\""},
    {"127.0.0.256", 8080, "\"127.0.0.256\""},
    {"", 8080, "invalid HTTP bind address \"\""},
    {"127.0.0.1", 0, "invalid HTTP port 0"},
    {"127.0.0.1", -2, "invalid HTTP port -2"},
    {"127.0.0.1", 65536, "invalid HTTP port 65536"},
};

static void test_bad_bind_or_port_is_named(void **state) {
        size_t c;
        (void)state;

        for (c = 0; c < SQ_ARRAY_SIZE(bad_new_cases); c++) {
                char errstr[256] = "";
                sq_http_t *http =
                    sq_http_new(bad_new_cases[c].bind, bad_new_cases[c].port,
                                errstr, sizeof(errstr));
                assert_null(http);
                if (!strstr(errstr, bad_new_cases[c].errpart))
                        fail_msg("case %zu: errstr \"%s\" lacks \"%s\"", c,
                                 errstr, bad_new_cases[c].errpart);
        }
}

static void test_ephemeral_ports_differ(void **state) {
        char errstr[256];
        sq_http_t *a = sq_http_new("127.0.0.1", -1, errstr, sizeof(errstr));
        sq_http_t *b = sq_http_new("127.0.0.1", -1, errstr, sizeof(errstr));
        static reply_t reply;
        seen_t seen_a = {.lock = PTHREAD_MUTEX_INITIALIZER};
        seen_t seen_b = {.lock = PTHREAD_MUTEX_INITIALIZER};
        (void)state;

        assert_non_null(a);
        assert_non_null(b);
        sq_http_route(a, "/a", "GET", h_hello, &seen_a);
        sq_http_route(b, "/b", "GET", h_hello, &seen_b);
        assert_int_equal(sq_http_start(a, errstr, sizeof(errstr)), SQ_OK);
        assert_int_equal(sq_http_start(b, errstr, sizeof(errstr)), SQ_OK);
        assert_true(sq_http_port(a) > 0);
        assert_true(sq_http_port(b) > 0);
        assert_int_not_equal(sq_http_port(a), sq_http_port(b));
        /* Each port is its own server. */
        assert_int_equal(
            http_get("127.0.0.1", sq_http_port(a), "GET", "/b", &reply), 0);
        assert_int_equal(reply.status, 404);
        assert_int_equal(
            http_get("127.0.0.1", sq_http_port(b), "GET", "/b", &reply), 0);
        assert_int_equal(reply.status, 200);
        sq_http_destroy(a);
        sq_http_destroy(b);
}

static void test_port_in_use_is_reported(void **state) {
        char errstr[256], port_str[16];
        sq_http_t *a = sq_http_new("127.0.0.1", -1, errstr, sizeof(errstr));
        sq_http_t *b;
        seen_t seen = {.lock = PTHREAD_MUTEX_INITIALIZER};
        (void)state;

        sq_http_route(a, "/a", "GET", h_hello, &seen);
        assert_int_equal(sq_http_start(a, errstr, sizeof(errstr)), SQ_OK);
        b = sq_http_new("127.0.0.1", sq_http_port(a), errstr, sizeof(errstr));
        assert_non_null(b);
        errstr[0] = '\0';
        assert_int_equal(sq_http_start(b, errstr, sizeof(errstr)), SQ_ERR_HTTP);
        snprintf(port_str, sizeof(port_str), "port %d", sq_http_port(a));
        if (!strstr(errstr, "127.0.0.1") || !strstr(errstr, port_str))
                fail_msg("errstr \"%s\" does not name 127.0.0.1 %s", errstr,
                         port_str);
        assert_int_equal(sq_http_port(b), -1);
        sq_http_destroy(b); /* never started: still freed */
        sq_http_destroy(a);
        sq_http_destroy(NULL);
}

static void test_ipv6_loopback(void **state) {
        char errstr[256];
        sq_http_t *http = sq_http_new("::1", -1, errstr, sizeof(errstr));
        seen_t seen     = {.lock = PTHREAD_MUTEX_INITIALIZER};
        static reply_t reply;
        (void)state;

        assert_non_null(http);
        sq_http_route(http, "/hello", "GET", h_hello, &seen);
        if (sq_http_start(http, errstr, sizeof(errstr)) != SQ_OK) {
                sq_http_destroy(http);
                print_message("no IPv6 loopback here (%s): skipped\n", errstr);
                skip();
        }
        assert_int_equal(
            http_get("::1", sq_http_port(http), "GET", "/hello", &reply), 0);
        assert_int_equal(reply.status, 200);
        assert_string_equal(reply.body, "hello world\n");
        sq_http_destroy(http);
}

/*
 * Request accessors and extra response headers
 */

static void h_echo_request(void *opaque, const char *method, const char *path,
                           sq_http_response_t *resp) {
        const char *arg = sq_http_request_arg(resp->req, "name");
        const char *hdr = sq_http_request_header(resp->req, "X-Test");
        record(opaque, method, path);
        sq_http_respond(resp, 200, NULL, "arg=%s header=%s\n",
                        arg ? arg : "(none)", hdr ? hdr : "(none)");
        sq_http_response_header(resp, "X-Answer", "42");
        sq_http_response_header(resp, "WWW-Authenticate", "Bearer realm=\"t\"");
}

static void test_request_args_headers(void **state) {
        char errstr[256], value[128];
        sq_http_t *http = sq_http_new("127.0.0.1", -1, errstr, sizeof(errstr));
        seen_t seen     = {.lock = PTHREAD_MUTEX_INITIALIZER};
        static reply_t reply;
        static const char req1[] = "GET /echo?name=a%20b&x=1 HTTP/1.1\r\n"
                                   "Host: t\r\nX-Test: yes\r\n"
                                   "Connection: close\r\n\r\n";
        (void)state;

        sq_http_route(http, "/echo", "GET", h_echo_request, &seen);
        assert_int_equal(sq_http_start(http, errstr, sizeof(errstr)), SQ_OK);
        assert_int_equal(http_exchange("127.0.0.1", sq_http_port(http), req1,
                                       sizeof(req1) - 1, &reply),
                         0);
        assert_int_equal(reply.status, 200);
        assert_string_equal(reply.body, "arg=a b header=yes\n");
        assert_true(header_get(&reply, "X-Answer", value, sizeof(value)));
        assert_string_equal(value, "42");
        assert_true(
            header_get(&reply, "WWW-Authenticate", value, sizeof(value)));
        assert_string_equal(value, "Bearer realm=\"t\"");
        assert_int_equal(
            http_get("127.0.0.1", sq_http_port(http), "GET", "/echo", &reply),
            0);
        assert_string_equal(reply.body, "arg=(none) header=(none)\n");
        assert_false(sq_http_tls(http));
        sq_http_destroy(http);
}

/*
 * Streams: a read callback that has data only when the test says so
 */

typedef struct feed_s {
        pthread_mutex_t lock;
        pthread_cond_t cond; /* signalled when a read finds nothing */
        int available;       /* chunks the test released */
        int sent;
        int end_after; /* END after this many chunks; 0 = never */
        int freed;
        int reads_parked; /* reads that returned 0 */
} feed_t;

static ssize_t feed_read(void *stream, char *buf, size_t size) {
        feed_t *feed = stream;
        ssize_t n    = 0;

        pthread_mutex_lock(&feed->lock);
        if (feed->end_after && feed->sent == feed->end_after)
                n = SQ_HTTP_STREAM_END;
        else if (feed->sent < feed->available)
                n = snprintf(buf, size, "chunk %d\n", feed->sent++);
        else {
                feed->reads_parked++;
                pthread_cond_broadcast(&feed->cond);
        }
        pthread_mutex_unlock(&feed->lock);
        return n;
}

static void feed_free(void *stream) {
        feed_t *feed = stream;
        pthread_mutex_lock(&feed->lock);
        feed->freed++;
        pthread_mutex_unlock(&feed->lock);
}

static void h_stream(void *opaque, const char *method, const char *path,
                     sq_http_response_t *resp) {
        (void)method;
        (void)path;
        resp->content_type = "text/event-stream";
        resp->stream       = opaque;
        resp->stream_read  = feed_read;
        resp->stream_free  = feed_free;
}

/* Waits (5 s at most) until a read found nothing more than @p seen
 * times: the stream is parking. */
static bool feed_wait_parked(feed_t *feed, int seen) {
        struct timespec ts;
        bool ok;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 5;
        pthread_mutex_lock(&feed->lock);
        while (feed->reads_parked <= seen &&
               pthread_cond_timedwait(&feed->cond, &feed->lock, &ts) == 0)
                ;
        ok = feed->reads_parked > seen;
        pthread_mutex_unlock(&feed->lock);
        return ok;
}

static void feed_release(feed_t *feed, sq_http_t *http) {
        pthread_mutex_lock(&feed->lock);
        feed->available++;
        pthread_mutex_unlock(&feed->lock);
        sq_http_streams_wake(http);
}

/* Reads from @p fd until @p want is in the accumulated text. */
static bool read_until(int fd, char *acc, size_t acc_size, size_t *lenp,
                       const char *want) {
        while (!strstr(acc, want)) {
                ssize_t r;
                if (*lenp + 1 >= acc_size)
                        return false;
                r = recv(fd, acc + *lenp, acc_size - 1 - *lenp, 0);
                if (r <= 0)
                        return false;
                *lenp += (size_t)r;
                acc[*lenp] = '\0';
        }
        return true;
}

static int connect_get(int port, const char *path) {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        struct timeval tv      = {.tv_sec = 10};
        char req[256];
        int fd = socket(AF_INET, SOCK_STREAM, 0), len;

        sin.sin_port        = htons((uint16_t)port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
        len = snprintf(
            req, sizeof(req),
            "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
        assert_int_equal(send(fd, req, (size_t)len, 0), len);
        return fd;
}

static void test_stream_parks_and_wakes(void **state) {
        char errstr[256], acc[8192] = "";
        sq_http_t *http = sq_http_new("127.0.0.1", -1, errstr, sizeof(errstr));
        feed_t feed     = {.lock      = PTHREAD_MUTEX_INITIALIZER,
                           .cond      = PTHREAD_COND_INITIALIZER,
                           .end_after = 3};
        size_t len      = 0;
        int fd, i;
        (void)state;

        sq_http_route(http, "/stream", "GET", h_stream, &feed);
        assert_int_equal(sq_http_start(http, errstr, sizeof(errstr)), SQ_OK);
        fd = connect_get(sq_http_port(http), "/stream");
        /* Chunks come as the test releases them, in order; before each
         * release the stream has found nothing and parks (a read returned
         * 0), so each chunk arrives through a wake-up. */
        for (i = 0; i < 3; i++) {
                char want[32];
                if (!feed_wait_parked(&feed, i))
                        fail_msg("the stream never found itself empty "
                                 "before chunk %d",
                                 i);
                feed_release(&feed, http);
                snprintf(want, sizeof(want), "chunk %d\n", i);
                if (!read_until(fd, acc, sizeof(acc), &len, want))
                        fail_msg("no \"%s\" on the stream; got:\n%s", want,
                                 acc);
        }
        assert_non_null(strstr(acc, "HTTP/1.1 200"));
        assert_non_null(strstr(acc, "text/event-stream"));
        /* After the third chunk the read says END: the chunked body ends
         * and the server closes (Connection: close). */
        assert_true(read_until(fd, acc, sizeof(acc), &len, "\r\n0\r\n\r\n"));
        close(fd);
        sq_http_destroy(http);
        assert_int_equal(feed.freed, 1);
        assert_int_equal(feed.sent, 3);
        pthread_cond_destroy(&feed.cond);
}

/* Destroying the server while a client sits on a parked stream ends the
 * stream and frees it (libmicrohttpd must not stop with a suspended
 * connection). */
static void test_destroy_with_parked_stream(void **state) {
        char errstr[256], acc[4096] = "";
        sq_http_t *http = sq_http_new("127.0.0.1", -1, errstr, sizeof(errstr));
        feed_t feed     = {.lock = PTHREAD_MUTEX_INITIALIZER,
                           .cond = PTHREAD_COND_INITIALIZER};
        size_t len      = 0;
        int fd;
        (void)state;

        sq_http_route(http, "/stream", "GET", h_stream, &feed);
        assert_int_equal(sq_http_start(http, errstr, sizeof(errstr)), SQ_OK);
        fd = connect_get(sq_http_port(http), "/stream");
        feed_release(&feed, http);
        assert_true(read_until(fd, acc, sizeof(acc), &len, "chunk 0\n"));
        /* Now parked: nothing more is available. */
        sq_http_destroy(http);
        assert_int_equal(feed.freed, 1);
        close(fd);
}

static void test_respond_replaces_body(void **state) {
        sq_http_response_t resp = {.status = 200};
        char big[3000];
        (void)state;

        sq_http_respond(&resp, 201, "text/csv", "%d,%s", 7, "x");
        assert_int_equal(resp.status, 201);
        assert_string_equal(resp.content_type, "text/csv");
        assert_int_equal(resp.body_len, 3);
        assert_memory_equal(resp.body, "7,x", 4);
        /* A second call frees the first body (valgrind/ASan check). */
        memset(big, 'b', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        sq_http_respond(&resp, 200, NULL, "%s", big);
        assert_null(resp.content_type);
        assert_int_equal(resp.body_len, sizeof(big) - 1);
        assert_int_equal(strlen(resp.body), sizeof(big) - 1);
        sq_free(resp.body);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_routing, setup_server,
                                            teardown_server),
            cmocka_unit_test_setup_teardown(test_handler_sees_method_and_path,
                                            setup_server, teardown_server),
            cmocka_unit_test_setup_teardown(test_small_post_body_is_accepted,
                                            setup_server, teardown_server),
            cmocka_unit_test_setup_teardown(test_declared_large_body_is_413,
                                            setup_server, teardown_server),
            cmocka_unit_test_setup_teardown(test_chunked_body_size_limit,
                                            setup_server, teardown_server),
            cmocka_unit_test(test_bad_bind_or_port_is_named),
            cmocka_unit_test(test_ephemeral_ports_differ),
            cmocka_unit_test(test_port_in_use_is_reported),
            cmocka_unit_test(test_ipv6_loopback),
            cmocka_unit_test(test_respond_replaces_body),
            cmocka_unit_test(test_request_args_headers),
            cmocka_unit_test(test_stream_parks_and_wakes),
            cmocka_unit_test(test_destroy_with_parked_stream),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
