/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_cancel.c: `swarmq-producer cancel ID...`: asks every swarmq instance
 * to cancel tasks by id, through the control topic (libswarmq's
 * swarmq_producer_cancel(); docs/delayed-and-cancel.md).
 *
 * DESIGN
 *   One control record per id, then one flush: the command succeeds when
 *   every record is acknowledged by the broker. It cannot say what the
 *   instances will find (the task may be queued, waiting, running,
 *   finished, or unknown): it says so, and `wait` shows the outcome (a
 *   CANCELLED result, or the result the task already had).
 */
#include "cli.h"
#include "command.h"

#include "swarmq/producer.h"
#include "topics.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CANCEL_FLUSH_MS 30000

typedef struct cancel_opts_s {
        const char *topic_control;
        const char *ids_file;
        const char *workflows[64]; /* --workflow */
        int workflows_cnt;
} cancel_opts_t;

/* clang-format off: the help text is laid out as it prints. */
static void cancel_usage(FILE *fp) {
        fprintf(
            fp,
            "Usage: " SQ_CLI_PROG " [global options] cancel [options] ID...\n"
            "\n"
            "Cancel tasks by id: one control record per id on the control "
            "topic,\n"
            "which every swarmq instance reads. A task not started yet "
            "(queued,\n"
            "delayed, or submitted within cancel.ttl.ms after this) ends "
            "CANCELLED\n"
            "without running; a running exec or pool task is killed and a "
            "builtin\n"
            "stops at its next check, each with one CANCELLED result. A task "
            "that\n"
            "already ended, or an unknown id, is not affected.\n"
            "\n"
            "An ID may be a workflow's (docs/workflows.md): every task of it "
            "is\n"
            "cancelled as above, and so is each task its owner submits "
            "within\n"
            "cancel.ttl.ms; the workflow ends CANCELLED.\n"
            "\n"
            "Options:\n"
            "      --workflow ID        cancel the workflow ID (the same as "
            "ID, said\n"
            "                           explicitly; repeatable)\n"
            "      --ids-file FILE      also cancel the ids in FILE, one per "
            "line\n"
            "      --topic-control T    control topic "
            "(default " SQ_TOPIC_DEFAULT_CONTROL ")\n"
            "  -h, --help               print this help and exit\n"
            "\n"
            "See the outcome with: " SQ_CLI_PROG " wait --id ID (a CANCELLED "
            "result,\n"
            "or the result the task already had).\n");
}
/* clang-format on */

enum { OPT_IDS_FILE = 256, OPT_TOPIC_CONTROL, OPT_WORKFLOW };

static const struct option longopts[] = {
    {"ids-file", required_argument, NULL, OPT_IDS_FILE},
    {"topic-control", required_argument, NULL, OPT_TOPIC_CONTROL},
    {"workflow", required_argument, NULL, OPT_WORKFLOW},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int cancel_opt(const sq_cmd_t *cmd, void *optsp, int opt, char *arg,
                      const char *word) {
        cancel_opts_t *opts = optsp;
        (void)word;

        switch (opt) {
        case OPT_IDS_FILE:
                if (!sq_cmd_word_arg(cmd, "--ids-file", arg))
                        return SQ_CLI_EXIT_USAGE;
                opts->ids_file = arg;
                break;
        case OPT_TOPIC_CONTROL:
                if (!sq_cmd_word_arg(cmd, "--topic-control", arg))
                        return SQ_CLI_EXIT_USAGE;
                opts->topic_control = arg;
                break;
        case OPT_WORKFLOW:
                if (!sq_cmd_word_arg(cmd, "--workflow", arg))
                        return SQ_CLI_EXIT_USAGE;
                if (opts->workflows_cnt == SQ_ARRAY_SIZE(opts->workflows))
                        return sq_cli_usage_error(
                            cmd->name,
                            "more than %zu --workflow options "
                            "(give the others as ID or in "
                            "--ids-file)",
                            SQ_ARRAY_SIZE(opts->workflows));
                opts->workflows[opts->workflows_cnt++] = arg;
                break;
        }
        return SQ_CMD_CONTINUE;
}

/* Sends one cancel. @returns an exit code (OK to go on). */
static int cancel_one(const sq_cmd_t *cmd, swarmq_producer_t *p, const char *id,
                      uint64_t *sentp) {
        char errstr[512];
        swarmq_err_t err =
            swarmq_producer_cancel(p, id, errstr, sizeof(errstr));

        if (err == SWARMQ_ERR_INVALID_ARG)
                return sq_cli_usage_error(cmd->name, "\"%s\": %s", id, errstr);
        if (err != SWARMQ_OK) {
                sq_cmd_say(cmd, NULL, "%s", errstr);
                return SQ_CLI_EXIT_INCOMPLETE;
        }
        (*sentp)++;
        return SQ_CLI_EXIT_OK;
}

int sq_cli_cancel(const sq_cli_t *cli, int argc, char **argv) {
        cancel_opts_t opts   = {SQ_TOPIC_DEFAULT_CONTROL, NULL, {NULL}, 0};
        swarmq_producer_t *p = NULL;
        FILE *fp             = NULL;
        char *line           = NULL;
        size_t cap           = 0, len;
        uint64_t sent        = 0, undelivered;
        int args_index       = 0, i, ret;
        sq_cmd_t cmd;

        sq_cmd_init(&cmd, cli, "cancel", cancel_usage);
        cmd.args_indexp = &args_index;
        ret = sq_cmd_parse(&cmd, argc, argv, ":h", longopts, cancel_opt, &opts);
        if (ret != SQ_CMD_CONTINUE)
                goto done;
        if (args_index >= argc && !opts.ids_file && !opts.workflows_cnt) {
                ret = sq_cli_usage_error(cmd.name,
                                         "no task id given (cancel ID..., "
                                         "--workflow ID or --ids-file FILE)");
                goto done;
        }
        if (opts.ids_file && !(fp = fopen(opts.ids_file, "re"))) {
                ret = sq_cli_usage_error(cmd.name,
                                         "--ids-file %s: cannot open "
                                         "it",
                                         opts.ids_file);
                goto done;
        }
        if ((ret = sq_cmd_ready(&cmd, false)) != SQ_CLI_EXIT_OK ||
            (ret = sq_cmd_libswarmq_new(&cmd, "topic.control",
                                        opts.topic_control, &p)) !=
                SQ_CLI_EXIT_OK)
                goto done;
        for (i = 0; i < opts.workflows_cnt && ret == SQ_CLI_EXIT_OK; i++)
                ret = cancel_one(&cmd, p, opts.workflows[i], &sent);
        for (i = args_index; i < argc && ret == SQ_CLI_EXIT_OK; i++)
                ret = cancel_one(&cmd, p, argv[i], &sent);
        while (fp && ret == SQ_CLI_EXIT_OK) {
                int rc = sq_cli_read_line(fp, &line, &cap, &len, 4096 + 1);
                if (rc == 0)
                        break;
                if (rc < 0) {
                        ret = sq_cli_usage_error(
                            cmd.name, "--ids-file %s: %s", opts.ids_file,
                            rc == -1 ? "a line is longer than 4096 bytes"
                                     : strerror(errno));
                        break;
                }
                if (len && line[len - 1] == '\r')
                        len--;
                line[len] = '\0';
                if (len)
                        ret = cancel_one(&cmd, p, line, &sent);
        }
        undelivered = swarmq_producer_flush(p, CANCEL_FLUSH_MS);
        if (undelivered && ret == SQ_CLI_EXIT_OK) {
                const char *why = swarmq_producer_last_error(p);
                sq_cmd_say(
                    &cmd, NULL, "%llu of %llu cancels not delivered to %s%s%s",
                    (unsigned long long)undelivered, (unsigned long long)sent,
                    opts.topic_control, why ? ": " : "", why ? why : "");
                ret = SQ_CLI_EXIT_INCOMPLETE;
        }
        if (ret == SQ_CLI_EXIT_OK && !cli->quiet)
                sq_cmd_say(&cmd, NULL,
                           "%llu cancel%s delivered to %s; a task that "
                           "already ended, or an unknown id, is not "
                           "affected ('wait' shows each outcome)",
                           (unsigned long long)sent, sent == 1 ? "" : "s",
                           opts.topic_control);
done:
        if (fp)
                fclose(fp);
        sq_free(line);
        swarmq_producer_destroy(p);
        sq_cmd_term(&cmd);
        return ret;
}
