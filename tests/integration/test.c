/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test.c: the harness of the C integration tests (see test.h): reporting,
 * the watchdog, the mock cluster, instances, a task producer, topic
 * readers and committed offsets. Compiled into each test program with
 * SQ_TEST_MAIN (the test's entry point, main_NNNN_<slug>) and
 * SQ_TEST_NAME (NNNN-<slug>) defined by tests/CMakeLists.txt.
 *
 * DESIGN
 *   Threads: the test's main thread drives everything; the watchdog
 *   thread only sleeps until the deadline and fails the test. The
 *   instances bring their own threads. Producer delivery reports are
 *   served inside test_producer_flush() on the main thread, so the
 *   records' test_rec_t need no lock. Globals here are the harness's
 *   own (start time, phase, watchdog deadline), never an instance's.
 */
#include "test.h"
#include "hash.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef SQ_TEST_MAIN
#error "SQ_TEST_MAIN must name the test's entry point (tests/CMakeLists.txt)"
#endif
#ifndef SQ_TEST_NAME
#error "SQ_TEST_NAME must name the test (tests/CMakeLists.txt)"
#endif

static int64_t test_start_us;
static char test_phase_name[128]     = "start";
static pthread_mutex_t watchdog_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watchdog_cond;
static int64_t watchdog_deadline_us; /* 0: not armed */
static int watchdog_seconds;
static bool watchdog_started;

int64_t test_elapsed_ms(void) {
        return (sq_clock_us() - test_start_us) / 1000;
}

void test_say(const char *file, int line, const char *fmt, ...) {
        char msg[2048];
        va_list ap;
        const char *base = strrchr(file, '/');

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "[%s %3lld.%03llds] %s:%d: %s\n", SQ_TEST_NAME,
                (long long)(test_elapsed_ms() / 1000),
                (long long)(test_elapsed_ms() % 1000), base ? base + 1 : file,
                line, msg);
}

void test_fail(const char *file, int line, const char *func, const char *fmt,
               ...) {
        char msg[2048];
        va_list ap;
        const char *base = strrchr(file, '/');

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr,
                "[%s %3lld.%03llds] TEST FAILED in phase \"%s\" at %s:%d "
                "(%s): %s\n",
                SQ_TEST_NAME, (long long)(test_elapsed_ms() / 1000),
                (long long)(test_elapsed_ms() % 1000), test_phase_name,
                base ? base + 1 : file, line, func, msg);
        fflush(NULL);
        /* The instances' threads still run: no exit handlers. */
        _exit(1);
}

void test_phase(const char *name) {
        pthread_mutex_lock(&watchdog_lock);
        sq_strlcpy(test_phase_name, name, sizeof(test_phase_name));
        pthread_mutex_unlock(&watchdog_lock);
        fprintf(stderr, "[%s %3lld.%03llds] ---- %s\n", SQ_TEST_NAME,
                (long long)(test_elapsed_ms() / 1000),
                (long long)(test_elapsed_ms() % 1000), name);
}

static void *watchdog_main(void *arg) {
        (void)arg;
        pthread_mutex_lock(&watchdog_lock);
        for (;;) {
                int64_t now = sq_clock_us();
                struct timespec ts;
                if (watchdog_deadline_us && now >= watchdog_deadline_us) {
                        fprintf(stderr,
                                "[%s] TEST FAILED: timed out after %d s in "
                                "phase \"%s\"\n",
                                SQ_TEST_NAME, watchdog_seconds,
                                test_phase_name);
                        fflush(NULL);
                        _exit(1);
                }
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_sec += 1; /* re-checks at least every second */
                pthread_cond_timedwait(&watchdog_cond, &watchdog_lock, &ts);
        }
        return NULL;
}

void test_timeout_set(int seconds) {
        pthread_mutex_lock(&watchdog_lock);
        watchdog_seconds     = seconds;
        watchdog_deadline_us = sq_clock_us() + (int64_t)seconds * 1000000;
        if (!watchdog_started) {
                pthread_condattr_t attr;
                pthread_t thread;
                pthread_condattr_init(&attr);
                pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
                pthread_cond_init(&watchdog_cond, &attr);
                pthread_condattr_destroy(&attr);
                if (pthread_create(&thread, NULL, watchdog_main, NULL) == 0) {
                        pthread_detach(thread);
                        watchdog_started = true;
                }
        } else {
                pthread_cond_signal(&watchdog_cond);
        }
        pthread_mutex_unlock(&watchdog_lock);
}

void test_wait_until_why(const char *what, int timeout_ms,
                         bool (*cond)(void *opaque), void *opaque,
                         const char *why) {
        int64_t deadline = sq_clock_us() + (int64_t)timeout_ms * 1000;
        for (;;) {
                struct timespec ts = {0, 20 * 1000 * 1000};
                if (cond(opaque))
                        return;
                if (sq_clock_us() >= deadline)
                        TEST_FAIL("%s: not true after %d ms%s%s", what,
                                  timeout_ms, why ? ": " : "", why ? why : "");
                nanosleep(&ts, NULL);
        }
}

void test_wait_until(const char *what, int timeout_ms,
                     bool (*cond)(void *opaque), void *opaque) {
        test_wait_until_why(what, timeout_ms, cond, opaque, NULL);
}

int main(int argc, char **argv) {
        int ret;

        test_start_us = sq_clock_us();
        signal(SIGPIPE, SIG_IGN);
        test_timeout_set(120); /* each test sets its own */
        ret = SQ_TEST_MAIN(argc, argv);
        if (ret == 0)
                TEST_SAY("PASSED");
        else
                TEST_SAY("FAILED (%d)", ret);
        return ret;
}

/*
 * The mock cluster
 */

static void quiet_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf) {
        (void)rk;
        if (level <= 4)
                fprintf(stderr, "[%s] rdkafka %s: %s\n", SQ_TEST_NAME, fac,
                        buf);
}

test_cluster_t *test_cluster_new(int partitions) {
        return test_cluster_new_brokers(partitions, 1);
}

test_cluster_t *test_cluster_new_brokers(int partitions, int brokers) {
        test_cluster_t *cluster = sq_calloc(1, sizeof(*cluster));
        sq_config_t *conf       = sq_config_new();
        rd_kafka_conf_t *rkconf = rd_kafka_conf_new();
        const char *topics[6];
        char errstr[512];
        size_t i;

        rd_kafka_conf_set_log_cb(rkconf, quiet_log_cb);
        rd_kafka_conf_set(rkconf, "log_level", "3", NULL, 0);
        cluster->rk =
            rd_kafka_new(RD_KAFKA_PRODUCER, rkconf, errstr, sizeof(errstr));
        if (!cluster->rk)
                TEST_FAIL("cannot create the mock cluster's handle: %s",
                          errstr);
        cluster->mcluster = rd_kafka_mock_cluster_new(cluster->rk, brokers);
        if (!cluster->mcluster)
                TEST_FAIL("cannot start the mock cluster");
        /* The default topic names, from the one place that defines them. */
        topics[0] = conf->topic_tasks;
        topics[1] = conf->topic_critical;
        topics[2] = conf->topic_retry;
        topics[3] = conf->topic_dlt;
        topics[4] = conf->topic_results;
        topics[5] = conf->topic_events;
        for (i = 0; i < SQ_ARRAY_SIZE(topics); i++) {
                rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
                    cluster->mcluster, topics[i], i == 0 ? partitions : 2, 1);
                if (err)
                        TEST_FAIL("cannot create topic %s: %s", topics[i],
                                  rd_kafka_err2str(err));
        }
        cluster->bootstrap =
            sq_strdup(rd_kafka_mock_cluster_bootstraps(cluster->mcluster));
        TEST_SAY("mock cluster of %d broker%s at %s, %s with %d partitions",
                 brokers, brokers == 1 ? "" : "s", cluster->bootstrap,
                 topics[0], partitions);
        sq_config_destroy(conf); /* owned the topic names */
        return cluster;
}

void test_cluster_destroy(test_cluster_t *cluster) {
        if (!cluster)
                return;
        rd_kafka_mock_cluster_destroy(cluster->mcluster);
        rd_kafka_destroy(cluster->rk);
        sq_free(cluster->bootstrap);
        sq_free(cluster);
}

/*
 * Instances
 */

static void conf_set(sq_config_t *conf, const char *key, const char *value) {
        char errstr[512];
        if (sq_config_set(conf, key, value, "test", errstr, sizeof(errstr)) !=
            SQ_OK)
                TEST_FAIL("config %s=%s: %s", key, value, errstr);
}

sq_config_t *test_conf_new(const char *bootstrap, const char *instance_id,
                           ...) {
        sq_config_t *conf = sq_config_new();
        const char *level = getenv("SQ_TEST_LOG_LEVEL");
        const char *key;
        char errstr[512];
        va_list ap;

        if (bootstrap)
                conf_set(conf, "kafka.bootstrap.servers", bootstrap);
        else
                conf_set(conf, "embedded.broker", "true");
        conf_set(conf, "instance.id", instance_id);
        conf_set(conf, "http.port", "auto");
        conf_set(conf, "log.level", level ? level : "notice");
        conf_set(conf, "commit.interval.ms", "200");
        /* The mock cluster holds a rebalance (a member joining or leaving
         * a group that has members) for the session timeout less 1 s. */
        conf_set(conf, "kafka.session.timeout.ms", "4000");
        conf_set(conf, "kafka.heartbeat.interval.ms", "300");
        va_start(ap, instance_id);
        while ((key = va_arg(ap, const char *))) {
                const char *value = va_arg(ap, const char *);
                conf_set(conf, key, value);
        }
        va_end(ap);
        if (sq_config_finalize(conf, errstr, sizeof(errstr)) != SQ_OK)
                TEST_FAIL("config of instance %s: %s", instance_id, errstr);
        return conf;
}

sq_daemon_t *test_instance_start(sq_config_t *conf) {
        char instance_id[128], errstr[1024];
        sq_daemon_t *daemon;

        sq_log_set_level((sq_log_level_t)conf->log_level);
        sq_strlcpy(instance_id, conf->instance_id, sizeof(instance_id));
        daemon = sq_daemon_new(conf, errstr, sizeof(errstr));
        if (!daemon)
                TEST_FAIL("sq_daemon_new(%s): %s", instance_id, errstr);
        if (sq_daemon_start(daemon, errstr, sizeof(errstr)) != SQ_OK)
                TEST_FAIL("sq_daemon_start(%s): %s", instance_id, errstr);
        TEST_SAY("instance %s started, bootstrap.servers=%s http port %d",
                 instance_id, sq_daemon_bootstrap_servers(daemon),
                 sq_daemon_http_port(daemon));
        return daemon;
}

typedef struct stop_ctx_s {
        sq_daemon_t *daemon;
        sq_err_t err;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool done;
} stop_ctx_t;

static void *stop_main(void *arg) {
        stop_ctx_t *ctx = arg;
        sq_err_t err    = sq_daemon_wait(ctx->daemon);
        pthread_mutex_lock(&ctx->lock);
        ctx->err  = err;
        ctx->done = true;
        pthread_cond_signal(&ctx->cond);
        pthread_mutex_unlock(&ctx->lock);
        return NULL;
}

void test_instance_stop_wait(sq_daemon_t *daemon, int timeout_ms) {
        stop_ctx_t ctx = {.daemon = daemon};
        pthread_condattr_t attr;
        struct timespec ts;
        pthread_t thread;
        int64_t t0 = sq_clock_us();
        int rc     = 0;

        pthread_mutex_init(&ctx.lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&ctx.cond, &attr);
        pthread_condattr_destroy(&attr);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
        }

        sq_daemon_stop(daemon);
        sq_daemon_stop(daemon); /* idempotent, documented */
        /* sq_daemon_wait() blocks: on a thread, so a hang is a failure
         * with a deadline rather than the watchdog's. */
        if (pthread_create(&thread, NULL, stop_main, &ctx))
                TEST_FAIL("cannot start a thread");
        pthread_mutex_lock(&ctx.lock);
        while (!ctx.done && rc != ETIMEDOUT)
                rc = pthread_cond_timedwait(&ctx.cond, &ctx.lock, &ts);
        pthread_mutex_unlock(&ctx.lock);
        if (!ctx.done)
                TEST_FAIL("sq_daemon_wait() did not return within %d ms of "
                          "sq_daemon_stop()",
                          timeout_ms);
        pthread_join(thread, NULL);
        pthread_cond_destroy(&ctx.cond);
        pthread_mutex_destroy(&ctx.lock);
        TEST_ASSERT(ctx.err == SQ_OK,
                    "sq_daemon_wait() returned %s after a clean stop",
                    sq_err2str(ctx.err));
        TEST_SAY("instance stopped cleanly in %lld ms",
                 (long long)((sq_clock_us() - t0) / 1000));
}

void test_instance_stop(sq_daemon_t *daemon, int timeout_ms) {
        test_instance_stop_wait(daemon, timeout_ms);
        sq_daemon_destroy(daemon);
}

int test_http_get(sq_daemon_t *daemon, const char *path, char **bodyp) {
        return test_http_request(daemon, "GET", path, NULL, bodyp);
}

int test_http_request(sq_daemon_t *daemon, const char *method, const char *path,
                      const char *header, char **bodyp) {
        struct sockaddr_in addr = {0};
        char req[1024], *buf = NULL, *body;
        size_t len = 0, size = 0;
        int fd, status       = -1;

        if (bodyp)
                *bodyp = NULL;
        addr.sin_family      = AF_INET;
        addr.sin_port        = htons((uint16_t)sq_daemon_http_port(daemon));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
                TEST_FAIL("socket(): %s", strerror(errno));
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
                goto done;
        snprintf(req, sizeof(req),
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%sContent-Length: "
                 "0\r\nConnection: close\r\n\r\n",
                 method, path, header ? header : "", header ? "\r\n" : "");
        if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
                goto done;
        for (;;) {
                ssize_t r;
                if (size - len < 4096) {
                        if (size >= 4 * 1024 * 1024)
                                TEST_FAIL("%s %s: answer over 4 MiB", method,
                                          path);
                        size = size ? size * 2 : 16384;
                        buf  = sq_realloc(buf, size + 1);
                }
                r = read(fd, buf + len, size - len);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                len += (size_t)r;
        }
        if (!buf)
                goto done;
        buf[len] = '\0';
        if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
                status = -1;
        if (bodyp && (body = strstr(buf, "\r\n\r\n")))
                *bodyp = sq_strdup(body + 4);
done:
        sq_free(buf);
        close(fd);
        return status;
}

static bool is_ready(void *opaque) {
        return test_http_get(opaque, "/readyz", NULL) == 200;
}

void test_wait_ready(sq_daemon_t *daemon, int timeout_ms) {
        int64_t t0 = sq_clock_us();
        test_wait_until("the instance answers 200 on /readyz", timeout_ms,
                        is_ready, daemon);
        TEST_SAY("ready after %lld ms",
                 (long long)((sq_clock_us() - t0) / 1000));
}

double test_metric(sq_daemon_t *daemon, const char *prefix) {
        char *body = NULL, *line, *end;
        double sum = 0;
        int status = test_http_get(daemon, "/metrics", &body);

        if (status != 200 || !body)
                TEST_FAIL("GET /metrics answered %d", status);
        for (line = body; *line; line = end) {
                const char *value;
                if ((end = strchr(line, '\n')))
                        *end++ = '\0';
                else
                        end = line + strlen(line);
                if (strncmp(line, prefix, strlen(prefix)) != 0)
                        continue;
                if ((value = strrchr(line, ' ')))
                        sum += strtod(value + 1, NULL);
        }
        sq_free(body);
        return sum;
}

/*
 * Producing
 */

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque) {
        test_rec_t *rec = rkm->_private;
        int *failed     = opaque;

        (void)rk;
        if (rkm->err) {
                (*failed)++;
                TEST_SAY("delivery failed: %s", rd_kafka_err2str(rkm->err));
        }
        if (!rec)
                return;
        rec->partition = rkm->partition;
        rec->offset    = rkm->offset;
        rec->err       = rkm->err;
        rec->delivered = !rkm->err;
}

static int producer_failed; /* delivery failures, for every producer */

rd_kafka_t *test_producer_new(const char *bootstrap) {
        rd_kafka_conf_t *rkconf = rd_kafka_conf_new();
        char errstr[512];
        rd_kafka_t *rk;

        if (rd_kafka_conf_set(rkconf, "bootstrap.servers", bootstrap, errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(rkconf, "enable.idempotence", "true", errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(rkconf, "linger.ms", "5", errstr, sizeof(errstr)))
                TEST_FAIL("producer config: %s", errstr);
        rd_kafka_conf_set_log_cb(rkconf, quiet_log_cb);
        rd_kafka_conf_set_dr_msg_cb(rkconf, dr_msg_cb);
        rd_kafka_conf_set_opaque(rkconf, &producer_failed);
        if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkconf, errstr,
                                sizeof(errstr))))
                TEST_FAIL("cannot create a producer: %s", errstr);
        return rk;
}

void test_produce(rd_kafka_t *rk, const char *topic, const char *key,
                  const void *value, size_t len, test_rec_t *rec) {
        rd_kafka_resp_err_t err =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                              RD_KAFKA_V_VALUE((void *)value, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_OPAQUE(rec), RD_KAFKA_V_END);
        if (err)
                TEST_FAIL("produce to %s: %s", topic, rd_kafka_err2str(err));
        if (rec)
                rec->delivered = false;
        rd_kafka_poll(rk, 0);
}

void test_produce_task(rd_kafka_t *rk, sq_codec_t *codec, const char *topic,
                       const sq_task_t *task, test_rec_t *rec) {
        char errstr[512];

        if (codec) {
                const void *buf;
                size_t len;
                if (sq_codec_encode_task(codec, task, &buf, &len, errstr,
                                         sizeof(errstr)) != SQ_OK)
                        TEST_FAIL("encode task %s: %s", task->id, errstr);
                test_produce(rk, topic, task->id, buf, len, rec);
        } else {
                /* JSON written here, not by the codec under test. */
                json_t *obj = json_object();
                char *text;
                json_object_set_new(obj, "id", json_string(task->id));
                json_object_set_new(obj, "type", json_string(task->type));
                json_object_set_new(
                    obj, "priority",
                    json_string(sq_priority_name(task->priority)));
                if (task->payload_len)
                        json_object_set_new(
                            obj, "payload",
                            json_stringn((const char *)task->payload,
                                         task->payload_len));
                text = json_dumps(obj, JSON_COMPACT);
                json_decref(obj);
                test_produce(rk, topic, task->id, text, strlen(text), rec);
                free(text);
        }
}

void test_producer_flush(rd_kafka_t *rk) {
        rd_kafka_resp_err_t err = rd_kafka_flush(rk, 30000);
        if (err)
                TEST_FAIL("flush: %s (%d records left)", rd_kafka_err2str(err),
                          rd_kafka_outq_len(rk));
        TEST_ASSERT(producer_failed == 0, "%d records were not delivered",
                    producer_failed);
}

rd_kafka_resp_err_t test_producev_pass_on(rd_kafka_t *rk, va_list ap,
                                          test_produce_call_t *call) {
        rd_kafka_vu_t vus[16];
        size_t cnt = 0;
        rd_kafka_error_t *error;
        rd_kafka_resp_err_t err;

        memset(call, 0, sizeof(*call));
        for (;;) {
                rd_kafka_vu_t *vu = &vus[cnt];
                vu->vtype         = va_arg(ap, rd_kafka_vtype_t);
                if (vu->vtype == RD_KAFKA_VTYPE_END)
                        break;
                TEST_ASSERT(cnt + 1 < sizeof(vus) / sizeof(vus[0]),
                            "more than %zu produce arguments", cnt);
                switch (vu->vtype) {
                case RD_KAFKA_VTYPE_TOPIC:
                        vu->u.cstr = call->topic = va_arg(ap, const char *);
                        break;
                case RD_KAFKA_VTYPE_RKT:
                        vu->u.rkt   = va_arg(ap, rd_kafka_topic_t *);
                        call->topic = rd_kafka_topic_name(vu->u.rkt);
                        break;
                case RD_KAFKA_VTYPE_PARTITION:
                        vu->u.i32 = va_arg(ap, int32_t);
                        break;
                case RD_KAFKA_VTYPE_VALUE:
                case RD_KAFKA_VTYPE_KEY:
                        vu->u.mem.ptr  = va_arg(ap, void *);
                        vu->u.mem.size = va_arg(ap, size_t);
                        if (vu->vtype == RD_KAFKA_VTYPE_KEY && vu->u.mem.ptr) {
                                call->key_len =
                                    vu->u.mem.size < sizeof(call->key_copy)
                                        ? vu->u.mem.size
                                        : sizeof(call->key_copy);
                                memcpy(call->key_copy, vu->u.mem.ptr,
                                       call->key_len);
                                call->key = call->key_copy;
                        }
                        break;
                case RD_KAFKA_VTYPE_OPAQUE:
                        vu->u.ptr    = va_arg(ap, void *);
                        call->opaque = vu->u.ptr;
                        break;
                case RD_KAFKA_VTYPE_MSGFLAGS:
                        vu->u.i = va_arg(ap, int);
                        break;
                case RD_KAFKA_VTYPE_TIMESTAMP:
                        vu->u.i64 = va_arg(ap, int64_t);
                        break;
                case RD_KAFKA_VTYPE_HEADER:
                        vu->u.header.name = va_arg(ap, const char *);
                        vu->u.header.val  = va_arg(ap, const void *);
                        vu->u.header.size = va_arg(ap, ssize_t);
                        break;
                case RD_KAFKA_VTYPE_HEADERS:
                        vu->u.headers = va_arg(ap, rd_kafka_headers_t *);
                        break;
                default:
                        TEST_FAIL("produce argument type %d unknown to the "
                                  "spy",
                                  (int)vu->vtype);
                }
                cnt++;
        }

        error = rd_kafka_produceva(rk, vus, cnt);
        err   = error ? rd_kafka_error_code(error) : RD_KAFKA_RESP_ERR_NO_ERROR;
        if (error)
                rd_kafka_error_destroy(error);
        return err;
}

sq_task_t *test_task_new(const char *id, const char *type,
                         const char *payload) {
        sq_task_t *task = sq_task_new();
        task->id        = sq_strdup(id);
        task->type      = sq_strdup(type);
        if (payload && *payload) {
                task->payload_len = strlen(payload);
                task->payload     = sq_memdup(payload, task->payload_len);
        }
        task->created_at = sq_wallclock_ms();
        return task;
}

/*
 * Readers
 */

#define READER_BUCKETS 4096

struct test_reader_s {
        rd_kafka_t *rk;
        char *topic;
        sq_codec_t *codec;
        test_entry_t *buckets[READER_BUCKETS];
        size_t distinct_results;
        int partition_cnt;
        int64_t next[64]; /* per partition: the offset after the last read */
};

static rd_kafka_t *consumer_new(const char *bootstrap, const char *group) {
        rd_kafka_conf_t *rkconf = rd_kafka_conf_new();
        char errstr[512];
        rd_kafka_t *rk;

        if (rd_kafka_conf_set(rkconf, "bootstrap.servers", bootstrap, errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(rkconf, "group.id", group, errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(rkconf, "enable.auto.commit", "false", errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(rkconf, "fetch.wait.max.ms", "100", errstr,
                              sizeof(errstr)))
                TEST_FAIL("consumer config: %s", errstr);
        rd_kafka_conf_set_log_cb(rkconf, quiet_log_cb);
        if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, rkconf, errstr,
                                sizeof(errstr))))
                TEST_FAIL("cannot create a consumer: %s", errstr);
        return rk;
}

static int partition_count(rd_kafka_t *rk, const char *topic) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t err;
        int cnt;

        err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        if (err || md->topic_cnt != 1 || md->topics[0].err)
                TEST_FAIL("metadata of %s: %s", topic,
                          rd_kafka_err2str(err ? err : md->topics[0].err));
        cnt = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        return cnt;
}

int test_partition_count(const char *bootstrap, const char *topic) {
        rd_kafka_t *rk = consumer_new(bootstrap, "swarmq-test-metadata");
        int cnt        = partition_count(rk, topic);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return cnt;
}

test_reader_t *test_reader_new(const char *bootstrap, const char *topic) {
        test_reader_t *reader = sq_calloc(1, sizeof(*reader));
        rd_kafka_topic_partition_list_t *list;
        char errstr[512];
        int i, cnt;

        reader->rk    = consumer_new(bootstrap, "swarmq-test-reader");
        reader->topic = sq_strdup(topic);
        if (!(reader->codec = sq_codec_new(errstr, sizeof(errstr))))
                TEST_FAIL("sq_codec_new: %s", errstr);
        cnt = partition_count(reader->rk, topic);
        TEST_ASSERT(cnt <= 64, "topic %s has %d partitions, at most 64", topic,
                    cnt);
        reader->partition_cnt = cnt;
        list                  = rd_kafka_topic_partition_list_new(cnt);
        for (i = 0; i < cnt; i++)
                rd_kafka_topic_partition_list_add(list, topic, i)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        if (rd_kafka_assign(reader->rk, list))
                TEST_FAIL("cannot assign %s", topic);
        rd_kafka_topic_partition_list_destroy(list);
        return reader;
}

void test_reader_destroy(test_reader_t *reader) {
        size_t i;
        if (!reader)
                return;
        for (i = 0; i < READER_BUCKETS; i++) {
                test_entry_t *entry = reader->buckets[i], *next;
                for (; entry; entry = next) {
                        next = entry->next;
                        sq_result_destroy(entry->result);
                        sq_free(entry->id);
                        sq_free(entry);
                }
        }
        rd_kafka_consumer_close(reader->rk);
        rd_kafka_destroy(reader->rk);
        sq_codec_destroy(reader->codec);
        sq_free(reader->topic);
        sq_free(reader);
}

rd_kafka_message_t *test_reader_poll(test_reader_t *reader, int timeout_ms) {
        rd_kafka_message_t *rkm =
            rd_kafka_consumer_poll(reader->rk, timeout_ms);
        if (rkm && rkm->err) {
                if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        TEST_FAIL("reading %s: %s", reader->topic,
                                  rd_kafka_message_errstr(rkm));
                rd_kafka_message_destroy(rkm);
                return NULL;
        }
        if (rkm && rkm->partition >= 0 && rkm->partition < 64)
                reader->next[rkm->partition] = rkm->offset + 1;
        return rkm;
}

static uint32_t hash_str(const char *str) {
        return sq_hash_fnv1a32_str(str, SQ_HASH_FNV32_BASIS);
}

static test_entry_t *entry_get(test_reader_t *reader, const char *id) {
        test_entry_t **bucket = &reader->buckets[hash_str(id) % READER_BUCKETS];
        test_entry_t *entry;
        for (entry = *bucket; entry; entry = entry->next)
                if (!strcmp(entry->id, id))
                        return entry;
        entry       = sq_calloc(1, sizeof(*entry));
        entry->id   = sq_strdup(id);
        entry->next = *bucket;
        *bucket     = entry;
        return entry;
}

const test_entry_t *test_entry(const test_reader_t *reader, const char *id) {
        const test_entry_t *entry;
        for (entry = reader->buckets[hash_str(id) % READER_BUCKETS]; entry;
             entry = entry->next)
                if (!strcmp(entry->id, id))
                        return entry;
        return NULL;
}

size_t test_results_distinct(const test_reader_t *reader) {
        return reader->distinct_results;
}

static int remaining_ms(int64_t deadline) {
        int64_t left = (deadline - sq_clock_us()) / 1000;
        return left < 0 ? 0 : (int)left;
}

/* Decodes one result record into the reader's table. */
static void add_result(test_reader_t *reader, rd_kafka_message_t *rkm) {
        sq_result_t *result = NULL;
        test_entry_t *entry;
        char errstr[512];
        size_t len;

        if (sq_codec_decode_result(reader->codec, rkm->payload, rkm->len,
                                   &result, errstr, sizeof(errstr)) != SQ_OK)
                TEST_FAIL("undecodable result at %s [%d] offset %lld: %s",
                          reader->topic, (int)rkm->partition,
                          (long long)rkm->offset, errstr);
        rd_kafka_message_destroy(rkm);
        entry = entry_get(reader, result->task_id);
        len   = strlen(entry->instances);
        snprintf(entry->instances + len, sizeof(entry->instances) - len, "%s%s",
                 len ? " " : "", result->instance ? result->instance : "-");
        if (entry->results++ == 0) {
                entry->result = result;
                reader->distinct_results++;
        } else {
                TEST_SAY("duplicate result for task %s (%s, from %s)",
                         result->task_id, sq_status_name(result->status),
                         result->instance);
                sq_result_destroy(result);
        }
}

size_t test_read_results(test_reader_t *reader, size_t want, int timeout_ms) {
        int64_t deadline = sq_clock_us() + (int64_t)timeout_ms * 1000;
        size_t read      = 0;

        while (reader->distinct_results < want) {
                rd_kafka_message_t *rkm;
                if (sq_clock_us() >= deadline)
                        TEST_FAIL("%zu of %zu task ids have a result in %s "
                                  "after %d ms",
                                  reader->distinct_results, want, reader->topic,
                                  timeout_ms);
                if (!(rkm = test_reader_poll(reader, remaining_ms(deadline))))
                        continue;
                add_result(reader, rkm);
                read++;
        }
        return read;
}

/* Reads until the reader has read every record the topic holds now,
 * handing each to @p add. */
static size_t read_to_end(test_reader_t *reader, int timeout_ms,
                          void (*add)(test_reader_t *reader,
                                      rd_kafka_message_t *rkm)) {
        int64_t deadline = sq_clock_us() + (int64_t)timeout_ms * 1000;
        int64_t high[64];
        size_t read = 0;
        int i;

        for (i = 0; i < reader->partition_cnt; i++) {
                int64_t lo;
                rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
                    reader->rk, reader->topic, i, &lo, &high[i], 10000);
                if (err)
                        TEST_FAIL("watermarks of %s [%d]: %s", reader->topic, i,
                                  rd_kafka_err2str(err));
        }
        for (i = 0; i < reader->partition_cnt;) {
                rd_kafka_message_t *rkm;
                if (reader->next[i] >= high[i]) {
                        i++;
                        continue;
                }
                if (sq_clock_us() >= deadline)
                        TEST_FAIL("%s [%d] read up to offset %lld of %lld "
                                  "after %d ms",
                                  reader->topic, i, (long long)reader->next[i],
                                  (long long)high[i], timeout_ms);
                if ((rkm = test_reader_poll(reader, remaining_ms(deadline)))) {
                        add(reader, rkm);
                        read++;
                }
        }
        return read;
}

size_t test_read_results_to_end(test_reader_t *reader, int timeout_ms) {
        return read_to_end(reader, timeout_ms, add_result);
}

static bool has_type(const test_entry_t *entry, const char *type) {
        char padded[sizeof(entry->types) + 2], word[64];
        snprintf(padded, sizeof(padded), " %s ", entry->types);
        snprintf(word, sizeof(word), " %s ", type);
        return strstr(padded, word) != NULL;
}

/* Decodes one event record into the reader's table (instance events,
 * with no task id, gather under ""). @returns whether its task id had no
 * event of @p type before. */
static bool add_event_typed(test_reader_t *reader, rd_kafka_message_t *rkm,
                            const char *type) {
        sq_event_t *event = NULL;
        test_entry_t *entry;
        char errstr[512];
        bool first;
        size_t len;

        if (sq_codec_decode_event(reader->codec, rkm->payload, rkm->len, &event,
                                  errstr, sizeof(errstr)) != SQ_OK)
                TEST_FAIL("undecodable event at %s [%d] offset %lld: %s",
                          reader->topic, (int)rkm->partition,
                          (long long)rkm->offset, errstr);
        rd_kafka_message_destroy(rkm);
        entry = entry_get(reader, event->task_id ? event->task_id : "");
        first = event->task_id && type && !strcmp(event->type, type) &&
                !has_type(entry, type);
        entry->events++;
        len = strlen(entry->types);
        snprintf(entry->types + len, sizeof(entry->types) - len, "%s%s",
                 len ? " " : "", event->type);
        sq_event_destroy(event);
        return first;
}

static void add_event(test_reader_t *reader, rd_kafka_message_t *rkm) {
        add_event_typed(reader, rkm, NULL);
}

void test_read_events(test_reader_t *reader, const char *type, size_t want,
                      int timeout_ms) {
        int64_t deadline = sq_clock_us() + (int64_t)timeout_ms * 1000;
        size_t have      = 0, i;

        /* Entries may hold events from an earlier call. */
        for (i = 0; i < READER_BUCKETS; i++) {
                const test_entry_t *entry;
                for (entry = reader->buckets[i]; entry; entry = entry->next)
                        if (*entry->id && has_type(entry, type))
                                have++;
        }
        while (have < want) {
                rd_kafka_message_t *rkm;
                if (sq_clock_us() >= deadline)
                        TEST_FAIL("%zu of %zu task ids have a \"%s\" event in "
                                  "%s after %d ms",
                                  have, want, type, reader->topic, timeout_ms);
                if ((rkm = test_reader_poll(reader, remaining_ms(deadline))) &&
                    add_event_typed(reader, rkm, type))
                        have++;
        }
}

size_t test_read_events_to_end(test_reader_t *reader, int timeout_ms) {
        return read_to_end(reader, timeout_ms, add_event);
}

/*
 * Offsets
 */

static void committed_read(rd_kafka_t *rk, const char *group, const char *topic,
                           int cnt, int64_t *offsets) {
        rd_kafka_topic_partition_list_t *list =
            rd_kafka_topic_partition_list_new(cnt);
        rd_kafka_resp_err_t err;
        int i;

        for (i = 0; i < cnt; i++)
                rd_kafka_topic_partition_list_add(list, topic, i);
        if ((err = rd_kafka_committed(rk, list, 10000)))
                TEST_FAIL("committed offsets of group %s: %s", group,
                          rd_kafka_err2str(err));
        for (i = 0; i < cnt; i++) {
                if (list->elems[i].err)
                        TEST_FAIL("committed offset of %s [%d]: %s", topic, i,
                                  rd_kafka_err2str(list->elems[i].err));
                offsets[i] = list->elems[i].offset;
        }
        rd_kafka_topic_partition_list_destroy(list);
}

/* A client of @p group that never joins it: closing sends no LeaveGroup. */
static void consumer_destroy(rd_kafka_t *rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
}

void test_committed(const char *bootstrap, const char *group, const char *topic,
                    int cnt, int64_t *offsets) {
        rd_kafka_t *rk = consumer_new(bootstrap, group);
        committed_read(rk, group, topic, cnt, offsets);
        consumer_destroy(rk);
}

void test_high_watermarks(const char *bootstrap, const char *topic, int cnt,
                          int64_t *offsets) {
        rd_kafka_t *rk = consumer_new(bootstrap, "swarmq-test-watermarks");
        int i;

        for (i = 0; i < cnt; i++) {
                int64_t lo;
                rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
                    rk, topic, i, &lo, &offsets[i], 10000);
                if (err)
                        TEST_FAIL("watermarks of %s [%d]: %s", topic, i,
                                  rd_kafka_err2str(err));
        }
        consumer_destroy(rk);
}

typedef struct committed_ctx_s {
        rd_kafka_t *rk;
        const char *group, *topic;
        int cnt;
        int64_t high[64], committed[64];
} committed_ctx_t;

static bool all_committed(void *opaque) {
        committed_ctx_t *ctx = opaque;
        int i;
        committed_read(ctx->rk, ctx->group, ctx->topic, ctx->cnt,
                       ctx->committed);
        for (i = 0; i < ctx->cnt; i++)
                if (ctx->committed[i] != ctx->high[i])
                        return false;
        return true;
}

void test_wait_committed_all(const char *bootstrap, const char *group,
                             const char *topic, int cnt, int timeout_ms) {
        committed_ctx_t ctx = {NULL, group, topic, cnt, {0}, {0}};
        char what[1024];
        size_t len;
        int i;

        TEST_ASSERT(cnt <= 64, "at most 64 partitions, not %d", cnt);
        test_high_watermarks(bootstrap, topic, cnt, ctx.high);
        ctx.rk = consumer_new(bootstrap, group);
        snprintf(what, sizeof(what),
                 "group %s's committed offsets of %s equal the high "
                 "watermarks (",
                 group, topic);
        for (i = 0; i < cnt; i++) {
                len = strlen(what);
                snprintf(what + len, sizeof(what) - len, "%s%lld", i ? " " : "",
                         (long long)ctx.high[i]);
        }
        len = strlen(what);
        snprintf(what + len, sizeof(what) - len, ")");
        if (!all_committed(&ctx)) {
                /* What they were when the wait started. */
                for (i = 0; i < cnt; i++)
                        TEST_SAY("  %s [%d]: committed %lld, high %lld", topic,
                                 i, (long long)ctx.committed[i],
                                 (long long)ctx.high[i]);
                test_wait_until(what, timeout_ms, all_committed, &ctx);
        }
        TEST_SAY("%s", what);
        consumer_destroy(ctx.rk);
}
