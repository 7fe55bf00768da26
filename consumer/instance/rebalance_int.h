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

#endif /* SQ_REBALANCE_INT_H */
