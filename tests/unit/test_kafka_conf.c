/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_kafka_conf.c: the one builder of librdkafka client configurations:
 * a rejected property is named with its value and librdkafka's reason,
 * pass-through properties apply in order with the "kafka." prefix
 * stripped, the profiles set what the guarantees need, a client that
 * cannot be created says which and frees its configuration, and
 * librdkafka's log lines come out through our sink. No broker needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kafka_conf.h"
#include "log.h"

/* The value of @p name in @p conf (into @p buf). */
static const char *get(const rd_kafka_conf_t *conf, const char *name, char *buf,
                       size_t size) {
        size_t len = size;

        assert_int_equal(rd_kafka_conf_get(conf, name, buf, &len),
                         RD_KAFKA_CONF_OK);
        return buf;
}

/* Rows: one property each; errstr must name it and its value. */
static const struct {
        const char *name;
        const char *value;
        sq_err_t want;
        const char *errstr; /* expected substring, NULL when accepted */
} set_rows[] = {
    {"linger.ms", "7", SQ_OK, NULL},
    {"client.id", "", SQ_OK, NULL},
    {"no.such.property", "1", SQ_ERR_CONFIG,
     "Kafka property \"no.such.property\" = \"1\": No such configuration "
     "property"},
    {"linger.ms", "soon", SQ_ERR_CONFIG,
     "Kafka property \"linger.ms\" = \"soon\": "},
    {"acks", "most", SQ_ERR_CONFIG, "Kafka property \"acks\" = \"most\": "},
};

static void test_set_names_the_bad_key(void **state) {
        size_t i;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(set_rows); i++) {
                rd_kafka_conf_t *conf = sq_kafka_conf_new();
                char errstr[512]      = "";
                sq_err_t err =
                    sq_kafka_conf_set(conf, set_rows[i].name, set_rows[i].value,
                                      errstr, sizeof(errstr));

                if (err != set_rows[i].want)
                        fail_msg("row %zu (%s=%s): got %d, want %d (%s)", i,
                                 set_rows[i].name, set_rows[i].value, err,
                                 set_rows[i].want, errstr);
                if (set_rows[i].errstr && !strstr(errstr, set_rows[i].errstr))
                        fail_msg("row %zu: errstr \"%s\" lacks \"%s\"", i,
                                 errstr, set_rows[i].errstr);
                rd_kafka_conf_destroy(conf);
        }
}

static void test_pairs_and_apply(void **state) {
        static const char *const pairs[] = {"linger.ms", "11", "client.id",
                                            "mine", NULL};
        const sq_kafka_prop_t props[]    = {
               {"kafka.linger.ms", "12"}, /* prefix stripped, later one wins */
               {"client.id", "theirs"},
               {"kafka.no.such", "x"}, /* stops here, named as librdkafka's */
               {"linger.ms", "99"},
        };
        rd_kafka_conf_t *conf = sq_kafka_conf_new();
        char errstr[512]      = "", buf[64];
        (void)state;

        assert_int_equal(
            sq_kafka_conf_set_pairs(conf, NULL, errstr, sizeof(errstr)), SQ_OK);
        assert_int_equal(
            sq_kafka_conf_set_pairs(conf, pairs, errstr, sizeof(errstr)),
            SQ_OK);
        assert_string_equal(get(conf, "linger.ms", buf, sizeof(buf)), "11");
        assert_int_equal(
            sq_kafka_conf_apply(conf, props, 2, errstr, sizeof(errstr)), SQ_OK);
        assert_string_equal(get(conf, "linger.ms", buf, sizeof(buf)), "12");
        assert_string_equal(get(conf, "client.id", buf, sizeof(buf)), "theirs");
        assert_int_equal(
            sq_kafka_conf_apply(conf, props, 4, errstr, sizeof(errstr)),
            SQ_ERR_CONFIG);
        assert_non_null(strstr(errstr, "Kafka property \"no.such\" = \"x\""));
        /* The ones after the bad one were not applied. */
        assert_string_equal(get(conf, "linger.ms", buf, sizeof(buf)), "12");
        rd_kafka_conf_destroy(conf);
}

/* Rows: a profile and what it must set. */
static const struct {
        sq_kafka_profile_t profile;
        const char *name;
        const char *value;
} profile_rows[] = {
    {SQ_KAFKA_PROFILE_IDEMPOTENT_PRODUCER, "enable.idempotence", "true"},
    {SQ_KAFKA_PROFILE_IDEMPOTENT_PRODUCER, "acks", "-1"}, /* all */
    {SQ_KAFKA_PROFILE_IDEMPOTENT_PRODUCER, "linger.ms", "5"},
    {SQ_KAFKA_PROFILE_MANUAL_COMMIT_CONSUMER, "enable.auto.commit", "false"},
    {SQ_KAFKA_PROFILE_MANUAL_COMMIT_CONSUMER, "enable.auto.offset.store",
     "false"},
};

static void test_profiles(void **state) {
        size_t i;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(profile_rows); i++) {
                rd_kafka_conf_t *conf = sq_kafka_conf_new();
                char errstr[256]      = "", buf[64];

                assert_int_equal(sq_kafka_conf_profile(conf,
                                                       profile_rows[i].profile,
                                                       errstr, sizeof(errstr)),
                                 SQ_OK);
                get(conf, profile_rows[i].name, buf, sizeof(buf));
                if (strcmp(buf, profile_rows[i].value))
                        fail_msg("row %zu: %s is \"%s\", want \"%s\"", i,
                                 profile_rows[i].name, buf,
                                 profile_rows[i].value);
                rd_kafka_conf_destroy(conf);
        }
}

/* An idempotent producer whose acks were overridden cannot be created;
 * the message says which client, the configuration is freed (ASan). */
static void test_new_client_failure(void **state) {
        rd_kafka_conf_t *conf = sq_kafka_conf_new();
        char errstr[512]      = "";
        (void)state;

        assert_int_equal(
            sq_kafka_conf_profile(conf, SQ_KAFKA_PROFILE_IDEMPOTENT_PRODUCER,
                                  errstr, sizeof(errstr)),
            SQ_OK);
        assert_int_equal(
            sq_kafka_conf_set(conf, "acks", "1", errstr, sizeof(errstr)),
            SQ_OK);
        assert_null(sq_kafka_conf_new_client(RD_KAFKA_PRODUCER, conf, errstr,
                                             sizeof(errstr)));
        assert_non_null(strstr(errstr, "cannot create the Kafka producer: "));
        assert_non_null(strstr(errstr, "acks"));
}

/* A client made from sq_kafka_conf_new() logs through the sink: the
 * "no bootstrap.servers" notice librdkafka gives at creation comes out as
 * one of our lines, on stderr. */
static void test_log_goes_through_the_sink(void **state) {
        rd_kafka_conf_t *conf = sq_kafka_conf_new();
        FILE *cap             = tmpfile();
        char errstr[512]      = "", text[8192];
        rd_kafka_t *rk;
        size_t n;
        int saved;
        (void)state;

        assert_non_null(cap);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        assert_true(saved >= 0);
        assert_true(dup2(fileno(cap), STDERR_FILENO) >= 0);
        rk = sq_kafka_conf_new_client(RD_KAFKA_PRODUCER, conf, errstr,
                                      sizeof(errstr));
        if (rk)
                rd_kafka_destroy(rk);
        dup2(saved, STDERR_FILENO);
        close(saved);
        assert_non_null(rk);

        rewind(cap);
        n       = fread(text, 1, sizeof(text) - 1, cap);
        text[n] = '\0';
        fclose(cap);
        if (!strstr(text, " RDK:CONFWARN ") || !strstr(text, "NOTICE"))
                fail_msg("no librdkafka line in the sink's format: \"%s\"",
                         text);
}

/* A consumer of group "g" with @p strategy (NULL: librdkafka's default,
 * eager) on a mock cluster of its own, closed. */
static rd_kafka_t *closed_consumer(const char *strategy) {
        rd_kafka_conf_t *conf = sq_kafka_conf_new();
        char errstr[512]      = "";
        rd_kafka_queue_t *rkqu;
        rd_kafka_error_t *error;
        rd_kafka_t *rk;

        /* Nothing leaves the process. */
        assert_int_equal(sq_kafka_conf_set(conf, "test.mock.num.brokers", "1",
                                           errstr, sizeof(errstr)),
                         SQ_OK);
        assert_int_equal(
            sq_kafka_conf_set(conf, "group.id", "g", errstr, sizeof(errstr)),
            SQ_OK);
        if (strategy)
                assert_int_equal(
                    sq_kafka_conf_set(conf, "partition.assignment.strategy",
                                      strategy, errstr, sizeof(errstr)),
                    SQ_OK);
        rk = sq_kafka_conf_new_client(RD_KAFKA_CONSUMER, conf, errstr,
                                      sizeof(errstr));
        assert_non_null(rk);
        rkqu  = rd_kafka_queue_get_consumer(rk);
        error = rd_kafka_consumer_close_queue(rk, rkqu);
        assert_null(error);
        while (!rd_kafka_consumer_closed(rk)) {
                rd_kafka_event_t *rkev = rd_kafka_queue_poll(rkqu, 100);
                if (rkev)
                        rd_kafka_event_destroy(rkev);
        }
        rd_kafka_queue_destroy(rkqu);
        return rk;
}

/* What sq_kafka_cooperative() says of a closed consumer of @p strategy. */
static bool cooperative_once_closed(const char *strategy) {
        rd_kafka_t *rk = closed_consumer(strategy);
        bool cooperative;

        /* The case under test: librdkafka no longer says (strcmp() on
         * this NULL crashed an instance stopping mid-rebalance, 0601). */
        assert_null(rd_kafka_rebalance_protocol(rk));
        cooperative = sq_kafka_cooperative(rk);
        rd_kafka_destroy(rk);
        return cooperative;
}

static void test_cooperative_when_closed(void **state) {
        (void)state;
        assert_false(cooperative_once_closed(NULL));
        assert_false(cooperative_once_closed("range,roundrobin"));
        assert_true(cooperative_once_closed("cooperative-sticky"));
}

/* Offsets for a transaction from a closed consumer: an error to abort
 * on, not a crash (its group metadata is NULL by then, and librdkafka's
 * destroy of NULL segfaults). */
static void test_send_offsets_when_closed(void **state) {
        rd_kafka_t *consumer  = closed_consumer(NULL);
        rd_kafka_conf_t *conf = sq_kafka_conf_new();
        rd_kafka_topic_partition_list_t *offsets =
            rd_kafka_topic_partition_list_new(1);
        char errstr[512] = "";
        rd_kafka_error_t *error;
        rd_kafka_t *producer;
        (void)state;

        assert_int_equal(sq_kafka_conf_set(conf, "test.mock.num.brokers", "1",
                                           errstr, sizeof(errstr)),
                         SQ_OK);
        producer = sq_kafka_conf_new_client(RD_KAFKA_PRODUCER, conf, errstr,
                                            sizeof(errstr));
        assert_non_null(producer);
        rd_kafka_topic_partition_list_add(offsets, "t", 0)->offset = 1;
        assert_null(rd_kafka_consumer_group_metadata(consumer));
        error = sq_kafka_send_offsets(producer, consumer, offsets, 1000);
        assert_non_null(error);
        assert_int_equal(rd_kafka_error_code(error), RD_KAFKA_RESP_ERR__STATE);
        assert_false(rd_kafka_error_is_fatal(error));
        assert_false(rd_kafka_error_is_retriable(error));
        assert_non_null(strstr(rd_kafka_error_string(error), "closed"));
        rd_kafka_error_destroy(error);
        rd_kafka_topic_partition_list_destroy(offsets);
        rd_kafka_destroy(producer);
        rd_kafka_destroy(consumer);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_set_names_the_bad_key),
            cmocka_unit_test(test_pairs_and_apply),
            cmocka_unit_test(test_profiles),
            cmocka_unit_test(test_new_client_failure),
            cmocka_unit_test(test_log_goes_through_the_sink),
            cmocka_unit_test(test_cooperative_when_closed),
            cmocka_unit_test(test_send_offsets_when_closed),
        };
        sq_log_set_level(SQ_LOG_INFO);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
