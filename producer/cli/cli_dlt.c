/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_dlt.c: `swarmq-producer dlt list` and `swarmq-producer dlt redrive`:
 * inspect the dead-letter topic and send chosen dead letters back to the
 * task topic.
 *
 * DESIGN
 *   Both subcommands read the dead-letter topic with the shared topic
 *   reader (cli_reader.c): partitions assigned, never subscribed, nothing
 *   committed, so the service's consumer group never sees this tool; each
 *   partition ends at the high watermark it had when the command started,
 *   so a command ends even while the service keeps dead-lettering. Every
 *   record is decoded as a task when it can be (its id, its attempt) and
 *   described from its headers: Spring Kafka's kafka_dlt-* and
 *   retry_topic-attempts, swarmq's reason, agent, instance and time.
 *
 *   redrive produces, for each selected record, the task's bytes to its
 *   original topic (or --to) with an idempotent producer, key untouched.
 *   The attempt starts again at 1 (the first delivery; the wire format
 *   has no attempt 0): the consumer counts retries in headers, so a dead
 *   letter's value normally still says attempt 1 and goes back byte for
 *   byte; a value that says otherwise is re-encoded (Avro) with attempt 1
 *   and the same id, so results correlate. The dead letter's bookkeeping
 *   headers (retry_topic-*, kafka_dlt-*, swarmq-reason/-agent/-instance/
 *   -task-id/-dead-lettered-at) would make the consumer treat the task as
 *   a retry or drop them: they travel renamed, "swarmq-dlt-" + their
 *   name, next to swarmq-redriven-from (dlt topic/partition/offset) and
 *   swarmq-redriven-at (epoch ms); upstream's own headers are kept as they
 *   are. Records are produced as they are read (RD_KAFKA_MSG_F_COPY), so
 *   memory does not grow with the topic; the command then waits for every
 *   delivery report, which is printed as it arrives.
 *
 *   A second redrive of the same dead letters sends nothing: what was
 *   delivered is recorded in the group swarmq-redrive-<DLT topic>
 *   (cli_dlt_memory.c) and skipped next time unless --force.
 *
 *   Single-threaded: delivery reports are served by rd_kafka_poll() and
 *   rd_kafka_flush() on the main thread.
 */
#include "cli_dlt_memory.h"
#include "cli_reader.h"
#include "config.h"

#include "kafka_conf.h"
#include "log.h"
#include "retry.h"
#include "task.h"
#include "topics.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define POLL_TIMEOUT_MS  100 /* waiting for room, or for reports */
#define MAX_SKIP_NOTES   20  /* skipped-record lines printed on stderr */
#define DLT_HDR_PREFIX   "swarmq-dlt-"
#define DEFAULT_DLT      SQ_TOPIC_DEFAULT_DLT
#define TOPIC_NAME_MAX   249
#define HDR_VALUE_SHOWN  4096 /* longer values are cut in text output */
#define UNDECODABLE_TEXT "<undecodable>"

typedef struct dlt_opts_s {
        bool redrive;
        sq_reader_opts_t rd;
        sq_reader_offset_t from; /* --partition P --from-offset N */
        int32_t partition;       /* -1: every partition */
        bool have_from_offset;
        int64_t from_offset;
        uint64_t limit; /* 0: no limit */
        sq_strmap_t reasons;
        sq_strmap_t task_ids;
        bool json;
        const char *to; /* NULL: the original topic */
        bool dry_run;
        bool yes;
        bool force; /* redrive what an earlier redrive sent, again */
        bool include_undecodable;
} dlt_opts_t;

/* One dead letter being looked at (views into the consumer message). */
typedef struct dlt_rec_s {
        const rd_kafka_message_t *rkm;
        rd_kafka_headers_t *hdrs; /* borrowed from rkm, may be NULL */
        sq_task_t *task;          /* NULL: undecodable (owned) */
        char decode_error[512];
        const char *task_id; /* decoded id, else swarmq-task-id, else NULL */
        char hdr_task_id[256];
        char reason[128];
        char orig_topic[256];
} dlt_rec_t;

typedef struct dlt_state_s {
        const sq_cmd_t *cmd; /* "dlt list" or "dlt redrive"; its codec */
        const dlt_opts_t *opts;
        sq_reader_t reader;
        rd_kafka_t *producer;    /* redrive only */
        sq_dlt_memory_t *memory; /* redrive only: what was re-driven */
        uint64_t selected;
        uint64_t redriven; /* delivered (or, with --dry-run, would be) */
        uint64_t skipped;
        uint64_t already; /* skipped: an earlier redrive sent them */
        uint64_t failed;
        uint64_t in_flight;
        uint64_t undecodable;
} dlt_state_t;

/* Travels with one produced record to its delivery report. */
typedef struct dlt_msg_s {
        dlt_state_t *st;
        int32_t dlt_partition;
        int64_t dlt_offset;
        char task_id[]; /* "" for an undecodable record */
} dlt_msg_t;

/* clang-format off: the help text is laid out as it prints. */
static void dlt_usage(FILE *fp) {
        fprintf(
            fp,
            "Usage: " SQ_CLI_PROG " [global options] dlt list [options]\n"
            "       " SQ_CLI_PROG " [global options] dlt redrive [options] "
            "(--yes | --dry-run)\n"
            "\n"
            "Inspect the dead-letter topic and send dead letters back to the "
            "task topic.\n"
            "Both read the topic's partitions directly (no consumer group is "
            "joined;\n"
            "redrive records what it sent, see below), each up to the end it "
            "had when\n"
            "the command started.\n"
            "\n"
            "  list      one line per dead letter: DLT partition:offset, task "
            "id\n"
            "            (" UNDECODABLE_TEXT " when the value is not a task), "
            "original\n"
            "            topic/partition/offset, attempts, reason, agent, time "
            "and the\n"
            "            exception message; --json: one JSON object per dead "
            "letter with\n"
            "            every header\n"
            "  redrive   re-produce the selected dead letters to their "
            "original topic\n"
            "            (the kafka_dlt-original-topic header; else the "
            "global\n"
            "            --topic-tasks) with the attempt back at 1, the same "
            "id and key\n"
            "\n"
            "Selection (both):\n"
            "      --topic T          the dead-letter topic "
            "(default " DEFAULT_DLT ")\n"
            "      --partition N      only partition N\n"
            "      --from-offset N    from offset N (of every partition, or "
            "of N's)\n"
            "      --since TIME       from the first record stamped at or "
            "after TIME\n"
            "                         (needs timestamp lookup: Apache Kafka, "
            "not the\n"
            "                         embedded mock cluster)\n"
            "      --reason CODE      only this swarmq-reason: FAILED, "
            "TIMED_OUT,\n"
            "                         NO_AGENT, DECODE_ERROR, ... "
            "(repeatable)\n"
            "      --task-id ID       only this task (repeatable)\n"
            "      --limit N          stop after N selected dead letters\n"
            "\n"
            "Output (both):\n"
            "      --json             JSON lines on stdout (redrive: one per "
            "record and a\n"
            "                         summary line)\n"
            "\n"
            "redrive:\n"
            "      --to TOPIC         produce to TOPIC instead of the "
            "original topic\n"
            "      --dry-run          print what would be re-driven; "
            "produce nothing\n"
            "      --yes              do it (redrive refuses to write "
            "without --yes or\n"
            "                         --dry-run)\n"
            "      --force            also re-drive dead letters an earlier "
            "redrive sent\n"
            "                         (by default they are skipped: see "
            "below)\n"
            "      --include-undecodable\n"
            "                         re-drive records that are not tasks "
            "too, bytes\n"
            "                         untouched (by default they are "
            "skipped, each\n"
            "                         named on stderr)\n"
            "  -h, --help             print this help and exit\n"
            "\n"
            "A re-driven record keeps its key and upstream's headers; the "
            "dead letter's\n"
            "retry_topic-*, kafka_dlt-* and swarmq-{reason,agent,instance,"
            "task-id,\n"
            "dead-lettered-at} headers travel as \"" DLT_HDR_PREFIX
            "<name>\", and\n"
            "swarmq-redriven-from (DLT topic/partition/offset) and "
            "swarmq-redriven-at\n"
            "(epoch ms) say where it came from.\n"
            "\n"
            "redrive remembers what it sent, in the committed offsets of the "
            "consumer\n"
            "group swarmq-redrive-<DLT topic> (offset after the highest "
            "re-driven dead\n"
            "letter; the exact offsets in the commit's metadata), recorded "
            "after the\n"
            "delivery reports. A dead letter already re-driven is skipped "
            "and counted\n"
            "(\"already redriven\"), so running the same redrive twice sends "
            "each once;\n"
            "--force sends them again. Delete the group to forget.\n"
            "\n"
            "The producer is idempotent; redrive\n"
            "waits for every delivery report and prints a summary "
            "(selected, redriven,\n"
            "skipped, failed) on stderr, or as the last JSON line with "
            "--json.\n"
            "\n"
            "TIME is ISO 8601 with a zone (2026-11-24T10:00:00Z) or epoch "
            "milliseconds.\n"
            "\n"
            "Exit code 0 when the end was reached (redrive: and every "
            "record was\n"
            "delivered), 1 when a delivery failed or on SIGINT, 2 on a usage "
            "error, 3\n"
            "on a broker error (no broker, no such topic, no timestamp "
            "lookup).\n"
            "\n"
            "Examples:\n"
            "  " SQ_CLI_PROG " -b localhost:9092 dlt list --reason FAILED\n"
            "  " SQ_CLI_PROG " -b localhost:9092 dlt redrive --task-id t-1 "
            "--dry-run\n"
            "  " SQ_CLI_PROG " -b localhost:9092 dlt redrive --since "
            "2026-11-24T10:00:00Z --yes\n");
}
/* clang-format on */

/* Kafka's rule for a topic name: 1-249 of [a-zA-Z0-9._-]. */
static bool topic_name_ok(const char *name) {
        size_t len = strlen(name), i;

        if (len == 0 || len > TOPIC_NAME_MAX || !strcmp(name, ".") ||
            !strcmp(name, ".."))
                return false;
        for (i = 0; i < len; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                      c == '-'))
                        return false;
        }
        return true;
}

static int bad_topic(const sq_cmd_t *cmd, const char *opt, const char *name) {
        return sq_cli_usage_error(cmd->name,
                                  "%s \"%s\" is not a Kafka topic name (1 to "
                                  "249 characters of a-z A-Z 0-9 . _ -)",
                                  opt, name);
}

enum {
        OPT_TOPIC = 256,
        OPT_PARTITION,
        OPT_FROM_OFFSET,
        OPT_SINCE,
        OPT_REASON,
        OPT_TASK_ID,
        OPT_LIMIT,
        OPT_JSON,
        OPT_TO,
        OPT_DRY_RUN,
        OPT_YES,
        OPT_FORCE,
        OPT_INCLUDE_UNDECODABLE,
};

static const struct option longopts[] = {
    {"topic", required_argument, NULL, OPT_TOPIC},
    {"partition", required_argument, NULL, OPT_PARTITION},
    {"from-offset", required_argument, NULL, OPT_FROM_OFFSET},
    {"since", required_argument, NULL, OPT_SINCE},
    {"reason", required_argument, NULL, OPT_REASON},
    {"task-id", required_argument, NULL, OPT_TASK_ID},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"json", no_argument, NULL, OPT_JSON},
    {"to", required_argument, NULL, OPT_TO},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"yes", no_argument, NULL, OPT_YES},
    {"force", no_argument, NULL, OPT_FORCE},
    {"include-undecodable", no_argument, NULL, OPT_INCLUDE_UNDECODABLE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One dlt option (sq_cmd_opt_cb_t). */
static int dlt_opt(const sq_cmd_t *cmd, void *optsp, int opt, char *arg,
                   const char *word) {
        dlt_opts_t *opts = optsp;
        int64_t v;

        switch (opt) {
        case OPT_TOPIC:
                if (!topic_name_ok(arg))
                        return bad_topic(cmd, "--topic", arg);
                opts->rd.topic = arg;
                break;
        case OPT_PARTITION:
                if (!sq_cmd_int_arg(cmd, "--partition", arg, 0, INT32_MAX,
                                    "a partition number (0 or more)", &v))
                        return SQ_CLI_EXIT_USAGE;
                opts->partition = (int32_t)v;
                break;
        case OPT_FROM_OFFSET:
                if (!sq_cmd_int_arg(cmd, "--from-offset", arg, 0, INT64_MAX,
                                    "an offset (0 or more)", &v))
                        return SQ_CLI_EXIT_USAGE;
                opts->have_from_offset = true;
                opts->from_offset      = v;
                break;
        case OPT_SINCE:
                if (!sq_cli_time_arg(cmd, "--since", arg, &opts->rd.since_ms))
                        return SQ_CLI_EXIT_USAGE;
                opts->rd.since_arg = arg;
                break;
        case OPT_REASON:
                if (!sq_cmd_word_arg(cmd, "--reason", arg))
                        return SQ_CLI_EXIT_USAGE;
                sq_strmap_put(&opts->reasons, arg, NULL);
                break;
        case OPT_TASK_ID:
                if (!sq_cmd_word_arg(cmd, "--task-id", arg))
                        return SQ_CLI_EXIT_USAGE;
                sq_strmap_put(&opts->task_ids, arg, NULL);
                break;
        case OPT_LIMIT:
                if (!sq_cmd_int_arg(cmd, "--limit", arg, 1, INT64_MAX,
                                    "a positive number", &v))
                        return SQ_CLI_EXIT_USAGE;
                opts->limit = (uint64_t)v;
                break;
        case OPT_JSON:
                opts->json = true;
                break;
        case OPT_TO:
        case OPT_DRY_RUN:
        case OPT_YES:
        case OPT_FORCE:
        case OPT_INCLUDE_UNDECODABLE:
                if (!opts->redrive)
                        return sq_cli_usage_error(
                            cmd->name,
                            "%s is an option of 'dlt redrive', not "
                            "of 'dlt list'",
                            word);
                if (opt == OPT_TO) {
                        if (!topic_name_ok(arg))
                                return bad_topic(cmd, "--to", arg);
                        opts->to = arg;
                } else if (opt == OPT_DRY_RUN) {
                        opts->dry_run = true;
                } else if (opt == OPT_YES) {
                        opts->yes = true;
                } else if (opt == OPT_FORCE) {
                        opts->force = true;
                } else {
                        opts->include_undecodable = true;
                }
                break;
        }
        return SQ_CMD_CONTINUE;
}

/* The options and how they combine. @returns -1 to go on, or an exit
 * code. */
static int parse_opts(const sq_cmd_t *cmd, dlt_opts_t *opts, int argc,
                      char **argv) {
        int ret = sq_cmd_parse(cmd, argc, argv, ":h", longopts, dlt_opt, opts);

        if (ret != SQ_CMD_CONTINUE)
                return ret;
        if (opts->have_from_offset && opts->rd.since_arg)
                return sq_cli_usage_error(cmd->name,
                                          "give at most one start: "
                                          "--from-offset or --since");
        if (opts->redrive && !opts->dry_run && !opts->yes)
                return sq_cli_usage_error(
                    cmd->name,
                    "redrive writes to the task topic: give --yes to do "
                    "it, or --dry-run to see what it would do");
        if (opts->redrive && opts->dry_run && opts->yes)
                return sq_cli_usage_error(cmd->name, "give --yes or --dry-run, "
                                                     "not both");

        /* Into the reader's terms. */
        opts->rd.only_partition = opts->partition;
        if (opts->have_from_offset && opts->partition >= 0) {
                opts->from.partition = opts->partition;
                opts->from.offset    = opts->from_offset;
                opts->rd.offsets     = &opts->from;
                opts->rd.offsets_cnt = 1;
        } else if (opts->have_from_offset) {
                opts->rd.have_offset_all = true;
                opts->rd.offset_all      = opts->from_offset;
        }
        return SQ_CMD_CONTINUE;
}

/* ------------------------------------------------------------------ */
/* Reading one dead letter */

/* The last header @p name as a view. @returns false when absent. */
static bool hdr_view(const rd_kafka_headers_t *hdrs, const char *name,
                     const char **valp, size_t *lenp) {
        const void *val = NULL;

        if (!hdrs ||
            rd_kafka_header_get_last(hdrs, name, &val, lenp) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            !val)
                return false;
        *valp = val;
        return true;
}

/* Decodes and describes @p rkm into @p rec (rec->task owned by the
 * caller: sq_task_destroy()). */
static void rec_load(dlt_state_t *st, const rd_kafka_message_t *rkm,
                     dlt_rec_t *rec) {
        rd_kafka_headers_t *hdrs = NULL;

        memset(rec, 0, sizeof(*rec));
        rec->rkm = rkm;
        if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
                rec->hdrs = hdrs;
        if (!rkm->payload)
                snprintf(rec->decode_error, sizeof(rec->decode_error),
                         "empty record (no value)");
        else if (sq_codec_decode_task(st->cmd->codec, rkm->payload, rkm->len,
                                      &rec->task, rec->decode_error,
                                      sizeof(rec->decode_error)) != SQ_OK)
                rec->task = NULL;
        if (rec->task)
                rec->task_id = rec->task->id;
        else if (sq_retry_header_get(rec->hdrs, SQ_HDR_TASK_ID,
                                     rec->hdr_task_id,
                                     sizeof(rec->hdr_task_id)))
                rec->task_id = rec->hdr_task_id;
        sq_retry_header_get(rec->hdrs, SQ_HDR_REASON, rec->reason,
                            sizeof(rec->reason));
        sq_retry_header_get(rec->hdrs, SQ_HDR_DLT_TOPIC, rec->orig_topic,
                            sizeof(rec->orig_topic));
}

static bool rec_selected(const dlt_opts_t *opts, const dlt_rec_t *rec) {
        if (opts->reasons.cnt &&
            (!rec->reason[0] || !sq_strmap_get(&opts->reasons, rec->reason)))
                return false;
        if (opts->task_ids.cnt &&
            (!rec->task_id || !sq_strmap_get(&opts->task_ids, rec->task_id)))
                return false;
        return true;
}

/* A header value as a JSON string; bytes that are not UTF-8 become
 * "\xNN" escapes (so the line stays valid JSON). @returns a new json_t. */
static json_t *json_bytes(const char *val, size_t len) {
        json_t *str = json_stringn(val, len);
        char *buf;
        size_t i, n = 0;

        if (str)
                return str;
        buf = sq_malloc(len * 4 + 1);
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)val[i];
                if (c >= 0x20 && c < 0x7f)
                        buf[n++] = (char)c;
                else
                        n += (size_t)snprintf(buf + n, 5, "\\x%02x", c);
        }
        str = json_stringn(buf, n);
        sq_free(buf);
        sq_assert(str);
        return str;
}

/* Sets @p key to the header's value as a string, or null. */
static void json_set_hdr(json_t *obj, const char *key,
                         const rd_kafka_headers_t *hdrs, const char *name) {
        const char *val;
        size_t len;

        json_object_set_new(obj, key,
                            hdr_view(hdrs, name, &val, &len)
                                ? json_bytes(val, len)
                                : json_null());
}

/* Sets @p key to the header's decimal value, or null. */
static void json_set_hdr_int(json_t *obj, const char *key,
                             const rd_kafka_headers_t *hdrs, const char *name) {
        int64_t v;

        json_object_set_new(
            obj, key,
            sq_retry_header_int(hdrs, name, INT64_MIN, INT64_MAX, &v)
                ? json_integer(v)
                : json_null());
}

/* The dead letter as one JSON object (caller owns, json_decref()). */
static json_t *rec_json(const dlt_opts_t *opts, const dlt_rec_t *rec) {
        const rd_kafka_message_t *rkm = rec->rkm;
        rd_kafka_timestamp_type_t tstype;
        json_t *obj = json_object(), *hobj = json_object();
        const char *name;
        const void *val;
        size_t i, len;
        int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);

        json_object_set_new(obj, "dlt_topic", json_string(opts->rd.topic));
        json_object_set_new(obj, "dlt_partition", json_integer(rkm->partition));
        json_object_set_new(obj, "dlt_offset", json_integer(rkm->offset));
        json_object_set_new(obj, "timestamp",
                            tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
                                ? json_null()
                                : json_integer(ts));
        json_object_set_new(obj, "task_id",
                            rec->task_id
                                ? json_bytes(rec->task_id, strlen(rec->task_id))
                                : json_null());
        json_object_set_new(obj, "decodable", json_boolean(rec->task != NULL));
        if (!rec->task)
                json_object_set_new(
                    obj, "decode_error",
                    json_bytes(rec->decode_error, strlen(rec->decode_error)));
        json_object_set_new(obj, "key",
                            rkm->key ? json_bytes(rkm->key, rkm->key_len)
                                     : json_null());
        json_set_hdr(obj, "original_topic", rec->hdrs, SQ_HDR_DLT_TOPIC);
        json_set_hdr_int(obj, "original_partition", rec->hdrs,
                         SQ_HDR_DLT_PARTITION);
        json_set_hdr_int(obj, "original_offset", rec->hdrs, SQ_HDR_DLT_OFFSET);
        json_set_hdr(obj, "consumer_group", rec->hdrs, SQ_HDR_DLT_GROUP);
        json_set_hdr_int(obj, "attempts", rec->hdrs, SQ_HDR_ATTEMPTS);
        json_set_hdr(obj, "reason", rec->hdrs, SQ_HDR_REASON);
        json_set_hdr(obj, "exception_message", rec->hdrs, SQ_HDR_DLT_EXCEPTION);
        json_set_hdr(obj, "agent", rec->hdrs, SQ_HDR_AGENT);
        json_set_hdr(obj, "instance", rec->hdrs, SQ_HDR_INSTANCE);
        json_set_hdr_int(obj, "dead_lettered_at", rec->hdrs,
                         SQ_HDR_DEAD_LETTERED_AT);
        for (i = 0; rec->hdrs &&
                    rd_kafka_header_get_all(rec->hdrs, i, &name, &val, &len) ==
                        RD_KAFKA_RESP_ERR_NO_ERROR;
             i++)
                json_object_set_new(hobj, name,
                                    val ? json_bytes(val, len) : json_null());
        json_object_set_new(obj, "headers", hobj);
        return obj;
}

/* Prints a value for a key=value line: as it is when it is plain
 * printable ASCII without spaces or quotes, else JSON-quoted; "-" when
 * absent. */
static void print_word(const char *val, size_t len) {
        json_t *str;
        char *text;
        size_t i;

        if (!val) {
                fputs("-", stdout);
                return;
        }
        len = SQ_MIN(len, (size_t)HDR_VALUE_SHOWN);
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)val[i];
                if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
                        break;
        }
        if (i == len && len > 0) {
                fwrite(val, 1, len, stdout);
                return;
        }
        str  = json_bytes(val, len);
        text = json_dumps(str, JSON_ENCODE_ANY);
        sq_assert(text);
        fputs(text, stdout);
        free(text);
        json_decref(str);
}

static void print_hdr_word(const dlt_rec_t *rec, const char *name) {
        const char *val = NULL;
        size_t len      = 0;

        hdr_view(rec->hdrs, name, &val, &len);
        print_word(val, len);
}

/* The text line of a dead letter (without a newline):
 * dlt=T/P/O task=ID original=T/P/O attempts=N reason=R agent=A at=TIME
 * error="..." */
static void print_rec_text(const dlt_opts_t *opts, const dlt_rec_t *rec) {
        const rd_kafka_message_t *rkm = rec->rkm;
        rd_kafka_timestamp_type_t tstype;
        char when[40];
        int64_t at;

        printf("dlt=%s/%" PRId32 "/%" PRId64 " task=", opts->rd.topic,
               rkm->partition, rkm->offset);
        if (rec->task)
                print_word(rec->task_id, strlen(rec->task_id));
        else
                fputs(UNDECODABLE_TEXT, stdout);
        fputs(" original=", stdout);
        print_hdr_word(rec, SQ_HDR_DLT_TOPIC);
        fputs("/", stdout);
        print_hdr_word(rec, SQ_HDR_DLT_PARTITION);
        fputs("/", stdout);
        print_hdr_word(rec, SQ_HDR_DLT_OFFSET);
        fputs(" attempts=", stdout);
        print_hdr_word(rec, SQ_HDR_ATTEMPTS);
        fputs(" reason=", stdout);
        print_hdr_word(rec, SQ_HDR_REASON);
        fputs(" agent=", stdout);
        print_hdr_word(rec, SQ_HDR_AGENT);
        if (!sq_retry_header_int(rec->hdrs, SQ_HDR_DEAD_LETTERED_AT, 0,
                                 INT64_MAX, &at))
                at = rd_kafka_message_timestamp(rkm, &tstype);
        printf(" at=%s error=", sq_cli_format_time(at, when, sizeof(when)));
        {
                const char *val = NULL;
                size_t len      = 0;
                json_t *str;
                char *text;

                if (!hdr_view(rec->hdrs, SQ_HDR_DLT_EXCEPTION, &val, &len)) {
                        fputs("-", stdout);
                        return;
                }
                str  = json_bytes(val, SQ_MIN(len, (size_t)HDR_VALUE_SHOWN));
                text = json_dumps(str, JSON_ENCODE_ANY);
                sq_assert(text);
                fputs(text, stdout);
                free(text);
                json_decref(str);
        }
}

/* ------------------------------------------------------------------ */
/* Redrive */

/* The headers of the re-driven record (caller owns; producev takes them
 * on success). */
static rd_kafka_headers_t *redrive_headers(const dlt_opts_t *opts,
                                           const dlt_rec_t *rec) {
        size_t cnt = rec->hdrs ? rd_kafka_header_cnt(rec->hdrs) : 0;
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(cnt + 2);
        const char *name;
        const void *val;
        char renamed[512], from[400];
        size_t i, len;

        for (i = 0; rec->hdrs &&
                    rd_kafka_header_get_all(rec->hdrs, i, &name, &val, &len) ==
                        RD_KAFKA_RESP_ERR_NO_ERROR;
             i++) {
                /* A task re-driven before carries the previous round's
                 * provenance: this round's replaces it. */
                if (!strncmp(name, DLT_HDR_PREFIX, strlen(DLT_HDR_PREFIX)) ||
                    !strcmp(name, SQ_HDR_REDRIVEN_FROM) ||
                    !strcmp(name, SQ_HDR_REDRIVEN_AT))
                        continue;
                if (sq_retry_header_is_ours(name)) {
                        snprintf(renamed, sizeof(renamed), DLT_HDR_PREFIX "%s",
                                 name);
                        rd_kafka_header_add(hdrs, renamed, -1, val,
                                            (ssize_t)len);
                } else {
                        rd_kafka_header_add(hdrs, name, -1, val, (ssize_t)len);
                }
        }
        snprintf(from, sizeof(from), "%s/%" PRId32 "/%" PRId64, opts->rd.topic,
                 rec->rkm->partition, rec->rkm->offset);
        rd_kafka_header_add(hdrs, SQ_HDR_REDRIVEN_FROM, -1, from, -1);
        sq_retry_header_add_int(hdrs, SQ_HDR_REDRIVEN_AT, sq_wallclock_ms());
        return hdrs;
}

/* Prints one redrive outcome line on stdout. */
static void print_outcome(dlt_state_t *st, const char *action,
                          int32_t dlt_partition, int64_t dlt_offset,
                          const char *task_id, const char *topic,
                          int32_t partition, int64_t offset,
                          const char *error) {
        const dlt_opts_t *opts = st->opts;

        sq_progress_clear(&st->reader.prog);
        if (opts->json) {
                json_t *obj = json_object();
                json_object_set_new(obj, "action", json_string(action));
                json_object_set_new(obj, "dlt_topic",
                                    json_string(opts->rd.topic));
                json_object_set_new(obj, "dlt_partition",
                                    json_integer(dlt_partition));
                json_object_set_new(obj, "dlt_offset",
                                    json_integer(dlt_offset));
                json_object_set_new(obj, "task_id",
                                    task_id && *task_id
                                        ? json_bytes(task_id, strlen(task_id))
                                        : json_null());
                json_object_set_new(obj, "topic", json_string(topic));
                if (partition >= 0) {
                        json_object_set_new(obj, "partition",
                                            json_integer(partition));
                        json_object_set_new(obj, "offset",
                                            json_integer(offset));
                }
                if (error)
                        json_object_set_new(obj, "error", json_string(error));
                sq_cmd_print_json(obj, JSON_COMPACT);
                return;
        }
        printf("%s dlt=%s/%" PRId32 "/%" PRId64 " task=", action,
               opts->rd.topic, dlt_partition, dlt_offset);
        if (task_id && *task_id)
                print_word(task_id, strlen(task_id));
        else
                fputs(UNDECODABLE_TEXT, stdout);
        printf(" to=%s", topic);
        if (partition >= 0)
                printf("/%" PRId32 "/%" PRId64, partition, offset);
        if (error) {
                fputs(" error=", stdout);
                print_word(error, strlen(error));
        }
        putchar('\n');
}

/* Why a dead letter was not delivered to @p topic: the missing ACL
 * named ("Write on topic T denied (...)"), or librdkafka's words. */
static void delivery_error(rd_kafka_resp_err_t err, const char *topic,
                           char *buf, size_t size) {
        if (!sq_kafka_acl_denied(err, "Write", topic, NULL, NULL, buf, size))
                snprintf(buf, size, "%s", rd_kafka_err2str(err));
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque) {
        dlt_msg_t *msg = rkm->_private;
        dlt_state_t *st;

        (void)rk;
        (void)opaque;
        if (!msg)
                return;
        st = msg->st;
        sq_assert(st->in_flight > 0);
        st->in_flight--;
        if (rkm->err) {
                const char *topic = rd_kafka_topic_name(rkm->rkt);
                char why[512];
                delivery_error(rkm->err, topic, why, sizeof(why));
                st->failed++;
                print_outcome(st, "failed", msg->dlt_partition, msg->dlt_offset,
                              msg->task_id, topic, -1, -1, why);
                sq_cmd_say(st->cmd, NULL,
                           "delivery of dlt partition %" PRId32
                           " offset %" PRId64 " to %s failed: %s",
                           msg->dlt_partition, msg->dlt_offset, topic, why);
        } else {
                st->redriven++;
                if (st->memory)
                        sq_dlt_memory_add(st->memory, msg->dlt_partition,
                                          msg->dlt_offset);
                print_outcome(st, "redriven", msg->dlt_partition,
                              msg->dlt_offset, msg->task_id,
                              rd_kafka_topic_name(rkm->rkt), rkm->partition,
                              rkm->offset, NULL);
        }
        sq_free(msg);
}

/* Re-drives one selected dead letter (or says what it would do). */
static void redrive_one(dlt_state_t *st, const dlt_rec_t *rec) {
        const dlt_opts_t *opts        = st->opts;
        const rd_kafka_message_t *rkm = rec->rkm;
        const char *topic             = opts->to;
        const void *value             = rkm->payload;
        size_t value_len              = rkm->len;
        rd_kafka_headers_t *hdrs;
        rd_kafka_resp_err_t err;
        dlt_msg_t *msg;
        const char *id = rec->task ? rec->task->id : "";
        char errstr[512];
        size_t id_len;

        if (!rec->task && !opts->include_undecodable) {
                st->skipped++;
                if (st->skipped <= MAX_SKIP_NOTES)
                        sq_cmd_say(st->cmd, &st->reader.prog,
                                   "skipped dlt=%s/%" PRId32 "/%" PRId64
                                   ": not a task (%s); --include-undecodable "
                                   "re-drives its bytes as they are%s",
                                   opts->rd.topic, rkm->partition, rkm->offset,
                                   rec->decode_error,
                                   st->skipped == MAX_SKIP_NOTES
                                       ? " (further ones only counted)"
                                       : "");
                return;
        }
        if (!topic)
                topic = rec->orig_topic[0] && topic_name_ok(rec->orig_topic)
                            ? rec->orig_topic
                            : st->cmd->cli->topic_tasks;
        if (!opts->force && st->memory &&
            sq_dlt_memory_has(st->memory, rkm->partition, rkm->offset)) {
                st->already++;
                print_outcome(st, "already-redriven", rkm->partition,
                              rkm->offset, id, topic, -1, -1, NULL);
                return;
        }
        if (opts->dry_run) {
                st->redriven++;
                print_outcome(st, "would-redrive", rkm->partition, rkm->offset,
                              id, topic, -1, -1, NULL);
                return;
        }
        if (rec->task && rec->task->attempt != 1) {
                rec->task->attempt = 1;
                if (sq_cmd_register_task_schema(st->cmd, topic, errstr,
                                                sizeof(errstr)) != SQ_OK ||
                    sq_codec_encode_task(st->cmd->codec, rec->task, &value,
                                         &value_len, errstr,
                                         sizeof(errstr)) != SQ_OK) {
                        st->failed++;
                        print_outcome(st, "failed", rkm->partition, rkm->offset,
                                      id, topic, -1, -1, errstr);
                        return;
                }
        }
        id_len             = strlen(id);
        msg                = sq_malloc(sizeof(*msg) + id_len + 1);
        msg->st            = st;
        msg->dlt_partition = rkm->partition;
        msg->dlt_offset    = rkm->offset;
        memcpy(msg->task_id, id, id_len + 1);
        hdrs = redrive_headers(opts, rec);
        for (;;) {
                err = rd_kafka_producev(
                    st->producer, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_KEY(rkm->key, rkm->key_len),
                    RD_KAFKA_V_VALUE((void *)value, value_len),
                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(msg),
                    RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                /* Serve delivery reports until there is room. */
                rd_kafka_poll(st->producer, POLL_TIMEOUT_MS);
        }
        if (err) {
                rd_kafka_headers_destroy(hdrs);
                delivery_error(err, topic, errstr, sizeof(errstr));
                st->failed++;
                print_outcome(st, "failed", rkm->partition, rkm->offset, id,
                              topic, -1, -1, errstr);
                sq_free(msg);
                return;
        }
        st->in_flight++;
        rd_kafka_poll(st->producer, 0);
}

/* Waits for every delivery report; a SIGINT while waiting purges what is
 * still queued (reported as failed) and stops waiting.
 * @returns false when deliveries stay unconfirmed. */
static bool redrive_flush(dlt_state_t *st) {
        int interrupted_at = sq_cli_interrupted();

        while (st->in_flight > 0) {
                rd_kafka_flush(st->producer, POLL_TIMEOUT_MS);
                if (sq_cli_interrupted() > interrupted_at) {
                        rd_kafka_purge(st->producer, RD_KAFKA_PURGE_F_QUEUE);
                        rd_kafka_poll(st->producer, 0);
                        return st->in_flight == 0;
                }
        }
        return true;
}

/* ------------------------------------------------------------------ */

static void print_summary(const dlt_state_t *st) {
        const dlt_opts_t *opts = st->opts;
        char already[400]      = "";

        if (opts->json) {
                json_t *obj = json_object();
                json_object_set_new(obj, "summary", json_true());
                json_object_set_new(obj, "dry_run",
                                    json_boolean(opts->dry_run));
                json_object_set_new(obj, "selected",
                                    json_integer((json_int_t)st->selected));
                json_object_set_new(obj, "redriven",
                                    json_integer((json_int_t)st->redriven));
                json_object_set_new(obj, "skipped",
                                    json_integer((json_int_t)st->skipped));
                json_object_set_new(obj, "failed",
                                    json_integer((json_int_t)st->failed));
                json_object_set_new(obj, "already_redriven",
                                    json_integer((json_int_t)st->already));
                if (st->memory)
                        json_object_set_new(
                            obj, "memory_group",
                            json_string(sq_dlt_memory_group(st->memory)));
                sq_cmd_print_json(obj, JSON_COMPACT);
                return;
        }
        if (st->already)
                snprintf(already, sizeof(already),
                         ", skipped %" PRIu64
                         " already redriven (an earlier redrive sent %s, "
                         "recorded in group %s; --force sends %s again)",
                         st->already, st->already == 1 ? "it" : "them",
                         sq_dlt_memory_group(st->memory),
                         st->already == 1 ? "it" : "them");
        sq_cmd_say(st->cmd, NULL,
                   "selected %" PRIu64 ", %s %" PRIu64 ", skipped %" PRIu64
                   " (undecodable), failed %" PRIu64 "%s",
                   st->selected, opts->dry_run ? "would redrive" : "redriven",
                   st->redriven, st->skipped, st->failed, already);
}

/* Lists or re-drives one dead letter (sq_reader_sink_t).
 * @returns false once --limit dead letters are selected. */
static bool handle_record(void *arg, const rd_kafka_message_t *rkm) {
        dlt_state_t *st        = arg;
        const dlt_opts_t *opts = st->opts;
        dlt_rec_t rec;

        rec_load(st, rkm, &rec);
        if (!rec.task)
                st->undecodable++;
        if (rec_selected(opts, &rec)) {
                st->selected++;
                if (opts->redrive) {
                        redrive_one(st, &rec);
                } else if (opts->json) {
                        sq_cmd_print_json(rec_json(opts, &rec), JSON_COMPACT);
                } else {
                        print_rec_text(opts, &rec);
                        putchar('\n');
                }
        }
        sq_task_destroy(rec.task);
        return !opts->limit || st->selected < opts->limit;
}

/* Serves the producer's delivery reports between polls (sq_reader_sink_t). */
static void serve_reports(void *arg) {
        dlt_state_t *st = arg;

        if (st->producer)
                rd_kafka_poll(st->producer, 0);
}

/** @brief Runs `dlt list` / `dlt redrive`; @p argv[0] is "dlt". */
int sq_cli_dlt(const sq_cli_t *cli, int argc, char **argv) {
        dlt_opts_t opts;
        dlt_state_t st;
        sq_reader_sink_t sink;
        sq_cmd_t cmd;
        bool enough;
        int ret;

        sq_cmd_init(&cmd, cli, "dlt", dlt_usage);
        memset(&opts, 0, sizeof(opts));
        memset(&st, 0, sizeof(st));
        sq_strmap_init(&opts.reasons);
        sq_strmap_init(&opts.task_ids);
        st.cmd  = &cmd;
        st.opts = &opts;

        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                if (argc >= 2) {
                        dlt_usage(stdout);
                        ret = SQ_CLI_EXIT_OK;
                } else {
                        ret = sq_cli_usage_error("dlt",
                                                 "give a subcommand: list or "
                                                 "redrive");
                }
                goto done;
        }
        if (!strcmp(argv[1], "list")) {
                cmd.name = "dlt list";
        } else if (!strcmp(argv[1], "redrive")) {
                cmd.name     = "dlt redrive";
                opts.redrive = true;
        } else {
                static const char *const subs[] = {"list", "redrive"};
                const char *best                = sq_config_suggest(
                                   argv[1], subs, SQ_ARRAY_SIZE(subs), sizeof(subs[0]));
                ret = sq_cli_usage_error("dlt",
                                         "unknown subcommand \"%s\" "
                                         "(expected list or redrive)%s%s%s",
                                         argv[1], best ? "; did you mean " : "",
                                         best ? best : "", best ? "?" : "");
                goto done;
        }
        opts.rd.topic  = DEFAULT_DLT;
        opts.partition = -1;
        ret            = parse_opts(&cmd, &opts, argc - 1, argv + 1);
        if (ret != SQ_CMD_CONTINUE)
                goto done;
        ret = sq_cmd_ready(&cmd, true);
        if (ret != SQ_CLI_EXIT_OK)
                goto done;
        ret = sq_reader_open(&st.reader, &cmd, &opts.rd);
        if (ret != SQ_CLI_EXIT_OK)
                goto done;
        if (opts.redrive) {
                ret = sq_dlt_memory_load(&cmd, opts.rd.topic, &st.memory);
                if (ret != SQ_CLI_EXIT_OK)
                        goto done;
        }
        if (opts.redrive && !opts.dry_run) {
                ret = sq_cmd_producer_new(&cmd, SQ_CLI_PROG "-dlt", dr_msg_cb,
                                          &st.producer);
                if (ret != SQ_CLI_EXIT_OK)
                        goto done;
        }

        memset(&sink, 0, sizeof(sink));
        sink.record = handle_record;
        sink.tick   = serve_reports;
        sink.arg    = &st;
        ret         = sq_reader_run(&st.reader, &sink, &enough);
        if (st.producer && !redrive_flush(&st)) {
                sq_cmd_say(&cmd, NULL,
                           "interrupted with %" PRIu64 " deliveries "
                           "unconfirmed: they may or may not have been "
                           "written",
                           st.in_flight);
                st.failed += st.in_flight;
        }
        /* After every delivery report: only what was delivered is
         * remembered. */
        if (st.producer && st.memory && !sq_dlt_memory_save(st.memory) &&
            ret == SQ_CLI_EXIT_OK)
                ret = SQ_CLI_EXIT_INCOMPLETE;
        if (ret == SQ_CLI_EXIT_OK && sq_cli_interrupted() &&
            !sq_reader_done(&st.reader) && !enough) {
                sq_cmd_say(&cmd, NULL,
                           "interrupted after %" PRIu64
                           " dead letters, before the end",
                           st.selected);
                ret = SQ_CLI_EXIT_INCOMPLETE;
        }
        if (opts.redrive && (!cli->quiet || opts.json))
                print_summary(&st);
        if (!sq_cmd_flush_stdout(&cmd))
                ret = SQ_CLI_EXIT_INCOMPLETE;
        if (ret == SQ_CLI_EXIT_OK && st.failed > 0)
                ret = SQ_CLI_EXIT_INCOMPLETE;

done:
        if (st.producer)
                rd_kafka_destroy(st.producer);
        sq_dlt_memory_destroy(st.memory);
        sq_reader_term(&st.reader);
        sq_cmd_term(&cmd);
        sq_strmap_term(&opts.reasons);
        sq_strmap_term(&opts.task_ids);
        return ret;
}
