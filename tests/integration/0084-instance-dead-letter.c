/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 0084-instance-dead-letter: undecodable records go to the dead-letter
 * topic and consumption goes on, in-process on the embedded broker.
 *
 * Five records that are not tasks (plain text; JSON without a type; JSON
 * with an unknown field; Confluent framing with a schema id the catalog
 * lacks; an Avro task cut in half) sit between 40 echo tasks in one
 * partition. Every echo task gets its SUCCEEDED result; the three whose
 * task id can still be read (the two JSON ones and the cut Avro task) get
 * a DEAD_LETTERED result naming what is wrong, so a client waiting for
 * them gets an answer, and their dead_lettered event carries the id. The
 * dead-letter topic holds exactly the five, each with its original key, value
 * and upstream header, and the reason: swarmq-reason=DECODE_ERROR,
 * kafka_dlt-exception-message naming what is wrong, and
 * kafka_dlt-original-topic/-partition/-offset where it was produced.
 * Five dead_lettered events; /metrics counts five DECODE_ERROR dead
 * letters; the committed offset passes the bad records (the high
 * watermark); /healthz stays 200.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_GOOD 40
#define N_BAD  5
#define N_IDS  3 /* bad records whose task id can be read */
static const char *const bad_ids[N_IDS] = {"t-no-type", "t1", "cut-in-half"};
static const char *const bad_reasons[N_IDS] = {"type", "colour", "byte offset"};

typedef struct bad_s {
        char key[16];
        unsigned char value[256];
        size_t len;
        const char *reason; /* a word the exception message must hold */
        test_rec_t rec;
} bad_t;

static bad_t bad[N_BAD];

static void set_bad(bad_t *b, int i, const void *value, size_t len,
                    const char *reason) {
        snprintf(b->key, sizeof(b->key), "bad-%d", i);
        TEST_ASSERT(len <= sizeof(b->value), "bad record %d too long", i);
        memcpy(b->value, value, len);
        b->len    = len;
        b->reason = reason;
}

static void make_bad(sq_codec_t *codec) {
        static const unsigned char unknown_schema[] = {0x00, 0x00, 0x00, 0x03,
                                                       0xe7, 0x02, 0x41};
        const char *json_no_type                    = "{\"id\":\"t-no-type\"}";
        const char *json_unknown = "{\"id\":\"t1\",\"type\":\"noop\","
                                   "\"colour\":\"red\"}";
        const char *text         = "plain text, not a task";
        sq_task_t *task = test_task_new("cut-in-half", "echo", "some payload");
        const void *buf;
        size_t len;
        char errstr[512];

        if (sq_codec_encode_task(codec, task, &buf, &len, errstr,
                                 sizeof(errstr)) != SQ_OK)
                TEST_FAIL("encode: %s", errstr);
        set_bad(&bad[0], 0, text, strlen(text), "magic byte");
        set_bad(&bad[1], 1, json_no_type, strlen(json_no_type), "type");
        set_bad(&bad[2], 2, json_unknown, strlen(json_unknown), "colour");
        set_bad(&bad[3], 3, unknown_schema, sizeof(unknown_schema), "999");
        set_bad(&bad[4], 4, buf, len / 2, "byte offset");
        sq_task_destroy(task);
}

/* @returns the value of header @p name as a string (caller frees). */
static char *header(const rd_kafka_message_t *rkm, const char *name) {
        rd_kafka_headers_t *hdrs = NULL;
        const void *value;
        size_t size;
        if (rd_kafka_message_headers(rkm, &hdrs) ||
            rd_kafka_header_get_last(hdrs, name, &value, &size))
                return NULL;
        return sq_strndup(value, size);
}

static void check_header(const rd_kafka_message_t *rkm, const bad_t *b,
                         const char *name, const char *want) {
        char *value = header(rkm, name);
        TEST_ASSERT(value && !strcmp(value, want),
                    "dead letter %s: header %s is \"%s\", expected \"%s\"",
                    b->key, name, value ? value : "(none)", want);
        sq_free(value);
}

static void check_dead_letter(const rd_kafka_message_t *rkm) {
        char num[32], *message;
        const bad_t *b = NULL;
        int i;

        for (i = 0; i < N_BAD; i++)
                if (rkm->key_len == strlen(bad[i].key) &&
                    !memcmp(rkm->key, bad[i].key, rkm->key_len))
                        b = &bad[i];
        TEST_ASSERT(b, "a dead letter with key \"%.*s\" was never produced",
                    (int)rkm->key_len, (const char *)rkm->key);
        TEST_ASSERT(rkm->len == b->len &&
                        !memcmp(rkm->payload, b->value, b->len),
                    "dead letter %s: %zu value bytes differ from the %zu "
                    "produced",
                    b->key, rkm->len, b->len);
        check_header(rkm, b, "swarmq-reason", "DECODE_ERROR");
        check_header(rkm, b, "kafka_dlt-original-topic", "swarmq-tasks");
        snprintf(num, sizeof(num), "%d", (int)b->rec.partition);
        check_header(rkm, b, "kafka_dlt-original-partition", num);
        snprintf(num, sizeof(num), "%lld", (long long)b->rec.offset);
        check_header(rkm, b, "kafka_dlt-original-offset", num);
        check_header(rkm, b, "kafka_dlt-original-consumer-group", "swarmq");
        check_header(rkm, b, "swarmq-instance", "c1");
        check_header(rkm, b, "upstream-trace", b->key);
        message = header(rkm, "kafka_dlt-exception-message");
        TEST_ASSERT(message && *message && strstr(message, b->reason),
                    "dead letter %s: exception message \"%s\" does not "
                    "name \"%s\"",
                    b->key, message ? message : "(none)", b->reason);
        TEST_SAY("dead letter %s: %s", b->key, message);
        sq_free(message);
}

int main_0084_instance_dead_letter(int argc, char **argv) {
        static char ids[N_GOOD][16];
        test_reader_t *results, *events, *dlt;
        const test_entry_t *instance_events;
        sq_daemon_t *daemon;
        sq_codec_t *codec;
        const char *bootstrap;
        char errstr[512], types[300], *word;
        int i, seen = 0, dead_lettered = 0;
        int64_t deadline;
        double metric;
        rd_kafka_t *rk;

        (void)argc;
        (void)argv;
        test_timeout_set(60);

        TEST_PHASE("produce");
        daemon = test_instance_start(
            test_conf_new(NULL, "c1", "embedded.partitions", "1",
                          "retry.max.attempts", "1", NULL));
        bootstrap = sq_daemon_bootstrap_servers(daemon);
        if (!(codec = sq_codec_new(errstr, sizeof(errstr))))
                TEST_FAIL("sq_codec_new: %s", errstr);
        make_bad(codec);
        rk = test_producer_new(bootstrap);
        for (i = 0; i < N_GOOD; i++) {
                sq_task_t *task;
                snprintf(ids[i], sizeof(ids[i]), "good-%02d", i);
                task = test_task_new(ids[i], "echo", ids[i]);
                test_produce_task(rk, NULL, "swarmq-tasks", task, NULL);
                sq_task_destroy(task);
                if (i % 8 == 7) {
                        bad_t *b                = &bad[i / 8];
                        rd_kafka_resp_err_t err = rd_kafka_producev(
                            rk, RD_KAFKA_V_TOPIC("swarmq-tasks"),
                            RD_KAFKA_V_KEY(b->key, strlen(b->key)),
                            RD_KAFKA_V_VALUE(b->value, b->len),
                            RD_KAFKA_V_HEADER("upstream-trace", b->key, -1),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_OPAQUE(&b->rec), RD_KAFKA_V_END);
                        if (err)
                                TEST_FAIL("produce: %s", rd_kafka_err2str(err));
                }
        }
        test_producer_flush(rk);

        TEST_PHASE("the tasks around them run");
        results = test_reader_new(bootstrap, "swarmq-results");
        test_read_results(results, N_GOOD + N_IDS, 30000);
        for (i = 0; i < N_GOOD; i++) {
                const test_entry_t *entry = test_entry(results, ids[i]);
                const sq_result_t *result = entry->result;
                TEST_ASSERT(
                    result->status == SQ_STATUS_SUCCEEDED &&
                        result->output_len == strlen(ids[i]) &&
                        !memcmp(result->output, ids[i], result->output_len),
                    "task %s: %s \"%.*s\"", ids[i],
                    sq_status_name(result->status), (int)result->output_len,
                    result->output ? (const char *)result->output : "");
        }
        for (i = 0; i < N_IDS; i++) {
                const test_entry_t *entry = test_entry(results, bad_ids[i]);
                TEST_ASSERT(entry && entry->results == 1 &&
                                entry->result->status ==
                                    SQ_STATUS_DEAD_LETTERED &&
                                entry->result->error &&
                                strstr(entry->result->error, bad_reasons[i]),
                            "refused task %s: %d results, error %s", bad_ids[i],
                            entry ? entry->results : 0,
                            entry && entry->result->error ? entry->result->error
                                                          : "(none)");
        }
        TEST_ASSERT(test_results_distinct(results) == N_GOOD + N_IDS,
                    "%zu task ids have results, %d tasks and %d refused "
                    "records with an id were produced",
                    test_results_distinct(results), N_GOOD, N_IDS);

        TEST_PHASE("dead letters");
        test_wait_committed_all(bootstrap, "swarmq", "swarmq-tasks", 1, 10000);
        /* Committed past them: every dead letter is in the topic. */
        dlt      = test_reader_new(bootstrap, "swarmq-tasks-dlt");
        deadline = sq_clock_us() + 10 * 1000000;
        while (seen < N_BAD) {
                rd_kafka_message_t *rkm;
                TEST_ASSERT(sq_clock_us() < deadline,
                            "%d of %d dead letters after 10 s", seen, N_BAD);
                if (!(rkm = test_reader_poll(dlt, 100)))
                        continue;
                check_dead_letter(rkm);
                rd_kafka_message_destroy(rkm);
                seen++;
        }
        {
                int64_t high[1];
                test_high_watermarks(bootstrap, "swarmq-tasks-dlt", 1, high);
                TEST_ASSERT(high[0] == N_BAD,
                            "the dead-letter topic holds %lld records, %d "
                            "were undecodable",
                            (long long)high[0], N_BAD);
        }

        TEST_PHASE("events and metrics");
        events = test_reader_new(bootstrap, "swarmq-events");
        test_read_events_to_end(events, 10000);
        instance_events = test_entry(events, "");
        snprintf(types, sizeof(types), " %s ",
                 instance_events ? instance_events->types : "");
        for (word = strstr(types, " dead_lettered "); word;
             word = strstr(word + 1, " dead_lettered "))
                dead_lettered++;
        TEST_ASSERT(dead_lettered == N_BAD - N_IDS,
                    "%d dead_lettered events without a task id, %d "
                    "undecodable records without a readable id",
                    dead_lettered, N_BAD - N_IDS);
        for (i = 0; i < N_IDS; i++) {
                const test_entry_t *ev = test_entry(events, bad_ids[i]);
                TEST_ASSERT(ev && strstr(ev->types, "dead_lettered"),
                            "refused task %s: events \"%s\"", bad_ids[i],
                            ev ? ev->types : "");
        }
        metric = test_metric(
            daemon, "swarmq_dead_letters_total{reason=\"DECODE_ERROR\"");
        TEST_ASSERT(metric == N_BAD,
                    "swarmq_dead_letters_total{reason=\"DECODE_ERROR\"} is "
                    "%g",
                    metric);
        TEST_ASSERT(test_http_get(daemon, "/healthz", NULL) == 200,
                    "/healthz is not 200 after bad input");

        TEST_PHASE("stop");
        test_reader_destroy(results);
        test_reader_destroy(events);
        test_reader_destroy(dlt);
        rd_kafka_destroy(rk);
        sq_codec_destroy(codec);
        test_instance_stop(daemon, 15000);
        return 0;
}
