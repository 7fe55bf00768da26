/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka.c: building the instance's librdkafka clients from the config, and
 * the embedded broker (librdkafka's mock cluster) for --embedded-broker.
 *
 * DESIGN
 *   The configurations come from the one builder (core/kafka/kafka_conf.c):
 *   the profile swarmq's guarantees depend on (manual commits for the
 *   consumer, idempotence for the producer) and the instance's defaults
 *   are set first, then every kafka.* key of the config is applied on top,
 *   so an operator can tune anything; the few that would break
 *   at-least-once (enable.auto.commit, enable.auto.offset.store, ...) are
 *   rejected here with the key named. A key librdkafka does not know is
 *   reported with librdkafka's own sentence.
 *   The consumer serves its rebalance and commit callbacks on the poll
 *   thread (rd_kafka_poll_set_consumer); the producer's delivery reports
 *   are served on the poll thread too, through producer_q.
 */
#include "commit_int.h"
#include "daemon_int.h"
#include "kafka_conf.h"
#include "rebalance_int.h"
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
        (void)rk;
        (void)opaque;
        SQ_LOG(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? SQ_LOG_ERR
                                                          : SQ_LOG_WARNING,
               "KAFKA", "client error: %s: %s",
               rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

sq_err_t sq_kafka_start_embedded(sq_daemon_t *daemon, char *errstr,
                                 size_t errstr_size) {
        const sq_config_t *conf = daemon->conf;
        const char *topics[7];
        char rkerr[256];
        rd_kafka_conf_t *rkconf = sq_kafka_conf_new();
        size_t i;

        /* This handle only owns the mock cluster and never connects: keep
         * its "no bootstrap.servers" notice out of the log. */
        rd_kafka_conf_set(rkconf, "log_level", "3", NULL, 0);
        daemon->mock_rk =
            rd_kafka_new(RD_KAFKA_PRODUCER, rkconf, rkerr, sizeof(rkerr));
        if (!daemon->mock_rk) {
                sq_errstr_set(errstr, errstr_size,
                              "embedded broker: cannot create its client: %s",
                              rkerr);
                return SQ_ERR_KAFKA;
        }
        daemon->mcluster =
            rd_kafka_mock_cluster_new(daemon->mock_rk, conf->embedded_brokers);
        if (!daemon->mcluster) {
                sq_errstr_set(errstr, errstr_size,
                              "embedded broker: cannot start the mock cluster");
                return SQ_ERR_KAFKA;
        }
        /* Create every topic up front with the configured partitions; the
         * mock cluster does not answer CreateTopics. */
        topics[0] = conf->topic_tasks;
        topics[1] = conf->topic_critical;
        topics[2] = conf->topic_retry;
        topics[3] = conf->topic_dlt;
        topics[4] = conf->topic_results;
        topics[5] = conf->topic_events;
        topics[6] = conf->topic_control;
        for (i = 0; i < SQ_ARRAY_SIZE(topics); i++) {
                rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
                    daemon->mcluster, topics[i], conf->embedded_partitions, 1);
                if (err) {
                        sq_errstr_set(errstr, errstr_size,
                                      "embedded broker: cannot create topic "
                                      "%s: %s",
                                      topics[i], rd_kafka_err2str(err));
                        return SQ_ERR_KAFKA;
                }
        }
        if (conf->workflows_enable) {
                rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
                    daemon->mcluster, conf->topic_workflows,
                    conf->embedded_partitions, 1);
                if (err) {
                        sq_errstr_set(errstr, errstr_size,
                                      "embedded broker: cannot create topic "
                                      "%s: %s",
                                      conf->topic_workflows,
                                      rd_kafka_err2str(err));
                        return SQ_ERR_KAFKA;
                }
        }
        if (conf->schedules_cnt) {
                rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
                    daemon->mcluster, conf->topic_schedules, 1, 1);
                if (err) {
                        sq_errstr_set(errstr, errstr_size,
                                      "embedded broker: cannot create topic "
                                      "%s: %s",
                                      conf->topic_schedules,
                                      rd_kafka_err2str(err));
                        return SQ_ERR_KAFKA;
                }
        }
        daemon->bootstrap =
            sq_strdup(rd_kafka_mock_cluster_bootstraps(daemon->mcluster));
        SQ_LOG(SQ_LOG_NOTICE, "BROKER",
               "embedded broker started bootstrap.servers=%s brokers=%d "
               "partitions=%d",
               daemon->bootstrap, conf->embedded_brokers,
               conf->embedded_partitions);
        return SQ_OK;
}

/* Keys whose change would silently break at-least-once delivery. */
static const char *const reserved_keys[] = {
    "enable.auto.commit", "enable.auto.offset.store",
    "enable.idempotence", "acks",
    "group.id",           NULL};

static sq_err_t apply_common(const sq_daemon_t *daemon, rd_kafka_conf_t *rkconf,
                             char *errstr, size_t errstr_size) {
        const sq_config_t *conf = daemon->conf;
        size_t i, r;
        sq_err_t err;

        if ((err = sq_kafka_conf_set(rkconf, "bootstrap.servers",
                                     daemon->bootstrap, errstr, errstr_size)) ||
            (err = sq_kafka_conf_set(rkconf, "client.id", conf->instance_id,
                                     errstr, errstr_size)))
                return err;
        for (i = 0; i < conf->kafka_cnt; i++) {
                const sq_kv_t *kv = &conf->kafka[i];
                for (r = 0; reserved_keys[r]; r++) {
                        if (!strcmp(kv->name, reserved_keys[r])) {
                                sq_errstr_set(
                                    errstr, errstr_size,
                                    "kafka.%s cannot be set: swarmq manages "
                                    "it to keep its delivery guarantee%s",
                                    kv->name,
                                    !strcmp(kv->name, "group.id")
                                        ? " (use the group.id key instead)"
                                        : "");
                                return SQ_ERR_CONFIG;
                        }
                }
                /* The bootstrap comes from -b or the embedded broker. */
                if (!strcmp(kv->name, "bootstrap.servers"))
                        continue;
                if ((err = sq_kafka_conf_set(rkconf, kv->name, kv->value,
                                             errstr, errstr_size)))
                        return err;
        }
        rd_kafka_conf_set_error_cb(rkconf, error_cb);
        return SQ_OK;
}

sq_err_t sq_kafka_new_clients(sq_daemon_t *daemon, char *errstr,
                              size_t errstr_size) {
        /* Consumer: manual commits of the completed prefix only. Eager, not
         * cooperative-sticky: with librdkafka 2.0.2 the commits a
         * cooperative revocation makes fail now and then with
         * ILLEGAL_GENERATION, and the partitions' new owners run again what
         * was done (measured: tests/broker/0410). Eager revocation commits
         * reliably. kafka.partition.assignment.strategy overrides this;
         * both protocols are handled. */
        static const char *const consumer_settings[] = {
            "auto.offset.reset", "earliest", "partition.assignment.strategy",
            "roundrobin", "allow.auto.create.topics", "true",
            "queued.max.messages.kbytes", "16384",
            /* A resumed partition's records come from a new fetch, which
             * waits for the one in flight; with a backlog prefetched to
             * the log end that one is a long poll the broker holds for
             * up to fetch.wait.max.ms (librdkafka's 500 by default).
             * Every admission-window resume then left the executors idle
             * for 300-800 ms: 100 ms bounds that gap, at the cost of an
             * idle instance fetching 10 times a second instead of 2
             * (docs/benchmarks.md, 2026-12-07T04). */
            "fetch.wait.max.ms", "100", NULL};
        /* Producer: idempotent, acks=all; delivery reports drive commits.
         * One request in flight per broker connection: librdkafka (2.0.2
         * and later) lets an idempotent producer send a partition's next
         * batch only while fewer than 5 *messages* of it are in flight,
         * but schedules its broker thread's wake-up for the batch anyway,
         * so with the usual batches of 5 or more the thread calls
         * poll(2) with a zero timeout until the previous batch is
         * acknowledged (measured: 100,000 to 170,000 poll calls for 180
         * requests per 100,000 noop tasks, a third of the instance's
         * CPU). With one request in flight the next one waits in
         * librdkafka's output queue and the thread sleeps. Each request
         * carries every partition's batch, and what piles up meanwhile
         * goes in the next one (docs/benchmarks.md, 2026-12-07T04). */
        static const char *const producer_settings[] = {
            "queue.buffering.max.messages", "1000000",
            "max.in.flight.requests.per.connection", "1", NULL};
        const sq_config_t *conf = daemon->conf;
        rd_kafka_conf_t *cconf  = sq_kafka_conf_new();
        rd_kafka_conf_t *pconf  = sq_kafka_conf_new();
        char txn_id[600]        = "";
        sq_err_t err;

        if ((err = sq_kafka_conf_set(cconf, "group.id", conf->group_id, errstr,
                                     errstr_size)) ||
            (err = sq_kafka_conf_profile(
                 cconf, SQ_KAFKA_PROFILE_MANUAL_COMMIT_CONSUMER, errstr,
                 errstr_size)) ||
            (err = sq_kafka_conf_set_pairs(cconf, consumer_settings, errstr,
                                           errstr_size)) ||
            (err = apply_common(daemon, cconf, errstr, errstr_size)))
                goto fail;
        rd_kafka_conf_set_opaque(cconf, daemon);
        rd_kafka_conf_set_rebalance_cb(cconf, sq_daemon_rebalance_cb);
        rd_kafka_conf_set_offset_commit_cb(cconf, sq_daemon_offset_commit_cb);

        if ((err = sq_kafka_conf_profile(pconf,
                                         SQ_KAFKA_PROFILE_IDEMPOTENT_PRODUCER,
                                         errstr, errstr_size)) ||
            (err = sq_kafka_conf_set_pairs(pconf, producer_settings, errstr,
                                           errstr_size)) ||
            (err = apply_common(daemon, pconf, errstr, errstr_size)))
                goto fail;
        if (daemon->eos) {
                /* Stable per instance, so a restarted instance fences its
                 * previous incarnation and aborts what it left open. */
                snprintf(txn_id, sizeof(txn_id), "swarmq-%s-%s", conf->group_id,
                         conf->instance_id);
                if ((err = sq_kafka_conf_set(pconf, "transactional.id", txn_id,
                                             errstr, errstr_size)))
                        goto fail;
        }
        rd_kafka_conf_set_opaque(pconf, daemon);
        rd_kafka_conf_set_dr_msg_cb(pconf, sq_emit_dr_msg_cb);

        daemon->producer = sq_kafka_conf_new_client(RD_KAFKA_PRODUCER, pconf,
                                                    errstr, errstr_size);
        pconf            = NULL; /* taken, on failure too */
        if (!daemon->producer) {
                err = SQ_ERR_KAFKA;
                goto fail;
        }
        if (daemon->eos) {
                rd_kafka_error_t *error =
                    rd_kafka_init_transactions(daemon->producer, 60000);
                if (!error)
                        error = rd_kafka_begin_transaction(daemon->producer);
                if (error) {
                        char denied[1024] = "";
                        rd_kafka_queue_t *rkqu =
                            rd_kafka_queue_get_main(daemon->producer);
                        /* A missing ACL named: the transactional id; or
                         * the login the brokers refused meanwhile. */
                        if (sq_kafka_acl_denied(rd_kafka_error_code(error),
                                                "Write", NULL, conf->group_id,
                                                txn_id, denied + 2,
                                                sizeof(denied) - 2) ||
                            sq_kafka_login_failed(rkqu, denied + 2,
                                                  sizeof(denied) - 2))
                                memcpy(denied, ": ", 2);
                        rd_kafka_queue_destroy(rkqu);
                        sq_errstr_set(errstr, errstr_size,
                                      "processing.guarantee=exactly_once: "
                                      "cannot start transactions: %s%s",
                                      rd_kafka_error_string(error), denied);
                        rd_kafka_error_destroy(error);
                        err = SQ_ERR_KAFKA;
                        goto fail;
                }
        }
        daemon->consumer = sq_kafka_conf_new_client(RD_KAFKA_CONSUMER, cconf,
                                                    errstr, errstr_size);
        cconf            = NULL; /* taken, on failure too */
        if (!daemon->consumer) {
                err = SQ_ERR_KAFKA;
                goto fail;
        }
        rd_kafka_poll_set_consumer(daemon->consumer);
        daemon->consumer_q = rd_kafka_queue_get_consumer(daemon->consumer);
        daemon->critical_q = rd_kafka_queue_new(daemon->consumer);
        daemon->producer_q = rd_kafka_queue_get_main(daemon->producer);
        /* The topic handles: sq_kafka_open_topics(), once the topics
         * exist. */

        return SQ_OK;

fail:
        if (cconf)
                rd_kafka_conf_destroy(cconf);
        if (pconf)
                rd_kafka_conf_destroy(pconf);
        return err;
}

void sq_kafka_open_topics(sq_daemon_t *daemon) {
        const sq_config_t *conf = daemon->conf;

        daemon->rkt_results =
            rd_kafka_topic_new(daemon->producer, conf->topic_results, NULL);
        daemon->rkt_events =
            rd_kafka_topic_new(daemon->producer, conf->topic_events, NULL);
        daemon->rkt_dlt =
            rd_kafka_topic_new(daemon->producer, conf->topic_dlt, NULL);
        daemon->rkt_retry =
            rd_kafka_topic_new(daemon->producer, conf->topic_retry, NULL);
        daemon->rkt_control =
            rd_kafka_topic_new(daemon->producer, conf->topic_control, NULL);
        /* rkt_workflows: made by sq_workflows_start(), later still. */
}

sq_err_t sq_kafka_subscribe(sq_daemon_t *daemon, char *errstr,
                            size_t errstr_size) {
        const sq_config_t *conf = daemon->conf;
        rd_kafka_topic_partition_list_t *subscription;
        rd_kafka_resp_err_t rkerr;
        const char *topics[3];
        int i;

        /* The retry topic is a lane of its own: its partitions pause
         * until their head record is due (admission.c). */
        topics[0]    = conf->topic_tasks;
        topics[1]    = conf->topic_critical;
        topics[2]    = conf->topic_retry;
        subscription = rd_kafka_topic_partition_list_new(3);
        for (i = 0; i < 3; i++)
                rd_kafka_topic_partition_list_add(subscription, topics[i],
                                                  RD_KAFKA_PARTITION_UA);
        rkerr = rd_kafka_subscribe(daemon->consumer, subscription);
        rd_kafka_topic_partition_list_destroy(subscription);
        if (rkerr) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot subscribe to %s, %s and %s: %s",
                              topics[0], topics[1], topics[2],
                              rd_kafka_err2str(rkerr));
                return SQ_ERR_KAFKA;
        }
        return SQ_OK;
}

rd_kafka_t *sq_kafka_new_control_consumer(sq_daemon_t *daemon, char *errstr,
                                          size_t errstr_size) {
        /* No group: every instance reads every partition, assigned by
         * hand; nothing is committed (each reads from the beginning and
         * keeps what is younger than cancel.ttl.ms). librdkafka 2.0.2
         * wants a group.id even for assign(): one of its own, never
         * joined (no subscribe) and never committed to. */
        static const char *const settings[] = {"enable.partition.eof", "false",
                                               NULL};
        rd_kafka_conf_t *cconf              = sq_kafka_conf_new();
        char group[600];

        snprintf(group, sizeof(group), "swarmq-control-%s-%s",
                 daemon->conf->instance_id, daemon->event_nonce);
        if (sq_kafka_conf_set(cconf, "group.id", group, errstr, errstr_size) ||
            sq_kafka_conf_profile(cconf,
                                  SQ_KAFKA_PROFILE_MANUAL_COMMIT_CONSUMER,
                                  errstr, errstr_size) ||
            sq_kafka_conf_set_pairs(cconf, settings, errstr, errstr_size) ||
            apply_common(daemon, cconf, errstr, errstr_size)) {
                rd_kafka_conf_destroy(cconf);
                return NULL;
        }
        return sq_kafka_conf_new_client(RD_KAFKA_CONSUMER, cconf, errstr,
                                        errstr_size);
}

/* The consumer of a topic whose partitions' owners act on them (the
 * schedules', the workflows'): in the group <group.id>.<@p suffix>, so
 * each partition has one owner among the instances; nothing committed
 * (an owner reads its partitions from their beginning, read_committed,
 * to their end: the partition EOF says when it has their state). */
static rd_kafka_t *new_owner_consumer(
    sq_daemon_t *daemon, const char *suffix,
    void (*rebalance_cb)(rd_kafka_t *, rd_kafka_resp_err_t,
                         rd_kafka_topic_partition_list_t *, void *),
    char *errstr, size_t errstr_size) {
        static const char *const settings[] = {"enable.partition.eof",
                                               "true",
                                               "isolation.level",
                                               "read_committed",
                                               "partition.assignment.strategy",
                                               "roundrobin",
                                               "allow.auto.create.topics",
                                               "true",
                                               NULL};
        rd_kafka_conf_t *cconf              = sq_kafka_conf_new();
        char group[600];

        snprintf(group, sizeof(group), "%s.%s", daemon->conf->group_id, suffix);
        if (sq_kafka_conf_set(cconf, "group.id", group, errstr, errstr_size) ||
            sq_kafka_conf_profile(cconf,
                                  SQ_KAFKA_PROFILE_MANUAL_COMMIT_CONSUMER,
                                  errstr, errstr_size) ||
            sq_kafka_conf_set_pairs(cconf, settings, errstr, errstr_size) ||
            apply_common(daemon, cconf, errstr, errstr_size)) {
                rd_kafka_conf_destroy(cconf);
                return NULL;
        }
        rd_kafka_conf_set_opaque(cconf, daemon);
        rd_kafka_conf_set_rebalance_cb(cconf, rebalance_cb);
        return sq_kafka_conf_new_client(RD_KAFKA_CONSUMER, cconf, errstr,
                                        errstr_size);
}

rd_kafka_t *sq_kafka_new_schedules_consumer(
    sq_daemon_t *daemon,
    void (*rebalance_cb)(rd_kafka_t *, rd_kafka_resp_err_t,
                         rd_kafka_topic_partition_list_t *, void *),
    char *errstr, size_t errstr_size) {
        /* One partition: one owner fires the schedules. */
        return new_owner_consumer(daemon, "schedules", rebalance_cb, errstr,
                                  errstr_size);
}

rd_kafka_t *sq_kafka_new_workflows_consumer(
    sq_daemon_t *daemon,
    void (*rebalance_cb)(rd_kafka_t *, rd_kafka_resp_err_t,
                         rd_kafka_topic_partition_list_t *, void *),
    char *errstr, size_t errstr_size) {
        return new_owner_consumer(daemon, "workflows", rebalance_cb, errstr,
                                  errstr_size);
}

/* An owner's producer (schedules.c, workflows.c) or the control
 * producer (control.c): idempotent; with @p txn_id, transactional. */
static rd_kafka_t *new_owner_producer(
    sq_daemon_t *daemon, const char *txn_id,
    void (*dr_msg_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
    char *errstr, size_t errstr_size) {
        rd_kafka_conf_t *pconf = sq_kafka_conf_new();

        if (sq_kafka_conf_profile(pconf, SQ_KAFKA_PROFILE_IDEMPOTENT_PRODUCER,
                                  errstr, errstr_size) ||
            apply_common(daemon, pconf, errstr, errstr_size))
                goto fail;
        if (txn_id && sq_kafka_conf_set(pconf, "transactional.id", txn_id,
                                        errstr, errstr_size))
                goto fail;
        rd_kafka_conf_set_opaque(pconf, daemon);
        rd_kafka_conf_set_dr_msg_cb(pconf, dr_msg_cb);
        return sq_kafka_conf_new_client(RD_KAFKA_PRODUCER, pconf, errstr,
                                        errstr_size);
fail:
        rd_kafka_conf_destroy(pconf);
        return NULL;
}

rd_kafka_t *sq_kafka_new_control_producer(
    sq_daemon_t *daemon,
    void (*dr_msg_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
    char *errstr, size_t errstr_size) {
        return new_owner_producer(daemon, NULL, dr_msg_cb, errstr, errstr_size);
}

rd_kafka_t *sq_kafka_new_workflows_producer(
    sq_daemon_t *daemon, int32_t partition,
    void (*dr_msg_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
    char *errstr, size_t errstr_size) {
        char txn_id[600];

        /* At least once (partition -1): each step's records are
         * acknowledged before the state that says they were written.
         * Exactly once: one transactional.id per partition of
         * topic.workflows, so its next owner's init_transactions fences
         * the previous one and aborts the step it left open
         * (docs/workflows.md). */
        if (partition < 0)
                return new_owner_producer(daemon, NULL, dr_msg_cb, errstr,
                                          errstr_size);
        snprintf(txn_id, sizeof(txn_id), "swarmq-workflows-%s-%d",
                 daemon->conf->group_id, (int)partition);
        return new_owner_producer(daemon, txn_id, dr_msg_cb, errstr,
                                  errstr_size);
}

rd_kafka_t *sq_kafka_new_schedules_producer(
    sq_daemon_t *daemon,
    void (*dr_msg_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
    char *errstr, size_t errstr_size) {
        char txn_id[600];

        /* Under exactly_once one id for the whole group: the next
         * owner's init_transactions fences the previous one and aborts
         * the tick it left open. */
        snprintf(txn_id, sizeof(txn_id), "swarmq-schedules-%s",
                 daemon->conf->group_id);
        return new_owner_producer(daemon, daemon->eos ? txn_id : NULL,
                                  dr_msg_cb, errstr, errstr_size);
}

void sq_kafka_destroy_clients(sq_daemon_t *daemon) {
        if (daemon->rkt_control)
                rd_kafka_topic_destroy(daemon->rkt_control);
        daemon->rkt_control = NULL;
        if (daemon->rkt_workflows)
                rd_kafka_topic_destroy(daemon->rkt_workflows);
        daemon->rkt_workflows = NULL;
        if (daemon->rkt_results)
                rd_kafka_topic_destroy(daemon->rkt_results);
        if (daemon->rkt_events)
                rd_kafka_topic_destroy(daemon->rkt_events);
        if (daemon->rkt_dlt)
                rd_kafka_topic_destroy(daemon->rkt_dlt);
        if (daemon->rkt_retry)
                rd_kafka_topic_destroy(daemon->rkt_retry);
        if (daemon->consumer_q)
                rd_kafka_queue_destroy(daemon->consumer_q);
        if (daemon->critical_q)
                rd_kafka_queue_destroy(daemon->critical_q);
        if (daemon->producer_q)
                rd_kafka_queue_destroy(daemon->producer_q);
        daemon->rkt_results = daemon->rkt_events = daemon->rkt_dlt = NULL;
        daemon->rkt_retry                                          = NULL;
        daemon->consumer_q = daemon->critical_q = daemon->producer_q = NULL;
        if (daemon->consumer)
                rd_kafka_destroy(daemon->consumer);
        if (daemon->producer)
                rd_kafka_destroy(daemon->producer);
        daemon->consumer = daemon->producer = NULL;
        if (daemon->mcluster)
                rd_kafka_mock_cluster_destroy(daemon->mcluster);
        if (daemon->mock_rk)
                rd_kafka_destroy(daemon->mock_rk);
        daemon->mcluster = NULL;
        daemon->mock_rk  = NULL;
}

/* Names of the topics of @p conf that the broker's metadata lacks. */
static size_t missing_topics(rd_kafka_t *rk, const char *const *topics,
                             size_t topics_cnt, const char **missing,
                             char *errstr, size_t errstr_size) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;
        size_t i, cnt = 0;
        int t;

        err = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
        if (err) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot read the cluster's metadata: %s",
                              rd_kafka_err2str(err));
                return (size_t)-1;
        }
        for (i = 0; i < topics_cnt; i++) {
                bool found = false;
                for (t = 0; t < md->topic_cnt && !found; t++)
                        found = !strcmp(md->topics[t].topic, topics[i]) &&
                                md->topics[t].err == RD_KAFKA_RESP_ERR_NO_ERROR;
                if (!found)
                        missing[cnt++] = topics[i];
        }
        rd_kafka_metadata_destroy(md);
        return cnt;
}

/* After CreateTopics: waits (up to 15 s) until the consumer's own
 * metadata shows every topic, before sq_kafka_subscribe(): a group joined
 * with a subscribed topic missing from the metadata hands out none of its
 * partitions, and librdkafka looks again only at the next metadata
 * refresh (topic.metadata.refresh.interval.ms, five minutes by default),
 * or never when the news arrives mid-rebalance (instance.c). */
static void wait_topics_visible(sq_daemon_t *daemon, const char *const *topics,
                                size_t topics_cnt) {
        const char *missing[10];
        int64_t deadline = sq_clock_us() + 15 * 1000000;
        char errstr[256];
        size_t cnt;

        sq_assert(topics_cnt <= SQ_ARRAY_SIZE(missing));
        while (!atomic_load(&daemon->stop_requested) &&
               (cnt = missing_topics(daemon->consumer, topics, topics_cnt,
                                     missing, errstr, sizeof(errstr))) != 0) {
                struct timespec ts = {0, 100 * 1000000};
                if (sq_clock_us() > deadline) {
                        SQ_LOG(SQ_LOG_WARNING, "TOPICS",
                               "topic=%s not in the metadata 15 s after "
                               "it was created%s%s",
                               cnt == (size_t)-1 ? "(any)" : missing[0],
                               cnt == (size_t)-1 ? ": " : "",
                               cnt == (size_t)-1 ? errstr : "");
                        return;
                }
                nanosleep(&ts, NULL);
        }
}

bool sq_kafka_login_refused(sq_daemon_t *daemon, char *errstr,
                            size_t errstr_size) {
        return sq_kafka_login_failed(daemon->producer_q, errstr, errstr_size);
}

sq_err_t sq_kafka_check_login(sq_daemon_t *daemon, char *errstr,
                              size_t errstr_size) {
        const struct rd_kafka_metadata *md = NULL;

        if (!rd_kafka_metadata(daemon->producer, 0, NULL, &md, 10000)) {
                rd_kafka_metadata_destroy(md);
                return SQ_OK;
        }
        return sq_kafka_login_refused(daemon, errstr, errstr_size)
                   ? SQ_ERR_KAFKA
                   : SQ_OK;
}

sq_err_t sq_kafka_ensure_topics(sq_daemon_t *daemon, char *errstr,
                                size_t errstr_size) {
        const sq_config_t *conf = daemon->conf;
        const char *topics[]    = {conf->topic_tasks,
                                   conf->topic_critical,
                                   conf->topic_retry,
                                   conf->topic_dlt,
                                   conf->topic_results,
                                   conf->topic_events,
                                   conf->topic_control,
                                   NULL,
                                   NULL};
        size_t topics_cnt       = 7;
        const char *missing[SQ_ARRAY_SIZE(topics)];
        rd_kafka_NewTopic_t *new_topics[SQ_ARRAY_SIZE(topics)];
        rd_kafka_queue_t *queue          = NULL;
        rd_kafka_event_t *rkev           = NULL;
        rd_kafka_AdminOptions_t *options = NULL;
        sq_err_t ret                     = SQ_OK;
        size_t cnt, i;
        char rkerr[256];

        /* topic.schedules only where schedules are declared,
         * topic.workflows only where workflows run. */
        if (conf->schedules_cnt)
                topics[topics_cnt++] = conf->topic_schedules;
        if (conf->workflows_enable)
                topics[topics_cnt++] = conf->topic_workflows;
        cnt = missing_topics(daemon->producer, topics, topics_cnt, missing,
                             errstr, errstr_size);
        if (cnt == (size_t)-1)
                return SQ_ERR_KAFKA;
        if (cnt == 0)
                return SQ_OK;
        for (i = 0; i < cnt; i++) {
                /* The schedules topic: one partition (one owner fires),
                 * compacted (the last tick of each schedule is what
                 * counts). */
                /* The workflows topic: compacted (a workflow's state and
                 * its tasks' endings are its last record by key). */
                bool sched    = !strcmp(missing[i], conf->topic_schedules);
                bool flows    = !strcmp(missing[i], conf->topic_workflows);
                new_topics[i] = rd_kafka_NewTopic_new(
                    missing[i], sched ? 1 : conf->topics_partitions,
                    conf->topics_replication_factor, rkerr, sizeof(rkerr));
                sq_assert(new_topics[i]); /* arguments validated by config */
                if (sched || flows)
                        rd_kafka_NewTopic_set_config(
                            new_topics[i], "cleanup.policy", "compact");
        }
        queue   = rd_kafka_queue_new(daemon->producer);
        options = rd_kafka_AdminOptions_new(daemon->producer,
                                            RD_KAFKA_ADMIN_OP_CREATETOPICS);
        rd_kafka_AdminOptions_set_request_timeout(options, 30000, rkerr,
                                                  sizeof(rkerr));
        rd_kafka_CreateTopics(daemon->producer, new_topics, cnt, options,
                              queue);
        /* In slices, so a stop asked for meanwhile (SIGTERM while start-up
         * waits for a cluster that does not answer) ends the wait. */
        {
                int64_t deadline = sq_clock_us() + 35 * 1000000;
                while (!(rkev = rd_kafka_queue_poll(queue, 250)) &&
                       !atomic_load(&daemon->stop_requested) &&
                       sq_clock_us() < deadline)
                        ;
        }
        if (!rkev && atomic_load(&daemon->stop_requested)) {
                sq_errstr_set(errstr, errstr_size,
                              "creating the missing topics: stopped before "
                              "the broker answered");
                ret = SQ_ERR_KAFKA;
        } else if (!rkev || rd_kafka_event_error(rkev)) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot create the missing topics: %s",
                              rkev ? rd_kafka_event_error_string(rkev)
                                   : "no answer from the broker in 35 s");
                ret = SQ_ERR_KAFKA;
        } else {
                const rd_kafka_CreateTopics_result_t *res =
                    rd_kafka_event_CreateTopics_result(rkev);
                size_t res_cnt;
                const rd_kafka_topic_result_t **results =
                    rd_kafka_CreateTopics_result_topics(res, &res_cnt);
                for (i = 0; i < res_cnt; i++) {
                        rd_kafka_resp_err_t err =
                            rd_kafka_topic_result_error(results[i]);
                        const char *name =
                            rd_kafka_topic_result_name(results[i]);
                        if (!err) {
                                SQ_LOG(SQ_LOG_NOTICE, "TOPICS",
                                       "created topic=%s partitions=%d "
                                       "replication.factor=%d",
                                       name, conf->topics_partitions,
                                       conf->topics_replication_factor);
                        } else if (err ==
                                   RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                                /* Another instance created it first. */
                                SQ_LOG(SQ_LOG_INFO, "TOPICS", "topic=%s exists",
                                       name);
                        } else if (
                            ret == SQ_OK &&
                            err ==
                                RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
                                /* It may exist: the metadata did not show
                                 * it to this principal either. */
                                sq_errstr_set(
                                    errstr, errstr_size,
                                    "cannot see or create topic %s: "
                                    "Describe (implied by Read or Write) "
                                    "and Create on the topic denied (%s)",
                                    name,
                                    rd_kafka_topic_result_error_string(
                                        results[i]));
                                ret = SQ_ERR_KAFKA;
                        } else if (ret == SQ_OK) {
                                sq_errstr_set(
                                    errstr, errstr_size,
                                    "cannot create topic %s: %s",
                                    rd_kafka_topic_result_name(results[i]),
                                    rd_kafka_topic_result_error_string(
                                        results[i]));
                                ret = SQ_ERR_KAFKA;
                        }
                }
        }
        if (rkev)
                rd_kafka_event_destroy(rkev);
        rd_kafka_AdminOptions_destroy(options);
        rd_kafka_queue_destroy(queue);
        rd_kafka_NewTopic_destroy_array(new_topics, cnt);
        if (ret == SQ_OK)
                wait_topics_visible(daemon, topics, topics_cnt);
        return ret;
}
