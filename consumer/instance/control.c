/* SPDX-License-Identifier: Apache-2.0 */
/*
 * control.c: the control topic (topic.control): every instance reads all
 * of it, outside the consumer group, and acts on what it says. Today it
 * says one thing: cancel the task with this id (cancels.h has the record).
 *
 * DESIGN
 *   Thread: the control thread (qthread.c), started by main, sleeps in
 *   poll(2) on the pipe its consumer's queue signals and on an eventfd
 *   main writes to stop it: no timeout, no polling.
 *   For each cancellation it remembers the id in the set (cancels.c) for
 *   cancel.ttl.ms and asks the exec and pool runtimes to kill a child
 *   running that task (executor.c). What reads the set:
 *   - admission (poll thread): a task read with a cancelled id ends
 *     CANCELLED without running (a queued task, a delayed task when it
 *     comes due or is moved, a task that arrives after its cancel);
 *   - executors: a job popped or taken from a parked queue, likewise;
 *   - builtin handlers: sleep and cpu look at their next check.
 *   Every instance reads the topic from its beginning at start and keeps
 *   what is younger than cancel.ttl.ms, so a restarted instance honours
 *   the cancellations sent while it was down. Nothing is committed.
 *
 *   Sending (POST /admin/cancel): under at_least_once through the
 *   instance's producer. Under exactly_once through a plain idempotent
 *   producer of the control thread's, not the transaction: a cancel is no
 *   task's output and needs no atomicity with offsets, it is seen at once
 *   (not at the next commit), and a cancel refused by the broker (no
 *   Write on topic.control) cannot fail the transaction. It used to: when
 *   the refused cancel was the transaction's only record, librdkafka
 *   2.0.2's abort sent an EndTxn the coordinator refused
 *   (INVALID_TXN_STATE, fatal: confluentinc/librdkafka#4849), and the
 *   instance stopped.
 */
#include "daemon_int.h"
#include "executor_int.h"
#include "kafka_conf.h"
#include "log.h"

#include <string.h>

void sq_control_init(sq_daemon_t *daemon) {
        sq_control_t *ctl = &daemon->control;

        pthread_mutex_init(&ctl->producer_lock, NULL);

        ctl->cancels = sq_cancels_new((size_t)daemon->conf->cancel_max_entries,
                                      daemon->conf->cancel_ttl_ms * 1000);
        sq_qthread_init(&ctl->qt);
}

void sq_control_term(sq_daemon_t *daemon) {
        sq_cancels_destroy(daemon->control.cancels);
        daemon->control.cancels = NULL;
        pthread_mutex_destroy(&daemon->control.producer_lock);
}

const char *sq_control_cancelled(sq_daemon_t *daemon, const sq_task_t *task) {
        return daemon->control.cancels
                   ? sq_cancels_task(daemon->control.cancels, task,
                                     sq_clock_us())
                   : NULL;
}

/* One control record (control thread). */
static void handle_record(sq_daemon_t *daemon, const rd_kafka_message_t *rkm) {
        const sq_config_t *conf = daemon->conf;
        int64_t written         = rd_kafka_message_timestamp(rkm, NULL);
        char errstr[256];
        char *task_id = NULL;

        if (rkm->err) {
                char denied[512];
                /* librdkafka 2.0.2 looks up the coordinator of the
                 * throwaway group even for assign(); the group is never
                 * joined nor committed to, so a principal with no ACL on
                 * it (least privilege) reads the topic all the same. */
                if (rkm->err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED) {
                        SQ_LOG(SQ_LOG_DEBUG, "CONTROL",
                               "%s (the reader's group is not used)",
                               rd_kafka_message_errstr(rkm));
                        return;
                }
                if (sq_kafka_acl_denied(rkm->err, "Read", conf->topic_control,
                                        NULL, NULL, denied, sizeof(denied))) {
                        SQ_LOG(SQ_LOG_ERR, "CONTROL",
                               "consumer: %s; cancel requests are not read",
                               denied);
                        return;
                }
                SQ_LOG(SQ_LOG_WARNING, "CONTROL", "consumer error: %s",
                       rd_kafka_message_errstr(rkm));
                return;
        }
        atomic_fetch_add(&daemon->control.received, 1);
        if (written >= 0 && sq_wallclock_ms() - written > conf->cancel_ttl_ms)
                return; /* older than cancel.ttl.ms: forgotten already */
        if (sq_cancels_parse(rkm->payload, rkm->len, &task_id, errstr,
                             sizeof(errstr)) != SQ_OK) {
                SQ_LOG(SQ_LOG_WARNING, "CONTROL",
                       "ignored topic=%s partition=%d offset=%lld: %s",
                       conf->topic_control, (int)rkm->partition,
                       (long long)rkm->offset, errstr);
                return;
        }
        if (sq_cancels_add(daemon->control.cancels, task_id, sq_clock_us()))
                SQ_LOG(SQ_LOG_NOTICE, "CANCEL",
                       "task_id=%s cancelled (remembered %lld ms): queued, "
                       "waiting or arriving later it ends CANCELLED; "
                       "running here it is stopped (so is every task of a "
                       "workflow of that id)",
                       task_id, (long long)conf->cancel_ttl_ms);
        /* A child running it (or a task of the workflow of that id) is
         * killed; its result says CANCELLED. */
        sq_runtimes_cancel(daemon, task_id);
        sq_free(task_id);
}

static void *control_main(void *arg) {
        sq_daemon_t *daemon = arg;
        sq_control_t *ctl   = &daemon->control;

        do {
                rd_kafka_message_t *rkm;

                sq_qthread_drain(&ctl->qt);
                while ((rkm = rd_kafka_consume_queue(ctl->qt.rkq, 0))) {
                        handle_record(daemon, rkm);
                        rd_kafka_message_destroy(rkm);
                }
                /* Set before the thread starts, cleared after it ends. */
                if (ctl->producer)
                        rd_kafka_poll(ctl->producer, 0);
        } while (sq_qthread_sleep(&ctl->qt, -1, "CONTROL"));
        return NULL;
}

/* Assigns every partition of topic.control, from the beginning. */
static sq_err_t assign_all(sq_daemon_t *daemon, char *errstr,
                           size_t errstr_size) {
        const char *topic                      = daemon->conf->topic_control;
        rd_kafka_topic_t *rkt                  = NULL;
        const struct rd_kafka_metadata *md     = NULL;
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_resp_err_t rkerr;
        sq_err_t err = SQ_ERR_KAFKA;
        int i;

        rkt   = rd_kafka_topic_new(daemon->control.qt.rk, topic, NULL);
        rkerr = rd_kafka_metadata(daemon->control.qt.rk, 0, rkt, &md, 10000);
        if (rkerr || md->topic_cnt != 1 || md->topics[0].err ||
            md->topics[0].partition_cnt < 1) {
                sq_errstr_set(
                    errstr, errstr_size,
                    "cannot read the partitions of topic.control=%s: "
                    "%s",
                    topic,
                    rkerr ? rd_kafka_err2str(rkerr)
                    : md->topic_cnt == 1 &&
                            md->topics[0].err ==
                                RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
                        ? "Read on the topic denied (Broker: Topic "
                          "authorization failed)"
                    : md->topic_cnt != 1 || md->topics[0].err
                        ? rd_kafka_err2str(md->topics[0].err)
                        : "it has no partitions");
                goto done;
        }
        parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
        for (i = 0; i < md->topics[0].partition_cnt; i++)
                rd_kafka_topic_partition_list_add(
                    parts, topic, md->topics[0].partitions[i].id)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
        if ((rkerr = rd_kafka_assign(daemon->control.qt.rk, parts))) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot assign topic.control=%s: %s", topic,
                              rd_kafka_err2str(rkerr));
                goto done;
        }
        err = SQ_OK;
done:
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        return err;
}

/* The control producer's delivery reports (control thread, or main's
 * flush at stop). */
static void control_dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                              void *opaque) {
        (void)rk;
        (void)opaque;
        if (rkm->err)
                sq_control_dr_failed(rkm);
}

sq_err_t sq_control_start(sq_daemon_t *daemon, char *errstr,
                          size_t errstr_size) {
        sq_control_t *ctl = &daemon->control;
        char why[512];
        sq_err_t err;

        ctl->qt.rk = sq_kafka_new_control_consumer(daemon, errstr, errstr_size);
        if (!ctl->qt.rk)
                return SQ_ERR_KAFKA; /* a configuration the others took */
        if (assign_all(daemon, why, sizeof(why)) != SQ_OK) {
                /* Not fatal: tasks still run; cancelling does not. */
                SQ_LOG(SQ_LOG_WARNING, "CONTROL",
                       "%s; cancelling tasks is off on this instance until "
                       "it restarts with the topic there",
                       why);
                sq_control_stop(daemon);
                return SQ_OK;
        }
        if (daemon->eos &&
            !(ctl->producer = sq_kafka_new_control_producer(
                  daemon, control_dr_msg_cb, errstr, errstr_size))) {
                sq_control_stop(daemon);
                return SQ_ERR_KAFKA;
        }
        if ((err =
                 sq_qthread_start(&ctl->qt, "topic.control", NULL, "control",
                                  control_main, daemon, errstr, errstr_size))) {
                sq_control_stop(daemon);
                return err;
        }
        if (ctl->producer) {
                /* Its delivery reports wake the control thread. */
                ctl->producer_q = rd_kafka_queue_get_main(ctl->producer);
                rd_kafka_queue_io_event_enable(ctl->producer_q,
                                               ctl->qt.pipe_fds[1], "1", 1);
        }
        return SQ_OK;
}

/* How long stopping waits for cancel records still unacknowledged. */
#define CONTROL_FLUSH_MS 2000

void sq_control_stop(sq_daemon_t *daemon) {
        sq_control_t *ctl = &daemon->control;
        rd_kafka_t *producer;

        if (ctl->producer_q) {
                /* Off the pipe before sq_qthread_stop() closes it. */
                rd_kafka_queue_io_event_enable(ctl->producer_q, -1, NULL, 0);
                rd_kafka_queue_destroy(ctl->producer_q);
                ctl->producer_q = NULL;
        }
        sq_qthread_stop(&ctl->qt);
        pthread_mutex_lock(&ctl->producer_lock);
        producer      = ctl->producer;
        ctl->producer = NULL;
        pthread_mutex_unlock(&ctl->producer_lock);
        if (producer) {
                /* Its delivery reports (failures logged) run here. */
                if (rd_kafka_flush(producer, CONTROL_FLUSH_MS))
                        SQ_LOG(SQ_LOG_WARNING, "CONTROL",
                               "%d cancel records not acknowledged within "
                               "%d ms at shutdown",
                               rd_kafka_outq_len(producer), CONTROL_FLUSH_MS);
                rd_kafka_destroy(producer);
        }
}

void sq_control_dr_failed(const rd_kafka_message_t *rkm) {
        const char *topic = rd_kafka_topic_name(rkm->rkt);
        char why[512];

        if (!sq_kafka_acl_denied(rkm->err, "Write", topic, NULL, NULL, why,
                                 sizeof(why)))
                snprintf(why, sizeof(why), "%s", rd_kafka_err2str(rkm->err));
        SQ_LOG(SQ_LOG_ERR, "CONTROL",
               "cancel task_id=%.*s not delivered to topic.control=%s: %s "
               "(send the cancellation again once that is fixed)",
               (int)rkm->key_len, rkm->key ? (const char *)rkm->key : "", topic,
               why);
}

sq_err_t sq_control_send_cancel(sq_daemon_t *daemon, const char *task_id,
                                char *errstr, size_t errstr_size) {
        sq_control_t *ctl         = &daemon->control;
        const char *starting      = atomic_load(&daemon->starting);
        rd_kafka_resp_err_t rkerr = RD_KAFKA_RESP_ERR_NO_ERROR;
        bool off                  = false;
        char *value;

        /* Neither producer has its topic.control handle before the topics
         * step (sq_kafka_open_topics()); the flag is cleared after it. */
        if (starting) {
                sq_errstr_set(errstr, errstr_size,
                              "the instance is still starting (waiting for "
                              "%s); send the cancel again once it runs",
                              starting);
                return SQ_ERR_KAFKA;
        }
        value = sq_cancels_record(task_id, daemon->conf->instance_id,
                                  sq_wallclock_ms());

        /* exactly_once: the control producer, outside the transaction
         * (DESIGN above). */
        if (daemon->eos)
                pthread_mutex_lock(&ctl->producer_lock);
        if (daemon->eos && !ctl->producer)
                off = true; /* topic.control unreadable, or stopping */
        else if (daemon->eos)
                rkerr = rd_kafka_producev(
                    ctl->producer,
                    RD_KAFKA_V_TOPIC(daemon->conf->topic_control),
                    RD_KAFKA_V_KEY(task_id, strlen(task_id)),
                    RD_KAFKA_V_VALUE(value, strlen(value)),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        else /* its failed delivery: sq_emit_dr_msg_cb() by rkt_control */
                rkerr = rd_kafka_producev(
                    daemon->producer, RD_KAFKA_V_RKT(daemon->rkt_control),
                    RD_KAFKA_V_KEY(task_id, strlen(task_id)),
                    RD_KAFKA_V_VALUE(value, strlen(value)),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (daemon->eos)
                pthread_mutex_unlock(&ctl->producer_lock);
        sq_free(value);
        if (off) {
                sq_errstr_set(errstr, errstr_size,
                              "cancelling is off on this instance: "
                              "topic.control=%s could not be read at start, "
                              "or it is stopping",
                              daemon->conf->topic_control);
                return SQ_ERR_KAFKA;
        }
        if (rkerr) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot produce to topic.control=%s: %s",
                              daemon->conf->topic_control,
                              rd_kafka_err2str(rkerr));
                return SQ_ERR_KAFKA;
        }
        return SQ_OK;
}
