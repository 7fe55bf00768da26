/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_schema_registry.c: the Schema Registry client against a real
 * registry (Apicurio Registry, started by ops/registry.sh as the ctest
 * fixture "registry"; its URL is read from the fixture's state directory,
 * or from SQ_TEST_REGISTRY_URL): registering
 * gives a stable id, a schema reads back by id and then from the bounded
 * cache, and an unknown id, an unreachable registry and a bad URL are
 * refused with sentences naming the id, the URL and the HTTP status.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <avro.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "schema_registry.h"

/* The fixture's URL: $SQ_TEST_REGISTRY_URL, else the "schema.registry.url="
 * line that ops/registry.sh start wrote in $SQ_TEST_REGISTRY_STATE/url. */
static const char *registry_url(void) {
        static char url[512];
        const char *env = getenv("SQ_TEST_REGISTRY_URL");
        const char *dir = getenv("SQ_TEST_REGISTRY_STATE");
        char path[512];
        FILE *fp;

        if (env && *env)
                return env;
        if (*url)
                return url;
        snprintf(path, sizeof(path), "%s/url", dir ? dir : "");
        if (!dir || !(fp = fopen(path, "r")))
                fail_msg("no registry: set SQ_TEST_REGISTRY_URL, or run "
                         "through ctest (the registry fixture writes %s)",
                         path);
        if (fscanf(fp, "schema.registry.url=%511s", url) != 1)
                fail_msg("%s has no schema.registry.url= line", path);
        fclose(fp);
        return url;
}

static sq_schema_registry_t *client(const char *url, int cache_max) {
        sq_schema_registry_conf_t conf = {
            .url = url, .timeout_ms = 5000, .cache_max = cache_max};
        char errstr[512] = "";
        sq_schema_registry_t *reg =
            sq_schema_registry_new(&conf, errstr, sizeof(errstr));
        if (!reg)
                fail_msg("sq_schema_registry_new(%s): %s", url, errstr);
        return reg;
}

/* A subject no other run used: the registry is shared by the tests. */
static void unique_subject(char *buf, size_t size, const char *what) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(buf, size, "unit-%s-%ld-%ld-value", what, (long)getpid(),
                 (long)ts.tv_nsec);
}

/* A record schema with one field named after @p subject (its letters and
 * digits: an Avro name), so each subject's schema is a new one. */
static void record_schema(char *buf, size_t size, const char *name,
                          const char *subject) {
        char field[128] = "f_";
        size_t i, n = 2;

        for (i = 0; subject[i] && n + 1 < sizeof(field); i++)
                field[n++] =
                    isalnum((unsigned char)subject[i]) ? subject[i] : '_';
        field[n] = '\0';
        snprintf(buf, size,
                 "{\"type\":\"record\",\"name\":\"%s\",\"namespace\":"
                 "\"test.swarmq\",\"fields\":[{\"name\":\"%s\",\"type\":"
                 "\"string\"}]}",
                 name, field);
}

/* Fails with the error sentence when @p err is not SQ_OK. */
#define assert_ok(err, errstr)                                                 \
        do {                                                                   \
                sq_err_t err_ = (err);                                         \
                if (err_ != SQ_OK)                                             \
                        fail_msg("%s: %s", sq_err2str(err_), errstr);          \
        } while (0)

static void assert_same_schema(const char *got, const char *want) {
        avro_schema_t a = NULL, b = NULL;
        assert_int_equal(avro_schema_from_json_length(got, strlen(got), &a), 0);
        assert_int_equal(avro_schema_from_json_length(want, strlen(want), &b),
                         0);
        if (!avro_schema_equal(a, b))
                fail_msg("the registry gave back %s for %s", got, want);
        avro_schema_decref(a);
        avro_schema_decref(b);
}

static void test_register_and_get(void **state) {
        sq_schema_registry_t *reg = client(registry_url(), 16);
        char subject[128], schema[512], errstr[512] = "";
        char *json  = NULL;
        uint32_t id = 0, again = 0;
        (void)state;

        unique_subject(subject, sizeof(subject), "get");
        record_schema(schema, sizeof(schema), "UnitGet", subject);
        assert_ok(sq_schema_registry_register(reg, subject, schema, &id, errstr,
                                              sizeof(errstr)),
                  errstr);
        assert_true(id > 0);
        /* The same schema again: the id it already has. */
        assert_ok(sq_schema_registry_register(reg, subject, schema, &again,
                                              errstr, sizeof(errstr)),
                  errstr);
        assert_int_equal(again, id);

        assert_int_equal(sq_schema_registry_cached(reg), 0);
        assert_int_equal(
            sq_schema_registry_get(reg, id, &json, errstr, sizeof(errstr)),
            SQ_OK);
        assert_same_schema(json, schema);
        sq_free(json);
        assert_int_equal(sq_schema_registry_cached(reg), 1);
        json = NULL;
        assert_int_equal(
            sq_schema_registry_get(reg, id, &json, errstr, sizeof(errstr)),
            SQ_OK);
        assert_same_schema(json, schema);
        sq_free(json);
        assert_int_equal(sq_schema_registry_cached(reg), 1);
        sq_schema_registry_destroy(reg);
}

static void test_cache_is_bounded(void **state) {
        sq_schema_registry_t *reg = client(registry_url(), 2);
        char subject[128], schema[512], errstr[512] = "";
        uint32_t ids[3];
        char *json;
        int i;
        (void)state;

        for (i = 0; i < 3; i++) {
                char field[16];
                snprintf(field, sizeof(field), "f%d", i);
                unique_subject(subject, sizeof(subject), field);
                record_schema(schema, sizeof(schema), "UnitBound", subject);
                assert_ok(sq_schema_registry_register(reg, subject, schema,
                                                      &ids[i], errstr,
                                                      sizeof(errstr)),
                          errstr);
        }
        for (i = 0; i < 3; i++) {
                json = NULL;
                assert_ok(sq_schema_registry_get(reg, ids[i], &json, errstr,
                                                 sizeof(errstr)),
                          errstr);
                assert_non_null(strstr(json, "UnitBound"));
                sq_free(json);
        }
        assert_int_equal(sq_schema_registry_cached(reg), 2);
        /* The first was dropped and still reads (from the registry). */
        json = NULL;
        assert_int_equal(
            sq_schema_registry_get(reg, ids[0], &json, errstr, sizeof(errstr)),
            SQ_OK);
        sq_free(json);
        assert_int_equal(sq_schema_registry_cached(reg), 2);
        sq_schema_registry_destroy(reg);
}

static void test_unknown_id(void **state) {
        sq_schema_registry_t *reg = client(registry_url(), 4);
        char errstr[512]          = "";
        char *json                = NULL;
        (void)state;

        assert_int_equal(sq_schema_registry_get(reg, 987654321u, &json, errstr,
                                                sizeof(errstr)),
                         SQ_ERR_NOT_FOUND);
        assert_null(json);
        assert_non_null(strstr(errstr, "schema id 987654321 is unknown"));
        assert_non_null(strstr(errstr, "HTTP 404"));
        assert_non_null(strstr(errstr, registry_url()));
        sq_schema_registry_destroy(reg);
}

static void test_refused_schema(void **state) {
        sq_schema_registry_t *reg = client(registry_url(), 4);
        char subject[128], errstr[512] = "";
        uint32_t id = 0;
        (void)state;

        unique_subject(subject, sizeof(subject), "bad");
        assert_int_equal(
            sq_schema_registry_register(reg, subject, "{\"type\": \"nope\"}",
                                        &id, errstr, sizeof(errstr)),
            SQ_ERR_CONFIG);
        assert_non_null(strstr(errstr, subject));
        assert_non_null(strstr(errstr, "HTTP 4"));
        sq_schema_registry_destroy(reg);
}

static void test_unreachable(void **state) {
        struct sockaddr_in addr = {.sin_family = AF_INET};
        socklen_t len           = sizeof(addr);
        char url[128], errstr[512] = "";
        sq_schema_registry_t *reg;
        char *json  = NULL;
        uint32_t id = 0;
        int fd      = socket(AF_INET, SOCK_STREAM, 0);
        (void)state;

        /* A port that was free a moment ago: nothing listens there. */
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/apis/ccompat/v7",
                 ntohs(addr.sin_port));
        close(fd);
        reg = client(url, 4);
        assert_int_equal(
            sq_schema_registry_get(reg, 1, &json, errstr, sizeof(errstr)),
            SQ_ERR_UNAVAILABLE);
        assert_non_null(strstr(errstr, url));
        assert_non_null(strstr(errstr, "did not answer"));
        assert_int_equal(sq_schema_registry_register(reg, "s-value",
                                                     "\"string\"", &id, errstr,
                                                     sizeof(errstr)),
                         SQ_ERR_UNAVAILABLE);
        assert_non_null(strstr(errstr, url));
        sq_schema_registry_destroy(reg);
}

static void test_bad_settings(void **state) {
        sq_schema_registry_conf_t conf = {
            .url = "ftp://x", .timeout_ms = 1000, .cache_max = 1};
        char errstr[512] = "";
        (void)state;

        assert_null(sq_schema_registry_new(&conf, errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, "\"ftp://x\" is not an http://"));
        conf.url       = "http://127.0.0.1:1";
        conf.cache_max = 0;
        assert_null(sq_schema_registry_new(&conf, errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, "must be positive"));
}

static void test_writer_ids(void **state) {
        sq_schema_registry_t *reg = client("http://127.0.0.1:1/", 1);
        (void)state;

        assert_string_equal(sq_schema_registry_url(reg), "http://127.0.0.1:1");
        assert_int_equal(sq_schema_registry_writer_id(reg, 2), 0);
        sq_schema_registry_set_writer_id(reg, 2, 77);
        assert_int_equal(sq_schema_registry_writer_id(reg, 2), 77);
        sq_schema_registry_destroy(reg);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_register_and_get),
            cmocka_unit_test(test_cache_is_bounded),
            cmocka_unit_test(test_unknown_id),
            cmocka_unit_test(test_refused_schema),
            cmocka_unit_test(test_unreachable),
            cmocka_unit_test(test_bad_settings),
            cmocka_unit_test(test_writer_ids),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
