/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_reader.c: the topic reader shared by `replay` and `dlt` (see
 * cli_reader.h): start offsets from options, fixed ends, no group.
 *
 * DESIGN
 *   Single-threaded (the command's main thread). sq_reader_open() fixes
 *   every partition's [start, end) before the first fetch: the watermarks
 *   are read once, so the total is known for the progress line and a
 *   finished topic ends the read. sq_reader_poll() pauses a partition the
 *   moment its last record is handed out or its end-of-partition event
 *   reaches the end; records fetched before the pause are dropped.
 */
#include "cli_reader.h"

#include "kafka_conf.h"
#include "log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RUN_POLL_TIMEOUT_MS 100

/* ------------------------------------------------------------------ */
/* Time */

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
bool sq_cli_parse_time(const char *str, int64_t *msp) {
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
/* Kafka */

/* Creates the consumer (assigned, never joining its group) and checks that
 * a broker answers. @returns SQ_CLI_EXIT_OK or an exit code, with a
 * message printed. */
static int consumer_open(const sq_cmd_t *cmd, rd_kafka_t **rkp) {
        static const char *const settings[] = {
            "enable.partition.eof", "true",
            /* Start offsets are clamped to the watermarks; a partition
             * truncated by retention meanwhile restarts at its start. */
            "auto.offset.reset", "earliest", NULL};
        return sq_cmd_consumer_new(cmd, settings, rkp);
}

static int cmp_part(const void *a, const void *b) {
        const sq_reader_part_t *pa = a, *pb = b;
        return pa->partition < pb->partition   ? -1
               : pa->partition > pb->partition ? 1
                                               : 0;
}

/* Reads the topic's partitions and their watermarks into @p st.
 * @returns SQ_CLI_EXIT_OK or an exit code, with a message printed. */
static int load_partitions(sq_reader_t *st, rd_kafka_t *rk) {
        const sq_cli_t *cli                = st->cmd->cli;
        const struct rd_kafka_metadata *md = NULL;
        const struct rd_kafka_metadata_topic *mt;
        rd_kafka_topic_t *rkt;
        rd_kafka_resp_err_t err;
        int i, ret = SQ_CLI_EXIT_BROKER;
        char denied[512];

        rkt = rd_kafka_topic_new(rk, st->opts.topic, NULL);
        err = rd_kafka_metadata(rk, 0, rkt, &md, cli->connect_timeout_ms);
        rd_kafka_topic_destroy(rkt);
        if (err) {
                sq_cmd_say(st->cmd, &st->prog,
                           "cannot read the metadata of topic %s: "
                           "%s",
                           st->opts.topic, rd_kafka_err2str(err));
                goto done;
        }
        mt = md->topic_cnt == 1 ? &md->topics[0] : NULL;
        if (mt && sq_kafka_acl_denied(mt->err, "Read", st->opts.topic, NULL,
                                      NULL, denied, sizeof(denied))) {
                /* Read implies the Describe this request needs. */
                sq_cmd_say(st->cmd, &st->prog, "%s", denied);
                goto done;
        }
        if (!mt || mt->err || mt->partition_cnt == 0) {
                sq_cmd_say(st->cmd, &st->prog, "topic %s: %s", st->opts.topic,
                           mt && mt->err ==
                                       RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
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
                sq_reader_part_t *part = &st->parts[i];
                err                    = rd_kafka_query_watermark_offsets(
                                       rk, st->opts.topic, part->partition, &part->low,
                                       &part->high, cli->connect_timeout_ms);
                if (err) {
                        sq_cmd_say(st->cmd, &st->prog,
                                   "cannot read the offsets of "
                                   "topic %s partition %" PRId32 ": %s",
                                   st->opts.topic, part->partition,
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

static sq_reader_part_t *find_part(sq_reader_t *st, int32_t partition) {
        sq_reader_part_t key;

        key.partition = partition;
        return bsearch(&key, st->parts, st->parts_cnt, sizeof(*st->parts),
                       cmp_part);
}

/* Asks the broker for the first offset at or after @p ts_ms in every
 * partition that holds records; writes them to @p offsets (-1: none).
 * @returns the count of partitions with records that answered an offset,
 *          or -1 on an error (printed). */
static int lookup_times(sq_reader_t *st, rd_kafka_t *rk, int64_t ts_ms,
                        int64_t *offsets) {
        const sq_cli_t *cli = st->cmd->cli;
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;
        int i, found = 0;

        list = rd_kafka_topic_partition_list_new((int)st->parts_cnt);
        for (i = 0; i < (int)st->parts_cnt; i++)
                rd_kafka_topic_partition_list_add(list, st->opts.topic,
                                                  st->parts[i].partition)
                    ->offset = ts_ms;
        err = rd_kafka_offsets_for_times(rk, list, cli->connect_timeout_ms);
        if (err) {
                sq_cmd_say(st->cmd, &st->prog,
                           "timestamp lookup on topic %s failed: "
                           "%s",
                           st->opts.topic, rd_kafka_err2str(err));
                found = -1;
                goto done;
        }
        for (i = 0; i < list->cnt; i++) {
                const rd_kafka_topic_partition_t *rktpar = &list->elems[i];
                sq_reader_part_t *part = find_part(st, rktpar->partition);

                sq_assert(part);
                if (rktpar->err) {
                        sq_cmd_say(st->cmd, &st->prog,
                                   "timestamp lookup on topic %s "
                                   "partition %" PRId32 " failed: %s",
                                   st->opts.topic, rktpar->partition,
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
static int plan(sq_reader_t *st, rd_kafka_t *rk) {
        int64_t *found = NULL;
        size_t i, with_data = 0;
        int ret = SQ_CLI_EXIT_OK;

        for (i = 0; i < st->opts.offsets_cnt; i++) {
                if (!find_part(st, st->opts.offsets[i].partition)) {
                        sq_cmd_say(st->cmd, &st->prog,
                                   "--offset %" PRId32 ":%" PRId64
                                   ": topic %s has no partition %" PRId32
                                   " (it has %zu)",
                                   st->opts.offsets[i].partition,
                                   st->opts.offsets[i].offset, st->opts.topic,
                                   st->opts.offsets[i].partition,
                                   st->parts_cnt);
                        return SQ_CLI_EXIT_USAGE;
                }
        }
        if (st->opts.only_partition >= 0 &&
            !find_part(st, st->opts.only_partition)) {
                sq_cmd_say(st->cmd, &st->prog,
                           "--partition %" PRId32 ": topic %s has no "
                           "partition %" PRId32 " (it has %zu)",
                           st->opts.only_partition, st->opts.topic,
                           st->opts.only_partition, st->parts_cnt);
                return SQ_CLI_EXIT_USAGE;
        }

        for (i = 0; i < st->parts_cnt; i++) {
                sq_reader_part_t *part = &st->parts[i];
                size_t j;

                with_data += part->high > part->low;
                part->end   = st->opts.follow ? INT64_MAX : part->high;
                part->start = part->low;
                if (st->opts.have_offset_all)
                        part->start = st->opts.offset_all;
                else if (st->opts.offsets_cnt)
                        part->start = INT64_MAX; /* not named: not read */
                for (j = 0; j < st->opts.offsets_cnt; j++) {
                        if (st->opts.offsets[j].partition == part->partition)
                                part->start = st->opts.offsets[j].offset;
                }
                if (part->start == INT64_MAX) {
                        part->done = true;
                        continue;
                }
                part->start = SQ_MAX(part->start, part->low);
                part->start = SQ_MIN(part->start, part->high);
        }

        if (st->opts.since_arg) {
                int n;

                found = sq_calloc(st->parts_cnt, sizeof(*found));
                n     = lookup_times(st, rk, st->opts.since_ms, found);
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
                        int m = lookup_times(st, rk, 0, probe);
                        sq_free(probe);
                        if (m < 0) {
                                ret = SQ_CLI_EXIT_BROKER;
                                goto done;
                        }
                        if (m == 0) {
                                sq_cmd_say(st->cmd, &st->prog,
                                           "--since %s: timestamp "
                                           "lookup is not supported by this "
                                           "broker (it answered -1 for every "
                                           "partition of topic %s that has "
                                           "records, even for time 0); use "
                                           "--offset or --from-beginning with "
                                           "--until instead",
                                           st->opts.since_arg, st->opts.topic);
                                ret = SQ_CLI_EXIT_BROKER;
                                goto done;
                        }
                }
                for (i = 0; i < st->parts_cnt; i++) {
                        sq_reader_part_t *part = &st->parts[i];
                        /* -1: nothing at or after TIME yet; with --follow,
                         * what arrives from now on. */
                        part->start = found[i] < 0 ? part->high : found[i];
                        part->start = SQ_MAX(part->start, part->low);
                        part->start = SQ_MIN(part->start, part->high);
                }
        }

        for (i = 0; i < st->parts_cnt; i++) {
                sq_reader_part_t *part = &st->parts[i];
                if (st->opts.only_partition >= 0 &&
                    part->partition != st->opts.only_partition)
                        part->done = true;
                if (!part->done && part->start >= part->end)
                        part->done = true;
                st->parts_done += part->done;
        }

done:
        sq_free(found);
        return ret;
}

/* Assigns every partition that is not done at its start offset. */
static int assign(sq_reader_t *st, rd_kafka_t *rk) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;
        size_t i;

        list = rd_kafka_topic_partition_list_new((int)st->parts_cnt);
        for (i = 0; i < st->parts_cnt; i++) {
                if (st->parts[i].done)
                        continue;
                rd_kafka_topic_partition_list_add(list, st->opts.topic,
                                                  st->parts[i].partition)
                    ->offset = st->parts[i].start;
        }
        err = rd_kafka_assign(rk, list);
        rd_kafka_topic_partition_list_destroy(list);
        if (err) {
                sq_cmd_say(st->cmd, &st->prog, "cannot assign topic %s: %s",
                           st->opts.topic, rd_kafka_err2str(err));
                return SQ_CLI_EXIT_BROKER;
        }
        return SQ_CLI_EXIT_OK;
}

/* Marks a partition done and stops fetching it. */
static void part_finish(sq_reader_t *st, rd_kafka_t *rk,
                        sq_reader_part_t *part) {
        rd_kafka_topic_partition_list_t *list;

        if (part->done)
                return;
        part->done = true;
        st->parts_done++;
        list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, st->opts.topic,
                                          part->partition);
        rd_kafka_pause_partitions(rk, list);
        rd_kafka_topic_partition_list_destroy(list);
}

/* Sorts one consumer message or error event: *@p handp says whether it
 * is a record to hand out.
 * @returns SQ_CLI_EXIT_OK, or SQ_CLI_EXIT_BROKER on a fatal error. */
static int sort_message(sq_reader_t *st, rd_kafka_t *rk,
                        const rd_kafka_message_t *rkm, bool *handp) {
        rd_kafka_timestamp_type_t tstype;
        sq_reader_part_t *part;
        int64_t ts;

        *handp = false;

        if (rkm->err && rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                char errstr[512];
                if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
                        rd_kafka_fatal_error(rk, errstr, sizeof(errstr));
                        sq_cmd_say(st->cmd, &st->prog,
                                   "fatal consumer error: %s", errstr);
                        return SQ_CLI_EXIT_BROKER;
                }
                /* The reader's group.id is only there because librdkafka
                 * 2.0 refuses assign() without one: it joins nothing and
                 * commits nothing, so the principal needs no ACL on it,
                 * and librdkafka's search for its coordinator, refused,
                 * is no error of the read. */
                if (rkm->err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED)
                        return SQ_CLI_EXIT_OK;
                /* Describe without Read: the fetch is refused, again and
                 * again. */
                if (rkm->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED &&
                    sq_kafka_acl_denied(rkm->err, "Read", st->opts.topic, NULL,
                                        NULL, errstr, sizeof(errstr))) {
                        sq_cmd_say(st->cmd, &st->prog, "%s", errstr);
                        return SQ_CLI_EXIT_BROKER;
                }
                /* Transient (a broker went away): librdkafka retries. */
                sq_progress_clear(&st->prog);
                SQ_LOG(SQ_LOG_WARNING, "READER", "%s: consumer error: %s",
                       st->cmd->name, rd_kafka_message_errstr(rkm));
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
                        part_finish(st, rk, part);
                return SQ_CLI_EXIT_OK;
        }
        if (rkm->offset >= part->end) {
                part_finish(st, rk, part);
                return SQ_CLI_EXIT_OK;
        }
        if (st->opts.until_arg) {
                ts = rd_kafka_message_timestamp(rkm, &tstype);
                if (tstype != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE &&
                    ts >= st->opts.until_ms) {
                        part_finish(st, rk, part);
                        return SQ_CLI_EXIT_OK;
                }
        }
        st->consumed++;
        *handp = true;
        if (rkm->offset + 1 >= part->end)
                part_finish(st, rk, part);
        return SQ_CLI_EXIT_OK;
}

/* --follow --until: once the clock passes TIME, a partition that has caught
 * up will see no record stamped before TIME any more; it is done. */
static void finish_idle(sq_reader_t *st, rd_kafka_t *rk) {
        size_t i;

        if (!st->opts.follow || !st->opts.until_arg ||
            sq_wallclock_ms() < st->opts.until_ms)
                return;
        for (i = 0; i < st->parts_cnt; i++) {
                if (st->parts[i].at_eof)
                        part_finish(st, rk, &st->parts[i]);
        }
}

bool sq_cli_time_arg(const sq_cmd_t *cmd, const char *opt, const char *arg,
                     int64_t *msp) {
        if (sq_cli_parse_time(arg, msp))
                return true;
        sq_cli_usage_error(cmd->name,
                           "%s expects an ISO 8601 time with a zone "
                           "(2026-11-24T10:00:00Z) or epoch milliseconds, got "
                           "\"%s\"",
                           opt, arg);
        return false;
}

char *sq_cli_format_time(int64_t ms, char *buf, size_t size) {
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;

        if (ms < 0 || !gmtime_r(&secs, &tm)) {
                snprintf(buf, size, "-");
                return buf;
        }
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)(ms % 1000));
        return buf;
}

int sq_reader_open(sq_reader_t *reader, const sq_cmd_t *cmd,
                   const sq_reader_opts_t *opts) {
        size_t i;
        int ret;

        memset(reader, 0, sizeof(*reader));
        reader->cmd  = cmd;
        reader->opts = *opts;
        ret          = consumer_open(cmd, &reader->rk);
        if (ret != SQ_CLI_EXIT_OK)
                return ret;
        ret = load_partitions(reader, reader->rk);
        if (ret != SQ_CLI_EXIT_OK)
                return ret;
        ret = plan(reader, reader->rk);
        if (ret != SQ_CLI_EXIT_OK)
                return ret;
        for (i = 0; i < reader->parts_cnt; i++) {
                if (!reader->parts[i].done && !opts->follow)
                        reader->total += (uint64_t)(reader->parts[i].end -
                                                    reader->parts[i].start);
        }
        SQ_LOG(SQ_LOG_DEBUG, "READER",
               "%s: topic=%s partitions=%zu to_read=%zu records=%" PRIu64,
               cmd->name, opts->topic, reader->parts_cnt,
               reader->parts_cnt - reader->parts_done, reader->total);
        return assign(reader, reader->rk);
}

bool sq_reader_done(const sq_reader_t *reader) {
        return reader->parts_done >= reader->parts_cnt;
}

int sq_reader_poll(sq_reader_t *reader, int timeout_ms,
                   rd_kafka_message_t **rkmp) {
        rd_kafka_message_t *rkm;
        bool hand = false;
        int ret;

        *rkmp = NULL;
        rkm   = rd_kafka_consumer_poll(reader->rk, timeout_ms);
        if (!rkm) {
                finish_idle(reader, reader->rk);
                return SQ_CLI_EXIT_OK;
        }
        ret = sort_message(reader, reader->rk, rkm, &hand);
        if (hand)
                *rkmp = rkm;
        else
                rd_kafka_message_destroy(rkm);
        return ret;
}

int sq_reader_run(sq_reader_t *reader, const sq_reader_sink_t *sink,
                  bool *enoughp) {
        const sq_cli_t *cli = reader->cmd->cli;
        rd_kafka_message_t *rkm;
        int ret = SQ_CLI_EXIT_OK;

        *enoughp = false;
        /* Lines on a terminal would scroll the progress line away: drawn
         * only when stdout goes elsewhere, so a record printed never has
         * to erase it. */
        sq_progress_init(&reader->prog, !cli->quiet && !isatty(STDOUT_FILENO),
                         reader->total, "records");
        while (!sq_reader_done(reader) && !*enoughp) {
                if (sq_cli_interrupted())
                        break;
                ret = sq_reader_poll(reader, RUN_POLL_TIMEOUT_MS, &rkm);
                if (sink->tick)
                        sink->tick(sink->arg);
                if (ret != SQ_CLI_EXIT_OK)
                        break;
                if (!rkm) {
                        /* Idle: let a pipe reader (tail -f style) see what
                         * came so far. */
                        fflush(stdout);
                        sq_progress_update(&reader->prog, reader->consumed,
                                           false);
                        continue;
                }
                *enoughp = !sink->record(sink->arg, rkm);
                rd_kafka_message_destroy(rkm);
                sq_progress_update(&reader->prog, reader->consumed, false);
        }
        sq_progress_update(&reader->prog, reader->consumed, true);
        sq_progress_clear(&reader->prog);
        return ret;
}

void sq_reader_term(sq_reader_t *reader) {
        if (reader->rk) {
                rd_kafka_consumer_close(reader->rk);
                rd_kafka_destroy(reader->rk);
        }
        sq_free(reader->parts);
        memset(reader, 0, sizeof(*reader));
}
