/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_producer.c: the public producer library (libswarmq) against
 * librdkafka's mock cluster: settings are validated with the key named,
 * CRITICAL tasks go to the fast-lane topic and others to the task topic,
 * record keys are task ids (or the task key), values decode back to the
 * task, and delivery counts add up. A broker nobody answers on is a
 * transport error, and so is a schema registry nobody answers on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <string.h>

#include "codec.h"
#include "swarmq/producer.h"

typedef struct cluster_s {
        rd_kafka_t *rk;
        rd_kafka_mock_cluster_t *mcluster;
        const char *bootstrap;
} cluster_t;

static int cluster_setup(void **state) {
        cluster_t *cl         = calloc(1, sizeof(*cl));
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[256];

        rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
        cl->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        assert_non_null(cl->rk);
        cl->mcluster = rd_kafka_mock_cluster_new(cl->rk, 1);
        assert_non_null(cl->mcluster);
        /* One partition each so the order read back is the order sent. */
        rd_kafka_mock_topic_create(cl->mcluster, "t-tasks", 1, 1);
        rd_kafka_mock_topic_create(cl->mcluster, "t-critical", 1, 1);
        cl->bootstrap = rd_kafka_mock_cluster_bootstraps(cl->mcluster);
        *state        = cl;
        return 0;
}

static int cluster_teardown(void **state) {
        cluster_t *cl = *state;
        rd_kafka_mock_cluster_destroy(cl->mcluster);
        rd_kafka_destroy(cl->rk);
        free(cl);
        return 0;
}

static void test_settings_name_the_bad_key(void **state) {
        cluster_t *cl = *state;
        swarmq_producer_t *p;
        char errstr[512] = "";

        p = swarmq_producer_new(cl->bootstrap, errstr, sizeof(errstr));
        assert_non_null(p);
        assert_int_equal(
            swarmq_producer_set(p, "topic.bogus", "x", errstr, sizeof(errstr)),
            SWARMQ_ERR_INVALID_ARG);
        assert_non_null(strstr(errstr, "topic.bogus"));
        assert_int_equal(swarmq_producer_set(p, "kafka.no.such.property", "1",
                                             errstr, sizeof(errstr)),
                         SWARMQ_ERR_INVALID_ARG);
        assert_non_null(strstr(errstr, "no.such.property"));
        assert_int_equal(swarmq_producer_set(p, "topic.tasks", "t-tasks",
                                             errstr, sizeof(errstr)),
                         SWARMQ_OK);
        assert_int_equal(
            swarmq_producer_connect(p, 10000, errstr, sizeof(errstr)),
            SWARMQ_OK);
        /* Too late once the client runs. */
        assert_int_equal(swarmq_producer_set(p, "topic.tasks", "other", errstr,
                                             sizeof(errstr)),
                         SWARMQ_ERR_STATE);
        swarmq_producer_destroy(p);
}

/* Reads every record of partition 0 of @p topic: keys and values. */
static int read_topic(const char *bootstrap, const char *topic, char keys[][64],
                      sq_task_t **tasks, int max) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts;
        sq_codec_t *codec = sq_codec_new(NULL, 0);
        char errstr[256];
        rd_kafka_t *rk;
        int n = 0, idle = 0;

        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, NULL, 0);
        rd_kafka_conf_set(conf, "group.id", "test-reader", NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        assert_non_null(rk);
        parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, topic, 0)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        assert_int_equal(rd_kafka_assign(rk, parts), 0);
        rd_kafka_topic_partition_list_destroy(parts);
        while (n < max && idle < 100) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);
                if (!rkm) {
                        idle++;
                        continue;
                }
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        rd_kafka_message_destroy(rkm);
                        break;
                }
                assert_int_equal(rkm->err, 0);
                snprintf(keys[n], 64, "%.*s", (int)rkm->key_len,
                         (const char *)rkm->key);
                assert_int_equal(sq_codec_decode_task(codec, rkm->payload,
                                                      rkm->len, &tasks[n],
                                                      errstr, sizeof(errstr)),
                                 SQ_OK);
                n++;
                rd_kafka_message_destroy(rkm);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        sq_codec_destroy(codec);
        return n;
}

static void test_routing_keys_and_counts(void **state) {
        cluster_t *cl = *state;
        static const struct {
                const char *id, *key;
                swarmq_priority_t prio;
        } sent[] = {
            {"n-1", NULL, SWARMQ_PRIORITY_NORMAL},
            {"c-1", NULL, SWARMQ_PRIORITY_CRITICAL},
            {"h-1", "order-42", SWARMQ_PRIORITY_HIGH},
            {"c-2", NULL, SWARMQ_PRIORITY_CRITICAL},
            {"l-1", NULL, SWARMQ_PRIORITY_LOW},
        };
        char keys[8][64];
        sq_task_t *tasks[8] = {0};
        swarmq_producer_counts_t counts;
        swarmq_producer_t *p;
        char errstr[512];
        size_t i;
        int n;

        p = swarmq_producer_new(cl->bootstrap, errstr, sizeof(errstr));
        assert_non_null(p);
        assert_int_equal(swarmq_producer_set(p, "topic.tasks", "t-tasks",
                                             errstr, sizeof(errstr)),
                         SWARMQ_OK);
        assert_int_equal(swarmq_producer_set(p, "topic.critical", "t-critical",
                                             errstr, sizeof(errstr)),
                         SWARMQ_OK);
        for (i = 0; i < sizeof(sent) / sizeof(sent[0]); i++) {
                swarmq_task_t *task = swarmq_task_new(sent[i].id, "echo");
                assert_int_equal(swarmq_task_set_priority(task, sent[i].prio),
                                 SWARMQ_OK);
                swarmq_task_set_payload(task, "hello", 5);
                if (sent[i].key)
                        swarmq_task_set_key(task, sent[i].key);
                assert_int_equal(
                    swarmq_producer_submit(p, task, errstr, sizeof(errstr)),
                    SWARMQ_OK);
                swarmq_task_destroy(task);
        }
        assert_int_equal(swarmq_producer_flush(p, 10000), 0);
        swarmq_producer_counts(p, &counts);
        assert_int_equal(counts.submitted, 5);
        assert_int_equal(counts.delivered, 5);
        assert_int_equal(counts.failed, 0);
        assert_int_equal(counts.in_flight, 0);
        swarmq_producer_destroy(p);

        /* The task topic: n-1, h-1 (keyed by its key), l-1, in order. */
        n = read_topic(cl->bootstrap, "t-tasks", keys, tasks, 8);
        assert_int_equal(n, 3);
        assert_string_equal(keys[0], "n-1");
        assert_string_equal(keys[1], "order-42");
        assert_string_equal(tasks[1]->id, "h-1");
        assert_int_equal(tasks[1]->priority, SQ_PRIO_HIGH);
        assert_string_equal(keys[2], "l-1");
        assert_int_equal(tasks[2]->priority, SQ_PRIO_LOW);
        assert_int_equal(tasks[0]->payload_len, 5);
        assert_memory_equal(tasks[0]->payload, "hello", 5);
        for (i = 0; i < (size_t)n; i++)
                sq_task_destroy(tasks[i]);

        /* The fast lane: the two CRITICAL tasks and nothing else. */
        n = read_topic(cl->bootstrap, "t-critical", keys, tasks, 8);
        assert_int_equal(n, 2);
        assert_string_equal(keys[0], "c-1");
        assert_string_equal(keys[1], "c-2");
        assert_int_equal(tasks[0]->priority, SQ_PRIO_CRITICAL);
        for (i = 0; i < (size_t)n; i++)
                sq_task_destroy(tasks[i]);
}

static void test_unreachable_broker_is_a_transport_error(void **state) {
        swarmq_producer_t *p;
        char errstr[512] = "";
        (void)state;

        /* Port 1 on loopback: nothing listens there. */
        p = swarmq_producer_new("127.0.0.1:1", errstr, sizeof(errstr));
        assert_non_null(p);
        assert_int_equal(
            swarmq_producer_connect(p, 1000, errstr, sizeof(errstr)),
            SWARMQ_ERR_TRANSPORT);
        assert_true(strlen(errstr) > 0);
        swarmq_producer_destroy(p);
}

static void test_unreachable_registry_is_a_transport_error(void **state) {
        cluster_t *cl = *state;
        swarmq_producer_t *p;
        char errstr[512] = "";

        p = swarmq_producer_new(cl->bootstrap, errstr, sizeof(errstr));
        assert_non_null(p);
        assert_int_equal(swarmq_producer_set(p, "schema.registry.timeout.ms",
                                             "5", errstr, sizeof(errstr)),
                         SWARMQ_ERR_INVALID_ARG);
        assert_non_null(strstr(errstr, "schema.registry.timeout.ms"));
        /* Port 1 on loopback: no registry there. The start registers the
         * Task schema first, so it fails naming the registry, and nothing
         * is started: the next call tries again. */
        assert_int_equal(swarmq_producer_set(p, "schema.registry.url",
                                             "http://127.0.0.1:1", errstr,
                                             sizeof(errstr)),
                         SWARMQ_OK);
        assert_int_equal(
            swarmq_producer_connect(p, 1000, errstr, sizeof(errstr)),
            SWARMQ_ERR_TRANSPORT);
        assert_non_null(strstr(errstr, "http://127.0.0.1:1"));
        assert_int_equal(swarmq_producer_set(p, "schema.registry.url", "",
                                             errstr, sizeof(errstr)),
                         SWARMQ_OK);
        assert_int_equal(
            swarmq_producer_connect(p, 5000, errstr, sizeof(errstr)),
            SWARMQ_OK);
        swarmq_producer_destroy(p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_unreachable_registry_is_a_transport_error),
            cmocka_unit_test(test_settings_name_the_bad_key),
            cmocka_unit_test(test_routing_keys_and_counts),
            cmocka_unit_test(test_unreachable_broker_is_a_transport_error),
        };
        return cmocka_run_group_tests(tests, cluster_setup, cluster_teardown);
}
