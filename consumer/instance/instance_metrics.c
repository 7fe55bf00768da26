/* SPDX-License-Identifier: Apache-2.0 */
/*
 * instance_metrics.c: the instance's Prometheus metrics: the families and
 * the hot-path children it keeps (sq_daemon_metrics_t), each agent's
 * children, and the collectors that render gauges from atomics and
 * snapshots at scrape time.
 *
 * DESIGN
 *   Threads: registration runs on main, while the instance is built
 *   (sq_daemon_new) and on a reload (the signal thread) for the new
 *   registry's agents; the registry finds an existing child again, so a
 *   reloaded agent keeps its counters. Children are updated lock-free from
 *   any thread. Collectors run on the HTTP thread at scrape time and read
 *   atomics, the scheduler's and agents' thread-safe getters (an agents
 *   reference taken and released), and the partition snapshots under
 *   snap_lock.
 */
#include "daemon_int.h"
#include "instance_metrics_int.h"
#include "registry_int.h"
#include "status.h"

#include <stdio.h>

static void collect_lanes(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        char labels[64];
        int prio;
        (void)metrics;
        for (prio = SQ_PRIO_CNT - 1; prio >= 0; prio--) {
                snprintf(labels, sizeof(labels), "lane=\"%s\"",
                         sq_priority_name((sq_priority_t)prio));
                sq_metrics_emit(
                    out, "swarmq_lane_depth", labels,
                    (double)sq_sched_depth(daemon->sched, (sq_priority_t)prio));
        }
}

static void collect_window(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(
            out, "swarmq_tasks_in_flight", "lane=\"tasks\"",
            (double)atomic_load(&daemon->partitions.window[SQ_LANE_TASKS]));
        sq_metrics_emit(
            out, "swarmq_tasks_in_flight", "lane=\"critical\"",
            (double)atomic_load(&daemon->partitions.window[SQ_LANE_CRITICAL]));
        sq_metrics_emit(
            out, "swarmq_tasks_in_flight", "lane=\"retry\"",
            (double)atomic_load(&daemon->partitions.window[SQ_LANE_RETRY]));
}

static void collect_paused(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(out, "swarmq_admission_paused", NULL,
                        atomic_load(&daemon->admission.paused_any) ? 1 : 0);
}

static void collect_mem_paused(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(out, "swarmq_memory_paused", NULL,
                        atomic_load(&daemon->admission.mem_paused_flag) ? 1
                                                                        : 0);
}

static const char *const agent_gauges[][2] = {
    {"swarmq_agent_in_flight", "Tasks running on each agent"},
    {"swarmq_agent_concurrency", "Each agent's concurrency limit"},
    {"swarmq_agent_parked", "Tasks parked waiting for a slot on each agent"},
    {"swarmq_agent_success_rate",
     "EWMA (alpha 0.2) of each agent's task successes, 0 to 1"},
    {"swarmq_agent_latency_seconds",
     "EWMA (alpha 0.2) of each agent's task run time"},
    {"swarmq_agent_breaker_state",
     "Each agent's circuit breaker: 0 closed, 1 half-open, 2 open"},
};

const char *sq_dl_reason_name(sq_dl_reason_t reason) {
        static const char *const names[SQ_DL_REASON_CNT] = {
            "DECODE_ERROR", "FAILED",           "TIMED_OUT",
            "NO_AGENT",     "OUTPUT_TOO_LARGE", "RECORD_REFUSED"};
        return (unsigned)reason < SQ_DL_REASON_CNT ? names[reason] : "?";
}

/* One per-agent gauge, each agent's figures from one snapshot. */
static void collect_agents(void *opaque, sq_metrics_t *metrics, void *out) {
        struct sq_agent_collect_s *ac = opaque;
        sq_agents_t *agents           = sq_daemon_agents(ac->daemon);
        char name[256], labels[320];
        int i;
        (void)metrics;
        for (i = 0; i < sq_agents_count(agents); i++) {
                sq_agent_t *agent = sq_agents_get(agents, i);
                sq_agent_stats_t st;
                double v[SQ_ARRAY_SIZE(agent_gauges)];
                sq_agent_stats(agent, &st);
                v[0] = st.in_flight;
                v[1] = st.concurrency;
                v[2] = st.parked;
                v[3] = st.success_rate;
                v[4] = st.latency_us / 1e6;
                v[5] = st.breaker;
                sq_metrics_escape_label(name, sizeof(name),
                                        sq_agent_name(agent));
                snprintf(labels, sizeof(labels), "agent=\"%s\"", name);
                sq_metrics_emit(out, agent_gauges[ac->which][0], labels,
                                v[ac->which]);
        }
        sq_agents_release_ref(agents);
}

static void collect_breaker_transitions(void *opaque, sq_metrics_t *metrics,
                                        void *out) {
        sq_daemon_t *daemon = opaque;
        sq_agents_t *agents = sq_daemon_agents(daemon);
        char name[256], labels[360];
        int i, to;
        (void)metrics;
        for (i = 0; i < sq_agents_count(agents); i++) {
                sq_agent_t *agent = sq_agents_get(agents, i);
                sq_agent_stats_t st;
                sq_agent_stats(agent, &st);
                sq_metrics_escape_label(name, sizeof(name),
                                        sq_agent_name(agent));
                for (to = 0; to < SQ_BREAKER_STATE_CNT; to++) {
                        snprintf(labels, sizeof(labels),
                                 "agent=\"%s\",to=\"%s\"", name,
                                 sq_breaker_state_name((sq_breaker_state_t)to));
                        sq_metrics_emit(
                            out, "swarmq_agent_breaker_transitions_total",
                            labels, (double)st.transitions[to]);
                }
        }
        sq_agents_release_ref(agents);
}

static void collect_flags(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        char labels[128];
        int f;
        (void)metrics;
        for (f = 0; f < SQ_FLAG_CNT; f++) {
                snprintf(labels, sizeof(labels), "flag=\"%s\"",
                         sq_flag_name((sq_flag_t)f));
                sq_metrics_emit(out, "swarmq_flag_rollout_percent", labels,
                                sq_flags_rollout(&daemon->flags, (sq_flag_t)f) /
                                    100.0);
        }
}

/* Creates (or finds again, after a reload) the agents' metric children. */
void sq_instance_metrics_register_agents(sq_daemon_t *daemon,
                                         sq_agents_t *agents) {
        int a, s, p;
        for (a = 0; a < sq_agents_count(agents); a++) {
                sq_agent_t *agent      = sq_agents_get(agents, a);
                sq_agent_metrics_t *am = sq_agent_metrics(agent);
                const char *name[]     = {sq_agent_name(agent)};
                for (s = 0; s < SQ_STATUS_CNT; s++)
                        for (p = 0; p < SQ_PRIO_CNT; p++) {
                                const char *values[3];
                                values[0] = sq_status_name((sq_status_t)s);
                                values[1] = sq_agent_name(agent);
                                values[2] = sq_priority_name((sq_priority_t)p);
                                am->tasks[s][p] = sq_metrics_child(
                                    daemon->m.tasks_family, values);
                        }
                am->duration =
                    sq_metrics_child(daemon->m.duration_family, name);
        }
}

static void collect_assigned(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(out, "swarmq_partitions_assigned", "lane=\"tasks\"",
                        (double)atomic_load(
                            &daemon->partitions.assigned_cnt[SQ_LANE_TASKS]));
        sq_metrics_emit(
            out, "swarmq_partitions_assigned", "lane=\"critical\"",
            (double)atomic_load(
                &daemon->partitions.assigned_cnt[SQ_LANE_CRITICAL]));
        sq_metrics_emit(out, "swarmq_partitions_assigned", "lane=\"retry\"",
                        (double)atomic_load(
                            &daemon->partitions.assigned_cnt[SQ_LANE_RETRY]));
}

static void collect_lag(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        sq_partition_t *part;
        char topic[256], labels[320];
        int lane, i;
        (void)metrics;
        pthread_mutex_lock(&daemon->snap_lock);
        SQ_FOREACH_PARTITION(daemon, lane, i, part) {
                if (part->lag < 0)
                        continue;
                sq_metrics_escape_label(topic, sizeof(topic), part->topic);
                snprintf(labels, sizeof(labels),
                         "topic=\"%s\",partition=\"%d\"", topic,
                         (int)part->partition);
                sq_metrics_emit(out, "swarmq_consumer_lag", labels,
                                (double)part->lag);
        }
        pthread_mutex_unlock(&daemon->snap_lock);
}

/* One sample per assigned partition: the last commit's map length or the
 * offsets it marks done. */
static void emit_map_gauge(sq_daemon_t *daemon, void *out, const char *name,
                           bool done) {
        sq_partition_t *part;
        char topic[256], labels[320];
        int lane, i;
        pthread_mutex_lock(&daemon->snap_lock);
        SQ_FOREACH_PARTITION(daemon, lane, i, part) {
                if (part->lag < 0)
                        continue; /* not assigned (or no snapshot yet) */
                sq_metrics_escape_label(topic, sizeof(topic), part->topic);
                snprintf(labels, sizeof(labels),
                         "topic=\"%s\",partition=\"%d\"", topic,
                         (int)part->partition);
                sq_metrics_emit(out, name, labels,
                                done ? (double)part->map_done_snap
                                     : (double)part->map_bytes);
        }
        pthread_mutex_unlock(&daemon->snap_lock);
}

static void collect_order_held(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(out, "swarmq_ordering_held", NULL,
                        (double)atomic_load(&daemon->partitions.order_held));
}

static void collect_dedup(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(out, "swarmq_dedup_entries", NULL,
                        (double)atomic_load(&daemon->admission.dedup_entries));
}

static void collect_map_bytes(void *opaque, sq_metrics_t *metrics, void *out) {
        (void)metrics;
        emit_map_gauge(opaque, out, "swarmq_offset_map_bytes", false);
}

static void collect_map_done(void *opaque, sq_metrics_t *metrics, void *out) {
        (void)metrics;
        emit_map_gauge(opaque, out, "swarmq_offset_map_done", true);
}

/* The labelled task families and their hot-path children: build info,
 * tasks finished without an agent, records received, dead letters. */
static void register_task_families(sq_daemon_t *daemon) {
        static const char *const tasks_labels[] = {"status", "agent",
                                                   "priority", NULL};
        static const char *const lane_label[]   = {"lane", NULL};
        static const char *const reason_label[] = {"reason", NULL};
        static const char *const info_labels[]  = {"version", "instance",
                                                   "group", NULL};
        sq_metrics_t *metrics                   = daemon->metrics;
        sq_daemon_metrics_t *m                  = &daemon->m;
        sq_mfamily_t *fam;
        int s, p;

        fam = sq_metrics_family(metrics, "swarmq_build_info",
                                "Build and instance information (always 1)",
                                SQ_METRIC_GAUGE, info_labels, NULL, 0);
        {
                const char *values[] = {SWARMQ_VERSION,
                                        daemon->conf->instance_id,
                                        daemon->conf->group_id};
                sq_metric_set(sq_metrics_child(fam, values), 1);
        }
        fam             = sq_metrics_family(metrics, "swarmq_tasks_total",
                                            "Tasks finished, by status, agent and "
                                                        "priority",
                                            SQ_METRIC_COUNTER, tasks_labels, NULL, 0);
        m->tasks_family = fam;
        for (s = 0; s < SQ_STATUS_CNT; s++)
                for (p = 0; p < SQ_PRIO_CNT; p++) {
                        const char *values[3];
                        values[0] = sq_status_name((sq_status_t)s);
                        values[1] = "none";
                        values[2] = sq_priority_name((sq_priority_t)p);
                        m->tasks_none[s][p] = sq_metrics_child(fam, values);
                }
        fam = sq_metrics_family(metrics, "swarmq_records_received_total",
                                "Task records admitted from Kafka, by lane",
                                SQ_METRIC_COUNTER, lane_label, NULL, 0);
        {
                const char *tasks[] = {"tasks"}, *crit[] = {"critical"};
                const char *retry[]           = {"retry"};
                m->received[SQ_LANE_TASKS]    = sq_metrics_child(fam, tasks);
                m->received[SQ_LANE_CRITICAL] = sq_metrics_child(fam, crit);
                m->received[SQ_LANE_RETRY]    = sq_metrics_child(fam, retry);
        }
        fam = sq_metrics_family(metrics, "swarmq_dead_letters_total",
                                "Records sent to the dead-letter topic, by "
                                "reason",
                                SQ_METRIC_COUNTER, reason_label, NULL, 0);
        for (s = 0; s < SQ_DL_REASON_CNT; s++) {
                const char *reason[] = {sq_dl_reason_name((sq_dl_reason_t)s)};
                m->dead_letters[s]   = sq_metrics_child(fam, reason);
        }
}

/* The unlabelled counters: one family each, and its only child kept for
 * the hot path. */
static void register_counters(sq_daemon_t *daemon) {
        sq_metrics_t *metrics  = daemon->metrics;
        sq_daemon_metrics_t *m = &daemon->m;
        const struct {
                const char *name;
                const char *help;
                sq_metric_t **slot;
        } counters[] = {
            {"swarmq_retries_total",
             "Failed or timed-out attempts re-published to the retry topic",
             &m->retries},
            {"swarmq_retry_waits_total",
             "Times a retry partition paused until its head record was due",
             &m->retry_waits},
            {"swarmq_tasks_delayed_total",
             "Tasks read before their not_before, moved to the retry topic "
             "to wait there",
             &m->delayed},
            {"swarmq_delay_hops_total",
             "Retry-topic records not due after delay.hold.max.ms at the head "
             "of their partition, produced again at its end",
             &m->delay_hops},
            {"swarmq_tasks_stolen_total",
             "Parked tasks an agent with a free slot took over from another "
             "agent (work stealing)",
             &m->stolen},
            {"swarmq_delivery_errors_total",
             "Records the broker did not acknowledge (produced again when they "
             "gate a commit)",
             &m->delivery_errors},
            {"swarmq_records_refused_total",
             "Records Kafka refused for what they are (too large, invalid): "
             "replaced by a smaller one, never produced again as they were",
             &m->records_refused},
            {"swarmq_tasks_dropped_total",
             "Admitted tasks abandoned before finishing (partition revoked, "
             "instance stopping); their records run again elsewhere",
             &m->dropped},
            {"swarmq_partitions_assigned_total",
             "Partitions assigned to this instance", &m->assigned_partitions},
            {"swarmq_partitions_revoked_total",
             "Partitions revoked from this instance", &m->revoked_partitions},
            {"swarmq_admission_pauses_total",
             "Times intake paused because the admission window stayed at its "
             "high mark for 500 ms or memory reached its limit",
             &m->pauses},
            {"swarmq_admission_holds_total",
             "Times intake held its records in the consumer's prefetch "
             "because the admission window reached its high mark (a hold "
             "lasting 500 ms becomes a pause)",
             &m->holds},
            {"swarmq_memory_pauses_total",
             "Times intake paused because resident memory reached 90% of "
             "memory.limit.bytes",
             &m->memory_pauses},
            {"swarmq_completed_skipped_total",
             "Records not run because the previous owner's completed-offset "
             "map says they were finished",
             &m->completed_skipped},
            {"swarmq_priority_demoted_total",
             "Tasks with priority CRITICAL read from topic.tasks, run as HIGH "
             "(the reserved slots belong to topic.critical)",
             &m->priority_demoted},
            {"swarmq_duplicates_dropped_total",
             "Deliveries of a task id that already succeeded within "
             "dedup.ttl.ms, not run again",
             &m->duplicates_dropped},
            {"swarmq_offset_map_pauses_total",
             "Times a partition paused because its completed-offset map neared "
             "commit.metadata.max.bytes",
             &m->map_pauses},
        };
        sq_mfamily_t *fam;
        int s;

        for (s = 0; s < (int)SQ_ARRAY_SIZE(counters); s++) {
                fam               = sq_metrics_family(metrics, counters[s].name,
                                                      counters[s].help, SQ_METRIC_COUNTER,
                                                      NULL, NULL, 0);
                *counters[s].slot = sq_metrics_child(fam, NULL);
        }
}

/* Histograms (selection, run time, schedule latency), the agents'
 * children, reload and commit results, the memory limit. */
static void register_results(sq_daemon_t *daemon) {
        static const char *const agent_label[]  = {"agent", NULL};
        static const char *const result_label[] = {"result", NULL};
        static const char *const step_label[]   = {"reason", NULL};
        static const char *const prio_label[]   = {"priority", NULL};
        sq_metrics_t *metrics                   = daemon->metrics;
        sq_daemon_metrics_t *m                  = &daemon->m;
        sq_mfamily_t *fam;
        int p;

        fam = sq_metrics_family(
            metrics, "swarmq_selection_seconds",
            "Time to select an agent for a task", SQ_METRIC_HISTOGRAM, NULL,
            sq_metrics_buckets_selection, sq_metrics_buckets_selection_cnt);
        m->selection = sq_metrics_child(fam, NULL);
        fam          = sq_metrics_family(
                     metrics, "swarmq_task_duration_seconds",
                     "Task run time on its agent", SQ_METRIC_HISTOGRAM, agent_label,
                     sq_metrics_buckets_duration, sq_metrics_buckets_duration_cnt);
        m->duration_family = fam;
        {
                sq_agents_t *agents = sq_daemon_agents(daemon);
                sq_instance_metrics_register_agents(daemon, agents);
                sq_agents_release_ref(agents);
        }
        fam = sq_metrics_family(metrics, "swarmq_config_reloads_total",
                                "Configuration reloads (SIGHUP), by result",
                                SQ_METRIC_COUNTER, result_label, NULL, 0);
        {
                const char *ok[] = {"ok"}, *failed[] = {"error"};
                m->reloads_ok    = sq_metrics_child(fam, ok);
                m->reloads_error = sq_metrics_child(fam, failed);
        }
        fam = sq_metrics_family(metrics, "swarmq_commits_total",
                                "Offset commits, by result", SQ_METRIC_COUNTER,
                                result_label, NULL, 0);
        {
                const char *ok[] = {"ok"}, *failed[] = {"error"};
                m->commits_ok     = sq_metrics_child(fam, ok);
                m->commits_failed = sq_metrics_child(fam, failed);
        }
        fam = sq_metrics_family(
            metrics, "swarmq_transactions_aborted_total",
            "processing.guarantee=exactly_once: transactions aborted on an "
            "abortable error (the instance rewound and carried on), by the "
            "step that failed",
            SQ_METRIC_COUNTER, step_label, NULL, 0);
        for (int s = 0; s < SQ_TXN_STEP_CNT; s++) {
                const char *step[] = {sq_txn_step_name((sq_txn_step_t)s)};
                m->txn_aborted[s]  = sq_metrics_child(fam, step);
        }
        fam = sq_metrics_family(metrics, "swarmq_memory_limit_bytes",
                                "memory.limit.bytes (0: no limit)",
                                SQ_METRIC_GAUGE, NULL, NULL, 0);
        sq_metric_set(sq_metrics_child(fam, NULL),
                      (double)daemon->conf->memory_limit_bytes);
        fam = sq_metrics_family(
            metrics, "swarmq_schedule_latency_seconds",
            "Time from a task's admission to its start on an agent, by "
            "priority",
            SQ_METRIC_HISTOGRAM, prio_label, sq_metrics_buckets_duration,
            sq_metrics_buckets_duration_cnt);
        for (p = 0; p < SQ_PRIO_CNT; p++) {
                const char *values[] = {sq_priority_name((sq_priority_t)p)};
                m->sched_latency[p]  = sq_metrics_child(fam, values);
        }
}

/* The gauges rendered at scrape time (HTTP thread). */
static void register_collectors(sq_daemon_t *daemon) {
        sq_metrics_t *metrics = daemon->metrics;
        int s;

        sq_metrics_collector(metrics, "swarmq_tasks_in_flight",
                             "Tasks admitted and not yet finished and "
                             "acknowledged (the admission window), by lane",
                             SQ_METRIC_GAUGE, collect_window, daemon);
        sq_metrics_collector(metrics, "swarmq_lane_depth",
                             "Tasks queued for an executor, by priority lane",
                             SQ_METRIC_GAUGE, collect_lanes, daemon);
        sq_metrics_collector(metrics, "swarmq_admission_paused",
                             "1 while intake is paused by backpressure",
                             SQ_METRIC_GAUGE, collect_paused, daemon);
        for (s = 0; s < (int)SQ_ARRAY_SIZE(agent_gauges); s++) {
                daemon->m.agent_collect[s].daemon = daemon;
                daemon->m.agent_collect[s].which  = s;
                sq_metrics_collector(metrics, agent_gauges[s][0],
                                     agent_gauges[s][1], SQ_METRIC_GAUGE,
                                     collect_agents,
                                     &daemon->m.agent_collect[s]);
        }
        sq_metrics_collector(metrics, "swarmq_agent_breaker_transitions_total",
                             "Circuit breaker transitions, by agent and "
                             "the state entered",
                             SQ_METRIC_COUNTER, collect_breaker_transitions,
                             daemon);
        sq_metrics_collector(metrics, "swarmq_flag_rollout_percent",
                             "Feature flag rollouts: 100 on, 0 off, else "
                             "the share of task ids on the flagged path",
                             SQ_METRIC_GAUGE, collect_flags, daemon);
        sq_metrics_collector(metrics, "swarmq_partitions_assigned",
                             "Partitions this instance owns now, by lane",
                             SQ_METRIC_GAUGE, collect_assigned, daemon);
        sq_metrics_collector(metrics, "swarmq_ordering_held",
                             "Tasks held until the task before them on "
                             "their ordering key finishes",
                             SQ_METRIC_GAUGE, collect_order_held, daemon);
        sq_metrics_collector(metrics, "swarmq_dedup_entries",
                             "Succeeded task ids remembered for dedup",
                             SQ_METRIC_GAUGE, collect_dedup, daemon);
        sq_metrics_collector(metrics, "swarmq_offset_map_bytes",
                             "Length of the completed-offset map in the "
                             "last commit, by topic and partition",
                             SQ_METRIC_GAUGE, collect_map_bytes, daemon);
        sq_metrics_collector(metrics, "swarmq_offset_map_done",
                             "Records above the committed offset that the "
                             "last commit's map marks finished, by topic "
                             "and partition",
                             SQ_METRIC_GAUGE, collect_map_done, daemon);
        sq_metrics_collector(metrics, "swarmq_consumer_lag",
                             "Records in the partition after the committable "
                             "offset, by topic and partition",
                             SQ_METRIC_GAUGE, collect_lag, daemon);
        sq_schedules_register_metrics(daemon);
        sq_workflows_register_metrics(daemon);
        sq_ratelimits_register_metrics(daemon);
        sq_variants_register(daemon);
        sq_metrics_collector(metrics, "swarmq_memory_paused",
                             "1 while intake is paused by memory.limit.bytes",
                             SQ_METRIC_GAUGE, collect_mem_paused, daemon);
}

void sq_instance_metrics_register(sq_daemon_t *daemon) {
        /* In this order: /metrics renders the families as registered. */
        register_task_families(daemon);
        register_counters(daemon);
        register_results(daemon);
        register_collectors(daemon);
        sq_metrics_register_process(daemon->metrics);
        sq_status_register_metrics(daemon);
}
