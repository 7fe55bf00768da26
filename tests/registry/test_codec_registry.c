/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_codec_registry.c: the codec in Schema Registry mode against a real
 * registry (the ctest fixture "registry"): what it writes is framed with
 * the ids it registered, a codec that never saw an id reads it by fetching
 * the writer schema, an older or a reordered writer schema resolves to the
 * current one with its defaults, and an unknown id, an incompatible schema
 * or a registry that does not answer are told apart (refused with the id
 * named, or "try again").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <avro.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "schema_registry.h"

static char registry_url_buf[512];

/* The fixture's URL (see test_schema_registry.c). */
static const char *registry_url(void) {
        const char *env = getenv("SQ_TEST_REGISTRY_URL");
        const char *dir = getenv("SQ_TEST_REGISTRY_STATE");
        char path[512];
        FILE *fp;

        if (env && *env)
                return env;
        if (*registry_url_buf)
                return registry_url_buf;
        snprintf(path, sizeof(path), "%s/url", dir ? dir : "");
        if (!dir || !(fp = fopen(path, "r")))
                fail_msg("no registry: set SQ_TEST_REGISTRY_URL, or run "
                         "through ctest (the registry fixture writes %s)",
                         path);
        if (fscanf(fp, "schema.registry.url=%511s", registry_url_buf) != 1)
                fail_msg("%s has no schema.registry.url= line", path);
        fclose(fp);
        return registry_url_buf;
}

#define assert_ok(err, errstr)                                                 \
        do {                                                                   \
                sq_err_t err_ = (err);                                         \
                if (err_ != SQ_OK)                                             \
                        fail_msg("%s: %s", sq_err2str(err_), errstr);          \
        } while (0)

static sq_schema_registry_t *client(const char *url) {
        sq_schema_registry_conf_t conf = {
            .url = url, .timeout_ms = 5000, .cache_max = 16};
        char errstr[512] = "";
        sq_schema_registry_t *reg =
            sq_schema_registry_new(&conf, errstr, sizeof(errstr));
        if (!reg)
                fail_msg("%s", errstr);
        return reg;
}

static sq_codec_t *codec_on(sq_schema_registry_t *reg) {
        char errstr[512]  = "";
        sq_codec_t *codec = sq_codec_new(errstr, sizeof(errstr));
        if (!codec)
                fail_msg("%s", errstr);
        sq_codec_use_registry(codec, reg);
        return codec;
}

static void unique_topic(char *buf, size_t size, const char *what) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(buf, size, "codec-%s-%ld-%ld", what, (long)getpid(),
                 (long)ts.tv_nsec);
}

static uint32_t frame_id(const void *buf) {
        const unsigned char *p = buf;
        return ((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) |
               ((uint32_t)p[3] << 8) | p[4];
}

static void test_writes_and_reads_registry_ids(void **state) {
        sq_schema_registry_t *reg = client(registry_url());
        sq_codec_t *writer        = codec_on(reg);
        sq_codec_t *reader; /* a codec that has seen no id yet */
        sq_task_t *task = sq_task_new(), *back = NULL;
        sq_result_t result = {0}, *rback = NULL;
        char topic[128], errstr[512]     = "";
        uint32_t task_id = 0, result_id = 0;
        const void *buf;
        size_t len;
        (void)state;

        /* Not registered yet: nothing is written with a made-up id. */
        task->id   = sq_strdup("t-1");
        task->type = sq_strdup("sha256");
        assert_int_equal(sq_codec_encode_task(writer, task, &buf, &len, errstr,
                                              sizeof(errstr)),
                         SQ_ERR_ENCODE);
        assert_non_null(strstr(errstr, "not registered"));

        unique_topic(topic, sizeof(topic), "tasks");
        assert_ok(sq_codec_register_schema(reg, SQ_CODEC_KIND_TASK, topic,
                                           &task_id, errstr, sizeof(errstr)),
                  errstr);
        unique_topic(topic, sizeof(topic), "results");
        assert_ok(sq_codec_register_schema(reg, SQ_CODEC_KIND_RESULT, topic,
                                           &result_id, errstr, sizeof(errstr)),
                  errstr);
        assert_true(task_id > 0 && result_id > 0 && task_id != result_id);

        task->payload      = (unsigned char *)sq_strdup("hello");
        task->payload_len  = 5;
        task->max_attempts = 5;
        assert_ok(sq_codec_encode_task(writer, task, &buf, &len, errstr,
                                       sizeof(errstr)),
                  errstr);
        assert_int_equal(frame_id(buf), task_id);
        reader = codec_on(reg);
        assert_ok(sq_codec_prepare(reader, buf, len, errstr, sizeof(errstr)),
                  errstr);
        assert_ok(sq_codec_decode_task(reader, buf, len, &back, errstr,
                                       sizeof(errstr)),
                  errstr);
        assert_string_equal(back->id, "t-1");
        assert_int_equal(back->payload_len, 5);
        assert_memory_equal(back->payload, "hello", 5);
        assert_int_equal(back->max_attempts, 5);
        sq_task_destroy(back);

        result.task_id  = "t-1";
        result.instance = "i-1";
        result.status   = SQ_STATUS_SUCCEEDED;
        result.attempts = 1;
        assert_ok(sq_codec_encode_result(writer, &result, &buf, &len, errstr,
                                         sizeof(errstr)),
                  errstr);
        assert_int_equal(frame_id(buf), result_id);
        assert_ok(sq_codec_decode_result(reader, buf, len, &rback, errstr,
                                         sizeof(errstr)),
                  errstr);
        assert_string_equal(rback->task_id, "t-1");
        assert_int_equal(rback->status, SQ_STATUS_SUCCEEDED);
        sq_result_destroy(rback);

        /* A Result id where a Task is expected: refused, naming both. */
        assert_int_equal(sq_codec_decode_task(reader, buf, len, &back, errstr,
                                              sizeof(errstr)),
                         SQ_ERR_DECODE);
        assert_non_null(strstr(errstr, "is a Result schema, not a Task"));

        sq_task_destroy(task);
        sq_codec_destroy(writer);
        sq_codec_destroy(reader);
        sq_schema_registry_destroy(reg);
}

/* Registers @p schema_json and writes one record of it: fields by name
 * from a tiny table (strings, longs, the Priority enum). */
static size_t write_with_schema(sq_schema_registry_t *reg,
                                const char *schema_json, unsigned char *out,
                                size_t size, uint32_t *idp) {
        char topic[128], subject[160], errstr[512] = "";
        avro_schema_t schema;
        avro_value_iface_t *iface;
        avro_value_t rec, field;
        avro_writer_t w;
        size_t i;

        unique_topic(topic, sizeof(topic), "writer");
        snprintf(subject, sizeof(subject), "%s-value", topic);
        assert_ok(sq_schema_registry_register(reg, subject, schema_json, idp,
                                              errstr, sizeof(errstr)),
                  errstr);
        assert_int_equal(avro_schema_from_json_length(
                             schema_json, strlen(schema_json), &schema),
                         0);
        iface = avro_generic_class_from_schema(schema);
        assert_int_equal(avro_generic_value_new(iface, &rec), 0);
        for (i = 0; i < avro_schema_record_size(schema); i++) {
                const char *name =
                    avro_schema_record_field_name(schema, (int)i);
                assert_int_equal(avro_value_get_by_index(&rec, i, &field, NULL),
                                 0);
                if (!strcmp(name, "id"))
                        avro_value_set_string(&field, "old-1");
                else if (!strcmp(name, "type"))
                        avro_value_set_string(&field, "echo");
                else if (!strcmp(name, "priority"))
                        avro_value_set_enum(&field, 2); /* HIGH */
                else if (!strcmp(name, "payload"))
                        avro_value_set_bytes(&field, "pl", 2);
                else if (!strcmp(name, "created_at"))
                        avro_value_set_long(&field, 1700000000000);
                else if (!strcmp(name, "note"))
                        avro_value_set_string(&field, "extra");
        }
        out[0] = 0;
        out[1] = (unsigned char)(*idp >> 24);
        out[2] = (unsigned char)(*idp >> 16);
        out[3] = (unsigned char)(*idp >> 8);
        out[4] = (unsigned char)*idp;
        w      = avro_writer_memory((char *)out + 5, (int64_t)size - 5);
        assert_int_equal(avro_value_write(w, &rec), 0);
        size = 5 + (size_t)avro_writer_tell(w);
        avro_writer_free(w);
        avro_value_decref(&rec);
        avro_value_iface_decref(iface);
        avro_schema_decref(schema);
        return size;
}

static void test_older_writer_schema_takes_defaults(void **state) {
        /* task-v0's shape, reordered, with a field swarmq does not know. */
        static const char *older =
            "{\"type\":\"record\",\"name\":\"Task\",\"namespace\":"
            "\"dev.swarmq\",\"fields\":["
            "{\"name\":\"type\",\"type\":\"string\"},"
            "{\"name\":\"id\",\"type\":\"string\"},"
            "{\"name\":\"note\",\"type\":\"string\"},"
            "{\"name\":\"priority\",\"type\":{\"type\":\"enum\",\"name\":"
            "\"Priority\",\"symbols\":[\"LOW\",\"NORMAL\",\"HIGH\","
            "\"CRITICAL\"]}},"
            "{\"name\":\"payload\",\"type\":\"bytes\"},"
            "{\"name\":\"created_at\",\"type\":\"long\"}]}";
        sq_schema_registry_t *reg = client(registry_url());
        sq_codec_t *codec         = codec_on(reg);
        unsigned char buf[256];
        char errstr[512] = "";
        sq_task_t *task  = NULL;
        uint32_t id;
        size_t len;
        (void)state;

        len = write_with_schema(reg, older, buf, sizeof(buf), &id);
        assert_ok(sq_codec_decode_task(codec, buf, len, &task, errstr,
                                       sizeof(errstr)),
                  errstr);
        assert_string_equal(task->id, "old-1");
        assert_string_equal(task->type, "echo");
        assert_int_equal(task->priority, SQ_PRIO_HIGH);
        assert_int_equal(task->payload_len, 2);
        assert_int_equal(task->created_at, 1700000000000);
        /* Defaults of the current schema for what the writer lacks. */
        assert_int_equal(task->max_attempts, 3);
        assert_int_equal(task->attempt, 1);
        assert_int_equal(task->timeout_ms, 0);
        sq_task_destroy(task);
        sq_codec_destroy(codec);
        sq_schema_registry_destroy(reg);
}

static void test_refused_ids(void **state) {
        /* "id" as an int: cannot be read as the current Task. */
        static const char *incompatible =
            "{\"type\":\"record\",\"name\":\"Task\",\"namespace\":"
            "\"dev.swarmq\",\"fields\":["
            "{\"name\":\"id\",\"type\":\"long\"},"
            "{\"name\":\"type\",\"type\":\"string\"},"
            "{\"name\":\"created_at\",\"type\":\"long\"}]}";
        /* Lacks "type", which has no default. */
        static const char *missing =
            "{\"type\":\"record\",\"name\":\"Task\",\"namespace\":"
            "\"dev.swarmq\",\"fields\":["
            "{\"name\":\"id\",\"type\":\"string\"}]}";
        sq_schema_registry_t *reg = client(registry_url());
        sq_codec_t *codec         = codec_on(reg);
        unsigned char buf[256]    = {0, 0x3a, 0xde, 0x68, 0xb1, 0x02, 'x'};
        char errstr[512]          = "", want[64];
        sq_task_t *task           = NULL;
        uint32_t id;
        size_t len;
        (void)state;

        /* 987654321 = 0x3ade68b1: no such id. */
        assert_ok(sq_codec_prepare(codec, buf, 7, errstr, sizeof(errstr)),
                  errstr);
        assert_int_equal(
            sq_codec_decode_task(codec, buf, 7, &task, errstr, sizeof(errstr)),
            SQ_ERR_DECODE);
        assert_non_null(strstr(errstr, "schema id 987654321 is unknown"));

        len = write_with_schema(reg, incompatible, buf, sizeof(buf), &id);
        assert_int_equal(sq_codec_decode_task(codec, buf, len, &task, errstr,
                                              sizeof(errstr)),
                         SQ_ERR_DECODE);
        snprintf(want, sizeof(want), "registry schema %u", id);
        if (!strstr(errstr, want))
                fail_msg("\"%s\" does not name \"%s\"", errstr, want);

        len = write_with_schema(reg, missing, buf, sizeof(buf), &id);
        assert_int_equal(sq_codec_decode_task(codec, buf, len, &task, errstr,
                                              sizeof(errstr)),
                         SQ_ERR_DECODE);
        snprintf(want, sizeof(want), "registry schema %u", id);
        if (!strstr(errstr, want) || !strstr(errstr, "\"type\""))
                fail_msg("\"%s\" does not name \"%s\" and field \"type\"",
                         errstr, want);
        sq_codec_destroy(codec);
        sq_schema_registry_destroy(reg);
}

static void test_registry_down_is_transient(void **state) {
        struct sockaddr_in addr = {.sin_family = AF_INET};
        socklen_t alen          = sizeof(addr);
        unsigned char buf[]     = {0, 0, 0, 0, 7, 0x02, 'x'};
        const char *json        = "{\"id\":\"j\",\"type\":\"x\"}";
        char url[128], errstr[512] = "";
        sq_schema_registry_t *reg;
        sq_codec_t *codec;
        sq_task_t *task = NULL;
        int fd          = socket(AF_INET, SOCK_STREAM, 0);
        (void)state;

        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(addr.sin_port));
        close(fd);
        reg   = client(url);
        codec = codec_on(reg);
        assert_int_equal(
            sq_codec_prepare(codec, buf, sizeof(buf), errstr, sizeof(errstr)),
            SQ_ERR_UNAVAILABLE);
        assert_non_null(strstr(errstr, url));
        assert_int_equal(sq_codec_decode_task(codec, buf, sizeof(buf), &task,
                                              errstr, sizeof(errstr)),
                         SQ_ERR_UNAVAILABLE);
        assert_null(task);
        /* JSON tasks need no registry. */
        assert_ok(sq_codec_decode_task(codec, json, strlen(json), &task, errstr,
                                       sizeof(errstr)),
                  errstr);
        sq_task_destroy(task);
        sq_codec_destroy(codec);
        sq_schema_registry_destroy(reg);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_writes_and_reads_registry_ids),
            cmocka_unit_test(test_older_writer_schema_takes_defaults),
            cmocka_unit_test(test_refused_ids),
            cmocka_unit_test(test_registry_down_is_transient),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
