/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schedules.c: periodic schedules (schedule.<name>.* keys): one instance
 * of the group, chosen by Kafka, submits a task per tick of each
 * schedule, and records each tick it fired in topic.schedules, so the
 * next owner knows where to go on from.
 *
 * DESIGN
 *   Owner: every instance with schedules joins the consumer group
 *   <group.id>.schedules on topic.schedules, a topic of one partition;
 *   whoever Kafka assigns partition 0 is the owner. A kill -9, a stop or
 *   a rebalance moves the partition, and the ownership with it.
 *
 *   Thread: the schedules thread (qthread.c), started by main, sleeps in
 *   poll(2) on the pipe its consumer's queue signals, on an eventfd main
 *   writes to stop it, and with a timeout that is the owner's next tick
 *   (a timer, not a poll for work). It owns the consumer, the producer and the
 *   cursors; the HTTP thread reads the atomics of schedules_int.h.
 *
 *   Taking over (the rebalance callback, on this thread): under
 *   exactly_once the new owner first creates its producer with the
 *   group's one transactional.id (swarmq-schedules-<group.id>):
 *   init_transactions fences the previous owner and aborts the tick it
 *   left open. Then it reads partition 0 from the beginning,
 *   read_committed, and keeps each schedule's newest tick; the partition
 *   EOF says it has them all. Only then does it fire (role OWNER).
 *
 *   Firing a tick: the task (id "schedule-<name>-<tick>", headers
 *   swarmq-schedule and swarmq-schedule-tick) to topic.tasks (or
 *   topic.critical for CRITICAL), and the tick record (schedule.h) to
 *   partition 0 of topic.schedules. Under exactly_once both go in one
 *   transaction: a tick is in Kafka once, with its record, or not at
 *   all. Otherwise the task is produced and acknowledged first, then the
 *   record: a crash between the two makes the next owner fire the tick
 *   again with the same task id, which the consumers' dedup drops (at
 *   least once, never lost). A tick that cannot be produced is tried
 *   again a second later; the cursor only moves once it is in Kafka.
 *
 *   Missed ticks (sq_schedule_plan()): a tick fired within
 *   schedules.late.ms of its time is on time; older ones (the group had
 *   no owner, or the owner was busy) follow schedule.<name>.missed.
 *
 *   Stopping: main stops the thread, then closes the consumer, which
 *   runs the revoke callback here: the producer is flushed (what was
 *   fired is delivered) and destroyed, and the group hands partition 0
 *   to a standby at once.
 */
#include "daemon_int.h"
#include "kafka_conf.h"
#include "log.h"
#include "schedule.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define FLUSH_MS        30000 /* a tick's records, acknowledged */
#define RETRY_MS        1000  /* a tick that failed, tried again */
#define WAIT_MAX_MS     60000 /* longest sleep without a tick due */
#define INIT_TXN_MS     60000 /* init_transactions' deadline */
#define STOP_FLUSH_MS   10000 /* flushing on revoke */
#define TASK_ID_MAX_LEN 400

static const char *role_name(int role) {
        switch (role) {
        case SQ_SCHEDULES_STANDBY:
                return "standby";
        case SQ_SCHEDULES_LOADING:
                return "loading";
        case SQ_SCHEDULES_OWNER:
                return "owner";
        default:
                return "off";
        }
}

void sq_schedules_init(sq_daemon_t *daemon) {
        sq_schedules_t *s = &daemon->schedules;
        size_t i;

        sq_qthread_init(&s->qt);
        atomic_store(&s->role, SQ_SCHEDULES_OFF);
        if (!daemon->conf->schedules_cnt)
                return;
        s->state = sq_calloc(daemon->conf->schedules_cnt, sizeof(*s->state));
        for (i = 0; i < daemon->conf->schedules_cnt; i++) {
                atomic_init(&s->state[i].last, 0);
                atomic_init(&s->state[i].next, 0);
                atomic_init(&s->state[i].fired, 0);
                atomic_init(&s->state[i].skipped, 0);
        }
}

void sq_schedules_term(sq_daemon_t *daemon) {
        sq_free(daemon->schedules.state);
        daemon->schedules.state = NULL;
}

/* Delivery reports of the schedules producer: each record's opaque is
 * the rd_kafka_resp_err_t its produce call waits on. */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque) {
        (void)rk;
        (void)opaque;
        if (rkm->_private)
                *(rd_kafka_resp_err_t *)rkm->_private = rkm->err;
}

static void producer_destroy(sq_schedules_t *s, int flush_ms) {
        if (!s->producer)
                return;
        if (flush_ms > 0)
                rd_kafka_flush(s->producer, flush_ms);
        rd_kafka_destroy(s->producer);
        s->producer = NULL;
}

/* Becoming the owner: the producer (and under exactly_once the fencing
 * of the previous owner), and the cursors reset for the reading. */
static bool take_over(sq_daemon_t *daemon) {
        sq_schedules_t *s = &daemon->schedules;
        char errstr[512];
        size_t i;

        producer_destroy(s, 0);
        s->producer = sq_kafka_new_schedules_producer(daemon, dr_msg_cb, errstr,
                                                      sizeof(errstr));
        if (!s->producer) {
                SQ_LOG(SQ_LOG_ERR, "SCHEDULE",
                       "cannot create the schedules producer: %s", errstr);
                return false;
        }
        if (daemon->eos) {
                rd_kafka_error_t *error =
                    rd_kafka_init_transactions(s->producer, INIT_TXN_MS);
                if (error) {
                        SQ_LOG(SQ_LOG_ERR, "SCHEDULE",
                               "cannot start the schedules' transactions "
                               "(fencing the previous owner): %s",
                               rd_kafka_error_string(error));
                        rd_kafka_error_destroy(error);
                        producer_destroy(s, 0);
                        return false;
                }
        }
        for (i = 0; i < daemon->conf->schedules_cnt; i++) {
                atomic_store(&s->state[i].last, 0);
                atomic_store(&s->state[i].next, 0);
        }
        s->retry_at_ms = 0;
        return true;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
        sq_daemon_t *daemon     = opaque;
        sq_schedules_t *s       = &daemon->schedules;
        bool cooperative        = sq_kafka_cooperative(rk);
        rd_kafka_error_t *error = NULL;
        bool owns               = false;
        int i;

        for (i = 0; i < parts->cnt; i++)
                if (parts->elems[i].partition == 0 &&
                    !strcmp(parts->elems[i].topic,
                            daemon->conf->topic_schedules))
                        owns = true;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                if (owns) {
                        SQ_LOG(SQ_LOG_NOTICE, "SCHEDULE",
                               "this instance owns topic=%s partition=0: "
                               "reading the last fired ticks, then firing "
                               "%zu schedules",
                               daemon->conf->topic_schedules,
                               daemon->conf->schedules_cnt);
                        /* On failure it stays loading, and the loop
                         * tries again (take_over, then a seek). */
                        take_over(daemon);
                        atomic_store(&s->role, SQ_SCHEDULES_LOADING);
                }
                for (i = 0; i < parts->cnt; i++)
                        parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
                if (cooperative)
                        error = rd_kafka_incremental_assign(rk, parts);
                else
                        rd_kafka_assign(rk, parts);
        } else {
                if (owns || err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
                        if (atomic_load(&s->role) != SQ_SCHEDULES_STANDBY)
                                SQ_LOG(SQ_LOG_NOTICE, "SCHEDULE",
                                       "topic=%s partition=0 revoked: "
                                       "another instance fires the "
                                       "schedules",
                                       daemon->conf->topic_schedules);
                        /* What was fired is delivered before the next
                         * owner reads the partition. */
                        producer_destroy(s, STOP_FLUSH_MS);
                        atomic_store(&s->role, SQ_SCHEDULES_STANDBY);
                        for (i = 0; i < (int)daemon->conf->schedules_cnt; i++)
                                atomic_store(&s->state[i].next, 0);
                }
                if (cooperative)
                        error = rd_kafka_incremental_unassign(rk, parts);
                else
                        rd_kafka_assign(rk, NULL);
        }
        if (error) {
                SQ_LOG(SQ_LOG_ERR, "SCHEDULE", "incremental assignment: %s",
                       rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
}

static ssize_t schedule_find(const sq_config_t *conf, const char *name) {
        size_t i;
        for (i = 0; i < conf->schedules_cnt; i++)
                if (!strcmp(conf->schedules[i].name, name))
                        return (ssize_t)i;
        return -1;
}

/* Loading is over: every schedule goes on from its last fired tick (a
 * schedule never fired starts with its first tick after now). */
static void loaded(sq_daemon_t *daemon) {
        sq_schedules_t *s = &daemon->schedules;
        int64_t now       = sq_wallclock_ms();
        size_t i;

        for (i = 0; i < daemon->conf->schedules_cnt; i++) {
                int64_t last       = atomic_load(&s->state[i].last);
                s->state[i].cursor = last ? last : now;
                SQ_LOG(SQ_LOG_INFO, "SCHEDULE",
                       "schedule=%s last_tick=%lld (%s)",
                       daemon->conf->schedules[i].name, (long long)last,
                       last ? "from topic.schedules" : "never fired");
        }
        atomic_store(&s->role, SQ_SCHEDULES_OWNER);
        SQ_LOG(SQ_LOG_NOTICE, "SCHEDULE",
               "firing %zu schedules (last ticks read from topic=%s)",
               daemon->conf->schedules_cnt, daemon->conf->topic_schedules);
}

/* One record (or event) of the schedules consumer. */
static void handle_message(sq_daemon_t *daemon, const rd_kafka_message_t *rkm) {
        sq_schedules_t *s = &daemon->schedules;
        const char *topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "";
        char errstr[256];
        char *name = NULL;
        int64_t tick;
        ssize_t i;

        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (rkm->partition == 0 &&
                    !strcmp(topic, daemon->conf->topic_schedules) &&
                    atomic_load(&s->role) == SQ_SCHEDULES_LOADING &&
                    s->producer)
                        loaded(daemon);
                return;
        }
        if (rkm->err) {
                SQ_LOG(SQ_LOG_WARNING, "SCHEDULE", "consumer error: %s",
                       rd_kafka_message_errstr(rkm));
                return;
        }
        if (rkm->partition != 0)
                return; /* only partition 0 is written to */
        if (sq_schedule_record_parse(rkm->payload, rkm->len, &name, &tick,
                                     errstr, sizeof(errstr)) != SQ_OK) {
                SQ_LOG(SQ_LOG_WARNING, "SCHEDULE",
                       "ignored topic=%s partition=%d offset=%lld: %s", topic,
                       (int)rkm->partition, (long long)rkm->offset, errstr);
                return;
        }
        i = schedule_find(daemon->conf, name);
        sq_free(name);
        if (i < 0)
                return; /* a schedule no longer declared */
        if (tick > atomic_load(&s->state[i].last))
                atomic_store(&s->state[i].last, tick);
}

/* Produces one record and (at least once) waits for its acknowledgement. */
static rd_kafka_resp_err_t produce(sq_daemon_t *daemon, const char *topic,
                                   int32_t partition, const char *key,
                                   const void *value, size_t len) {
        sq_schedules_t *s            = &daemon->schedules;
        rd_kafka_resp_err_t delivery = RD_KAFKA_RESP_ERR__IN_PROGRESS;
        rd_kafka_resp_err_t err;

        err = rd_kafka_producev(
            s->producer, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(daemon->eos ? NULL : &delivery), RD_KAFKA_V_END);
        if (err || daemon->eos)
                return err; /* the transaction's commit waits for it */
        rd_kafka_flush(s->producer, FLUSH_MS);
        return delivery == RD_KAFKA_RESP_ERR__IN_PROGRESS
                   ? RD_KAFKA_RESP_ERR__TIMED_OUT
                   : delivery;
}

/* Fires @p tick of schedule @p i. @returns true once it is in Kafka. */
static bool fire(sq_daemon_t *daemon, size_t i, int64_t tick) {
        const sq_schedule_conf_t *sconf = &daemon->conf->schedules[i];
        sq_schedules_t *s               = &daemon->schedules;
        int64_t now                     = sq_wallclock_ms();
        sq_task_t *task                 = sq_task_new();
        char id[TASK_ID_MAX_LEN], tickbuf[24], errstr[512] = "";
        const char *topic;
        const void *buf;
        char *record            = NULL;
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t err;
        bool ok = false;
        size_t c, len;

        sq_schedule_task_id(sconf->name, tick, id, sizeof(id));
        snprintf(tickbuf, sizeof(tickbuf), "%lld", (long long)tick);
        task->id       = sq_strdup(id);
        task->type     = sq_strdup(sconf->type);
        task->priority = sconf->priority;
        for (c = 0; c < sconf->capabilities_cnt; c++)
                sq_task_add_capability(task, sconf->capabilities[c]);
        task->payload_len = strlen(sconf->payload);
        if (task->payload_len) {
                task->payload = sq_malloc(task->payload_len);
                memcpy(task->payload, sconf->payload, task->payload_len);
        }
        task->created_at = now;
        task->timeout_ms = sconf->timeout_ms;
        sq_task_add_header(task, "swarmq-schedule", sconf->name);
        sq_task_add_header(task, "swarmq-schedule-tick", tickbuf);
        if (sq_codec_encode_task(s->codec, task, &buf, &len, errstr,
                                 sizeof(errstr)) != SQ_OK) {
                SQ_LOG(SQ_LOG_ERR, "SCHEDULE",
                       "schedule=%s tick=%lld: cannot encode its task: %s",
                       sconf->name, (long long)tick, errstr);
                goto done;
        }
        topic  = sconf->priority == SQ_PRIO_CRITICAL
                     ? daemon->conf->topic_critical
                     : daemon->conf->topic_tasks;
        record = sq_schedule_record(sconf->name, tick, id, now,
                                    daemon->conf->instance_id);

        if (daemon->eos && (error = rd_kafka_begin_transaction(s->producer)))
                goto txn_failed;
        if ((err =
                 produce(daemon, topic, RD_KAFKA_PARTITION_UA, id, buf, len)) ||
            (err = produce(daemon, daemon->conf->topic_schedules, 0,
                           sconf->name, record, strlen(record)))) {
                snprintf(errstr, sizeof(errstr), "%s", rd_kafka_err2str(err));
                if (daemon->eos)
                        error =
                            rd_kafka_abort_transaction(s->producer, FLUSH_MS);
                goto failed;
        }
        if (daemon->eos &&
            (error = rd_kafka_commit_transaction(s->producer, FLUSH_MS)))
                goto txn_failed;
        ok = true;
        goto done;

txn_failed:
        snprintf(errstr, sizeof(errstr), "%s", rd_kafka_error_string(error));
        if (rd_kafka_error_txn_requires_abort(error)) {
                rd_kafka_error_destroy(error);
                error = rd_kafka_abort_transaction(s->producer, FLUSH_MS);
        }
failed:
        SQ_LOG(SQ_LOG_WARNING, "SCHEDULE",
               "schedule=%s tick=%lld task_id=%s not fired: %s; trying again "
               "in %d ms",
               sconf->name, (long long)tick, id, errstr, RETRY_MS);
        if (error && rd_kafka_error_is_fatal(error)) {
                /* Fenced: another instance took over. It reads what we
                 * committed; we wait for the revoke, or take over again. */
                SQ_LOG(SQ_LOG_ERR, "SCHEDULE",
                       "the schedules producer failed for good (%s): "
                       "reading topic.schedules again before firing",
                       rd_kafka_error_string(error));
                producer_destroy(s, 0);
                atomic_store(&s->role, SQ_SCHEDULES_LOADING);
        }
done:
        if (error)
                rd_kafka_error_destroy(error);
        sq_free(record);
        sq_task_destroy(task);
        return ok;
}

/* Fires what is due. @returns ms until the next tick (or retry). */
static int fire_due(sq_daemon_t *daemon) {
        const sq_config_t *conf = daemon->conf;
        sq_schedules_t *s       = &daemon->schedules;
        int64_t wait = WAIT_MAX_MS, now = sq_wallclock_ms();
        size_t i;

        if (s->retry_at_ms > now)
                return (int)(s->retry_at_ms - now);
        for (i = 0; i < conf->schedules_cnt &&
                    atomic_load(&s->role) == SQ_SCHEDULES_OWNER;
             i++) {
                const sq_schedule_conf_t *sconf = &conf->schedules[i];
                sq_schedule_state_t *st         = &s->state[i];
                int64_t next;

                for (;;) {
                        sq_schedule_plan_t plan = sq_schedule_plan(
                            &sconf->spec, sconf->missed, st->cursor, now,
                            conf->schedules_late_ms,
                            conf->schedules_catchup_max);
                        st->cursor = plan.cursor;
                        if (plan.skipped) {
                                atomic_fetch_add(&st->skipped, plan.skipped);
                                SQ_LOG(SQ_LOG_NOTICE, "SCHEDULE",
                                       "schedule=%s skipped %lld missed "
                                       "ticks up to %lld (missed=%s)",
                                       sconf->name, (long long)plan.skipped,
                                       (long long)plan.cursor,
                                       sconf->missed == SQ_MISSED_SKIP ? "skip"
                                       : sconf->missed == SQ_MISSED_ONCE
                                           ? "once"
                                           : "all, past "
                                             "schedules.catchup.max");
                        }
                        if (!plan.fire)
                                break;
                        if (!fire(daemon, i, plan.fire)) {
                                s->retry_at_ms = now + RETRY_MS;
                                return RETRY_MS;
                        }
                        st->cursor = plan.fire;
                        atomic_store(&st->last, plan.fire);
                        atomic_fetch_add(&st->fired, 1);
                        SQ_LOG(SQ_LOG_INFO, "SCHEDULE",
                               "schedule=%s tick=%lld fired late_ms=%lld",
                               sconf->name, (long long)plan.fire,
                               (long long)(sq_wallclock_ms() - plan.fire));
                        now = sq_wallclock_ms();
                        if (atomic_load(&daemon->schedules.role) !=
                            SQ_SCHEDULES_OWNER)
                                break;
                }
                next = sq_schedule_next(&sconf->spec, st->cursor);
                atomic_store(&st->next, next > 0 ? next : 0);
                if (next > 0 && next - now < wait)
                        wait = next - now;
        }
        return (int)SQ_MAX(wait, 0);
}

/* A take-over that failed in the callback, tried again: then the
 * partition is read again from its beginning. */
static int retry_take_over(sq_daemon_t *daemon) {
        sq_schedules_t *s                      = &daemon->schedules;
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_error_t *error;

        if (s->retry_at_ms > sq_wallclock_ms())
                return (int)(s->retry_at_ms - sq_wallclock_ms());
        if (!take_over(daemon)) {
                s->retry_at_ms = sq_wallclock_ms() + 5 * RETRY_MS;
                return 5 * RETRY_MS;
        }
        parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, daemon->conf->topic_schedules,
                                          0)
            ->offset = RD_KAFKA_OFFSET_BEGINNING;
        if ((error = rd_kafka_seek_partitions(s->qt.rk, parts, 10000))) {
                SQ_LOG(SQ_LOG_WARNING, "SCHEDULE",
                       "cannot read topic=%s again: %s",
                       daemon->conf->topic_schedules,
                       rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
        rd_kafka_topic_partition_list_destroy(parts);
        return -1;
}

static void *schedules_main(void *arg) {
        sq_daemon_t *daemon = arg;
        sq_schedules_t *s   = &daemon->schedules;
        int timeout;

        do {
                rd_kafka_message_t *rkm;
                int role;

                sq_qthread_drain(&s->qt);
                /* Serves the rebalance callback too. */
                while ((rkm = rd_kafka_consumer_poll(s->qt.rk, 0))) {
                        handle_message(daemon, rkm);
                        rd_kafka_message_destroy(rkm);
                }
                role    = atomic_load(&s->role);
                timeout = -1;
                if (role == SQ_SCHEDULES_OWNER)
                        timeout = fire_due(daemon);
                else if (role == SQ_SCHEDULES_LOADING && !s->producer)
                        timeout = retry_take_over(daemon);
        } while (sq_qthread_sleep(&s->qt, timeout, "SCHEDULE"));
        return NULL;
}

sq_err_t sq_schedules_start(sq_daemon_t *daemon, char *errstr,
                            size_t errstr_size) {
        sq_schedules_t *s = &daemon->schedules;
        sq_err_t err;

        if (!daemon->conf->schedules_cnt)
                return SQ_OK;
        s->codec = sq_codec_new(errstr, errstr_size);
        if (!s->codec)
                return SQ_ERR_CONFIG;
        sq_schemas_use(daemon, s->codec);
        s->qt.rk = sq_kafka_new_schedules_consumer(daemon, rebalance_cb, errstr,
                                                   errstr_size);
        if (!s->qt.rk)
                return SQ_ERR_KAFKA;
        atomic_store(&s->role, SQ_SCHEDULES_STANDBY);
        if ((err = sq_qthread_start(
                 &s->qt, "topic.schedules", daemon->conf->topic_schedules,
                 "schedules", schedules_main, daemon, errstr, errstr_size)))
                return err;
        SQ_LOG(SQ_LOG_NOTICE, "SCHEDULE",
               "%zu schedules; the owner of topic=%s partition=0 (group "
               "%s.schedules) fires them",
               daemon->conf->schedules_cnt, daemon->conf->topic_schedules,
               daemon->conf->group_id);
        return SQ_OK;
}

void sq_schedules_stop(sq_daemon_t *daemon) {
        sq_schedules_t *s = &daemon->schedules;

        /* Leaves the group: the revoke callback (run there) flushes what
         * was fired, and a standby takes over. */
        sq_qthread_stop(&s->qt);
        producer_destroy(s, STOP_FLUSH_MS);
        if (daemon->conf->schedules_cnt)
                atomic_store(&s->role, SQ_SCHEDULES_OFF);
        sq_codec_destroy(s->codec);
        s->codec = NULL;
}

/*
 * /metrics and /status (HTTP thread)
 */

static void collect_ticks(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        char labels[256], name[160];
        size_t i;
        (void)metrics;

        for (i = 0; i < daemon->conf->schedules_cnt; i++) {
                sq_metrics_escape_label(name, sizeof(name),
                                        daemon->conf->schedules[i].name);
                snprintf(labels, sizeof(labels),
                         "schedule=\"%s\",outcome=\"fired\"", name);
                sq_metrics_emit(
                    out, "swarmq_schedule_ticks_total", labels,
                    (double)atomic_load(&daemon->schedules.state[i].fired));
                snprintf(labels, sizeof(labels),
                         "schedule=\"%s\",outcome=\"skipped\"", name);
                sq_metrics_emit(
                    out, "swarmq_schedule_ticks_total", labels,
                    (double)atomic_load(&daemon->schedules.state[i].skipped));
        }
}

/* One gauge per schedule, in seconds: its next tick, or its last one. */
static void emit_tick_times(sq_daemon_t *daemon, void *out, const char *family,
                            bool next) {
        char labels[256], name[160];
        size_t i;

        for (i = 0; i < daemon->conf->schedules_cnt; i++) {
                sq_schedule_state_t *st = &daemon->schedules.state[i];
                sq_metrics_escape_label(name, sizeof(name),
                                        daemon->conf->schedules[i].name);
                snprintf(labels, sizeof(labels), "schedule=\"%s\"", name);
                sq_metrics_emit(
                    out, family, labels,
                    (double)atomic_load(next ? &st->next : &st->last) / 1000.0);
        }
}

static void collect_next(void *opaque, sq_metrics_t *metrics, void *out) {
        (void)metrics;
        emit_tick_times(opaque, out,
                        "swarmq_schedule_next_tick_timestamp_seconds", true);
}

static void collect_last(void *opaque, sq_metrics_t *metrics, void *out) {
        (void)metrics;
        emit_tick_times(opaque, out,
                        "swarmq_schedule_last_tick_timestamp_seconds", false);
}

static void collect_owner(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(
            out, "swarmq_schedules_owner", NULL,
            atomic_load(&daemon->schedules.role) == SQ_SCHEDULES_OWNER ? 1 : 0);
}

void sq_schedules_register_metrics(sq_daemon_t *daemon) {
        sq_metrics_t *metrics = daemon->metrics;

        if (!daemon->conf->schedules_cnt)
                return;
        sq_metrics_collector(metrics, "swarmq_schedule_ticks_total",
                             "Ticks of each periodic schedule this instance "
                             "fired, or skipped by the schedule's missed "
                             "policy",
                             SQ_METRIC_COUNTER, collect_ticks, daemon);
        sq_metrics_collector(metrics,
                             "swarmq_schedule_next_tick_timestamp_seconds",
                             "When the schedule fires next (seconds since "
                             "1970; 0 where this instance does not fire the "
                             "schedules)",
                             SQ_METRIC_GAUGE, collect_next, daemon);
        sq_metrics_collector(metrics,
                             "swarmq_schedule_last_tick_timestamp_seconds",
                             "The schedule's newest fired tick this instance "
                             "knows of (seconds since 1970; 0: none)",
                             SQ_METRIC_GAUGE, collect_last, daemon);
        sq_metrics_collector(metrics, "swarmq_schedules_owner",
                             "1 where this instance owns topic.schedules and "
                             "fires the schedules",
                             SQ_METRIC_GAUGE, collect_owner, daemon);
}

void *sq_schedules_status(sq_daemon_t *daemon) {
        const sq_config_t *conf = daemon->conf;
        json_t *obj = json_object(), *list = json_array();
        size_t i;

        json_object_set_new(
            obj, "role",
            json_string(role_name(atomic_load(&daemon->schedules.role))));
        json_object_set_new(obj, "topic", json_string(conf->topic_schedules));
        for (i = 0; i < conf->schedules_cnt; i++) {
                const sq_schedule_conf_t *sconf = &conf->schedules[i];
                const sq_schedule_state_t *st   = &daemon->schedules.state[i];
                json_t *one                     = json_object();
                int64_t next                    = atomic_load(&st->next);

                json_object_set_new(one, "name", json_string(sconf->name));
                if (sconf->cron)
                        json_object_set_new(one, "cron",
                                            json_string(sconf->cron));
                else
                        json_object_set_new(one, "every_ms",
                                            json_integer(sconf->every_ms));
                json_object_set_new(
                    one, "missed",
                    json_string(sconf->missed == SQ_MISSED_ALL    ? "all"
                                : sconf->missed == SQ_MISSED_ONCE ? "once"
                                                                  : "skip"));
                json_object_set_new(one, "type", json_string(sconf->type));
                json_object_set_new(one, "last_tick_ms",
                                    json_integer(atomic_load(&st->last)));
                json_object_set_new(one, "next_tick_ms",
                                    next ? json_integer(next) : json_null());
                json_object_set_new(one, "fired",
                                    json_integer(atomic_load(&st->fired)));
                json_object_set_new(one, "skipped",
                                    json_integer(atomic_load(&st->skipped)));
                json_array_append_new(list, one);
        }
        json_object_set_new(obj, "list", list);
        return obj;
}
