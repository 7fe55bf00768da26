/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emit.c: everything the instance writes to Kafka: results, lifecycle
 * events, retry records and dead letters, and the delivery reports that
 * turn their acknowledgements into committable offsets.
 *
 * DESIGN
 *   Records are encoded with the calling thread's codec and produced with
 *   RD_KAFKA_MSG_F_COPY, so nothing is shared after the call returns. A
 *   record that gates a commit (a task's result and terminal event, a
 *   retry record and its retry_scheduled event, a dead letter) carries its job
 * as the delivery opaque and counts in the job's pending_acks; the delivery
 * report for the last one hands the job to sq_job_acked() on the poll thread. A
 * record the broker finally refuses is produced again (the job keeps its offset
 * uncommitted until it is acknowledged): losing a result is never an option,
 * retrying is. Untracked records (received/started events) are logged and
 * counted when they fail; they gate nothing.
 *
 *   A record refused because of the record itself (too large for the
 *   producer's message.max.bytes or the topic's max.message.bytes, or
 *   invalid), synchronously by rd_kafka_producev() or later in its
 *   delivery report, is never produced again as it is: it would be refused
 *   for ever, and an instance that stops on it stops again on every
 *   restart (a poison pill). It is replaced by what the task's reader needs
 *   (record_refused()): a refused result or retry record dead-letters the
 *   task (a DEAD_LETTERED result naming the size and the limit, the task's
 *   own bytes in the dead-letter topic, a dead_lettered event); a refused
 *   event is produced again without its detail; a refused dead letter is
 *   produced again without its value (its headers name where the original
 *   record still is). The replacements carry the swarmq-refused header;
 *   one refused again stops the instance, as does any other error a
 *   produce cannot recover from (a fatal idempotent-producer error, an
 *   unauthorized topic): the job's offset stays uncommitted, the reason
 *   is logged, and sq_daemon_wait() returns SQ_ERR_KAFKA.
 *
 *   exactly_once: every record goes into the open transaction under a
 *   read hold on txn_lock (the poll thread ends a transaction under the
 *   write lock). The records that end a task (its result and terminal
 *   event, a retry record and its event, a dead letter with its result
 *   and event) are produced under one hold (sq_emit_txn_hold()), so they
 *   land in one transaction: split over two, a crash between the commits
 *   would keep the result and abort the event that made its offset
 *   committable, and the task would run, and be answered, again.
 */
#include "event_types.h"
#include "daemon_int.h"
#include "kafka_conf.h"
#include "poll_int.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Marks a record produced in place of a refused one (record_refused()). */
#define HDR_REFUSED "swarmq-refused"

static void record_refused(sq_daemon_t *daemon, sq_codec_t *codec,
                           rd_kafka_topic_t *rkt, const void *key,
                           size_t key_len, const void *value, size_t value_len,
                           rd_kafka_headers_t *headers, sq_job_t *job,
                           rd_kafka_resp_err_t err, const char *by);

static void record_denied(sq_daemon_t *daemon, sq_codec_t *codec,
                          rd_kafka_topic_t *rkt, const void *value,
                          size_t value_len, rd_kafka_headers_t *headers,
                          sq_job_t *job, rd_kafka_resp_err_t err,
                          bool poll_thread);

/* Errors that refuse this record for what it is: producing it again as it
 * is cannot succeed. */
static bool refuses_record(rd_kafka_resp_err_t err) {
        switch (err) {
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
        case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        case RD_KAFKA_RESP_ERR_INVALID_MSG:
                return true;
        default:
                return false;
        }
}

/* Errors after which this producer cannot deliver anything: the instance
 * stops (a delivery report with another error is produced again). */
static bool ends_producer(rd_kafka_resp_err_t err) {
        switch (err) {
        case RD_KAFKA_RESP_ERR__FATAL:
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
                return true;
        default:
                return false;
        }
}

/* A record of @p job that will never be acknowledged counts as delivered,
 * and the job is dropped with its last record: its offset stays
 * uncommitted, so the task runs again from there. */
static void job_record_lost(sq_daemon_t *daemon, sq_job_t *job,
                            const char *why) {
        if (!job)
                return;
        atomic_store(&job->purged, true);
        if (atomic_fetch_sub(&job->pending_acks, 1) == 1)
                sq_job_drop(daemon, job, why);
}

/* A write the principal may not make: no Write ACL on the record's topic
 * (the broker, or librdkafka from the topic's metadata, answers
 * TOPIC_AUTHORIZATION_FAILED). Neither the record's fault nor the
 * producer's end: the other topics may still be written. */
static bool denies_write(rd_kafka_resp_err_t err) {
        return err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
}

/* A record of @p job needs no acknowledgement any more (a denied write
 * whose task has its outcome elsewhere): it counts as delivered. Its
 * last record acknowledges the job: at once on the poll thread (a
 * delivery report), else through daemon->denied_jobs, which the poll
 * thread serves (sq_emit_serve_denied()): offsets and dedup are the
 * poll thread's. */
static void job_record_done(sq_daemon_t *daemon, sq_job_t *job,
                            bool poll_thread) {
        sq_job_t *head;

        if (atomic_fetch_sub(&job->pending_acks, 1) != 1)
                return;
        if (poll_thread) {
                if (atomic_load(&job->purged))
                        sq_job_drop(daemon, job, "purged at shutdown");
                else
                        sq_job_acked(daemon, job);
                return;
        }
        /* A lock-free push; the poll thread takes the whole list at once
         * (atomic_exchange), so a popped node is never reused under it. */
        head = atomic_load(&daemon->denied_jobs);
        do
                job->denied_next = head;
        while (!atomic_compare_exchange_weak(&daemon->denied_jobs, &head, job));
        sq_daemon_wake(daemon);
}

void sq_emit_serve_denied(sq_daemon_t *daemon) {
        sq_job_t *job, *next;

        if (!atomic_load_explicit(&daemon->denied_jobs, memory_order_relaxed))
                return;
        for (job = atomic_exchange(&daemon->denied_jobs, NULL); job;
             job = next) {
                next = job->denied_next;
                if (atomic_load(&job->purged))
                        sq_job_drop(daemon, job, "purged at shutdown");
                else
                        sq_job_acked(daemon, job);
        }
}

void sq_emit_term(sq_daemon_t *daemon) {
        sq_job_t *job, *next;

        for (job = atomic_exchange(&daemon->denied_jobs, NULL); job;
             job = next) {
                next = job->denied_next;
                sq_job_drop(daemon, job, "instance stopped");
        }
}

/* The producer cannot go on: log why once, and stop the instance in
 * order (sq_daemon_wait() returns SQ_ERR_KAFKA). Any thread. */
static void producer_failed(sq_daemon_t *daemon, rd_kafka_topic_t *rkt,
                            rd_kafka_resp_err_t err, const char *what) {
        char fatal[512] = "";
        char denied[512];

        if (atomic_exchange(&daemon->producer_failed, true))
                return;

        if (err == RD_KAFKA_RESP_ERR__FATAL)
                rd_kafka_fatal_error(daemon->producer, fatal, sizeof(fatal));
        if (!sq_kafka_acl_denied(err, "Write", rd_kafka_topic_name(rkt), NULL,
                                 NULL, denied, sizeof(denied)))
                snprintf(denied, sizeof(denied), "%s", rd_kafka_err2str(err));
        SQ_LOG(SQ_LOG_CRIT, "EMIT",
               "cannot produce to %s: %s%s%s (%s); stopping the instance: "
               "tasks not acknowledged stay uncommitted and run again",
               rd_kafka_topic_name(rkt), denied, *fatal ? ": " : "", fatal,
               what);
        sq_daemon_stop(daemon);
}

/* The value of the swarmq-refused header of @p headers, "" when it has
 * none. */
static void refused_mark(const rd_kafka_headers_t *headers, char *buf,
                         size_t size) {
        const void *val;
        size_t len;

        buf[0] = '\0';
        if (headers &&
            rd_kafka_header_get_last(headers, HDR_REFUSED, &val, &len) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            val)
                snprintf(buf, size, "%.*s", (int)len, (const char *)val);
}

/* exactly_once: how many sq_emit_txn_hold() sections this thread is in;
 * only the outermost takes and gives back the read lock (a nested read
 * lock could wait behind the poll thread's pending write lock for ever). */
static _Thread_local int txn_holds;

void sq_emit_txn_hold(sq_daemon_t *daemon) {
        if (daemon->eos && txn_holds++ == 0)
                pthread_rwlock_rdlock(&daemon->commit.txn_lock);
}

void sq_emit_txn_release(sq_daemon_t *daemon) {
        if (daemon->eos && --txn_holds == 0)
                pthread_rwlock_unlock(&daemon->commit.txn_lock);
}

/* exactly_once: @p job (a delivery opaque) belongs to an earlier
 * ownership of its partition. */
static bool job_stale(void *opaque) {
        const sq_job_t *job = opaque;
        return atomic_load(&job->part->gen) != job->part_gen;
}

/* exactly_once: a record of a stale job is not produced; counted as one
 * that came back, and the job (its offset not done) is dropped with its
 * last. */
static void job_record_stale(sq_daemon_t *daemon, sq_job_t *job) {
        atomic_store(&job->purged, true);
        if (atomic_fetch_sub(&job->pending_acks, 1) == 1)
                sq_job_drop(daemon, job,
                            "its partition was rewound or revoked: it runs "
                            "again from its offset");
}

/* Produces one record, waiting out a full local queue (bounded by the
 * admission window, so this only happens on a broker outage). */
static void produce_ts(sq_daemon_t *daemon, sq_codec_t *codec,
                       rd_kafka_topic_t *rkt, int32_t partition,
                       int64_t timestamp_ms, const char *key, size_t key_len,
                       const void *value, size_t value_len,
                       rd_kafka_headers_t *headers, void *opaque) {
        bool warned = false;

        for (;;) {
                rd_kafka_resp_err_t err;
                /* exactly_once: a record goes into the open transaction;
                 * the poll thread commits it under the write lock, so no
                 * record is produced while a transaction ends. */
                sq_emit_txn_hold(daemon);
                if (daemon->eos && opaque && job_stale(opaque)) {
                        /* Its partition was rewound (an aborted
                         * transaction) or revoked since it was admitted:
                         * its offset will not be committed with this
                         * transaction, and the task runs again from that
                         * offset. Its records stay out of the
                         * transaction, or a read_committed reader would
                         * see its result twice. */
                        sq_emit_txn_release(daemon);
                        if (headers)
                                rd_kafka_headers_destroy(headers);
                        job_record_stale(daemon, opaque);
                        return;
                }
                /* NULL headers are allowed: the record has none. On
                 * success librdkafka owns @p headers. */
                err = rd_kafka_producev(
                    daemon->producer, RD_KAFKA_V_RKT(rkt),
                    RD_KAFKA_V_PARTITION(partition),
                    RD_KAFKA_V_TIMESTAMP(timestamp_ms),
                    RD_KAFKA_V_KEY(key, key_len),
                    RD_KAFKA_V_VALUE((void *)value, value_len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(opaque),
                    RD_KAFKA_V_END);
                if (!err) {
                        if (daemon->eos)
                                atomic_fetch_add(&daemon->commit.txn_produced,
                                                 1);
                        sq_emit_txn_release(daemon);
                        return;
                }
                if (daemon->eos && err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        /* The transaction failed (or the producer was
                         * fenced): nothing of it will be committed, nor
                         * the offsets it gates; the poll thread aborts it
                         * and rewinds (or, fenced, stops). Flagged under
                         * the hold, so that the flag names this
                         * transaction, not the next one. Logged once:
                         * every executor keeps finishing tasks until the
                         * poll thread takes the write lock. */
                        bool first =
                            !atomic_exchange(&daemon->commit.txn_failed, true);
                        if (first)
                                snprintf(daemon->commit.txn_cause,
                                         sizeof(daemon->commit.txn_cause),
                                         "cannot produce to %s: %s",
                                         rd_kafka_topic_name(rkt),
                                         rd_kafka_err2str(err));
                        sq_emit_txn_release(daemon);
                        if (first)
                                SQ_LOG(SQ_LOG_ERR, "EMIT",
                                       "cannot produce to %s in the "
                                       "transaction: %s (later records of "
                                       "it are dropped too)",
                                       rd_kafka_topic_name(rkt),
                                       rd_kafka_err2str(err));
                        if (headers)
                                rd_kafka_headers_destroy(headers);
                        if (opaque) {
                                /* No delivery report will come for it:
                                 * count this record as one, and the job
                                 * (its offset uncommitted) is dropped
                                 * with its last. */
                                sq_job_t *job = opaque;
                                atomic_store(&job->purged, true);
                                if (atomic_fetch_sub(&job->pending_acks, 1) ==
                                    1)
                                        sq_job_drop(daemon, job,
                                                    "transaction failed");
                        }
                        sq_daemon_wake(daemon);
                        return;
                }
                /* Under a caller's hold (a task's records) the lock stays
                 * held through a full queue: the poll thread serves
                 * delivery reports while it waits for the write lock. */
                sq_emit_txn_release(daemon);
                if (refuses_record(err)) {
                        /* Takes the headers; the job's count of pending
                         * records is adjusted there. */
                        record_refused(daemon, codec, rkt, key, key_len, value,
                                       value_len, headers, opaque, err,
                                       "producer");
                        return;
                }
                if (denies_write(err)) {
                        /* Takes the headers; any thread. */
                        record_denied(daemon, codec, rkt, value, value_len,
                                      headers, opaque, err, false);
                        return;
                }
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        producer_failed(daemon, rkt, err, "refused locally");
                        if (headers)
                                rd_kafka_headers_destroy(headers);
                        job_record_lost(daemon, opaque, "producer failed");
                        return;
                }
                if (!warned) {
                        SQ_LOG(SQ_LOG_WARNING, "EMIT",
                               "local producer queue full producing to %s; "
                               "waiting for the broker",
                               rd_kafka_topic_name(rkt));
                        warned = true;
                }
                {
                        struct timespec ts = {0, 1000000};
                        nanosleep(&ts, NULL);
                }
        }
}

/* Produces a record (the partitioner picks its partition by key). */
static void produce_to(sq_daemon_t *daemon, sq_codec_t *codec,
                       rd_kafka_topic_t *rkt, int32_t partition,
                       const char *key, size_t key_len, const void *value,
                       size_t value_len, rd_kafka_headers_t *headers,
                       void *opaque) {
        produce_ts(daemon, codec, rkt, partition, 0, key, key_len, value,
                   value_len, headers, opaque);
}

static void produce(sq_daemon_t *daemon, sq_codec_t *codec,
                    rd_kafka_topic_t *rkt, const char *key, size_t key_len,
                    const void *value, size_t value_len,
                    rd_kafka_headers_t *headers, void *opaque) {
        produce_ts(daemon, codec, rkt, RD_KAFKA_PARTITION_UA, 0, key, key_len,
                   value, value_len, headers, opaque);
}

/* produce() with the record's timestamp (ms since the epoch): the time the
 * record itself states (an event's `at`, a result's `finished_at`), so
 * readers see the same instant in both, and librdkafka reads no clock for
 * it (it reads one per record without: a per-task cost, issue 14). */
static void produce_at(sq_daemon_t *daemon, sq_codec_t *codec,
                       rd_kafka_topic_t *rkt, int64_t timestamp_ms,
                       const char *key, size_t key_len, const void *value,
                       size_t value_len, rd_kafka_headers_t *headers,
                       void *opaque) {
        produce_ts(daemon, codec, rkt, RD_KAFKA_PARTITION_UA, timestamp_ms, key,
                   key_len, value, value_len, headers, opaque);
}

/* events.publish: whether this event goes to topic.events. A tracked
 * event is a task's last (terminal or retry_scheduled); an event with no
 * task is the instance's own or an undecodable record's. */
static bool event_published(const sq_daemon_t *daemon, const sq_task_t *task,
                            const sq_job_t *tracked_job) {
        switch (daemon->conf->events_publish) {
        case SQ_EVENTS_ALL:
                return true;
        case SQ_EVENTS_TERMINAL:
                return tracked_job || !task;
        case SQ_EVENTS_NONE:
                return false;
        }
        return true;
}

int sq_emit_event_acks(const sq_daemon_t *daemon) {
        return daemon->conf->events_publish == SQ_EVENTS_NONE ? 0 : 1;
}

/* Writes "<nonce>-<seq in hex>" (what "%s-%llx" would) into @p buf, of
 * at least 17 + 1 + 16 + 1 bytes: no printf on the per-task path. */
static void format_event_id(char *buf, const char *nonce, size_t len,
                            uint64_t seq) {
        static const char digits[] = "0123456789abcdef";
        char hex[16];
        size_t n = 0;

        memcpy(buf, nonce, len);
        buf[len++] = '-';
        do {
                hex[n++] = digits[seq & 0xf];
                seq >>= 4;
        } while (seq);
        while (n)
                buf[len++] = hex[--n];
        buf[len] = '\0';
}

void sq_emit_event(sq_daemon_t *daemon, sq_codec_t *codec, const char *type,
                   const sq_task_t *task, const char *agent, const char *detail,
                   sq_job_t *tracked_job) {
        sq_emit_event_at(daemon, codec, type, task, agent, detail, tracked_job,
                         sq_wallclock_ms());
}

/* Event ids' sequence numbers are taken from daemon->event_seq in blocks
 * of this many per thread: one shared counter bumped by five threads for
 * every event was most of encode_event()'s cost (issue 14). Ids stay
 * unique (nonce and number); they no longer grow across threads. */
#define EVENT_SEQ_BLOCK 1024

static _Thread_local struct {
        const sq_daemon_t *daemon; /* whose block this is */
        uint64_t next, end;
        /* Its nonce, copied: the daemon's shares a cache line with
         * fields other threads write. */
        char nonce[sizeof(((sq_daemon_t *)0)->event_nonce)];
        size_t nonce_len;
} event_seqs;

static uint64_t next_event_seq(sq_daemon_t *daemon) {
        if (event_seqs.daemon != daemon || event_seqs.next == event_seqs.end) {
                event_seqs.daemon = daemon;
                event_seqs.nonce_len =
                    sq_strlcpy(event_seqs.nonce, daemon->event_nonce,
                               sizeof(event_seqs.nonce));
                event_seqs.next = atomic_fetch_add_explicit(
                    &daemon->event_seq, EVENT_SEQ_BLOCK, memory_order_relaxed);
                event_seqs.end = event_seqs.next + EVENT_SEQ_BLOCK;
        }
        return event_seqs.next++;
}

/* Encodes an event (@p codec's buffer, valid until its next encode).
 * @returns false when it cannot be encoded (logged). */
static bool encode_event(sq_daemon_t *daemon, sq_codec_t *codec,
                         const char *type, const sq_task_t *task,
                         const char *agent, const char *detail, int64_t at_ms,
                         const void **bufp, size_t *lenp) {
        char event_id[sizeof(daemon->event_nonce) + 18];
        char errstr[256];
        sq_event_t event;
        uint64_t seq = next_event_seq(daemon);

        format_event_id(event_id, event_seqs.nonce, event_seqs.nonce_len, seq);
        memset(&event, 0, sizeof(event));
        /* Borrowed pointers: the struct is only encoded, never freed. */
        event.event_id = event_id;
        event.task_id  = task ? task->id : NULL;
        event.type     = (char *)type;
        event.at       = at_ms;
        event.instance = daemon->conf->instance_id;
        event.agent    = (char *)agent;
        event.detail   = (char *)detail;
        if (task) {
                event.workflow_id = task->workflow_id;
                event.parent_id   = task->parent_id;
        }
        if (sq_codec_encode_event(codec, &event, bufp, lenp, errstr,
                                  sizeof(errstr)) != SQ_OK) {
                /* Only a string that is not UTF-8 fails to encode, and
                 * every string here is ours or checked on decoding. */
                SQ_LOG(SQ_LOG_ERR, "EMIT", "cannot encode %s event: %s", type,
                       errstr);
                return false;
        }
        return true;
}

bool sq_emit_event_encoded(sq_daemon_t *daemon, sq_codec_t *codec,
                           const char *type, const sq_task_t *task,
                           const char *detail, int64_t at_ms, const void **bufp,
                           size_t *lenp) {
        sq_eventring_push(daemon->events, at_ms, type, task->id, NULL, detail);
        return event_published(daemon, task, NULL) &&
               encode_event(daemon, codec, type, task, NULL, detail, at_ms,
                            bufp, lenp);
}

void sq_emit_event_at(sq_daemon_t *daemon, sq_codec_t *codec, const char *type,
                      const sq_task_t *task, const char *agent,
                      const char *detail, sq_job_t *tracked_job,
                      int64_t at_ms) {
        const void *buf;
        size_t len;
        const char *key;

        /* The same event, for GET /events and the live page. */
        sq_eventring_push(daemon->events, at_ms, type, task ? task->id : NULL,
                          agent, detail);
        if (!event_published(daemon, task, tracked_job))
                return; /* not counted in the job's pending_acks either */
        if (!encode_event(daemon, codec, type, task, agent, detail, at_ms, &buf,
                          &len)) {
                job_record_lost(daemon, tracked_job, "event not encoded");
                return;
        }
        key = task ? task->id : daemon->conf->instance_id;
        produce_at(daemon, codec, daemon->rkt_events, at_ms, key, strlen(key),
                   buf, len, NULL, tracked_job);
}

void sq_emit_result_of_job(const sq_daemon_t *daemon, const sq_job_t *job,
                           sq_result_t *result) {
        const sq_task_t *task = job->task;

        result->task_id          = task->id;
        result->instance         = daemon->conf->instance_id;
        result->attempts         = task->attempt;
        result->source.topic     = (char *)job->part->topic;
        result->source.partition = job->part->partition;
        result->source.offset    = job->offset;
        result->created_at       = task->created_at;
        result->workflow_id      = task->workflow_id;
        result->parent_id        = task->parent_id;
        /* An attempt after the first comes from the retry topic, whose
         * record says when the first attempt started; 0 otherwise (the
         * executor sets this attempt's start, or none started). */
        result->started_at = 0;
        if (!strcmp(job->rec->topic, daemon->conf->topic_retry)) {
                int64_t first;
                if (sq_retry_header_int(job->rec->headers, SQ_HDR_FIRST_STARTED,
                                        1, INT64_MAX, &first))
                        result->started_at = first;
        }
}

/* Produces @p result (tracked by @p job) with @p headers (taken). */
static void emit_result(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                        const sq_result_t *result,
                        rd_kafka_headers_t *headers) {
        char errstr[256];
        const void *buf;
        size_t len;

        if (sq_codec_encode_result(codec, result, &buf, &len, errstr,
                                   sizeof(errstr)) != SQ_OK) {
                /* Only a string that is not UTF-8 fails to encode, and
                 * every string here is ours or checked on decoding. */
                SQ_LOG(SQ_LOG_ERR, "EMIT",
                       "cannot encode the result of task_id=%s: %s",
                       result->task_id, errstr);
                if (headers)
                        rd_kafka_headers_destroy(headers);
                job_record_lost(daemon, job, "result not encoded");
                return;
        }
        if (job && result->workflow_id) {
                /* A task of a workflow: its ending goes to the
                 * workflow's owner too (topic.workflows, the workflow's
                 * partition), tracked like the result, so the task's
                 * offset waits for both (workflows.c). */
                char key[2 * SQ_WORKFLOW_ID_MAX + 600];
                int32_t partition;
                char *ended = sq_workflows_ended_record(
                    daemon, result, key, sizeof(key), &partition);
                if (ended) {
                        atomic_fetch_add(&job->pending_acks, 1);
                        produce_at(daemon, codec, daemon->rkt_results,
                                   result->finished_at, result->task_id,
                                   strlen(result->task_id), buf, len, headers,
                                   job);
                        produce_to(daemon, codec, daemon->rkt_workflows,
                                   partition, key, strlen(key), ended,
                                   strlen(ended), NULL, job);
                        sq_free(ended);
                        return;
                }
        }
        produce_at(daemon, codec, daemon->rkt_results, result->finished_at,
                   result->task_id, strlen(result->task_id), buf, len, headers,
                   job);
}

void sq_emit_result(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                    const sq_result_t *result) {
        emit_result(daemon, codec, job, result, NULL);
}

bool sq_emit_spawn(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                   const sq_workflow_t *wf) {
        char key[SQ_WORKFLOW_ID_MAX + 16];
        int32_t partition;
        char *rec = sq_workflows_declare_record(daemon, wf, key, sizeof(key),
                                                &partition);

        if (!rec)
                return false;
        /* Like a workflow task's ending: the task's offset waits for it
         * too, and under exactly_once it is in the task's transaction. */
        atomic_fetch_add(&job->pending_acks, 1);
        produce_to(daemon, codec, daemon->rkt_workflows, partition, key,
                   strlen(key), rec, strlen(rec), NULL, job);
        sq_free(rec);
        return true;
}

sq_err_t sq_emit_init(sq_daemon_t *daemon, char *errstr, size_t errstr_size) {
        char limit[32];
        size_t size = sizeof(limit);
        char *end;
        size_t i;

        if (rd_kafka_conf_get(rd_kafka_conf(daemon->producer),
                              "message.max.bytes", limit,
                              &size) != RD_KAFKA_CONF_OK ||
            (daemon->max_record_bytes = strtoll(limit, &end, 10)) <= 0 ||
            *end) {
                snprintf(errstr, errstr_size,
                         "cannot read the producer's message.max.bytes");
                return SQ_ERR_CONFIG;
        }
        for (i = 0; i < daemon->conf->agents_cnt; i++) {
                const sq_agent_conf_t *aconf = &daemon->conf->agents[i];
                if (aconf->kind == SQ_AGENT_BUILTIN ||
                    aconf->output_max_bytes + SQ_EMIT_RECORD_OVERHEAD + 1024 <=
                        daemon->max_record_bytes)
                        continue;
                snprintf(errstr, errstr_size,
                         "agent.%s.output.max.bytes=%lld cannot fit in a "
                         "result record: kafka.message.max.bytes (the "
                         "producer's record limit) is %lld; lower the first "
                         "or raise the second (and the results topic's "
                         "max.message.bytes) to at least %lld",
                         aconf->name, (long long)aconf->output_max_bytes,
                         (long long)daemon->max_record_bytes,
                         (long long)(aconf->output_max_bytes +
                                     SQ_EMIT_RECORD_OVERHEAD + 1024));
                return SQ_ERR_CONFIG;
        }
        return SQ_OK;
}

size_t sq_emit_result_size(sq_daemon_t *daemon, sq_codec_t *codec,
                           const sq_result_t *result) {
        char errstr[256];
        const void *buf;
        size_t len;

        (void)daemon;
        if (sq_codec_encode_result(codec, result, &buf, &len, errstr,
                                   sizeof(errstr)) != SQ_OK)
                return 0;
        /* The record around the value: key, timestamp, attributes and
         * length varints (librdkafka counts them against the limit). */
        return len + strlen(result->task_id) + SQ_EMIT_RECORD_OVERHEAD;
}

void sq_emit_dead_letter(sq_daemon_t *daemon, const rd_kafka_message_t *rkm,
                         const char *reason_code, const char *reason,
                         sq_job_t *tracked_job) {
        rd_kafka_headers_t *orig = NULL, *hdrs;
        rd_kafka_timestamp_type_t tstype;
        sq_origin_t origin;
        sq_record_t rec;

        /* A borrowed view of the record: the same headers a dead letter
         * of a failed task gets (a retry record that cannot be decoded
         * keeps naming the first record). */
        memset(&rec, 0, sizeof(rec));
        rec.topic     = (char *)rd_kafka_topic_name(rkm->rkt);
        rec.partition = rkm->partition;
        rec.offset    = rkm->offset;
        rec.timestamp = rd_kafka_message_timestamp(rkm, &tstype);
        if (rd_kafka_message_headers(rkm, &orig) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            orig)
                rec.headers = orig;
        sq_retry_origin(&rec, daemon->conf->topic_retry, &origin);
        hdrs = sq_retry_headers(&rec, &origin, daemon->conf->group_id,
                                daemon->conf->instance_id, NULL, NULL,
                                reason_code, reason);
        rd_kafka_header_add(hdrs, SQ_HDR_ORIGINAL_TS, -1, origin.timestamp, -1);
        sq_retry_header_add_int(hdrs, SQ_HDR_DEAD_LETTERED_AT,
                                sq_wallclock_ms());
        /* produce() hands the headers to librdkafka on success; only the
         * poll thread dead-letters undecodable records. */
        produce(daemon, daemon->poll.codec, daemon->rkt_dlt, rkm->key,
                rkm->key_len, rkm->payload, rkm->len, hdrs, tracked_job);
}

static void undecodable_records(sq_daemon_t *daemon,
                                const rd_kafka_message_t *rkm, sq_job_t *job,
                                const char *why) {
        sq_codec_t *codec = daemon->poll.codec;
        char id[256];
        char error[1024];
        sq_task_t idonly;
        sq_result_t result;

        if (!sq_codec_peek_task_id(rkm->payload, rkm->len, id, sizeof(id))) {
                atomic_store(&job->pending_acks, 1);
                sq_emit_event(daemon, codec, SQ_EVENT_DEAD_LETTERED, NULL, NULL,
                              why, NULL);
                sq_emit_dead_letter(daemon, rkm,
                                    sq_dl_reason_name(SQ_DL_DECODE_ERROR), why,
                                    job);
                return;
        }
        snprintf(error, sizeof(error),
                 "not a valid task: %s; its record is in the dead-letter "
                 "topic",
                 why);
        memset(&idonly, 0, sizeof(idonly));
        idonly.id = id; /* borrowed: only its id is read */
        memset(&result, 0, sizeof(result));
        result.task_id          = id;
        result.status           = SQ_STATUS_DEAD_LETTERED;
        result.error            = error;
        result.instance         = daemon->conf->instance_id;
        result.source.topic     = (char *)rd_kafka_topic_name(rkm->rkt);
        result.source.partition = rkm->partition;
        result.source.offset    = rkm->offset;
        result.finished_at      = sq_wallclock_ms();
        /* The dead letter, the result and (events.publish) the event. */
        atomic_store(&job->pending_acks, 2 + sq_emit_event_acks(daemon));
        emit_result(daemon, codec, job, &result, NULL);
        sq_emit_event(daemon, codec, SQ_EVENT_DEAD_LETTERED, &idonly, NULL, why,
                      job);
        sq_emit_dead_letter(daemon, rkm, sq_dl_reason_name(SQ_DL_DECODE_ERROR),
                            why, job);
}

void sq_emit_undecodable(sq_daemon_t *daemon, const rd_kafka_message_t *rkm,
                         sq_job_t *job, const char *why) {
        /* One transaction for all of them (exactly_once). */
        sq_emit_txn_hold(daemon);
        undecodable_records(daemon, rkm, job, why);
        sq_emit_txn_release(daemon);
}

/* The three records that end a task in the dead-letter topic: the task's
 * own record there (reason code and message in its headers), the
 * DEAD_LETTERED @p result and the dead_lettered event with @p detail. The
 * caller has counted them in the job's pending_acks. @p refused marks
 * them as produced in place of a refused record. */
/* The task's own record in the dead-letter topic, reason code and
 * message in its headers (@p refused: marked as produced in place of a
 * refused or denied record), tracked by @p job: the caller has counted
 * it in the job's pending_acks. */
static void dead_letter_record(sq_daemon_t *daemon, sq_codec_t *codec,
                               sq_job_t *job, const char *agent,
                               int64_t started_at, const char *reason_code,
                               const char *message, bool refused) {
        const sq_config_t *conf = daemon->conf;
        const sq_task_t *task   = job->task;
        const sq_record_t *rec  = job->rec;
        const char *key         = rec->key ? rec->key : task->id;
        size_t key_len          = rec->key ? rec->key_len : strlen(task->id);
        rd_kafka_headers_t *hdrs;
        sq_origin_t origin;

        sq_retry_origin(rec, conf->topic_retry, &origin);
        hdrs = sq_retry_headers(rec, &origin, conf->group_id, conf->instance_id,
                                agent, task->id, reason_code, message);
        rd_kafka_header_add(hdrs, SQ_HDR_ORIGINAL_TS, -1, origin.timestamp, -1);
        sq_retry_header_add_int(hdrs, SQ_HDR_ATTEMPTS, task->attempt);
        sq_retry_header_add_int(hdrs, SQ_HDR_DEAD_LETTERED_AT,
                                sq_wallclock_ms());
        if (started_at)
                sq_retry_header_add_int(hdrs, SQ_HDR_FIRST_STARTED, started_at);
        if (refused)
                rd_kafka_header_add(hdrs, HDR_REFUSED, -1, reason_code, -1);
        job->succeeded = false;
        produce(daemon, codec, daemon->rkt_dlt, key, key_len, rec->value,
                rec->value_len, hdrs, job);
}

static void dead_letter_job(sq_daemon_t *daemon, sq_codec_t *codec,
                            sq_job_t *job, sq_result_t *result,
                            const char *reason_code, const char *message,
                            const char *detail, bool refused) {
        const sq_task_t *task = job->task;
        int ev                = sq_emit_event_acks(daemon);

        SQ_LOG(SQ_LOG_NOTICE, "RETRY", "task_id=%s %s", task->id, detail);
        job->succeeded = false;
        result->status = SQ_STATUS_DEAD_LETTERED;
        dead_letter_record(daemon, codec, job, result->agent,
                           result->started_at, reason_code, message, refused);
        /* The result is still to produce: the job is alive. */
        sq_job_finished(daemon, job);
        /* The job may be freed once its last record is produced: an event
         * that is not (events.publish=none) comes before it. */
        if (!ev)
                sq_emit_event(daemon, codec, SQ_EVENT_DEAD_LETTERED, task,
                              result->agent, detail, job);
        if (refused) {
                rd_kafka_headers_t *rhdrs = rd_kafka_headers_new(1);
                rd_kafka_header_add(rhdrs, HDR_REFUSED, -1, reason_code, -1);
                emit_result(daemon, codec, job, result, rhdrs);
        } else {
                emit_result(daemon, codec, job, result, NULL);
        }
        if (ev)
                sq_emit_event(daemon, codec, SQ_EVENT_DEAD_LETTERED, task,
                              result->agent, detail, job);
}

bool sq_emit_dead_letters(const sq_daemon_t *daemon, const sq_job_t *job,
                          bool retryable) {
        return !retryable || job->task->attempt >=
                                 sq_retry_max_attempts(daemon->conf, job->task);
}

static bool failure_records(sq_daemon_t *daemon, sq_codec_t *codec,
                            sq_job_t *job, sq_result_t *result,
                            sq_dl_reason_t why, bool retryable) {
        const sq_config_t *conf = daemon->conf;
        const sq_task_t *task   = job->task;
        const sq_record_t *rec  = job->rec;
        int32_t attempt         = task->attempt;
        int32_t max             = sq_retry_max_attempts(conf, task);
        const char *reason      = sq_dl_reason_name(why);
        const char *message     = result->error ? result->error : reason;
        const char *key         = rec->key ? rec->key : task->id;
        size_t key_len          = rec->key ? rec->key_len : strlen(task->id);
        int ev                  = sq_emit_event_acks(daemon);
        char detail[1024];

        job->succeeded = false;
        if (!sq_emit_dead_letters(daemon, job, retryable)) {
                int64_t backoff =
                    sq_retry_backoff_ms(conf, attempt, sq_retry_random());
                int64_t due = sq_wallclock_ms() + backoff;
                rd_kafka_headers_t *hdrs;
                sq_origin_t origin;

                sq_retry_origin(rec, conf->topic_retry, &origin);
                hdrs = sq_retry_headers(rec, &origin, conf->group_id,
                                        conf->instance_id, result->agent,
                                        task->id, reason, message);
                rd_kafka_header_add(hdrs, SQ_HDR_ORIGINAL_TS, -1,
                                    origin.timestamp, -1);
                sq_retry_header_add_int(hdrs, SQ_HDR_ATTEMPTS, attempt + 1);
                sq_retry_header_add_int(hdrs, SQ_HDR_BACKOFF_TS, due);
                if (result->started_at)
                        sq_retry_header_add_int(hdrs, SQ_HDR_FIRST_STARTED,
                                                result->started_at);
                snprintf(detail, sizeof(detail),
                         "attempt %d of %d %s: %s; attempt %d due at %lld "
                         "(in %lld ms)",
                         (int)attempt, (int)max, reason, message,
                         (int)attempt + 1, (long long)due, (long long)backoff);
                SQ_LOG(SQ_LOG_INFO, "RETRY", "task_id=%s %s", task->id, detail);
                sq_metric_add(daemon->m.retries, 1);
                /* The retry record and the event are what make the
                 * offset committable, as a result would. */
                atomic_store(&job->pending_acks, 1 + ev);
                if (!ev) {
                        /* The retry record is the job's only record:
                         * after it the job may be freed. */
                        sq_job_finished(daemon, job);
                        sq_emit_event(daemon, codec, SQ_EVENT_RETRY_SCHEDULED,
                                      task, result->agent, detail, job);
                        produce(daemon, codec, daemon->rkt_retry, key, key_len,
                                rec->value, rec->value_len, hdrs, job);
                        return false;
                }
                produce(daemon, codec, daemon->rkt_retry, key, key_len,
                        rec->value, rec->value_len, hdrs, job);
                /* The event is still to produce: the job is alive. */
                sq_job_finished(daemon, job);
                sq_emit_event(daemon, codec, SQ_EVENT_RETRY_SCHEDULED, task,
                              result->agent, detail, job);
                return false;
        }
        if (!retryable)
                snprintf(detail, sizeof(detail),
                         "dead-lettered after attempt %d (%s, not retried): %s",
                         (int)attempt, reason, message);
        else
                snprintf(detail, sizeof(detail),
                         "dead-lettered after %d attempt%s (max %d); last %s: "
                         "%s",
                         (int)attempt, attempt == 1 ? "" : "s", (int)max,
                         reason, message);
        sq_metric_add(daemon->m.dead_letters[why], 1);
        atomic_store(&job->pending_acks, 2 + sq_emit_event_acks(daemon));
        dead_letter_job(daemon, codec, job, result, reason, message, detail,
                        false);
        return true;
}

void sq_emit_cancelled(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                       const char *why) {
        const sq_task_t *task = job->task;
        int ev                = sq_emit_event_acks(daemon);
        sq_result_t result;

        memset(&result, 0, sizeof(result));
        /* Borrowed pointers: the struct is only encoded, never freed. */
        result.task_id          = task->id;
        result.status           = SQ_STATUS_CANCELLED;
        result.error            = (char *)why;
        result.instance         = daemon->conf->instance_id;
        result.attempts         = task->attempt;
        result.source.topic     = (char *)job->part->topic;
        result.source.partition = job->part->partition;
        result.source.offset    = job->offset;
        result.created_at       = task->created_at;
        result.workflow_id      = task->workflow_id;
        result.parent_id        = task->parent_id;
        result.finished_at      = sq_wallclock_ms();
        SQ_LOG(SQ_LOG_INFO, "CANCEL", "task_id=%s %s", task->id, why);
        sq_metric_add(daemon->m.tasks_none[SQ_STATUS_CANCELLED][task->priority],
                      1);
        job->succeeded = false;
        atomic_store(&job->pending_acks, 1 + ev);
        sq_job_finished(daemon, job); /* its records are still to produce */
        /* One transaction for both (exactly_once). */
        sq_emit_txn_hold(daemon);
        emit_result(daemon, codec, job, &result, NULL);
        if (ev)
                sq_emit_event(daemon, codec, SQ_EVENT_CANCELLED, task, NULL,
                              why, job);
        sq_emit_txn_release(daemon);
}

void sq_emit_delay(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                   bool hop) {
        const sq_config_t *conf = daemon->conf;
        const sq_task_t *task   = job->task;
        const sq_record_t *rec  = job->rec;
        const char *key         = rec->key ? rec->key : task->id;
        size_t key_len          = rec->key ? rec->key_len : strlen(task->id);
        int64_t now             = sq_wallclock_ms();
        int ev                  = sq_emit_event_acks(daemon);
        rd_kafka_headers_t *hdrs;
        sq_origin_t origin;
        char detail[256];

        job->succeeded = false;
        if (hop) {
                /* Headers and all: its due time, attempt and origin stay
                 * what they were; only its place in the partition moves. */
                hdrs =
                    rec->headers ? rd_kafka_headers_copy(rec->headers) : NULL;
                SQ_LOG(SQ_LOG_DEBUG, "DELAY",
                       "task_id=%s not due after delay.hold.max.ms: moved "
                       "to the end of topic=%s from partition=%d "
                       "offset=%lld",
                       task->id, conf->topic_retry, (int)rec->partition,
                       (long long)rec->offset);
                sq_metric_add(daemon->m.delay_hops, 1);
                atomic_store(&job->pending_acks, 1);
                sq_job_finished(daemon, job);
                produce(daemon, codec, daemon->rkt_retry, key, key_len,
                        rec->value, rec->value_len, hdrs, job);
                return;
        }
        snprintf(detail, sizeof(detail),
                 "not before %lld (in %lld ms): waiting in %s",
                 (long long)task->not_before,
                 (long long)(task->not_before - now), conf->topic_retry);
        sq_retry_origin(rec, conf->topic_retry, &origin);
        hdrs = sq_retry_headers(rec, &origin, conf->group_id, conf->instance_id,
                                NULL, task->id, "DELAYED", detail);
        rd_kafka_header_add(hdrs, SQ_HDR_ORIGINAL_TS, -1, origin.timestamp, -1);
        sq_retry_header_add_int(hdrs, SQ_HDR_ATTEMPTS, task->attempt);
        sq_retry_header_add_int(hdrs, SQ_HDR_BACKOFF_TS, task->not_before);
        SQ_LOG(SQ_LOG_INFO, "DELAY", "task_id=%s %s", task->id, detail);
        sq_metric_add(daemon->m.delayed, 1);
        /* As for a retry: the record and the event make the original
         * offset committable, so a crash before both are in Kafka runs
         * this again, and one after finds the task waiting there. */
        atomic_store(&job->pending_acks, 1 + ev);
        sq_job_finished(daemon, job); /* its record is still to produce */
        /* One transaction for both (exactly_once). */
        sq_emit_txn_hold(daemon);
        produce(daemon, codec, daemon->rkt_retry, key, key_len, rec->value,
                rec->value_len, hdrs, job);
        if (ev)
                sq_emit_event(daemon, codec, SQ_EVENT_DELAYED, task, NULL,
                              detail, job);
        sq_emit_txn_release(daemon);
}

bool sq_emit_failure(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                     sq_result_t *result, sq_dl_reason_t why, bool retryable) {
        bool dead_lettered;

        /* One transaction for all of them (exactly_once). */
        sq_emit_txn_hold(daemon);
        dead_lettered =
            failure_records(daemon, codec, job, result, why, retryable);
        sq_emit_txn_release(daemon);
        return dead_lettered;
}

/* A tracked record of @p job (a result or a retry record) was refused:
 * the task is dead-lettered instead, its output dropped. Three records
 * replace the refused one. */
static void refused_task(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                         rd_kafka_topic_t *rkt, const void *value,
                         size_t value_len, const char *why) {
        sq_result_t *decoded = NULL;
        sq_result_t result;
        char errstr[256];
        char message[512];
        char detail[1024];

        memset(&result, 0, sizeof(result));
        /* A refused result still tells who ran the task and when. */
        if (rkt == daemon->rkt_results &&
            sq_codec_decode_result(codec, value, value_len, &decoded, errstr,
                                   sizeof(errstr)) == SQ_OK)
                result = *decoded;
        sq_emit_result_of_job(daemon, job, &result);
        result.output     = NULL;
        result.output_len = 0;
        if (!result.finished_at)
                result.finished_at = sq_wallclock_ms();
        snprintf(message, sizeof(message),
                 "the %s record of %zu bytes was refused (%s); output dropped",
                 rkt == daemon->rkt_results ? "result" : "retry", value_len,
                 why);
        result.error = message;
        snprintf(detail, sizeof(detail), "dead-lettered (RECORD_REFUSED): %s",
                 message);
        sq_metric_add(daemon->m.dead_letters[SQ_DL_RECORD_REFUSED], 1);
        /* The refused record counted once; its replacements: the dead
         * letter, the result and (events.publish) the event. */
        atomic_fetch_add(&job->pending_acks, 1 + sq_emit_event_acks(daemon));
        dead_letter_job(daemon, codec, job, &result,
                        sq_dl_reason_name(SQ_DL_RECORD_REFUSED), message,
                        detail, true);
        if (decoded)
                sq_result_destroy(decoded);
}

static void record_refused(sq_daemon_t *daemon, sq_codec_t *codec,
                           rd_kafka_topic_t *rkt, const void *key,
                           size_t key_len, const void *value, size_t value_len,
                           rd_kafka_headers_t *headers, sq_job_t *job,
                           rd_kafka_resp_err_t err, const char *by) {
        char why[256];
        char limit[32];
        char mark[32];
        size_t limit_size = sizeof(limit);

        sq_metric_add(daemon->m.records_refused, 1);
        if (rd_kafka_conf_get(rd_kafka_conf(daemon->producer),
                              "message.max.bytes", limit,
                              &limit_size) != RD_KAFKA_CONF_OK)
                snprintf(limit, sizeof(limit), "?");
        snprintf(why, sizeof(why),
                 "%s by the %s; the producer's limit is "
                 "kafka.message.max.bytes=%s",
                 rd_kafka_err2str(err), by, limit);
        SQ_LOG(SQ_LOG_ERR, "EMIT", "record of %zu bytes for %s refused: %s%s",
               value_len, rd_kafka_topic_name(rkt), why,
               job ? "" : " (an event that gates nothing: dropped)");
        if (!job) {
                if (headers)
                        rd_kafka_headers_destroy(headers);
                return;
        }
        refused_mark(headers, mark, sizeof(mark));
        if (*mark &&
            (rkt != daemon->rkt_dlt || !strcmp(mark, "VALUE_DROPPED"))) {
                /* What replaced a refused record is refused too (but a
                 * dead letter that still has its value can lose it). */
                rd_kafka_headers_destroy(headers);
                producer_failed(daemon, rkt, err, "a replacement record");
                job_record_lost(daemon, job, "replacement refused");
                return;
        }
        if (rkt == daemon->rkt_results || rkt == daemon->rkt_retry) {
                if (headers)
                        rd_kafka_headers_destroy(headers);
                refused_task(daemon, codec, job, rkt, value, value_len, why);
                return;
        }
        if (rkt == daemon->rkt_workflows) {
                /* A task's ending whose output does not fit: the
                 * workflow learns that it failed, and why. */
                int32_t partition;
                char *ended = sq_workflows_ended_refused(
                    daemon, value, value_len, why, &partition);
                if (headers)
                        rd_kafka_headers_destroy(headers);
                if (!ended) {
                        producer_failed(daemon, rkt, err, "ending refused");
                        job_record_lost(daemon, job, "ending refused");
                        return;
                }
                headers = rd_kafka_headers_new(1);
                rd_kafka_header_add(headers, HDR_REFUSED, -1, "ENDING", -1);
                produce_to(daemon, codec, rkt, partition, key, key_len, ended,
                           strlen(ended), headers, job);
                sq_free(ended);
                return;
        }
        if (rkt == daemon->rkt_events) {
                /* A terminal or retry_scheduled event: produced again
                 * with its detail dropped (only the detail can grow). */
                sq_event_t *event = NULL;
                char errstr[256];
                char detail[300];
                const void *buf;
                size_t len;

                if (headers)
                        rd_kafka_headers_destroy(headers);
                if (sq_codec_decode_event(codec, value, value_len, &event,
                                          errstr, sizeof(errstr)) != SQ_OK) {
                        producer_failed(daemon, rkt, err, errstr);
                        job_record_lost(daemon, job, "event refused");
                        return;
                }
                snprintf(detail, sizeof(detail), "(detail dropped: %s)", why);
                free(event->detail);
                event->detail = strdup(detail);
                headers       = rd_kafka_headers_new(1);
                rd_kafka_header_add(headers, HDR_REFUSED, -1, "EVENT", -1);
                if (event->detail &&
                    sq_codec_encode_event(codec, event, &buf, &len, errstr,
                                          sizeof(errstr)) == SQ_OK) {
                        produce(daemon, codec, rkt, key, key_len, buf, len,
                                headers, job);
                } else {
                        rd_kafka_headers_destroy(headers);
                        producer_failed(daemon, rkt, err, "event refused");
                        job_record_lost(daemon, job, "event refused");
                }
                sq_event_destroy(event);
                return;
        }
        /* A dead letter: produced again without its value. Its headers
         * still name the record upstream wrote (kafka_dlt-original-*),
         * which stays in its topic for the topic's retention. */
        if (!headers)
                headers = rd_kafka_headers_new(2);
        rd_kafka_header_remove(headers, HDR_REFUSED);
        rd_kafka_header_add(headers, HDR_REFUSED, -1, "VALUE_DROPPED", -1);
        rd_kafka_header_add(headers, "swarmq-value-dropped", -1, why, -1);
        produce(daemon, codec, rkt, key, key_len, NULL, 0, headers, job);
}

/* A record the principal may not write (denies_write()): the task's
 * outcome goes where it can. A denied retry record dead-letters the task
 * (a DEAD_LETTERED result naming the ACL); a denied result sends the
 * task's own record to the dead-letter topic instead (redriven once the
 * ACL is granted, it runs again); a denied event or dead letter is
 * dropped, since the task's result says what happened (a dead letter's
 * task record stays where upstream wrote it, the result's source). What
 * replaced a refused or denied record and is denied too, or a denied
 * record with no task, stops the instance. Takes @p headers.
 * @p poll_thread: called from a delivery report. */
static void record_denied(sq_daemon_t *daemon, sq_codec_t *codec,
                          rd_kafka_topic_t *rkt, const void *value,
                          size_t value_len, rd_kafka_headers_t *headers,
                          sq_job_t *job, rd_kafka_resp_err_t err,
                          bool poll_thread) {
        const char *topic = rd_kafka_topic_name(rkt);
        char denied[512];
        char message[1024];
        char mark[32];

        sq_kafka_acl_denied(err, "Write", topic, NULL, NULL, denied,
                            sizeof(denied));
        /* Not acknowledged: counted as a delivery report's error is
         * (swarmq_delivery_errors_total), here for a local denial. */
        if (!poll_thread)
                sq_metric_add(daemon->m.delivery_errors, 1);
        refused_mark(headers, mark, sizeof(mark));
        if (headers)
                rd_kafka_headers_destroy(headers);
        if (!job) {
                SQ_LOG(SQ_LOG_ERR, "EMIT", "event dropped: %s", denied);
                return;
        }
        if (*mark || !job->task) {
                producer_failed(daemon, rkt, err,
                                *mark ? "a record replacing a refused one"
                                      : "a dead letter");
                job_record_lost(daemon, job, "write denied");
                return;
        }
        if (rkt == daemon->rkt_retry) {
                SQ_LOG(SQ_LOG_ERR, "EMIT",
                       "task_id=%s: %s; the task is dead-lettered instead "
                       "of retried",
                       job->task->id, denied);
                refused_task(daemon, codec, job, rkt, value, value_len, denied);
                return;
        }
        if (rkt == daemon->rkt_results) {
                snprintf(message, sizeof(message),
                         "its result was not written: %s; redrive the task "
                         "once the principal may write to %s",
                         denied, topic);
                SQ_LOG(SQ_LOG_ERR, "EMIT",
                       "task_id=%s: %s; the task goes to the dead-letter "
                       "topic %s",
                       job->task->id, message, daemon->conf->topic_dlt);
                sq_metric_add(daemon->m.dead_letters[SQ_DL_RECORD_REFUSED], 1);
                /* In place of the result, counted once already. */
                dead_letter_record(daemon, codec, job, NULL, 0,
                                   sq_dl_reason_name(SQ_DL_RECORD_REFUSED),
                                   message, true);
                return;
        }
        if (rkt == daemon->rkt_dlt)
                SQ_LOG(SQ_LOG_ERR, "EMIT",
                       "task_id=%s: dead letter dropped: %s; the task's "
                       "record stays at topic=%s partition=%d offset=%lld "
                       "and its DEAD_LETTERED result names it",
                       job->task->id, denied, job->part->topic,
                       (int)job->part->partition, (long long)job->offset);
        else if (rkt == daemon->rkt_workflows)
                SQ_LOG(SQ_LOG_ERR, "EMIT",
                       "task_id=%s: its ending was not written: %s; its "
                       "workflow %s waits for it",
                       job->task->id, denied,
                       job->task->workflow_id ? job->task->workflow_id : "");
        else
                SQ_LOG(SQ_LOG_ERR, "EMIT",
                       "task_id=%s: event dropped: %s; the task's result "
                       "is written",
                       job->task->id, denied);
        job_record_done(daemon, job, poll_thread);
}

void sq_emit_dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                       void *opaque) {
        sq_daemon_t *daemon = opaque;
        sq_job_t *job       = rkm->_private;

        (void)rk;
        if (rkm->err) {
                sq_metric_add(daemon->m.delivery_errors, 1);
                if (!job && rkm->rkt == daemon->rkt_control) {
                        sq_control_dr_failed(rkm);
                        return;
                }
                if (!job) {
                        /* exactly_once: an aborted transaction purges its
                         * events by the hundred; the abort is logged. */
                        if (daemon->eos &&
                            (rkm->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
                             rkm->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT))
                                return;
                        SQ_LOG(SQ_LOG_WARNING, "EMIT",
                               "event not delivered to %s: %s",
                               rd_kafka_topic_name(rkm->rkt),
                               rd_kafka_err2str(rkm->err));
                        return;
                }
                if (daemon->eos && rkm->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
                    rkm->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
                        /* exactly_once: producing it again would not save
                         * the transaction; it aborts, and the task's
                         * offset stays uncommitted. */
                        /* The broker's reason, which a produce refused
                         * meanwhile ("Erroneous state") does not give:
                         * poll thread only, read when it aborts. */
                        if (!daemon->commit.txn_dr_cause[0])
                                snprintf(daemon->commit.txn_dr_cause,
                                         sizeof(daemon->commit.txn_dr_cause),
                                         "a record to %s not delivered: %s",
                                         rd_kafka_topic_name(rkm->rkt),
                                         rd_kafka_err2str(rkm->err));
                        if (!atomic_exchange(&daemon->commit.txn_failed,
                                             true)) {
                                SQ_LOG(SQ_LOG_ERR, "EMIT",
                                       "record for task_id=%s not delivered "
                                       "to %s in the transaction: %s",
                                       job->task ? job->task->id
                                                 : "(undecodable)",
                                       rd_kafka_topic_name(rkm->rkt),
                                       rd_kafka_err2str(rkm->err));
                        }
                }
                if (daemon->eos || rkm->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
                    rkm->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
                        /* Shutting down past the deadline: the offset stays
                         * uncommitted, the task will run again elsewhere. */
                        job_record_lost(daemon, job, "purged at shutdown");
                        return;
                }
                {
                        rd_kafka_headers_t *orig = NULL;
                        rd_kafka_headers_t *hdrs = NULL;
                        if (rd_kafka_message_headers(rkm, &orig) ==
                                RD_KAFKA_RESP_ERR_NO_ERROR &&
                            orig)
                                hdrs = rd_kafka_headers_copy(orig);
                        if (refuses_record(rkm->err)) {
                                /* Delivery reports are served on the poll
                                 * thread: its codec. */
                                record_refused(daemon, daemon->poll.codec,
                                               rkm->rkt, rkm->key, rkm->key_len,
                                               rkm->payload, rkm->len, hdrs,
                                               job, rkm->err, "broker");
                                return;
                        }
                        if (denies_write(rkm->err) &&
                            !rd_kafka_fatal_error(daemon->producer, NULL, 0)) {
                                record_denied(daemon, daemon->poll.codec,
                                              rkm->rkt, rkm->payload, rkm->len,
                                              hdrs, job, rkm->err, true);
                                return;
                        }
                        if (ends_producer(rkm->err) ||
                            rd_kafka_fatal_error(daemon->producer, NULL, 0)) {
                                if (hdrs)
                                        rd_kafka_headers_destroy(hdrs);
                                producer_failed(daemon, rkm->rkt, rkm->err,
                                                "delivery report");
                                job_record_lost(daemon, job, "producer failed");
                                return;
                        }
                        SQ_LOG(SQ_LOG_ERR, "EMIT",
                               "record for task_id=%s not delivered to %s: "
                               "%s; producing it again",
                               job->task ? job->task->id : "(undecodable)",
                               rd_kafka_topic_name(rkm->rkt),
                               rd_kafka_err2str(rkm->err));
                        /* An ending goes to its workflow's partition. */
                        produce_to(daemon, daemon->poll.codec, rkm->rkt,
                                   rkm->rkt == daemon->rkt_workflows
                                       ? rkm->partition
                                       : RD_KAFKA_PARTITION_UA,
                                   rkm->key, rkm->key_len, rkm->payload,
                                   rkm->len, hdrs, job);
                }
                return;
        }
        if (job && atomic_fetch_sub(&job->pending_acks, 1) == 1) {
                if (atomic_load(&job->purged))
                        sq_job_drop(daemon, job, "purged at shutdown");
                else
                        sq_job_acked(daemon, job);
        }
}
