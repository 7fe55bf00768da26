/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rebalance_int.h: partitions assigned and revoked (rebalance.c).
 *
 * DESIGN
 *   Poll thread only, from consumer poll.
 */
#ifndef SQ_REBALANCE_INT_H
#define SQ_REBALANCE_INT_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon.h"
#include "partitions_int.h"

/**
 * @brief librdkafka's rebalance callback (kafka.c sets it up), eager or
 *        cooperative: wires assigned partitions and inherits their maps;
 *        drains, commits and gives up revoked ones.
 * @param opaque the instance.
 * @locality poll thread (from consumer poll)
 */
void sq_daemon_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *partitions,
                            void *opaque);

/**
 * @brief Forwards the assigned critical partitions' queues to the critical
 *        lane's queue again, when due: every 100 ms for 30 s after an
 *        assignment, then every second.
 *
 * Why: librdkafka clears a partition queue's forwarding when it stops the
 * partition's fetcher, and does that on a broker thread, after the
 * fact. An assignment that replaces one still in place (eager
 * rebalancing can deliver two assignments in a row, without a revocation
 * between, when the subscription grows while the first is being served:
 * seen 3 ms apart when the retry topic appeared on a fresh start) stops
 * the fetchers of the first one after assign_partitions() forwarded their
 * queues. Because the application forwarded those queues before,
 * librdkafka does not forward them to the consumer queue either: the
 * critical partitions' records would sit in their fetch queues, read by no
 * one, until the next rebalance. Forwarding is idempotent and moves what
 * waits in the queue, so doing it again repairs that.
 * @returns when it is due next (sq_clock_us() time), INT64_MAX when no
 *          critical partition is assigned.
 * @locality poll thread
 */
int64_t sq_rebalance_tick(sq_daemon_t *daemon, int64_t now);

/**
 * @brief exactly_once: records what the group now holds for @p part (its
 *        committed offset and that commit's metadata, copied), where an
 *        aborted transaction rewinds it to.
 * @param metadata borrowed, may be NULL.
 * @locality poll thread
 */
void sq_rebalance_set_base(sq_partition_t *part, int64_t offset,
                           const void *metadata, size_t metadata_size);

/**
 * @brief exactly_once, after an aborted transaction: forgets the work of
 *        every assigned partition since its last committed transaction and
 *        rewinds it there. Each partition's generation changes, as on a
 *        revocation, so its jobs queued, held or running are dropped
 *        (never produced into the next transaction, their offsets never
 *        marked done); its completed-offset tracker starts again from its
 *        base (the committed offset and its map) and the consumer seeks
 *        it to that offset (to the first record admitted, when the group
 *        holds none). Where the membership was lost, the rebalance that
 *        follows reads the group's offsets again.
 * @param cause borrowed: the failure, for the log line.
 * @locality poll thread, under the transaction's write lock
 */
void sq_rebalance_rewind(sq_daemon_t *daemon, const char *cause);

#endif /* SQ_REBALANCE_INT_H */
