/* SPDX-License-Identifier: Apache-2.0 */
/*
 * producer.c: libswarmq, the public producer API (include/swarmq/producer.h)
 * over librdkafka and the core codec.
 *
 * DESIGN
 *   A producer is a configuration (rd_kafka_conf_t from the one builder,
 *   core/kafka/kafka_conf.c, with the idempotent producer profile; topic
 *   names, settings of our own) until it starts: swarmq_producer_connect() or
 * the first submit creates the rd_kafka_t, which takes the configuration over;
 *   settings are frozen from then on. Each settings call is applied to the
 *   rd_kafka_conf_t at once so a bad key or value is reported by the call
 *   that gave it.
 *
 *   Threads: none of our own. librdkafka's delivery-report, error and log
 *   callbacks run on the thread that calls rd_kafka_poll()/flush(), which
 *   is the caller of submit/poll/flush; the public API is single-threaded
 *   per handle, so the counters are plain integers. The log callback runs
 *   on librdkafka's threads and only formats into the log sink.
 *
 *   Ownership: a task is encoded into the codec's buffer and produced with
 *   RD_KAFKA_MSG_F_COPY, so nothing of the caller's task is kept after
 *   submit() returns. Records carry no per-message opaque (no allocation
 *   per task): a failed delivery is reported by topic, partition and key.
 *
 *   Symbols: built with -fvisibility=hidden; only SWARMQ_API functions are
 *   exported (and core's static archive is linked with --exclude-libs).
 */
#include "swarmq/producer.h"

#include "cancels.h"
#include "codec.h"
#include "codec_json.h"
#include "common.h"
#include "kafka_conf.h"
#include "log.h"
#include "schema_registry.h"
#include "task.h"
#include "topics.h"
#include "workflow.h"

#include <librdkafka/rdkafka.h>
#include <openssl/rand.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_SUBMIT_BLOCK_MS 30000
/* Serve delivery reports every this many submits, so a caller that never
 * polls still frees queue space and sees its counters move. */
#define SUBMIT_POLL_EVERY 1024
/* Log at most this many individual delivery failures per producer; the
 * rest are only counted. */
#define MAX_LOGGED_FAILURES 10

struct swarmq_task_s {
        sq_task_t *task; /* owned */
};

struct swarmq_producer_s {
        rd_kafka_conf_t *conf; /* owned until the client starts, then NULL */
        rd_kafka_t *rk;        /* NULL until started */
        rd_kafka_topic_t *rkt_tasks;
        rd_kafka_topic_t *rkt_critical;
        rd_kafka_topic_t *rkt_control; /* created by the first cancel */
        /* Created by the first workflow, with its partition count. */
        rd_kafka_topic_t *rkt_workflows;
        int32_t workflows_partitions;
        sq_codec_t *codec;
        char *topic_tasks;
        char *topic_critical;
        /* schema.registry.* settings; the client exists once started */
        char *sr_url, *sr_userinfo, *sr_ca;
        int64_t sr_timeout_ms;
        sq_schema_registry_t *registry;
        char *topic_control;
        char *topic_workflows;
        int64_t submit_block_ms;
        uint64_t submit_cnt; /* for the periodic poll in submit() */
        swarmq_producer_counts_t counts;
        char last_error[1024]; /* "" when none */
};

const char *swarmq_version(void) {
        return SWARMQ_VERSION;
}

const char *swarmq_err2str(swarmq_err_t err) {
        switch (err) {
        case SWARMQ_OK:
                return "success";
        case SWARMQ_ERR_INVALID_ARG:
                return "invalid argument";
        case SWARMQ_ERR_STATE:
                return "not allowed in the current state";
        case SWARMQ_ERR_ENCODE:
                return "task could not be encoded";
        case SWARMQ_ERR_QUEUE_FULL:
                return "local queue full";
        case SWARMQ_ERR_KAFKA:
                return "Kafka client error";
        case SWARMQ_ERR_TRANSPORT:
                return "no broker reachable";
        }
        return "unknown error";
}

/* ------------------------------------------------------------------ */
/* Tasks                                                              */
/* ------------------------------------------------------------------ */

/* Writes a random (version 4) UUID into @p buf (37 bytes). */
static void uuid4(char *buf, size_t size) {
        unsigned char b[16];
        if (RAND_bytes(b, (int)sizeof(b)) != 1) {
                /* No entropy from OpenSSL: fall back to the clocks, which
                 * is still unique enough for task ids of one process. */
                int64_t a = sq_clock_us(), w = sq_wallclock_ms();
                memcpy(b, &a, 8);
                memcpy(b + 8, &w, 8);
        }
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
        snprintf(buf, size,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                 "%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                 b[10], b[11], b[12], b[13], b[14], b[15]);
}

swarmq_task_t *swarmq_task_new(const char *id, const char *type) {
        swarmq_task_t *stask;
        char uuid[40];

        if ((id && !*id) || !type || !*type)
                return NULL;
        if (!id) {
                uuid4(uuid, sizeof(uuid));
                id = uuid;
        }
        stask                   = sq_calloc(1, sizeof(*stask));
        stask->task             = sq_task_new();
        stask->task->id         = sq_strdup(id);
        stask->task->type       = sq_strdup(type);
        stask->task->created_at = sq_wallclock_ms();
        return stask;
}

swarmq_task_t *swarmq_task_new_from_json(const char *json, size_t len,
                                         char *errstr, size_t errstr_size) {
        swarmq_task_t *stask = NULL;
        sq_task_t *task      = NULL;

        if (!json) {
                sq_errstr_set(errstr, errstr_size, "JSON text is NULL");
                return NULL;
        }
        if (sq_codec_task_from_json(json, len, &task, errstr, errstr_size) !=
            SQ_OK)
                return NULL;
        if (task->created_at == 0)
                task->created_at = sq_wallclock_ms();
        stask       = sq_calloc(1, sizeof(*stask));
        stask->task = task;
        return stask;
}

void swarmq_task_destroy(swarmq_task_t *stask) {
        if (!stask)
                return;
        sq_task_destroy(stask->task);
        sq_free(stask);
}

const char *swarmq_task_id(const swarmq_task_t *stask) {
        sq_assert(stask);
        return stask->task->id;
}

swarmq_priority_t swarmq_task_priority(const swarmq_task_t *stask) {
        sq_assert(stask);
        return (swarmq_priority_t)stask->task->priority;
}

swarmq_err_t swarmq_task_set_priority(swarmq_task_t *stask,
                                      swarmq_priority_t prio) {
        sq_assert(stask);
        if ((unsigned)prio >= SQ_PRIO_CNT)
                return SWARMQ_ERR_INVALID_ARG;
        stask->task->priority = (sq_priority_t)prio;
        return SWARMQ_OK;
}

swarmq_err_t swarmq_priority_parse(const char *str, swarmq_priority_t *priop) {
        sq_priority_t prio;
        if (!str || sq_priority_parse(str, &prio) != SQ_OK)
                return SWARMQ_ERR_INVALID_ARG;
        *priop = (swarmq_priority_t)prio;
        return SWARMQ_OK;
}

swarmq_err_t swarmq_task_add_capability(swarmq_task_t *stask, const char *cap) {
        sq_assert(stask);
        if (!cap || !*cap)
                return SWARMQ_ERR_INVALID_ARG;
        sq_task_add_capability(stask->task, cap);
        return SWARMQ_OK;
}

void swarmq_task_set_payload(swarmq_task_t *stask, const void *buf,
                             size_t len) {
        sq_assert(stask);
        sq_assert(buf || len == 0);
        sq_free(stask->task->payload);
        stask->task->payload     = len ? sq_memdup(buf, len) : NULL;
        stask->task->payload_len = len;
}

void swarmq_task_set_key(swarmq_task_t *stask, const char *key) {
        sq_assert(stask);
        sq_free(stask->task->key);
        stask->task->key = key ? sq_strdup(key) : NULL;
}

swarmq_err_t swarmq_task_set_timeout_ms(swarmq_task_t *stask,
                                        int64_t timeout_ms) {
        sq_assert(stask);
        if (timeout_ms < 0)
                return SWARMQ_ERR_INVALID_ARG;
        stask->task->timeout_ms = timeout_ms;
        return SWARMQ_OK;
}

swarmq_err_t swarmq_task_set_not_before(swarmq_task_t *stask,
                                        int64_t not_before_ms) {
        sq_assert(stask);
        if (not_before_ms < 0)
                return SWARMQ_ERR_INVALID_ARG;
        stask->task->not_before = not_before_ms;
        return SWARMQ_OK;
}

swarmq_err_t swarmq_task_set_delay_ms(swarmq_task_t *stask, int64_t delay_ms) {
        sq_assert(stask);
        if (delay_ms < 0 || delay_ms > INT64_MAX / 2)
                return SWARMQ_ERR_INVALID_ARG;
        stask->task->not_before = delay_ms ? sq_wallclock_ms() + delay_ms : 0;
        return SWARMQ_OK;
}

swarmq_err_t swarmq_task_set_max_attempts(swarmq_task_t *stask,
                                          int32_t max_attempts) {
        sq_assert(stask);
        if (max_attempts < 1)
                return SWARMQ_ERR_INVALID_ARG;
        stask->task->max_attempts = max_attempts;
        return SWARMQ_OK;
}

swarmq_err_t swarmq_task_add_header(swarmq_task_t *stask, const char *name,
                                    const char *value) {
        sq_assert(stask);
        if (!name || !*name || !value)
                return SWARMQ_ERR_INVALID_ARG;
        sq_task_add_header(stask->task, name, value);
        return SWARMQ_OK;
}

/* ------------------------------------------------------------------ */
/* Producer                                                           */
/* ------------------------------------------------------------------ */

/* Runs on the polling thread: the caller of submit/poll/flush. */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque) {
        swarmq_producer_t *p = opaque;
        char why[256];
        (void)rk;

        if (!rkm->err) {
                p->counts.delivered++;
                return;
        }

        p->counts.failed++;
        if (!sq_kafka_acl_denied(rkm->err, "Write",
                                 rd_kafka_topic_name(rkm->rkt), NULL, NULL, why,
                                 sizeof(why)))
                snprintf(why, sizeof(why), "%s", rd_kafka_err2str(rkm->err));
        snprintf(p->last_error, sizeof(p->last_error),
                 "delivery to topic %s failed for key \"%.*s\": %s",
                 rd_kafka_topic_name(rkm->rkt), (int)SQ_MIN(rkm->key_len, 128),
                 rkm->key ? (const char *)rkm->key : "", why);
        if (p->counts.failed <= MAX_LOGGED_FAILURES)
                SQ_LOG(SQ_LOG_WARNING, "PRODUCE",
                       "delivery failed topic=%s partition=%" PRId32
                       " key=%.*s err=\"%s\"%s",
                       rd_kafka_topic_name(rkm->rkt), rkm->partition,
                       (int)SQ_MIN(rkm->key_len, 128),
                       rkm->key ? (const char *)rkm->key : "",
                       rd_kafka_err2str(rkm->err),
                       p->counts.failed == MAX_LOGGED_FAILURES
                           ? " (further failures only counted)"
                           : "");
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
        swarmq_producer_t *p = opaque;
        char fatal[256];

        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
                snprintf(p->last_error, sizeof(p->last_error),
                         "fatal producer error: %s", fatal);
                SQ_LOG(SQ_LOG_ERR, "PRODUCE", "fatal error: %s", fatal);
                return;
        }
        snprintf(p->last_error, sizeof(p->last_error), "%s: %s",
                 rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
        SQ_LOG(SQ_LOG_WARNING, "KAFKA", "client error err=%s reason=\"%s\"",
               rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

swarmq_producer_t *swarmq_producer_new(const char *bootstrap_servers,
                                       char *errstr, size_t errstr_size) {
        swarmq_producer_t *p = NULL;

        p                  = sq_calloc(1, sizeof(*p));
        p->conf            = sq_kafka_conf_new();
        p->topic_tasks     = sq_strdup(SQ_TOPIC_DEFAULT_TASKS);
        p->topic_critical  = sq_strdup(SQ_TOPIC_DEFAULT_CRITICAL);
        p->topic_control   = sq_strdup(SQ_TOPIC_DEFAULT_CONTROL);
        p->topic_workflows = sq_strdup(SQ_TOPIC_DEFAULT_WORKFLOWS);
        p->submit_block_ms = DEFAULT_SUBMIT_BLOCK_MS;
        p->sr_timeout_ms   = 10000;

        if (sq_kafka_conf_profile(p->conf, SQ_KAFKA_PROFILE_IDEMPOTENT_PRODUCER,
                                  errstr, errstr_size) != SQ_OK ||
            sq_kafka_conf_set(p->conf, "client.id", "swarmq-producer", errstr,
                              errstr_size) != SQ_OK)
                goto fail;
        if (bootstrap_servers &&
            sq_kafka_conf_set(p->conf, "bootstrap.servers", bootstrap_servers,
                              errstr, errstr_size) != SQ_OK)
                goto fail;

        rd_kafka_conf_set_opaque(p->conf, p);
        rd_kafka_conf_set_dr_msg_cb(p->conf, dr_msg_cb);
        rd_kafka_conf_set_error_cb(p->conf, error_cb);

        p->codec = sq_codec_new(errstr, errstr_size);
        if (!p->codec)
                goto fail;
        return p;

fail:
        swarmq_producer_destroy(p);
        return NULL;
}

swarmq_err_t swarmq_producer_set(swarmq_producer_t *p, const char *key,
                                 const char *value, char *errstr,
                                 size_t errstr_size) {
        int64_t ms;

        sq_assert(p);
        if (!key || !value) {
                sq_errstr_set(errstr, errstr_size,
                              "setting key and value must not be NULL");
                return SWARMQ_ERR_INVALID_ARG;
        }
        if (p->rk) {
                sq_errstr_set(errstr, errstr_size,
                              "setting \"%s\" given after the producer "
                              "started; settings must come before connect "
                              "or the first submit",
                              key);
                return SWARMQ_ERR_STATE;
        }
        if (!strncmp(key, "kafka.", 6)) {
                if (!key[6]) {
                        sq_errstr_set(errstr, errstr_size,
                                      "setting \"kafka.\" names no Kafka "
                                      "property");
                        return SWARMQ_ERR_INVALID_ARG;
                }
                if (sq_kafka_conf_set(p->conf, key + 6, value, errstr,
                                      errstr_size) != SQ_OK)
                        return SWARMQ_ERR_INVALID_ARG;
                return SWARMQ_OK;
        }
        if (!strcmp(key, "topic.tasks") || !strcmp(key, "topic.critical") ||
            !strcmp(key, "topic.control") || !strcmp(key, "topic.workflows")) {
                char **topicp =
                    !strcmp(key, "topic.tasks")      ? &p->topic_tasks
                    : !strcmp(key, "topic.critical") ? &p->topic_critical
                    : !strcmp(key, "topic.control")  ? &p->topic_control
                                                     : &p->topic_workflows;
                if (!*value) {
                        sq_errstr_set(errstr, errstr_size,
                                      "setting \"%s\" must not be empty", key);
                        return SWARMQ_ERR_INVALID_ARG;
                }
                sq_free(*topicp);
                *topicp = sq_strdup(value);
                return SWARMQ_OK;
        }
        if (!strcmp(key, "schema.registry.url") ||
            !strcmp(key, "schema.registry.basic.auth.user.info") ||
            !strcmp(key, "schema.registry.ssl.ca.location")) {
                char **strp = !strcmp(key, "schema.registry.url") ? &p->sr_url
                              : !strcmp(key, "schema.registry.ssl.ca.location")
                                  ? &p->sr_ca
                                  : &p->sr_userinfo;
                sq_free(*strp);
                *strp = *value ? sq_strdup(value) : NULL;
                return SWARMQ_OK;
        }
        if (!strcmp(key, "schema.registry.timeout.ms")) {
                if (sq_parse_int64(value, 100, 600000, &ms) != SQ_OK) {
                        sq_errstr_set(errstr, errstr_size,
                                      "setting \"schema.registry.timeout.ms\" "
                                      "= \"%s\" is not a number of "
                                      "milliseconds (100..600000)",
                                      value);
                        return SWARMQ_ERR_INVALID_ARG;
                }
                p->sr_timeout_ms = ms;
                return SWARMQ_OK;
        }
        if (!strcmp(key, "submit.block.ms")) {
                if (sq_parse_int64(value, 0, INT32_MAX, &ms) != SQ_OK) {
                        sq_errstr_set(errstr, errstr_size,
                                      "setting \"submit.block.ms\" = \"%s\" "
                                      "is not a number of milliseconds "
                                      "(0..%d)",
                                      value, INT32_MAX);
                        return SWARMQ_ERR_INVALID_ARG;
                }
                p->submit_block_ms = ms;
                return SWARMQ_OK;
        }
        sq_errstr_set(errstr, errstr_size,
                      "unknown setting \"%s\" (expected kafka.<property>, "
                      "topic.tasks, topic.critical, topic.control, "
                      "topic.workflows, submit.block.ms or "
                      "schema.registry.*)",
                      key);
        return SWARMQ_ERR_INVALID_ARG;
}

/* schema.registry.url: a client of the registry, the Task schema
 * registered under the subjects of both task topics, and the codec in
 * registry mode. On failure nothing is kept: the next call tries again. */
static swarmq_err_t register_schemas(swarmq_producer_t *p, char *errstr,
                                     size_t errstr_size) {
        sq_schema_registry_conf_t rconf = {.url         = p->sr_url,
                                           .userinfo    = p->sr_userinfo,
                                           .ca_location = p->sr_ca,
                                           .timeout_ms  = (int)p->sr_timeout_ms,
                                           .cache_max   = 1000};
        sq_schema_registry_t *reg;
        sq_err_t err;

        if (!(reg = sq_schema_registry_new(&rconf, errstr, errstr_size)))
                return SWARMQ_ERR_INVALID_ARG;
        err = sq_codec_register_schema(reg, SQ_CODEC_KIND_TASK, p->topic_tasks,
                                       NULL, errstr, errstr_size);
        if (err == SQ_OK)
                err = sq_codec_register_schema(reg, SQ_CODEC_KIND_TASK,
                                               p->topic_critical, NULL, errstr,
                                               errstr_size);
        if (err != SQ_OK) {
                snprintf(p->last_error, sizeof(p->last_error), "%s", errstr);
                sq_schema_registry_destroy(reg);
                return err == SQ_ERR_UNAVAILABLE ? SWARMQ_ERR_TRANSPORT
                                                 : SWARMQ_ERR_ENCODE;
        }
        p->registry = reg;
        sq_codec_use_registry(p->codec, reg);
        return SWARMQ_OK;
}

/* Creates the client from the configuration; idempotent. */
static swarmq_err_t producer_start(swarmq_producer_t *p, char *errstr,
                                   size_t errstr_size) {
        if (p->rk) {
                if (p->rkt_tasks && p->rkt_critical)
                        return SWARMQ_OK;
                sq_errstr_set(errstr, errstr_size,
                              "the producer failed to start earlier: %s",
                              p->last_error);
                return SWARMQ_ERR_KAFKA;
        }
        if (p->sr_url && !p->registry) {
                swarmq_err_t ret = register_schemas(p, errstr, errstr_size);
                if (ret != SWARMQ_OK)
                        return ret;
        }
        /* A copy: after a failure the settings can still be changed and
         * the start tried again. */
        p->rk = sq_kafka_conf_new_client(
            RD_KAFKA_PRODUCER, rd_kafka_conf_dup(p->conf), errstr, errstr_size);
        if (!p->rk)
                return SWARMQ_ERR_KAFKA;
        rd_kafka_conf_destroy(p->conf);
        p->conf         = NULL;
        p->rkt_tasks    = rd_kafka_topic_new(p->rk, p->topic_tasks, NULL);
        p->rkt_critical = rd_kafka_topic_new(p->rk, p->topic_critical, NULL);
        if (!p->rkt_tasks || !p->rkt_critical) {
                snprintf(p->last_error, sizeof(p->last_error),
                         "cannot create topic handles for \"%s\" and "
                         "\"%s\": %s",
                         p->topic_tasks, p->topic_critical,
                         rd_kafka_err2str(rd_kafka_last_error()));
                sq_errstr_set(errstr, errstr_size, "%s", p->last_error);
                return SWARMQ_ERR_KAFKA;
        }
        return SWARMQ_OK;
}

swarmq_err_t swarmq_producer_connect(swarmq_producer_t *p, int timeout_ms,
                                     char *errstr, size_t errstr_size) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;
        swarmq_err_t ret;

        sq_assert(p);
        ret = producer_start(p, errstr, errstr_size);
        if (ret != SWARMQ_OK || timeout_ms <= 0)
                return ret;
        /* Metadata for the tasks topic: proves a broker answers and lets a
         * broker with auto-creation create the topic ahead of the first
         * record. */
        err = rd_kafka_metadata(p->rk, 0, p->rkt_tasks, &md, timeout_ms);
        if (err) {
                rd_kafka_queue_t *rkqu = rd_kafka_queue_get_main(p->rk);
                /* A login the brokers refused is the cause to name (no
                 * record was produced yet: the queue holds no delivery
                 * report). */
                if (sq_kafka_login_failed(rkqu, p->last_error,
                                          sizeof(p->last_error)))
                        sq_errstr_set(errstr, errstr_size, "%s", p->last_error);
                else
                        sq_errstr_set(errstr, errstr_size,
                                      "no broker answered within %d ms: %s",
                                      timeout_ms, rd_kafka_err2str(err));
                rd_kafka_queue_destroy(rkqu);
                return SWARMQ_ERR_TRANSPORT;
        }
        rd_kafka_metadata_destroy(md);
        return SWARMQ_OK;
}

/* Produces one copied record, waiting for room in a full queue for up to
 * submit.block.ms while serving delivery reports. */
static swarmq_err_t produce_to(swarmq_producer_t *p, rd_kafka_topic_t *rkt,
                               int32_t partition, const void *key,
                               size_t key_len, const void *value,
                               size_t value_len, char *errstr,
                               size_t errstr_size) {
        int64_t deadline = sq_clock_us() + p->submit_block_ms * 1000;
        rd_kafka_resp_err_t err;

        for (;;) {
                if (rd_kafka_produce(rkt, partition, RD_KAFKA_MSG_F_COPY,
                                     (void *)value, value_len, key, key_len,
                                     NULL) == 0)
                        break;
                err = rd_kafka_last_error();
                if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        int64_t left = deadline - sq_clock_us();
                        if (left <= 0) {
                                sq_errstr_set(errstr, errstr_size,
                                              "local queue for topic %s "
                                              "stayed full for %" PRId64 " ms",
                                              rd_kafka_topic_name(rkt),
                                              p->submit_block_ms);
                                return SWARMQ_ERR_QUEUE_FULL;
                        }
                        rd_kafka_poll(p->rk, (int)SQ_MIN(left / 1000 + 1, 100));
                        continue;
                }
                {
                        /* A missing ACL named as such: librdkafka's
                         * string names no operation. */
                        char why[512];
                        if (!sq_kafka_acl_denied(err, "Write",
                                                 rd_kafka_topic_name(rkt), NULL,
                                                 NULL, why, sizeof(why)))
                                snprintf(why, sizeof(why), "%s",
                                         rd_kafka_err2str(err));
                        sq_errstr_set(errstr, errstr_size,
                                      "cannot produce to topic %s: %s",
                                      rd_kafka_topic_name(rkt), why);
                }
                return SWARMQ_ERR_KAFKA;
        }
        p->counts.submitted++;
        if (++p->submit_cnt % SUBMIT_POLL_EVERY == 0)
                rd_kafka_poll(p->rk, 0);
        return SWARMQ_OK;
}

/* Produces a record; the partitioner picks its partition by key. */
static swarmq_err_t produce(swarmq_producer_t *p, rd_kafka_topic_t *rkt,
                            const void *key, size_t key_len, const void *value,
                            size_t value_len, char *errstr,
                            size_t errstr_size) {
        return produce_to(p, rkt, RD_KAFKA_PARTITION_UA, key, key_len, value,
                          value_len, errstr, errstr_size);
}

swarmq_err_t swarmq_producer_submit(swarmq_producer_t *p,
                                    const swarmq_task_t *stask, char *errstr,
                                    size_t errstr_size) {
        const sq_task_t *task;
        const void *buf;
        const char *key;
        size_t len;
        char cerr[256];
        swarmq_err_t ret;

        sq_assert(p && stask);
        task = stask->task;
        ret  = producer_start(p, errstr, errstr_size);
        if (ret != SWARMQ_OK)
                return ret;
        if (sq_codec_encode_task(p->codec, task, &buf, &len, cerr,
                                 sizeof(cerr)) != SQ_OK) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot encode task \"%s\": %s", task->id, cerr);
                return SWARMQ_ERR_ENCODE;
        }
        key = task->key ? task->key : task->id;
        return produce(p,
                       task->priority == SQ_PRIO_CRITICAL ? p->rkt_critical
                                                          : p->rkt_tasks,
                       key, strlen(key), buf, len, errstr, errstr_size);
}

swarmq_err_t swarmq_producer_send_raw(swarmq_producer_t *p, const void *key,
                                      size_t key_len, const void *value,
                                      size_t value_len, char *errstr,
                                      size_t errstr_size) {
        swarmq_err_t ret;

        sq_assert(p);
        sq_assert(value || value_len == 0);
        ret = producer_start(p, errstr, errstr_size);
        if (ret != SWARMQ_OK)
                return ret;
        return produce(p, p->rkt_tasks, key, key ? key_len : 0, value,
                       value_len, errstr, errstr_size);
}

swarmq_err_t swarmq_producer_cancel(swarmq_producer_t *p, const char *task_id,
                                    char *errstr, size_t errstr_size) {
        swarmq_err_t ret;
        char *value;

        sq_assert(p);
        if (!task_id || !*task_id || strlen(task_id) > 4096 ||
            !sq_codec_utf8_valid(task_id, strlen(task_id))) {
                sq_errstr_set(errstr, errstr_size,
                              "cancel: the task id must be 1 to 4096 bytes "
                              "of UTF-8");
                return SWARMQ_ERR_INVALID_ARG;
        }
        ret = producer_start(p, errstr, errstr_size);
        if (ret != SWARMQ_OK)
                return ret;
        if (!p->rkt_control && !(p->rkt_control = rd_kafka_topic_new(
                                     p->rk, p->topic_control, NULL))) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot create a topic handle for \"%s\": %s",
                              p->topic_control,
                              rd_kafka_err2str(rd_kafka_last_error()));
                return SWARMQ_ERR_KAFKA;
        }
        value = sq_cancels_record(task_id, "libswarmq", sq_wallclock_ms());
        ret   = produce(p, p->rkt_control, task_id, strlen(task_id), value,
                        strlen(value), errstr, errstr_size);
        sq_free(value);
        return ret;
}

/* The workflows topic's handle and partition count (a workflow's
 * records go to the partition its id hashes to, of that count). */
static swarmq_err_t workflows_topic(swarmq_producer_t *p, char *errstr,
                                    size_t errstr_size) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;

        if (p->rkt_workflows && p->workflows_partitions > 0)
                return SWARMQ_OK;
        if (!p->rkt_workflows && !(p->rkt_workflows = rd_kafka_topic_new(
                                       p->rk, p->topic_workflows, NULL))) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot create a topic handle for \"%s\": %s",
                              p->topic_workflows,
                              rd_kafka_err2str(rd_kafka_last_error()));
                return SWARMQ_ERR_KAFKA;
        }
        err = rd_kafka_metadata(p->rk, 0, p->rkt_workflows, &md, 10000);
        if (err) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot read the metadata of topic %s: %s",
                              p->topic_workflows, rd_kafka_err2str(err));
                return SWARMQ_ERR_TRANSPORT;
        }
        if (md->topic_cnt == 1 && !md->topics[0].err &&
            md->topics[0].partition_cnt > 0)
                p->workflows_partitions = md->topics[0].partition_cnt;
        else
                sq_errstr_set(errstr, errstr_size,
                              "topic %s: %s (a swarmq instance with "
                              "workflows.enable=true creates it)",
                              p->topic_workflows,
                              md->topic_cnt == 1 && md->topics[0].err
                                  ? rd_kafka_err2str(md->topics[0].err)
                                  : "it has no partitions");
        rd_kafka_metadata_destroy(md);
        return p->workflows_partitions > 0 ? SWARMQ_OK : SWARMQ_ERR_KAFKA;
}

swarmq_err_t swarmq_producer_submit_workflow(swarmq_producer_t *p,
                                             const char *json, size_t len,
                                             const char *workflow_id,
                                             char *id_out, size_t id_size,
                                             char *errstr, size_t errstr_size) {
        sq_workflow_t *wf = NULL;
        char key[SQ_WORKFLOW_ID_MAX + 16];
        char *value = NULL;
        swarmq_err_t ret;
        const char *id;

        sq_assert(p && (json || !len));
        wf = sq_workflow_parse(json, len, workflow_id, errstr, errstr_size);
        if (!wf)
                return SWARMQ_ERR_INVALID_ARG;
        id = sq_workflow_id(wf);
        if (id_out && sq_strlcpy(id_out, id, id_size) >= id_size) {
                sq_errstr_set(errstr, errstr_size,
                              "workflow id \"%s\" is longer than the "
                              "caller's %zu-byte buffer",
                              id, id_size);
                ret = SWARMQ_ERR_INVALID_ARG;
                goto done;
        }
        if ((ret = producer_start(p, errstr, errstr_size)) != SWARMQ_OK ||
            (ret = workflows_topic(p, errstr, errstr_size)) != SWARMQ_OK)
                goto done;
        sq_assert(sq_workflow_key(id, "", key, sizeof(key)));
        value = sq_workflow_declaration(wf, sq_wallclock_ms());
        ret =
            produce_to(p, p->rkt_workflows,
                       sq_workflow_partition(id, p->workflows_partitions), key,
                       strlen(key), value, strlen(value), errstr, errstr_size);
done:
        sq_free(value);
        sq_workflow_destroy(wf);
        return ret;
}

int swarmq_producer_poll(swarmq_producer_t *p, int timeout_ms) {
        sq_assert(p);
        if (!p->rk)
                return 0;
        return rd_kafka_poll(p->rk, timeout_ms);
}

uint64_t swarmq_producer_flush(swarmq_producer_t *p, int timeout_ms) {
        swarmq_producer_counts_t counts;

        sq_assert(p);
        if (p->rk)
                rd_kafka_flush(p->rk, timeout_ms);
        swarmq_producer_counts(p, &counts);
        return counts.failed + counts.in_flight;
}

void swarmq_producer_counts(const swarmq_producer_t *p,
                            swarmq_producer_counts_t *countsp) {
        sq_assert(p && countsp);
        *countsp = p->counts;
        countsp->in_flight =
            p->counts.submitted - p->counts.delivered - p->counts.failed;
}

const char *swarmq_producer_last_error(const swarmq_producer_t *p) {
        sq_assert(p);
        return p->last_error[0] ? p->last_error : NULL;
}

void swarmq_producer_destroy(swarmq_producer_t *p) {
        if (!p)
                return;
        if (p->rkt_tasks)
                rd_kafka_topic_destroy(p->rkt_tasks);
        if (p->rkt_critical)
                rd_kafka_topic_destroy(p->rkt_critical);
        if (p->rkt_control)
                rd_kafka_topic_destroy(p->rkt_control);
        if (p->rkt_workflows)
                rd_kafka_topic_destroy(p->rkt_workflows);
        if (p->rk)
                rd_kafka_destroy(p->rk);
        if (p->conf)
                rd_kafka_conf_destroy(p->conf);
        sq_codec_destroy(p->codec);
        sq_schema_registry_destroy(p->registry);
        sq_free(p->sr_url);
        sq_free(p->sr_userinfo);
        sq_free(p->sr_ca);
        sq_free(p->topic_tasks);
        sq_free(p->topic_critical);
        sq_free(p->topic_control);
        sq_free(p->topic_workflows);
        sq_free(p);
}
