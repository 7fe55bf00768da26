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
 */
#include "daemon_int.h"
#include "poll_int.h"
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Produces one record, waiting out a full local queue (bounded by the
 * admission window, so this only happens on a broker outage). */
static void produce(sq_daemon_t *daemon, rd_kafka_topic_t *rkt, const char *key,
                    size_t key_len, const void *value, size_t value_len,
                    rd_kafka_headers_t *headers, void *opaque) {
        bool warned = false;

        for (;;) {
                rd_kafka_resp_err_t err;
                /* exactly_once: a record goes into the open transaction;
                 * the poll thread commits it under the write lock, so no
                 * record is produced while a transaction ends. */
                if (daemon->eos)
                        pthread_rwlock_rdlock(&daemon->commit.txn_lock);
                /* NULL headers are allowed: the record has none. On
                 * success librdkafka owns @p headers. */
                err = rd_kafka_producev(
                    daemon->producer, RD_KAFKA_V_RKT(rkt),
                    RD_KAFKA_V_KEY(key, key_len),
                    RD_KAFKA_V_VALUE((void *)value, value_len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(opaque),
                    RD_KAFKA_V_END);
                if (!err) {
                        if (daemon->eos) {
                                atomic_fetch_add(&daemon->commit.txn_produced,
                                                 1);
                                pthread_rwlock_unlock(&daemon->commit.txn_lock);
                        }
                        return;
                }
                if (daemon->eos)
                        pthread_rwlock_unlock(&daemon->commit.txn_lock);
                if (daemon->eos && err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        /* The transaction failed (or the producer was
                         * fenced): nothing of it will be committed, nor
                         * the offsets it gates; the instance stops. */
                        /* Logged once: every executor keeps finishing
                         * tasks until the poll thread stops them. */
                        if (!atomic_exchange(&daemon->commit.txn_failed, true))
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
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        /* Only programming errors end here (unknown
                         * partition is impossible with the partitioner). */
                        SQ_LOG(SQ_LOG_CRIT, "EMIT", "cannot produce to %s: %s",
                               rd_kafka_topic_name(rkt), rd_kafka_err2str(err));
                        sq_assert(!"produce failed");
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

void sq_emit_event(sq_daemon_t *daemon, sq_codec_t *codec, const char *type,
                   const sq_task_t *task, const char *agent, const char *detail,
                   sq_job_t *tracked_job) {
        char event_id[64];
        char errstr[256];
        sq_event_t event;
        const void *buf;
        size_t len;
        const char *key;

        snprintf(event_id, sizeof(event_id), "%s-%llx", daemon->event_nonce,
                 (unsigned long long)atomic_fetch_add_explicit(
                     &daemon->event_seq, 1, memory_order_relaxed));
        memset(&event, 0, sizeof(event));
        /* Borrowed pointers: the struct is only encoded, never freed. */
        event.event_id = event_id;
        event.task_id  = task ? task->id : NULL;
        event.type     = (char *)type;
        event.at       = sq_wallclock_ms();
        event.instance = daemon->conf->instance_id;
        event.agent    = (char *)agent;
        event.detail   = (char *)detail;
        /* The same event, for GET /events and the live page. */
        sq_eventring_push(daemon->events, event.at, type, event.task_id, agent,
                          detail);
        if (sq_codec_encode_event(codec, &event, &buf, &len, errstr,
                                  sizeof(errstr)) != SQ_OK) {
                SQ_LOG(SQ_LOG_ERR, "EMIT", "cannot encode %s event: %s", type,
                       errstr);
                sq_assert(!tracked_job); /* terminal events always encode */
                return;
        }
        key = task ? task->id : daemon->conf->instance_id;
        produce(daemon, daemon->rkt_events, key, strlen(key), buf, len, NULL,
                tracked_job);
}

void sq_emit_result(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                    const sq_result_t *result) {
        char errstr[256];
        const void *buf;
        size_t len;

        if (sq_codec_encode_result(codec, result, &buf, &len, errstr,
                                   sizeof(errstr)) != SQ_OK) {
                SQ_LOG(SQ_LOG_CRIT, "EMIT",
                       "cannot encode the result of task_id=%s: %s",
                       result->task_id, errstr);
                sq_assert(!"result encoding failed");
        }
        produce(daemon, daemon->rkt_results, result->task_id,
                strlen(result->task_id), buf, len, NULL, job);
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
        /* produce() hands the headers to librdkafka on success. */
        produce(daemon, daemon->rkt_dlt, rkm->key, rkm->key_len, rkm->payload,
                rkm->len, hdrs, tracked_job);
}

void sq_emit_failure(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                     sq_result_t *result) {
        const sq_config_t *conf = daemon->conf;
        const sq_task_t *task   = job->task;
        const sq_record_t *rec  = job->rec;
        int32_t attempt         = task->attempt;
        int32_t max             = sq_retry_max_attempts(conf, task);
        const char *reason      = sq_status_name(result->status);
        const char *message     = result->error ? result->error : reason;
        const char *key         = rec->key ? rec->key : task->id;
        size_t key_len          = rec->key ? rec->key_len : strlen(task->id);
        rd_kafka_headers_t *hdrs;
        sq_origin_t origin;
        char detail[1024];

        sq_retry_origin(rec, conf->topic_retry, &origin);
        hdrs = sq_retry_headers(rec, &origin, conf->group_id, conf->instance_id,
                                result->agent, task->id, reason, message);
        rd_kafka_header_add(hdrs, SQ_HDR_ORIGINAL_TS, -1, origin.timestamp, -1);
        job->succeeded = false;
        if (attempt < max) {
                int64_t backoff =
                    sq_retry_backoff_ms(conf, attempt, sq_retry_random());
                int64_t due = sq_wallclock_ms() + backoff;

                sq_retry_header_add_int(hdrs, SQ_HDR_ATTEMPTS, attempt + 1);
                sq_retry_header_add_int(hdrs, SQ_HDR_BACKOFF_TS, due);
                snprintf(detail, sizeof(detail),
                         "attempt %d of %d %s: %s; attempt %d due at %lld "
                         "(in %lld ms)",
                         (int)attempt, (int)max, reason, message,
                         (int)attempt + 1, (long long)due, (long long)backoff);
                SQ_LOG(SQ_LOG_INFO, "RETRY", "task_id=%s %s", task->id, detail);
                sq_metric_add(daemon->m.retries, 1);
                /* The retry record and the event are what make the
                 * offset committable, as a result would. */
                atomic_store(&job->pending_acks, 2);
                produce(daemon, daemon->rkt_retry, key, key_len, rec->value,
                        rec->value_len, hdrs, job);
                sq_emit_event(daemon, codec, "retry_scheduled", task,
                              result->agent, detail, job);
                return;
        }
        sq_retry_header_add_int(hdrs, SQ_HDR_ATTEMPTS, attempt);
        sq_retry_header_add_int(hdrs, SQ_HDR_DEAD_LETTERED_AT,
                                sq_wallclock_ms());
        snprintf(detail, sizeof(detail),
                 "dead-lettered after %d attempt%s (max %d); last %s: %s",
                 (int)attempt, attempt == 1 ? "" : "s", (int)max, reason,
                 message);
        SQ_LOG(SQ_LOG_NOTICE, "RETRY", "task_id=%s %s", task->id, detail);
        sq_metric_add(daemon->m.dead_lettered_failed, 1);
        result->status = SQ_STATUS_DEAD_LETTERED;
        atomic_store(&job->pending_acks, 3);
        produce(daemon, daemon->rkt_dlt, key, key_len, rec->value,
                rec->value_len, hdrs, job);
        sq_emit_result(daemon, codec, job, result);
        sq_emit_event(daemon, codec, "dead_lettered", task, result->agent,
                      detail, job);
}

void sq_emit_dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                       void *opaque) {
        sq_daemon_t *daemon = opaque;
        sq_job_t *job       = rkm->_private;

        (void)rk;
        if (rkm->err) {
                sq_metric_add(daemon->m.delivery_errors, 1);
                if (!job) {
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
                        if (!atomic_exchange(&daemon->commit.txn_failed, true))
                                SQ_LOG(SQ_LOG_ERR, "EMIT",
                                       "record for task_id=%s not delivered "
                                       "to %s in the transaction: %s",
                                       job->task ? job->task->id
                                                 : "(undecodable)",
                                       rd_kafka_topic_name(rkm->rkt),
                                       rd_kafka_err2str(rkm->err));
                }
                if (daemon->eos || rkm->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
                    rkm->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
                        /* Shutting down past the deadline: the offset stays
                         * uncommitted, the task will run again elsewhere. */
                        atomic_store(&job->purged, true);
                        if (atomic_fetch_sub(&job->pending_acks, 1) == 1)
                                sq_job_drop(daemon, job, "purged at shutdown");
                        return;
                }
                SQ_LOG(SQ_LOG_ERR, "EMIT",
                       "record for task_id=%s not delivered to %s: %s; "
                       "producing it again",
                       job->task ? job->task->id : "(undecodable)",
                       rd_kafka_topic_name(rkm->rkt),
                       rd_kafka_err2str(rkm->err));
                {
                        rd_kafka_headers_t *orig = NULL;
                        rd_kafka_headers_t *hdrs = NULL;
                        if (rd_kafka_message_headers(rkm, &orig) ==
                                RD_KAFKA_RESP_ERR_NO_ERROR &&
                            orig)
                                hdrs = rd_kafka_headers_copy(orig);
                        produce(daemon, rkm->rkt, rkm->key, rkm->key_len,
                                rkm->payload, rkm->len, hdrs, job);
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
