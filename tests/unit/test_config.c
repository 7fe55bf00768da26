/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_config.c: unit tests for core/config/: defaults, every key
 * type's accepted and rejected values, unknown-key suggestions, properties
 * files, environment overrides and precedence, kafka.* passthrough, agent
 * declarations, finalize cross-checks, the masked dump, the reload and
 * scope columns, and the docs and example file staying in step with the
 * code.
 *
 * DESIGN
 *   Tests assert on what a user sees: the exact error sentence (key, value,
 *   origin, allowed range) and the values --dump-config would print, read
 *   back through sq_config_dump(). Temporary files come from mkstemp() and
 *   are removed by the test that made them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#define ERRSTR_SIZE 512

/* One emitted key=value from sq_config_dump(). */
typedef struct dump_s {
        char **keys;
        char **values;
        size_t cnt;
} dump_t;

static void dump_cb(void *opaque, const char *key, const char *value) {
        dump_t *dump = opaque;

        dump->keys   = realloc(dump->keys, (dump->cnt + 1) * sizeof(char *));
        dump->values = realloc(dump->values, (dump->cnt + 1) * sizeof(char *));
        assert_non_null(dump->keys);
        assert_non_null(dump->values);
        dump->keys[dump->cnt]   = strdup(key);
        dump->values[dump->cnt] = strdup(value);
        dump->cnt++;
}

static void dump_take(const sq_config_t *conf, dump_t *dump) {
        memset(dump, 0, sizeof(*dump));
        sq_config_dump(conf, dump_cb, dump);
}

static void dump_free(dump_t *dump) {
        size_t i;
        for (i = 0; i < dump->cnt; i++) {
                free(dump->keys[i]);
                free(dump->values[i]);
        }
        free(dump->keys);
        free(dump->values);
        memset(dump, 0, sizeof(*dump));
}

/* The dumped value of @p key copied to @p buf, or NULL if not dumped. */
static const char *dump_get(const sq_config_t *conf, const char *key, char *buf,
                            size_t size) {
        const char *found = NULL;
        dump_t dump;
        size_t i;

        dump_take(conf, &dump);
        for (i = 0; i < dump.cnt; i++) {
                if (!strcmp(dump.keys[i], key)) {
                        snprintf(buf, size, "%s", dump.values[i]);
                        found = buf;
                }
        }
        dump_free(&dump);
        return found;
}

/* Writes @p content to a new temp file; its path goes to @p path. */
static void temp_write(const char *content, char *path, size_t size) {
        int fd;
        size_t len = strlen(content);

        snprintf(path, size, "/tmp/sq-test-config-XXXXXX");
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, len), (ssize_t)len);
        close(fd);
}

/* Sets each "key=value" of a NULL-terminated list; all must succeed. */
static void set_all(sq_config_t *conf, const char *const *settings) {
        char errstr[ERRSTR_SIZE] = "";
        char key[256];
        const char *eq;

        for (; *settings; settings++) {
                eq = strchr(*settings, '=');
                assert_non_null(eq);
                snprintf(key, sizeof(key), "%.*s", (int)(eq - *settings),
                         *settings);
                if (sq_config_set(conf, key, eq + 1, "test", errstr,
                                  sizeof(errstr)) != SQ_OK)
                        fail_msg("setting %s failed: %s", *settings, errstr);
        }
}

static void test_defaults(void **state) {
        sq_config_t *conf = sq_config_new();
        char host[256]    = "";
        char want[300];
        char errstr[ERRSTR_SIZE];
        (void)state;

        assert_string_equal(conf->group_id, "swarmq");
        assert_string_equal(conf->topic_tasks, "swarmq-tasks");
        assert_string_equal(conf->topic_critical, "swarmq-tasks-critical");
        assert_string_equal(conf->topic_retry, "swarmq-tasks-retry");
        assert_string_equal(conf->topic_dlt, "swarmq-tasks-dlt");
        assert_string_equal(conf->topic_results, "swarmq-results");
        assert_string_equal(conf->topic_events, "swarmq-events");
        assert_int_equal(conf->executor_threads, 4);
        assert_int_equal(conf->executor_critical_slots, 1);
        assert_int_equal(conf->admission_high, 10000);
        assert_int_equal(conf->admission_low, 5000);
        assert_int_equal(conf->critical_high, 1000);
        assert_int_equal(conf->aging_ms, 500);
        assert_int_equal(conf->ordering, SQ_ORDERING_UNORDERED);
        assert_int_equal(conf->default_timeout_ms, 60000);
        assert_int_equal(conf->commit_interval_ms, 1000);
        assert_int_equal(conf->drain_timeout_ms, 30000);
        assert_int_equal(conf->http_port, 8080);
        assert_string_equal(conf->http_bind, "127.0.0.1");
        assert_false(conf->embedded_broker);
        assert_int_equal(conf->embedded_partitions, 12);
        assert_int_equal(conf->embedded_brokers, 1);
        assert_int_equal(conf->log_level, SQ_LOG_INFO);
        assert_int_equal(conf->kafka_cnt, 0);
        assert_int_equal(conf->agents_cnt, 0);

        if (gethostname(host, sizeof(host)) != 0 || !host[0])
                snprintf(host, sizeof(host), "swarmq");
        snprintf(want, sizeof(want), "%s-%ld", host, (long)getpid());
        assert_string_equal(conf->instance_id, want);

        /* The defaults alone pass finalize. */
        assert_int_equal(sq_config_finalize(conf, errstr, sizeof(errstr)),
                         SQ_OK);
        sq_config_destroy(conf);
        sq_config_destroy(NULL);
}

/* Accepted values and what --dump-config shows for them afterwards. */
static const struct {
        const char *key;
        const char *value;
        const char *shown;
} good_values[] = {
    {"instance.id", "node-a", "node-a"},
    {"group.id", "workers", "workers"},
    {"topic.tasks", "jobs.v1_a-b", "jobs.v1_a-b"},
    {"topic.events", "E", "E"},
    {"executor.threads", "1", "1"},
    {"executor.threads", "1024", "1024"},
    {"executor.critical.reserved", "0", "0"},
    {"admission.high.mark", "20000", "20000"},
    {"admission.low.mark", "1", "1"},
    {"admission.critical.high.mark", "10000000", "10000000"},
    {"scheduler.aging.ms", "1", "1"},
    {"ordering", "key", "key"},
    {"ordering", "PARTITION", "partition"},
    {"task.default.timeout.ms", "0", "0"},
    {"task.default.timeout.ms", "604800000", "604800000"},
    {"commit.interval.ms", "5000", "5000"},
    {"shutdown.drain.timeout.ms", "0", "0"},
    {"http.port", "9000", "9000"},
    {"http.port", "auto", "auto"},
    {"http.port", "-1", "auto"},
    {"http.port", "0", "off"},
    {"http.port", "65535", "65535"},
    {"http.bind", "0.0.0.0", "0.0.0.0"},
    {"embedded.broker", "true", "true"},
    {"embedded.broker", "yes", "true"},
    {"embedded.broker", "off", "false"},
    {"embedded.partitions", "1000", "1000"},
    {"embedded.brokers", "3", "3"},
    {"log.level", "debug", "debug"},
    {"log.level", "error", "err"},
    {"log.level", "4", "warning"},
};

static void test_good_values(void **state) {
        char errstr[ERRSTR_SIZE];
        char shown[256];
        size_t i;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(good_values); i++) {
                sq_config_t *conf = sq_config_new();
                errstr[0]         = '\0';
                if (sq_config_set(conf, good_values[i].key,
                                  good_values[i].value, "flag -X", errstr,
                                  sizeof(errstr)) != SQ_OK)
                        fail_msg("%s=%s rejected: %s", good_values[i].key,
                                 good_values[i].value, errstr);
                assert_non_null(
                    dump_get(conf, good_values[i].key, shown, sizeof(shown)));
                assert_string_equal(shown, good_values[i].shown);
                sq_config_destroy(conf);
        }
}

/* Rejected values: the error names origin, key, value and what is valid. */
static const struct {
        const char *key;
        const char *value;
        const char *expect;
} bad_values[] = {
    {"executor.threads", "abc", "expected an integer from 1 to 1024"},
    {"executor.threads", "0", "expected an integer from 1 to 1024"},
    {"executor.threads", "1025", "expected an integer from 1 to 1024"},
    {"executor.threads", "4x", "expected an integer from 1 to 1024"},
    {"executor.threads", "", "expected an integer from 1 to 1024"},
    {"executor.critical.reserved", "-1", "expected an integer from 0 to 1023"},
    {"admission.high.mark", "0", "expected an integer from 1 to 10000000"},
    {"admission.low.mark", "0", "expected an integer from 1 to 10000000"},
    {"admission.critical.high.mark", "0",
     "expected an integer from 1 to 10000000"},
    {"scheduler.aging.ms", "0", "expected an integer from 1 to 3600000"},
    {"task.default.timeout.ms", "99999999999999999999",
     "expected an integer from 0 to 604800000"},
    {"commit.interval.ms", "1.5", "expected an integer from 1 to 3600000"},
    {"shutdown.drain.timeout.ms", "-5",
     "expected an integer from 0 to 3600000"},
    {"http.port", "65536",
     "expected an integer from -1 to 65535, or one of: auto, off"},
    {"http.port", "-2",
     "expected an integer from -1 to 65535, or one of: auto, off"},
    {"http.port", "automatic",
     "expected an integer from -1 to 65535, or one of: auto, off"},
    {"embedded.broker", "maybe",
     "expected true or false (or yes/no, on/off, 1/0)"},
    {"embedded.partitions", "0", "expected an integer from 1 to 1000"},
    {"embedded.brokers", "17", "expected an integer from 1 to 16"},
    {"ordering", "random", "expected one of: unordered, key, partition"},
    {"log.level", "loud",
     "expected a log level: emerg, alert, crit, err, "
     "warning, notice, info, debug, or 0 to 7"},
    {"log.level", "8", "expected a log level"},
    {"topic.tasks", "my tasks",
     "expected a topic name of 1 to 249 characters from [A-Za-z0-9._-]"},
    {"topic.dlt", "..", "expected a topic name"},
    {"topic.results", "", "expected a topic name"},
    {"topic.retry", "a/b", "expected a topic name"},
    {"group.id", "", "expected 1 to 255 characters"},
    {"http.bind", "a\tb",
     "expected 1 to 255 characters, none of them "
     "control characters"},
    {"instance.id", "x\n", "expected 1 to 255 characters"},
};

static void test_bad_values(void **state) {
        char errstr[ERRSTR_SIZE];
        char before[256], after[256], prefix[256];
        size_t i;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(bad_values); i++) {
                sq_config_t *conf = sq_config_new();
                const char *key   = bad_values[i].key;

                assert_non_null(dump_get(conf, key, before, sizeof(before)));
                errstr[0] = '\0';
                assert_int_equal(sq_config_set(conf, key, bad_values[i].value,
                                               "flag -X", errstr,
                                               sizeof(errstr)),
                                 SQ_ERR_CONFIG);
                snprintf(prefix, sizeof(prefix), "flag -X: %s=%s: ", key,
                         bad_values[i].value);
                if (strncmp(errstr, prefix, strlen(prefix)) ||
                    !strstr(errstr, bad_values[i].expect))
                        fail_msg("%s=%s: got \"%s\", want \"%s%s\"", key,
                                 bad_values[i].value, errstr, prefix,
                                 bad_values[i].expect);
                /* A rejected value leaves the old one in place. */
                assert_non_null(dump_get(conf, key, after, sizeof(after)));
                assert_string_equal(before, after);
                sq_config_destroy(conf);
        }
}

static void test_long_topic_rejected(void **state) {
        sq_config_t *conf = sq_config_new();
        char errstr[ERRSTR_SIZE];
        char topic[251];
        (void)state;

        memset(topic, 'a', 249);
        topic[249] = '\0';
        assert_int_equal(sq_config_set(conf, "topic.tasks", topic, "-X", errstr,
                                       sizeof(errstr)),
                         SQ_OK);
        topic[249] = 'a';
        topic[250] = '\0';
        assert_int_equal(sq_config_set(conf, "topic.tasks", topic, "-X", errstr,
                                       sizeof(errstr)),
                         SQ_ERR_CONFIG);
        assert_non_null(strstr(errstr, "-X: topic.tasks=aaaa"));
        assert_int_equal(strlen(conf->topic_tasks), 249);
        sq_config_destroy(conf);
}

static const struct {
        const char *key;
        const char *errstr;
} unknown_keys[] = {
    {"exector.threads", "swarmq.properties:7: unknown configuration key "
                        "\"exector.threads\"; did you mean "
                        "executor.threads?"},
    {"http.prot", "swarmq.properties:7: unknown configuration key "
                  "\"http.prot\"; did you mean http.port?"},
    {"grup.id", "swarmq.properties:7: unknown configuration key "
                "\"grup.id\"; did you mean group.id?"},
    {"bootstrap.servers",
     "swarmq.properties:7: unknown configuration key \"bootstrap.servers\"; "
     "did you mean kafka.bootstrap.servers? (librdkafka properties take "
     "the \"kafka.\" prefix)"},
    {"frobnicate", "swarmq.properties:7: unknown configuration key "
                   "\"frobnicate\""},
    {"Executor.Threads.Count.Max", "swarmq.properties:7: unknown "
                                   "configuration key "
                                   "\"Executor.Threads.Count.Max\""},
};

static void test_unknown_key(void **state) {
        char errstr[ERRSTR_SIZE];
        size_t i;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(unknown_keys); i++) {
                sq_config_t *conf = sq_config_new();
                assert_int_equal(sq_config_set(conf, unknown_keys[i].key, "4",
                                               "swarmq.properties:7", errstr,
                                               sizeof(errstr)),
                                 SQ_ERR_CONFIG);
                assert_string_equal(errstr, unknown_keys[i].errstr);
                sq_config_destroy(conf);
        }

        /* Without an origin the sentence has no prefix; NULL errstr is ok. */
        {
                sq_config_t *conf = sq_config_new();
                assert_int_equal(sq_config_set(conf, "nope", "1", NULL, errstr,
                                               sizeof(errstr)),
                                 SQ_ERR_CONFIG);
                assert_string_equal(errstr,
                                    "unknown configuration key \"nope\"");
                assert_int_equal(
                    sq_config_set(conf, "nope", "1", NULL, NULL, 0),
                    SQ_ERR_CONFIG);
                sq_config_destroy(conf);
        }
}

static void test_file_parsing(void **state) {
        static const char content[] = "# swarmq test file\r\n"
                                      "! a bang comment\r\n"
                                      "\r\n"
                                      "   \t \n"
                                      "   # indented comment\n"
                                      "executor.threads = 8\r\n"
                                      "http.port=auto\n"
                                      "topic.tasks=\t in \t\n"
                                      "kafka.client.id = a=b\r\n"
                                      "agent.hasher.handler=sha256\n"
                                      "log.level=debug";
        sq_config_t *conf           = sq_config_new();
        char errstr[ERRSTR_SIZE]    = "";
        char path[64];
        (void)state;

        temp_write(content, path, sizeof(path));
        if (sq_config_load_file(conf, path, errstr, sizeof(errstr)) != SQ_OK)
                fail_msg("load failed: %s", errstr);
        unlink(path);
        assert_int_equal(conf->executor_threads, 8);
        assert_int_equal(conf->http_port, -1);
        assert_string_equal(conf->topic_tasks, "in");
        assert_string_equal(sq_config_kafka_get(conf, "client.id"), "a=b");
        assert_int_equal(conf->agents_cnt, 1);
        assert_string_equal(conf->agents[0].name, "hasher");
        assert_string_equal(conf->agents[0].handler, "sha256");
        assert_int_equal(conf->log_level, SQ_LOG_DEBUG);
        sq_config_destroy(conf);
}

/* Each bad file and the error after "<path>:" it must produce. */
static const struct {
        const char *content;
        sq_err_t err;
        const char *errstr;
} bad_files[] = {
    {"executor.threads=4\njust a line\n", SQ_ERR_CONFIG,
     ":2: expected key=value, got \"just a line\""},
    {"# c\r\n\r\nexecutor.threads=abc\r\n", SQ_ERR_CONFIG,
     ":3: executor.threads=abc: expected an integer from 1 to 1024"},
    {"  = 5\n", SQ_ERR_CONFIG, ":1: expected key=value, got no key before '='"},
    {"\n\n\n\n\n\nexector.threads=4\n", SQ_ERR_CONFIG,
     ":7: unknown configuration key \"exector.threads\"; did you mean "
     "executor.threads?"},
    {"http.port=8080\nagent.x.colour=red\n", SQ_ERR_CONFIG,
     ":2: agent.x.colour: unknown agent field \"colour\" (expected kind, "
     "handler, capabilities, concurrency, breaker.*, spawn, command, workdir, "
     "env.allow, "
     "kill.grace.ms, output.max.bytes, stderr.max.bytes, limit.*, pool.* or "
     "env.<VAR>)"},
};

static void test_file_errors(void **state) {
        char errstr[ERRSTR_SIZE];
        char path[64], want[ERRSTR_SIZE];
        size_t i;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(bad_files); i++) {
                sq_config_t *conf = sq_config_new();
                temp_write(bad_files[i].content, path, sizeof(path));
                errstr[0] = '\0';
                assert_int_equal(
                    sq_config_load_file(conf, path, errstr, sizeof(errstr)),
                    bad_files[i].err);
                unlink(path);
                snprintf(want, sizeof(want), "%s%s", path, bad_files[i].errstr);
                assert_string_equal(errstr, want);
                sq_config_destroy(conf);
        }
}

static void test_file_long_line(void **state) {
        sq_config_t *conf = sq_config_new();
        char errstr[ERRSTR_SIZE];
        char path[64], want[128];
        size_t len    = 70000;
        char *content = malloc(len + 32);
        (void)state;

        assert_non_null(content);
        snprintf(content, len + 32, "group.id=g\ninstance.id=");
        memset(content + strlen(content), 'x', len);
        content[len] = '\0';
        temp_write(content, path, sizeof(path));
        free(content);
        assert_int_equal(
            sq_config_load_file(conf, path, errstr, sizeof(errstr)),
            SQ_ERR_CONFIG);
        unlink(path);
        snprintf(want, sizeof(want), "%s:2: line longer than 65536 bytes",
                 path);
        assert_string_equal(errstr, want);
        sq_config_destroy(conf);
}

static void test_file_missing(void **state) {
        sq_config_t *conf = sq_config_new();
        char errstr[ERRSTR_SIZE];
        (void)state;

        assert_int_equal(sq_config_load_file(conf,
                                             "/nonexistent/swarmq.properties",
                                             errstr, sizeof(errstr)),
                         SQ_ERR_IO);
        assert_string_equal(errstr,
                            "cannot open configuration file "
                            "\"/nonexistent/swarmq.properties\": No such "
                            "file or directory");
        sq_config_destroy(conf);
}

static void test_env(void **state) {
        char *envp[] = {
            "PATH=/usr/bin",
            "SWARMQ_HTTP_PORT=9100",
            "SWARMQ_CONFIG=/this/is/the/file/path",
            "SWARMQ_KAFKA_SASL_USERNAME=alice",
            "SWARMQ_AGENT_MY__AGENT_HANDLER=echo",
            "SWARMQ_EXECUTOR_CRITICAL_RESERVED=2",
            "SWARMQ_ORDERING=key",
            "SWARMQNOTOURS=1",
            "HOME=/root",
            /* Not configuration keys: ignored with a warning. */
            "SWARMQ_KAFKA_CACHE=/var/cache/kafka",
            "SWARMQ_KAFKA_STATE=/tmp/kafka",
            "SWARMQ_WERROR=ON",
            "SWARMQ_EXECUTOR_THREDS=4",
            NULL,
        };
        sq_config_t *conf        = sq_config_new();
        char errstr[ERRSTR_SIZE] = "";
        (void)state;

        if (sq_config_load_env(conf, envp, errstr, sizeof(errstr)) != SQ_OK)
                fail_msg("load_env failed: %s", errstr);
        assert_int_equal(conf->http_port, 9100);
        assert_string_equal(sq_config_kafka_get(conf, "sasl.username"),
                            "alice");
        assert_int_equal(conf->kafka_cnt, 1);
        assert_int_equal(conf->agents_cnt, 1);
        assert_string_equal(conf->agents[0].name, "my_agent");
        assert_string_equal(conf->agents[0].handler, "echo");
        assert_int_equal(conf->executor_critical_slots, 2);
        assert_int_equal(conf->ordering, SQ_ORDERING_KEY);
        assert_int_equal(conf->executor_threads, 4); /* the default */
        assert_int_equal(sq_config_load_env(conf, NULL, errstr, sizeof(errstr)),
                         SQ_OK);
        sq_config_destroy(conf);
}

/* SWARMQ_BOOTSTRAP_SERVERS, shared with swarmq-producer, is
 * kafka.bootstrap.servers; the older SWARMQ_KAFKA_BOOTSTRAP_SERVERS
 * still works, and loses to it when both are set, in either order. */
static void test_env_bootstrap(void **state) {
        char *canonical[]   = {"SWARMQ_BOOTSTRAP_SERVERS=a:9092", NULL};
        char *deprecated[]  = {"SWARMQ_KAFKA_BOOTSTRAP_SERVERS=b:9092", NULL};
        char *both[]        = {"SWARMQ_KAFKA_BOOTSTRAP_SERVERS=b:9092",
                               "SWARMQ_BOOTSTRAP_SERVERS=a:9092", NULL};
        char *const *envs[] = {canonical, deprecated, both};
        const char *want[]  = {"a:9092", "b:9092", "a:9092"};
        char errstr[ERRSTR_SIZE] = "";
        size_t i;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(envs); i++) {
                sq_config_t *conf = sq_config_new();
                if (sq_config_load_env(conf, envs[i], errstr, sizeof(errstr)) !=
                    SQ_OK)
                        fail_msg("load_env failed: %s", errstr);
                assert_string_equal(
                    sq_config_kafka_get(conf, "bootstrap.servers"), want[i]);
                assert_int_equal(conf->kafka_cnt, 1);
                sq_config_destroy(conf);
        }
}

static const struct {
        const char *var;
        const char *errstr;
} bad_env[] = {
    {"SWARMQ_EXECUTOR_THREADS=zero",
     "env SWARMQ_EXECUTOR_THREADS: executor.threads=zero: expected an "
     "integer from 1 to 1024"},
    /* agent.* is swarmq's own family: a bad field stops the load. */
    {"SWARMQ_AGENT_X_KIDN=exec",
     "env SWARMQ_AGENT_X_KIDN: agent.x.kidn: unknown agent field \"kidn\" "
     "(expected kind, handler, capabilities, concurrency, breaker.*, spawn, "
     "command, "
     "workdir, env.allow, kill.grace.ms, output.max.bytes, stderr.max.bytes, "
     "limit.*, pool.* or env.<VAR>)"},
    {"SWARMQ_KAFKA_=x", "env SWARMQ_KAFKA_: \"kafka.\" names no librdkafka "
                        "property: expected kafka.<property>, e.g. "
                        "kafka.bootstrap.servers"},
};

static void test_env_errors(void **state) {
        char errstr[ERRSTR_SIZE];
        size_t i;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(bad_env); i++) {
                sq_config_t *conf = sq_config_new();
                char *envp[]      = {(char *)bad_env[i].var, NULL};
                assert_int_equal(
                    sq_config_load_env(conf, envp, errstr, sizeof(errstr)),
                    SQ_ERR_CONFIG);
                assert_string_equal(errstr, bad_env[i].errstr);
                sq_config_destroy(conf);
        }
}

/* File, then environment, then flags: the last source wins per key. */
static void test_precedence(void **state) {
        static const struct {
                bool env;
                bool flag;
                int port;
        } cases[] = {
            {false, false, 9000},
            {true, false, 9100},
            {false, true, 9200},
            {true, true, 9200},
        };
        char *envp[]             = {"SWARMQ_HTTP_PORT=9100", NULL};
        char errstr[ERRSTR_SIZE] = "";
        char path[64];
        size_t i;
        (void)state;

        temp_write("http.port=9000\nexecutor.threads=3\n", path, sizeof(path));
        for (i = 0; i < SQ_ARRAY_SIZE(cases); i++) {
                sq_config_t *conf = sq_config_new();
                assert_int_equal(
                    sq_config_load_file(conf, path, errstr, sizeof(errstr)),
                    SQ_OK);
                if (cases[i].env)
                        assert_int_equal(sq_config_load_env(conf, envp, errstr,
                                                            sizeof(errstr)),
                                         SQ_OK);
                if (cases[i].flag)
                        assert_int_equal(sq_config_set(conf, "http.port",
                                                       "9200", "flag -X",
                                                       errstr, sizeof(errstr)),
                                         SQ_OK);
                assert_int_equal(conf->http_port, cases[i].port);
                /* Keys set by one source only keep that value. */
                assert_int_equal(conf->executor_threads, 3);
                sq_config_destroy(conf);
        }
        unlink(path);
}

static void test_kafka_passthrough(void **state) {
        static const char *const settings[] = {
            "kafka.bootstrap.servers=a:9092",
            "kafka.client.id=swarmq-test",
            "kafka.bootstrap.servers=b:9092",
            "kafka.debug=",
            NULL,
        };
        sq_config_t *conf = sq_config_new();
        char errstr[ERRSTR_SIZE];
        dump_t dump;
        (void)state;

        set_all(conf, settings);
        assert_int_equal(conf->kafka_cnt, 3);
        assert_string_equal(conf->kafka[0].name, "bootstrap.servers");
        assert_string_equal(conf->kafka[0].value, "b:9092");
        assert_string_equal(conf->kafka[1].name, "client.id");
        assert_string_equal(conf->kafka[1].value, "swarmq-test");
        assert_string_equal(conf->kafka[2].name, "debug");
        assert_string_equal(conf->kafka[2].value, "");
        assert_string_equal(sq_config_kafka_get(conf, "bootstrap.servers"),
                            "b:9092");
        assert_null(sq_config_kafka_get(conf, "group.id"));

        assert_int_equal(
            sq_config_set(conf, "kafka.", "x", "-X", errstr, sizeof(errstr)),
            SQ_ERR_CONFIG);
        assert_string_equal(errstr, "-X: \"kafka.\" names no librdkafka "
                                    "property: expected kafka.<property>, "
                                    "e.g. kafka.bootstrap.servers");
        assert_int_equal(
            sq_config_set(conf, "kafka.a b", "x", "-X", errstr, sizeof(errstr)),
            SQ_ERR_CONFIG);
        assert_non_null(strstr(errstr, "\"kafka.a b\" is not a librdkafka "
                                       "property name"));
        assert_int_equal(conf->kafka_cnt, 3);

        /* Dumped after the known keys, in the order set. */
        dump_take(conf, &dump);
        assert_true(dump.cnt >= 3);
        assert_string_equal(dump.keys[dump.cnt - 3], "kafka.bootstrap.servers");
        assert_string_equal(dump.keys[dump.cnt - 2], "kafka.client.id");
        assert_string_equal(dump.keys[dump.cnt - 1], "kafka.debug");
        assert_string_equal(dump.keys[dump.cnt - 4], "flag.work_stealing");
        dump_free(&dump);
        sq_config_destroy(conf);
}

static void test_agents_declared(void **state) {
        static const char *const settings[] = {
            "agent.hasher.handler=sha256",
            "agent.hasher.capabilities= hash , sha256 ,x",
            "agent.hasher.concurrency=16",
            "agent.echo.kind=builtin",
            "agent.sleepy.handler=sleep",
            "agent.hasher.capabilities= hash , sha256 ,x-y",
            NULL,
        };
        sq_config_t *conf        = sq_config_new();
        char errstr[ERRSTR_SIZE] = "";
        const sq_agent_conf_t *agent;
        (void)state;

        set_all(conf, settings);
        if (sq_config_finalize(conf, errstr, sizeof(errstr)) != SQ_OK)
                fail_msg("finalize failed: %s", errstr);
        assert_int_equal(conf->agents_cnt, 3);

        agent = &conf->agents[0];
        assert_string_equal(agent->name, "hasher");
        assert_int_equal(agent->kind, SQ_AGENT_BUILTIN);
        assert_string_equal(agent->handler, "sha256");
        assert_int_equal(agent->capabilities_cnt, 3);
        assert_string_equal(agent->capabilities[0], "hash");
        assert_string_equal(agent->capabilities[1], "sha256");
        assert_string_equal(agent->capabilities[2], "x-y");
        assert_int_equal(agent->concurrency, 16);

        /* Handler defaults to the name, capabilities to the handler. */
        agent = &conf->agents[1];
        assert_string_equal(agent->name, "echo");
        assert_string_equal(agent->handler, "echo");
        assert_int_equal(agent->capabilities_cnt, 1);
        assert_string_equal(agent->capabilities[0], "echo");
        assert_int_equal(agent->concurrency, 4);

        agent = &conf->agents[2];
        assert_string_equal(agent->name, "sleepy");
        assert_string_equal(agent->handler, "sleep");
        assert_int_equal(agent->capabilities_cnt, 1);
        assert_string_equal(agent->capabilities[0], "sleep");
        sq_config_destroy(conf);
}

static void test_agents_exec(void **state) {
        static const char *const settings[] = {
            "agent.up.kind=exec",
            "agent.up.command=[\"/usr/bin/tr\", \"a-z\", \"A-Z\", \"a b\"]",
            "agent.up.env.allow= PATH ,LANG",
            "agent.up.env.GREETING=hello world",
            "agent.up.env.API_TOKEN=hunter2",
            "agent.up.env.GREETING=hi",
            "agent.up.kill.grace.ms=300",
            "agent.up.limit.nofile=64",
            "agent.wc.kind=exec",
            "agent.wc.command=  /usr/bin/wc   -c ",
            "agent.wc.capabilities=count",
            NULL,
        };
        sq_config_t *conf = sq_config_new();
        char errstr[ERRSTR_SIZE];
        const sq_agent_conf_t *agent;
        dump_t dump;
        size_t i;
        bool seen_cmd = false, seen_secret = false;
        (void)state;

        set_all(conf, settings);
        assert_int_equal(sq_config_finalize(conf, errstr, sizeof(errstr)),
                         SQ_OK);
        assert_int_equal(conf->agents_cnt, 2);
        agent = &conf->agents[0];
        assert_int_equal(agent->kind, SQ_AGENT_EXEC);
        assert_int_equal(agent->command_cnt, 4);
        assert_string_equal(agent->command[0], "/usr/bin/tr");
        assert_string_equal(agent->command[3], "a b");
        assert_null(agent->command[4]);
        assert_int_equal(agent->env_allow_cnt, 2);
        assert_string_equal(agent->env_allow[0], "PATH");
        assert_string_equal(agent->env_allow[1], "LANG");
        assert_int_equal(agent->env_cnt, 2);
        assert_string_equal(agent->env[0].name, "GREETING");
        assert_string_equal(agent->env[0].value, "hi");
        assert_int_equal(agent->kill_grace_ms, 300);
        assert_int_equal(agent->limit_nofile, 64);
        assert_int_equal(agent->output_max_bytes, 524288);
        /* No capabilities declared: the agent's name. */
        assert_int_equal(agent->capabilities_cnt, 1);
        assert_string_equal(agent->capabilities[0], "up");
        assert_null(agent->handler);

        agent = &conf->agents[1];
        assert_int_equal(agent->command_cnt, 2);
        assert_string_equal(agent->command[0], "/usr/bin/wc");
        assert_string_equal(agent->command[1], "-c");
        assert_string_equal(agent->capabilities[0], "count");
        assert_int_equal(agent->env_allow_cnt, 5); /* the default list */

        dump_take(conf, &dump);
        for (i = 0; i < dump.cnt; i++) {
                if (!strcmp(dump.keys[i], "agent.up.command")) {
                        assert_string_equal(
                            dump.values[i],
                            "[\"/usr/bin/tr\",\"a-z\",\"A-Z\",\"a b\"]");
                        seen_cmd = true;
                }
                if (!strcmp(dump.keys[i], "agent.up.env.API_TOKEN")) {
                        assert_string_equal(dump.values[i], "***");
                        seen_secret = true;
                }
                assert_null(strstr(dump.keys[i], "handler"));
                assert_null(strstr(dump.keys[i], "pool."));
        }
        assert_true(seen_cmd && seen_secret);
        dump_free(&dump);
        sq_config_destroy(conf);
}

static void test_agents_default(void **state) {
        static const char *const names[] = {"noop",   "echo", "sleep",
                                            "sha256", "fail", "cpu"};
        sq_config_t *conf                = sq_config_new();
        char errstr[ERRSTR_SIZE]         = "";
        size_t i;
        (void)state;

        assert_int_equal(sq_config_set(conf, "executor.threads", "7", "-X",
                                       errstr, sizeof(errstr)),
                         SQ_OK);
        assert_int_equal(sq_config_finalize(conf, errstr, sizeof(errstr)),
                         SQ_OK);
        assert_int_equal(conf->agents_cnt, SQ_ARRAY_SIZE(names));
        for (i = 0; i < SQ_ARRAY_SIZE(names); i++) {
                const sq_agent_conf_t *agent = &conf->agents[i];
                assert_string_equal(agent->name, names[i]);
                assert_int_equal(agent->kind, SQ_AGENT_BUILTIN);
                assert_string_equal(agent->handler, names[i]);
                assert_int_equal(agent->capabilities_cnt, 1);
                assert_string_equal(agent->capabilities[0], names[i]);
                assert_int_equal(agent->concurrency, 7);
        }
        sq_config_destroy(conf);
}

static const struct {
        const char *key;
        const char *value;
        const char *errstr;
} bad_agent_sets[] = {
    {"agent.bad name.kind", "builtin",
     "-X: agent.bad name.kind: invalid agent name \"bad name\": expected 1 "
     "to 64 characters from [A-Za-z0-9_-]"},
    {"agent..kind", "builtin",
     "-X: agent..kind: invalid agent name \"\": expected 1 to 64 "
     "characters from [A-Za-z0-9_-]"},
    {"agent.a12345678901234567890123456789012345678901234567890123456789"
     "01234.kind",
     "builtin", "invalid agent name"},
    {"agent.x.handlr", "echo",
     "-X: agent.x.handlr: unknown agent field \"handlr\" (expected kind, "
     "handler, capabilities, concurrency, breaker.*, spawn, command, workdir, "
     "env.allow, "
     "kill.grace.ms, output.max.bytes, stderr.max.bytes, limit.*, pool.* or "
     "env.<VAR>); did you mean handler?"},
    {"agent.x.pool.mx", "2", "did you mean pool.max?"},
    {"agent.x", "echo",
     "-X: \"agent.x\" is not an agent key: expected agent.<name>.<field> "
     "with field kind, handler, capabilities, concurrency, breaker.*"},
    {"agent.x.command", "",
     "-X: agent.x.command=: expected a program and "
     "its arguments, e.g. [\"/usr/bin/python3\", \"worker.py\"]"},
    {"agent.x.command", "[\"/bin/a\", 2]",
     "-X: agent.x.command=[\"/bin/a\", 2]: element 1 is not a string"},
    {"agent.x.command", "[\"/bin/a\"", "not a JSON array of strings"},
    {"agent.x.command", "[\"\"]", "expected a program and its arguments"},
    {"agent.x.env.1X", "v",
     "-X: agent.x.env.1X: \"1X\" is not an environment variable name: "
     "expected [A-Za-z_][A-Za-z0-9_]*"},
    {"agent.x.env.A-B", "v", "\"A-B\" is not an environment variable name"},
    {"agent.x.env.allow", "PATH, 9X",
     "-X: agent.x.env.allow=PATH, 9X: \"9X\" is not an environment "
     "variable name"},
    {"agent.x.pool.max", "0",
     "-X: agent.x.pool.max=0: expected an integer from 1 to 10000"},
    {"agent.x.kill.grace.ms", "-1",
     "-X: agent.x.kill.grace.ms=-1: expected an integer from 0 to 600000"},
    {"agent.x.output.max.bytes", "1e3", "expected an integer from 0 to"},
    {"agent.x.workdir", "", "-X: agent.x.workdir=: expected 1 to 4096"},
    {"agent.x.kind", "docker",
     "-X: agent.x.kind=docker: expected one of: builtin, exec, pool"},
    {"agent.x.capabilities", "a,,b",
     "-X: agent.x.capabilities=a,,b: empty capability in the list; "
     "expected comma-separated names"},
    {"agent.x.capabilities", " ",
     "-X: agent.x.capabilities= : empty capability in the list; expected "
     "comma-separated names"},
    {"agent.x.capabilities", "a, b c",
     "-X: agent.x.capabilities=a, b c: capability \"b c\" contains "
     "whitespace or a control character"},
    {"agent.x.capabilities", "a,b,a",
     "-X: agent.x.capabilities=a,b,a: capability \"a\" is listed twice"},
    {"agent.x.concurrency", "0",
     "-X: agent.x.concurrency=0: expected an integer from 1 to 100000"},
    {"agent.x.concurrency", "100001",
     "-X: agent.x.concurrency=100001: expected an integer from 1 to "
     "100000"},
    {"agent.x.handler", "",
     "-X: agent.x.handler=: expected 1 to 4096 characters"},
};

static void test_agents_bad_set(void **state) {
        char errstr[ERRSTR_SIZE];
        size_t i;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(bad_agent_sets); i++) {
                sq_config_t *conf = sq_config_new();
                errstr[0]         = '\0';
                assert_int_equal(sq_config_set(conf, bad_agent_sets[i].key,
                                               bad_agent_sets[i].value, "-X",
                                               errstr, sizeof(errstr)),
                                 SQ_ERR_CONFIG);
                if (!strstr(errstr, bad_agent_sets[i].errstr))
                        fail_msg("%s=%s: got \"%s\", want \"%s\"",
                                 bad_agent_sets[i].key, bad_agent_sets[i].value,
                                 errstr, bad_agent_sets[i].errstr);
                /* A rejected line declares no agent. */
                assert_int_equal(conf->agents_cnt, 0);
                sq_config_destroy(conf);
        }
}

static void test_agents_too_many(void **state) {
        sq_config_t *conf = sq_config_new();
        char errstr[ERRSTR_SIZE];
        char key[64];
        int i;
        (void)state;

        for (i = 0; i < SQ_CONFIG_MAX_AGENTS; i++) {
                snprintf(key, sizeof(key), "agent.a%d.handler", i);
                assert_int_equal(sq_config_set(conf, key, "noop", "-X", errstr,
                                               sizeof(errstr)),
                                 SQ_OK);
        }
        /* Another field of a declared agent is still fine. */
        assert_int_equal(sq_config_set(conf, "agent.a0.concurrency", "2", "-X",
                                       errstr, sizeof(errstr)),
                         SQ_OK);
        assert_int_equal(sq_config_set(conf, "agent.one-more.handler", "noop",
                                       "-X", errstr, sizeof(errstr)),
                         SQ_ERR_CONFIG);
        assert_string_equal(errstr, "-X: agent.one-more.handler: too many "
                                    "agents: at most 4096 may be declared");
        assert_int_equal(conf->agents_cnt, SQ_CONFIG_MAX_AGENTS);
        assert_int_equal(sq_config_finalize(conf, errstr, sizeof(errstr)),
                         SQ_OK);
        sq_config_destroy(conf);
}

/* Settings that parse but fail finalize, and the exact sentence. */
static const struct {
        const char *settings[5];
        const char *errstr;
} bad_finalize[] = {
    {{"agent.x.handler=md5", NULL},
     "agent.x.handler=md5: unknown builtin handler; expected one of noop, "
     "echo, sleep, sha256, fail, cpu"},
    {{"agent.worker.concurrency=2", NULL},
     "agent.worker.handler is not set and \"worker\" is not a builtin "
     "handler name: set agent.worker.handler to one of noop, echo, sleep, "
     "sha256, fail, cpu"},
    {{"agent.x.kind=exec", "agent.x.handler=/bin/true", NULL},
     "agent.x.handler is set but agent.x.kind=exec: that field is for "
     "builtin agents only"},
    {{"agent.x.kind=exec", NULL},
     "agent.x.kind=exec needs agent.x.command: the program to run and its "
     "arguments, e.g. [\"/usr/bin/python3\", \"worker.py\"]"},
    {{"agent.x.kind=pool", NULL},
     "agent.x.kind=pool needs agent.x.command: the program to run and its "
     "arguments, e.g. [\"/usr/bin/python3\", \"worker.py\"]"},
    {{"agent.x.kind=pool", "agent.x.command=/w", "agent.x.pool.min=5", NULL},
     "agent.x.pool.min=5 must not be more than agent.x.pool.max=4"},
    {{"agent.x.kind=pool", "agent.x.command=/w", "agent.x.pool.backoff.ms=5000",
      "agent.x.pool.backoff.max.ms=100", NULL},
     "agent.x.pool.backoff.ms=5000 must not be more than "
     "agent.x.pool.backoff.max.ms=100"},
    {{"agent.x.kind=pool", "agent.x.command=/w", "agent.x.stderr.max.bytes=10",
      NULL},
     "agent.x.stderr.max.bytes is set but agent.x.kind=pool: that field is "
     "for exec agents only"},
    {{"agent.x.handler=echo", "agent.x.pool.min=2", NULL},
     "agent.x.pool.min is set but agent.x.kind=builtin: that field is for "
     "pool agents only"},
    {{"agent.x.handler=echo", "agent.x.env.FOO=1", NULL},
     "agent.x.env.<VAR> is set but agent.x.kind=builtin: that field is for "
     "exec and pool agents only"},
    {{"agent.x.kind=exec", "agent.x.command=/bin/true", "agent.x.pool.max=2",
      NULL},
     "agent.x.pool.max is set but agent.x.kind=exec: that field is for pool "
     "agents only"},
    {{"agent.x.kind=exec", "agent.x.kind=builtin", "agent.x.handler=/bin/true",
      NULL},
     "agent.x.handler=/bin/true: unknown builtin handler; expected one of "
     "noop, echo, sleep, sha256, fail, cpu"},
    {{"executor.threads=4", "executor.critical.reserved=4", NULL},
     "executor.critical.reserved=4 must be less than executor.threads=4: "
     "at least one executor thread must serve non-critical tasks"},
    {{"executor.threads=1", NULL},
     "executor.critical.reserved=1 must be less than executor.threads=1: "
     "at least one executor thread must serve non-critical tasks"},
    {{"admission.low.mark=10000", NULL},
     "admission.low.mark=10000 must be less than admission.high.mark=10000"},
    {{"admission.high.mark=100", NULL},
     "admission.low.mark=5000 must be less than admission.high.mark=100"},
    {{"topic.retry=swarmq-tasks", NULL},
     "topic.tasks and topic.retry are both \"swarmq-tasks\": each topic "
     "key needs its own topic"},
    {{"topic.events=ev", "topic.results=ev", NULL},
     "topic.results and topic.events are both \"ev\": each topic key "
     "needs its own topic"},
    {{"embedded.broker=true", "kafka.bootstrap.servers=k:9092", NULL},
     "embedded.broker=true and kafka.bootstrap.servers=k:9092 are both "
     "set: use the embedded broker or a real cluster, not both"},
};

static void test_finalize_errors(void **state) {
        char errstr[ERRSTR_SIZE];
        size_t i;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(bad_finalize); i++) {
                sq_config_t *conf = sq_config_new();
                set_all(conf, bad_finalize[i].settings);
                errstr[0] = '\0';
                assert_int_equal(
                    sq_config_finalize(conf, errstr, sizeof(errstr)),
                    SQ_ERR_CONFIG);
                assert_string_equal(errstr, bad_finalize[i].errstr);
                sq_config_destroy(conf);
        }
}

/* The edges of the cross-checks that must pass. */
static const struct {
        const char *settings[4];
} good_finalize[] = {
    {{"executor.threads=1", "executor.critical.reserved=0", NULL}},
    {{"executor.threads=1024", "executor.critical.reserved=1023", NULL}},
    {{"admission.low.mark=1", "admission.high.mark=2", NULL}},
    {{"embedded.broker=true", NULL}},
    {{"embedded.broker=false", "kafka.bootstrap.servers=k:9092", NULL}},
    {{"agent.cpu.concurrency=1", NULL}},
};

static void test_finalize_ok(void **state) {
        char errstr[ERRSTR_SIZE];
        size_t i;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(good_finalize); i++) {
                sq_config_t *conf = sq_config_new();
                set_all(conf, good_finalize[i].settings);
                errstr[0] = '\0';
                if (sq_config_finalize(conf, errstr, sizeof(errstr)) != SQ_OK)
                        fail_msg("case %zu: %s", i, errstr);
                sq_config_destroy(conf);
        }
}

/* The reload column, key by key: what a SIGHUP applies at once. */
static void test_key_reloadable(void **state) {
        static const struct {
                const char *key;
                bool reload;
        } cases[] = {
            {"log.level", true},
            {"breaker.when.open", true},
            {"flag.ranked_selection", true},
            {"flag.work_stealing", true},
            {"flag.no_such_flag", false},
            {"agent.a.kind", true},
            {"agent.a.handler", true},
            {"agent.a.capabilities", true},
            {"agent.a.concurrency", true},
            {"agent.a.breaker.failures", true},
            {"agent.a.breaker.window.ms", true},
            {"agent.a.breaker.open.ms", true},
            {"agent.a.breaker.probes", true},
            {"agent.a.command", true},
            {"agent.a.workdir", true},
            {"agent.a.env.allow", true},
            {"agent.a.env.TOKEN", true},
            {"agent.a.kill.grace.ms", true},
            {"agent.a.limit.nofile", true},
            {"agent.a.pool.max", true},
            {"agent.a.colour", false},
            {"agent.a.env.", false},
            {"agent.a", false},
            {"agent.", false},
            {"instance.id", false},
            {"group.id", false},
            {"topic.tasks", false},
            {"executor.threads", false},
            {"http.port", false},
            {"ordering", false},
            {"kafka.bootstrap.servers", false},
            {"kafka.log_level", false},
            {"no.such.key", false},
            {"", false},
        };
        size_t i;
        (void)state;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                if (sq_config_key_reloadable(cases[i].key) != cases[i].reload)
                        fail_msg("%s: reloadable should be %s", cases[i].key,
                                 cases[i].reload ? "true" : "false");
        }
}

static void test_key_scope(void **state) {
        static const struct {
                const char *key;
                sq_config_scope_t scope;
        } cases[] = {
            {"group.id", SQ_CONFIG_SCOPE_GROUP},
            {"topic.events", SQ_CONFIG_SCOPE_GROUP},
            {"ordering", SQ_CONFIG_SCOPE_GROUP},
            {"processing.guarantee", SQ_CONFIG_SCOPE_GROUP},
            {"instance.id", SQ_CONFIG_SCOPE_INSTANCE},
            {"executor.threads", SQ_CONFIG_SCOPE_INSTANCE},
            {"log.level", SQ_CONFIG_SCOPE_INSTANCE},
            {"agent.a.kind", SQ_CONFIG_SCOPE_INSTANCE},
            {"flag.work_stealing", SQ_CONFIG_SCOPE_INSTANCE},
            {"kafka.group.id", SQ_CONFIG_SCOPE_INSTANCE},
            {"no.such.key", SQ_CONFIG_SCOPE_INSTANCE},
        };
        size_t i;
        (void)state;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                if (sq_config_key_scope(cases[i].key) != cases[i].scope)
                        fail_msg("%s: wrong scope", cases[i].key);
        }
}

static void test_dump_masks_secrets(void **state) {
        static const char *const settings[] = {
            "kafka.sasl.username=alice",
            "kafka.sasl.password=hunter2",
            "kafka.ssl.key.password=hunter2",
            "kafka.ssl.key.pem=hunter2",
            "kafka.sasl.jaas.config=hunter2",
            "kafka.sasl.oauthbearer.client.secret=hunter2",
            "kafka.sasl.oauthbearer.config=hunter2",
            "kafka.SASL.PASSWORD=hunter2",
            "kafka.ssl.ca.location=/etc/ca.pem",
            "agent.hasher.handler=sha256",
            "agent.hasher.capabilities=a,b",
            NULL,
        };
        static const struct {
                const char *key;
                const char *value;
        } want[] = {
            {"kafka.sasl.username", "alice"},
            {"kafka.sasl.password", "***"},
            {"kafka.ssl.key.password", "***"},
            {"kafka.ssl.key.pem", "***"},
            {"kafka.sasl.jaas.config", "***"},
            {"kafka.sasl.oauthbearer.client.secret", "***"},
            {"kafka.sasl.oauthbearer.config", "***"},
            {"kafka.SASL.PASSWORD", "***"},
            {"kafka.ssl.ca.location", "/etc/ca.pem"},
            {"agent.hasher.kind", "builtin"},
            {"agent.hasher.handler", "sha256"},
            {"agent.hasher.capabilities", "a,b"},
            {"agent.hasher.concurrency", "4"},
            {"agent.hasher.breaker.failures", "5"},
            {"agent.hasher.breaker.window.ms", "60000"},
            {"agent.hasher.breaker.open.ms", "10000"},
            {"agent.hasher.breaker.probes", "1"},
            {"agent.hasher.spawn", "false"},
        };
        sq_config_t *conf = sq_config_new();
        dump_t dump, again;
        size_t i, first;
        (void)state;

        set_all(conf, settings);
        dump_take(conf, &dump);
        assert_true(dump.cnt > SQ_ARRAY_SIZE(want));
        assert_string_equal(dump.keys[0], "instance.id");
        for (i = 0; i < dump.cnt; i++)
                assert_null(strstr(dump.values[i], "hunter2"));

        /* kafka.* in order, then agents, at the end. */
        first = dump.cnt - SQ_ARRAY_SIZE(want);
        for (i = 0; i < SQ_ARRAY_SIZE(want); i++) {
                assert_string_equal(dump.keys[first + i], want[i].key);
                assert_string_equal(dump.values[first + i], want[i].value);
        }

        /* Stable: a second dump is identical. */
        dump_take(conf, &again);
        assert_int_equal(again.cnt, dump.cnt);
        for (i = 0; i < dump.cnt; i++) {
                assert_string_equal(again.keys[i], dump.keys[i]);
                assert_string_equal(again.values[i], dump.values[i]);
        }
        dump_free(&again);
        dump_free(&dump);
        sq_config_destroy(conf);
}

/* Reads a whole file under SQ_TEST_SOURCE_DIR (caller frees). */
static char *source_read(const char *relpath) {
        const char *dir = getenv("SQ_TEST_SOURCE_DIR");
        char path[1024];
        char *buf;
        long size;
        FILE *fp;

        if (!dir)
                fail_msg("SQ_TEST_SOURCE_DIR is not set");
        snprintf(path, sizeof(path), "%s/%s", dir, relpath);
        fp = fopen(path, "r");
        if (!fp)
                fail_msg("cannot open %s", path);
        assert_int_equal(fseek(fp, 0, SEEK_END), 0);
        size = ftell(fp);
        assert_true(size > 0);
        rewind(fp);
        buf = malloc((size_t)size + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
        buf[size] = '\0';
        fclose(fp);
        return buf;
}

/* Copies the text between the first pair of backticks in [s, end). */
static bool backticked(const char *s, const char *end, char *out, size_t size) {
        const char *open = memchr(s, '`', (size_t)(end - s));
        const char *close;

        if (!open)
                return false;
        close = memchr(open + 1, '`', (size_t)(end - open - 1));
        if (!close)
                return false;
        snprintf(out, size, "%.*s", (int)(close - open - 1), open + 1);
        return true;
}

/*
 * docs/configuration.md's key table ("| `key` | type | `default` | ...")
 * must list exactly the keys the code dumps, with the defaults the code
 * has, and every documented default must be accepted by sq_config_set().
 */
static void test_docs_match_code(void **state) {
        char *doc         = source_read("docs/configuration.md");
        sq_config_t *conf = sq_config_new();
        char keys[96][64], defs[96][128];
        char errstr[ERRSTR_SIZE];
        const char *line, *next, *section_end, *col[4];
        size_t n = 0, i, j, c;
        dump_t dump;
        (void)state;

        /* Only the "## Keys" section's table. */
        line = strstr(doc, "\n## Keys\n");
        assert_non_null(line);
        line += strlen("\n## Keys\n");
        section_end = strstr(line, "\n## ");
        if (!section_end)
                section_end = line + strlen(line);

        for (; line < section_end; line = next) {
                next = strchr(line, '\n');
                next = next ? next + 1 : line + strlen(line);
                if (strncmp(line, "| `", 3))
                        continue;
                /* Columns 1 (key) and 3 (default). */
                for (c = 0, col[0] = line; c < 3; c++) {
                        col[c + 1] = memchr(col[c] + 1, '|',
                                            (size_t)(next - col[c] - 1));
                        assert_non_null(col[c + 1]);
                }
                assert_true(n < 96);
                assert_true(
                    backticked(col[0], col[1], keys[n], sizeof(keys[n])));
                if (strchr(keys[n], '<'))
                        continue; /* agent.<name>.* and kafka.<property> */
                assert_true(
                    backticked(col[2], col[3], defs[n], sizeof(defs[n])));
                n++;
        }
        assert_true(n >= 20);

        /* Every documented default is a valid value of its key. */
        for (i = 0; i < n; i++) {
                if (sq_config_set(conf, keys[i], defs[i], "docs", errstr,
                                  sizeof(errstr)) != SQ_OK)
                        fail_msg("documented default rejected: %s", errstr);
        }
        sq_config_destroy(conf);

        /* Every key the code knows is documented with its real default. */
        conf = sq_config_new();
        dump_take(conf, &dump);
        for (i = 0; i < dump.cnt; i++) {
                for (j = 0; j < n && strcmp(keys[j], dump.keys[i]); j++)
                        ;
                if (j == n)
                        fail_msg("%s is not in docs/configuration.md",
                                 dump.keys[i]);
                if (strcmp(dump.keys[i], "instance.id") &&
                    strcmp(defs[j], dump.values[i]))
                        fail_msg("%s: docs say default %s, code has %s",
                                 dump.keys[i], defs[j], dump.values[i]);
        }
        /* ...and nothing else (no stale or duplicated rows). */
        assert_int_equal(dump.cnt, n);
        dump_free(&dump);
        sq_config_destroy(conf);
        free(doc);
}

/* Reads the "- `key`" items of the list that follows the first line
 * starting with @p intro (up to the first line that is not an item). */
static size_t doc_list(const char *doc, const char *intro, char keys[][64],
                       size_t max) {
        const char *line = strstr(doc, intro), *next;
        size_t n         = 0;

        if (!line)
                fail_msg("docs/configuration.md has no \"%s\"", intro);
        line = strstr(line, "\n- `");
        assert_non_null(line);
        for (line++; !strncmp(line, "- `", 3); line = next + 1) {
                next = strchr(line, '\n');
                assert_non_null(next);
                assert_true(n < max);
                assert_true(backticked(line, next, keys[n], sizeof(keys[n])));
                n++;
        }
        return n;
}

/* "agent.x.breaker.probes" -> "agent.<name>.breaker.probes". */
static void agent_key_pattern(const char *key, char *out, size_t size) {
        const char *dot;

        if (!strncmp(key, "ratelimit.", 10) && (dot = strchr(key + 10, '.')))
                snprintf(out, size, "ratelimit.<name>%s", dot);
        else if (strncmp(key, "agent.", 6) || !(dot = strchr(key + 6, '.')))
                snprintf(out, size, "%s", key);
        else if (!strncmp(dot, ".env.", 5) && strcmp(dot, ".env.allow"))
                snprintf(out, size, "agent.<name>.env.<VAR>");
        else
                snprintf(out, size, "agent.<name>%s", dot);
}

/* true if some dumped key, agent keys as patterns, is @p want. */
static bool dumped(const dump_t *dump, const char *want) {
        char pattern[128];
        size_t i;

        for (i = 0; i < dump->cnt; i++) {
                agent_key_pattern(dump->keys[i], pattern, sizeof(pattern));
                if (!strcmp(pattern, want))
                        return true;
        }
        return false;
}

static bool listed(char keys[][64], size_t n, const char *key) {
        size_t i;
        for (i = 0; i < n; i++)
                if (!strcmp(keys[i], key))
                        return true;
        return false;
}

/*
 * docs/configuration.md lists the keys a reload applies and the keys every
 * instance of a group shares: each list must be exactly what the key
 * table says, over every key an instance can dump (builtin, exec and pool
 * agents, an env.<VAR>, a kafka.* key, the flags).
 */
static void test_docs_reload_and_scope(void **state) {
        static const char *const settings[] = {
            "agent.b.handler=noop",
            "agent.e.kind=exec",
            "agent.e.command=/bin/true",
            "agent.e.workdir=/tmp",
            "agent.e.env.FOO=1",
            "agent.p.kind=pool",
            "agent.p.command=/bin/cat",
            "kafka.client.id=x",
            "ratelimit.r.type=noop",
            "ratelimit.r.rate=5",
            "ratelimit.q.capability=gpu",
            "ratelimit.q.rate=0.5",
            NULL,
        };
        char *doc         = source_read("docs/configuration.md");
        sq_config_t *conf = sq_config_new();
        char reload[64][64], group[64][64], pattern[128];
        char errstr[ERRSTR_SIZE];
        size_t nreload, ngroup, i;
        dump_t dump;
        (void)state;

        nreload = doc_list(doc, "The keys a reload applies", reload, 64);
        ngroup  = doc_list(doc, "### Keys every instance of a group shares",
                           group, 64);
        assert_true(nreload >= 4);
        assert_true(ngroup >= 2);

        set_all(conf, settings);
        assert_int_equal(sq_config_finalize(conf, errstr, sizeof(errstr)),
                         SQ_OK);
        dump_take(conf, &dump);
        for (i = 0; i < dump.cnt; i++) {
                const char *key = dump.keys[i];
                agent_key_pattern(key, pattern, sizeof(pattern));
                if (sq_config_key_reloadable(key) !=
                    listed(reload, nreload, pattern))
                        fail_msg("%s: the key table says %sreloadable, "
                                 "docs/configuration.md says otherwise",
                                 key,
                                 sq_config_key_reloadable(key) ? "" : "not ");
                if ((sq_config_key_scope(key) == SQ_CONFIG_SCOPE_GROUP) !=
                    listed(group, ngroup, pattern))
                        fail_msg("%s: the key table and "
                                 "docs/configuration.md disagree on its "
                                 "scope",
                                 key);
        }
        /* No stale rows: every listed key is one the code dumps. */
        for (i = 0; i < nreload; i++)
                if (!dumped(&dump, reload[i]))
                        fail_msg("docs/configuration.md lists %s as "
                                 "reloadable; the code has no such key",
                                 reload[i]);
        for (i = 0; i < ngroup; i++)
                if (!dumped(&dump, group[i]))
                        fail_msg("docs/configuration.md lists %s as "
                                 "group-wide; the code has no such key",
                                 group[i]);
        dump_free(&dump);
        sq_config_destroy(conf);
        free(doc);
}

static void test_example_file_loads(void **state) {
        const char *dir          = getenv("SQ_TEST_SOURCE_DIR");
        sq_config_t *conf        = sq_config_new();
        char errstr[ERRSTR_SIZE] = "";
        char path[1024];
        (void)state;

        if (!dir)
                fail_msg("SQ_TEST_SOURCE_DIR is not set");
        snprintf(path, sizeof(path), "%s/ops/swarmq.properties.example", dir);
        if (sq_config_load_file(conf, path, errstr, sizeof(errstr)) != SQ_OK)
                fail_msg("example does not load: %s", errstr);
        if (sq_config_finalize(conf, errstr, sizeof(errstr)) != SQ_OK)
                fail_msg("example does not finalize: %s", errstr);
        assert_non_null(sq_config_kafka_get(conf, "bootstrap.servers"));
        assert_true(conf->agents_cnt >= 1);
        sq_config_destroy(conf);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults),
            cmocka_unit_test(test_good_values),
            cmocka_unit_test(test_bad_values),
            cmocka_unit_test(test_long_topic_rejected),
            cmocka_unit_test(test_unknown_key),
            cmocka_unit_test(test_file_parsing),
            cmocka_unit_test(test_file_errors),
            cmocka_unit_test(test_file_long_line),
            cmocka_unit_test(test_file_missing),
            cmocka_unit_test(test_env),
            cmocka_unit_test(test_env_errors),
            cmocka_unit_test(test_env_bootstrap),
            cmocka_unit_test(test_precedence),
            cmocka_unit_test(test_kafka_passthrough),
            cmocka_unit_test(test_agents_declared),
            cmocka_unit_test(test_agents_default),
            cmocka_unit_test(test_agents_exec),
            cmocka_unit_test(test_agents_bad_set),
            cmocka_unit_test(test_agents_too_many),
            cmocka_unit_test(test_finalize_errors),
            cmocka_unit_test(test_finalize_ok),
            cmocka_unit_test(test_key_reloadable),
            cmocka_unit_test(test_key_scope),
            cmocka_unit_test(test_dump_masks_secrets),
            cmocka_unit_test(test_docs_match_code),
            cmocka_unit_test(test_docs_reload_and_scope),
            cmocka_unit_test(test_example_file_loads),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
