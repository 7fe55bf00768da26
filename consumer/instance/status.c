/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status.c: GET /status (JSON snapshot), GET /events (Server-Sent Events
 * or a JSON page of the event ring) and the embedded live page (see
 * status.h for the design).
 *
 * DESIGN
 *   JSON is built with jansson on the HTTP thread. Strings that come from
 *   users (task ids, details) may not be valid UTF-8; they are rendered as
 *   JSON strings with invalid bytes replaced, never dropped silently and
 *   never emitted as invalid JSON. An /events stream keeps its rendered,
 *   not yet sent text in `pending` (at most one batch of EVENTS_BATCH
 *   events plus a notice, so bounded), reads the ring after its cursor
 *   only when `pending` is empty, and parks (returns 0) when it has
 *   nothing to send: the ring's notify callback or the HTTP server's
 *   one-second tick wakes it. A keep-alive comment goes out after
 *   EVENTS_KEEPALIVE_US of silence so proxies keep the connection and a
 *   vanished client is noticed on the write.
 */
#include "status.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "registry_int.h"

#define EVENTS_BATCH        32           /* events rendered per ring read */
#define EVENTS_BACKLOG      50           /* sent to a new client */
#define EVENTS_JSON_LIMIT   1000         /* max events in one JSON page */
#define EVENTS_KEEPALIVE_US 10000000LL   /* comment after 10 s of silence */
#define EVENTS_RETRY_MS     2000         /* client reconnect delay */
#define SEQ_MAX             (1ULL << 62) /* larger since= is invalid */

/* Generated from consumer/www/ by consumer/www/embed.cmake. */
struct sq_www_file {
        const char *path;
        const char *content_type;
        const unsigned char *data;
        size_t len;
};
extern const struct sq_www_file sq_www_files[];

/*
 * JSON helpers
 */

/* A JSON string from bytes that may not be UTF-8: invalid bytes become
 * U+FFFD. */
static json_t *jstr(const char *str) {
        json_t *j;
        char *fixed;
        size_t i, o = 0, len;

        if (!str)
                return json_null();
        if ((j = json_string(str)))
                return j;
        len   = strlen(str);
        fixed = sq_malloc(len * 3 + 1);
        for (i = 0; i < len;) {
                unsigned char c = (unsigned char)str[i];
                size_t need     = c < 0x80             ? 1
                                  : (c & 0xE0) == 0xC0 ? 2
                                  : (c & 0xF0) == 0xE0 ? 3
                                  : (c & 0xF8) == 0xF0 ? 4
                                                       : 0;
                size_t k;
                bool ok = need > 0 && i + need <= len;
                for (k = 1; ok && k < need; k++)
                        ok = ((unsigned char)str[i + k] & 0xC0) == 0x80;
                if (ok) {
                        memcpy(fixed + o, str + i, need);
                        o += need;
                        i += need;
                } else {
                        memcpy(fixed + o, "\xEF\xBF\xBD", 3);
                        o += 3;
                        i++;
                }
        }
        fixed[o] = '\0';
        j        = json_string(fixed);
        sq_free(fixed);
        /* Overlong forms and surrogates can still fail: say so. */
        return j ? j : json_string("(invalid UTF-8)");
}

/* Adds @p str unless it is NULL or empty. */
static void jset_str(json_t *obj, const char *key, const char *str) {
        if (str && *str)
                json_object_set_new(obj, key, jstr(str));
}

/* Serializes and frees @p doc. @returns sq_malloc()ed text. */
static char *jdump(json_t *doc, size_t *lenp) {
        char *text = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
        char *copy;

        json_decref(doc);
        sq_assert(text); /* only fails on out of memory */
        *lenp = strlen(text);
        copy  = sq_strndup(text, *lenp);
        free(text); /* jansson allocates with malloc */
        return copy;
}

/*
 * /status
 */

static const char *instance_state(sq_daemon_t *daemon) {
        if (atomic_load(&daemon->stop_requested))
                return "stopping";
        if (atomic_load(&daemon->starting))
                return "starting";
        if (atomic_load(&daemon->admin.draining))
                return atomic_load(&daemon->admin.drained) ? "drained"
                                                           : "draining";
        if (atomic_load(&daemon->admin.paused))
                return "paused";
        if (!atomic_load(&daemon->assigned_once))
                return "joining";
        return "running";
}

static json_t *status_partitions(sq_daemon_t *daemon) {
        json_t *arr = json_array();
        sq_partition_t *part;
        int lane, i;

        pthread_mutex_lock(&daemon->snap_lock);
        for (lane = 0; lane < SQ_LANE_CNT; lane++) {
                for (i = 0; i < daemon->partitions.cnt[lane]; i++) {
                        json_t *p;
                        if (!(part = daemon->partitions.parts[lane][i]) ||
                            !part->snap_assigned)
                                continue;
                        p = json_object();
                        json_object_set_new(p, "topic", jstr(part->topic));
                        json_object_set_new(p, "partition",
                                            json_integer(part->partition));
                        json_object_set_new(
                            p, "lane",
                            json_string(lane == SQ_LANE_TASKS   ? "tasks"
                                        : lane == SQ_LANE_RETRY ? "retry"
                                                                : "critical"));
                        json_object_set_new(
                            p, "committed",
                            part->snap_committed >= 0
                                ? json_integer(part->snap_committed)
                                : json_null());
                        json_object_set_new(p, "high_watermark",
                                            part->snap_high >= 0
                                                ? json_integer(part->snap_high)
                                                : json_null());
                        json_object_set_new(p, "lag",
                                            part->lag >= 0
                                                ? json_integer(part->lag)
                                                : json_null());
                        json_object_set_new(
                            p, "in_flight",
                            json_integer(atomic_load(&part->outstanding)));
                        json_object_set_new(p, "paused",
                                            json_boolean(part->snap_paused));
                        json_array_append_new(arr, p);
                }
        }
        pthread_mutex_unlock(&daemon->snap_lock);
        return arr;
}

static json_t *status_admission(sq_daemon_t *daemon) {
        const sq_config_t *conf = daemon->conf;
        json_t *adm = json_object(), *lanes = json_object();
        json_t *window = json_object();
        int prio;

        json_object_set_new(window, "tasks",
                            json_integer(atomic_load(
                                &daemon->partitions.window[SQ_LANE_TASKS])));
        json_object_set_new(window, "critical",
                            json_integer(atomic_load(
                                &daemon->partitions.window[SQ_LANE_CRITICAL])));
        json_object_set_new(window, "retry",
                            json_integer(atomic_load(
                                &daemon->partitions.window[SQ_LANE_RETRY])));
        json_object_set_new(adm, "window", window);
        json_object_set_new(adm, "high_mark",
                            json_integer(conf->admission_high));
        json_object_set_new(adm, "low_mark", json_integer(conf->admission_low));
        json_object_set_new(adm, "critical_high_mark",
                            json_integer(conf->critical_high));
        json_object_set_new(
            adm, "paused",
            json_boolean(atomic_load(&daemon->admission.paused_any)));
        for (prio = SQ_PRIO_CNT - 1; prio >= 0; prio--)
                json_object_set_new(lanes,
                                    sq_priority_name((sq_priority_t)prio),
                                    json_integer((json_int_t)sq_sched_depth(
                                        daemon->sched, (sq_priority_t)prio)));
        json_object_set_new(adm, "lanes", lanes);
        json_object_set_new(adm, "running",
                            json_integer(sq_sched_running(daemon->sched)));
        json_object_set_new(adm, "executors",
                            json_integer(conf->executor_threads));
        json_object_set_new(adm, "critical_reserved",
                            json_integer(conf->executor_critical_slots));
        return adm;
}

static void add_capability(void *opaque, const char *capability) {
        json_array_append_new(opaque, jstr(capability));
}

/* Finished-task counters of an agent's [status][priority] children;
 * each status's count is also added to @p by_status (the instance's
 * totals). */
static void agent_counts(sq_metric_t *const tasks[SQ_STATUS_CNT][SQ_PRIO_CNT],
                         double *succeeded, double *finished,
                         double by_status[SQ_STATUS_CNT]) {
        int s, p;

        *succeeded = *finished = 0;
        for (s = 0; s < SQ_STATUS_CNT; s++)
                for (p = 0; p < SQ_PRIO_CNT; p++) {
                        double v = sq_metric_value(tasks[s][p]);
                        *finished += v;
                        by_status[s] += v;
                        if (s == SQ_STATUS_SUCCEEDED)
                                *succeeded += v;
                }
}

/* @p agents: takes ownership of one reference. */
static json_t *status_agents(sq_daemon_t *daemon, sq_agents_t *agents,
                             json_t *totals) {
        json_t *arr   = json_array();
        double all_ok = 0, all = 0, dur_sum = 0;
        double by_status[SQ_STATUS_CNT] = {0};
        uint64_t dur_cnt                = 0;
        int i, cnt = sq_agents_count(agents);

        for (i = 0; i < cnt; i++) {
                sq_agent_t *agent      = sq_agents_get(agents, i);
                sq_agent_metrics_t *am = sq_agent_metrics(agent);
                sq_agent_stats_t st;
                json_t *a = json_object(), *caps = json_array();
                double ok, finished;

                sq_agent_stats(agent, &st);
                agent_counts(am->tasks, &ok, &finished, by_status);
                all_ok += ok;
                all += finished;
                json_object_set_new(a, "name", jstr(sq_agent_name(agent)));
                sq_agent_capabilities(agent, add_capability, caps);
                json_object_set_new(a, "capabilities", caps);
                json_object_set_new(a, "capacity",
                                    json_integer(st.concurrency));
                json_object_set_new(a, "in_flight", json_integer(st.in_flight));
                json_object_set_new(a, "parked", json_integer(st.parked));
                json_object_set_new(a, "finished",
                                    json_integer((json_int_t)finished));
                json_object_set_new(a, "succeeded",
                                    json_integer((json_int_t)ok));
                json_object_set_new(a, "success_rate",
                                    finished > 0 ? json_real(ok / finished)
                                                 : json_null());
                json_object_set_new(a, "success_rate_ewma",
                                    json_real(st.success_rate));
                json_object_set_new(a, "latency_ewma_seconds",
                                    json_real(st.latency_us / 1e6));
                json_object_set_new(a, "stolen",
                                    json_integer((json_int_t)st.stolen));
                json_object_set_new(
                    a, "duration_count",
                    json_integer((json_int_t)sq_metric_count(am->duration)));
                json_object_set_new(a, "duration_sum_seconds",
                                    json_real(sq_metric_sum(am->duration)));
                dur_cnt += sq_metric_count(am->duration);
                dur_sum += sq_metric_sum(am->duration);
                json_object_set_new(a, "breaker",
                                    jstr(sq_breaker_state_name(st.breaker)));
                json_array_append_new(arr, a);
        }
        {
                double ok, finished;
                agent_counts(daemon->m.tasks_none, &ok, &finished, by_status);
                all += finished;
                json_object_set_new(totals, "no_agent",
                                    json_integer((json_int_t)finished));
        }
        json_object_set_new(totals, "finished", json_integer((json_int_t)all));
        json_object_set_new(totals, "succeeded",
                            json_integer((json_int_t)all_ok));
        json_object_set_new(
            totals, "received",
            json_integer((
                json_int_t)(sq_metric_value(daemon->m.received[SQ_LANE_TASKS]) +
                            sq_metric_value(
                                daemon->m.received[SQ_LANE_CRITICAL]))));
        {
                /* Every dead letter, whatever its reason. */
                double dead = 0;
                int r;
                for (r = 0; r < SQ_DL_REASON_CNT; r++)
                        dead += sq_metric_value(daemon->m.dead_letters[r]);
                json_object_set_new(totals, "dead_lettered",
                                    json_integer((json_int_t)dead));
        }
        /* Attempts that failed or timed out (retried or dead-lettered
         * after), and the retry records written for them: the live page's
         * "failed · timed out · retried". */
        json_object_set_new(
            totals, "failed",
            json_integer((json_int_t)by_status[SQ_STATUS_FAILED]));
        json_object_set_new(
            totals, "timed_out",
            json_integer((json_int_t)by_status[SQ_STATUS_TIMED_OUT]));
        json_object_set_new(
            totals, "retried",
            json_integer((json_int_t)sq_metric_value(daemon->m.retries)));
        json_object_set_new(totals, "duration_count",
                            json_integer((json_int_t)dur_cnt));
        json_object_set_new(totals, "duration_sum_seconds", json_real(dur_sum));
        sq_agents_release_ref(agents);
        return arr;
}

/* /status's config summary: --dump-config's masking, plus every sasl.*
 * key (user names included) since the page may be shown on a screen. */
static void config_emit(void *opaque, const char *key, const char *value) {
        json_t *obj = opaque;
        if (*value && strcasestr(key, "sasl."))
                value = "***";
        json_object_set_new(obj, key, jstr(value));
}

char *sq_status_json(sq_daemon_t *daemon, size_t *lenp) {
        const sq_config_t *conf = daemon->conf;
        json_t *doc = json_object(), *totals = json_object();
        json_t *events = json_object(), *config = json_object();
        json_t *http = json_object(), *flags = json_object();
        int64_t now_us = sq_clock_us();
        sq_agents_t *agents;
        char buf[16];
        int f;

        /* What one SIGHUP changes (the agent registry, the flags, the
         * config shown) is read in one step: the reload publishes all three
         * under snap_lock, so the snapshot never mixes two
         * configurations. The flags are the rollouts now, not the ones the
         * instance started with; the config shows what runs: after a
         * reload, the reloaded values of the keys a reload applies (the
         * others wait for a restart). */
        pthread_mutex_lock(&daemon->snap_lock);
        agents = sq_daemon_agents(daemon);
        for (f = 0; f < SQ_FLAG_CNT; f++)
                json_object_set_new(
                    flags, sq_flag_name((sq_flag_t)f),
                    json_string(sq_flag_format(
                        sq_flags_rollout(&daemon->flags, (sq_flag_t)f), buf,
                        sizeof(buf))));
        if (daemon->reload.running_conf) {
                size_t i;
                for (i = 0; i < daemon->reload.running_conf_cnt; i++)
                        config_emit(config, daemon->reload.running_conf[i].name,
                                    daemon->reload.running_conf[i].value);
        } else
                sq_config_dump(conf, config_emit, config);
        pthread_mutex_unlock(&daemon->snap_lock);

        json_object_set_new(doc, "instance", jstr(conf->instance_id));
        json_object_set_new(doc, "version", json_string(SWARMQ_VERSION));
        json_object_set_new(doc, "group", jstr(conf->group_id));
        json_object_set_new(doc, "bootstrap_servers", jstr(daemon->bootstrap));
        json_object_set_new(doc, "state", json_string(instance_state(daemon)));
        {
                const char *starting = atomic_load(&daemon->starting);
                if (starting)
                        json_object_set_new(doc, "waiting_for",
                                            json_string(starting));
        }
        json_object_set_new(
            doc, "ready",
            json_boolean(atomic_load(&daemon->assigned_once) &&
                         !atomic_load(&daemon->stop_requested) &&
                         !atomic_load(&daemon->admin.draining)));
        json_object_set_new(doc, "time_ms", json_integer(sq_wallclock_ms()));
        json_object_set_new(
            doc, "uptime_seconds",
            json_real((double)(now_us - daemon->started_us) / 1e6));
        json_object_set_new(doc, "partitions", status_partitions(daemon));
        json_object_set_new(doc, "admission", status_admission(daemon));
        json_object_set_new(doc, "agents",
                            status_agents(daemon, agents, totals));
        json_object_set_new(doc, "tasks", totals);
        if (conf->schedules_cnt)
                json_object_set_new(doc, "schedules",
                                    sq_schedules_status(daemon));
        if (conf->ratelimits_cnt)
                json_object_set_new(doc, "rate_limits",
                                    sq_ratelimits_status(daemon));
        if (conf->workflows_enable)
                json_object_set_new(doc, "workflows",
                                    sq_workflows_status(daemon));

        json_object_set_new(
            events, "last_seq",
            json_integer((json_int_t)sq_eventring_last_seq(daemon->events)));
        json_object_set_new(
            events, "buffer",
            json_integer((json_int_t)sq_eventring_capacity(daemon->events)));
        json_object_set_new(events, "clients",
                            json_integer(atomic_load(&daemon->events_clients)));
        json_object_set_new(events, "dropped",
                            json_integer((json_int_t)sq_metric_value(
                                daemon->m.events_dropped)));
        json_object_set_new(doc, "events", events);

        json_object_set_new(http, "tls",
                            json_boolean(sq_http_tls(daemon->http)));
        json_object_set_new(http, "admin",
                            json_boolean(daemon->admin.token != NULL));
        json_object_set_new(doc, "http", http);

        json_object_set_new(doc, "flags", flags);
        json_object_set_new(doc, "config", config);
        return jdump(doc, lenp);
}

static void http_status(void *opaque, const char *method, const char *path,
                        sq_http_response_t *resp) {
        sq_daemon_t *daemon = opaque;
        (void)method;
        (void)path;
        resp->status       = 200;
        resp->content_type = "application/json";
        resp->body         = sq_status_json(daemon, &resp->body_len);
}

/*
 * /events
 */

static json_t *event_json(const sq_daemon_t *daemon,
                          const sq_ring_event_t *ev) {
        json_t *e = json_object();

        json_object_set_new(e, "seq", json_integer((json_int_t)ev->seq));
        json_object_set_new(e, "at", json_integer(ev->at_ms));
        json_object_set_new(e, "type", jstr(ev->type));
        json_object_set_new(e, "instance", jstr(daemon->conf->instance_id));
        jset_str(e, "task_id", ev->task_id);
        jset_str(e, "agent", ev->agent);
        jset_str(e, "detail", ev->detail);
        return e;
}

/* Parses a since= or Last-Event-ID value. */
static bool parse_seq(const char *str, uint64_t *seqp) {
        int64_t v;
        if (sq_parse_int64(str, 0, (int64_t)SEQ_MAX, &v) != SQ_OK)
                return false;
        *seqp = (uint64_t)v;
        return true;
}

typedef struct events_stream_s {
        sq_daemon_t *daemon; /* borrowed */
        uint64_t cursor;     /* last sequence sent (or skipped) */
        double tokens;       /* token bucket, at most rate */
        int64_t refill_us;
        int64_t last_write_us;
        char *pending; /* owned: rendered text not yet sent */
        size_t pending_len, pending_off, pending_cap;
        sq_ring_event_t batch[EVENTS_BATCH];
} events_stream_t;

static void pending_append(events_stream_t *es, const char *text, size_t len) {
        if (es->pending_len + len + 1 > es->pending_cap) {
                es->pending_cap =
                    SQ_MAX(es->pending_cap * 2, es->pending_len + len + 1);
                es->pending = sq_realloc(es->pending, es->pending_cap);
        }
        memcpy(es->pending + es->pending_len, text, len);
        es->pending_len += len;
}

static void pending_printf(events_stream_t *es, const char *fmt, ...)
    SQ_ATTR_PRINTF(2, 3);

static void pending_printf(events_stream_t *es, const char *fmt, ...) {
        char line[256];
        va_list ap;
        int len;

        va_start(ap, fmt);
        len = vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        sq_assert(len >= 0 && (size_t)len < sizeof(line));
        pending_append(es, line, (size_t)len);
}

static void stream_dropped(events_stream_t *es, uint64_t dropped) {
        sq_metric_add(es->daemon->m.events_dropped, (double)dropped);
        pending_printf(es,
                       "id: %llu\nevent: dropped\ndata: {\"dropped\":%llu,"
                       "\"resume_after\":%llu}\n\n",
                       (unsigned long long)es->cursor,
                       (unsigned long long)dropped,
                       (unsigned long long)es->cursor);
}

/* Renders the next batch into `pending`, within the rate. @returns
 * whether anything was rendered. */
static bool stream_fill(events_stream_t *es) {
        sq_daemon_t *daemon = es->daemon;
        double rate         = daemon->conf->http_events_rate;
        uint64_t last       = sq_eventring_last_seq(daemon->events);
        int64_t now         = sq_clock_us();
        uint64_t missed     = 0;
        size_t cnt, i, want;

        es->tokens += (double)(now - es->refill_us) / 1e6 * rate;
        if (es->tokens > rate)
                es->tokens = rate;
        es->refill_us = now;

        /* Out of tokens and more than a second's worth behind (events
         * come faster than the client may take them): skip ahead, say
         * so. A client catching up within its rate skips nothing. */
        if (es->tokens < 1 && last > es->cursor &&
            last - es->cursor > (uint64_t)rate) {
                uint64_t skip = last - es->cursor - (uint64_t)rate;
                es->cursor += skip;
                stream_dropped(es, skip);
        }
        if (es->tokens < 1)
                return es->pending_len > 0;
        want = SQ_MIN((size_t)es->tokens, (size_t)EVENTS_BATCH);
        cnt  = sq_eventring_read(daemon->events, es->cursor, es->batch, want,
                                 &missed);
        if (missed) {
                es->cursor += missed;
                stream_dropped(es, missed);
        }
        for (i = 0; i < cnt; i++) {
                size_t len;
                char *text = jdump(event_json(daemon, &es->batch[i]), &len);
                pending_printf(es, "id: %llu\ndata: ",
                               (unsigned long long)es->batch[i].seq);
                pending_append(es, text, len);
                pending_append(es, "\n\n", 2);
                sq_free(text);
                es->cursor = es->batch[i].seq;
        }
        es->tokens -= (double)cnt;
        return es->pending_len > 0;
}

static ssize_t events_read(void *stream, char *buf, size_t size) {
        events_stream_t *es = stream;
        size_t n            = 0;
        int tries;

        for (tries = 0; tries < 2; tries++) {
                while (n < size) {
                        size_t chunk;
                        if (es->pending_off == es->pending_len) {
                                es->pending_off = es->pending_len = 0;
                                if (!stream_fill(es))
                                        break;
                        }
                        chunk =
                            SQ_MIN(size - n, es->pending_len - es->pending_off);
                        memcpy(buf + n, es->pending + es->pending_off, chunk);
                        es->pending_off += chunk;
                        n += chunk;
                }
                if (n > 0)
                        break;
                /* Nothing now: park unless an event slipped in since the
                 * read (then read once more) or the rate holds us back
                 * (then the server's tick wakes us). */
                if (es->tokens < 1 ||
                    sq_eventring_arm(es->daemon->events, es->cursor))
                        break;
        }
        if (n == 0 &&
            sq_clock_us() - es->last_write_us >= EVENTS_KEEPALIVE_US) {
                static const char keepalive[] = ": keep-alive\n\n";
                n = SQ_MIN(size, sizeof(keepalive) - 1);
                memcpy(buf, keepalive, n);
        }
        if (n > 0)
                es->last_write_us = sq_clock_us();
        return (ssize_t)n;
}

static void events_free(void *stream) {
        events_stream_t *es = stream;
        atomic_fetch_sub(&es->daemon->events_clients, 1);
        sq_free(es->pending);
        sq_free(es);
}

void sq_status_events_notify(void *opaque) {
        sq_daemon_t *daemon = opaque;
        if (daemon->http)
                sq_http_streams_wake(daemon->http);
}

/* ?format=json: a page of the ring, oldest first. With task_id=ID only
 * that task's events, looked for in the whole ring from @p since (the
 * live page's task lookup): the ring is read in pages of @p limit. */
static void events_json_page(sq_daemon_t *daemon, uint64_t since,
                             sq_http_response_t *resp) {
        const char *limit_arg = sq_http_request_arg(resp->req, "limit");
        const char *task_id   = sq_http_request_arg(resp->req, "task_id");
        json_t *doc = json_object(), *arr = json_array();
        sq_ring_event_t *batch;
        int64_t limit = 100;
        uint64_t missed;
        size_t cnt, i, found = 0;

        if (limit_arg &&
            sq_parse_int64(limit_arg, 1, EVENTS_JSON_LIMIT, &limit) != SQ_OK) {
                json_decref(doc);
                json_decref(arr);
                sq_http_respond(resp, 400, NULL,
                                "invalid limit=%s: expected 1 to %d\n",
                                limit_arg, EVENTS_JSON_LIMIT);
                return;
        }
        if (task_id && (!*task_id || strlen(task_id) >= SQ_EVENTRING_ID_MAX)) {
                json_decref(doc);
                json_decref(arr);
                sq_http_respond(resp, 400, NULL,
                                "invalid task_id: expected 1 to %d bytes\n",
                                SQ_EVENTRING_ID_MAX - 1);
                return;
        }
        batch = sq_malloc((size_t)limit * sizeof(*batch));
        if (!task_id) {
                cnt = sq_eventring_read(daemon->events, since, batch,
                                        (size_t)limit, &missed);
                for (i = 0; i < cnt; i++)
                        json_array_append_new(arr,
                                              event_json(daemon, &batch[i]));
        } else {
                uint64_t skipped;

                missed = 0;
                while (found < (size_t)limit &&
                       (cnt = sq_eventring_read(daemon->events, since, batch,
                                                (size_t)limit, &skipped)) > 0) {
                        missed += skipped;
                        for (i = 0; i < cnt && found < (size_t)limit; i++) {
                                if (strcmp(batch[i].task_id, task_id) != 0)
                                        continue;
                                json_array_append_new(
                                    arr, event_json(daemon, &batch[i]));
                                found++;
                        }
                        since = batch[cnt - 1].seq;
                }
        }
        sq_free(batch);
        json_object_set_new(
            doc, "last_seq",
            json_integer((json_int_t)sq_eventring_last_seq(daemon->events)));
        json_object_set_new(doc, "missed", json_integer((json_int_t)missed));
        json_object_set_new(doc, "events", arr);
        resp->status       = 200;
        resp->content_type = "application/json";
        resp->body         = jdump(doc, &resp->body_len);
}

static void http_events(void *opaque, const char *method, const char *path,
                        sq_http_response_t *resp) {
        sq_daemon_t *daemon   = opaque;
        const char *since_arg = sq_http_request_arg(resp->req, "since");
        const char *last_id =
            sq_http_request_header(resp->req, "Last-Event-ID");
        const char *format = sq_http_request_arg(resp->req, "format");
        uint64_t last      = sq_eventring_last_seq(daemon->events);
        uint64_t since;
        events_stream_t *es;

        (void)method;
        (void)path;
        /* Last-Event-ID (a reconnecting EventSource) wins over since=. */
        if (last_id && *last_id) {
                if (!parse_seq(last_id, &since)) {
                        sq_http_respond(resp, 400, NULL,
                                        "invalid Last-Event-ID \"%.64s\": "
                                        "expected an event sequence number\n",
                                        last_id);
                        return;
                }
        } else if (since_arg) {
                if (!parse_seq(since_arg, &since)) {
                        sq_http_respond(resp, 400, NULL,
                                        "invalid since=%.64s: expected an "
                                        "event sequence number\n",
                                        since_arg);
                        return;
                }
        } else if (format && sq_http_request_arg(resp->req, "task_id")) {
                since = 0; /* a task's events: the whole ring */
        } else {
                since = last > EVENTS_BACKLOG ? last - EVENTS_BACKLOG : 0;
        }
        if (format && strcmp(format, "json") != 0) {
                sq_http_respond(resp, 400, NULL,
                                "invalid format=%.32s: expected json (or no "
                                "format for Server-Sent Events)\n",
                                format);
                return;
        }
        if (format) {
                events_json_page(daemon, since, resp);
                return;
        }
        if (sq_http_request_arg(resp->req, "task_id")) {
                sq_http_respond(resp, 400, NULL,
                                "task_id= looks a task up in the recent "
                                "events and needs format=json\n");
                return;
        }
        if (atomic_fetch_add(&daemon->events_clients, 1) >=
            daemon->conf->http_events_clients) {
                atomic_fetch_sub(&daemon->events_clients, 1);
                sq_http_respond(resp, 503, NULL,
                                "too many /events clients (%d, "
                                "http.events.clients)\n",
                                daemon->conf->http_events_clients);
                return;
        }
        es                = sq_calloc(1, sizeof(*es));
        es->daemon        = daemon;
        es->cursor        = since;
        es->tokens        = daemon->conf->http_events_rate;
        es->refill_us     = sq_clock_us();
        es->last_write_us = es->refill_us;
        pending_printf(es, "retry: %d\n\n", EVENTS_RETRY_MS);
        resp->status       = 200;
        resp->content_type = "text/event-stream; charset=utf-8";
        resp->stream       = es;
        resp->stream_read  = events_read;
        resp->stream_free  = events_free;
        sq_http_response_header(resp, "X-Accel-Buffering", "no");
}

/*
 * The live page
 */

static void http_www(void *opaque, const char *method, const char *path,
                     sq_http_response_t *resp) {
        const struct sq_www_file *file = opaque;
        (void)method;
        (void)path;
        resp->status       = 200;
        resp->content_type = file->content_type;
        resp->body         = sq_memdup(file->data, file->len);
        resp->body_len     = file->len;
}

void sq_status_routes(sq_daemon_t *daemon) {
        const struct sq_www_file *file;

        sq_http_route(daemon->http, "/status", "GET", http_status, daemon);
        sq_http_route(daemon->http, "/events", "GET", http_events, daemon);
        for (file = sq_www_files; file->path; file++)
                sq_http_route(daemon->http, file->path, "GET", http_www,
                              (void *)file);
}

static void collect_clients(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(out, "swarmq_events_clients", NULL,
                        atomic_load(&daemon->events_clients));
}

void sq_status_register_metrics(sq_daemon_t *daemon) {
        sq_mfamily_t *fam = sq_metrics_family(
            daemon->metrics, "swarmq_events_dropped_total",
            "Events an /events client skipped because it fell more than "
            "http.events.rate events behind or the ring overwrote them",
            SQ_METRIC_COUNTER, NULL, NULL, 0);
        daemon->m.events_dropped = sq_metrics_child(fam, NULL);
        sq_metrics_collector(daemon->metrics, "swarmq_events_clients",
                             "Open /events streams", SQ_METRIC_GAUGE,
                             collect_clients, daemon);
}
