/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_dlt_memory.h: what `dlt redrive` remembers between runs: the offsets
 * of the dead letters it has re-driven, per DLT partition, so that running
 * the same redrive twice sends each dead letter once.
 *
 * DESIGN
 *   The memory lives in Kafka, next to the data: the committed offsets of
 *   the consumer group "swarmq-redrive-<DLT topic>" on the DLT. A commit
 *   per partition holds the offset after the highest re-driven dead letter
 *   (what kafka-consumer-groups.sh shows) and, in its metadata, the exact
 *   set of re-driven offsets as ranges ("swarmq-redrive/1 3-7,12"), so a
 *   redrive with --reason A does not mark B's dead letters in between as
 *   done. The group never joins or consumes: it is fetched once before the
 *   run (rd_kafka_committed()) and committed once after every delivery
 *   report (only delivered offsets are added). The set is kept as sorted,
 *   merged ranges; when the metadata would pass MEMORY_METADATA_MAX bytes
 *   the lowest ranges are dropped (and said so), since older dead letters
 *   are the least likely to be re-driven again. Single-threaded (the
 *   command's main thread, delivery reports included).
 */
#ifndef SQ_CLI_DLT_MEMORY_H
#define SQ_CLI_DLT_MEMORY_H

#include "command.h"

/** The re-driven offsets of one DLT. */
typedef struct sq_dlt_memory_s sq_dlt_memory_t;

/**
 * @brief Reads what earlier redrives of @p dlt_topic recorded.
 * @param memp set to the memory (caller owns, sq_dlt_memory_destroy()).
 * @returns SQ_CLI_EXIT_OK, or an exit code with the message printed.
 */
int sq_dlt_memory_load(const sq_cmd_t *cmd, const char *dlt_topic,
                       sq_dlt_memory_t **memp);

/** @returns the consumer group the memory is kept in (borrowed). */
const char *sq_dlt_memory_group(const sq_dlt_memory_t *mem);

/** @returns whether dead letter @p partition/@p offset was re-driven. */
bool sq_dlt_memory_has(const sq_dlt_memory_t *mem, int32_t partition,
                       int64_t offset);

/** @brief Records that dead letter @p partition/@p offset was delivered. */
void sq_dlt_memory_add(sq_dlt_memory_t *mem, int32_t partition, int64_t offset);

/**
 * @brief Commits the partitions whose set grew.
 * @returns true when saved (or nothing to save); false with a message
 *          printed saying the next redrive would send them again.
 */
bool sq_dlt_memory_save(sq_dlt_memory_t *mem);

/** @brief Closes the group's client and frees the memory (NULL-safe). */
void sq_dlt_memory_destroy(sq_dlt_memory_t *mem);

#endif /* SQ_CLI_DLT_MEMORY_H */
