/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retry.c: the backoff policy, the retry and dead-letter headers, and the
 * record copy a job keeps for them (see retry.h).
 *
 * DESIGN
 *   Pure functions of their arguments, except sq_retry_random(): safe on
 *   any thread. The headers of a retry or dead-letter record are built
 *   from the job's copy of its record: upstream's own headers are kept
 *   (Spring Kafka does too), swarmq's bookkeeping headers are replaced, so
 *   a record that goes round the retry topic several times never carries
 *   two `retry_topic-attempts`. A header value that is missing, too long
 *   or not a number is treated as absent: a retry record someone edited
 *   by hand still runs, it just counts from its own coordinates.
 */
#include "retry.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* One allocation per record (it is copied for every admitted task): the
 * struct, then the topic name, the key and the value. */
size_t sq_record_size(const rd_kafka_message_t *rkm) {
        return sizeof(sq_record_t) + strlen(rd_kafka_topic_name(rkm->rkt)) + 1 +
               (rkm->key ? rkm->key_len : 0) + rkm->len;
}

sq_record_t *sq_record_init(void *mem, const rd_kafka_message_t *rkm) {
        const char *topic        = rd_kafka_topic_name(rkm->rkt);
        size_t topic_size        = strlen(topic) + 1;
        size_t key_len           = rkm->key ? rkm->key_len : 0;
        rd_kafka_headers_t *hdrs = NULL;
        rd_kafka_timestamp_type_t tstype;
        sq_record_t *rec = mem;
        char *p;

        p          = (char *)(rec + 1);
        rec->topic = memcpy(p, topic, topic_size);
        p += topic_size;
        rec->partition = rkm->partition;
        rec->offset    = rkm->offset;
        rec->timestamp = rd_kafka_message_timestamp(rkm, &tstype);
        /* An empty key or value is NULL, as before (sq_memdup). */
        if (key_len) {
                rec->key     = memcpy(p, rkm->key, key_len);
                rec->key_len = key_len;
                p += key_len;
        }
        if (rkm->len)
                rec->value = memcpy(p, rkm->payload, rkm->len);
        rec->value_len = rkm->len;
        if (rd_kafka_message_headers(rkm, &hdrs) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            hdrs)
                rec->headers = rd_kafka_headers_copy(hdrs);
        return rec;
}

void sq_record_term(sq_record_t *rec) {
        if (rec && rec->headers)
                rd_kafka_headers_destroy(rec->headers);
}

sq_record_t *sq_record_new(const rd_kafka_message_t *rkm) {
        return sq_record_init(sq_calloc(1, sq_record_size(rkm)), rkm);
}

void sq_record_destroy(sq_record_t *rec) {
        if (!rec)
                return;
        sq_record_term(rec);
        sq_free(rec); /* topic, key and value live in the same block */
}

bool sq_retry_header_get(const rd_kafka_headers_t *hdrs, const char *name,
                         char *buf, size_t size) {
        const void *val = NULL;
        size_t len      = 0;

        if (!hdrs || rd_kafka_header_get_last(hdrs, name, &val, &len) !=
                         RD_KAFKA_RESP_ERR_NO_ERROR)
                return false;
        if (!val || len >= size || memchr(val, '\0', len))
                return false;
        memcpy(buf, val, len);
        buf[len] = '\0';
        return true;
}

bool sq_retry_header_int(const rd_kafka_headers_t *hdrs, const char *name,
                         int64_t min, int64_t max, int64_t *valp) {
        char buf[32];
        return sq_retry_header_get(hdrs, name, buf, sizeof(buf)) &&
               sq_parse_int64(buf, min, max, valp) == SQ_OK;
}

void sq_retry_origin(const sq_record_t *rec, const char *retry_topic,
                     sq_origin_t *origin) {
        int64_t num;

        memset(origin, 0, sizeof(*origin));
        if (!strcmp(rec->topic, retry_topic) &&
            sq_retry_header_get(rec->headers, SQ_HDR_DLT_TOPIC, origin->topic,
                                sizeof(origin->topic)) &&
            sq_retry_header_int(rec->headers, SQ_HDR_DLT_PARTITION, 0,
                                INT32_MAX, &num) &&
            sq_retry_header_get(rec->headers, SQ_HDR_DLT_PARTITION,
                                origin->partition, sizeof(origin->partition)) &&
            sq_retry_header_int(rec->headers, SQ_HDR_DLT_OFFSET, 0, INT64_MAX,
                                &num) &&
            sq_retry_header_get(rec->headers, SQ_HDR_DLT_OFFSET, origin->offset,
                                sizeof(origin->offset))) {
                if (!sq_retry_header_int(rec->headers, SQ_HDR_ORIGINAL_TS, 0,
                                         INT64_MAX, &num))
                        num = rec->timestamp;
                snprintf(origin->timestamp, sizeof(origin->timestamp), "%lld",
                         (long long)num);
                return;
        }
        snprintf(origin->topic, sizeof(origin->topic), "%s", rec->topic);
        snprintf(origin->partition, sizeof(origin->partition), "%d",
                 (int)rec->partition);
        snprintf(origin->offset, sizeof(origin->offset), "%lld",
                 (long long)rec->offset);
        snprintf(origin->timestamp, sizeof(origin->timestamp), "%lld",
                 (long long)rec->timestamp);
}

bool sq_retry_header_is_ours(const char *name) {
        static const char *const names[] = {SQ_HDR_AGENT,
                                            SQ_HDR_INSTANCE,
                                            SQ_HDR_REASON,
                                            SQ_HDR_TASK_ID,
                                            SQ_HDR_DEAD_LETTERED_AT,
                                            SQ_HDR_FIRST_STARTED,
                                            NULL};
        size_t i;

        if (!strncmp(name, "retry_topic-", 12) ||
            !strncmp(name, "kafka_dlt-", 10))
                return true;
        for (i = 0; names[i]; i++)
                if (!strcmp(name, names[i]))
                        return true;
        return false;
}

static void add(rd_kafka_headers_t *hdrs, const char *name, const char *value) {
        rd_kafka_header_add(hdrs, name, -1, value, -1);
}

void sq_retry_header_add_int(rd_kafka_headers_t *hdrs, const char *name,
                             int64_t val) {
        char num[24];
        snprintf(num, sizeof(num), "%lld", (long long)val);
        add(hdrs, name, num);
}

rd_kafka_headers_t *sq_retry_headers(const sq_record_t *rec,
                                     const sq_origin_t *origin,
                                     const char *group, const char *instance,
                                     const char *agent, const char *task_id,
                                     const char *reason_code,
                                     const char *message) {
        size_t cnt = rec->headers ? rd_kafka_header_cnt(rec->headers) : 0;
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(cnt + 12);
        const char *name;
        const void *val;
        size_t i, len;

        for (i = 0; rec->headers &&
                    rd_kafka_header_get_all(rec->headers, i, &name, &val,
                                            &len) == RD_KAFKA_RESP_ERR_NO_ERROR;
             i++) {
                if (!sq_retry_header_is_ours(name))
                        rd_kafka_header_add(hdrs, name, -1, val, (ssize_t)len);
        }
        add(hdrs, SQ_HDR_DLT_TOPIC, origin->topic);
        add(hdrs, SQ_HDR_DLT_PARTITION, origin->partition);
        add(hdrs, SQ_HDR_DLT_OFFSET, origin->offset);
        add(hdrs, SQ_HDR_DLT_TIMESTAMP, origin->timestamp);
        add(hdrs, SQ_HDR_DLT_GROUP, group);
        add(hdrs, SQ_HDR_DLT_EXCEPTION, message);
        add(hdrs, SQ_HDR_REASON, reason_code);
        add(hdrs, SQ_HDR_INSTANCE, instance);
        if (agent)
                add(hdrs, SQ_HDR_AGENT, agent);
        if (task_id)
                add(hdrs, SQ_HDR_TASK_ID, task_id);
        return hdrs;
}

int32_t sq_retry_max_attempts(const sq_config_t *conf, const sq_task_t *task) {
        return SQ_MIN(task->max_attempts, conf->retry_max_attempts);
}

int64_t sq_retry_backoff_ms(const sq_config_t *conf, int32_t failed_attempt,
                            uint64_t rnd) {
        double d   = (double)conf->retry_backoff_initial_ms;
        double max = (double)conf->retry_backoff_max_ms;
        int32_t n;
        int64_t delay, half;

        /* Stop multiplying once past the cap (no overflow to inf). */
        for (n = 1; n < failed_attempt && d < max; n++)
                d *= conf->retry_backoff_multiplier;
        delay = (int64_t)SQ_MIN(d, max);
        switch (conf->retry_backoff_jitter) {
        case SQ_JITTER_FULL:
                return (int64_t)(rnd % (uint64_t)(delay + 1));
        case SQ_JITTER_EQUAL:
                half = delay / 2;
                return delay - half + (int64_t)(rnd % (uint64_t)(half + 1));
        case SQ_JITTER_NONE:
                break;
        }
        return delay;
}

uint64_t sq_retry_random(void) {
        uint64_t rnd;
        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
                rnd = (uint64_t)sq_clock_us() * 6364136223846793005ull +
                      1442695040888963407ull;
        return rnd;
}
