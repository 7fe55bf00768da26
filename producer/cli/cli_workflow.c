/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_workflow.c: `swarmq-producer workflow FILE`: submits a workflow (a
 * chain, group or chord of tasks in a JSON file; docs/workflows.md) as
 * one record on topic.workflows, through libswarmq's
 * swarmq_producer_submit_workflow().
 *
 * DESIGN
 *   The file is read whole (bounded) and checked by the same parser the
 *   instances use, so a bad file is refused here, naming the bad place,
 *   before anything is written. The command succeeds when the record is
 *   acknowledged; it prints the workflow id on stdout (for scripts) and
 *   says how to wait for its result, which the workflow's owner writes
 *   with the workflow id as its task id.
 */
#include "cli.h"
#include "command.h"

#include "swarmq/producer.h"
#include "topics.h"
#include "workflow.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define WORKFLOW_FLUSH_MS 30000
#define WORKFLOW_FILE_MAX (16 * 1024 * 1024)

typedef struct workflow_opts_s {
        const char *id;
} workflow_opts_t;

/* clang-format off: the help text is laid out as it prints. */
static void workflow_usage(FILE *fp) {
        fprintf(
            fp,
            "Usage: " SQ_CLI_PROG " [global options] workflow [options] FILE\n"
            "\n"
            "Submit a workflow: a chain, a group or a chord (a group with a "
            "join)\n"
            "of tasks, nested at will, declared in the JSON file FILE (- "
            "for\n"
            "standard input):\n"
            "\n"
            "  {\"id\": \"nightly-1\",\n"
            "   \"workflow\": {\"group\": [{\"type\": \"sha256\", "
            "\"payload\": \"a\"},\n"
            "                           {\"type\": \"sha256\", \"payload\": "
            "\"b\"}],\n"
            "                \"join\": {\"type\": \"echo\"}}}\n"
            "\n"
            "A chain's steps run one after the other, each step's output "
            "the next\n"
            "one's payload; a join runs once every child of its group ended, "
            "with\n"
            "their results (id, status, output, error) as its payload. The "
            "owner\n"
            "of the workflow's partition of the workflows topic (a swarmq "
            "instance\n"
            "with workflows.enable=true) runs it and writes its result, "
            "task id =\n"
            "the workflow id. See docs/workflows.md.\n"
            "\n"
            "Options:\n"
            "      --id ID              the workflow id when the file has "
            "none\n"
            "                           (default: a random wf-<16 hex>)\n"
            "  -h, --help               print this help and exit\n"
            "\n"
            "Prints the workflow id. Wait for its result with: " SQ_CLI_PROG
            " wait --id ID\n"
            "It goes to the global --topic-workflows "
            "(default " SQ_TOPIC_DEFAULT_WORKFLOWS ").\n");
}
/* clang-format on */

enum { OPT_ID = 256 };

static const struct option longopts[] = {
    {"id", required_argument, NULL, OPT_ID},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int workflow_opt(const sq_cmd_t *cmd, void *optsp, int opt, char *arg,
                        const char *word) {
        workflow_opts_t *opts = optsp;
        (void)word;

        switch (opt) {
        case OPT_ID:
                if (!sq_cmd_word_arg(cmd, "--id", arg))
                        return SQ_CLI_EXIT_USAGE;
                opts->id = arg;
                break;
        }
        return SQ_CMD_CONTINUE;
}

/* Reads @p path whole ("-": stdin). @returns the bytes (caller frees), or
 * NULL with a usage error printed. */
static char *read_file(const sq_cmd_t *cmd, const char *path, size_t *lenp,
                       int *retp) {
        FILE *fp   = strcmp(path, "-") ? fopen(path, "re") : stdin;
        size_t cap = 65536, len = 0, n;
        char *buf;

        if (!fp) {
                *retp = sq_cli_usage_error(cmd->name, "%s: cannot open it: %s",
                                           path, strerror(errno));
                return NULL;
        }
        buf = sq_malloc(cap);
        while ((n = fread(buf + len, 1, cap - len, fp)) > 0) {
                len += n;
                if (len == cap) {
                        if (cap >= WORKFLOW_FILE_MAX)
                                break;
                        cap *= 2;
                        buf = sq_realloc(buf, cap);
                }
        }
        if (ferror(fp) || len >= WORKFLOW_FILE_MAX) {
                *retp = sq_cli_usage_error(
                    cmd->name, "%s: %s", path,
                    ferror(fp) ? strerror(errno)
                               : "larger than 16 MiB, the most a workflow "
                                 "file may be");
                sq_free(buf);
                buf = NULL;
        }
        if (fp != stdin)
                fclose(fp);
        *lenp = len;
        return buf;
}

int sq_cli_workflow(const sq_cli_t *cli, int argc, char **argv) {
        workflow_opts_t opts = {NULL};
        swarmq_producer_t *p = NULL;
        sq_workflow_t *wf    = NULL;
        char id[SQ_WORKFLOW_ID_MAX + 1], random_id[40], errstr[1024];
        char *json     = NULL;
        int args_index = 0, ret;
        size_t len     = 0, tasks;
        swarmq_err_t err;
        sq_cmd_t cmd;

        sq_cmd_init(&cmd, cli, "workflow", workflow_usage);
        cmd.args_indexp = &args_index;
        ret =
            sq_cmd_parse(&cmd, argc, argv, ":h", longopts, workflow_opt, &opts);
        if (ret != SQ_CMD_CONTINUE)
                goto done;
        if (args_index != argc - 1) {
                ret = sq_cli_usage_error(cmd.name,
                                         args_index >= argc
                                             ? "no workflow file given"
                                             : "one workflow file at a time");
                goto done;
        }
        if (!(json = read_file(&cmd, argv[args_index], &len, &ret)))
                goto done;
        if (!opts.id) {
                char hex[17];
                sq_cli_random_hex(hex, 8);
                snprintf(random_id, sizeof(random_id), "wf-%s", hex);
                opts.id = random_id;
        }
        /* Checked here first: a bad file is a usage error, named. */
        if (!(wf = sq_workflow_parse(json, len, opts.id, errstr,
                                     sizeof(errstr)))) {
                ret = sq_cli_usage_error(cmd.name, "%s: %s", argv[args_index],
                                         errstr);
                goto done;
        }
        tasks = sq_workflow_task_cnt(wf);
        if ((ret = sq_cmd_ready(&cmd, false)) != SQ_CLI_EXIT_OK ||
            (ret = sq_cmd_libswarmq_new(&cmd, "topic.workflows",
                                        cli->topic_workflows, &p)) !=
                SQ_CLI_EXIT_OK)
                goto done;
        err = swarmq_producer_submit_workflow(
            p, json, len, opts.id, id, sizeof(id), errstr, sizeof(errstr));
        if (err != SWARMQ_OK) {
                sq_cmd_say(&cmd, NULL, "%s", errstr);
                ret = SQ_CLI_EXIT_INCOMPLETE;
                goto done;
        }
        if (swarmq_producer_flush(p, WORKFLOW_FLUSH_MS)) {
                const char *why = swarmq_producer_last_error(p);
                sq_cmd_say(&cmd, NULL, "workflow %s not delivered to %s%s%s",
                           id, cli->topic_workflows, why ? ": " : "",
                           why ? why : "");
                ret = SQ_CLI_EXIT_INCOMPLETE;
                goto done;
        }
        printf("%s\n", id);
        if (!sq_cmd_flush_stdout(&cmd)) {
                ret = SQ_CLI_EXIT_INCOMPLETE;
                goto done;
        }
        if (!cli->quiet)
                sq_cmd_say(&cmd, NULL,
                           "workflow %s (%zu tasks) delivered to %s; wait "
                           "for its result with: " SQ_CLI_PROG " wait --id %s",
                           id, tasks, cli->topic_workflows, id);
done:
        sq_workflow_destroy(wf);
        sq_free(json);
        swarmq_producer_destroy(p);
        sq_cmd_term(&cmd);
        return ret;
}
