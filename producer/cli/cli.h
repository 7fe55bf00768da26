/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h: what the swarmq-producer commands share: the global options, exit
 * codes, the commands main() dispatches to, signal handling, and the
 * utilities of cli_util.c (the progress line, a string-keyed counter map,
 * a bounded line reader, random ids).
 *
 * DESIGN
 *   main.c parses the global options into an sq_cli_t and hands the rest of
 *   argv to one command (cli_submit.c, cli_wait.c, cli_replay.c,
 *   cli_dlt.c), each built on the command layer (command.h). A command
 *   returns an exit code; nothing below main() calls exit(). SIGINT and
 *   SIGTERM only set a flag that the command loops test; they are blocked
 *   while Kafka clients start so librdkafka's threads never take them and a
 *   blocking read on the main thread is interrupted (EINTR) instead.
 */
#ifndef SQ_CLI_H
#define SQ_CLI_H

#include "common.h"
#include "kafka_conf.h"

#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>

#define SQ_CLI_PROG "swarmq-producer"

/* Exit codes (documented in the top-level --help). */
#define SQ_CLI_EXIT_OK         0 /* everything delivered / arrived */
#define SQ_CLI_EXIT_INCOMPLETE 1 /* not all delivered / arrived, or SIGINT */
#define SQ_CLI_EXIT_USAGE      2 /* bad option, argument or input line */
#define SQ_CLI_EXIT_BROKER     3 /* no broker reachable */

/** Global options, shared by every command. Strings borrowed from argv. */
typedef struct sq_cli_s {
        const char *brokers;    /**< -b or SWARMQ_BOOTSTRAP_SERVERS; may be
                                 *   NULL when given as -X bootstrap.servers */
        sq_kafka_prop_t *props; /**< -X, in order, "kafka." stripped
                                 *   (owned, sq_free()) */
        size_t props_cnt;
        sq_kafka_prop_t *sr_props; /**< -X schema.registry.*, in order
                                    *   (owned, sq_free()) */
        size_t sr_props_cnt;
        const char *topic_tasks;
        const char *topic_critical;
        const char *topic_results;
        const char *topic_events;
        const char *topic_workflows; /**< workflow, replay --workflow */
        int connect_timeout_ms;
        bool have_brokers; /**< brokers or -X bootstrap.servers given */
        bool quiet;
        char **prop_files; /**< -F files' contents, which props point
                            *   into (owned, sq_free() each) */
        size_t prop_files_cnt;
} sq_cli_t;

/** @brief Runs `submit`; @p argv[0] is "submit". @returns an exit code. */
int sq_cli_submit(const sq_cli_t *cli, int argc, char **argv);
/** @brief Runs `wait`; @p argv[0] is "wait". @returns an exit code. */
int sq_cli_wait(const sq_cli_t *cli, int argc, char **argv);
/** @brief Runs `replay`; @p argv[0] is "replay". @returns an exit code. */
int sq_cli_replay(const sq_cli_t *cli, int argc, char **argv);
/** @brief Runs `cancel`; @p argv[0] is "cancel". @returns an exit code. */
int sq_cli_cancel(const sq_cli_t *cli, int argc, char **argv);
/** @brief Runs `workflow`; @p argv[0] is "workflow". @returns an exit
 *  code. */
int sq_cli_workflow(const sq_cli_t *cli, int argc, char **argv);
/** @brief Runs `dlt list` / `dlt redrive`; @p argv[0] is "dlt".
 *  @returns an exit code. */
int sq_cli_dlt(const sq_cli_t *cli, int argc, char **argv);

/**
 * @brief Prints "swarmq-producer CMD: <message>" and a pointer to --help on
 *        stderr.
 * @returns SQ_CLI_EXIT_USAGE.
 */
int sq_cli_usage_error(const char *cmd, const char *fmt, ...)
    SQ_ATTR_PRINTF(2, 3);

/** The global options (main.c), for the command layer to tell a global
 *  option given after the command where it goes. NULL-terminated. */
extern const struct option sq_cli_global_options[];

/**
 * @returns @p one when @p n is 1, else @p many: "1 task", "2 tasks".
 */
const char *sq_cli_plural(uint64_t n, const char *one, const char *many);

/**
 * @brief Writes " (did you mean --count?)" into @p buf when an option of
 *        @p longopts is close to the unknown option @p word ("--cout",
 *        "--cout=3"), else an empty string.
 * @returns @p buf.
 */
char *sq_cli_option_hint(const char *word, const struct option *longopts,
                         char *buf, size_t size);

/** @brief Installs the SIGINT/SIGTERM handlers (no SA_RESTART). */
void sq_cli_signals_install(void);
/** @brief Blocks (@p block true) or unblocks SIGINT/SIGTERM here. */
void sq_cli_signals_block(bool block);
/** @returns how many SIGINT/SIGTERM arrived so far. */
int sq_cli_interrupted(void);

/** A progress line on stderr, drawn only when stderr is a terminal. */
typedef struct sq_progress_s {
        bool enabled;     /**< false: every call is a no-op */
        bool drawn;       /**< a line is on screen */
        uint64_t total;   /**< 0: unknown (no bar, no percentage) */
        const char *unit; /**< "tasks", "results" */
        int64_t start_us;
        int64_t last_us; /**< last redraw */
} sq_progress_t;

/**
 * @brief Starts a progress line; enabled only when @p want and stderr is a
 *        terminal.
 */
void sq_progress_init(sq_progress_t *prog, bool want, uint64_t total,
                      const char *unit);
/**
 * @brief Redraws "[#####.....] 4500/10000 45% 12345 tasks/s" at most 10
 *        times a second (always when @p force).
 */
void sq_progress_update(sq_progress_t *prog, uint64_t done, bool force);
/** @brief Erases the line so a message can be printed on stderr. */
void sq_progress_clear(sq_progress_t *prog);

/** A string-keyed map of counters (open addressing, keys owned). */
typedef struct sq_strmap_entry_s {
        char *key; /**< NULL: empty slot */
        uint64_t value;
} sq_strmap_entry_t;

typedef struct sq_strmap_s {
        sq_strmap_entry_t *slots;
        size_t cap; /**< power of two, or 0 */
        size_t cnt;
} sq_strmap_t;

/** @brief Initializes an empty map. */
void sq_strmap_init(sq_strmap_t *map);
/** @brief Frees the keys and slots; the map is empty afterwards. */
void sq_strmap_term(sq_strmap_t *map);
/** @returns the value slot of @p key (borrowed), or NULL when absent. */
uint64_t *sq_strmap_get(const sq_strmap_t *map, const char *key);
/**
 * @brief Finds or inserts @p key (copied; value 0 when new).
 * @returns the value slot (borrowed, valid until the next insert).
 */
uint64_t *sq_strmap_put(sq_strmap_t *map, const char *key, bool *createdp);

/**
 * @brief Reads one line (without its newline) into a growable buffer of at
 *        most @p max bytes; a longer line is consumed and reported.
 * @returns 1 for a line, 0 at end of file, -1 for a line longer than
 *          @p max, -2 on a read error (errno set; EINTR on a signal).
 */
int sq_cli_read_line(FILE *fp, char **bufp, size_t *capp, size_t *lenp,
                     size_t max);

/** @returns "<hex>" of @p nbytes random bytes in @p buf (2*n+1 bytes). */
char *sq_cli_random_hex(char *buf, size_t nbytes);

#endif /* SQ_CLI_H */
