/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_replay.c: `swarmq-producer replay`: prints the records of a swarmq
 * topic (events by default, results, or any topic of swarmq records) as
 * JSON lines on stdout, from a chosen start to a chosen end.
 *
 * DESIGN
 *   The records come from the shared topic reader (cli_reader.c): no
 *   consumer group, nothing committed, each partition from its start
 *   (the beginning, --offset, --since) to its end (the high watermark when
 *   replay started, --until, or never with --follow). Each record is
 *   decoded with the core codec and rendered with
 *   sq_codec_{event,result,task}_to_json(); Kafka coordinates are spliced
 *   into that object with --with-coordinates. Undecodable records are
 *   warned about with their coordinates (and printed as an error object
 *   with --include-undecodable), never fatal. Records of one partition
 *   come out in order; partitions are interleaved.
 */
#include "cli_reader.h"

#include "config.h"
#include "event_types.h"
#include "topics.h"

#include "log.h"
#include "task.h"

#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

#define CMD "replay"

/* What the topic holds. */
typedef enum {
        KIND_EVENTS,  /* default: the events topic */
        KIND_RESULTS, /* --results */
        KIND_ANY,     /* --topic: chosen per record by its schema id */
} replay_kind_t;

typedef struct replay_opts_s {
        sq_reader_opts_t rd; /* topic, start and end; rd.offsets owned
                              * (sq_free()) */
        replay_kind_t kind;
        bool from_beginning;
        uint64_t max; /* 0: no limit */
        sq_strmap_t task_ids;
        sq_strmap_t types;
        bool with_coords;
        bool include_undecodable;
        int topics_given;     /* --events, --results, --topic */
        const char *workflow; /* --workflow: its tree instead */
        bool json;            /* --json (with --workflow) */
} replay_opts_t;

typedef struct replay_state_s {
        const sq_cmd_t *cmd;
        const replay_opts_t *opts;
        sq_reader_t reader;
        char *topic_json; /* the topic name as a JSON string (owned) */
        uint64_t printed;
        uint64_t undecodable;
} replay_state_t;

/* clang-format off: the help text is laid out as it prints. */
static void replay_usage(FILE *fp) {
        size_t i;

        fprintf(
            fp,
            "Usage: " SQ_CLI_PROG " [global options] replay [options]\n"
            "\n"
            "Print the records of a swarmq topic as JSON lines on stdout: "
            "the lifecycle\n"
            "events (default), the results, or any topic of swarmq records. "
            "Reads the\n"
            "partitions directly (no consumer group, nothing committed).\n"
            "\n"
            "Topic (one of):\n"
            "      --events           the events topic (default; global "
            "--topic-events)\n"
            "      --results          the results topic (global "
            "--topic-results)\n"
            "      --topic NAME       any topic of swarmq records: events, "
            "results or\n"
            "                         tasks, told apart by their schema id\n"
            "\n"
            "Or one workflow (docs/workflows.md):\n"
            "      --workflow ID      its tree: each chain, group, chord and "
            "task, and\n"
            "                         how each task ended (its last result: "
            "status,\n"
            "                         attempts, instance, duration, error), "
            "from its\n"
            "                         partition of the workflows topic and "
            "the whole\n"
            "                         results topic; exit 1 when the "
            "workflows topic\n"
            "                         has no record of it\n"
            "                         (the workflows topic: global "
            "--topic-workflows)\n"
            "      --json             the tree as one JSON object instead "
            "of text\n"
            "\n"
            "Start (one of):\n"
            "      --from-beginning   every partition from its first record "
            "(default)\n"
            "      --offset N         every partition from offset N\n"
            "      --offset P:N       partition P from offset N (repeatable); "
            "without a\n"
            "                         plain --offset N only the partitions "
            "named are\n"
            "                         read; with one, the others start at N\n"
            "      --since TIME       every partition from its first record "
            "stamped at\n"
            "                         or after TIME (needs a broker that "
            "implements\n"
            "                         timestamp lookup: Apache Kafka does, "
            "librdkafka's\n"
            "                         mock cluster does not)\n"
            "Offsets outside a partition's records are clamped to its "
            "first or next one.\n"
            "\n"
            "End (by default: the end each partition had when replay "
            "started, so\n"
            "replaying a finished run terminates):\n"
            "      --follow           keep reading new records until SIGINT\n"
            "      --until TIME       stop each partition at its first record "
            "stamped at\n"
            "                         or after TIME (not printed); with "
            "--follow also\n"
            "                         when TIME has passed and it has no "
            "more records\n"
            "      --max N            stop after printing N records\n"
            "\n"
            "Filters:\n"
            "      --task-id ID       only records of this task "
            "(repeatable)\n"
            "      --type TYPE        only events of this type (repeatable; "
            "not with\n"
            "                         --results), one of:\n");
        for (i = 0; i < sq_event_types_cnt; i++)
                fprintf(fp, "                           %-18s %s\n",
                        sq_event_types[i].name, sq_event_types[i].meaning);
        fprintf(
            fp,
            "\n"
            "Output:\n"
            "      --with-coordinates add \"_topic\", \"_partition\", "
            "\"_offset\" and\n"
            "                         \"_timestamp\" (record time, epoch "
            "millis) keys\n"
            "      --include-undecodable\n"
            "                         print a record that does not decode as\n"
            "                         {\"topic\":..,\"partition\":..,"
            "\"offset\":..,\"error\":..}\n"
            "                         (it is always warned about on stderr)\n"
            "  -h, --help             print this help and exit\n"
            "\n"
            "TIME is ISO 8601 with a zone, 2026-11-24T10:00:00Z, "
            "2026-11-24T10:00:00.250Z\n"
            "or 2026-11-24T11:00:00+01:00, or epoch milliseconds "
            "(1795514400000).\n"
            "\n"
            "Order: records of one partition come out in offset order; "
            "partitions are\n"
            "interleaved, so there is no global order (sort on \"at\" or "
            "\"_timestamp\"\n"
            "if you need one). A progress line is drawn on stderr when it "
            "is a\n"
            "terminal and stdout is not (not with -q).\n"
            "\n"
            "Exit code 0 when the end was reached (or SIGINT with "
            "--follow), 1 when\n"
            "interrupted before the end, 2 on a usage error, 3 on a broker "
            "error\n"
            "(no broker answered, no such topic, no timestamp lookup).\n"
            "\n"
            "Examples:\n"
            "  " SQ_CLI_PROG " -b localhost:9092 replay --task-id t-1\n"
            "  " SQ_CLI_PROG " -b localhost:9092 replay --results \\\n"
            "      --since 2026-11-24T10:00:00Z --with-coordinates\n"
            "  " SQ_CLI_PROG " -b localhost:9092 replay --follow --type "
            "dead_lettered\n");
}
/* clang-format on */

/* ------------------------------------------------------------------ */
/* Options */

/* Parses --offset N or --offset P:N. @returns -1 to go on, or an exit
 * code. */
static int add_offset(replay_opts_t *opts, const char *arg) {
        const char *colon = strchr(arg, ':');
        int64_t p, off;
        char pbuf[32];
        size_t i;

        if (!colon) {
                if (sq_parse_int64(arg, 0, INT64_MAX, &off) != SQ_OK)
                        goto bad;
                opts->rd.have_offset_all = true;
                opts->rd.offset_all      = off;
                return -1;
        }
        if ((size_t)(colon - arg) >= sizeof(pbuf))
                goto bad;
        memcpy(pbuf, arg, (size_t)(colon - arg));
        pbuf[colon - arg] = '\0';
        if (sq_parse_int64(pbuf, 0, INT32_MAX, &p) != SQ_OK ||
            sq_parse_int64(colon + 1, 0, INT64_MAX, &off) != SQ_OK)
                goto bad;
        for (i = 0; i < opts->rd.offsets_cnt; i++) {
                if (opts->rd.offsets[i].partition == (int32_t)p)
                        return sq_cli_usage_error(
                            CMD, "--offset names partition %" PRId64 " twice",
                            p);
        }
        opts->rd.offsets =
            sq_realloc(opts->rd.offsets,
                       (opts->rd.offsets_cnt + 1) * sizeof(*opts->rd.offsets));
        opts->rd.offsets[opts->rd.offsets_cnt].partition = (int32_t)p;
        opts->rd.offsets[opts->rd.offsets_cnt].offset    = off;
        opts->rd.offsets_cnt++;
        return -1;
bad:
        return sq_cli_usage_error(CMD,
                                  "--offset expects N or PARTITION:N "
                                  "(non-negative numbers), got \"%s\"",
                                  arg);
}

enum {
        OPT_EVENTS = 256,
        OPT_RESULTS,
        OPT_TOPIC,
        OPT_FROM_BEGINNING,
        OPT_OFFSET,
        OPT_SINCE,
        OPT_FOLLOW,
        OPT_UNTIL,
        OPT_MAX,
        OPT_TASK_ID,
        OPT_TYPE,
        OPT_WITH_COORDS,
        OPT_INCLUDE_UNDECODABLE,
        OPT_WORKFLOW,
        OPT_JSON,
};

static const struct option longopts[] = {
    {"events", no_argument, NULL, OPT_EVENTS},
    {"results", no_argument, NULL, OPT_RESULTS},
    {"topic", required_argument, NULL, OPT_TOPIC},
    {"from-beginning", no_argument, NULL, OPT_FROM_BEGINNING},
    {"offset", required_argument, NULL, OPT_OFFSET},
    {"since", required_argument, NULL, OPT_SINCE},
    {"follow", no_argument, NULL, OPT_FOLLOW},
    {"until", required_argument, NULL, OPT_UNTIL},
    {"max", required_argument, NULL, OPT_MAX},
    {"task-id", required_argument, NULL, OPT_TASK_ID},
    {"type", required_argument, NULL, OPT_TYPE},
    {"with-coordinates", no_argument, NULL, OPT_WITH_COORDS},
    {"include-undecodable", no_argument, NULL, OPT_INCLUDE_UNDECODABLE},
    {"workflow", required_argument, NULL, OPT_WORKFLOW},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One replay option (sq_cmd_opt_cb_t). */
static int replay_opt(const sq_cmd_t *cmd, void *optsp, int opt, char *arg,
                      const char *word) {
        replay_opts_t *opts = optsp;
        int64_t v;

        (void)word;
        switch (opt) {
        case OPT_EVENTS:
                opts->kind     = KIND_EVENTS;
                opts->rd.topic = cmd->cli->topic_events;
                opts->topics_given++;
                break;
        case OPT_RESULTS:
                opts->kind     = KIND_RESULTS;
                opts->rd.topic = cmd->cli->topic_results;
                opts->topics_given++;
                break;
        case OPT_TOPIC:
                if (!sq_cmd_word_arg(cmd, "--topic", arg))
                        return SQ_CLI_EXIT_USAGE;
                opts->kind     = KIND_ANY;
                opts->rd.topic = arg;
                opts->topics_given++;
                break;
        case OPT_FROM_BEGINNING:
                opts->from_beginning = true;
                break;
        case OPT_OFFSET:
                return add_offset(opts, arg);
        case OPT_SINCE:
                if (!sq_cli_time_arg(cmd, "--since", arg, &opts->rd.since_ms))
                        return SQ_CLI_EXIT_USAGE;
                opts->rd.since_arg = arg;
                break;
        case OPT_FOLLOW:
                opts->rd.follow = true;
                break;
        case OPT_UNTIL:
                if (!sq_cli_time_arg(cmd, "--until", arg, &opts->rd.until_ms))
                        return SQ_CLI_EXIT_USAGE;
                opts->rd.until_arg = arg;
                break;
        case OPT_MAX:
                if (!sq_cmd_int_arg(cmd, "--max", arg, 1, INT64_MAX,
                                    "a positive number", &v))
                        return SQ_CLI_EXIT_USAGE;
                opts->max = (uint64_t)v;
                break;
        case OPT_TASK_ID:
                if (!sq_cmd_word_arg(cmd, "--task-id", arg))
                        return SQ_CLI_EXIT_USAGE;
                sq_strmap_put(&opts->task_ids, arg, NULL);
                break;
        case OPT_TYPE:
                if (!sq_event_type_find(arg)) {
                        const char *best = sq_config_suggest(
                            arg, &sq_event_types[0].name, sq_event_types_cnt,
                            sizeof(sq_event_types[0]));
                        return sq_cli_usage_error(
                            cmd->name,
                            "--type: no event type \"%s\"%s%s%s (see "
                            "replay --help for the list)",
                            arg, best ? "; did you mean " : "",
                            best ? best : "", best ? "?" : "");
                }
                sq_strmap_put(&opts->types, arg, NULL);
                break;
        case OPT_WITH_COORDS:
                opts->with_coords = true;
                break;
        case OPT_WORKFLOW:
                if (!sq_cmd_word_arg(cmd, "--workflow", arg))
                        return SQ_CLI_EXIT_USAGE;
                opts->workflow = arg;
                break;
        case OPT_JSON:
                opts->json = true;
                break;
        default:
                sq_assert(opt == OPT_INCLUDE_UNDECODABLE);
                opts->include_undecodable = true;
                break;
        }
        return SQ_CMD_CONTINUE;
}

/* The options and how they combine. @returns -1 to go on, or an exit
 * code. */
static int parse_opts(const sq_cmd_t *cmd, replay_opts_t *opts, int argc,
                      char **argv) {
        int starts_given, ret = sq_cmd_parse(cmd, argc, argv, ":h", longopts,
                                             replay_opt, opts);

        if (ret != SQ_CMD_CONTINUE)
                return ret;
        if (opts->topics_given > 1)
                return sq_cli_usage_error(CMD, "give at most one of --events, "
                                               "--results and --topic");
        if (opts->workflow &&
            (opts->topics_given || opts->from_beginning ||
             opts->rd.have_offset_all || opts->rd.offsets_cnt ||
             opts->rd.since_arg || opts->rd.until_arg || opts->rd.follow ||
             opts->max || opts->task_ids.cnt || opts->types.cnt ||
             opts->with_coords || opts->include_undecodable))
                return sq_cli_usage_error(
                    CMD, "--workflow reads the workflow's whole history: "
                         "only --json goes with it");
        if (!opts->workflow && opts->json)
                return sq_cli_usage_error(CMD, "--json goes with --workflow "
                                               "ID");
        starts_given = opts->from_beginning +
                       (opts->rd.have_offset_all || opts->rd.offsets_cnt > 0) +
                       (opts->rd.since_arg != NULL);
        if (starts_given > 1)
                return sq_cli_usage_error(CMD, "give at most one start: "
                                               "--from-beginning, --offset or "
                                               "--since");
        if (opts->types.cnt && opts->kind == KIND_RESULTS)
                return sq_cli_usage_error(CMD, "--type filters events; "
                                               "results have none (drop "
                                               "--results or --type)");
        return SQ_CMD_CONTINUE;
}

/* ------------------------------------------------------------------ */
/* Records */

/* Prints @p json (a JSON object) with the record's coordinates spliced in
 * before its closing brace when asked. */
static void print_object(replay_state_t *st, const char *json,
                         const rd_kafka_message_t *rkm) {
        const replay_opts_t *opts = st->opts;
        rd_kafka_timestamp_type_t tstype;
        int64_t ts;
        size_t len;

        if (!opts->with_coords) {
                puts(json);
                return;
        }
        len = strlen(json);
        sq_assert(len >= 2 && json[len - 1] == '}');
        ts = rd_kafka_message_timestamp(rkm, &tstype);
        fwrite(json, 1, len - 1, stdout);
        printf("%s\"_topic\":%s,\"_partition\":%" PRId32 ",\"_offset\":%" PRId64
               ",\"_timestamp\":",
               len > 2 ? "," : "", st->topic_json, rkm->partition, rkm->offset);
        if (tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE || ts < 0)
                fputs("null}\n", stdout);
        else
                printf("%" PRId64 "}\n", ts);
}

static void print_undecodable(replay_state_t *st, const rd_kafka_message_t *rkm,
                              const char *errstr) {
        const replay_opts_t *opts = st->opts;
        json_t *obj;
        char *text;

        sq_cmd_warn_undecodable(st->cmd, &st->reader.prog, ++st->undecodable,
                                opts->rd.topic, rkm->partition, rkm->offset,
                                errstr);
        if (!opts->include_undecodable)
                return;
        obj = json_object();
        json_object_set_new(obj, "topic", json_string(opts->rd.topic));
        json_object_set_new(obj, "partition", json_integer(rkm->partition));
        json_object_set_new(obj, "offset", json_integer(rkm->offset));
        json_object_set_new(obj, "error", json_string(errstr));
        text = json_dumps(obj, JSON_COMPACT);
        sq_assert(text);
        print_object(st, text, rkm);
        free(text); /* jansson allocates with malloc by default */
        json_decref(obj);
        st->printed++;
}

static bool keep_task_id(const replay_opts_t *opts, const char *task_id) {
        return !opts->task_ids.cnt ||
               (task_id && sq_strmap_get(&opts->task_ids, task_id));
}

/* The kind of a record on a --topic topic, from its schema id. */
static replay_kind_t record_kind(const rd_kafka_message_t *rkm) {
        const unsigned char *p = rkm->payload;
        uint32_t id;

        if (rkm->len < SQ_CODEC_HEADER_LEN || p[0] != SQ_CODEC_MAGIC)
                return KIND_ANY; /* a task (JSON), or undecodable */
        id = ((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) |
             ((uint32_t)p[3] << 8) | p[4];
        if (id == SQ_SCHEMA_ID_EVENT || id == SQ_SCHEMA_ID_EVENT_V1)
                return KIND_EVENTS;
        if (id == SQ_SCHEMA_ID_RESULT || id == SQ_SCHEMA_ID_RESULT_V2 ||
            id == SQ_SCHEMA_ID_RESULT_V1)
                return KIND_RESULTS;
        return KIND_ANY;
}

/* Decodes, filters and prints one record (sq_reader_sink_t).
 * @returns false once --max records are printed. */
static bool handle_record(void *arg, const rd_kafka_message_t *rkm) {
        replay_state_t *st        = arg;
        const replay_opts_t *opts = st->opts;
        sq_codec_t *codec         = st->cmd->codec;
        replay_kind_t kind        = opts->kind;
        sq_event_t *event         = NULL;
        sq_result_t *result       = NULL;
        sq_task_t *task           = NULL;
        char *json                = NULL;
        char errstr[512];
        sq_err_t err;

        if (kind == KIND_ANY)
                kind = record_kind(rkm);
        if (!rkm->payload) {
                print_undecodable(st, rkm,
                                  "empty record (no value: a tombstone?)");
                return !opts->max || st->printed < opts->max;
        }
        switch (kind) {
        case KIND_EVENTS:
                err = sq_codec_decode_event(codec, rkm->payload, rkm->len,
                                            &event, errstr, sizeof(errstr));
                if (err != SQ_OK)
                        break;
                if (keep_task_id(opts, event->task_id) &&
                    (!opts->types.cnt ||
                     (event->type && sq_strmap_get(&opts->types, event->type))))
                        json = sq_codec_event_to_json(event);
                break;
        case KIND_RESULTS:
                err = sq_codec_decode_result(codec, rkm->payload, rkm->len,
                                             &result, errstr, sizeof(errstr));
                if (err != SQ_OK)
                        break;
                if (keep_task_id(opts, result->task_id) && !opts->types.cnt)
                        json = sq_codec_result_to_json(result);
                break;
        default:
                err = sq_codec_decode_task(codec, rkm->payload, rkm->len, &task,
                                           errstr, sizeof(errstr));
                if (err != SQ_OK)
                        break;
                if (keep_task_id(opts, task->id) && !opts->types.cnt)
                        json = sq_codec_task_to_json(task);
                break;
        }
        if (err != SQ_OK) {
                print_undecodable(st, rkm, errstr);
        } else if (json) {
                print_object(st, json, rkm);
                st->printed++;
        }
        sq_free(json);
        sq_event_destroy(event);
        sq_result_destroy(result);
        sq_task_destroy(task);
        return !opts->max || st->printed < opts->max;
}

/** @brief Runs `replay`; see replay_usage(). */
int sq_cli_replay(const sq_cli_t *cli, int argc, char **argv) {
        replay_opts_t opts;
        replay_state_t st;
        sq_reader_sink_t sink;
        sq_cmd_t cmd;
        json_t *jtopic;
        bool enough;
        int ret;

        sq_cmd_init(&cmd, cli, CMD, replay_usage);
        memset(&opts, 0, sizeof(opts));
        memset(&st, 0, sizeof(st));
        st.cmd  = &cmd;
        st.opts = &opts;
        sq_strmap_init(&opts.task_ids);
        sq_strmap_init(&opts.types);
        opts.kind     = KIND_EVENTS;
        opts.rd.topic = cli->topic_events;

        ret = parse_opts(&cmd, &opts, argc, argv);
        if (ret != SQ_CMD_CONTINUE)
                goto done;
        ret = sq_cmd_ready(&cmd, true);
        if (ret != SQ_CLI_EXIT_OK)
                goto done;
        if (opts.workflow) {
                ret = sq_cli_replay_workflow(&cmd, opts.workflow, opts.json);
                goto done;
        }
        jtopic        = json_string(opts.rd.topic);
        st.topic_json = jtopic ? json_dumps(jtopic, JSON_ENCODE_ANY) : NULL;
        json_decref(jtopic);
        if (!st.topic_json) {
                ret = sq_cli_usage_error(CMD, "topic name \"%s\" is not UTF-8",
                                         opts.rd.topic);
                goto done;
        }

        opts.rd.only_partition = -1;
        ret                    = sq_reader_open(&st.reader, &cmd, &opts.rd);
        if (ret != SQ_CLI_EXIT_OK)
                goto done;
        memset(&sink, 0, sizeof(sink));
        sink.record = handle_record;
        sink.arg    = &st;
        ret         = sq_reader_run(&st.reader, &sink, &enough);
        if (!sq_cmd_flush_stdout(&cmd)) {
                ret = SQ_CLI_EXIT_INCOMPLETE;
        } else if (ret == SQ_CLI_EXIT_OK && sq_cli_interrupted() &&
                   !opts.rd.follow && !sq_reader_done(&st.reader) && !enough) {
                sq_cmd_say(&cmd, NULL,
                           "interrupted after %" PRIu64
                           " records, before the end",
                           st.printed);
                ret = SQ_CLI_EXIT_INCOMPLETE;
        }
        if (st.undecodable > 0)
                sq_cmd_say(&cmd, NULL,
                           "%" PRIu64 " undecodable records in topic %s",
                           st.undecodable, opts.rd.topic);

done:
        sq_reader_term(&st.reader);
        sq_cmd_term(&cmd);
        free(st.topic_json); /* jansson's malloc */
        sq_free(opts.rd.offsets);
        sq_strmap_term(&opts.task_ids);
        sq_strmap_term(&opts.types);
        return ret;
}
