/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka_conf.h: the one builder of librdkafka client configurations: a
 * configuration whose log goes through our sink, pass-through properties
 * (kafka.* keys, -X) with sentences naming the bad key, the client profiles
 * swarmq's guarantees rest on, and creating the client.
 *
 * DESIGN
 *   Every librdkafka client of swarmq (the instance's consumer and
 *   producer, libswarmq's producer, the CLI's readers and its dead-letter
 *   producer) is built here, in the same order: sq_kafka_conf_new() (log
 *   routed into log.c's sink), a profile (the settings a guarantee needs),
 *   the caller's own settings, then the user's pass-through properties,
 *   which may override anything a profile does not forbid (the caller
 *   decides what it forbids), and sq_kafka_conf_new_client(). So "what an
 *   idempotent producer is" and "how a rejected property reads" are written
 *   once.
 *
 *   Ownership: a configuration is the caller's until
 *   sq_kafka_conf_new_client(), which takes it whether it succeeds or not.
 *   Property names and values are copied by librdkafka. No state of its
 *   own, no threads: the log callback runs on librdkafka's threads and only
 *   formats into the sink, which is thread-safe.
 */
#ifndef SQ_KAFKA_CONF_H
#define SQ_KAFKA_CONF_H

#include "common.h"

#include <librdkafka/rdkafka.h>

/** One pass-through librdkafka property. Both strings borrowed. */
typedef struct sq_kafka_prop_s {
        const char *name; /**< librdkafka name; a "kafka." prefix is
                           *   stripped by sq_kafka_conf_apply() */
        const char *value;
} sq_kafka_prop_t;

/** Settings a client's guarantee depends on (see sq_kafka_conf_profile()). */
typedef enum {
        /** enable.idempotence=true, acks=all, linger.ms=5: no duplicates
         *  and no reordering from librdkafka's retries. */
        SQ_KAFKA_PROFILE_IDEMPOTENT_PRODUCER,
        /** enable.auto.commit=false, enable.auto.offset.store=false:
         *  librdkafka never commits or stores an offset on its own. */
        SQ_KAFKA_PROFILE_MANUAL_COMMIT_CONSUMER,
} sq_kafka_profile_t;

/**
 * @brief Creates an empty configuration whose librdkafka log lines go
 *        through the log sink (sq_log_rdkafka_cb()).
 * @returns the configuration (caller owns: sq_kafka_conf_new_client() or
 *          rd_kafka_conf_destroy()).
 */
rd_kafka_conf_t *sq_kafka_conf_new(void);

/**
 * @brief Sets one property.
 * @param conf borrowed.
 * @returns SQ_OK, or SQ_ERR_CONFIG with @p errstr set to
 *          'Kafka property "NAME" = "VALUE": <librdkafka's reason>'.
 */
sq_err_t sq_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
                           const char *value, char *errstr, size_t errstr_size);

/**
 * @brief Sets NULL-terminated name, value pairs in order (a caller's own
 *        settings, written as a static table). @p settings may be NULL.
 * @returns SQ_OK, or SQ_ERR_CONFIG naming the first rejected one.
 */
sq_err_t sq_kafka_conf_set_pairs(rd_kafka_conf_t *conf,
                                 const char *const *settings, char *errstr,
                                 size_t errstr_size);

/**
 * @brief Applies pass-through properties in order (a later one wins); a
 *        "kafka." prefix on a name is stripped, as for -X.
 * @param props borrowed, @p props_cnt entries.
 * @returns SQ_OK, or SQ_ERR_CONFIG naming the first rejected property
 *          (those before it are applied).
 */
sq_err_t sq_kafka_conf_apply(rd_kafka_conf_t *conf,
                             const sq_kafka_prop_t *props, size_t props_cnt,
                             char *errstr, size_t errstr_size);

/**
 * @brief Sets the settings of @p profile (see sq_kafka_profile_t).
 * @returns SQ_OK, or SQ_ERR_CONFIG (only when librdkafka lacks a setting).
 */
sq_err_t sq_kafka_conf_profile(rd_kafka_conf_t *conf,
                               sq_kafka_profile_t profile, char *errstr,
                               size_t errstr_size);

/**
 * @brief Creates the client: rd_kafka_new() with @p conf.
 * @param conf takes ownership, on failure too.
 * @returns the client (caller owns, rd_kafka_destroy()), or NULL with
 *          @p errstr set to "cannot create the Kafka producer: <reason>"
 *          (or consumer).
 */
rd_kafka_t *sq_kafka_conf_new_client(rd_kafka_type_t type,
                                     rd_kafka_conf_t *conf, char *errstr,
                                     size_t errstr_size);

/**
 * @brief Names the ACL an authorization error stands for: "Write on topic
 *        T denied (Broker: Topic authorization failed)" and the like, so a
 *        log line says which operation on which resource the principal
 *        lacks (librdkafka's own string names neither).
 * @param op the operation the client attempted on @p topic: "Read"
 *        (consume, commit) or "Write" (produce).
 * @param topic borrowed; the topic of a topic error (NULL: "a topic").
 * @param group borrowed; the group of a group error (NULL: "the group").
 * @param txn_id borrowed; the transactional id of a transactional id error
 *        (NULL: "the transactional id").
 * @returns true with @p buf set when @p err is an authorization error,
 *          false (buf untouched) for any other error.
 */
bool sq_kafka_acl_denied(rd_kafka_resp_err_t err, const char *op,
                         const char *topic, const char *group,
                         const char *txn_id, char *buf, size_t size);

/**
 * @brief After a request to the cluster got no answer: whether librdkafka
 *        reported meanwhile that it could not log in (a SASL
 *        authentication error, which it retries for ever), so the caller
 *        can stop with that cause named instead of "no broker answered"
 *        or waiting on. Takes every event queued on @p rkqu without serving
 *        callbacks, so call it where the client is about to be destroyed
 *        (a failed start-up); error events of other kinds are logged as a
 *        client error.
 * @param rkqu borrowed: the client's main queue (rd_kafka_queue_get_main),
 *        or its consumer queue after rd_kafka_poll_set_consumer().
 * @returns true with @p buf set to "cannot log in to the cluster:
 *          <librdkafka's reason>", followed, for a SCRAM login with a
 *          librdkafka older than 2.6.1, by the note that such a librdkafka
 *          cannot log in to Kafka 4.x; false (buf untouched) otherwise.
 */
bool sq_kafka_login_failed(rd_kafka_queue_t *rkqu, char *buf, size_t size);

/**
 * @brief In a rebalance callback: whether the group uses the cooperative
 *        protocol (rd_kafka_incremental_assign() and _unassign()) rather
 *        than the eager one (rd_kafka_assign()).
 *
 * rd_kafka_rebalance_protocol() answers NULL once the consumer is closing
 * (a revocation served by rd_kafka_consumer_close_queue(), say, after an
 * assignment that arrived as the instance unsubscribed): then the answer
 * comes from the client's partition.assignment.strategy, which fixes the
 * protocol for the client's life (librdkafka refuses a mix of eager and
 * cooperative assignors).
 */
bool sq_kafka_cooperative(rd_kafka_t *rk);

/**
 * @brief rd_kafka_send_offsets_to_transaction() with @p consumer's group
 *        metadata, or an error where @p consumer has none to give.
 *
 * rd_kafka_consumer_group_metadata() answers NULL once the consumer is
 * closed (a revocation served at the close), and
 * rd_kafka_consumer_group_metadata_destroy(NULL) crashes: then this
 * answers RD_KAFKA_RESP_ERR__STATE, neither fatal nor retriable, so the
 * caller aborts the transaction (its tasks run again on the partitions'
 * next owner) instead of committing results without their offsets.
 * @returns NULL on success, else an error the caller destroys.
 */
rd_kafka_error_t *
sq_kafka_send_offsets(rd_kafka_t *producer, rd_kafka_t *consumer,
                      const rd_kafka_topic_partition_list_t *offsets,
                      int timeout_ms);

#endif /* SQ_KAFKA_CONF_H */
