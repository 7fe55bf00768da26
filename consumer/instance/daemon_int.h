/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_int.h: the instance's private state (struct sq_daemon_s), shared
 * by the instance's files (instance.c lists them), and the functions of
 * the modules that predate the split by concern: kafka.c, emit.c,
 * executor.c and lag.c. Each other concern declares its functions in its
 * own header (partitions_int.h, admission_int.h, commit_int.h, ...).
 *
 * DESIGN
 *   One struct still holds every concern's state; the comments on its
 *   fields say which thread writes them. Ownership of a job:
 *   partitions_int.h.
 */
#ifndef SQ_DAEMON_INT_H
#define SQ_DAEMON_INT_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>

#include "agents.h"
#include "codec.h"
#include "config.h"
#include "daemon.h"
#include "eventring.h"
#include "exec.h"
#include "ioloop.h"
#include "http.h"
#include "metrics.h"
#include "offsets.h"
#include "ordering.h"
#include "pool.h"
#include "retry.h"
#include "scheduler.h"
#include "task.h"
#include "ttlmap.h"
#include "instance_metrics_int.h"
#include "partitions_int.h"

typedef struct sq_executor_s {
        struct sq_daemon_s *daemon;
        pthread_t thread;
        int idx;
        sq_codec_t *codec;
} sq_executor_t;

struct sq_daemon_s {
        sq_config_t *conf;
        char *bootstrap;

        /* Embedded broker (librdkafka mock cluster), when configured. */
        rd_kafka_t *mock_rk;
        rd_kafka_mock_cluster_t *mcluster;

        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        rd_kafka_topic_t *rkt_results;
        rd_kafka_topic_t *rkt_events;
        rd_kafka_topic_t *rkt_dlt;
        rd_kafka_topic_t *rkt_retry;
        rd_kafka_queue_t *consumer_q; /* the consumer group queue */
        rd_kafka_queue_t *critical_q; /* critical partitions forwarded */
        rd_kafka_queue_t *producer_q; /* delivery reports */
        int consumer_pipe[2];
        int critical_pipe[2];
        int producer_pipe[2];
        int wake_fd; /* eventfd: stop requests, dropped jobs */

        sq_codec_t *poll_codec; /* the poll thread's own codec */
        char *map_buf;          /* commit.metadata.max.bytes + 1 (poll) */
        sq_ttlmap_t *dedup;     /* succeeded task ids (poll thread), or NULL */
        sq_order_t *order;      /* ordering gate (ordering=key|partition) */
        /* processing.guarantee=exactly_once */
        bool eos;
        pthread_rwlock_t txn_lock;   /* produce: read; end a transaction:
                                      * write (poll thread) */
        atomic_long txn_produced;    /* records in the open transaction */
        atomic_bool txn_failed;      /* it cannot commit: abort and stop */
        bool txn_dead;               /* poll thread: no more transactions */
        atomic_bool order_closed;    /* stopping: held jobs are freed */
        atomic_long order_held;      /* jobs held behind their key */
        atomic_size_t dedup_entries; /* snapshot for /metrics */
        /* The current agent registry; swapped by a reload under
         * agents_lock. Readers take a reference (sq_daemon_agents()). */
        pthread_mutex_t agents_lock;
        sq_agents_t *agents;
        sq_flags_t flags; /* current rollouts (atomics) */
        /* Opaques of the per-agent /metrics collectors (one per gauge). */
        struct sq_agent_collect_s {
                struct sq_daemon_s *daemon;
                int which;
        } agent_collect[6];
        pthread_mutex_t reload_lock; /* one reload at a time */
        sq_sched_t *sched;
        sq_executor_t *executors;
        int executors_cnt;

        /* Out-of-process agents (executor.c): the I/O loop, its codec,
         * and per agent index an sq_exec_t or sq_pool_t (NULL for
         * builtin agents). All NULL when every agent is builtin. */
        sq_ioloop_t *ioloop;
        sq_codec_t *io_codec;
        void **runtimes;
        void *rt_collectors; /* /metrics collector contexts (executor.c) */
        pthread_t poll_thread;
        bool started;

        /* Partition states, [lane][partition], grown on demand. */
        sq_partition_t **parts[SQ_LANE_CNT];
        int parts_cnt[SQ_LANE_CNT];

        /* Admission window: jobs admitted and not yet freed. */
        atomic_long window[SQ_LANE_CNT];
        bool lane_paused[SQ_LANE_CNT];        /* poll thread only */
        atomic_bool paused_any;               /* for /metrics */
        atomic_int assigned_cnt[SQ_LANE_CNT]; /* partitions owned now */

        /* memory.limit.bytes: intake paused on RSS (poll thread; the
         * atomic copy is for /metrics) */
        bool mem_paused;
        atomic_bool mem_paused_flag;
        int64_t mem_next_check_us;

        atomic_bool stop_requested;
        atomic_bool cancel; /* drain deadline passed: abandon work */
        atomic_bool ready;
        atomic_bool assigned_once;
        atomic_int_least64_t poll_heartbeat_us;
        atomic_int_least64_t exec_progress_us;
        atomic_uint_least64_t event_seq;
        char event_nonce[17];
        int64_t next_commit_us;
        int64_t started_us;
        sq_err_t fatal;

        sq_metrics_t *metrics;
        sq_daemon_metrics_t m;
        pthread_mutex_t snap_lock; /* guards parts[] growth, snapshots */
        /* The configuration running since the last reload, for /status:
         * the reloadable keys from the reloaded file, the rest as the
         * instance started (they wait for a restart). Dump form (secrets
         * masked); NULL before the first reload. Under snap_lock. */
        sq_kv_t *running_conf;
        size_t running_conf_cnt;
        sq_http_t *http;

        /* Recent events for GET /events (status.c), and its clients. */
        sq_eventring_t *events;
        atomic_int events_clients;

        /* The lag refresher thread (lag.c), lag.refresh.interval.ms */
        pthread_t lag_thread;
        pthread_mutex_t lag_lock;
        pthread_cond_t lag_cond; /* CLOCK_MONOTONIC; signalled on stop */
        bool lag_stop;           /* under lag_lock */
        bool lag_started;        /* main; poll thread on its way out */

        /* Admin actions (POST /admin/...; applied by the poll thread). */
        char *admin_token;        /* NULL: admin actions off */
        atomic_bool admin_paused; /* pause or drain asked */
        atomic_bool draining;     /* drain asked: ready=false */
        atomic_bool drained;      /* drain done: window empty, committed */
        int admin_state; /* poll thread: last state announced (events) */
};

/* kafka.c */
sq_err_t sq_kafka_start_embedded(sq_daemon_t *daemon, char *errstr,
                                 size_t errstr_size);
sq_err_t sq_kafka_new_clients(sq_daemon_t *daemon, char *errstr,
                              size_t errstr_size);
void sq_kafka_destroy_clients(sq_daemon_t *daemon);
/* Creates the swarmq topics the cluster lacks (topics.create). */
sq_err_t sq_kafka_ensure_topics(sq_daemon_t *daemon, char *errstr,
                                size_t errstr_size);

/* emit.c */
void sq_emit_event(sq_daemon_t *daemon, sq_codec_t *codec, const char *type,
                   const sq_task_t *task, const char *agent, const char *detail,
                   sq_job_t *tracked_job);
void sq_emit_result(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                    const sq_result_t *result);
void sq_emit_dead_letter(sq_daemon_t *daemon, const rd_kafka_message_t *rkm,
                         const char *reason_code, const char *reason,
                         sq_job_t *tracked_job);
/* A failed or timed-out attempt (executor threads, I/O loop): a retry
 * record and a retry_scheduled event while attempts are left, else a
 * dead letter, a DEAD_LETTERED result and a dead_lettered event; all
 * tracked by the job, which belongs to the delivery reports after. */
void sq_emit_failure(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                     sq_result_t *result);
void sq_emit_dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                       void *opaque);

/* executor.c */
sq_err_t sq_executors_start(sq_daemon_t *daemon, char *errstr,
                            size_t errstr_size);
void sq_executors_join(sq_daemon_t *daemon);
/* The I/O loop and the exec/pool agents: created with the instance,
 * started before the executors, shut down (children killed, their jobs
 * dropped) after the executors are joined. */
sq_err_t sq_runtimes_new(sq_daemon_t *daemon, char *errstr, size_t errstr_size);
sq_err_t sq_runtimes_start(sq_daemon_t *daemon, char *errstr,
                           size_t errstr_size);
void sq_runtimes_shutdown(sq_daemon_t *daemon);
void sq_runtimes_destroy(sq_daemon_t *daemon);
/* After the metrics registry is destroyed. */
void sq_runtimes_free_collectors(sq_daemon_t *daemon);

/* lag.c: the lag refresher thread (started with the instance, stopped
 * before the consumer closes; both idempotent) and the lag computation. */
void sq_lag_init(sq_daemon_t *daemon);
void sq_lag_term(sq_daemon_t *daemon);
sq_err_t sq_lag_start(sq_daemon_t *daemon, char *errstr, size_t errstr_size);
void sq_lag_stop(sq_daemon_t *daemon);
/* Recomputes part->lag and part->snap_high from the snapshot's position
 * and the newer of the fetched and queried watermarks. Under snap_lock. */
void sq_lag_compute(sq_partition_t *part);

#endif /* SQ_DAEMON_INT_H */
