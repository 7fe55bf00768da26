/* SPDX-License-Identifier: Apache-2.0 */
/*
 * command.h: the command layer of swarmq-producer: what every command does
 * the same way, so that cli_submit.c, cli_wait.c, cli_replay.c and
 * cli_dlt.c hold only what is their own: the option loop (--help, missing
 * values, unknown options, stray arguments) and argument checks, the
 * broker check, the codec, the Kafka clients built from -b and -X, and the
 * messages and JSON lines a command prints.
 *
 * DESIGN
 *   A command is an sq_cmd_t: the global options (main.c), its name as
 *   messages show it ("wait", "dlt list"), its --help text, and what the
 *   layer set up for it (the codec). A command runs in four steps, each a
 *   call here: sq_cmd_parse() with the command's own option callback,
 *   sq_cmd_ready() (brokers given? codec), a client (sq_cmd_consumer_new(),
 *   sq_cmd_producer_new(), or libswarmq for submit), then its loop, which
 *   prints through sq_cmd_say(), sq_cmd_warn_undecodable() and
 *   sq_cmd_print_json(). Every function that fails prints the message
 *   itself and returns the exit code, so a command only passes it on.
 *
 *   Single-threaded: the command's main thread. Kafka clients are created
 *   with SIGINT and SIGTERM blocked, so librdkafka's threads never take
 *   them (see cli.h). Clients are configured by core/kafka/kafka_conf.c:
 *   the profile, the command's settings, then -b and -X on top.
 */
#ifndef SQ_CLI_COMMAND_H
#define SQ_CLI_COMMAND_H

#include "cli.h"

#include "codec.h"
#include "swarmq/producer.h"

#include <getopt.h>
#include <jansson.h>

/** What sq_cmd_parse() and option callbacks return to go on (not an
 *  exit code). */
#define SQ_CMD_CONTINUE (-1)

/** One command being run. */
typedef struct sq_cmd_s {
        const sq_cli_t *cli;            /**< global options (borrowed) */
        const char *name;               /**< "submit", "dlt list" (borrowed) */
        void (*usage)(FILE *fp);        /**< prints the command's --help */
        sq_codec_t *codec;              /**< set by sq_cmd_ready() (owned) */
        sq_schema_registry_t *registry; /**< -X schema.registry.url, set by
                                         *   sq_cmd_ready() (owned) */
        /** A command that takes arguments after its options (cancel ID...)
         *  points this at where sq_cmd_parse() stores the index of the
         *  first; NULL: an argument is a usage error. */
        int *args_indexp;
} sq_cmd_t;

/**
 * A command's handler of one of its own options.
 * @param opts the command's options (what sq_cmd_parse() was given).
 * @param opt  getopt_long()'s value; @p arg its argument (borrowed from
 *             argv, NULL for a flag); @p word the option as messages name it
 *             ("--count", "-n"; valid during the call only).
 * @returns SQ_CMD_CONTINUE, or an exit code with the message printed.
 */
typedef int(sq_cmd_opt_cb_t)(const sq_cmd_t *cmd, void *opts, int opt,
                             char *arg, const char *word);

/** @brief Starts a command: nothing set up yet. All borrowed. */
void sq_cmd_init(sq_cmd_t *cmd, const sq_cli_t *cli, const char *name,
                 void (*usage)(FILE *fp));

/** @brief Frees what the layer set up for @p cmd (the codec). */
void sq_cmd_term(sq_cmd_t *cmd);

/**
 * @brief Parses the command's options with getopt_long() from argv[1]:
 *        -h/--help prints the usage on stdout; a missing value, an
 *        unknown option or an argument left over is a usage error naming
 *        it; every other option goes to @p cb.
 * @param shortopts as for getopt_long(), starting with ':' and with 'h'.
 * @returns SQ_CMD_CONTINUE, or an exit code (SQ_CLI_EXIT_OK after --help).
 */
int sq_cmd_parse(const sq_cmd_t *cmd, int argc, char **argv,
                 const char *shortopts, const struct option *longopts,
                 sq_cmd_opt_cb_t *cb, void *opts);

/**
 * @brief Parses the integer argument of option @p opt in [@p min, @p max];
 *        prints "OPT expects WHAT, got "ARG"" (WHAT NULL: "a number in
 *        MIN..MAX") when it is not one.
 * @returns true with *@p valp set.
 */
bool sq_cmd_int_arg(const sq_cmd_t *cmd, const char *opt, const char *arg,
                    int64_t min, int64_t max, const char *what, int64_t *valp);

/**
 * @brief Checks that option @p opt's argument is not empty; prints "OPT
 *        must not be empty" when it is.
 * @returns true when @p arg is not empty.
 */
bool sq_cmd_word_arg(const sq_cmd_t *cmd, const char *opt, const char *arg);

/**
 * @brief After the options: checks that brokers were given (-b,
 *        SWARMQ_BOOTSTRAP_SERVERS or -X bootstrap.servers) and, with
 *        @p want_codec, creates cmd->codec.
 * @returns SQ_CLI_EXIT_OK, or SQ_CLI_EXIT_USAGE (no brokers) or
 *          SQ_CLI_EXIT_INCOMPLETE (no codec) with the message printed.
 */
int sq_cmd_ready(sq_cmd_t *cmd, bool want_codec);

/**
 * @brief With -X schema.registry.url: registers the Task schema under
 *        "<topic>-value", so the codec can write tasks (dlt redrive).
 *        Without it, nothing to do.
 * @returns SQ_OK, or an error with @p errstr naming the registry's answer.
 */
sq_err_t sq_cmd_register_task_schema(const sq_cmd_t *cmd, const char *topic,
                                     char *errstr, size_t errstr_size);

/**
 * @brief Creates a consumer: a throwaway group
 *        "swarmq-producer-<name>-<random>", client.id
 *        "swarmq-producer-<name>", nothing committed, then @p settings
 *        (NULL-terminated name, value pairs), -b and -X; checks that a
 *        broker answers within --connect-timeout-ms.
 * @param rkp set to the consumer (caller owns, rd_kafka_destroy()).
 * @returns SQ_CLI_EXIT_OK, or SQ_CLI_EXIT_USAGE / SQ_CLI_EXIT_BROKER with
 *          a message printed naming the property or the broker problem.
 */
int sq_cmd_consumer_new(const sq_cmd_t *cmd, const char *const *settings,
                        rd_kafka_t **rkp);

/**
 * @brief Creates an idempotent producer (client.id @p client_id, then -b
 *        and -X) whose delivery reports go to @p dr_msg_cb.
 * @param rkp set to the producer (caller owns, rd_kafka_destroy()).
 * @returns SQ_CLI_EXIT_OK, or SQ_CLI_EXIT_USAGE with a message printed.
 */
int sq_cmd_producer_new(const sq_cmd_t *cmd, const char *client_id,
                        void (*dr_msg_cb)(rd_kafka_t *rk,
                                          const rd_kafka_message_t *rkm,
                                          void *opaque),
                        rd_kafka_t **rkp);

/**
 * @brief Creates and connects a libswarmq producer from -b and -X, with
 *        its setting @p key (e.g. "topic.control") set to @p value.
 * @param pp set to the producer (caller owns, swarmq_producer_destroy(),
 *        also on failure).
 * @returns SQ_CLI_EXIT_OK, or SQ_CLI_EXIT_USAGE / SQ_CLI_EXIT_BROKER with
 *          a message printed.
 */
int sq_cmd_libswarmq_new(const sq_cmd_t *cmd, const char *key,
                         const char *value, swarmq_producer_t **pp);

/**
 * @brief Prints "swarmq-producer NAME: <message>" on stderr, after erasing
 *        @p prog's line (@p prog may be NULL).
 */
void sq_cmd_say(const sq_cmd_t *cmd, sq_progress_t *prog, const char *fmt, ...)
    SQ_ATTR_PRINTF(3, 4);

/**
 * @brief Warns about the @p nth undecodable record (1-based) on stderr,
 *        naming its coordinates and @p reason; only the first 20 are
 *        printed, the 20th saying that further ones are only counted.
 */
void sq_cmd_warn_undecodable(const sq_cmd_t *cmd, sq_progress_t *prog,
                             uint64_t nth, const char *topic, int32_t partition,
                             int64_t offset, const char *reason);

/**
 * @brief Prints @p obj as one line on stdout (json_dumps() @p flags) and
 *        releases it.
 * @param obj takes ownership.
 */
void sq_cmd_print_json(json_t *obj, size_t flags);

/**
 * @brief Flushes stdout; says "cannot write to stdout" when it failed
 *        (a closed pipe, a full disk).
 * @returns true when everything printed was written.
 */
bool sq_cmd_flush_stdout(const sq_cmd_t *cmd);

#endif /* SQ_CLI_COMMAND_H */
