/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_int.h: one instance (struct sq_daemon_s), put together from the
 * state each concern owns, and the functions of kafka.c and emit.c. Each
 * other concern declares its state and its functions in its own header
 * (poll_int.h, partitions_int.h, admission_int.h, commit_int.h,
 * rebalance_int.h, registry_int.h, reload_int.h, routes_int.h,
 * executor_int.h, lag_int.h, instance_metrics_int.h).
 *
 * DESIGN
 *   A concern's member is written by the threads its header names; other
 *   files read it, and change it only through the concern's functions
 *   (the job and window counters excepted: they move with the job).
 *   Ownership of a job: partitions_int.h.
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
#include "admission_int.h"
#include "commit_int.h"
#include "executor_int.h"
#include "instance_metrics_int.h"
#include "control_int.h"
#include "lag_int.h"
#include "partitions_int.h"
#include "poll_int.h"
#include "registry_int.h"
#include "reload_int.h"
#include "routes_int.h"
#include "runtimes_int.h"
#include "schemas_int.h"
#include "schedules_int.h"
#include "workflows_int.h"
#include "ratelimits_int.h"
#include "variants_int.h"

/*
 * One instance. The state each concern owns is a member of its own type,
 * declared in that concern's header with the threads that read and write
 * it; what is left here is the instance's own: its configuration, the
 * Kafka clients (kafka.c), the scheduler, the lifecycle flags and the
 * handles several concerns share.
 */
struct sq_daemon_s {
        /* Read-only after sq_daemon_new() */
        sq_config_t *conf;
        char *bootstrap;
        bool eos; /* processing.guarantee=exactly_once */
        int64_t started_us;

        /* The Kafka clients (kafka.c; built by main, used by every
         * thread through librdkafka's own locking). */
        rd_kafka_t *mock_rk; /* the embedded broker, when configured */
        rd_kafka_mock_cluster_t *mcluster;
        rd_kafka_t *consumer; /* poll and commit: the poll thread only */
        rd_kafka_t *producer;
        rd_kafka_topic_t *rkt_results;
        rd_kafka_topic_t *rkt_events;
        rd_kafka_topic_t *rkt_dlt;
        rd_kafka_topic_t *rkt_retry;
        rd_kafka_topic_t *rkt_control; /* cancellations (POST /admin/cancel) */
        /* Endings of workflow tasks (workflows.enable), else NULL. */
        rd_kafka_topic_t *rkt_workflows;
        rd_kafka_queue_t *consumer_q; /* the consumer group queue */
        rd_kafka_queue_t *critical_q; /* critical partitions forwarded */
        rd_kafka_queue_t *producer_q; /* delivery reports */

        sq_poll_t poll;                /* poll.c */
        sq_partitions_t partitions;    /* partitions.c */
        sq_admission_t admission;      /* admission.c */
        sq_commit_t commit;            /* commit.c */
        sq_registry_t registry;        /* registry.c */
        sq_reload_t reload;            /* reload.c */
        sq_admin_t admin;              /* routes.c */
        sq_lag_t lag;                  /* lag.c */
        sq_schemas_t schemas;          /* schemas.c */
        sq_control_t control;          /* control.c */
        sq_schedules_t schedules;      /* schedules.c */
        sq_ratelimits_t ratelimits;    /* ratelimits.c */
        sq_workflows_inst_t workflows; /* workflows.c */
        sq_variants_t variants;        /* variants.c */

        /* Jobs whose records are all accounted for, the last a write the
         * principal may not make, on a thread other than the poll
         * thread: the poll thread acknowledges them (emit.c). */
        _Atomic(struct sq_job_s *) denied_jobs; /* linked by denied_next */

        /* Guards the partition table's growth and every snapshot the
         * HTTP thread reads: the partitions' snap_* fields (poll thread,
         * lag refresher) and reload.running_conf (signal thread). */
        pthread_mutex_t snap_lock;

        sq_flags_t flags; /* current rollouts (atomics; reload.c sets) */

        /* The scheduler lanes: admission (poll thread) and requeues (any
         * thread) push, executors pop; its own lock. */
        sq_sched_t *sched;
        sq_executors_t executors; /* executor.c */

        /* Lifecycle */
        bool started;   /* main: the poll thread runs */
        bool listening; /* main: the HTTP server runs */
        /* What start-up waits for ("the Kafka cluster: ..."), NULL once
         * the threads run: /readyz and /status say it. Static strings. */
        _Atomic(const char *) starting;
        atomic_bool stop_requested; /* sq_daemon_stop(): any thread */
        atomic_bool cancel;         /* drain deadline passed: abandon */
        atomic_bool assigned_once;  /* for /readyz */
        sq_err_t fatal;             /* poll thread; read after the join */

        /* Events (emit.c): their ids are the nonce and a sequence. */
        atomic_uint_least64_t event_seq;
        char event_nonce[17];

        /* The producer (emit.c): it cannot deliver, so the instance stops
         * with SQ_ERR_KAFKA (any thread sets it, main reads it after the
         * join); its message.max.bytes, set at creation. */
        atomic_bool producer_failed;
        int64_t max_record_bytes;

        /* HTTP and metrics (routes.c, status.c, instance_metrics.c) */
        sq_http_t *http;
        sq_metrics_t *metrics;
        sq_daemon_metrics_t m;     /* hot-path children, set at start */
        sq_eventring_t *events;    /* recent events for GET /events */
        atomic_int events_clients; /* its streaming clients */
};

/* kafka.c */
sq_err_t sq_kafka_start_embedded(sq_daemon_t *daemon, char *errstr,
                                 size_t errstr_size);
sq_err_t sq_kafka_new_clients(sq_daemon_t *daemon, char *errstr,
                              size_t errstr_size);
void sq_kafka_destroy_clients(sq_daemon_t *daemon);
/* Makes the producer's handles of the results, events, dead-letter,
 * retry and control topics: at start, once the topics step is done. Not
 * sooner: a topic handle asks the brokers for the topic's metadata, and
 * one with auto.create.topics.enable (Kafka's default) creates a missing
 * topic at once with its own num.partitions and
 * default.replication.factor, so that the topics step then finds it
 * there and topics.partitions and topics.replication.factor were never
 * applied (tests/broker/0110). */
void sq_kafka_open_topics(sq_daemon_t *daemon);
/* Subscribes the consumer to the tasks, critical and retry topics: at
 * start, once the topics step is done (not when the consumer is made; see
 * there). */
sq_err_t sq_kafka_subscribe(sq_daemon_t *daemon, char *errstr,
                            size_t errstr_size);
/* A consumer with no group for topic.control (control.c), configured
 * like the others (bootstrap, kafka.* keys); NULL with @p errstr set. */
rd_kafka_t *sq_kafka_new_control_consumer(sq_daemon_t *daemon, char *errstr,
                                          size_t errstr_size);
/* exactly_once: the producer of POST /admin/cancel's records
 * (control.c): idempotent, not transactional; NULL with @p errstr set. */
rd_kafka_t *sq_kafka_new_control_producer(
    sq_daemon_t *daemon,
    void (*dr_msg_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
    char *errstr, size_t errstr_size);
/* The schedules thread's clients (schedules.c): a consumer in the group
 * <group.id>.schedules reading topic.schedules, and a producer
 * (transactional under exactly_once, one transactional.id per group);
 * NULL with @p errstr set. */
rd_kafka_t *sq_kafka_new_schedules_consumer(
    sq_daemon_t *daemon,
    void (*rebalance_cb)(rd_kafka_t *, rd_kafka_resp_err_t,
                         rd_kafka_topic_partition_list_t *, void *),
    char *errstr, size_t errstr_size);
rd_kafka_t *sq_kafka_new_schedules_producer(
    sq_daemon_t *daemon,
    void (*dr_msg_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
    char *errstr, size_t errstr_size);
/* The workflows thread's clients (workflows.c): a consumer in the group
 * <group.id>.workflows reading topic.workflows, and a producer: with
 * @p partition -1 idempotent (at_least_once), else transactional with
 * that partition's transactional.id, swarmq-workflows-<group.id>-<p>
 * (exactly_once); NULL with @p errstr set. */
rd_kafka_t *sq_kafka_new_workflows_consumer(
    sq_daemon_t *daemon,
    void (*rebalance_cb)(rd_kafka_t *, rd_kafka_resp_err_t,
                         rd_kafka_topic_partition_list_t *, void *),
    char *errstr, size_t errstr_size);
rd_kafka_t *sq_kafka_new_workflows_producer(
    sq_daemon_t *daemon, int32_t partition,
    void (*dr_msg_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
    char *errstr, size_t errstr_size);
/* Creates the swarmq topics the cluster lacks (topics.create). */
sq_err_t sq_kafka_ensure_topics(sq_daemon_t *daemon, char *errstr,
                                size_t errstr_size);
/* Start-up, after a request to the cluster got no answer: true with
 * @p errstr set when the brokers refused the producer's login (see
 * sq_kafka_login_failed()): librdkafka would retry it for ever, so the
 * instance stops with the cause named. Before the poll thread runs. */
bool sq_kafka_login_refused(sq_daemon_t *daemon, char *errstr,
                            size_t errstr_size);
/* Start-up with topics.create=false: one metadata request (10 s at
 * most). SQ_OK when the cluster answered or did not (what follows
 * retries), SQ_ERR_KAFKA with @p errstr set when it refused the login. */
sq_err_t sq_kafka_check_login(sq_daemon_t *daemon, char *errstr,
                              size_t errstr_size);

/* emit.c */
/* What a record costs beyond its key and value, with room for headers:
 * the margin kept under the producer's message.max.bytes. */
#define SQ_EMIT_RECORD_OVERHEAD 512
/* Reads the producer's record limit, and refuses an exec or pool agent's
 * output.max.bytes whose result could not fit in it. After the clients. */
sq_err_t sq_emit_init(sq_daemon_t *daemon, char *errstr, size_t errstr_size);
/* Records a task's tracked event adds to its job's pending_acks: 1, or 0
 * under events.publish=none. */
int sq_emit_event_acks(const sq_daemon_t *daemon);
/* The size of @p result's record (value, key and overhead), 0 when it
 * cannot be encoded. */
size_t sq_emit_result_size(sq_daemon_t *daemon, sq_codec_t *codec,
                           const sq_result_t *result);
/* exactly_once: the records produced between a hold and its release go
 * into one transaction (the poll thread cannot end it meanwhile); holds
 * nest per thread. No-ops otherwise. Produce a task's ending records
 * under one hold: its result and terminal event, or what
 * sq_emit_failure() and sq_emit_undecodable() produce (they hold). */
void sq_emit_txn_hold(sq_daemon_t *daemon);
void sq_emit_txn_release(sq_daemon_t *daemon);
void sq_emit_event(sq_daemon_t *daemon, sq_codec_t *codec, const char *type,
                   const sq_task_t *task, const char *agent, const char *detail,
                   sq_job_t *tracked_job);
/* sq_emit_event() at a wall-clock time the caller already read (ms): the
 * executors' per-task events reuse the time of their stage. */
void sq_emit_event_at(sq_daemon_t *daemon, sq_codec_t *codec, const char *type,
                      const sq_task_t *task, const char *agent,
                      const char *detail, sq_job_t *tracked_job, int64_t at_ms);
/* An untracked event about @p task (borrowed) that its caller produces
 * itself (the workflows owner: in its step's transaction): pushed to
 * GET /events, then encoded into *@p bufp (@p codec's buffer, valid
 * until its next encode). False when events.publish leaves it out or it
 * cannot be encoded (logged). */
bool sq_emit_event_encoded(sq_daemon_t *daemon, sq_codec_t *codec,
                           const char *type, const sq_task_t *task,
                           const char *detail, int64_t at_ms, const void **bufp,
                           size_t *lenp);
/* Fills the fields of @p result that come from @p job and its task (id,
 * instance, attempts, source record, created_at), borrowed: the struct is
 * only encoded, never freed. */
void sq_emit_result_of_job(const sq_daemon_t *daemon, const sq_job_t *job,
                           sq_result_t *result);
void sq_emit_result(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                    const sq_result_t *result);
/* The declaration of the workflow @p wf that @p job's task spawned with
 * its output (docs/workflows.md), to its partition of topic.workflows,
 * tracked by @p job like its result (one more pending ack): call it
 * before the job's other records. False when workflows are off here. */
bool sq_emit_spawn(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                   const sq_workflow_t *wf);
/* A record that is not a task (poll thread, @p job admitted for it): its
 * bytes to the dead-letter topic (DECODE_ERROR) and a dead_lettered event;
 * when its task id can still be read, a DEAD_LETTERED result for that id
 * too (so a client waiting for it gets an answer) and the id on the
 * event. */
void sq_emit_undecodable(sq_daemon_t *daemon, const rd_kafka_message_t *rkm,
                         sq_job_t *job, const char *why);
void sq_emit_dead_letter(sq_daemon_t *daemon, const rd_kafka_message_t *rkm,
                         const char *reason_code, const char *reason,
                         sq_job_t *tracked_job);
/* A failed or timed-out attempt (executor threads, I/O loop): a retry
 * record and a retry_scheduled event while attempts are left and the
 * failure is @p retryable, else a dead letter with reason @p why, a
 * DEAD_LETTERED result and a dead_lettered event; all tracked by the job,
 * which belongs to the delivery reports after. OUTPUT_TOO_LARGE is not
 * retryable: running the task again would end the same way.
 * Returns true when the task was dead-lettered. */
bool sq_emit_failure(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                     sq_result_t *result, sq_dl_reason_t why, bool retryable);
/* A task read before its not_before (poll thread, @p job admitted and
 * decoded): its record, untouched, to topic.retry due at not_before with
 * the attempt it is at, and a delayed event, both tracked by the job: the
 * retry lane holds it there (state in Kafka, no executor, no memory) and
 * runs it when due. With @p hop, @p job is a retry-lane record that held
 * its partition for delay.hold.max.ms and is still not due: the same
 * bytes and headers go to the end of topic.retry, tracked, with no
 * event. */
void sq_emit_delay(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                   bool hop);
/* A task cancelled by its id before it ran (poll thread or an executor,
 * @p job admitted and decoded): a CANCELLED result (error @p why) and a
 * cancelled event, tracked by the job; no retry, no dead letter. */
void sq_emit_cancelled(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                       const char *why);
/* Whether a failed attempt of @p job is dead-lettered (not retried). */
bool sq_emit_dead_letters(const sq_daemon_t *daemon, const sq_job_t *job,
                          bool retryable);
void sq_emit_dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                       void *opaque);
/* Acknowledges the jobs whose last record was a denied write handled on
 * another thread (see emit.c's DESIGN). Poll thread. */
void sq_emit_serve_denied(sq_daemon_t *daemon);
/* Drops the jobs sq_emit_serve_denied() did not get to (the poll thread
 * has stopped): their offsets stay uncommitted. */
void sq_emit_term(sq_daemon_t *daemon);

#endif /* SQ_DAEMON_INT_H */
