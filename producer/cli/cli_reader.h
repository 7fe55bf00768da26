/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_reader.h: the topic reader that `replay` and `dlt` share: reads the
 * partitions of one topic from chosen start offsets to a fixed end,
 * without joining a consumer group or committing anything.
 *
 * DESIGN
 *   The reader assign()s the topic's partitions (from metadata) with
 *   explicit start offsets: the beginning, an offset for every partition,
 *   an offset per named partition, or the first record stamped at or
 *   after a time (rd_kafka_offsets_for_times()). The end of each partition
 *   is its high watermark when the reader started (so reading a finished
 *   run terminates even while others write), or never with follow; until
 *   ends a partition at its first record stamped at or after a time. A
 *   partition that is done is paused, not unassigned, so its buffered
 *   records are never served. The group.id that assign() needs in
 *   librdkafka 2.0 is a throwaway name and nothing is committed (see
 *   sq_cmd_consumer_new()).
 *
 *   Single-threaded: the command's main thread is the only one that calls
 *   sq_reader_poll(). Records come out in each partition's order;
 *   partitions are interleaved as the fetcher serves them.
 *
 *   Timestamp lookup: Kafka answers offsets_for_times with -1 for a
 *   partition that has no record at or after the time. When every
 *   partition that holds records answers -1, the reader asks again for
 *   time 0: a broker that implements the lookup answers that with a real
 *   offset (the read is then simply empty), one that does not
 *   (librdkafka's mock cluster) answers -1 again, and the reader says so
 *   and fails with exit code 3.
 */
#ifndef SQ_CLI_READER_H
#define SQ_CLI_READER_H

#include "command.h"

/** One start offset for one partition (--offset P:N). */
typedef struct sq_reader_offset_s {
        int32_t partition;
        int64_t offset;
} sq_reader_offset_t;

/** Where to read. Strings and arrays borrowed for the reader's life. */
typedef struct sq_reader_opts_s {
        const char *topic;
        bool have_offset_all; /**< every partition from offset_all */
        int64_t offset_all;
        /** Partitions named with a start; without have_offset_all only
         *  these are read, with it the others start at offset_all. */
        sq_reader_offset_t *offsets;
        size_t offsets_cnt;
        int32_t only_partition; /**< -1: all; else read only this one */
        const char *since_arg;  /**< NULL: no time start */
        int64_t since_ms;
        const char *until_arg; /**< NULL: no time end */
        int64_t until_ms;
        bool follow; /**< no end: read until interrupted */
} sq_reader_opts_t;

/** One partition of the topic. */
typedef struct sq_reader_part_s {
        int32_t partition;
        int64_t low, high; /**< watermarks when the reader started */
        int64_t start;     /**< first offset to read */
        int64_t end;       /**< stop before this offset; INT64_MAX: follow */
        bool at_eof;       /**< caught up with the partition's end */
        bool done;
} sq_reader_part_t;

typedef struct sq_reader_s {
        const sq_cmd_t *cmd; /**< the command (borrowed): its name in
                              *   messages, the global options */
        sq_reader_opts_t opts;
        rd_kafka_t *rk;
        sq_reader_part_t *parts; /**< sorted by partition id (owned) */
        size_t parts_cnt;
        size_t parts_done;
        uint64_t total;     /**< records between the starts and ends */
        uint64_t consumed;  /**< records handed out so far */
        sq_progress_t prog; /**< the command's progress line */
} sq_reader_t;

/**
 * @brief Parses TIME: epoch milliseconds, or ISO 8601
 *        YYYY-MM-DDTHH:MM[:SS[.fff]] with Z or +hh[:mm] / -hh[:mm].
 * @returns true with *@p msp set, false when @p str is not a TIME.
 */
bool sq_cli_parse_time(const char *str, int64_t *msp);

/**
 * @brief Parses the TIME of option @p opt; prints a usage error naming the
 *        option and @p arg when it is not one.
 * @returns true with *@p msp set.
 */
bool sq_cli_time_arg(const sq_cmd_t *cmd, const char *opt, const char *arg,
                     int64_t *msp);

/**
 * @brief Formats epoch milliseconds as 2026-11-24T10:00:00.250Z.
 * @returns @p buf (at least 32 bytes).
 */
char *sq_cli_format_time(int64_t ms, char *buf, size_t size);

/**
 * @brief Opens the reader: creates the consumer, reads the topic's
 *        partitions and watermarks, decides each partition's start and
 *        end from @p opts (copied; its strings and arrays borrowed) and
 *        assigns them.
 * @param cmd borrowed for the reader's life: the client's options, the
 *            name in messages.
 * @returns SQ_CLI_EXIT_OK or an exit code with a message printed (usage:
 *          no such partition; broker: no broker, no such topic, no
 *          timestamp lookup). sq_reader_term() is needed either way.
 */
int sq_reader_open(sq_reader_t *reader, const sq_cmd_t *cmd,
                   const sq_reader_opts_t *opts);

/** @returns whether every partition reached its end. */
bool sq_reader_done(const sq_reader_t *reader);

/**
 * @brief Waits up to @p timeout_ms for the next record to hand out.
 * @param rkmp set to the record (caller owns, rd_kafka_message_destroy())
 *             or NULL when none came (idle, end of a partition, a
 *             transient error logged).
 * @returns SQ_CLI_EXIT_OK, or SQ_CLI_EXIT_BROKER on a fatal consumer error
 *          (printed).
 */
int sq_reader_poll(sq_reader_t *reader, int timeout_ms,
                   rd_kafka_message_t **rkmp);

/** Where sq_reader_run() hands the records. */
typedef struct sq_reader_sink_s {
        /** Handles one record (borrowed until it returns).
         *  @returns false when no more records are wanted (a limit). */
        bool (*record)(void *arg, const rd_kafka_message_t *rkm);
        /** Called after every poll, records or not; may be NULL. */
        void (*tick)(void *arg);
        void *arg;
} sq_reader_sink_t;

/**
 * @brief Reads every partition to its end and hands each record to
 *        @p sink, drawing the progress line (not with -q, nor when stdout
 *        is a terminal); stops early on SIGINT, when the sink has enough,
 *        or on a fatal consumer error. Flushes stdout while idle.
 * @param enoughp set to whether the sink said it had enough.
 * @returns SQ_CLI_EXIT_OK, or SQ_CLI_EXIT_BROKER (printed).
 */
int sq_reader_run(sq_reader_t *reader, const sq_reader_sink_t *sink,
                  bool *enoughp);

/** @brief Closes the consumer and frees the reader; safe after a failed
 *         or no open (a zeroed reader). */
void sq_reader_term(sq_reader_t *reader);

/**
 * @brief `replay --workflow ID` (cli_replay_workflow.c): prints the tree
 *        of workflow @p id, as text or as one JSON object.
 * @returns an exit code (SQ_CLI_EXIT_INCOMPLETE when the workflows topic
 *          has no record of it), a message printed on failure.
 */
int sq_cli_replay_workflow(const sq_cmd_t *cmd, const char *id, bool as_json);

#endif /* SQ_CLI_READER_H */
