/* SPDX-License-Identifier: Apache-2.0 */
/*
 * routes.c: the instance's HTTP server: its set-up (TLS, the admin token)
 * and the routes besides /status and /events (status.c): /healthz,
 * /readyz, /metrics and POST /admin/{pause,resume,drain}.
 *
 * DESIGN
 *   Thread: every handler runs on libmicrohttpd's thread and returns at
 *   once. They read atomics and the metrics registry only; an admin action
 *   only sets flags (admin.paused, admin.draining, admin.drained) and
 *   wakes the poll thread, which owns pausing, resuming and commits
 *   (poll.c, admission.c).
 *   Main sets the server up before it starts and destroys it.
 *
 *   The admin routes exist only with a token (http.admin.token or the
 *   first line of http.admin.token.file); without one they are 404. The
 *   bearer token is compared in constant time and cleansed from memory
 *   with the server; so is the TLS key once libmicrohttpd has it.
 */
#include "codec_json.h"
#include "daemon_int.h"
#include "log.h"
#include "poll_int.h"
#include "routes_int.h"
#include "status.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* /healthz fails when a thread that must make progress has not. */
static void http_healthz(void *opaque, const char *method, const char *path,
                         sq_http_response_t *resp) {
        sq_daemon_t *daemon = opaque;
        int64_t now         = sq_clock_us();
        int64_t poll_age    = now - atomic_load(&daemon->poll.heartbeat_us);
        int64_t exec_age    = now - atomic_load(&daemon->executors.progress_us);
        int64_t exec_limit_us =
            (2 * daemon->conf->default_timeout_ms + 10000) * 1000;
        size_t queued = 0;
        int prio;

        const char *starting = atomic_load(&daemon->starting);

        (void)method;
        (void)path;
        /* Alive while start-up waits: its waits are bounded (start). */
        if (starting) {
                sq_http_respond(resp, 200, NULL,
                                "ok: starting, waiting for %s\n", starting);
                return;
        }
        for (prio = 0; prio < SQ_PRIO_CNT; prio++)
                queued += sq_sched_depth(daemon->sched, (sq_priority_t)prio);
        if (poll_age > 15 * 1000000 + daemon->conf->commit_interval_ms * 1000)
                sq_http_respond(resp, 503, NULL,
                                "unhealthy: poll loop stalled for %lld ms\n",
                                (long long)(poll_age / 1000));
        else if (queued > 0 && exec_age > exec_limit_us)
                sq_http_respond(resp, 503, NULL,
                                "unhealthy: %zu tasks queued and no executor "
                                "progress for %lld ms\n",
                                queued, (long long)(exec_age / 1000));
        else
                sq_http_respond(resp, 200, NULL, "ok\n");
}

static void http_readyz(void *opaque, const char *method, const char *path,
                        sq_http_response_t *resp) {
        sq_daemon_t *daemon  = opaque;
        const char *starting = atomic_load(&daemon->starting);
        char why[512];
        (void)method;
        (void)path;
        if (atomic_load(&daemon->stop_requested))
                sq_http_respond(resp, 503, NULL, "not ready: stopping\n");
        else if (starting)
                sq_http_respond(resp, 503, NULL,
                                "not ready: starting, waiting for %s\n",
                                starting);
        else if (atomic_load(&daemon->admin.draining) &&
                 atomic_load(&daemon->admin.drained))
                sq_http_respond(resp, 503, NULL,
                                "not ready: drained (POST /admin/resume to "
                                "take work again)\n");
        else if (atomic_load(&daemon->admin.draining))
                sq_http_respond(resp, 503, NULL,
                                "not ready: draining, %ld tasks in flight\n",
                                sq_partitions_window_total(daemon));
        else if ((sq_schemas_why(daemon, why, sizeof(why)), *why))
                sq_http_respond(resp, 503, NULL,
                                "not ready: schema registry: %s\n", why);
        else if (!atomic_load(&daemon->assigned_once))
                sq_http_respond(resp, 503, NULL,
                                "not ready: no partition assignment from "
                                "group %s yet\n",
                                daemon->conf->group_id);
        else
                sq_http_respond(resp, 200, NULL, "ready\n");
}

/* GET /metrics, or only the families named by ?name[]=... (as the
 * Prometheus client libraries do: a probe polling two counters does not
 * pay for the whole registry). */
static void http_metrics(void *opaque, const char *method, const char *path,
                         sq_http_response_t *resp) {
        sq_daemon_t *daemon = opaque;
        const char *names[32];
        size_t cnt = sq_http_request_args(resp->req, "name[]", names,
                                          SQ_ARRAY_SIZE(names));
        (void)method;
        (void)path;
        resp->status       = 200;
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        resp->body = cnt ? sq_metrics_render_only(daemon->metrics, names, cnt,
                                                  &resp->body_len)
                         : sq_metrics_render(daemon->metrics, &resp->body_len);
}

/* Whether the request carries the admin bearer token (compared in
 * constant time); answers 401 when it does not. */
static bool admin_authorized(sq_daemon_t *daemon, const char *path,
                             sq_http_response_t *resp) {
        const char *auth = sq_http_request_header(resp->req, "Authorization");
        size_t want      = strlen(daemon->admin.token);

        if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 ||
            strlen(auth + 7) != want ||
            CRYPTO_memcmp(auth + 7, daemon->admin.token, want) != 0) {
                SQ_LOG(SQ_LOG_WARNING, "ADMIN",
                       "refused POST %s: %s bearer token", path,
                       auth ? "wrong" : "no");
                sq_http_respond(resp, 401, NULL,
                                "unauthorized: POST %s needs \"Authorization: "
                                "Bearer <http.admin.token>\"\n",
                                path);
                sq_http_response_header(resp, "WWW-Authenticate",
                                        "Bearer realm=\"swarmq\"");
                return false;
        }
        return true;
}

/* POST /admin/{pause,resume,drain}: bearer token, then flags the poll
 * thread applies (it owns pause/resume and commits). */
static void http_admin(void *opaque, const char *method, const char *path,
                       sq_http_response_t *resp) {
        sq_daemon_t *daemon = opaque;
        const char *action  = path + strlen("/admin/");

        (void)method;
        if (!admin_authorized(daemon, path, resp))
                return;
        if (atomic_load(&daemon->stop_requested)) {
                sq_http_respond(resp, 409, NULL,
                                "conflict: the instance is stopping\n");
                return;
        }
        if (!strcmp(action, "pause")) {
                atomic_store(&daemon->admin.paused, true);
        } else if (!strcmp(action, "resume")) {
                atomic_store(&daemon->admin.draining, false);
                atomic_store(&daemon->admin.drained, false);
                atomic_store(&daemon->admin.paused, false);
        } else {
                atomic_store(&daemon->admin.paused, true);
                atomic_store(&daemon->admin.drained, false);
                atomic_store(&daemon->admin.draining, true);
        }
        SQ_LOG(SQ_LOG_NOTICE, "ADMIN", "%s requested over HTTP", action);
        sq_daemon_wake(daemon);
        sq_http_respond(resp, 202, "application/json",
                        "{\"action\":\"%s\",\"state\":\"%s\"}\n", action,
                        atomic_load(&daemon->admin.draining) ? "draining"
                        : atomic_load(&daemon->admin.paused) ? "paused"
                                                             : "running");
}

/* POST /admin/cancel?id=TASK_ID: bearer token, then a control record
 * that every instance reads (control.c). Accepted is all it can say: the
 * task may be queued, waiting, running elsewhere, finished or unknown. */
static void http_admin_cancel(void *opaque, const char *method,
                              const char *path, sq_http_response_t *resp) {
        sq_daemon_t *daemon = opaque;
        const char *id      = sq_http_request_arg(resp->req, "id");
        char errstr[512];
        json_t *body;
        char *text;

        (void)method;
        if (!admin_authorized(daemon, path, resp))
                return;
        if (!id || !*id || strlen(id) > 4096 ||
            !sq_codec_utf8_valid(id, strlen(id))) {
                sq_http_respond(resp, 400, NULL,
                                "bad request: POST /admin/cancel?id=TASK_ID "
                                "needs the task id (UTF-8, 1 to 4096 "
                                "bytes)\n");
                return;
        }
        if (sq_control_send_cancel(daemon, id, errstr, sizeof(errstr))) {
                SQ_LOG(SQ_LOG_ERR, "ADMIN", "cancel task_id=%s: %s", id,
                       errstr);
                sq_http_respond(resp, 503, NULL, "unavailable: %s\n", errstr);
                return;
        }
        SQ_LOG(SQ_LOG_NOTICE, "ADMIN", "cancel task_id=%s requested over HTTP",
               id);
        body = json_pack("{s:s, s:s, s:s}", "action", "cancel", "task_id", id,
                         "state", "sent");
        text = json_dumps(body, JSON_COMPACT);
        sq_http_respond(resp, 202, "application/json", "%s\n", text);
        free(text); /* jansson's allocator */
        json_decref(body);
}

/* Reads a small text file whole. @returns sq_malloc()ed text, or NULL
 * with @p errstr naming the file and the key it came from. */
static char *read_small_file(const char *path, const char *key, size_t max,
                             char *errstr, size_t errstr_size) {
        FILE *fp   = fopen(path, "re");
        char *text = NULL;
        size_t len;

        if (!fp) {
                sq_errstr_set(errstr, errstr_size, "%s=%s: cannot open: %s",
                              key, path, strerror(errno));
                return NULL;
        }
        text = sq_malloc(max + 1);
        len  = fread(text, 1, max + 1, fp);
        if (ferror(fp) || len > max) {
                sq_errstr_set(errstr, errstr_size, "%s=%s: %s", key, path,
                              ferror(fp) ? strerror(errno) : "file too large");
                sq_free(text);
                text = NULL;
        } else {
                text[len] = '\0';
        }
        fclose(fp);
        return text;
}

/* The admin token from http.admin.token or the first line of
 * http.admin.token.file, trimmed; NULL when none (admin off). */
static sq_err_t admin_token_load(sq_daemon_t *daemon, char *errstr,
                                 size_t errstr_size) {
        const sq_config_t *conf = daemon->conf;
        char *token, *start, *end;

        if (*conf->http_admin_token)
                token = sq_strdup(conf->http_admin_token);
        else if (*conf->http_admin_token_file)
                token = read_small_file(conf->http_admin_token_file,
                                        "http.admin.token.file", 4096, errstr,
                                        errstr_size);
        else
                return SQ_OK;
        if (!token)
                return SQ_ERR_CONFIG;
        start = token;
        while (*start && isspace((unsigned char)*start))
                start++;
        end = start;
        while (*end && *end != '\n' && *end != '\r')
                end++;
        while (end > start && isspace((unsigned char)end[-1]))
                end--;
        if (end == start) {
                sq_errstr_set(errstr, errstr_size,
                              "%s is empty: the admin token must not be",
                              *conf->http_admin_token
                                  ? "http.admin.token"
                                  : conf->http_admin_token_file);
                sq_free(token);
                return SQ_ERR_CONFIG;
        }
        daemon->admin.token = sq_strndup(start, (size_t)(end - start));
        sq_free(token);
        return SQ_OK;
}

/* The HTTP server: routes, TLS, admin token. */
sq_err_t sq_routes_setup(sq_daemon_t *daemon, char *errstr,
                         size_t errstr_size) {
        const sq_config_t *conf = daemon->conf;
        char *cert = NULL, *key = NULL;
        sq_err_t err = SQ_ERR_CONFIG;

        daemon->http =
            sq_http_new(conf->http_bind, conf->http_port, errstr, errstr_size);
        if (!daemon->http)
                goto done;
        sq_http_set_limits(daemon->http, (unsigned)conf->http_connections_max,
                           (unsigned)conf->http_connections_per_ip);
        if (*conf->http_tls_cert) {
                if (!(cert =
                          read_small_file(conf->http_tls_cert, "http.tls.cert",
                                          1 << 20, errstr, errstr_size)) ||
                    !(key = read_small_file(conf->http_tls_key, "http.tls.key",
                                            1 << 20, errstr, errstr_size)))
                        goto done;
                if ((err = sq_http_set_tls(daemon->http, cert, key, errstr,
                                           errstr_size)))
                        goto done;
        }
        if ((err = admin_token_load(daemon, errstr, errstr_size)))
                goto done;
        sq_http_route(daemon->http, "/healthz", "GET", http_healthz, daemon);
        sq_http_route(daemon->http, "/readyz", "GET", http_readyz, daemon);
        sq_http_route(daemon->http, "/metrics", "GET", http_metrics, daemon);
        sq_status_routes(daemon);
        /* Off without a token: the paths are unknown (404). */
        if (daemon->admin.token) {
                sq_http_route(daemon->http, "/admin/pause", "POST", http_admin,
                              daemon);
                sq_http_route(daemon->http, "/admin/resume", "POST", http_admin,
                              daemon);
                sq_http_route(daemon->http, "/admin/drain", "POST", http_admin,
                              daemon);
                sq_http_route(daemon->http, "/admin/cancel", "POST",
                              http_admin_cancel, daemon);
                if (!*conf->http_tls_cert &&
                    strcmp(conf->http_bind, "127.0.0.1") &&
                    strcmp(conf->http_bind, "::1"))
                        SQ_LOG(SQ_LOG_WARNING, "HTTP",
                               "admin actions are on and http.bind=%s is not "
                               "loopback without TLS: the bearer token "
                               "crosses the network in clear text; set "
                               "http.tls.cert and http.tls.key",
                               conf->http_bind);
        }
        err = SQ_OK;
done:
        if (key) {
                OPENSSL_cleanse(key, strlen(key));
                sq_free(key);
        }
        sq_free(cert);
        return err;
}

void sq_routes_destroy(sq_daemon_t *daemon) {
        sq_http_destroy(daemon->http);
        daemon->http = NULL; /* the ring's notify callback checks it */
        if (daemon->admin.token) {
                OPENSSL_cleanse(daemon->admin.token,
                                strlen(daemon->admin.token));
                sq_free(daemon->admin.token);
                daemon->admin.token = NULL;
        }
}
