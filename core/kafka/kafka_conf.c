/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka_conf.c: the one builder of librdkafka client configurations (see
 * kafka_conf.h): log routing, pass-through properties, profiles, clients.
 *
 * DESIGN
 *   Stateless wrappers over rd_kafka_conf_set() and rd_kafka_new(). The
 *   profiles are tables, so what a guarantee needs reads in one place; a
 *   profile is set before the caller's settings and the user's properties,
 *   and the caller forbids the keys it must keep (the instance refuses
 *   kafka.acks, for one). librdkafka's rejection reason is kept verbatim
 *   after the property it names: it already says what is wrong ("No such
 *   configuration property", "Invalid value ... expected ...").
 */
#include "kafka_conf.h"

#include "log.h"

#include <stdio.h>
#include <string.h>

/* The profiles' settings: NULL-terminated name, value pairs. */
static const char *const idempotent_producer[] = {
    "enable.idempotence", "true", "acks", "all", "linger.ms", "5", NULL};
static const char *const manual_commit_consumer[] = {
    "enable.auto.commit", "false", "enable.auto.offset.store", "false", NULL};

/* librdkafka's log_cb type takes a const rd_kafka_t *; the sink's does
 * not know librdkafka types. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
        sq_log_rdkafka_cb(rk, level, fac, buf);
}

rd_kafka_conf_t *sq_kafka_conf_new(void) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();

        rd_kafka_conf_set_log_cb(conf, log_cb);
        return conf;
}

sq_err_t sq_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
                           const char *value, char *errstr,
                           size_t errstr_size) {
        char rkerr[256];

        if (rd_kafka_conf_set(conf, name, value, rkerr, sizeof(rkerr)) ==
            RD_KAFKA_CONF_OK)
                return SQ_OK;
        sq_errstr_set(errstr, errstr_size, "Kafka property \"%s\" = \"%s\": %s",
                      name, value, rkerr);
        return SQ_ERR_CONFIG;
}

sq_err_t sq_kafka_conf_set_pairs(rd_kafka_conf_t *conf,
                                 const char *const *settings, char *errstr,
                                 size_t errstr_size) {
        size_t i;
        sq_err_t err;

        for (i = 0; settings && settings[i]; i += 2) {
                err = sq_kafka_conf_set(conf, settings[i], settings[i + 1],
                                        errstr, errstr_size);
                if (err != SQ_OK)
                        return err;
        }
        return SQ_OK;
}

sq_err_t sq_kafka_conf_apply(rd_kafka_conf_t *conf,
                             const sq_kafka_prop_t *props, size_t props_cnt,
                             char *errstr, size_t errstr_size) {
        const char *name;
        size_t i;
        sq_err_t err;

        for (i = 0; i < props_cnt; i++) {
                name = props[i].name;
                if (!strncmp(name, "kafka.", 6))
                        name += 6;
                err = sq_kafka_conf_set(conf, name, props[i].value, errstr,
                                        errstr_size);
                if (err != SQ_OK)
                        return err;
        }
        return SQ_OK;
}

sq_err_t sq_kafka_conf_profile(rd_kafka_conf_t *conf,
                               sq_kafka_profile_t profile, char *errstr,
                               size_t errstr_size) {
        switch (profile) {
        case SQ_KAFKA_PROFILE_IDEMPOTENT_PRODUCER:
                return sq_kafka_conf_set_pairs(conf, idempotent_producer,
                                               errstr, errstr_size);
        case SQ_KAFKA_PROFILE_MANUAL_COMMIT_CONSUMER:
                return sq_kafka_conf_set_pairs(conf, manual_commit_consumer,
                                               errstr, errstr_size);
        }
        sq_assert(!"unknown Kafka client profile");
        return SQ_ERR_INVALID_ARG;
}

rd_kafka_t *sq_kafka_conf_new_client(rd_kafka_type_t type,
                                     rd_kafka_conf_t *conf, char *errstr,
                                     size_t errstr_size) {
        char rkerr[512];
        rd_kafka_t *rk;

        /* rd_kafka_new() takes the configuration only on success. */
        rk = rd_kafka_new(type, conf, rkerr, sizeof(rkerr));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                sq_errstr_set(
                    errstr, errstr_size, "cannot create the Kafka %s: %s",
                    type == RD_KAFKA_PRODUCER ? "producer" : "consumer", rkerr);
        }
        return rk;
}

bool sq_kafka_acl_denied(rd_kafka_resp_err_t err, const char *op,
                         const char *topic, const char *group,
                         const char *txn_id, char *buf, size_t size) {
        switch (err) {
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
                snprintf(buf, size, "%s on topic %s denied", op,
                         topic ? topic : "(a topic)");
                break;
        case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
                snprintf(buf, size, "Read on group %s denied",
                         group ? group : "(the group)");
                break;
        case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
                snprintf(buf, size, "Write on transactional id %s denied",
                         txn_id ? txn_id : "(the transactional id)");
                break;
        case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
                snprintf(buf, size,
                         "IdempotentWrite on the cluster denied (or, on "
                         "Kafka 3.0 and later, Write on every topic "
                         "produced to)");
                break;
        default:
                return false;
        }
        /* The broker's words after ours, so a search for either finds it. */
        {
                size_t len = strlen(buf);
                if (len < size)
                        snprintf(buf + len, size - len, " (%s)",
                                 rd_kafka_err2str(err));
        }
        return true;
}

/* librdkafka before 2.6.1 repeats the client nonce in its SCRAM
 * client-final-message (confluentinc/librdkafka#4895); Kafka 4.x compares
 * the nonce strictly and refuses the login as if the password were
 * wrong. */
#define SCRAM_NONCE_FIXED_VERSION 0x020601ff

bool sq_kafka_login_failed(rd_kafka_queue_t *rkqu, char *buf, size_t size) {
        rd_kafka_event_t *rkev;
        bool found = false;

        while ((rkev = rd_kafka_queue_poll(rkqu, 0))) {
                if (rd_kafka_event_type(rkev) == RD_KAFKA_EVENT_ERROR) {
                        rd_kafka_resp_err_t err = rd_kafka_event_error(rkev);
                        const char *reason = rd_kafka_event_error_string(rkev);
                        if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION &&
                            !found) {
                                found = true;
                                snprintf(buf, size,
                                         "cannot log in to the cluster: %s",
                                         reason);
                        } else if (err != RD_KAFKA_RESP_ERR__AUTHENTICATION) {
                                /* What the error callback would have said. */
                                SQ_LOG(SQ_LOG_WARNING, "KAFKA",
                                       "client error: %s: %s",
                                       rd_kafka_err2name(err), reason);
                        }
                }
                rd_kafka_event_destroy(rkev);
        }
        if (found && strstr(buf, "SCRAM") &&
            rd_kafka_version() < SCRAM_NONCE_FIXED_VERSION) {
                size_t len = strlen(buf);
                if (len < size)
                        snprintf(buf + len, size - len,
                                 "; with SCRAM, librdkafka %s (this "
                                 "program's) cannot log in to Kafka 4.x "
                                 "even with the right password (fixed in "
                                 "librdkafka 2.6.1; docs/operations.md, "
                                 "\"Secured clusters\")",
                                 rd_kafka_version_str());
        }
        return found;
}

bool sq_kafka_cooperative(rd_kafka_t *rk) {
        const char *protocol = rd_kafka_rebalance_protocol(rk);
        char strategy[256]   = "";
        size_t size          = sizeof(strategy);

        if (protocol)
                return !strcmp(protocol, "COOPERATIVE");
        if (rd_kafka_conf_get(rd_kafka_conf(rk),
                              "partition.assignment.strategy", strategy,
                              &size) != RD_KAFKA_CONF_OK)
                return false;
        return strstr(strategy, "cooperative") != NULL;
}

rd_kafka_error_t *
sq_kafka_send_offsets(rd_kafka_t *producer, rd_kafka_t *consumer,
                      const rd_kafka_topic_partition_list_t *offsets,
                      int timeout_ms) {
        rd_kafka_consumer_group_metadata_t *cgmd =
            rd_kafka_consumer_group_metadata(consumer);
        rd_kafka_error_t *error;

        if (!cgmd)
                return rd_kafka_error_new(
                    RD_KAFKA_RESP_ERR__STATE,
                    "the consumer is closed: without its group metadata "
                    "the offsets cannot go with the transaction");
        error = rd_kafka_send_offsets_to_transaction(producer, offsets, cgmd,
                                                     timeout_ms);
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        return error;
}
