/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c: swarmq-producer, the command line for submitting tasks, waiting
 * for their results, replaying results and events, and listing and
 * re-driving dead letters:
 *
 *   swarmq-producer [global options] <command> [options]
 *
 * DESIGN
 *   main() parses the global options (kcat-like -b and -X), installs the
 *   signal handlers and runs one command; each command lives in its own
 *   file (cli_submit.c, cli_wait.c, cli_replay.c, cli_dlt.c) on the shared
 *   command layer (command.c) and returns the process exit code. The only
 * mutable global is the signal counter, written by the handler and read by the
 * command loops.
 */
#include "cli.h"
#include "config.h"
#include "topics.h"

#include "swarmq/producer.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
        (void)sig;
        if (interrupted < 100)
                interrupted++;
}

void sq_cli_signals_install(void) {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0; /* no SA_RESTART: a blocking read returns EINTR */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
}

void sq_cli_signals_block(bool block) {
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

int sq_cli_interrupted(void) {
        return (int)interrupted;
}

int sq_cli_usage_error(const char *cmd, const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "%s%s%s: ", SQ_CLI_PROG, cmd ? " " : "",
                cmd ? cmd : "");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry '%s%s%s --help' for more information.\n",
                SQ_CLI_PROG, cmd ? " " : "", cmd ? cmd : "");
        return SQ_CLI_EXIT_USAGE;
}

/* clang-format off: the help text is laid out as it prints. */
static void usage(FILE *fp) {
        fprintf(
            fp,
            "Usage: " SQ_CLI_PROG " [global options] <command> [options]\n"
            "\n"
            "Submit tasks to swarmq through Kafka, wait for their results, "
            "replay\n"
            "results and events.\n"
            "\n"
            "Commands:\n"
            "  submit    write tasks (generated from flags, or JSON lines from "
            "a file\n"
            "            or stdin) to the tasks topics\n"
            "  wait      read the results topic until the expected tasks have "
            "results\n"
            "  replay    print the events (or results, or any swarmq topic) as "
            "JSON\n"
            "            lines, from the beginning, an offset or a time\n"
            "  dlt       list the dead letters (dlt list) or send them back to "
            "the\n"
            "            task topic with the attempt reset (dlt redrive)\n"
            "  cancel    cancel tasks by id (queued, delayed or running) "
            "through the\n"
            "            control topic every instance reads\n"
            "  workflow  submit a workflow (a chain, group or chord of tasks "
            "in a\n"
            "            JSON file) to the workflows topic\n"
            "Run '" SQ_CLI_PROG
            " <command> --help' for the options of a command.\n"
            "\n"
            "Global options:\n"
            "  -b, --brokers BROKERS      bootstrap servers, "
            "host:port[,host:port...]\n"
            "                             (default: "
            "$SWARMQ_BOOTSTRAP_SERVERS)\n"
            "  -X, --property KEY=VALUE   librdkafka property, passed through; "
            "the\n"
            "                             'kafka.' prefix is optional "
            "(repeatable)\n"
            "                             -X schema.registry.url=URL (and\n"
            "                             "
            "schema.registry.basic.auth.user.info,\n"
            "                             schema.registry.ssl.ca.location,\n"
            "                             schema.registry.timeout.ms): Avro "
            "ids\n"
            "                             from that Schema Registry, as the\n"
            "                             consumer's (docs/wire.md)\n"
            "  -F, --properties-file FILE  every KEY=VALUE line of FILE as "
            "-X,\n"
            "                             in order ('#' comments): keeps "
            "secrets\n"
            "                             such as sasl.password off the "
            "command line\n"
            "      --topic-tasks T        tasks topic "
            "(default " SQ_TOPIC_DEFAULT_TASKS ")\n"
            "      --topic-critical T     fast-lane topic for CRITICAL tasks\n"
            "                             (default " SQ_TOPIC_DEFAULT_CRITICAL
            ")\n"
            "      --topic-results T      results topic "
            "(default " SQ_TOPIC_DEFAULT_RESULTS ")\n"
            "      --topic-events T       events topic "
            "(default " SQ_TOPIC_DEFAULT_EVENTS ")\n"
            "      --topic-workflows T    workflows topic (workflow, replay\n"
            "                             --workflow; "
            "default " SQ_TOPIC_DEFAULT_WORKFLOWS ")\n"
            "      --connect-timeout-ms MS  how long to wait for a broker to "
            "answer\n"
            "                             before giving up with exit code 3\n"
            "                             (default 10000)\n"
            "  -q, --quiet                no progress line and no summary\n"
            "  -V, --version              print the version and exit\n"
            "  -h, --help                 print this help and exit\n"
            "\n"
            "Exit codes:\n"
            "  0  success: every task delivered (submit), every expected "
            "result\n"
            "     arrived (wait), the end was reached (replay, dlt list), "
            "every\n"
            "     selected dead letter delivered (dlt redrive)\n"
            "  1  not all tasks or dead letters delivered, not all results "
            "arrived\n"
            "     before the timeout, or interrupted (SIGINT/SIGTERM)\n"
            "  2  usage error: bad option or argument, unreadable file, bad "
            "input line\n"
            "  3  broker error: no broker answered within "
            "--connect-timeout-ms\n"
            "\n"
            "Examples:\n"
            "  " SQ_CLI_PROG " -b localhost:9092 submit --count 10000 \\\n"
            "      --priority-mix LOW:1,NORMAL:6,HIGH:2,CRITICAL:1 --ids-out "
            "ids.txt\n"
            "  " SQ_CLI_PROG " -b localhost:9092 wait --ids-file ids.txt\n"
            "  " SQ_CLI_PROG " -b localhost:9092 replay --task-id t1\n"
            "  " SQ_CLI_PROG " -b localhost:9092 dlt list --reason FAILED\n"
            "  echo '{\"id\":\"t1\",\"type\":\"echo\",\"payload\":\"hi\"}' | "
            "\\\n"
            "      " SQ_CLI_PROG " -b localhost:9092 submit --stdin\n");
}
/* clang-format on */

/* Adds one -X KEY=VALUE; @p arg is borrowed from argv and split in place. */
static int add_prop(sq_cli_t *cli, char *arg) {
        char *eq = strchr(arg, '=');

        if (!eq || eq == arg)
                return sq_cli_usage_error(
                    NULL, "-X expects KEY=VALUE, got \"%s\"", arg);
        *eq = '\0';
        if (!strncmp(arg, "kafka.", 6))
                arg += 6;
        if (!*arg)
                return sq_cli_usage_error(NULL, "-X names no property");
        if (!strncmp(arg, "schema.registry.", 16)) {
                /* Ours, not librdkafka's: the Schema Registry of every
                 * command's codec (command.c) and of submit's libswarmq. */
                cli->sr_props =
                    sq_realloc(cli->sr_props, (cli->sr_props_cnt + 1) *
                                                  sizeof(*cli->sr_props));
                cli->sr_props[cli->sr_props_cnt].name  = arg;
                cli->sr_props[cli->sr_props_cnt].value = eq + 1;
                cli->sr_props_cnt++;
                return SQ_CLI_EXIT_OK;
        }
        cli->props =
            sq_realloc(cli->props, (cli->props_cnt + 1) * sizeof(*cli->props));
        cli->props[cli->props_cnt].name  = arg;
        cli->props[cli->props_cnt].value = eq + 1;
        cli->props_cnt++;
        return SQ_CLI_EXIT_OK;
}

/* -F FILE: every KEY=VALUE line of a librdkafka-style properties file
 * (kcat's -F; ops/kafka.sh --secure writes one per user) as if given with
 * -X, in order: credentials stay off the command line, where ps shows
 * them. '#' lines and blank lines are skipped. The file's bytes stay in
 * cli->prop_files: the properties point into them. */
static int add_prop_file(sq_cli_t *cli, const char *path) {
        enum { MAX_BYTES = 1 << 20 };
        char *buf  = NULL, *line, *next;
        size_t len = 0, lineno = 0;
        FILE *fp;
        int ret = SQ_CLI_EXIT_OK;

        if (!(fp = fopen(path, "r")))
                return sq_cli_usage_error(NULL, "-F %s: %s", path,
                                          strerror(errno));
        buf = sq_malloc(MAX_BYTES + 1);
        len = fread(buf, 1, MAX_BYTES + 1, fp);
        if (ferror(fp) || len > MAX_BYTES) {
                fclose(fp);
                sq_free(buf);
                return sq_cli_usage_error(NULL, "-F %s: %s", path,
                                          len > MAX_BYTES ? "larger than 1 MiB"
                                                          : "read error");
        }
        fclose(fp);
        buf[len] = '\0';
        cli->prop_files =
            sq_realloc(cli->prop_files,
                       (cli->prop_files_cnt + 1) * sizeof(*cli->prop_files));
        cli->prop_files[cli->prop_files_cnt++] = buf;
        for (line = buf; line && *line && ret == SQ_CLI_EXIT_OK; line = next) {
                char *end;
                lineno++;
                if ((next = strchr(line, '\n')))
                        *next++ = '\0';
                end = line + strlen(line);
                while (end > line &&
                       (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
                        *--end = '\0';
                while (*line == ' ' || *line == '\t')
                        line++;
                if (!*line || *line == '#')
                        continue;
                if (!strchr(line, '=') || *line == '=') {
                        /* The line may hold a secret: not printed. */
                        ret = sq_cli_usage_error(
                            NULL, "-F %s: line %zu is not KEY=VALUE", path,
                            lineno);
                        break;
                }
                ret = add_prop(cli, line);
        }
        return ret;
}

/* The brokers from the environment: SWARMQ_BOOTSTRAP_SERVERS, the name
 * swarmq-consumer reads too, or the older consumer spelling
 * SWARMQ_KAFKA_BOOTSTRAP_SERVERS with a deprecation warning. */
static const char *env_brokers(void) {
        const char *canonical  = getenv("SWARMQ_BOOTSTRAP_SERVERS");
        const char *deprecated = getenv("SWARMQ_KAFKA_BOOTSTRAP_SERVERS");

        if (deprecated && *deprecated)
                fprintf(stderr,
                        "%s: SWARMQ_KAFKA_BOOTSTRAP_SERVERS is deprecated: use "
                        "SWARMQ_BOOTSTRAP_SERVERS, which swarmq-consumer reads "
                        "too%s\n",
                        SQ_CLI_PROG,
                        canonical && *canonical
                            ? " (both are set: SWARMQ_BOOTSTRAP_SERVERS wins)"
                            : "");
        return canonical && *canonical ? canonical : deprecated;
}

/* Whether bootstrap servers were given in any of the three ways. */
static bool have_brokers(const sq_cli_t *cli) {
        size_t i;

        if (cli->brokers && *cli->brokers)
                return true;
        for (i = 0; i < cli->props_cnt; i++) {
                if (!strcmp(cli->props[i].name, "bootstrap.servers") ||
                    !strcmp(cli->props[i].name, "metadata.broker.list"))
                        return true;
        }
        return false;
}

enum {
        OPT_TOPIC_TASKS = 256,
        OPT_TOPIC_CRITICAL,
        OPT_TOPIC_RESULTS,
        OPT_TOPIC_EVENTS,
        OPT_TOPIC_WORKFLOWS,
        OPT_CONNECT_TIMEOUT,
};

const struct option sq_cli_global_options[] = {
    {"brokers", required_argument, NULL, 'b'},
    {"property", required_argument, NULL, 'X'},
    {"properties-file", required_argument, NULL, 'F'},
    {"topic-tasks", required_argument, NULL, OPT_TOPIC_TASKS},
    {"topic-critical", required_argument, NULL, OPT_TOPIC_CRITICAL},
    {"topic-results", required_argument, NULL, OPT_TOPIC_RESULTS},
    {"topic-events", required_argument, NULL, OPT_TOPIC_EVENTS},
    {"topic-workflows", required_argument, NULL, OPT_TOPIC_WORKFLOWS},
    {"connect-timeout-ms", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"quiet", no_argument, NULL, 'q'},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The commands, for the did-you-mean of an unknown one. */
static const char *const commands[] = {"submit", "wait",   "replay",
                                       "dlt",    "cancel", "workflow"};

/** @brief Parses the global options and runs one command. */
int main(int argc, char **argv) {
        sq_cli_t cli;
        const char *cmd;
        int64_t v;
        int opt, cmd_idx, ret = SQ_CLI_EXIT_OK;

        memset(&cli, 0, sizeof(cli));
        cli.brokers            = env_brokers();
        cli.topic_tasks        = SQ_TOPIC_DEFAULT_TASKS;
        cli.topic_critical     = SQ_TOPIC_DEFAULT_CRITICAL;
        cli.topic_results      = SQ_TOPIC_DEFAULT_RESULTS;
        cli.topic_events       = SQ_TOPIC_DEFAULT_EVENTS;
        cli.topic_workflows    = SQ_TOPIC_DEFAULT_WORKFLOWS;
        cli.connect_timeout_ms = 10000;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, "+:b:X:F:qVh",
                                  sq_cli_global_options, NULL)) != -1) {
                switch (opt) {
                case 'b':
                        cli.brokers = optarg;
                        break;
                case 'X':
                        ret = add_prop(&cli, optarg);
                        if (ret != SQ_CLI_EXIT_OK)
                                goto done;
                        break;
                case 'F':
                        ret = add_prop_file(&cli, optarg);
                        if (ret != SQ_CLI_EXIT_OK)
                                goto done;
                        break;
                case OPT_TOPIC_TASKS:
                        cli.topic_tasks = optarg;
                        break;
                case OPT_TOPIC_CRITICAL:
                        cli.topic_critical = optarg;
                        break;
                case OPT_TOPIC_RESULTS:
                        cli.topic_results = optarg;
                        break;
                case OPT_TOPIC_EVENTS:
                        cli.topic_events = optarg;
                        break;
                case OPT_TOPIC_WORKFLOWS:
                        cli.topic_workflows = optarg;
                        break;
                case OPT_CONNECT_TIMEOUT:
                        if (sq_parse_int64(optarg, 1, INT32_MAX, &v) != SQ_OK) {
                                ret = sq_cli_usage_error(
                                    NULL,
                                    "--connect-timeout-ms expects a positive "
                                    "number of milliseconds, got \"%s\"",
                                    optarg);
                                goto done;
                        }
                        cli.connect_timeout_ms = (int)v;
                        break;
                case 'q':
                        cli.quiet = true;
                        break;
                case 'V':
                        printf("%s %s\n", SQ_CLI_PROG, swarmq_version());
                        goto done;
                case 'h':
                        usage(stdout);
                        goto done;
                case ':':
                        ret = sq_cli_usage_error(
                            NULL, "option %s needs a value", argv[optind - 1]);
                        goto done;
                default: {
                        char hint[160];
                        ret = sq_cli_usage_error(
                            NULL, "unknown option %s%s", argv[optind - 1],
                            sq_cli_option_hint(argv[optind - 1],
                                               sq_cli_global_options, hint,
                                               sizeof(hint)));
                        goto done;
                }
                }
        }
        if (optind >= argc) {
                ret = sq_cli_usage_error(NULL, "no command given (submit, "
                                               "wait, replay, dlt, cancel or "
                                               "workflow)");
                goto done;
        }
        if (!*cli.topic_tasks || !*cli.topic_critical || !*cli.topic_results ||
            !*cli.topic_events || !*cli.topic_workflows) {
                ret = sq_cli_usage_error(NULL, "topic names must not be "
                                               "empty");
                goto done;
        }

        cmd = argv[optind];
        if (strcmp(cmd, "submit") && strcmp(cmd, "wait") &&
            strcmp(cmd, "replay") && strcmp(cmd, "dlt") &&
            strcmp(cmd, "cancel") && strcmp(cmd, "workflow")) {
                const char *best =
                    sq_config_suggest(cmd, commands, SQ_ARRAY_SIZE(commands),
                                      sizeof(commands[0]));
                if (best)
                        ret = sq_cli_usage_error(NULL,
                                                 "unknown command \"%s\"; did "
                                                 "you mean %s?",
                                                 cmd, best);
                else
                        ret = sq_cli_usage_error(
                            NULL,
                            "unknown command \"%s\" (expected submit, wait, "
                            "replay, dlt, cancel or workflow)",
                            cmd);
                goto done;
        }
        /* A command's --help needs no broker; the command checks
         * have_brokers itself after its own options are parsed. */
        cli.have_brokers = have_brokers(&cli);
        if (cli.brokers && !*cli.brokers)
                cli.brokers = NULL;

        sq_cli_signals_install();
        cmd_idx = optind; /* the command's parser restarts getopt */
        if (!strcmp(cmd, "submit"))
                ret = sq_cli_submit(&cli, argc - cmd_idx, argv + cmd_idx);
        else if (!strcmp(cmd, "wait"))
                ret = sq_cli_wait(&cli, argc - cmd_idx, argv + cmd_idx);
        else if (!strcmp(cmd, "replay"))
                ret = sq_cli_replay(&cli, argc - cmd_idx, argv + cmd_idx);
        else if (!strcmp(cmd, "cancel"))
                ret = sq_cli_cancel(&cli, argc - cmd_idx, argv + cmd_idx);
        else if (!strcmp(cmd, "workflow"))
                ret = sq_cli_workflow(&cli, argc - cmd_idx, argv + cmd_idx);
        else
                ret = sq_cli_dlt(&cli, argc - cmd_idx, argv + cmd_idx);

done:
        sq_free(cli.props);
        sq_free(cli.sr_props);
        while (cli.prop_files_cnt)
                sq_free(cli.prop_files[--cli.prop_files_cnt]);
        sq_free(cli.prop_files);
        return ret;
}
