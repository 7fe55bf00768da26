/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_dlt_memory.c: the re-driven offsets of a DLT, kept in the committed
 * offsets (and their metadata) of the group "swarmq-redrive-<DLT>"; see
 * cli_dlt_memory.h.
 */
#include "cli_dlt_memory.h"

#include "kafka_conf.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MEMORY_GROUP_PREFIX "swarmq-redrive-"
#define MEMORY_FORMAT       "swarmq-redrive/1 "
/* Kafka's offset.metadata.max.bytes defaults to 4096: stay below it. */
#define MEMORY_METADATA_MAX 3900

/* Offsets lo..hi, both included. */
typedef struct range_s {
        int64_t lo;
        int64_t hi;
} range_t;

typedef struct part_s {
        range_t *ranges; /* sorted, disjoint, not adjacent */
        size_t cnt;
        size_t cap;
        bool dirty; /* grew since the load */
} part_t;

struct sq_dlt_memory_s {
        const sq_cmd_t *cmd;
        rd_kafka_t *rk; /* a consumer in the memory's group; never joins */
        char *topic;
        char group[300];
        part_t *parts;
        int32_t parts_cnt;
};

/* Adds @p lo..@p hi to @p part, merging with what it touches. */
static void part_add(part_t *part, int64_t lo, int64_t hi) {
        size_t i = part->cnt, j;

        /* Usually appended at the end: search from there. */
        while (i > 0 && part->ranges[i - 1].lo > lo)
                i--;
        /* i: first range with .lo > lo. Merge with the one before? */
        if (i > 0 && part->ranges[i - 1].hi + 1 >= lo) {
                i--;
                if (part->ranges[i].hi < hi)
                        part->ranges[i].hi = hi;
        } else {
                if (part->cnt == part->cap) {
                        part->cap    = part->cap ? part->cap * 2 : 8;
                        part->ranges = sq_realloc(
                            part->ranges, part->cap * sizeof(*part->ranges));
                }
                memmove(&part->ranges[i + 1], &part->ranges[i],
                        (part->cnt - i) * sizeof(*part->ranges));
                part->ranges[i].lo = lo;
                part->ranges[i].hi = hi;
                part->cnt++;
        }
        /* Swallow the following ranges it now reaches. */
        j = i + 1;
        while (j < part->cnt && part->ranges[j].lo <= part->ranges[i].hi + 1) {
                if (part->ranges[j].hi > part->ranges[i].hi)
                        part->ranges[i].hi = part->ranges[j].hi;
                j++;
        }
        if (j > i + 1) {
                memmove(&part->ranges[i + 1], &part->ranges[j],
                        (part->cnt - j) * sizeof(*part->ranges));
                part->cnt -= j - i - 1;
        }
}

/* Parses "swarmq-redrive/1 3-7,12" into @p part. @returns false (and
 * leaves @p part empty) when it is not that. */
static bool part_parse(part_t *part, const char *md, size_t len) {
        char *buf, *p, *end;
        long long lo, hi;
        bool ok = true;

        if (len < strlen(MEMORY_FORMAT) ||
            memcmp(md, MEMORY_FORMAT, strlen(MEMORY_FORMAT)))
                return false;
        buf = sq_malloc(len + 1);
        memcpy(buf, md, len);
        buf[len] = '\0';
        p        = buf + strlen(MEMORY_FORMAT);
        while (*p && ok) {
                lo = strtoll(p, &end, 10);
                hi = lo;
                if (end == p || lo < 0)
                        ok = false;
                else if (*end == '-') {
                        p  = end + 1;
                        hi = strtoll(p, &end, 10);
                        ok = end != p && hi >= lo;
                }
                if (ok) {
                        part_add(part, lo, hi);
                        p = end;
                        if (*p == ',')
                                p++;
                        else if (*p)
                                ok = false;
                }
        }
        sq_free(buf);
        if (!ok)
                part->cnt = 0;
        return ok;
}

/* "swarmq-redrive/1 lo-hi,..." of @p part, dropping its lowest ranges
 * when it would not fit. @returns a new string; *@p droppedp ranges
 * dropped. */
static char *part_format(part_t *part, size_t *droppedp) {
        char *buf    = sq_malloc(MEMORY_METADATA_MAX + 1);
        size_t first = 0, len, need = strlen(MEMORY_FORMAT), i;
        char item[48];

        /* From the highest down, how many ranges fit. */
        for (i = part->cnt; i > 0; i--) {
                len = (size_t)snprintf(
                    item, sizeof(item), "%" PRId64 "-%" PRId64 ",",
                    part->ranges[i - 1].lo, part->ranges[i - 1].hi);
                if (need + len > MEMORY_METADATA_MAX) {
                        first = i;
                        break;
                }
                need += len;
        }
        *droppedp = first;
        len       = sq_strlcpy(buf, MEMORY_FORMAT, MEMORY_METADATA_MAX + 1);
        for (i = first; i < part->cnt; i++) {
                if (part->ranges[i].lo == part->ranges[i].hi)
                        len += (size_t)snprintf(
                            buf + len, MEMORY_METADATA_MAX + 1 - len,
                            "%s%" PRId64, i > first ? "," : "",
                            part->ranges[i].lo);
                else
                        len += (size_t)snprintf(
                            buf + len, MEMORY_METADATA_MAX + 1 - len,
                            "%s%" PRId64 "-%" PRId64, i > first ? "," : "",
                            part->ranges[i].lo, part->ranges[i].hi);
        }
        return buf;
}

/* rd_kafka_committed() in slices of half a second: for a group the
 * principal may not use, librdkafka looks for the coordinator until the
 * timeout and says why only on the consumer queue, where this looks
 * between slices. @returns the error, with @p denied set ("Read on group
 * G denied (...)") when it is the group's ACL, "" otherwise. */
static rd_kafka_resp_err_t committed(sq_dlt_memory_t *mem,
                                     rd_kafka_topic_partition_list_t *list,
                                     char *denied, size_t size) {
        int left = mem->cmd->cli->connect_timeout_ms;
        rd_kafka_message_t *rkm;
        rd_kafka_resp_err_t err;

        *denied = '\0';
        for (;;) {
                int slice = SQ_MIN(left, 500);
                err       = rd_kafka_committed(mem->rk, list, slice);
                left -= slice;
                if (err != RD_KAFKA_RESP_ERR__TIMED_OUT)
                        return err;
                while ((rkm = rd_kafka_consumer_poll(mem->rk, 0))) {
                        rd_kafka_resp_err_t rkm_err = rkm->err;
                        rd_kafka_message_destroy(rkm);
                        if (sq_kafka_acl_denied(rkm_err, "Read", NULL,
                                                mem->group, NULL, denied, size))
                                return rkm_err;
                }
                if (left <= 0)
                        return err;
        }
}

int sq_dlt_memory_load(const sq_cmd_t *cmd, const char *dlt_topic,
                       sq_dlt_memory_t **memp) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_partition_list_t *list;
        sq_dlt_memory_t *mem = sq_calloc(1, sizeof(*mem));
        const char *settings[3];
        rd_kafka_topic_t *rkt;
        rd_kafka_resp_err_t err;
        char denied[512];
        int32_t i, p;
        int ret;

        mem->cmd   = cmd;
        mem->topic = sq_strdup(dlt_topic);
        snprintf(mem->group, sizeof(mem->group), MEMORY_GROUP_PREFIX "%s",
                 dlt_topic);
        settings[0] = "group.id";
        settings[1] = mem->group;
        settings[2] = NULL;
        ret         = sq_cmd_consumer_new(cmd, settings, &mem->rk);
        if (ret != SQ_CLI_EXIT_OK) {
                sq_dlt_memory_destroy(mem);
                return ret;
        }

        rkt = rd_kafka_topic_new(mem->rk, dlt_topic, NULL);
        err = rd_kafka_metadata(mem->rk, 0, rkt, &md,
                                cmd->cli->connect_timeout_ms);
        rd_kafka_topic_destroy(rkt);
        if (!err && md->topic_cnt != 1)
                err = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        else if (!err)
                err = md->topics[0].err;
        if (err) {
                sq_cmd_say(cmd, NULL,
                           "cannot read the partitions of %s for the redrive "
                           "memory: %s",
                           dlt_topic, rd_kafka_err2str(err));
                if (md)
                        rd_kafka_metadata_destroy(md);
                sq_dlt_memory_destroy(mem);
                return SQ_CLI_EXIT_BROKER;
        }
        mem->parts_cnt = 0;
        for (i = 0; i < md->topics[0].partition_cnt; i++)
                mem->parts_cnt =
                    SQ_MAX(mem->parts_cnt, md->topics[0].partitions[i].id + 1);
        rd_kafka_metadata_destroy(md);
        mem->parts =
            sq_calloc((size_t)SQ_MAX(mem->parts_cnt, 1), sizeof(*mem->parts));

        list = rd_kafka_topic_partition_list_new(mem->parts_cnt);
        for (p = 0; p < mem->parts_cnt; p++)
                rd_kafka_topic_partition_list_add(list, dlt_topic, p);
        err = committed(mem, list, denied, sizeof(denied));
        if (err) {
                sq_cmd_say(cmd, NULL,
                           "cannot read what earlier redrives recorded in "
                           "group %s: %s",
                           mem->group,
                           *denied ? denied : rd_kafka_err2str(err));
                rd_kafka_topic_partition_list_destroy(list);
                sq_dlt_memory_destroy(mem);
                return SQ_CLI_EXIT_BROKER;
        }
        for (i = 0; i < list->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &list->elems[i];
                if (tp->err || tp->offset < 0 || !tp->metadata)
                        continue;
                if (!part_parse(&mem->parts[tp->partition], tp->metadata,
                                tp->metadata_size))
                        sq_cmd_say(cmd, NULL,
                                   "group %s: partition %" PRId32
                                   " has a commit that is not a redrive "
                                   "record; ignored",
                                   mem->group, tp->partition);
        }
        rd_kafka_topic_partition_list_destroy(list);
        *memp = mem;
        return SQ_CLI_EXIT_OK;
}

const char *sq_dlt_memory_group(const sq_dlt_memory_t *mem) {
        return mem->group;
}

bool sq_dlt_memory_has(const sq_dlt_memory_t *mem, int32_t partition,
                       int64_t offset) {
        const part_t *part;
        size_t lo = 0, hi, mid;

        if (partition < 0 || partition >= mem->parts_cnt)
                return false;
        part = &mem->parts[partition];
        hi   = part->cnt;
        while (lo < hi) { /* first range with .hi >= offset */
                mid = (lo + hi) / 2;
                if (part->ranges[mid].hi < offset)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < part->cnt && part->ranges[lo].lo <= offset;
}

void sq_dlt_memory_add(sq_dlt_memory_t *mem, int32_t partition,
                       int64_t offset) {
        if (partition < 0 || partition >= mem->parts_cnt)
                return; /* a partition created during the run */
        part_add(&mem->parts[partition], offset, offset);
        mem->parts[partition].dirty = true;
}

bool sq_dlt_memory_save(sq_dlt_memory_t *mem) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_topic_partition_t *tp;
        rd_kafka_resp_err_t err;
        size_t dropped;
        bool ok = true;
        int32_t p;
        int i;

        list = rd_kafka_topic_partition_list_new(mem->parts_cnt);
        for (p = 0; p < mem->parts_cnt; p++) {
                part_t *part = &mem->parts[p];
                char *md;
                if (!part->dirty || !part->cnt)
                        continue;
                md = part_format(part, &dropped);
                if (dropped)
                        sq_cmd_say(mem->cmd, NULL,
                                   "group %s: partition %" PRId32
                                   " forgets its %zu lowest re-driven ranges "
                                   "(the record is kept under %d bytes)",
                                   mem->group, p, dropped, MEMORY_METADATA_MAX);
                tp = rd_kafka_topic_partition_list_add(list, mem->topic, p);
                tp->offset = part->ranges[part->cnt - 1].hi + 1;
                /* The list frees its metadata with free(). */
                tp->metadata      = strdup(md);
                tp->metadata_size = strlen(md);
                sq_free(md);
        }
        if (list->cnt == 0) {
                rd_kafka_topic_partition_list_destroy(list);
                return true;
        }
        err = rd_kafka_commit(mem->rk, list, 0 /* sync */);
        for (i = 0; !err && i < list->cnt; i++)
                if (list->elems[i].err)
                        err = list->elems[i].err;
        if (err) {
                sq_cmd_say(mem->cmd, NULL,
                           "cannot record this redrive in group %s: %s; a "
                           "second redrive would send these dead letters "
                           "again",
                           mem->group, rd_kafka_err2str(err));
                ok = false;
        }
        rd_kafka_topic_partition_list_destroy(list);
        return ok;
}

void sq_dlt_memory_destroy(sq_dlt_memory_t *mem) {
        int32_t p;

        if (!mem)
                return;
        if (mem->rk) {
                rd_kafka_consumer_close(mem->rk);
                rd_kafka_destroy(mem->rk);
        }
        for (p = 0; p < mem->parts_cnt; p++)
                sq_free(mem->parts[p].ranges);
        sq_free(mem->parts);
        sq_free(mem->topic);
        sq_free(mem);
}
