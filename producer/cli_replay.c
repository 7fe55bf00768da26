/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_replay.c: `swarmq-producer replay`: prints the records of a swarmq
 * topic (events by default, results, or any topic of swarmq records) as
 * JSON lines on stdout, from a chosen start to a chosen end.
 *
 * DESIGN
 *   A plain librdkafka consumer that joins no consumer group: it reads
 *   the topic's partitions from metadata and assign()s them with explicit
 *   start offsets, so nothing is committed and no group is joined (the
 *   group.id it needs for assign() is a throwaway name). Start offsets
 *   come from the beginning, from --offset (clamped to the watermarks) or
 *   from rd_kafka_offsets_for_times() for --since. The end of each
 *   partition is fixed at start: its high watermark then (so replaying a
 *   finished run terminates even while others write), or never with
 *   --follow; --until ends a partition at its first record stamped at or
 *   after the given time. A partition that is done is paused, not
 *   unassigned, so its buffered records are simply never served.
 *
 *   The main thread is the only thread that polls. Records come out in
 *   each partition's order; partitions are interleaved as the fetcher
 *   serves them, so there is no global order across partitions. Each
 *   record is decoded with the core codec and rendered with
 *   sq_codec_{event,result,task}_to_json(); Kafka coordinates are spliced
 *   into that object with --with-coordinates. Undecodable records are
 *   warned about with their coordinates (and printed as an error object
 *   with --include-undecodable), never fatal.
 *
 *   Timestamp lookup: Kafka answers offsets_for_times with -1 for a
 *   partition that has no record at or after the time. When every
 *   partition that holds records answers -1, replay asks again for time 0:
 *   a broker that implements the lookup answers that with a real offset
 *   (the replay is then simply empty), one that does not (librdkafka's
 *   mock cluster) answers -1 again, and replay says so and exits 3.
 */
#include "cli.h"

#include "codec.h"
#include "log.h"
#include "task.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD             "replay"
#define POLL_TIMEOUT_MS 100
#define MAX_WARNINGS    20 /* undecodable-record warnings printed */

/* What the topic holds. */
typedef enum {
        KIND_EVENTS,  /* default: the events topic */
        KIND_RESULTS, /* --results */
        KIND_ANY,     /* --topic: chosen per record by its schema id */
} replay_kind_t;

/* One --offset P:N. */
typedef struct part_offset_s {
        int32_t partition;
        int64_t offset;
} part_offset_t;

typedef struct replay_opts_s {
        const char *topic;
        replay_kind_t kind;
        bool from_beginning;
        bool have_offset_all; /* --offset N */
        int64_t offset_all;
        part_offset_t *offsets; /* --offset P:N (owned, sq_free()) */
        size_t offsets_cnt;
        const char *since_arg; /* NULL: no --since */
        int64_t since_ms;
        const char *until_arg; /* NULL: no --until */
        int64_t until_ms;
        uint64_t max; /* 0: no limit */
        sq_strmap_t task_ids;
        sq_strmap_t types;
        bool follow;
        bool with_coords;
        bool include_undecodable;
} replay_opts_t;

/* One partition of the topic. */
typedef struct part_s {
        int32_t partition;
        int64_t low, high; /* watermarks when replay started */
        int64_t start;     /* first offset to read */
        int64_t end;       /* stop before this offset; INT64_MAX: follow */
        bool at_eof;       /* caught up with the partition's end */
        bool done;
} part_t;

typedef struct replay_state_s {
        part_t *parts; /* sorted by partition id */
        size_t parts_cnt;
        size_t parts_done;
        char *topic_json; /* the topic name as a JSON string (owned) */
        uint64_t consumed;
        uint64_t printed;
        uint64_t undecodable;
        sq_progress_t prog;
} replay_state_t;

/* clang-format off: the help text is laid out as it prints. */
static void replay_usage(FILE *fp) {
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
            "      --type TYPE        only events of this type: received, "
            "started,\n"
            "                         succeeded, failed, timed_out, "
            "dead_lettered\n"
            "                         (repeatable; not with --results)\n"
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
            "failed\n");
}
/* clang-format on */

/* ------------------------------------------------------------------ */
/* Time parsing */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

/* Reads exactly @p n digits at *@p sp into *@p valp. */
static bool digits(const char **sp, int n, int64_t *valp) {
        int64_t v = 0;
        int i;

        for (i = 0; i < n; i++) {
                if ((*sp)[i] < '0' || (*sp)[i] > '9')
                        return false;
                v = v * 10 + ((*sp)[i] - '0');
        }
        *sp += n;
        *valp = v;
        return true;
}

/**
 * Parses TIME: epoch milliseconds, or ISO 8601
 * YYYY-MM-DDTHH:MM[:SS[.fff]] followed by Z or +hh[:mm] / -hh[:mm].
 * @returns true with *@p msp set, false when @p str is not a TIME.
 */
static bool parse_time(const char *str, int64_t *msp) {
        static const int mdays[] = {31, 28, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31};
        const char *s            = str;
        int64_t y, mo, d, h, mi, sec = 0, frac = 0, oh = 0, om = 0, dim;
        int sign = 0, n;

        if (*s >= '0' && *s <= '9' && !strchr(s, '-') && !strchr(s, ':'))
                return sq_parse_int64(s, 0, INT64_MAX, msp) == SQ_OK;

        if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) ||
            *s++ != '-' || !digits(&s, 2, &d) ||
            (*s != 'T' && *s != 't' && *s != ' '))
                return false;
        s++;
        if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi))
                return false;
        if (*s == ':') {
                s++;
                if (!digits(&s, 2, &sec))
                        return false;
                if (*s == '.' || *s == ',') {
                        s++;
                        /* Milliseconds from the first three digits; finer
                         * digits are accepted and truncated. */
                        for (n = 0; *s >= '0' && *s <= '9'; n++, s++) {
                                if (n < 3)
                                        frac = frac * 10 + (*s - '0');
                        }
                        if (n == 0 || n > 9)
                                return false;
                        for (; n < 3; n++)
                                frac *= 10;
                }
        }
        if (*s == 'Z' || *s == 'z') {
                s++;
        } else if (*s == '+' || *s == '-') {
                sign = *s++ == '+' ? 1 : -1;
                if (!digits(&s, 2, &oh))
                        return false;
                if (*s == ':')
                        s++;
                if (*s && !digits(&s, 2, &om))
                        return false;
                if (oh > 23 || om > 59)
                        return false;
        } else {
                return false; /* a zone is required: no local-time guess */
        }
        if (*s)
                return false;

        if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
                return false;
        dim = mdays[mo - 1] +
              (mo == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)));
        if (d > dim)
                return false;

        *msp = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
                 sign * (oh * 3600 + om * 60)) *
                1000) +
               frac;
        return *msp >= 0;
}

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
                opts->have_offset_all = true;
                opts->offset_all      = off;
                return -1;
        }
        if ((size_t)(colon - arg) >= sizeof(pbuf))
                goto bad;
        memcpy(pbuf, arg, (size_t)(colon - arg));
        pbuf[colon - arg] = '\0';
        if (sq_parse_int64(pbuf, 0, INT32_MAX, &p) != SQ_OK ||
            sq_parse_int64(colon + 1, 0, INT64_MAX, &off) != SQ_OK)
                goto bad;
        for (i = 0; i < opts->offsets_cnt; i++) {
                if (opts->offsets[i].partition == (int32_t)p)
                        return sq_cli_usage_error(
                            CMD, "--offset names partition %" PRId64 " twice",
                            p);
        }
        opts->offsets = sq_realloc(opts->offsets, (opts->offsets_cnt + 1) *
                                                      sizeof(*opts->offsets));
        opts->offsets[opts->offsets_cnt].partition = (int32_t)p;
        opts->offsets[opts->offsets_cnt].offset    = off;
        opts->offsets_cnt++;
        return -1;
bad:
        return sq_cli_usage_error(CMD,
                                  "--offset expects N or PARTITION:N "
                                  "(non-negative numbers), got \"%s\"",
                                  arg);
}

/* @returns -1 to go on, or an exit code. */
static int parse_opts(const sq_cli_t *cli, replay_opts_t *opts, int argc,
                      char **argv) {
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
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int topics_given = 0, starts_given;
        int64_t v;
        int opt, ret;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
                switch (opt) {
                case OPT_EVENTS:
                        opts->kind  = KIND_EVENTS;
                        opts->topic = cli->topic_events;
                        topics_given++;
                        break;
                case OPT_RESULTS:
                        opts->kind  = KIND_RESULTS;
                        opts->topic = cli->topic_results;
                        topics_given++;
                        break;
                case OPT_TOPIC:
                        if (!*optarg)
                                return sq_cli_usage_error(
                                    CMD, "--topic must not be empty");
                        opts->kind  = KIND_ANY;
                        opts->topic = optarg;
                        topics_given++;
                        break;
                case OPT_FROM_BEGINNING:
                        opts->from_beginning = true;
                        break;
                case OPT_OFFSET:
                        ret = add_offset(opts, optarg);
                        if (ret != -1)
                                return ret;
                        break;
                case OPT_SINCE:
                        if (!parse_time(optarg, &opts->since_ms))
                                return sq_cli_usage_error(
                                    CMD,
                                    "--since expects an ISO 8601 time with a "
                                    "zone (2026-11-24T10:00:00Z) or epoch "
                                    "milliseconds, got \"%s\"",
                                    optarg);
                        opts->since_arg = optarg;
                        break;
                case OPT_FOLLOW:
                        opts->follow = true;
                        break;
                case OPT_UNTIL:
                        if (!parse_time(optarg, &opts->until_ms))
                                return sq_cli_usage_error(
                                    CMD,
                                    "--until expects an ISO 8601 time with a "
                                    "zone (2026-11-24T10:00:00Z) or epoch "
                                    "milliseconds, got \"%s\"",
                                    optarg);
                        opts->until_arg = optarg;
                        break;
                case OPT_MAX:
                        if (sq_parse_int64(optarg, 1, INT64_MAX, &v) != SQ_OK)
                                return sq_cli_usage_error(
                                    CMD,
                                    "--max expects a positive number, got "
                                    "\"%s\"",
                                    optarg);
                        opts->max = (uint64_t)v;
                        break;
                case OPT_TASK_ID:
                        if (!*optarg)
                                return sq_cli_usage_error(
                                    CMD, "--task-id must not be empty");
                        sq_strmap_put(&opts->task_ids, optarg, NULL);
                        break;
                case OPT_TYPE:
                        if (!*optarg)
                                return sq_cli_usage_error(
                                    CMD, "--type must not be empty");
                        sq_strmap_put(&opts->types, optarg, NULL);
                        break;
                case OPT_WITH_COORDS:
                        opts->with_coords = true;
                        break;
                case OPT_INCLUDE_UNDECODABLE:
                        opts->include_undecodable = true;
                        break;
                case 'h':
                        replay_usage(stdout);
                        return SQ_CLI_EXIT_OK;
                case ':':
                        return sq_cli_usage_error(
                            CMD, "option %s needs a value", argv[optind - 1]);
                default:
                        return sq_cli_usage_error(CMD, "unknown option %s",
                                                  argv[optind - 1]);
                }
        }
        if (optind < argc)
                return sq_cli_usage_error(CMD, "unexpected argument \"%s\"",
                                          argv[optind]);
        if (topics_given > 1)
                return sq_cli_usage_error(CMD, "give at most one of --events, "
                                               "--results and --topic");
        starts_given = opts->from_beginning +
                       (opts->have_offset_all || opts->offsets_cnt > 0) +
                       (opts->since_arg != NULL);
        if (starts_given > 1)
                return sq_cli_usage_error(CMD, "give at most one start: "
                                               "--from-beginning, --offset or "
                                               "--since");
        if (opts->types.cnt && opts->kind == KIND_RESULTS)
                return sq_cli_usage_error(CMD, "--type filters events; "
                                               "results have none (drop "
                                               "--results or --type)");
        return -1;
}

/* ------------------------------------------------------------------ */
/* Kafka */

/* Creates the consumer (assigned, never joining its group) and checks that
 * a broker answers. @returns SQ_CLI_EXIT_OK or an exit code, with a
 * message printed. */
static int consumer_open(const sq_cli_t *cli, rd_kafka_t **rkp) {
        static const char *const settings[] = {
            "enable.partition.eof", "true",
            /* Start offsets are clamped to the watermarks; a partition
             * truncated by retention meanwhile restarts at its start. */
            "auto.offset.reset", "earliest", NULL};
        return sq_cli_consumer_new(cli, CMD, settings, rkp);
}

static int cmp_part(const void *a, const void *b) {
        const part_t *pa = a, *pb = b;
        return pa->partition < pb->partition   ? -1
               : pa->partition > pb->partition ? 1
                                               : 0;
}

/* Reads the topic's partitions and their watermarks into @p st.
 * @returns SQ_CLI_EXIT_OK or an exit code, with a message printed. */
static int load_partitions(const sq_cli_t *cli, const replay_opts_t *opts,
                           replay_state_t *st, rd_kafka_t *rk) {
        const struct rd_kafka_metadata *md = NULL;
        const struct rd_kafka_metadata_topic *mt;
        rd_kafka_topic_t *rkt;
        rd_kafka_resp_err_t err;
        int i, ret = SQ_CLI_EXIT_BROKER;

        rkt = rd_kafka_topic_new(rk, opts->topic, NULL);
        err = rd_kafka_metadata(rk, 0, rkt, &md, cli->connect_timeout_ms);
        rd_kafka_topic_destroy(rkt);
        if (err) {
                fprintf(stderr,
                        "%s " CMD ": cannot read the metadata of topic %s: "
                        "%s\n",
                        SQ_CLI_PROG, opts->topic, rd_kafka_err2str(err));
                goto done;
        }
        mt = md->topic_cnt == 1 ? &md->topics[0] : NULL;
        if (!mt || mt->err || mt->partition_cnt == 0) {
                fprintf(stderr, "%s " CMD ": topic %s: %s\n", SQ_CLI_PROG,
                        opts->topic,
                        mt && mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                            ? "no such topic on this cluster"
                        : mt && mt->err ? rd_kafka_err2str(mt->err)
                                        : "the broker lists no partitions");
                goto done;
        }
        st->parts_cnt = (size_t)mt->partition_cnt;
        st->parts     = sq_calloc(st->parts_cnt, sizeof(*st->parts));
        for (i = 0; i < mt->partition_cnt; i++)
                st->parts[i].partition = mt->partitions[i].id;
        qsort(st->parts, st->parts_cnt, sizeof(*st->parts), cmp_part);

        for (i = 0; i < (int)st->parts_cnt; i++) {
                part_t *part = &st->parts[i];
                err          = rd_kafka_query_watermark_offsets(
                             rk, opts->topic, part->partition, &part->low, &part->high,
                             cli->connect_timeout_ms);
                if (err) {
                        fprintf(stderr,
                                "%s " CMD ": cannot read the offsets of "
                                "topic %s partition %" PRId32 ": %s\n",
                                SQ_CLI_PROG, opts->topic, part->partition,
                                rd_kafka_err2str(err));
                        goto done;
                }
        }
        ret = SQ_CLI_EXIT_OK;

done:
        if (md)
                rd_kafka_metadata_destroy(md);
        return ret;
}

static part_t *find_part(replay_state_t *st, int32_t partition) {
        part_t key;

        key.partition = partition;
        return bsearch(&key, st->parts, st->parts_cnt, sizeof(*st->parts),
                       cmp_part);
}

/* Asks the broker for the first offset at or after @p ts_ms in every
 * partition that holds records; writes them to @p offsets (-1: none).
 * @returns the count of partitions with records that answered an offset,
 *          or -1 on an error (printed). */
static int lookup_times(const sq_cli_t *cli, const replay_opts_t *opts,
                        replay_state_t *st, rd_kafka_t *rk, int64_t ts_ms,
                        int64_t *offsets) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;
        int i, found = 0;

        list = rd_kafka_topic_partition_list_new((int)st->parts_cnt);
        for (i = 0; i < (int)st->parts_cnt; i++)
                rd_kafka_topic_partition_list_add(list, opts->topic,
                                                  st->parts[i].partition)
                    ->offset = ts_ms;
        err = rd_kafka_offsets_for_times(rk, list, cli->connect_timeout_ms);
        if (err) {
                fprintf(stderr,
                        "%s " CMD ": timestamp lookup on topic %s failed: "
                        "%s\n",
                        SQ_CLI_PROG, opts->topic, rd_kafka_err2str(err));
                found = -1;
                goto done;
        }
        for (i = 0; i < list->cnt; i++) {
                const rd_kafka_topic_partition_t *rktpar = &list->elems[i];
                part_t *part = find_part(st, rktpar->partition);

                sq_assert(part);
                if (rktpar->err) {
                        fprintf(stderr,
                                "%s " CMD ": timestamp lookup on topic %s "
                                "partition %" PRId32 " failed: %s\n",
                                SQ_CLI_PROG, opts->topic, rktpar->partition,
                                rd_kafka_err2str(rktpar->err));
                        found = -1;
                        goto done;
                }
                offsets[part - st->parts] = rktpar->offset;
                if (part->high > part->low && rktpar->offset >= 0)
                        found++;
        }

done:
        rd_kafka_topic_partition_list_destroy(list);
        return found;
}

/* Decides each partition's start and end from the options.
 * @returns SQ_CLI_EXIT_OK or an exit code, with a message printed. */
static int plan(const sq_cli_t *cli, const replay_opts_t *opts,
                replay_state_t *st, rd_kafka_t *rk) {
        int64_t *found = NULL;
        size_t i, with_data = 0;
        int ret = SQ_CLI_EXIT_OK;

        for (i = 0; i < opts->offsets_cnt; i++) {
                if (!find_part(st, opts->offsets[i].partition)) {
                        fprintf(stderr,
                                "%s " CMD ": --offset %" PRId32 ":%" PRId64
                                ": topic %s has no partition %" PRId32
                                " (it has %zu)\n",
                                SQ_CLI_PROG, opts->offsets[i].partition,
                                opts->offsets[i].offset, opts->topic,
                                opts->offsets[i].partition, st->parts_cnt);
                        return SQ_CLI_EXIT_USAGE;
                }
        }

        for (i = 0; i < st->parts_cnt; i++) {
                part_t *part = &st->parts[i];
                size_t j;

                with_data += part->high > part->low;
                part->end   = opts->follow ? INT64_MAX : part->high;
                part->start = part->low;
                if (opts->have_offset_all)
                        part->start = opts->offset_all;
                else if (opts->offsets_cnt)
                        part->start = INT64_MAX; /* not named: not read */
                for (j = 0; j < opts->offsets_cnt; j++) {
                        if (opts->offsets[j].partition == part->partition)
                                part->start = opts->offsets[j].offset;
                }
                if (part->start == INT64_MAX) {
                        part->done = true;
                        continue;
                }
                part->start = SQ_MAX(part->start, part->low);
                part->start = SQ_MIN(part->start, part->high);
        }

        if (opts->since_arg) {
                int n;

                found = sq_calloc(st->parts_cnt, sizeof(*found));
                n     = lookup_times(cli, opts, st, rk, opts->since_ms, found);
                if (n < 0) {
                        ret = SQ_CLI_EXIT_BROKER;
                        goto done;
                }
                if (n == 0 && with_data > 0) {
                        /* Every partition with records says "none after
                         * that time": true on Kafka when TIME is later than
                         * the last record, but also what a broker without
                         * timestamp lookup answers. Time 0 tells them
                         * apart. */
                        int64_t *probe =
                            sq_calloc(st->parts_cnt, sizeof(*probe));
                        int m = lookup_times(cli, opts, st, rk, 0, probe);
                        sq_free(probe);
                        if (m < 0) {
                                ret = SQ_CLI_EXIT_BROKER;
                                goto done;
                        }
                        if (m == 0) {
                                fprintf(stderr,
                                        "%s " CMD ": --since %s: timestamp "
                                        "lookup is not supported by this "
                                        "broker (it answered -1 for every "
                                        "partition of topic %s that has "
                                        "records, even for time 0); use "
                                        "--offset or --from-beginning with "
                                        "--until instead\n",
                                        SQ_CLI_PROG, opts->since_arg,
                                        opts->topic);
                                ret = SQ_CLI_EXIT_BROKER;
                                goto done;
                        }
                }
                for (i = 0; i < st->parts_cnt; i++) {
                        part_t *part = &st->parts[i];
                        /* -1: nothing at or after TIME yet; with --follow,
                         * what arrives from now on. */
                        part->start = found[i] < 0 ? part->high : found[i];
                        part->start = SQ_MAX(part->start, part->low);
                        part->start = SQ_MIN(part->start, part->high);
                }
        }

        for (i = 0; i < st->parts_cnt; i++) {
                part_t *part = &st->parts[i];
                if (!part->done && part->start >= part->end)
                        part->done = true;
                st->parts_done += part->done;
        }

done:
        sq_free(found);
        return ret;
}

/* Assigns every partition that is not done at its start offset. */
static int assign(const replay_opts_t *opts, replay_state_t *st,
                  rd_kafka_t *rk) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;
        size_t i;

        list = rd_kafka_topic_partition_list_new((int)st->parts_cnt);
        for (i = 0; i < st->parts_cnt; i++) {
                if (st->parts[i].done)
                        continue;
                rd_kafka_topic_partition_list_add(list, opts->topic,
                                                  st->parts[i].partition)
                    ->offset = st->parts[i].start;
        }
        err = rd_kafka_assign(rk, list);
        rd_kafka_topic_partition_list_destroy(list);
        if (err) {
                fprintf(stderr, "%s " CMD ": cannot assign topic %s: %s\n",
                        SQ_CLI_PROG, opts->topic, rd_kafka_err2str(err));
                return SQ_CLI_EXIT_BROKER;
        }
        return SQ_CLI_EXIT_OK;
}

/* Marks a partition done and stops fetching it. */
static void part_finish(const replay_opts_t *opts, replay_state_t *st,
                        rd_kafka_t *rk, part_t *part) {
        rd_kafka_topic_partition_list_t *list;

        if (part->done)
                return;
        part->done = true;
        st->parts_done++;
        list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, opts->topic, part->partition);
        rd_kafka_pause_partitions(rk, list);
        rd_kafka_topic_partition_list_destroy(list);
}

/* ------------------------------------------------------------------ */
/* Records */

/* Prints @p json (a JSON object) with the record's coordinates spliced in
 * before its closing brace when asked. */
static void print_object(const replay_opts_t *opts, replay_state_t *st,
                         const char *json, const rd_kafka_message_t *rkm) {
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

static void print_undecodable(const replay_opts_t *opts, replay_state_t *st,
                              const rd_kafka_message_t *rkm,
                              const char *errstr) {
        json_t *obj;
        char *text;

        st->undecodable++;
        if (st->undecodable <= MAX_WARNINGS) {
                sq_progress_clear(&st->prog);
                fprintf(stderr,
                        "%s " CMD ": warning: undecodable record topic=%s "
                        "partition=%" PRId32 " offset=%" PRId64 ": %s%s\n",
                        SQ_CLI_PROG, opts->topic, rkm->partition, rkm->offset,
                        errstr,
                        st->undecodable == MAX_WARNINGS
                            ? " (further ones only counted)"
                            : "");
        }
        if (!opts->include_undecodable)
                return;
        obj = json_object();
        json_object_set_new(obj, "topic", json_string(opts->topic));
        json_object_set_new(obj, "partition", json_integer(rkm->partition));
        json_object_set_new(obj, "offset", json_integer(rkm->offset));
        json_object_set_new(obj, "error", json_string(errstr));
        text = json_dumps(obj, JSON_COMPACT);
        sq_assert(text);
        print_object(opts, st, text, rkm);
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
        if (id == SQ_SCHEMA_ID_EVENT)
                return KIND_EVENTS;
        if (id == SQ_SCHEMA_ID_RESULT)
                return KIND_RESULTS;
        return KIND_ANY;
}

/* Decodes, filters and prints one record. */
static void handle_record(const replay_opts_t *opts, replay_state_t *st,
                          sq_codec_t *codec, const rd_kafka_message_t *rkm) {
        replay_kind_t kind  = opts->kind;
        sq_event_t *event   = NULL;
        sq_result_t *result = NULL;
        sq_task_t *task     = NULL;
        char *json          = NULL;
        char errstr[512];
        sq_err_t err;

        if (kind == KIND_ANY)
                kind = record_kind(rkm);
        if (!rkm->payload) {
                print_undecodable(opts, st, rkm,
                                  "empty record (no value: a tombstone?)");
                return;
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
                print_undecodable(opts, st, rkm, errstr);
        } else if (json) {
                print_object(opts, st, json, rkm);
                st->printed++;
        }
        sq_free(json);
        sq_event_destroy(event);
        sq_result_destroy(result);
        sq_task_destroy(task);
}

/* Handles one consumer message or error event.
 * @returns SQ_CLI_EXIT_OK, or SQ_CLI_EXIT_BROKER on a fatal error. */
static int handle_message(const replay_opts_t *opts, replay_state_t *st,
                          sq_codec_t *codec, rd_kafka_t *rk,
                          const rd_kafka_message_t *rkm) {
        rd_kafka_timestamp_type_t tstype;
        part_t *part;
        int64_t ts;

        if (rkm->err && rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                sq_progress_clear(&st->prog);
                if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
                        char errstr[512];
                        rd_kafka_fatal_error(rk, errstr, sizeof(errstr));
                        fprintf(stderr,
                                "%s " CMD ": fatal consumer error: %s\n",
                                SQ_CLI_PROG, errstr);
                        return SQ_CLI_EXIT_BROKER;
                }
                /* Transient (a broker went away): librdkafka retries. */
                SQ_LOG(SQ_LOG_WARNING, "REPLAY", "consumer error: %s",
                       rd_kafka_message_errstr(rkm));
                return SQ_CLI_EXIT_OK;
        }
        part = rkm->rkt ? find_part(st, rkm->partition) : NULL;
        if (!part || part->done)
                return SQ_CLI_EXIT_OK; /* fetched before the pause */
        part->at_eof = rkm->err != 0;
        if (rkm->err) {
                /* End of partition: rkm->offset is the next offset. It
                 * also covers control records that end a partition. */
                if (rkm->offset >= part->end)
                        part_finish(opts, st, rk, part);
                return SQ_CLI_EXIT_OK;
        }
        if (rkm->offset >= part->end) {
                part_finish(opts, st, rk, part);
                return SQ_CLI_EXIT_OK;
        }
        if (opts->until_arg) {
                ts = rd_kafka_message_timestamp(rkm, &tstype);
                if (tstype != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE &&
                    ts >= opts->until_ms) {
                        part_finish(opts, st, rk, part);
                        return SQ_CLI_EXIT_OK;
                }
        }
        st->consumed++;
        handle_record(opts, st, codec, rkm);
        if (rkm->offset + 1 >= part->end)
                part_finish(opts, st, rk, part);
        return SQ_CLI_EXIT_OK;
}

/* --follow --until: once the clock passes TIME, a partition that has caught
 * up will see no record stamped before TIME any more; it is done. */
static void finish_idle(const replay_opts_t *opts, replay_state_t *st,
                        rd_kafka_t *rk) {
        size_t i;

        if (!opts->follow || !opts->until_arg ||
            sq_wallclock_ms() < opts->until_ms)
                return;
        for (i = 0; i < st->parts_cnt; i++) {
                if (st->parts[i].at_eof)
                        part_finish(opts, st, rk, &st->parts[i]);
        }
}

/** @brief Runs `replay`; see replay_usage(). */
int sq_cli_replay(const sq_cli_t *cli, int argc, char **argv) {
        replay_opts_t opts;
        replay_state_t st;
        sq_codec_t *codec = NULL;
        rd_kafka_t *rk    = NULL;
        rd_kafka_message_t *rkm;
        json_t *jtopic;
        uint64_t total = 0;
        char errstr[512];
        size_t i;
        int ret;

        memset(&opts, 0, sizeof(opts));
        memset(&st, 0, sizeof(st));
        sq_strmap_init(&opts.task_ids);
        sq_strmap_init(&opts.types);
        opts.kind  = KIND_EVENTS;
        opts.topic = cli->topic_events;

        ret = parse_opts(cli, &opts, argc, argv);
        if (ret != -1)
                goto done;
        if (!cli->have_brokers) {
                ret = sq_cli_usage_error(NULL,
                                         "no brokers: give -b BROKERS or set "
                                         "SWARMQ_BOOTSTRAP_SERVERS");
                goto done;
        }
        codec = sq_codec_new(errstr, sizeof(errstr));
        if (!codec) {
                fprintf(stderr, "%s " CMD ": %s\n", SQ_CLI_PROG, errstr);
                ret = SQ_CLI_EXIT_INCOMPLETE;
                goto done;
        }
        jtopic        = json_string(opts.topic);
        st.topic_json = jtopic ? json_dumps(jtopic, JSON_ENCODE_ANY) : NULL;
        json_decref(jtopic);
        if (!st.topic_json) {
                ret = sq_cli_usage_error(CMD, "topic name \"%s\" is not UTF-8",
                                         opts.topic);
                goto done;
        }

        ret = consumer_open(cli, &rk);
        if (ret != SQ_CLI_EXIT_OK)
                goto done;
        ret = load_partitions(cli, &opts, &st, rk);
        if (ret != SQ_CLI_EXIT_OK)
                goto done;
        ret = plan(cli, &opts, &st, rk);
        if (ret != SQ_CLI_EXIT_OK)
                goto done;
        for (i = 0; i < st.parts_cnt; i++) {
                if (!st.parts[i].done && !opts.follow)
                        total +=
                            (uint64_t)(st.parts[i].end - st.parts[i].start);
        }
        SQ_LOG(SQ_LOG_DEBUG, "REPLAY",
               "topic=%s partitions=%zu to_read=%zu records=%" PRIu64,
               opts.topic, st.parts_cnt, st.parts_cnt - st.parts_done, total);
        ret = assign(&opts, &st, rk);
        if (ret != SQ_CLI_EXIT_OK)
                goto done;

        /* Records on the terminal would scroll the line away: a progress
         * line only when stdout goes elsewhere, so print_object() never
         * has to erase it. */
        sq_progress_init(&st.prog, !cli->quiet && !isatty(STDOUT_FILENO), total,
                         "records");
        while (st.parts_done < st.parts_cnt &&
               (!opts.max || st.printed < opts.max)) {
                if (sq_cli_interrupted())
                        break;
                rkm = rd_kafka_consumer_poll(rk, POLL_TIMEOUT_MS);
                if (!rkm) {
                        /* Idle: let a pipe reader (tail -f style) see what
                         * came so far. */
                        fflush(stdout);
                        sq_progress_update(&st.prog, st.consumed, false);
                        finish_idle(&opts, &st, rk);
                        continue;
                }
                ret = handle_message(&opts, &st, codec, rk, rkm);
                rd_kafka_message_destroy(rkm);
                if (ret != SQ_CLI_EXIT_OK)
                        break;
                sq_progress_update(&st.prog, st.consumed, false);
        }
        sq_progress_update(&st.prog, st.consumed, true);
        sq_progress_clear(&st.prog);
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "%s " CMD ": cannot write to stdout\n",
                        SQ_CLI_PROG);
                ret = SQ_CLI_EXIT_INCOMPLETE;
        } else if (ret == SQ_CLI_EXIT_OK && sq_cli_interrupted() &&
                   !opts.follow && st.parts_done < st.parts_cnt &&
                   (!opts.max || st.printed < opts.max)) {
                fprintf(stderr,
                        "%s " CMD ": interrupted after %" PRIu64
                        " records, before the end\n",
                        SQ_CLI_PROG, st.printed);
                ret = SQ_CLI_EXIT_INCOMPLETE;
        }
        if (st.undecodable > 0)
                fprintf(stderr,
                        "%s " CMD ": %" PRIu64 " undecodable records in "
                        "topic %s\n",
                        SQ_CLI_PROG, st.undecodable, opts.topic);

done:
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        sq_codec_destroy(codec);
        free(st.topic_json); /* jansson's malloc */
        sq_free(st.parts);
        sq_free(opts.offsets);
        sq_strmap_term(&opts.task_ids);
        sq_strmap_term(&opts.types);
        return ret;
}
