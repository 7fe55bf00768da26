/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_wait.c: `swarmq-producer wait`: reads the results topic until the
 * expected tasks have results, then prints a summary.
 *
 * DESIGN
 *   A plain librdkafka consumer in a throwaway group (unique id, no
 *   commits) subscribed to the results topic, from the beginning unless
 *   --from-end. The main thread is the only thread that polls; every
 *   record is decoded with the core codec and counted: total records,
 *   distinct task ids (sq_strmap_t id -> count), per status, per agent.
 *   Expected ids (--id, --ids-file) are kept in file order in an array,
 *   with a map id -> arrived for O(1) lookup, so the missing ones are
 *   reported in the order the user gave them. Undecodable records are
 *   warned about with their coordinates and skipped. The loop ends when
 *   the expectation is met, at --timeout-ms, or on SIGINT.
 */
#include "command.h"

#include "log.h"
#include "task.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ID_LEN      4096 /* longest line accepted in --ids-file */
#define MISSING_SHOWN   20   /* missing ids listed in the summary */
#define POLL_TIMEOUT_MS 100

enum {
        OPT_ID = 256,
        OPT_IDS_FILE,
        OPT_TIMEOUT,
        OPT_FROM_END,
        OPT_JSON,
        OPT_PRINT,
};

static const struct option longopts[] = {
    {"count", required_argument, NULL, 'n'},
    {"id", required_argument, NULL, OPT_ID},
    {"ids-file", required_argument, NULL, OPT_IDS_FILE},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
    {"from-end", no_argument, NULL, OPT_FROM_END},
    {"json", no_argument, NULL, OPT_JSON},
    {"print", no_argument, NULL, OPT_PRINT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct wait_opts_s {
        uint64_t count; /* distinct task ids to wait for; 0 = not given */
        char **ids;     /* expected ids, in order (owned, sq_free each) */
        size_t ids_cnt;
        sq_strmap_t *expected; /* expected id -> results seen (borrowed) */
        const char *ids_file;
        int64_t timeout_ms;
        bool from_end;
        bool json;
        bool print;
} wait_opts_t;

typedef struct wait_state_s {
        sq_strmap_t seen;     /* task id -> results seen */
        sq_strmap_t expected; /* expected id -> results seen */
        sq_strmap_t agents;   /* agent name -> results */
        uint64_t total;
        uint64_t distinct;
        uint64_t arrived; /* expected ids with at least one result */
        uint64_t status_cnt[SQ_STATUS_CNT];
        uint64_t undecodable;
        uint64_t other; /* results of ids not asked for (--id/--ids-file) */
        sq_progress_t prog;
        int64_t start_us;
        bool interrupted;
        bool timed_out;
        char denied[512]; /* a missing ACL: the wait ends at once */
} wait_state_t;

/* clang-format off: the help text is laid out as it prints. */
static void wait_usage(FILE *fp) {
        fprintf(
            fp,
            "Usage: " SQ_CLI_PROG " [global options] wait [options]\n"
            "\n"
            "Read the results topic (from the beginning, in a throwaway "
            "consumer group\n"
            "that commits nothing) until the expected tasks have results, then "
            "print\n"
            "a summary on stdout: total results, distinct task ids, "
            "duplicates, counts\n"
            "per status and per agent, and the missing ids (first 20).\n"
            "\n"
            "What to wait for (at least one; all given conditions must hold):\n"
            "  -n, --count N          N distinct task ids have results\n"
            "      --id ID            this task id has a result (repeatable)\n"
            "      --ids-file FILE    every id in FILE (one per line, as "
            "written by\n"
            "                         'submit --ids-out') has a result\n"
            "\n"
            "Options:\n"
            "      --timeout-ms MS    give up after MS (default 60000)\n"
            "      --from-end         only see results written from now on\n"
            "      --json             print the summary as one JSON object\n"
            "      --print            print each counted result as a JSON line "
            "on stdout\n"
            "  -h, --help             print this help and exit\n"
            "\n"
            "With --id or --ids-file, only the results of those ids are "
            "counted and\n"
            "printed (with --count too). A result for a task id already seen "
            "counts\n"
            "as a duplicate (total vs distinct). Exit code 0 when everything "
            "expected arrived, 1 on "
            "timeout or\n"
            "SIGINT (the missing ids are listed), 2 on a usage error, 3 when "
            "no broker\n"
            "answered.\n");
}
/* clang-format on */

/* Appends one expected id (copied), dropping repeats. */
static void add_id(wait_opts_t *opts, const char *id) {
        bool created;

        sq_strmap_put(opts->expected, id, &created);
        if (!created)
                return;
        opts->ids =
            sq_realloc(opts->ids, (opts->ids_cnt + 1) * sizeof(*opts->ids));
        opts->ids[opts->ids_cnt++] = sq_strdup(id);
}

/* Reads --ids-file. @returns SQ_CLI_EXIT_OK or an exit code. */
static int load_ids_file(const sq_cmd_t *cmd, wait_opts_t *opts) {
        FILE *fp     = fopen(opts->ids_file, "r");
        char *line   = NULL;
        size_t cap   = 0, len, start;
        uint64_t lno = 0;
        int r, ret = SQ_CLI_EXIT_OK;

        if (!fp) {
                sq_cmd_say(cmd, NULL, "cannot open %s: %s", opts->ids_file,
                           strerror(errno));
                return SQ_CLI_EXIT_USAGE;
        }
        while ((r = sq_cli_read_line(fp, &line, &cap, &len, MAX_ID_LEN)) != 0) {
                lno++;
                if (r < 0) {
                        sq_cmd_say(cmd, NULL, "%s:%" PRIu64 ": %s",
                                   opts->ids_file, lno,
                                   r == -1 ? "line too long for a task id"
                                           : strerror(errno));
                        ret = SQ_CLI_EXIT_USAGE;
                        goto done;
                }
                while (len > 0 &&
                       (line[len - 1] == ' ' || line[len - 1] == '\t'))
                        line[--len] = '\0';
                for (start = 0;
                     start < len && (line[start] == ' ' || line[start] == '\t');
                     start++)
                        ;
                if (start < len)
                        add_id(opts, line + start);
        }

done:
        sq_free(line);
        fclose(fp);
        return ret;
}

/* One wait option (sq_cmd_opt_cb_t). */
static int wait_opt(const sq_cmd_t *cmd, void *optsp, int opt, char *arg,
                    const char *word) {
        wait_opts_t *opts = optsp;
        int64_t v;

        (void)word;
        switch (opt) {
        case 'n':
                if (!sq_cmd_int_arg(cmd, "--count", arg, 1, INT64_MAX,
                                    "a positive number", &v))
                        return SQ_CLI_EXIT_USAGE;
                opts->count = (uint64_t)v;
                break;
        case OPT_ID:
                if (!sq_cmd_word_arg(cmd, "--id", arg))
                        return SQ_CLI_EXIT_USAGE;
                add_id(opts, arg);
                break;
        case OPT_IDS_FILE:
                opts->ids_file = arg;
                break;
        case OPT_TIMEOUT:
                if (!sq_cmd_int_arg(
                        cmd, "--timeout-ms", arg, 1, INT64_MAX / 1000,
                        "a positive number of milliseconds", &opts->timeout_ms))
                        return SQ_CLI_EXIT_USAGE;
                break;
        case OPT_FROM_END:
                opts->from_end = true;
                break;
        case OPT_JSON:
                opts->json = true;
                break;
        default:
                sq_assert(opt == OPT_PRINT);
                opts->print = true;
                break;
        }
        return SQ_CMD_CONTINUE;
}

/* The options, then --ids-file. @returns -1 to go on, or an exit code. */
static int parse_opts(const sq_cmd_t *cmd, wait_opts_t *opts, int argc,
                      char **argv) {
        int ret =
            sq_cmd_parse(cmd, argc, argv, ":n:h", longopts, wait_opt, opts);

        if (ret != SQ_CMD_CONTINUE)
                return ret;
        if (opts->ids_file) {
                ret = load_ids_file(cmd, opts);
                if (ret != SQ_CLI_EXIT_OK)
                        return ret;
        }
        if (!opts->count && !opts->ids_cnt && !opts->ids_file)
                return sq_cli_usage_error(cmd->name,
                                          "nothing to wait for: give "
                                          "--count N, --id ID or --ids-file "
                                          "FILE");
        return SQ_CMD_CONTINUE;
}

/* Creates the consumer, checks that a broker answers, subscribes.
 * @returns SQ_CLI_EXIT_OK or an exit code, with a message printed. */
static int consumer_open(const sq_cmd_t *cmd, const wait_opts_t *opts,
                         rd_kafka_t **rkp) {
        const sq_cli_t *cli          = cmd->cli;
        const char *const settings[] = {
            "auto.offset.reset", opts->from_end ? "latest" : "earliest",
            "allow.auto.create.topics", "true", NULL};
        rd_kafka_topic_partition_list_t *topics = NULL;
        rd_kafka_t *rk                          = NULL;
        rd_kafka_resp_err_t err;
        int ret;

        if ((ret = sq_cmd_consumer_new(cmd, settings, &rk)) != SQ_CLI_EXIT_OK)
                return ret;
        topics = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(topics, cli->topic_results,
                                          RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(rk, topics);
        if (err) {
                sq_cmd_say(cmd, NULL, "cannot subscribe to %s: %s",
                           cli->topic_results, rd_kafka_err2str(err));
                ret = SQ_CLI_EXIT_BROKER;
                goto done;
        }
        *rkp = rk;
        rk   = NULL;
        ret  = SQ_CLI_EXIT_OK;

done:
        if (topics)
                rd_kafka_topic_partition_list_destroy(topics);
        if (rk)
                rd_kafka_destroy(rk);
        return ret;
}

static bool expectation_met(const wait_opts_t *opts, const wait_state_t *st) {
        return (!opts->count || st->distinct >= opts->count) &&
               st->arrived == opts->ids_cnt;
}

/* Counts one decoded result; prints it with --print. With --id or
 * --ids-file, only the results of those ids are counted and printed: the
 * others are only tallied in st->other. */
static void count_result(const wait_opts_t *opts, wait_state_t *st,
                         const sq_result_t *result) {
        uint64_t *seen, *exp;
        bool created;

        exp = sq_strmap_get(&st->expected, result->task_id);
        if (opts->ids_cnt && !exp) {
                st->other++;
                return;
        }
        st->total++;
        seen = sq_strmap_put(&st->seen, result->task_id, &created);
        (*seen)++;
        if (created)
                st->distinct++;
        if (exp && (*exp)++ == 0)
                st->arrived++;
        if ((unsigned)result->status < SQ_STATUS_CNT)
                st->status_cnt[result->status]++;
        (*sq_strmap_put(&st->agents, result->agent ? result->agent : "(none)",
                        NULL))++;
        if (opts->print) {
                char *json = sq_codec_result_to_json(result);
                sq_progress_clear(&st->prog);
                printf("%s\n", json);
                sq_free(json);
        }
}

/* Handles one consumer message or error event. */
static void handle_message(const sq_cmd_t *cmd, const wait_opts_t *opts,
                           wait_state_t *st, const rd_kafka_message_t *rkm) {
        sq_result_t *result = NULL;
        char errstr[512];

        if (rkm->err) {
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        return;
                /* A topic that does not exist yet is normal before the
                 * first result; librdkafka keeps trying. */
                if (rkm->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                    rkm->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
                        SQ_LOG(SQ_LOG_DEBUG, "WAIT",
                               "results topic not "
                               "there yet");
                        return;
                }
                /* A missing ACL does not heal by waiting: say which
                 * (the group is a throwaway one: its prefix). */
                if (sq_kafka_acl_denied(rkm->err, "Read",
                                        rkm->rkt ? rd_kafka_topic_name(rkm->rkt)
                                                 : cmd->cli->topic_results,
                                        SQ_CLI_PROG "-wait-* (a prefixed ACL)",
                                        NULL, st->denied, sizeof(st->denied)))
                        return;
                sq_progress_clear(&st->prog);
                SQ_LOG(SQ_LOG_WARNING, "WAIT", "consumer error: %s",
                       rd_kafka_message_errstr(rkm));
                return;
        }
        if (sq_codec_decode_result(cmd->codec, rkm->payload, rkm->len, &result,
                                   errstr, sizeof(errstr)) != SQ_OK) {
                sq_cmd_warn_undecodable(cmd, &st->prog, ++st->undecodable,
                                        rd_kafka_topic_name(rkm->rkt),
                                        rkm->partition, rkm->offset, errstr);
                return;
        }
        count_result(opts, st, result);
        sq_result_destroy(result);
}

static int cmp_entry(const void *a, const void *b) {
        const sq_strmap_entry_t *ea = a, *eb = b;
        return strcmp(ea->key, eb->key);
}

/* The map's entries sorted by key (caller frees the array, not the keys). */
static sq_strmap_entry_t *sorted_entries(const sq_strmap_t *map) {
        sq_strmap_entry_t *arr = sq_calloc(map->cnt + 1, sizeof(*arr));
        size_t i, n = 0;

        for (i = 0; i < map->cap; i++) {
                if (map->slots[i].key)
                        arr[n++] = map->slots[i];
        }
        qsort(arr, n, sizeof(*arr), cmp_entry);
        return arr;
}

static void print_summary_text(const wait_opts_t *opts, const wait_state_t *st,
                               double secs) {
        sq_strmap_entry_t *agents = sorted_entries(&st->agents);
        uint64_t missing = opts->ids_cnt - st->arrived, shown = 0;
        size_t i;
        int s;

        printf(
            "results: %" PRIu64 " total, %" PRIu64 " distinct task %s, %" PRIu64
            " %s, %" PRIu64 " undecodable",
            st->total, st->distinct, sq_cli_plural(st->distinct, "id", "ids"),
            st->total - st->distinct,
            sq_cli_plural(st->total - st->distinct, "duplicate", "duplicates"),
            st->undecodable);
        if (opts->ids_cnt)
                printf(" (%" PRIu64 " of other tasks not counted)", st->other);
        printf("\n");
        printf("status:");
        for (s = 0; s < SQ_STATUS_CNT; s++)
                printf(" %s=%" PRIu64, sq_status_name((sq_status_t)s),
                       st->status_cnt[s]);
        printf("\nagents:");
        for (i = 0; i < st->agents.cnt; i++)
                printf(" %s=%" PRIu64, agents[i].key, agents[i].value);
        printf("%s\n", st->agents.cnt ? "" : " (none)");
        if (opts->count)
                printf("count: %" PRIu64 " of %" PRIu64 " distinct task ids\n",
                       SQ_MIN(st->distinct, opts->count), opts->count);
        if (opts->ids_cnt) {
                printf("expected: %zu, arrived: %" PRIu64 ", missing: %" PRIu64
                       "\n",
                       opts->ids_cnt, st->arrived, missing);
                if (missing) {
                        printf(
                            "missing ids (first %" PRIu64 " of %" PRIu64 "):",
                            SQ_MIN(missing, (uint64_t)MISSING_SHOWN), missing);
                        for (i = 0; i < opts->ids_cnt && shown < MISSING_SHOWN;
                             i++) {
                                if (*sq_strmap_get(&st->expected, opts->ids[i]))
                                        continue;
                                printf(" %s", opts->ids[i]);
                                shown++;
                        }
                        printf("\n");
                }
        }
        printf("elapsed: %.2f s, %s\n", secs,
               expectation_met(opts, st)
                   ? "complete"
                   : (st->interrupted ? "interrupted" : "timed out"));
        sq_free(agents);
}

static void print_summary_json(const wait_opts_t *opts, const wait_state_t *st,
                               double secs) {
        json_t *root = json_object(), *status = json_object(),
               *agents = json_object(), *missing = json_array();
        uint64_t shown = 0;
        size_t i;
        int s;

        for (s = 0; s < SQ_STATUS_CNT; s++)
                json_object_set_new(
                    status, sq_status_name((sq_status_t)s),
                    json_integer((json_int_t)st->status_cnt[s]));
        for (i = 0; i < st->agents.cap; i++) {
                if (st->agents.slots[i].key)
                        json_object_set_new(
                            agents, st->agents.slots[i].key,
                            json_integer(
                                (json_int_t)st->agents.slots[i].value));
        }
        for (i = 0; i < opts->ids_cnt && shown < MISSING_SHOWN; i++) {
                if (*sq_strmap_get(&st->expected, opts->ids[i]))
                        continue;
                json_array_append_new(missing, json_string(opts->ids[i]));
                shown++;
        }
        json_object_set_new(root, "total", json_integer((json_int_t)st->total));
        json_object_set_new(root, "distinct",
                            json_integer((json_int_t)st->distinct));
        json_object_set_new(
            root, "duplicates",
            json_integer((json_int_t)(st->total - st->distinct)));
        json_object_set_new(root, "undecodable",
                            json_integer((json_int_t)st->undecodable));
        json_object_set_new(root, "other_tasks",
                            json_integer((json_int_t)st->other));
        json_object_set_new(root, "status", status);
        json_object_set_new(root, "agents", agents);
        json_object_set_new(root, "count",
                            json_integer((json_int_t)opts->count));
        json_object_set_new(root, "expected",
                            json_integer((json_int_t)opts->ids_cnt));
        json_object_set_new(root, "arrived",
                            json_integer((json_int_t)st->arrived));
        json_object_set_new(
            root, "missing_count",
            json_integer((json_int_t)(opts->ids_cnt - st->arrived)));
        json_object_set_new(root, "missing", missing);
        json_object_set_new(root, "complete",
                            json_boolean(expectation_met(opts, st)));
        json_object_set_new(root, "interrupted", json_boolean(st->interrupted));
        json_object_set_new(root, "elapsed_ms",
                            json_integer((json_int_t)(secs * 1000)));
        sq_cmd_print_json(root, JSON_COMPACT | JSON_SORT_KEYS);
}

/** @brief Runs `wait`; see wait_usage(). */
int sq_cli_wait(const sq_cli_t *cli, int argc, char **argv) {
        wait_opts_t opts;
        wait_state_t st;
        sq_cmd_t cmd;
        rd_kafka_t *rk = NULL;
        rd_kafka_message_t *rkm;
        int64_t deadline;
        size_t i;
        int ret;

        sq_cmd_init(&cmd, cli, "wait", wait_usage);
        memset(&opts, 0, sizeof(opts));
        memset(&st, 0, sizeof(st));
        opts.timeout_ms = 60000;
        opts.expected   = &st.expected;
        sq_strmap_init(&st.seen);
        sq_strmap_init(&st.expected);
        sq_strmap_init(&st.agents);
        st.start_us = sq_clock_us();
        deadline    = st.start_us; /* set after parsing */

        ret = parse_opts(&cmd, &opts, argc, argv);
        if (ret != SQ_CMD_CONTINUE)
                goto done;
        ret = sq_cmd_ready(&cmd, true);
        if (ret != SQ_CLI_EXIT_OK)
                goto done;
        deadline = sq_clock_us() + opts.timeout_ms * 1000;
        ret      = consumer_open(&cmd, &opts, &rk);
        if (ret != SQ_CLI_EXIT_OK)
                goto done;

        sq_progress_init(&st.prog, !cli->quiet,
                         opts.ids_cnt ? opts.ids_cnt : opts.count, "results");
        while (!expectation_met(&opts, &st)) {
                if (sq_cli_interrupted()) {
                        st.interrupted = true;
                        break;
                }
                if (sq_clock_us() >= deadline) {
                        st.timed_out = true;
                        break;
                }
                if (*st.denied)
                        break;
                rkm = rd_kafka_consumer_poll(rk, POLL_TIMEOUT_MS);
                if (rkm) {
                        handle_message(&cmd, &opts, &st, rkm);
                        rd_kafka_message_destroy(rkm);
                }
                sq_progress_update(
                    &st.prog, opts.ids_cnt ? st.arrived : st.distinct, false);
        }
        sq_progress_update(&st.prog, opts.ids_cnt ? st.arrived : st.distinct,
                           true);
        sq_progress_clear(&st.prog);
        fflush(stdout);

        if (opts.json)
                print_summary_json(&opts, &st,
                                   (double)(sq_clock_us() - st.start_us) / 1e6);
        else if (!cli->quiet)
                print_summary_text(&opts, &st,
                                   (double)(sq_clock_us() - st.start_us) / 1e6);
        ret = expectation_met(&opts, &st) ? SQ_CLI_EXIT_OK
                                          : SQ_CLI_EXIT_INCOMPLETE;
        if (ret != SQ_CLI_EXIT_OK)
                sq_cmd_say(&cmd, NULL,
                           "%s with %" PRIu64 " of %" PRIu64
                           " expected results missing",
                           *st.denied       ? st.denied
                           : st.interrupted ? "interrupted"
                                            : "timed out",
                           opts.ids_cnt
                               ? opts.ids_cnt - st.arrived
                               : opts.count - SQ_MIN(opts.count, st.distinct),
                           opts.ids_cnt ? (uint64_t)opts.ids_cnt : opts.count);

done:
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        sq_cmd_term(&cmd);
        for (i = 0; i < opts.ids_cnt; i++)
                sq_free(opts.ids[i]);
        sq_free(opts.ids);
        sq_strmap_term(&st.seen);
        sq_strmap_term(&st.expected);
        sq_strmap_term(&st.agents);
        return ret;
}
