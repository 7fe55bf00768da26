/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ratelimits.c: rate limits per task type or capability
 * (ratelimit.<name>.*), applied across the group: each instance takes a
 * share of each limit by the partitions it owns, and holds back the tasks
 * that would go over it.
 *
 * DESIGN
 *   Share: tasks are spread over the partitions of the group's topics
 *   (topic.tasks, topic.critical, topic.retry) by their keys, so an
 *   instance owning k of their n partitions sees about k/n of the tasks
 *   and takes k/n of each limit's rate and burst (ratelimit.h). After
 *   each rebalance the poll thread flags the shares stale; the rate limit
 *   thread reads the partition counts from the metadata (a broker
 *   request, so not on the poll thread) and sets every bucket. With
 *   skewed keys a share can be too small or too large for the tasks an
 *   instance really gets: the group then runs below the limit, never
 *   above it for long (the burst is shared the same way).
 *
 *   Holding: an executor that pops a job reserves a token of every limit
 *   its task matches (sq_ratelimit_reserve() says when the task may
 *   start). A job that may start now runs at once; another goes to the
 *   hold lane, a min-heap by start time under `lock`, and the executor
 *   moves on: a held task takes no executor, and other tasks keep
 *   running. The rate limit thread sleeps on a condition variable until
 *   the earliest start (a timer, woken early when an earlier one comes)
 *   and pushes the due jobs back to the scheduler; the job remembers it
 *   has its token (rl_passed). Held jobs count in the admission window,
 *   so a backlog of limited tasks is bounded by admission.high.mark like
 *   any other.
 *
 *   Revocation and stop: held jobs of a revoked partition (all of them at
 *   stop) are dropped at once, not run: their records are not committed
 *   and the partition's next owner takes them under its own share. A job
 *   that would be held while its partition drains is dropped the same
 *   way.
 */
#include "daemon_int.h"
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void sq_ratelimits_init(sq_daemon_t *daemon) {
        sq_ratelimits_t *r      = &daemon->ratelimits;
        const sq_config_t *conf = daemon->conf;
        pthread_condattr_t attr;
        size_t i;

        r->cnt = conf->ratelimits_cnt;
        pthread_mutex_init(&r->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&r->cond, &attr);
        pthread_condattr_destroy(&attr);
        if (!r->cnt)
                return;
        r->buckets = sq_calloc(r->cnt, sizeof(*r->buckets));
        r->held    = sq_calloc(r->cnt, sizeof(*r->held));
        r->delayed = sq_calloc(r->cnt, sizeof(*r->delayed));
        for (i = 0; i < r->cnt; i++) {
                sq_ratelimit_init(
                    &r->buckets[i], conf->ratelimits[i].rate,
                    sq_config_ratelimit_burst(&conf->ratelimits[i]));
                atomic_init(&r->held[i], 0);
                atomic_init(&r->delayed[i], 0);
        }
}

void sq_ratelimits_term(sq_daemon_t *daemon) {
        sq_ratelimits_t *r = &daemon->ratelimits;
        size_t i;

        for (i = 0; i < r->cnt && r->buckets; i++)
                sq_ratelimit_term(&r->buckets[i]);
        sq_free(r->buckets);
        sq_free(r->held);
        sq_free(r->delayed);
        sq_free(r->heap);
        r->buckets = NULL;
        r->held    = NULL;
        r->delayed = NULL;
        r->heap    = NULL;
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
}

static bool matches(const sq_ratelimit_conf_t *rl, const sq_task_t *task) {
        size_t c;

        if (rl->type)
                return task->type && !strcmp(rl->type, task->type);
        /* A task with no capabilities is routed by its type (agents.c). */
        if (!task->capabilities_cnt)
                return task->type && !strcmp(rl->capability, task->type);
        for (c = 0; c < task->capabilities_cnt; c++)
                if (!strcmp(rl->capability, task->capabilities[c]))
                        return true;
        return false;
}

/* The heap, by start_us (r->lock held). */
static void heap_up(sq_ratelimits_t *r, size_t i) {
        while (i > 0) {
                size_t parent = (i - 1) / 2;
                sq_rl_held_t tmp;
                if (r->heap[parent].start_us <= r->heap[i].start_us)
                        break;
                tmp             = r->heap[parent];
                r->heap[parent] = r->heap[i];
                r->heap[i]      = tmp;
                i               = parent;
        }
}

static void heap_down(sq_ratelimits_t *r, size_t i) {
        for (;;) {
                size_t l = 2 * i + 1, m = i;
                sq_rl_held_t tmp;
                if (l < r->heap_cnt &&
                    r->heap[l].start_us < r->heap[m].start_us)
                        m = l;
                if (l + 1 < r->heap_cnt &&
                    r->heap[l + 1].start_us < r->heap[m].start_us)
                        m = l + 1;
                if (m == i)
                        break;
                tmp        = r->heap[m];
                r->heap[m] = r->heap[i];
                r->heap[i] = tmp;
                i          = m;
        }
}

static sq_rl_held_t heap_pop(sq_ratelimits_t *r) {
        sq_rl_held_t top = r->heap[0];
        r->heap[0]       = r->heap[--r->heap_cnt];
        heap_down(r, 0);
        return top;
}

bool sq_ratelimits_hold(sq_daemon_t *daemon, sq_job_t *job) {
        sq_ratelimits_t *r    = &daemon->ratelimits;
        const sq_task_t *task = job->task;
        int64_t now, start = 0;
        size_t i, which    = 0;
        bool any = false;

        if (job->rl_passed)
                return false;
        job->rl_passed = true;
        now            = sq_clock_us();
        for (i = 0; i < r->cnt; i++) {
                int64_t s;
                if (!matches(&daemon->conf->ratelimits[i], task))
                        continue;
                s = sq_ratelimit_reserve(&r->buckets[i], now);
                if (!any || s > start) {
                        start = s;
                        which = i;
                }
                any = true;
        }
        if (!any || start <= now + 1000) /* within a millisecond: now */
                return false;
        if (atomic_load(&daemon->stop_requested) ||
            atomic_load(&job->part->revoking)) {
                sq_job_drop(daemon, job,
                            "rate-limited task left for the partition's "
                            "next owner");
                return true;
        }
        atomic_fetch_add(&r->held[which], 1);
        atomic_fetch_add(&r->delayed[which], 1);
        pthread_mutex_lock(&r->lock);
        if (r->heap_cnt == r->heap_cap) {
                r->heap_cap = r->heap_cap ? 2 * r->heap_cap : 64;
                r->heap = sq_realloc(r->heap, r->heap_cap * sizeof(*r->heap));
        }
        r->heap[r->heap_cnt].start_us = start;
        r->heap[r->heap_cnt].job      = job;
        r->heap[r->heap_cnt].limit    = which;
        heap_up(r, r->heap_cnt++);
        /* A new earliest start: the thread sleeps until the old one. */
        if (r->heap[0].job == job)
                pthread_cond_signal(&r->cond);
        pthread_mutex_unlock(&r->lock);
        return true;
}

void sq_ratelimits_drop_held(sq_daemon_t *daemon, bool all) {
        sq_ratelimits_t *r = &daemon->ratelimits;
        sq_rl_held_t *drop = NULL;
        size_t drop_cnt = 0, i, kept = 0;

        if (!r->cnt)
                return;
        pthread_mutex_lock(&r->lock);
        if (r->heap_cnt)
                drop = sq_malloc(r->heap_cnt * sizeof(*drop));
        for (i = 0; i < r->heap_cnt; i++) {
                if (all || atomic_load(&r->heap[i].job->part->revoking))
                        drop[drop_cnt++] = r->heap[i];
                else
                        r->heap[kept++] = r->heap[i];
        }
        r->heap_cnt = kept;
        for (i = kept / 2 + 1; i-- > 0;)
                heap_down(r, i);
        pthread_mutex_unlock(&r->lock);
        for (i = 0; i < drop_cnt; i++) {
                atomic_fetch_sub(&r->held[drop[i].limit], 1);
                sq_job_drop(daemon, drop[i].job,
                            all ? "instance stopping: rate-limited task left "
                                  "in Kafka"
                                : "partition revoked: rate-limited task left "
                                  "for its next owner");
        }
        if (drop_cnt)
                SQ_LOG(SQ_LOG_INFO, "RATELIMIT",
                       "%zu held tasks left for the next owner of their "
                       "partitions",
                       drop_cnt);
        sq_free(drop);
}

void sq_ratelimits_rebalanced(sq_daemon_t *daemon) {
        sq_ratelimits_t *r = &daemon->ratelimits;

        if (!r->cnt)
                return;
        pthread_mutex_lock(&r->lock);
        r->rebalanced = true;
        pthread_cond_signal(&r->cond);
        pthread_mutex_unlock(&r->lock);
}

/* Partitions of one topic, -1 when the metadata does not say. */
static int topic_partitions(sq_daemon_t *daemon, const char *topic) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt =
            rd_kafka_topic_new(daemon->consumer, topic, NULL);
        int cnt = -1;

        if (rd_kafka_metadata(daemon->consumer, 0, rkt, &md, 5000) == 0 &&
            md->topic_cnt == 1 && !md->topics[0].err)
                cnt = md->topics[0].partition_cnt;
        if (md)
                rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        return cnt;
}

/* The rate limit thread: this instance's share after a rebalance. */
static void compute_shares(sq_daemon_t *daemon) {
        sq_ratelimits_t *r      = &daemon->ratelimits;
        const sq_config_t *conf = daemon->conf;
        const char *topics[]    = {conf->topic_tasks, conf->topic_critical,
                                   conf->topic_retry};
        int owned = 0, total = 0, lane, t;
        size_t i;

        for (lane = 0; lane < SQ_LANE_CNT; lane++)
                owned += atomic_load(&daemon->partitions.assigned_cnt[lane]);
        for (t = 0; t < (int)SQ_ARRAY_SIZE(topics); t++) {
                int cnt = topic_partitions(daemon, topics[t]);
                if (cnt < 0) {
                        SQ_LOG(SQ_LOG_WARNING, "RATELIMIT",
                               "cannot read the partitions of topic=%s: "
                               "the rate limits keep their shares",
                               topics[t]);
                        return;
                }
                total += cnt;
        }
        if (!owned || !total)
                return; /* no partition, no task: keep the last share */
        atomic_store(&r->owned, owned);
        atomic_store(&r->total, total);
        for (i = 0; i < r->cnt; i++)
                sq_ratelimit_set_share(&r->buckets[i],
                                       (double)owned / (double)total);
        SQ_LOG(SQ_LOG_INFO, "RATELIMIT",
               "owning %d of %d partitions: this instance takes %.3f of "
               "each of its %zu rate limits",
               owned, total, (double)owned / (double)total, r->cnt);
}

static void *ratelimits_main(void *arg) {
        sq_daemon_t *daemon = arg;
        sq_ratelimits_t *r  = &daemon->ratelimits;

        pthread_mutex_lock(&r->lock);
        while (!r->stopping) {
                int64_t now = sq_clock_us();
                if (r->rebalanced) {
                        r->rebalanced = false;
                        pthread_mutex_unlock(&r->lock);
                        compute_shares(daemon);
                        pthread_mutex_lock(&r->lock);
                } else if (r->heap_cnt && r->heap[0].start_us <= now) {
                        sq_rl_held_t due = heap_pop(r);
                        pthread_mutex_unlock(&r->lock);
                        atomic_fetch_sub(&r->held[due.limit], 1);
                        sq_sched_push(daemon->sched, &due.job->item);
                        pthread_mutex_lock(&r->lock);
                } else if (r->heap_cnt) {
                        struct timespec ts;
                        int64_t at = r->heap[0].start_us;
                        ts.tv_sec  = (time_t)(at / 1000000);
                        ts.tv_nsec = (long)(at % 1000000) * 1000;
                        pthread_cond_timedwait(&r->cond, &r->lock, &ts);
                } else {
                        pthread_cond_wait(&r->cond, &r->lock);
                }
        }
        pthread_mutex_unlock(&r->lock);
        return NULL;
}

sq_err_t sq_ratelimits_start(sq_daemon_t *daemon, char *errstr,
                             size_t errstr_size) {
        sq_ratelimits_t *r = &daemon->ratelimits;
        int rc;

        if (!r->cnt)
                return SQ_OK;
        if ((rc = pthread_create(&r->thread, NULL, ratelimits_main, daemon))) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot start the rate limit thread: %s",
                              strerror(rc));
                return SQ_ERR_IO;
        }
        r->started = true;
        return SQ_OK;
}

void sq_ratelimits_stop(sq_daemon_t *daemon) {
        sq_ratelimits_t *r = &daemon->ratelimits;

        if (!r->started)
                return;
        pthread_mutex_lock(&r->lock);
        r->stopping = true;
        pthread_cond_signal(&r->cond);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->thread, NULL);
        r->started = false;
        sq_ratelimits_drop_held(daemon, true);
}

void sq_ratelimits_reload(sq_daemon_t *daemon, const sq_config_t *conf) {
        sq_ratelimits_t *r = &daemon->ratelimits;
        size_t i, j;

        for (i = 0; i < r->cnt; i++) {
                const sq_ratelimit_conf_t *old = &daemon->conf->ratelimits[i];
                for (j = 0; j < conf->ratelimits_cnt; j++) {
                        const sq_ratelimit_conf_t *rl = &conf->ratelimits[j];
                        if (strcmp(rl->name, old->name))
                                continue;
                        sq_ratelimit_set(&r->buckets[i], rl->rate,
                                         sq_config_ratelimit_burst(rl));
                        SQ_LOG(SQ_LOG_NOTICE, "RATELIMIT",
                               "ratelimit=%s rate=%g burst=%g (the group's; "
                               "this instance takes %.3f)",
                               rl->name, rl->rate,
                               sq_config_ratelimit_burst(rl),
                               sq_ratelimit_read(&r->buckets[i]).share);
                }
        }
}

/*
 * /metrics and /status (HTTP thread)
 */

typedef enum { COLLECT_HELD, COLLECT_DELAYED, COLLECT_RATE } collect_t;

static void collect(sq_daemon_t *daemon, void *out, collect_t what,
                    const char *metric) {
        sq_ratelimits_t *r = &daemon->ratelimits;
        char labels[256], name[160];
        size_t i;

        for (i = 0; i < r->cnt; i++) {
                double v;
                sq_metrics_escape_label(name, sizeof(name),
                                        daemon->conf->ratelimits[i].name);
                snprintf(labels, sizeof(labels), "limit=\"%s\"", name);
                if (what == COLLECT_HELD)
                        v = (double)atomic_load(&r->held[i]);
                else if (what == COLLECT_DELAYED)
                        v = (double)atomic_load(&r->delayed[i]);
                else
                        v = sq_ratelimit_read(&r->buckets[i]).rate;
                sq_metrics_emit(out, metric, labels, v);
        }
}

static void collect_held(void *opaque, sq_metrics_t *metrics, void *out) {
        (void)metrics;
        collect(opaque, out, COLLECT_HELD, "swarmq_ratelimit_held");
}
static void collect_delayed(void *opaque, sq_metrics_t *metrics, void *out) {
        (void)metrics;
        collect(opaque, out, COLLECT_DELAYED, "swarmq_ratelimit_delayed_total");
}
static void collect_rate(void *opaque, sq_metrics_t *metrics, void *out) {
        (void)metrics;
        collect(opaque, out, COLLECT_RATE, "swarmq_ratelimit_rate");
}

void sq_ratelimits_register_metrics(sq_daemon_t *daemon) {
        if (!daemon->ratelimits.cnt)
                return;
        sq_metrics_collector(daemon->metrics, "swarmq_ratelimit_held",
                             "Tasks a rate limit holds back now (waiting "
                             "for their token, no executor taken)",
                             SQ_METRIC_GAUGE, collect_held, daemon);
        sq_metrics_collector(daemon->metrics, "swarmq_ratelimit_delayed_total",
                             "Tasks a rate limit held back before they ran",
                             SQ_METRIC_COUNTER, collect_delayed, daemon);
        sq_metrics_collector(daemon->metrics, "swarmq_ratelimit_rate",
                             "This instance's share of the limit, in tasks "
                             "per second",
                             SQ_METRIC_GAUGE, collect_rate, daemon);
}

void *sq_ratelimits_status(sq_daemon_t *daemon) {
        sq_ratelimits_t *r = &daemon->ratelimits;
        json_t *list       = json_array();
        size_t i;

        for (i = 0; i < r->cnt; i++) {
                const sq_ratelimit_conf_t *rl = &daemon->conf->ratelimits[i];
                json_t *one                   = json_object();
                sq_ratelimit_view_t view = sq_ratelimit_read(&r->buckets[i]);

                json_object_set_new(one, "name", json_string(rl->name));
                if (rl->type)
                        json_object_set_new(one, "type", json_string(rl->type));
                else
                        json_object_set_new(one, "capability",
                                            json_string(rl->capability));
                json_object_set_new(one, "group_rate",
                                    json_real(view.group_rate));
                json_object_set_new(one, "group_burst",
                                    json_real(view.group_burst));
                json_object_set_new(one, "share", json_real(view.share));
                json_object_set_new(one, "rate", json_real(view.rate));
                json_object_set_new(one, "burst", json_real(view.burst));
                json_object_set_new(one, "held",
                                    json_integer(atomic_load(&r->held[i])));
                json_object_set_new(one, "delayed",
                                    json_integer(atomic_load(&r->delayed[i])));
                json_array_append_new(list, one);
        }
        return list;
}
