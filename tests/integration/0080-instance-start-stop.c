/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 0080-instance-start-stop: the instance's life cycle as daemon.h
 * documents it, in-process on its own embedded broker.
 *
 *   - a configuration without a broker: sq_daemon_new() returns NULL and
 *     the errstr says how to give one;
 *   - built and destroyed without a start: everything is freed (ASan);
 *   - started: the embedded broker's bootstrap servers serve an
 *     independent client the six topics with embedded.partitions each;
 *     /healthz is 200, /readyz 503 "no partition assignment" until the
 *     group assigns the partitions, then 200, and /metrics counts every
 *     partition of the three input topics as assigned;
 *   - stopped: sq_daemon_stop() (twice: idempotent) then sq_daemon_wait()
 *     returns SQ_OK within seconds, and /readyz says "stopping" until
 *     sq_daemon_destroy();
 *   - http.port=0: sq_daemon_http_port() is 0;
 *   - stopped before the group assigned anything: a clean stop too;
 *   - destroyed while tasks run, without a stop: sq_daemon_destroy()
 *     stops it first, returns within seconds and frees everything.
 */
#include "test.h"

#include <stdio.h>
#include <string.h>

static void do_test_no_broker(void) {
        sq_config_t *conf = sq_config_new();
        char errstr[1024] = "";
        sq_daemon_t *daemon;

        TEST_PHASE("no broker configured");
        if (sq_config_set(conf, "http.port", "0", "test", errstr,
                          sizeof(errstr)) ||
            sq_config_finalize(conf, errstr, sizeof(errstr)))
                TEST_FAIL("config: %s", errstr);
        daemon = sq_daemon_new(conf, errstr, sizeof(errstr));
        TEST_ASSERT(daemon == NULL,
                    "sq_daemon_new() built an instance with no broker");
        TEST_ASSERT(strstr(errstr, "no Kafka broker configured") &&
                        strstr(errstr, "kafka.bootstrap.servers"),
                    "errstr \"%s\" does not say how to configure a broker",
                    errstr);
        TEST_SAY("sq_daemon_new: %s", errstr);
}

static void do_test_new_destroy(void) {
        sq_config_t *conf;
        sq_daemon_t *daemon;
        char errstr[1024];

        TEST_PHASE("new and destroy, never started");
        conf   = test_conf_new(NULL, "c0", "embedded.partitions", "2", NULL);
        daemon = sq_daemon_new(conf, errstr, sizeof(errstr));
        TEST_ASSERT(daemon != NULL, "sq_daemon_new: %s", errstr);
        TEST_ASSERT(sq_daemon_bootstrap_servers(daemon) &&
                        *sq_daemon_bootstrap_servers(daemon),
                    "no bootstrap servers before start");
        sq_daemon_destroy(daemon);
        sq_daemon_destroy(NULL); /* a no-op */
}

static void do_test_start_ready_stop(void) {
        static const char *const topics[] = {
            "swarmq-tasks",     "swarmq-tasks-critical", "swarmq-tasks-retry",
            "swarmq-tasks-dlt", "swarmq-results",        "swarmq-events"};
        sq_daemon_t *daemon;
        char *body = NULL;
        int status;
        size_t i;
        double assigned;
        sq_err_t err;
        int64_t t0;

        TEST_PHASE("start");
        daemon = test_instance_start(
            test_conf_new(NULL, "c1", "embedded.partitions", "3", NULL));
        TEST_ASSERT(sq_daemon_http_port(daemon) > 0,
                    "http.port=auto gave port %d", sq_daemon_http_port(daemon));
        for (i = 0; i < SQ_ARRAY_SIZE(topics); i++) {
                int cnt = test_partition_count(
                    sq_daemon_bootstrap_servers(daemon), topics[i]);
                TEST_ASSERT(cnt == 3,
                            "topic %s has %d partitions on the embedded "
                            "broker, embedded.partitions=3",
                            topics[i], cnt);
        }
        status = test_http_get(daemon, "/healthz", NULL);
        TEST_ASSERT(status == 200, "/healthz answered %d after start", status);

        TEST_PHASE("ready");
        /* The mock cluster holds the first join of a group for 3 s: the
         * instance is up but not yet assigned anything. */
        status = test_http_get(daemon, "/readyz", &body);
        TEST_ASSERT(status == 503 && body &&
                        strstr(body, "no partition assignment"),
                    "/readyz answered %d \"%s\" before the group's first "
                    "assignment",
                    status, body ? body : "");
        sq_free(body);
        test_wait_ready(daemon, 30000);
        assigned = test_metric(daemon, "swarmq_partitions_assigned{");
        TEST_ASSERT(assigned == 9,
                    "swarmq_partitions_assigned sums to %g, expected the 9 "
                    "partitions of tasks, critical and retry",
                    assigned);

        TEST_PHASE("stop");
        t0 = sq_clock_us();
        sq_daemon_stop(daemon);
        sq_daemon_stop(daemon);
        err = sq_daemon_wait(daemon);
        TEST_ASSERT(err == SQ_OK, "sq_daemon_wait() returned %s",
                    sq_err2str(err));
        TEST_ASSERT(sq_clock_us() - t0 < 10 * 1000000,
                    "an idle instance took %lld ms to stop",
                    (long long)((sq_clock_us() - t0) / 1000));
        TEST_SAY("stopped in %lld ms",
                 (long long)((sq_clock_us() - t0) / 1000));
        status = test_http_get(daemon, "/readyz", &body);
        TEST_ASSERT(status == 503 && body && strstr(body, "stopping"),
                    "/readyz answered %d \"%s\" after the stop", status,
                    body ? body : "");
        sq_free(body);
        err = sq_daemon_wait(daemon); /* again: already stopped */
        TEST_ASSERT(err == SQ_OK, "a second sq_daemon_wait() returned %s",
                    sq_err2str(err));
        sq_daemon_destroy(daemon);
}

static void do_test_no_http_stop_early(void) {
        sq_daemon_t *daemon;

        TEST_PHASE("http.port=0, stopped before any assignment");
        daemon = test_instance_start(test_conf_new(
            NULL, "c2", "embedded.partitions", "2", "http.port", "0", NULL));
        TEST_ASSERT(sq_daemon_http_port(daemon) == 0,
                    "http.port=0 but sq_daemon_http_port() is %d",
                    sq_daemon_http_port(daemon));
        test_instance_stop(daemon, 15000);
}

static void do_test_destroy_running(void) {
        sq_daemon_t *daemon;
        test_reader_t *events;
        rd_kafka_t *rk;
        int64_t t0;
        int i;

        TEST_PHASE("destroyed while tasks run");
        daemon = test_instance_start(
            test_conf_new(NULL, "c3", "embedded.partitions", "1", NULL));
        rk = test_producer_new(sq_daemon_bootstrap_servers(daemon));
        for (i = 0; i < 4; i++) {
                char id[16];
                sq_task_t *task;
                snprintf(id, sizeof(id), "s-%d", i);
                task = test_task_new(id, "sleep", "300");
                test_produce_task(rk, NULL, "swarmq-tasks", task, NULL);
                sq_task_destroy(task);
        }
        test_producer_flush(rk);
        rd_kafka_destroy(rk);
        events = test_reader_new(sq_daemon_bootstrap_servers(daemon),
                                 "swarmq-events");
        test_read_events(events, "started", 1, 30000);
        test_reader_destroy(events);
        /* Documented: stops first when running. */
        t0 = sq_clock_us();
        sq_daemon_destroy(daemon);
        TEST_ASSERT(sq_clock_us() - t0 < 10 * 1000000,
                    "sq_daemon_destroy() of a running instance took %lld ms",
                    (long long)((sq_clock_us() - t0) / 1000));
        TEST_SAY("destroyed in %lld ms",
                 (long long)((sq_clock_us() - t0) / 1000));
}

int main_0080_instance_start_stop(int argc, char **argv) {
        (void)argc;
        (void)argv;
        test_timeout_set(60);
        do_test_no_broker();
        do_test_new_destroy();
        do_test_start_ready_stop();
        do_test_no_http_stop_early();
        do_test_destroy_running();
        return 0;
}
