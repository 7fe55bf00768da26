/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_submit.c: `swarmq-producer submit`: writes tasks generated from flags,
 * or read as JSON lines from a file or stdin, through libswarmq.
 *
 * DESIGN
 *   One loop on the main thread: build a task, submit it (libswarmq encodes
 *   and copies it), write its id to --ids-out, pace to --rate, redraw the
 *   progress line. libswarmq waits at most SUBMIT_BLOCK_MS for room in a
 *   full local queue (serving delivery reports meanwhile) and then hands
 *   back SWARMQ_ERR_QUEUE_FULL, so this loop retries and can still notice
 *   SIGINT. At the end, one flush bounded by --flush-timeout-ms (a second
 *   signal cuts it short) decides the exit code: 0 only when every
 *   submitted task was acknowledged by the broker.
 */
#include "command.h"

#include "swarmq/producer.h"

#include <errno.h>
#include <jansson.h>
#include <inttypes.h>
#include <string.h>

/* How long one submit() waits for queue room before we check signals. */
#define SUBMIT_BLOCK_MS "100"
/* Longest accepted JSON line. */
#define MAX_LINE_LEN (16 * 1024 * 1024)
/* Largest --payload-size (the broker's message.max.bytes is lower anyway). */
#define MAX_PAYLOAD_SIZE (64 * 1024 * 1024)

/* One --header NAME=VALUE (both borrowed from argv). */
typedef struct submit_header_s {
        const char *name;
        const char *value;
} submit_header_t;

typedef struct submit_opts_s {
        uint64_t count;
        const char *type;
        swarmq_priority_t priority;
        uint64_t mix[4]; /* --priority-mix weights, by priority */
        uint64_t mix_total;
        const char **caps;
        size_t caps_cnt;
        submit_header_t *headers; /* owned array, strings borrowed */
        size_t headers_cnt;
        const char *payload;
        int64_t payload_size; /* -1: not given */
        int64_t timeout_ms;
        int64_t max_attempts; /* 0: the library default */
        int64_t delay_ms;     /* --delay-ms, 0: none */
        int64_t not_before;   /* --not-before, 0: none */
        const char *id_prefix;
        const char *key;
        const char *file; /* "-" never: --stdin sets use_stdin */
        bool use_stdin;
        bool skip_bad;
        const char *raw_value;
        const char *ids_out;
        int64_t rate; /* tasks/s, 0 = unlimited */
        int64_t flush_timeout_ms;
        const char *generator_opt; /* first generator flag seen, or NULL */
        bool prio_given;
        bool json;
} submit_opts_t;

typedef struct submit_run_s {
        const sq_cmd_t *cmd;
        const submit_opts_t *opts;
        swarmq_producer_t *p;
        FILE *ids_fp;
        sq_progress_t prog;
        uint64_t queued;  /* accepted by submit() */
        uint64_t skipped; /* bad lines skipped with --skip-bad */
        int64_t start_us;
        bool interrupted;
        const char *prefix; /* generated ids: PREFIX-000001... */
        json_t *ids;        /* with --json: every id submitted (owned) */
        char stopped[600];  /* why the run stopped early, or "" */
} submit_run_t;

/* clang-format off: the help text is laid out as it prints. */
static void submit_usage(FILE *fp) {
        fprintf(
            fp,
            "Usage: " SQ_CLI_PROG " [global options] submit [options]\n"
            "\n"
            "Write tasks to the tasks topic (CRITICAL ones to the fast-lane "
            "topic),\n"
            "keyed by the task key, else the task id. Three sources, one at a "
            "time:\n"
            "\n"
            "Generated from flags (the default, one task unless --count):\n"
            "  -n, --count N            how many tasks (default 1)\n"
            "  -t, --type T             task type (default noop)\n"
            "  -p, --priority P         LOW, NORMAL (default), HIGH or "
            "CRITICAL\n"
            "      --priority-mix MIX   weighted priorities, deterministic by "
            "index,\n"
            "                           e.g. LOW:1,NORMAL:6,HIGH:2,CRITICAL:1\n"
            "  -c, --capability C       required capability (repeatable)\n"
            "      --payload STR        payload bytes\n"
            "      --payload-size N     N pseudo-random payload bytes per "
            "task\n"
            "      --timeout-ms MS      task execution timeout (default 0 = "
            "none)\n"
            "      --max-attempts N     attempts before dead-lettering "
            "(default 3)\n"
            "      --header NAME=VALUE  task header (repeatable)\n"
            "      --delay-ms MS        do not start a task before MS after "
            "it is\n"
            "                           submitted (sets its not_before)\n"
            "      --not-before TIME    do not start before TIME, "
            "milliseconds since\n"
            "                           1970 (e.g. $(( $(date +%%s) * 1000 "
            "+ 60000 )))\n"
            "      --id-prefix P        ids P-000001, P-000002, ... (default a "
            "random\n"
            "                           run prefix run-<8 hex>)\n"
            "  -k, --key K              ordering/affinity key for every task\n"
            "\n"
            "JSON lines, one task object per line (schema field names: id, "
            "type,\n"
            "priority, capabilities, payload or payload_base64, key, "
            "timeout_ms,\n"
            "max_attempts, headers, not_before); blank lines are ignored:\n"
            "  -f, --file FILE          read tasks from FILE\n"
            "      --stdin              read tasks from standard input\n"
            "      --skip-bad           warn about a bad line and go on "
            "(default: stop\n"
            "                           at the first bad line with exit code "
            "2)\n"
            "\n"
            "One raw record, for testing how undecodable tasks are handled:\n"
            "      --raw-value STR      send STR as-is as one record value to "
            "the\n"
            "                           tasks topic (with --key K as its key)\n"
            "\n"
            "Common:\n"
            "      --ids-out FILE       write each submitted task id, one per "
            "line\n"
            "                           (for 'wait --ids-file')\n"
            "      --rate N             at most N tasks/s (default 0 = "
            "unlimited)\n"
            "      --flush-timeout-ms MS  how long to wait for delivery at the "
            "end\n"
            "                           (default 30000)\n"
            "      --json               print the summary as one JSON object "
            "on stdout,\n"
            "                           with every submitted id in \"ids\"\n"
            "  -h, --help               print this help and exit\n"
            "\n"
            "A progress line is drawn on stderr when it is a terminal; a "
            "one-line\n"
            "summary is printed on stderr at the end (unless -q), naming the "
            "generated\n"
            "ids (PREFIX-000001..PREFIX-N) and, when the exit code is not 0, "
            "why.\n"
            "Exit code 0 when every task was delivered, 1 when some were not "
            "(or on\n"
            "SIGINT), 2 on a usage error or a bad input line, 3 when no broker "
            "answered.\n");
}
/* clang-format on */

/* Parses "LOW:1,NORMAL:6,..." into opts->mix; writes a sentence on error. */
static bool parse_mix(submit_opts_t *opts, const char *str, char *errstr,
                      size_t errstr_size) {
        const char *item = str;
        bool seen[4]     = {false, false, false, false};

        memset(opts->mix, 0, sizeof(opts->mix));
        opts->mix_total = 0;
        while (*item) {
                const char *end   = strchr(item, ',');
                size_t len        = end ? (size_t)(end - item) : strlen(item);
                const char *colon = memchr(item, ':', len);
                char name[16], weight[24];
                swarmq_priority_t prio;
                int64_t w;

                if (!colon || (size_t)(colon - item) >= sizeof(name) ||
                    len - (size_t)(colon - item) - 1 >= sizeof(weight)) {
                        sq_errstr_set(errstr, errstr_size,
                                      "--priority-mix item \"%.*s\" is not "
                                      "PRIORITY:WEIGHT",
                                      (int)len, item);
                        return false;
                }
                memcpy(name, item, (size_t)(colon - item));
                name[colon - item] = '\0';
                memcpy(weight, colon + 1, len - (size_t)(colon - item) - 1);
                weight[len - (size_t)(colon - item) - 1] = '\0';
                if (swarmq_priority_parse(name, &prio) != SWARMQ_OK) {
                        sq_errstr_set(errstr, errstr_size,
                                      "--priority-mix: unknown priority "
                                      "\"%s\" (LOW, NORMAL, HIGH, CRITICAL)",
                                      name);
                        return false;
                }
                if (seen[prio]) {
                        sq_errstr_set(errstr, errstr_size,
                                      "--priority-mix names %s twice", name);
                        return false;
                }
                seen[prio] = true;
                if (sq_parse_int64(weight, 0, 1000000, &w) != SQ_OK) {
                        sq_errstr_set(errstr, errstr_size,
                                      "--priority-mix: weight \"%s\" of %s "
                                      "is not a number in 0..1000000",
                                      weight, name);
                        return false;
                }
                opts->mix[prio] = (uint64_t)w;
                opts->mix_total += (uint64_t)w;
                item += len + (end ? 1 : 0);
        }
        if (opts->mix_total == 0) {
                sq_errstr_set(errstr, errstr_size,
                              "--priority-mix \"%s\" has no positive weight",
                              str);
                return false;
        }
        return true;
}

/* The priority of task number @p idx (0-based) under the mix: weights
 * laid out in priority order over a cycle of mix_total tasks. */
static swarmq_priority_t mix_pick(const submit_opts_t *opts, uint64_t idx) {
        uint64_t slot = idx % opts->mix_total;
        int prio;

        for (prio = 0; prio < 4; prio++) {
                if (slot < opts->mix[prio])
                        return (swarmq_priority_t)prio;
                slot -= opts->mix[prio];
        }
        return SWARMQ_PRIORITY_NORMAL; /* not reached: slot < mix_total */
}

/* Fills @p buf with bytes that depend only on @p idx (xorshift64*). */
static void fill_payload(unsigned char *buf, size_t len, uint64_t idx) {
        uint64_t x = (idx + 1) * 0x9e3779b97f4a7c15ULL;
        size_t i;

        for (i = 0; i < len; i++) {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                buf[i] = (unsigned char)((x * 0x2545f4914f6cdd1dULL) >> 56);
        }
}

enum {
        OPT_MIX = 256,
        OPT_PAYLOAD,
        OPT_PAYLOAD_SIZE,
        OPT_TIMEOUT,
        OPT_MAX_ATTEMPTS,
        OPT_HEADER,
        OPT_ID_PREFIX,
        OPT_STDIN,
        OPT_SKIP_BAD,
        OPT_RAW,
        OPT_IDS_OUT,
        OPT_RATE,
        OPT_FLUSH_TIMEOUT,
        OPT_DELAY,
        OPT_NOT_BEFORE,
        OPT_JSON,
};

static const struct option longopts[] = {
    {"count", required_argument, NULL, 'n'},
    {"type", required_argument, NULL, 't'},
    {"priority", required_argument, NULL, 'p'},
    {"priority-mix", required_argument, NULL, OPT_MIX},
    {"capability", required_argument, NULL, 'c'},
    {"payload", required_argument, NULL, OPT_PAYLOAD},
    {"payload-size", required_argument, NULL, OPT_PAYLOAD_SIZE},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
    {"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
    {"header", required_argument, NULL, OPT_HEADER},
    {"id-prefix", required_argument, NULL, OPT_ID_PREFIX},
    {"key", required_argument, NULL, 'k'},
    {"file", required_argument, NULL, 'f'},
    {"stdin", no_argument, NULL, OPT_STDIN},
    {"skip-bad", no_argument, NULL, OPT_SKIP_BAD},
    {"raw-value", required_argument, NULL, OPT_RAW},
    {"ids-out", required_argument, NULL, OPT_IDS_OUT},
    {"rate", required_argument, NULL, OPT_RATE},
    {"flush-timeout-ms", required_argument, NULL, OPT_FLUSH_TIMEOUT},
    {"delay-ms", required_argument, NULL, OPT_DELAY},
    {"not-before", required_argument, NULL, OPT_NOT_BEFORE},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* "--count" for getopt value 'n': how messages name an option. */
static const char *option_name(int opt) {
        static char name[40];
        size_t i;

        for (i = 0; longopts[i].name; i++) {
                if (longopts[i].val == opt) {
                        snprintf(name, sizeof(name), "--%s", longopts[i].name);
                        return name;
                }
        }
        return "an option";
}

/* Whether @p opt only makes sense for generated tasks. */
static bool is_generator_opt(int opt) {
        return opt == 'n' || opt == 't' || opt == 'p' || opt == 'c' ||
               opt == OPT_MIX || opt == OPT_PAYLOAD ||
               opt == OPT_PAYLOAD_SIZE || opt == OPT_TIMEOUT ||
               opt == OPT_MAX_ATTEMPTS || opt == OPT_HEADER ||
               opt == OPT_ID_PREFIX || opt == OPT_DELAY ||
               opt == OPT_NOT_BEFORE;
}

/* One submit option (sq_cmd_opt_cb_t). */
static int submit_opt(const sq_cmd_t *cmd, void *optsp, int opt, char *arg,
                      const char *word) {
        submit_opts_t *opts = optsp;
        char errstr[256];
        int64_t v;
        (void)word; /* stored below, so named from the table instead */

        /* Remember the first flag that only generated tasks use, by its
         * name (@p word is the value when it was given apart). */
        if (!opts->generator_opt && is_generator_opt(opt))
                opts->generator_opt = option_name(opt);
        switch (opt) {
        case 'n':
                if (!sq_cmd_int_arg(cmd, "--count", arg, 0, INT64_MAX, NULL,
                                    &v))
                        return SQ_CLI_EXIT_USAGE;
                opts->count = (uint64_t)v;
                break;
        case 't':
                if (!sq_cmd_word_arg(cmd, "--type", arg))
                        return SQ_CLI_EXIT_USAGE;
                opts->type = arg;
                break;
        case 'p':
                if (swarmq_priority_parse(arg, &opts->priority) != SWARMQ_OK)
                        return sq_cli_usage_error(
                            cmd->name,
                            "--priority expects LOW, NORMAL, HIGH or "
                            "CRITICAL, got \"%s\"",
                            arg);
                opts->prio_given = true;
                break;
        case OPT_MIX:
                if (!parse_mix(opts, arg, errstr, sizeof(errstr)))
                        return sq_cli_usage_error(cmd->name, "%s", errstr);
                break;
        case 'c':
                if (!sq_cmd_word_arg(cmd, "--capability", arg))
                        return SQ_CLI_EXIT_USAGE;
                opts->caps = sq_realloc(opts->caps, (opts->caps_cnt + 1) *
                                                        sizeof(*opts->caps));
                opts->caps[opts->caps_cnt++] = arg;
                break;
        case OPT_PAYLOAD:
                opts->payload = arg;
                break;
        case OPT_PAYLOAD_SIZE:
                if (!sq_cmd_int_arg(cmd, "--payload-size", arg, 0,
                                    MAX_PAYLOAD_SIZE, NULL,
                                    &opts->payload_size))
                        return SQ_CLI_EXIT_USAGE;
                break;
        case OPT_TIMEOUT:
                if (!sq_cmd_int_arg(cmd, "--timeout-ms", arg, 0, INT64_MAX,
                                    NULL, &opts->timeout_ms))
                        return SQ_CLI_EXIT_USAGE;
                break;
        case OPT_MAX_ATTEMPTS:
                if (!sq_cmd_int_arg(cmd, "--max-attempts", arg, 1, INT32_MAX,
                                    NULL, &opts->max_attempts))
                        return SQ_CLI_EXIT_USAGE;
                break;
        case OPT_DELAY:
        case OPT_NOT_BEFORE: {
                bool delay = opt == OPT_DELAY;
                if (opts->delay_ms || opts->not_before)
                        return sq_cli_usage_error(cmd->name,
                                                  "give one of --delay-ms and "
                                                  "--not-before, once");
                /* A delay up to a year; a time up to when int64 ms end. */
                if (!sq_cmd_int_arg(
                        cmd, delay ? "--delay-ms" : "--not-before", arg, 0,
                        delay ? (int64_t)366 * 86400000 : INT64_MAX / 2, NULL,
                        delay ? &opts->delay_ms : &opts->not_before))
                        return SQ_CLI_EXIT_USAGE;
                break;
        }
        case OPT_HEADER: {
                char *eq = strchr(arg, '=');
                if (!eq || eq == arg)
                        return sq_cli_usage_error(
                            cmd->name,
                            "--header expects NAME=VALUE, got \"%s\"", arg);
                *eq = '\0';
                opts->headers =
                    sq_realloc(opts->headers, (opts->headers_cnt + 1) *
                                                  sizeof(*opts->headers));
                opts->headers[opts->headers_cnt].name    = arg;
                opts->headers[opts->headers_cnt++].value = eq + 1;
                break;
        }
        case OPT_ID_PREFIX:
                if (!sq_cmd_word_arg(cmd, "--id-prefix", arg))
                        return SQ_CLI_EXIT_USAGE;
                opts->id_prefix = arg;
                break;
        case 'k':
                opts->key = arg;
                break;
        case 'f':
                opts->file = arg;
                break;
        case OPT_STDIN:
                opts->use_stdin = true;
                break;
        case OPT_SKIP_BAD:
                opts->skip_bad = true;
                break;
        case OPT_RAW:
                opts->raw_value = arg;
                break;
        case OPT_IDS_OUT:
                opts->ids_out = arg;
                break;
        case OPT_RATE:
                if (!sq_cmd_int_arg(cmd, "--rate", arg, 0, 100000000, NULL,
                                    &opts->rate))
                        return SQ_CLI_EXIT_USAGE;
                break;
        case OPT_JSON:
                opts->json = true;
                break;
        case OPT_FLUSH_TIMEOUT:
                if (!sq_cmd_int_arg(cmd, "--flush-timeout-ms", arg, 0,
                                    INT32_MAX, NULL, &opts->flush_timeout_ms))
                        return SQ_CLI_EXIT_USAGE;
                break;
        }
        return SQ_CMD_CONTINUE;
}

/* Parses the submit options into @p opts.
 * @returns -1 to go on, or an exit code (help printed, usage error). */
static int parse_opts(const sq_cmd_t *cmd, submit_opts_t *opts, int argc,
                      char **argv) {
        int ret = sq_cmd_parse(cmd, argc, argv, ":n:t:p:c:k:f:h", longopts,
                               submit_opt, opts);

        if (ret != SQ_CMD_CONTINUE)
                return ret;

        /* One source at a time. */
        if (opts->file && opts->use_stdin)
                return sq_cli_usage_error(cmd->name, "--file and --stdin "
                                                     "cannot be combined");
        if ((opts->file || opts->use_stdin || opts->raw_value) &&
            opts->generator_opt)
                return sq_cli_usage_error(
                    cmd->name,
                    "%s generates tasks and cannot be combined with "
                    "%s",
                    opts->generator_opt,
                    opts->raw_value ? "--raw-value"
                                    : (opts->file ? "--file" : "--stdin"));
        if (opts->raw_value && (opts->file || opts->use_stdin))
                return sq_cli_usage_error(cmd->name,
                                          "--raw-value cannot be combined "
                                          "with --file or --stdin");
        if (opts->raw_value && opts->ids_out)
                return sq_cli_usage_error(cmd->name,
                                          "--raw-value sends no task, so "
                                          "--ids-out has nothing to write");
        if (opts->skip_bad && !opts->file && !opts->use_stdin)
                return sq_cli_usage_error(cmd->name, "--skip-bad needs --file "
                                                     "or --stdin");
        if (opts->prio_given && opts->mix_total)
                return sq_cli_usage_error(cmd->name,
                                          "--priority and --priority-mix "
                                          "cannot be combined");
        if (opts->payload && opts->payload_size >= 0)
                return sq_cli_usage_error(cmd->name,
                                          "--payload and --payload-size "
                                          "cannot be combined");
        return SQ_CMD_CONTINUE;
}

/* Opens libswarmq with the global options.
 * @returns SQ_CLI_EXIT_OK or an exit code, with a message printed. */
static int producer_open(submit_run_t *run) {
        const sq_cli_t *cli = run->cmd->cli;
        char errstr[1024], name[256];
        swarmq_err_t err;
        size_t i;

        run->p = swarmq_producer_new(cli->brokers, errstr, sizeof(errstr));
        if (!run->p) {
                sq_cmd_say(run->cmd, NULL, "%s", errstr);
                return SQ_CLI_EXIT_USAGE;
        }
        for (i = 0; i < cli->props_cnt; i++) {
                snprintf(name, sizeof(name), "kafka.%s", cli->props[i].name);
                if (swarmq_producer_set(run->p, name, cli->props[i].value,
                                        errstr, sizeof(errstr)) != SWARMQ_OK)
                        return sq_cli_usage_error(run->cmd->name, "-X: %s",
                                                  errstr);
        }
        for (i = 0; i < cli->sr_props_cnt; i++) {
                if (swarmq_producer_set(run->p, cli->sr_props[i].name,
                                        cli->sr_props[i].value, errstr,
                                        sizeof(errstr)) != SWARMQ_OK)
                        return sq_cli_usage_error(run->cmd->name, "-X: %s",
                                                  errstr);
        }
        if (swarmq_producer_set(run->p, "topic.tasks", cli->topic_tasks, errstr,
                                sizeof(errstr)) != SWARMQ_OK ||
            swarmq_producer_set(run->p, "topic.critical", cli->topic_critical,
                                errstr, sizeof(errstr)) != SWARMQ_OK ||
            swarmq_producer_set(run->p, "submit.block.ms", SUBMIT_BLOCK_MS,
                                errstr, sizeof(errstr)) != SWARMQ_OK)
                return sq_cli_usage_error(run->cmd->name, "%s", errstr);

        /* librdkafka's threads are created now and inherit the mask. */
        sq_cli_signals_block(true);
        err = swarmq_producer_connect(run->p, cli->connect_timeout_ms, errstr,
                                      sizeof(errstr));
        sq_cli_signals_block(false);
        if (err != SWARMQ_OK) {
                sq_cmd_say(run->cmd, NULL, "%s", errstr);
                return err == SWARMQ_ERR_TRANSPORT ? SQ_CLI_EXIT_BROKER
                                                   : SQ_CLI_EXIT_USAGE;
        }
        return SQ_CLI_EXIT_OK;
}

/* Sleeps (serving delivery reports) until task number run->queued is due
 * under --rate. */
static void pace(submit_run_t *run) {
        int64_t due, left;

        if (!run->opts->rate)
                return;
        due = run->start_us +
              (int64_t)((double)run->queued * 1e6 / (double)run->opts->rate);
        while ((left = due - sq_clock_us()) >= 1000 && !sq_cli_interrupted())
                swarmq_producer_poll(run->p, (int)SQ_MIN(left / 1000, 100));
}

/* Submits one task, retrying while the local queue is full.
 * @param task takes ownership.
 * @returns SQ_OK, SQ_ERR_ENCODE (bad task: @p errstr set) or SQ_ERR_KAFKA
 *          (@p errstr set); sets run->interrupted on a signal. */
static sq_err_t submit_task(submit_run_t *run, swarmq_task_t *task,
                            char *errstr, size_t errstr_size) {
        swarmq_err_t err;
        sq_err_t ret = SQ_OK;

        pace(run);
        while (
            (err = swarmq_producer_submit(run->p, task, errstr, errstr_size)) ==
            SWARMQ_ERR_QUEUE_FULL) {
                sq_progress_update(&run->prog, run->queued, false);
                if (sq_cli_interrupted()) {
                        run->interrupted = true;
                        goto done;
                }
        }
        if (err != SWARMQ_OK) {
                ret = err == SWARMQ_ERR_ENCODE || err == SWARMQ_ERR_INVALID_ARG
                          ? SQ_ERR_ENCODE
                          : SQ_ERR_KAFKA;
                goto done;
        }
        run->queued++;
        if (run->ids_fp)
                fprintf(run->ids_fp, "%s\n", swarmq_task_id(task));
        if (run->ids)
                json_array_append_new(run->ids,
                                      json_string(swarmq_task_id(task)));
        sq_progress_update(&run->prog, run->queued, false);
        if (sq_cli_interrupted())
                run->interrupted = true;

done:
        swarmq_task_destroy(task);
        return ret;
}

/* Builds task number @p idx (0-based) from the flags. */
static swarmq_task_t *generate_task(const submit_opts_t *opts,
                                    const char *prefix, uint64_t idx,
                                    unsigned char *payload_buf) {
        swarmq_task_t *task;
        char id[512];
        size_t i;

        snprintf(id, sizeof(id), "%s-%06" PRIu64, prefix, idx + 1);
        task = swarmq_task_new(id, opts->type);
        sq_assert(task); /* id and type are non-empty */
        swarmq_task_set_priority(task, opts->mix_total ? mix_pick(opts, idx)
                                                       : opts->priority);
        for (i = 0; i < opts->caps_cnt; i++)
                swarmq_task_add_capability(task, opts->caps[i]);
        for (i = 0; i < opts->headers_cnt; i++)
                swarmq_task_add_header(task, opts->headers[i].name,
                                       opts->headers[i].value);
        if (opts->payload) {
                swarmq_task_set_payload(task, opts->payload,
                                        strlen(opts->payload));
        } else if (opts->payload_size > 0) {
                fill_payload(payload_buf, (size_t)opts->payload_size, idx);
                swarmq_task_set_payload(task, payload_buf,
                                        (size_t)opts->payload_size);
        }
        swarmq_task_set_timeout_ms(task, opts->timeout_ms);
        if (opts->not_before)
                swarmq_task_set_not_before(task, opts->not_before);
        else if (opts->delay_ms)
                swarmq_task_set_delay_ms(task, opts->delay_ms);
        if (opts->max_attempts)
                swarmq_task_set_max_attempts(task, (int32_t)opts->max_attempts);
        if (opts->key)
                swarmq_task_set_key(task, opts->key);
        return task;
}

/* The generated-tasks loop. @returns an exit code. */
static int run_generated(submit_run_t *run) {
        const submit_opts_t *opts  = run->opts;
        unsigned char *payload_buf = NULL;
        char prefix[64], errstr[512];
        uint64_t i;
        int ret = SQ_CLI_EXIT_OK;

        if (!opts->id_prefix) {
                char hex[9];
                snprintf(prefix, sizeof(prefix), "run-%s",
                         sq_cli_random_hex(hex, 4));
        }
        run->prefix = opts->id_prefix ? opts->id_prefix : sq_strdup(prefix);
        if (opts->payload_size > 0)
                payload_buf = sq_malloc((size_t)opts->payload_size);

        for (i = 0; i < opts->count && !run->interrupted; i++) {
                if (submit_task(
                        run, generate_task(opts, run->prefix, i, payload_buf),
                        errstr, sizeof(errstr)) != SQ_OK) {
                        sq_cmd_say(run->cmd, &run->prog, "%s", errstr);
                        snprintf(run->stopped, sizeof(run->stopped),
                                 "stopped at task %" PRIu64 ": %s", i + 1,
                                 errstr);
                        ret = SQ_CLI_EXIT_INCOMPLETE;
                        break;
                }
        }
        sq_free(payload_buf);
        return ret;
}

/* Whether a line holds only blanks. */
static bool is_blank(const char *line, size_t len) {
        size_t i;
        for (i = 0; i < len; i++) {
                if (line[i] != ' ' && line[i] != '\t')
                        return false;
        }
        return true;
}

/* Reports a bad JSON line; @returns true to go on (--skip-bad). */
static bool bad_line(submit_run_t *run, const char *src, uint64_t lineno,
                     const char *reason) {
        if (run->opts->skip_bad) {
                sq_cmd_say(run->cmd, &run->prog,
                           "%s:%" PRIu64 ": skipped bad task: %s", src, lineno,
                           reason);
                run->skipped++;
                return true;
        }
        sq_cmd_say(run->cmd, &run->prog,
                   "%s:%" PRIu64 ": bad task: %s (stopped after %" PRIu64
                   " %s; --skip-bad skips bad lines)",
                   src, lineno, reason, run->queued,
                   sq_cli_plural(run->queued, "task", "tasks"));
        snprintf(run->stopped, sizeof(run->stopped),
                 "stopped at the bad task on %s:%" PRIu64, src, lineno);
        return false;
}

/* The JSON-lines loop. @returns an exit code. */
static int run_json_lines(submit_run_t *run) {
        const submit_opts_t *opts = run->opts;
        const char *src           = opts->file ? opts->file : "stdin";
        swarmq_task_t *task;
        FILE *fp   = NULL;
        char *line = NULL;
        char errstr[512], reason[640];
        size_t cap = 0, len = 0;
        uint64_t lineno = 0;
        int r, ret = SQ_CLI_EXIT_OK;

        fp = opts->file ? fopen(opts->file, "r") : stdin;
        if (!fp) {
                sq_cmd_say(run->cmd, NULL, "cannot open %s: %s", opts->file,
                           strerror(errno));
                snprintf(run->stopped, sizeof(run->stopped), "cannot open %s",
                         opts->file);
                ret = SQ_CLI_EXIT_USAGE;
                goto done;
        }
        while (!run->interrupted) {
                r = sq_cli_read_line(fp, &line, &cap, &len, MAX_LINE_LEN);
                if (r == 0)
                        break;
                if (r == -2) {
                        if (errno == EINTR && sq_cli_interrupted()) {
                                run->interrupted = true;
                                break;
                        }
                        sq_cmd_say(run->cmd, &run->prog, "cannot read %s: %s",
                                   src, strerror(errno));
                        snprintf(run->stopped, sizeof(run->stopped),
                                 "cannot read %s", src);
                        ret = SQ_CLI_EXIT_USAGE;
                        goto done;
                }
                lineno++;
                if (r == -1) {
                        snprintf(reason, sizeof(reason),
                                 "line longer than %d bytes", MAX_LINE_LEN);
                        if (bad_line(run, src, lineno, reason))
                                continue;
                        ret = SQ_CLI_EXIT_USAGE;
                        goto done;
                }
                if (is_blank(line, len))
                        continue;
                task = swarmq_task_new_from_json(line, len, errstr,
                                                 sizeof(errstr));
                if (!task) {
                        if (bad_line(run, src, lineno, errstr))
                                continue;
                        ret = SQ_CLI_EXIT_USAGE;
                        goto done;
                }
                switch (submit_task(run, task, errstr, sizeof(errstr))) {
                case SQ_OK:
                        break;
                case SQ_ERR_ENCODE:
                        if (bad_line(run, src, lineno, errstr))
                                break;
                        ret = SQ_CLI_EXIT_USAGE;
                        goto done;
                default:
                        sq_cmd_say(run->cmd, &run->prog, "%s:%" PRIu64 ": %s",
                                   src, lineno, errstr);
                        snprintf(run->stopped, sizeof(run->stopped),
                                 "stopped at %s:%" PRIu64 ": %s", src, lineno,
                                 errstr);
                        ret = SQ_CLI_EXIT_INCOMPLETE;
                        goto done;
                }
        }

done:
        sq_free(line);
        if (fp && fp != stdin)
                fclose(fp);
        return ret;
}

/* Waits for outstanding deliveries: at most --flush-timeout-ms, and a
 * signal arriving during the flush cuts it short. */
static uint64_t flush_all(submit_run_t *run) {
        int64_t deadline = sq_clock_us() + run->opts->flush_timeout_ms * 1000;
        int signals      = sq_cli_interrupted();
        swarmq_producer_counts_t counts;
        int64_t left;

        for (;;) {
                left = (deadline - sq_clock_us()) / 1000;
                swarmq_producer_flush(run->p,
                                      (int)SQ_MAX(0, SQ_MIN(left, 100)));
                swarmq_producer_counts(run->p, &counts);
                sq_progress_update(&run->prog, counts.delivered, false);
                if (!counts.in_flight || left <= 0 ||
                    sq_cli_interrupted() > signals)
                        break;
        }
        if (sq_cli_interrupted())
                run->interrupted = true;
        return counts.failed + counts.in_flight;
}

/* Says what was not delivered, then the summary: one line on stderr (not
 * with -q) or one JSON object on stdout (--json), ending with the exit
 * code's reason whenever it is not 0, so the summary never reads as a
 * success of a run that exits 1 or 2.
 * @param ret the exit code so far. @returns the final exit code. */
static int print_summary(submit_run_t *run, uint64_t undelivered, int ret) {
        const submit_opts_t *opts = run->opts;
        swarmq_producer_counts_t counts;
        const char *last, *unit;
        char why[700] = "", ids[300] = "";
        uint64_t unsent = 0;
        double secs;

        swarmq_producer_counts(run->p, &counts);
        secs = (double)(sq_clock_us() - run->start_us) / 1e6;
        last = swarmq_producer_last_error(run->p);
        if (undelivered)
                sq_cmd_say(run->cmd, NULL,
                           "%" PRIu64 " of %" PRIu64 " not delivered (%" PRIu64
                           " failed, %" PRIu64 " still in flight)%s%s",
                           undelivered, counts.submitted, counts.failed,
                           counts.in_flight, last ? "; last error: " : "",
                           last ? last : "");
        if (undelivered && ret == SQ_CLI_EXIT_OK)
                ret = SQ_CLI_EXIT_INCOMPLETE;
        if (run->interrupted && ret == SQ_CLI_EXIT_OK)
                ret = SQ_CLI_EXIT_INCOMPLETE;
        /* Generated tasks never written because the run stopped. */
        if (run->prefix && !opts->raw_value && opts->count > run->queued)
                unsent = opts->count - run->queued;

        if (run->interrupted)
                snprintf(why, sizeof(why), "interrupted");
        else if (run->stopped[0])
                snprintf(why, sizeof(why), "%s", run->stopped);
        else if (undelivered)
                snprintf(why, sizeof(why), "%" PRIu64 " not delivered",
                         undelivered);
        if (run->prefix && run->queued)
                snprintf(ids, sizeof(ids),
                         run->queued == 1 ? ", id %s-%06" PRIu64
                                          : ", ids %s-%06" PRIu64
                                            "..%s-%06" PRIu64,
                         run->prefix, (uint64_t)1, run->prefix, run->queued);

        if (opts->json) {
                json_t *obj = json_object();
                json_object_set_new(obj, "submitted",
                                    json_integer((json_int_t)counts.submitted));
                json_object_set_new(
                    obj, "delivered",
                    json_integer((json_int_t)(counts.submitted - undelivered)));
                json_object_set_new(obj, "failed",
                                    json_integer((json_int_t)undelivered));
                json_object_set_new(obj, "not_submitted",
                                    json_integer((json_int_t)unsent));
                json_object_set_new(obj, "bad_lines_skipped",
                                    json_integer((json_int_t)run->skipped));
                json_object_set_new(obj, "elapsed_ms",
                                    json_integer((json_int_t)(secs * 1000)));
                json_object_set_new(obj, "interrupted",
                                    json_boolean(run->interrupted));
                json_object_set_new(obj, "exit_code", json_integer(ret));
                if (why[0])
                        json_object_set_new(obj, "stopped", json_string(why));
                json_object_set_new(obj, "ids",
                                    run->ids ? json_incref(run->ids)
                                             : json_array());
                sq_cmd_print_json(obj, JSON_COMPACT);
                return ret;
        }
        if (run->cmd->cli->quiet)
                return ret;
        unit =
            opts->raw_value
                ? sq_cli_plural(counts.submitted, "raw record", "raw records")
                : sq_cli_plural(counts.submitted, "task", "tasks");
        fprintf(stderr,
                "submitted %" PRIu64 " %s in %.2f s (%.0f tasks/s), %" PRIu64
                " failed",
                counts.submitted, unit, secs,
                secs > 0 ? (double)counts.submitted / secs : 0.0, undelivered);
        if (run->skipped)
                fprintf(stderr, ", %" PRIu64 " %s skipped", run->skipped,
                        sq_cli_plural(run->skipped, "bad line", "bad lines"));
        if (unsent)
                fprintf(stderr, ", %" PRIu64 " not submitted", unsent);
        fprintf(stderr, "%s", ids);
        if (ret != SQ_CLI_EXIT_OK)
                fprintf(stderr, " (exit %d: %s)", ret,
                        why[0] ? why : "incomplete");
        fprintf(stderr, "\n");
        return ret;
}

/** @brief Runs `submit`; see submit_usage(). */
int sq_cli_submit(const sq_cli_t *cli, int argc, char **argv) {
        submit_opts_t opts;
        submit_run_t run;
        sq_cmd_t cmd;
        char errstr[512];
        uint64_t undelivered;
        int ret;

        sq_cmd_init(&cmd, cli, "submit", submit_usage);
        memset(&opts, 0, sizeof(opts));
        opts.count            = 1;
        opts.type             = "noop";
        opts.priority         = SWARMQ_PRIORITY_NORMAL;
        opts.payload_size     = -1;
        opts.flush_timeout_ms = 30000;
        memset(&run, 0, sizeof(run));
        run.cmd  = &cmd;
        run.opts = &opts;

        ret = parse_opts(&cmd, &opts, argc, argv);
        if (ret != SQ_CMD_CONTINUE)
                goto done;
        ret = sq_cmd_ready(&cmd, false);
        if (ret != SQ_CLI_EXIT_OK)
                goto done;
        if (opts.ids_out) {
                run.ids_fp = fopen(opts.ids_out, "w");
                if (!run.ids_fp) {
                        sq_cmd_say(&cmd, NULL, "cannot write %s: %s",
                                   opts.ids_out, strerror(errno));
                        ret = SQ_CLI_EXIT_USAGE;
                        goto done;
                }
        }
        ret = producer_open(&run);
        if (ret != SQ_CLI_EXIT_OK)
                goto done;
        if (opts.json)
                run.ids = json_array();

        sq_progress_init(
            &run.prog, !cli->quiet,
            opts.file || opts.use_stdin || opts.raw_value ? 0 : opts.count,
            "tasks");
        run.start_us = run.prog.start_us;
        if (opts.raw_value) {
                const char *key = opts.key;
                if (swarmq_producer_send_raw(run.p, key, key ? strlen(key) : 0,
                                             opts.raw_value,
                                             strlen(opts.raw_value), errstr,
                                             sizeof(errstr)) != SWARMQ_OK) {
                        sq_cmd_say(&cmd, NULL, "%s", errstr);
                        snprintf(run.stopped, sizeof(run.stopped),
                                 "not sent: %s", errstr);
                        ret = SQ_CLI_EXIT_INCOMPLETE;
                } else {
                        run.queued = 1;
                }
        } else if (opts.file || opts.use_stdin) {
                ret = run_json_lines(&run);
        } else {
                ret = run_generated(&run);
        }

        undelivered = flush_all(&run);
        sq_progress_clear(&run.prog);
        ret = print_summary(&run, undelivered, ret);

done:
        if (run.ids_fp && fclose(run.ids_fp) != 0) {
                sq_cmd_say(&cmd, NULL, "cannot write %s: %s", opts.ids_out,
                           strerror(errno));
                if (ret == SQ_CLI_EXIT_OK)
                        ret = SQ_CLI_EXIT_INCOMPLETE;
        }
        swarmq_producer_destroy(run.p);
        json_decref(run.ids);
        if (run.prefix && run.prefix != opts.id_prefix)
                sq_free((char *)run.prefix);
        sq_cmd_term(&cmd);
        sq_free(opts.caps);
        sq_free(opts.headers);
        return ret;
}
