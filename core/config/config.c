/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c: swarmq's configuration: known keys, kafka.* passthrough,
 * agent declarations, the properties-file and environment loaders, the
 * cross-key checks and the masked dump (see config.h).
 *
 * DESIGN
 *   Every known key is one row of key_defs[]: its name, value type, range,
 *   where it lives in sq_config_t, its default (as text) and a help line.
 *   Defaults are applied through the same setter as user values, so a
 *   default that breaks its own range trips an assertion in
 *   sq_config_new(); sq_config_dump() walks the same table, which is how
 *   the unit test checks docs/configuration.md against the code. Values are
 *   parsed into locals first and stored only when valid, so a rejected set
 *   leaves the config unchanged. An agent's handler is checked against
 *   its kind in finalize, not when set, because the file may declare the
 *   handler before the kind. Everything here runs on one thread before
 *   sq_config_finalize(); after it the config is read-only and shared.
 *   Ownership: the config owns every string and array it points to.
 */
#include "config.h"
#include "log.h"
#include "offsets.h"

#include <ctype.h>
#include <jansson.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define LINE_MAX_LEN     65536 /* longest properties-file line, bytes */
#define AGENT_NAME_MAX   64    /* agent names: [A-Za-z0-9_-]{1,64} */
#define KAFKA_NAME_MAX   255   /* librdkafka property names are short */
#define CAPABILITY_MAX   128   /* longest capability name */
#define CAPABILITIES_MAX 64    /* capabilities per agent */
#define SUGGEST_MAX_LEN  64    /* no suggestions for longer keys */

typedef enum {
        KEY_INT,      /* int, [min, max], plus named values in syms */
        KEY_INT64,    /* int64_t, [min, max] */
        KEY_BOOL,     /* bool: true/false, yes/no, on/off, 1/0 */
        KEY_STRING,   /* char *, length [min, max], no control chars */
        KEY_TOPIC,    /* char *, a legal Kafka topic name */
        KEY_ENUM,     /* an enum stored as int, names in syms */
        KEY_LOGLEVEL, /* int, sq_log_level_parse() */
        KEY_DOUBLE,   /* double, [min, max] */
} key_type_t;

/* A named value: an enum's names, or an int key's special words. */
typedef struct sym_s {
        const char *name;
        int value;
} sym_t;

typedef struct key_def_s {
        const char *name;
        key_type_t type;
        int64_t min; /* numbers: smallest value; strings: shortest */
        int64_t max; /* numbers: largest value; strings: longest */
        size_t offset;
        const char *def;   /* default as text; NULL: computed in _new() */
        const sym_t *syms; /* NULL-terminated, or NULL */
        const char *help;
} key_def_t;

static const sym_t ordering_syms[] = {
    {"unordered", SQ_ORDERING_UNORDERED},
    {"key", SQ_ORDERING_KEY},
    {"partition", SQ_ORDERING_PARTITION},
    {NULL, 0},
};

static const sym_t when_open_syms[] = {
    {"wait", SQ_WHEN_OPEN_WAIT},
    {"fail", SQ_WHEN_OPEN_FAIL},
    {NULL, 0},
};

static const sym_t jitter_syms[] = {
    {"full", SQ_JITTER_FULL},
    {"equal", SQ_JITTER_EQUAL},
    {"none", SQ_JITTER_NONE},
    {NULL, 0},
};

static const sym_t guarantee_syms[] = {
    {"at_least_once", SQ_GUARANTEE_AT_LEAST_ONCE},
    {"exactly_once", SQ_GUARANTEE_EXACTLY_ONCE},
    {NULL, 0},
};

static const sym_t port_syms[] = {
    {"auto", -1},
    {"off", 0},
    {NULL, 0},
};

static const sym_t agent_kind_syms[] = {
    {"builtin", SQ_AGENT_BUILTIN},
    {"exec", SQ_AGENT_EXEC},
    {"pool", SQ_AGENT_POOL},
    {NULL, 0},
};

/* Canonical names for dump, indexed by sq_log_level_t. */
static const char *const log_level_names[] = {
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

static const char *const builtin_handlers[] = {
    "noop", "echo", "sleep", "sha256", "fail", "cpu",
};
#define BUILTIN_HANDLERS_LIST "noop, echo, sleep, sha256, fail, cpu"

/* Agent fields: agent.<name>.<field>. Bit i of set_fields is row i. */
typedef enum {
        AF_KIND,    /* sq_agent_kind_t */
        AF_HANDLER, /* char *, 1..4096 characters */
        AF_CAPS,    /* capability list */
        AF_INT,     /* int, [min, max] */
        AF_INT64,   /* int64_t, [min, max] */
        AF_ARGV,    /* JSON array of strings, or whitespace-separated */
        AF_PATH,    /* char *, 1..4096 characters */
        AF_NAMES,   /* comma-separated environment variable names */
} agent_field_type_t;

#define KIND_B   (1u << SQ_AGENT_BUILTIN)
#define KIND_E   (1u << SQ_AGENT_EXEC)
#define KIND_P   (1u << SQ_AGENT_POOL)
#define KIND_EP  (KIND_E | KIND_P)
#define KIND_ALL (KIND_B | KIND_E | KIND_P)

typedef struct agent_field_s {
        const char *name;
        agent_field_type_t type;
        unsigned kinds; /* KIND_* the field applies to */
        int64_t min;
        int64_t max;
        size_t offset;
        const char *def; /* default as text, applied by agent_add() */
} agent_field_t;

#define AOFF(field) offsetof(sq_agent_conf_t, field)

static const agent_field_t agent_fields[] = {
    {"kind", AF_KIND, KIND_ALL, 0, 0, AOFF(kind), NULL},
    {"handler", AF_HANDLER, KIND_B, 1, 4096, AOFF(handler), NULL},
    {"capabilities", AF_CAPS, KIND_ALL, 0, 0, AOFF(capabilities), NULL},
    {"concurrency", AF_INT, KIND_ALL, 1, 100000, AOFF(concurrency), "4"},
    {"breaker.failures", AF_INT, KIND_ALL, 0, 1000000, AOFF(breaker_failures),
     "5"},
    {"breaker.window.ms", AF_INT64, KIND_ALL, 1, 86400000,
     AOFF(breaker_window_ms), "60000"},
    {"breaker.open.ms", AF_INT64, KIND_ALL, 1, 86400000, AOFF(breaker_open_ms),
     "10000"},
    {"breaker.probes", AF_INT, KIND_ALL, 1, 1000, AOFF(breaker_probes), "1"},
    {"command", AF_ARGV, KIND_EP, 0, 0, AOFF(command), NULL},
    {"workdir", AF_PATH, KIND_EP, 1, 4096, AOFF(workdir), NULL},
    {"env.allow", AF_NAMES, KIND_EP, 0, 0, AOFF(env_allow),
     "PATH,HOME,LANG,LC_ALL,TZ"},
    {"kill.grace.ms", AF_INT64, KIND_EP, 0, 600000, AOFF(kill_grace_ms),
     "2000"},
    {"output.max.bytes", AF_INT64, KIND_EP, 0, 64 << 20, AOFF(output_max_bytes),
     "524288"},
    {"stderr.max.bytes", AF_INT64, KIND_E, 0, 1 << 20, AOFF(stderr_max_bytes),
     "4096"},
    {"limit.as.bytes", AF_INT64, KIND_EP, 0, INT64_C(1) << 50,
     AOFF(limit_as_bytes), "0"},
    {"limit.cpu.seconds", AF_INT64, KIND_EP, 0, 604800, AOFF(limit_cpu_seconds),
     "0"},
    {"limit.nofile", AF_INT64, KIND_EP, 0, 1048576, AOFF(limit_nofile), "0"},
    {"pool.min", AF_INT, KIND_P, 0, 10000, AOFF(pool_min), "1"},
    {"pool.max", AF_INT, KIND_P, 1, 10000, AOFF(pool_max), "4"},
    {"pool.acquire.timeout.ms", AF_INT64, KIND_P, 1, 3600000,
     AOFF(pool_acquire_timeout_ms), "30000"},
    {"pool.idle.timeout.ms", AF_INT64, KIND_P, 0, 86400000,
     AOFF(pool_idle_timeout_ms), "60000"},
    {"pool.ping.interval.ms", AF_INT64, KIND_P, 0, 3600000,
     AOFF(pool_ping_interval_ms), "10000"},
    {"pool.ping.timeout.ms", AF_INT64, KIND_P, 1, 600000,
     AOFF(pool_ping_timeout_ms), "5000"},
    {"pool.start.timeout.ms", AF_INT64, KIND_P, 1, 600000,
     AOFF(pool_start_timeout_ms), "10000"},
    {"pool.recycle.tasks", AF_INT64, KIND_P, 0, 1000000000,
     AOFF(pool_recycle_tasks), "0"},
    {"pool.task.retries", AF_INT64, KIND_P, 0, 10, AOFF(pool_task_retries),
     "1"},
    {"pool.backoff.ms", AF_INT64, KIND_P, 1, 60000, AOFF(pool_backoff_ms),
     "100"},
    {"pool.backoff.max.ms", AF_INT64, KIND_P, 1, 3600000,
     AOFF(pool_backoff_max_ms), "30000"},
};
/* agent.<name>.env.<VAR> counts as this bit in set_fields. */
#define AGENT_ENV_BIT SQ_ARRAY_SIZE(agent_fields)
#define ARGV_MAX      256  /* command words */
#define ENV_NAME_MAX  255  /* environment variable name length */
#define ENV_VALUE_MAX 4096 /* agent.<name>.env.<VAR> value length */

/* First words of librdkafka properties people forget to prefix. */
static const char *const kafka_first_words[] = {
    "bootstrap", "security", "sasl",    "ssl",     "client",      "socket",
    "enable",    "auto",     "session", "fetch",   "compression", "statistics",
    "metadata",  "broker",   "request", "message", "queued",      "partition",
};

/* Stored through memcpy(): the enum must have int's size. */
_Static_assert(sizeof(sq_ordering_t) == sizeof(int), "enum is int-sized");
_Static_assert(sizeof(sq_when_open_t) == sizeof(int), "enum is int-sized");
_Static_assert(sizeof(sq_jitter_t) == sizeof(int), "enum is int-sized");
_Static_assert(sizeof(sq_guarantee_t) == sizeof(int), "enum is int-sized");

#define OFF(field) offsetof(sq_config_t, field)

/* Known keys in dump and documentation order. */
static const key_def_t key_defs[] = {
    {"instance.id", KEY_STRING, 1, 255, OFF(instance_id), NULL, NULL,
     "This instance's name in results, events, metrics and logs."},
    {"group.id", KEY_STRING, 1, 255, OFF(group_id), "swarmq", NULL,
     "Kafka consumer group shared by all instances."},
    {"topic.tasks", KEY_TOPIC, 1, 249, OFF(topic_tasks), "swarmq-tasks", NULL,
     "Topic upstream producers write tasks to."},
    {"topic.critical", KEY_TOPIC, 1, 249, OFF(topic_critical),
     "swarmq-tasks-critical", NULL, "Topic of CRITICAL tasks (fast lane)."},
    {"topic.retry", KEY_TOPIC, 1, 249, OFF(topic_retry), "swarmq-tasks-retry",
     NULL, "Topic failed attempts are retried from."},
    {"topic.dlt", KEY_TOPIC, 1, 249, OFF(topic_dlt), "swarmq-tasks-dlt", NULL,
     "Dead-letter topic for tasks out of attempts or undecodable."},
    {"topic.results", KEY_TOPIC, 1, 249, OFF(topic_results), "swarmq-results",
     NULL, "Topic one result per task is written to."},
    {"topic.events", KEY_TOPIC, 1, 249, OFF(topic_events), "swarmq-events",
     NULL, "Topic task lifecycle events are written to."},
    {"executor.threads", KEY_INT, 1, 1024, OFF(executor_threads), "4", NULL,
     "Executor threads running tasks."},
    {"executor.critical.reserved", KEY_INT, 0, 1023,
     OFF(executor_critical_slots), "1", NULL,
     "Executor threads kept for CRITICAL tasks; less than "
     "executor.threads."},
    {"admission.high.mark", KEY_INT, 1, 10000000, OFF(admission_high), "10000",
     NULL, "Tasks in memory at which intake pauses."},
    {"admission.low.mark", KEY_INT, 1, 10000000, OFF(admission_low), "5000",
     NULL,
     "Tasks in memory at which intake resumes; less than "
     "admission.high.mark."},
    {"admission.critical.high.mark", KEY_INT, 1, 10000000, OFF(critical_high),
     "1000", NULL, "CRITICAL tasks in memory at which the fast lane pauses."},
    {"scheduler.aging.ms", KEY_INT64, 1, 3600000, OFF(aging_ms), "500", NULL,
     "Wait after which a queued task is promoted one priority."},
    {"ordering", KEY_ENUM, 0, 0, OFF(ordering), "unordered", ordering_syms,
     "unordered, key (one task per key at a time) or partition."},
    {"task.default.timeout.ms", KEY_INT64, 0, 604800000,
     OFF(default_timeout_ms), "60000", NULL,
     "Deadline for tasks that set none; 0 = none."},
    {"breaker.when.open", KEY_ENUM, 0, 0, OFF(breaker_when_open), "wait",
     when_open_syms,
     "When every capable agent's breaker is open: wait (park until one "
     "goes half-open) or fail (FAILED, \"no healthy agent\")."},
    {"commit.interval.ms", KEY_INT64, 1, 3600000, OFF(commit_interval_ms),
     "1000", NULL, "How often completed offsets are committed."},
    {"lag.refresh.interval.ms", KEY_INT64, 0, 3600000,
     OFF(lag_refresh_interval_ms), "5000", NULL,
     "How often the high watermarks of owned partitions are queried for "
     "the lag; 0 = only what fetches report."},
    {"shutdown.drain.timeout.ms", KEY_INT64, 0, 3600000, OFF(drain_timeout_ms),
     "30000", NULL, "How long shutdown waits for running tasks."},
    {"memory.limit.bytes", KEY_INT64, 0, INT64_C(1) << 50,
     OFF(memory_limit_bytes), "0", NULL,
     "Resident memory at which intake stops; it slows from 90%, resumes "
     "below 80%; 0 = no limit."},
    {"commit.metadata.max.bytes", KEY_INT, 0, 1048576, OFF(commit_metadata_max),
     "4096", NULL,
     "Budget of the completed-offset map in each commit's metadata; 0 = "
     "no map."},
    {"dedup.max.entries", KEY_INT, 0, 10000000, OFF(dedup_max_entries),
     "100000", NULL,
     "Succeeded task ids remembered to drop duplicates; 0 = no dedup."},
    {"dedup.ttl.ms", KEY_INT64, 0, 604800000, OFF(dedup_ttl_ms), "3600000",
     NULL, "How long a succeeded task id is remembered; 0 = no dedup."},
    {"retry.max.attempts", KEY_INT, 1, 1000, OFF(retry_max_attempts), "10",
     NULL, "Most attempts any task gets (caps the task's own max_attempts)."},
    {"retry.backoff.initial.ms", KEY_INT64, 0, 86400000,
     OFF(retry_backoff_initial_ms), "1000", NULL,
     "Backoff before the second attempt."},
    {"retry.backoff.max.ms", KEY_INT64, 0, 604800000, OFF(retry_backoff_max_ms),
     "60000", NULL, "Longest backoff between attempts."},
    {"retry.backoff.multiplier", KEY_DOUBLE, 1, 100,
     OFF(retry_backoff_multiplier), "2", NULL,
     "Factor the backoff grows by per attempt."},
    {"retry.backoff.jitter", KEY_ENUM, 0, 0, OFF(retry_backoff_jitter), "equal",
     jitter_syms, "full, equal or none."},
    {"processing.guarantee", KEY_ENUM, 0, 0, OFF(guarantee), "at_least_once",
     guarantee_syms,
     "at_least_once, or exactly_once: results, events and offsets in one "
     "Kafka transaction."},
    {"http.port", KEY_INT, -1, 65535, OFF(http_port), "8080", port_syms,
     "HTTP port for /health, /metrics, /status; auto (-1) = ephemeral, "
     "off (0) = no server."},
    {"http.bind", KEY_STRING, 1, 255, OFF(http_bind), "127.0.0.1", NULL,
     "Address the HTTP server listens on."},
    {"http.admin.token", KEY_STRING, 0, 4096, OFF(http_admin_token), "", NULL,
     "Bearer token for POST /admin/*; empty = admin actions off."},
    {"http.admin.token.file", KEY_STRING, 0, 4096, OFF(http_admin_token_file),
     "", NULL, "File holding the admin bearer token (first line)."},
    {"http.tls.cert", KEY_STRING, 0, 4096, OFF(http_tls_cert), "", NULL,
     "PEM certificate file: serve HTTPS; needs http.tls.key."},
    {"http.tls.key", KEY_STRING, 0, 4096, OFF(http_tls_key), "", NULL,
     "PEM private key file for http.tls.cert."},
    {"http.events.buffer", KEY_INT, 16, 1000000, OFF(http_events_buffer),
     "4096", NULL, "Events kept in memory for GET /events."},
    {"http.events.rate", KEY_INT, 1, 1000000, OFF(http_events_rate), "500",
     NULL, "Events per second sent to one /events client; more are dropped."},
    {"http.events.clients", KEY_INT, 1, 1024, OFF(http_events_clients), "16",
     NULL, "Concurrent /events streams; more are refused with 503."},
    {"http.connections.max", KEY_INT, 1, 65536, OFF(http_connections_max),
     "256", NULL, "Open HTTP connections at most; more are refused."},
    {"http.connections.per.ip", KEY_INT, 0, 65536, OFF(http_connections_per_ip),
     "64", NULL,
     "Open HTTP connections from one client address; 0 = no limit."},
    {"topics.create", KEY_BOOL, 0, 1, OFF(topics_create), "true", NULL,
     "Create missing swarmq topics at start-up."},
    {"topics.partitions", KEY_INT, 1, 100000, OFF(topics_partitions), "12",
     NULL, "Partitions of the topics swarmq creates."},
    {"topics.replication.factor", KEY_INT, -1, 1000,
     OFF(topics_replication_factor), "-1", NULL,
     "Replication factor of the topics swarmq creates; -1 = the broker's "
     "default."},
    {"embedded.broker", KEY_BOOL, 0, 1, OFF(embedded_broker), "false", NULL,
     "Run librdkafka's mock cluster in-process instead of a real one."},
    {"embedded.partitions", KEY_INT, 1, 1000, OFF(embedded_partitions), "12",
     NULL, "Partitions per topic in the embedded broker."},
    {"embedded.brokers", KEY_INT, 1, 16, OFF(embedded_brokers), "1", NULL,
     "Brokers in the embedded cluster."},
    {"log.level", KEY_LOGLEVEL, 0, 7, OFF(log_level), "info", NULL,
     "Log level: emerg, alert, crit, err, warning, notice, info, debug or "
     "0 to 7."},
};

/**
 * Writes "origin: message" to errstr (just "message" without an origin).
 */
static SQ_ATTR_PRINTF(4, 5) void config_error(char *errstr, size_t errstr_size,
                                              const char *origin,
                                              const char *fmt, ...) {
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (origin && *origin)
                sq_errstr_set(errstr, errstr_size, "%s: %s", origin, msg);
        else
                sq_errstr_set(errstr, errstr_size, "%s", msg);
}

static const sym_t *sym_find(const sym_t *syms, const char *name) {
        for (; syms && syms->name; syms++) {
                if (!strcasecmp(syms->name, name))
                        return syms;
        }
        return NULL;
}

static const char *sym_name(const sym_t *syms, int value) {
        for (; syms && syms->name; syms++) {
                if (syms->value == value)
                        return syms->name;
        }
        return NULL;
}

/* Appends "a, b, c" (the names of syms) to buf. */
static void sym_list(const sym_t *syms, char *buf, size_t size) {
        size_t len = strlen(buf);
        for (; syms->name && len < size; syms++) {
                snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
                         syms->name);
                len = strlen(buf);
        }
}

static const key_def_t *key_find(const char *name) {
        size_t i;
        for (i = 0; i < SQ_ARRAY_SIZE(key_defs); i++) {
                if (!strcmp(key_defs[i].name, name))
                        return &key_defs[i];
        }
        return NULL;
}

static bool builtin_handler_valid(const char *name) {
        size_t i;
        for (i = 0; i < SQ_ARRAY_SIZE(builtin_handlers); i++) {
                if (!strcmp(builtin_handlers[i], name))
                        return true;
        }
        return false;
}

/* true if @p str is [min, max] bytes long with no control characters. */
static bool string_valid(const char *str, int64_t min, int64_t max) {
        size_t len = strlen(str);
        const unsigned char *p;

        if ((int64_t)len < min || (int64_t)len > max)
                return false;
        for (p = (const unsigned char *)str; *p; p++) {
                if (iscntrl(*p))
                        return false;
        }
        return true;
}

/* Kafka's rule: 1..249 of [A-Za-z0-9._-], and not "." or "..". */
static bool topic_valid(const char *str) {
        const char *p;

        if (!*str || strlen(str) > 249 || !strcmp(str, ".") ||
            !strcmp(str, ".."))
                return false;
        for (p = str; *p; p++) {
                if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' &&
                    *p != '-')
                        return false;
        }
        return true;
}

/* Describes what a key accepts, for error sentences. */
static void key_expect(const key_def_t *def, char *buf, size_t size) {
        buf[0] = '\0';
        switch (def->type) {
        case KEY_INT:
        case KEY_INT64:
                snprintf(buf, size, "expected an integer from %lld to %lld",
                         (long long)def->min, (long long)def->max);
                if (def->syms) {
                        sq_strlcpy(buf + strlen(buf),
                                   ", or one of: ", size - strlen(buf));
                        sym_list(def->syms, buf + strlen(buf),
                                 size - strlen(buf));
                }
                break;
        case KEY_BOOL:
                snprintf(buf, size,
                         "expected true or false (or yes/no, on/off, 1/0)");
                break;
        case KEY_STRING:
                snprintf(buf, size,
                         "expected %lld to %lld characters, none of them "
                         "control characters",
                         (long long)def->min, (long long)def->max);
                break;
        case KEY_TOPIC:
                snprintf(buf, size,
                         "expected a topic name of 1 to 249 characters from "
                         "[A-Za-z0-9._-]");
                break;
        case KEY_ENUM:
                sq_strlcpy(buf, "expected one of: ", size);
                sym_list(def->syms, buf + strlen(buf), size - strlen(buf));
                break;
        case KEY_LOGLEVEL:
                snprintf(buf, size,
                         "expected a log level: emerg, alert, crit, err, "
                         "warning, notice, info, debug, or 0 to 7");
                break;
        case KEY_DOUBLE:
                snprintf(buf, size, "expected a number from %lld to %lld",
                         (long long)def->min, (long long)def->max);
                break;
        }
}

/* Parses @p value for @p def and stores it; false leaves conf as is. */
static bool key_apply(sq_config_t *conf, const key_def_t *def,
                      const char *value) {
        char *field = (char *)conf + def->offset;
        const sym_t *sym;
        sq_log_level_t level;
        int64_t num;
        char *copy;
        bool bval;
        int ival;

        switch (def->type) {
        case KEY_INT:
        case KEY_INT64:
                sym = sym_find(def->syms, value);
                if (sym)
                        num = sym->value;
                else if (sq_parse_int64(value, def->min, def->max, &num) !=
                         SQ_OK)
                        return false;
                if (def->type == KEY_INT) {
                        ival = (int)num;
                        memcpy(field, &ival, sizeof(ival));
                } else {
                        memcpy(field, &num, sizeof(num));
                }
                return true;
        case KEY_BOOL:
                if (sq_parse_bool(value, &bval) != SQ_OK)
                        return false;
                memcpy(field, &bval, sizeof(bval));
                return true;
        case KEY_STRING:
        case KEY_TOPIC:
                if (def->type == KEY_STRING
                        ? !string_valid(value, def->min, def->max)
                        : !topic_valid(value))
                        return false;
                memcpy(&copy, field, sizeof(copy));
                sq_free(copy);
                copy = sq_strdup(value);
                memcpy(field, &copy, sizeof(copy));
                return true;
        case KEY_ENUM:
                sym = sym_find(def->syms, value);
                if (!sym)
                        return false;
                memcpy(field, &sym->value, sizeof(sym->value));
                return true;
        case KEY_LOGLEVEL:
                if (sq_log_level_parse(value, &level) != SQ_OK)
                        return false;
                ival = (int)level;
                memcpy(field, &ival, sizeof(ival));
                return true;
        case KEY_DOUBLE: {
                char *end = NULL;
                double dval;
                errno = 0;
                dval  = strtod(value, &end);
                if (errno || end == value || *end || !(dval >= def->min) ||
                    !(dval <= def->max))
                        return false;
                memcpy(field, &dval, sizeof(dval));
                return true;
        }
        }
        return false;
}

/* Formats the current value of @p def; returns buf or a string field. */
static const char *key_format(const sq_config_t *conf, const key_def_t *def,
                              char *buf, size_t size) {
        const char *field = (const char *)conf + def->offset;
        const char *name;
        const char *str;
        int64_t num;
        bool bval;
        int ival;

        switch (def->type) {
        case KEY_INT:
                memcpy(&ival, field, sizeof(ival));
                name = sym_name(def->syms, ival);
                if (name)
                        return name;
                snprintf(buf, size, "%d", ival);
                return buf;
        case KEY_INT64:
                memcpy(&num, field, sizeof(num));
                snprintf(buf, size, "%lld", (long long)num);
                return buf;
        case KEY_BOOL:
                memcpy(&bval, field, sizeof(bval));
                return bval ? "true" : "false";
        case KEY_STRING:
        case KEY_TOPIC:
                memcpy(&str, field, sizeof(str));
                return str ? str : "";
        case KEY_ENUM:
                memcpy(&ival, field, sizeof(ival));
                name = sym_name(def->syms, ival);
                return name ? name : "";
        case KEY_LOGLEVEL:
                memcpy(&ival, field, sizeof(ival));
                return log_level_names[ival & 7];
        case KEY_DOUBLE: {
                double dval;
                memcpy(&dval, field, sizeof(dval));
                snprintf(buf, size, "%g", dval);
                return buf;
        }
        }
        return "";
}

/* Levenshtein distance, or SIZE_MAX for strings too long to bother. */
static size_t edit_distance(const char *a, const char *b) {
        size_t row[SUGGEST_MAX_LEN + 1];
        size_t alen = strlen(a), blen = strlen(b);
        size_t i, j, diag, up;

        if (alen > SUGGEST_MAX_LEN || blen > SUGGEST_MAX_LEN)
                return SIZE_MAX;
        for (j = 0; j <= blen; j++)
                row[j] = j;
        for (i = 1; i <= alen; i++) {
                diag   = row[0];
                row[0] = i;
                for (j = 1; j <= blen; j++) {
                        up     = row[j];
                        row[j] = SQ_MIN(SQ_MIN(row[j] + 1, row[j - 1] + 1),
                                        diag + (a[i - 1] != b[j - 1]));
                        diag   = up;
                }
        }
        return row[blen];
}

/* How far a typo may be from the real name and still be suggested. */
static size_t suggest_threshold(const char *name) {
        size_t len = strlen(name);
        return len >= 12 ? 3 : len >= 6 ? 2 : 1;
}

/* The closest of @p names to @p name, or NULL when none is close. */
static const char *suggest(const char *name, const char *const *names,
                           size_t cnt, size_t stride) {
        const char *best = NULL;
        size_t best_dist = suggest_threshold(name) + 1;
        size_t i, dist;

        for (i = 0; i < cnt; i++) {
                const char *cand =
                    *(const char *const *)((const char *)names + i * stride);
                dist = edit_distance(name, cand);
                if (dist < best_dist) {
                        best_dist = dist;
                        best      = cand;
                }
        }
        return best;
}

static sq_err_t unknown_key(const char *key, const char *origin, char *errstr,
                            size_t errstr_size) {
        const char *best;
        size_t i, len;

        best = suggest(key, &key_defs[0].name, SQ_ARRAY_SIZE(key_defs),
                       sizeof(key_defs[0]));
        if (best) {
                config_error(errstr, errstr_size, origin,
                             "unknown configuration key \"%s\"; "
                             "did you mean %s?",
                             key, best);
                return SQ_ERR_CONFIG;
        }
        for (i = 0; i < SQ_ARRAY_SIZE(kafka_first_words); i++) {
                len = strlen(kafka_first_words[i]);
                if (!strncmp(key, kafka_first_words[i], len) &&
                    key[len] == '.') {
                        config_error(errstr, errstr_size, origin,
                                     "unknown configuration key \"%s\"; "
                                     "did you mean kafka.%s? (librdkafka "
                                     "properties take the \"kafka.\" "
                                     "prefix)",
                                     key, key);
                        return SQ_ERR_CONFIG;
                }
        }
        config_error(errstr, errstr_size, origin,
                     "unknown configuration key \"%s\"", key);
        return SQ_ERR_CONFIG;
}

static sq_err_t kafka_set(sq_config_t *conf, const char *key, const char *value,
                          const char *origin, char *errstr,
                          size_t errstr_size) {
        const char *name = key + strlen("kafka.");
        sq_kv_t *kv;
        size_t i;

        if (!*name) {
                config_error(errstr, errstr_size, origin,
                             "\"%s\" names no librdkafka property: expected "
                             "kafka.<property>, e.g. "
                             "kafka.bootstrap.servers",
                             key);
                return SQ_ERR_CONFIG;
        }
        if (!string_valid(name, 1, KAFKA_NAME_MAX) || strchr(name, ' ')) {
                config_error(errstr, errstr_size, origin,
                             "\"%.300s\" is not a librdkafka property name: "
                             "expected at most %d characters, no spaces or "
                             "control characters",
                             key, KAFKA_NAME_MAX);
                return SQ_ERR_CONFIG;
        }
        for (i = 0; i < conf->kafka_cnt; i++) {
                if (!strcmp(conf->kafka[i].name, name)) {
                        sq_free(conf->kafka[i].value);
                        conf->kafka[i].value = sq_strdup(value);
                        return SQ_OK;
                }
        }
        conf->kafka = sq_realloc(conf->kafka,
                                 (conf->kafka_cnt + 1) * sizeof(*conf->kafka));
        kv          = &conf->kafka[conf->kafka_cnt++];
        kv->name    = sq_strdup(name);
        kv->value   = sq_strdup(value);
        return SQ_OK;
}

static bool agent_name_valid(const char *name, size_t len) {
        size_t i;

        if (len == 0 || len > AGENT_NAME_MAX)
                return false;
        for (i = 0; i < len; i++) {
                if (!isalnum((unsigned char)name[i]) && name[i] != '_' &&
                    name[i] != '-')
                        return false;
        }
        return true;
}

static void caps_free(char **caps, size_t cnt) {
        size_t i;
        for (i = 0; i < cnt; i++)
                sq_free(caps[i]);
        sq_free(caps);
}

/**
 * Splits a comma-separated capability list. On failure writes why to
 * @p why and returns false. On success the caller owns *capsp (free with
 * caps_free()).
 */
static bool caps_parse(const char *value, char ***capsp, size_t *cntp,
                       char *why, size_t why_size) {
        char **caps       = NULL;
        size_t cnt        = 0;
        const char *start = value, *end, *comma, *p;
        size_t i, len;
        bool ok = false;

        for (;;) {
                comma = strchr(start, ',');
                end   = comma ? comma : start + strlen(start);
                while (start < end && isspace((unsigned char)*start))
                        start++;
                while (end > start && isspace((unsigned char)end[-1]))
                        end--;
                len = (size_t)(end - start);
                if (!len) {
                        snprintf(why, why_size,
                                 "empty capability in the list; expected "
                                 "comma-separated names");
                        goto done;
                }
                if (len > CAPABILITY_MAX) {
                        snprintf(why, why_size,
                                 "capability \"%.*s...\" is longer than %d "
                                 "characters",
                                 32, start, CAPABILITY_MAX);
                        goto done;
                }
                for (p = start; p < end; p++) {
                        if (isspace((unsigned char)*p) ||
                            iscntrl((unsigned char)*p)) {
                                snprintf(why, why_size,
                                         "capability \"%.*s\" contains "
                                         "whitespace or a control character",
                                         (int)len, start);
                                goto done;
                        }
                }
                for (i = 0; i < cnt; i++) {
                        if (strlen(caps[i]) == len &&
                            !strncmp(caps[i], start, len)) {
                                snprintf(why, why_size,
                                         "capability \"%.*s\" is listed "
                                         "twice",
                                         (int)len, start);
                                goto done;
                        }
                }
                if (cnt == CAPABILITIES_MAX) {
                        snprintf(why, why_size, "more than %d capabilities",
                                 CAPABILITIES_MAX);
                        goto done;
                }
                caps        = sq_realloc(caps, (cnt + 1) * sizeof(*caps));
                caps[cnt++] = sq_strndup(start, len);
                if (!comma)
                        break;
                start = comma + 1;
        }
        *capsp = caps;
        *cntp  = cnt;
        caps   = NULL;
        cnt    = 0;
        ok     = true;
done:
        caps_free(caps, cnt);
        return ok;
}

/* Finds the agent called name[0..len), or NULL. */
static sq_agent_conf_t *agent_find(sq_config_t *conf, const char *name,
                                   size_t len) {
        size_t i;
        for (i = 0; i < conf->agents_cnt; i++) {
                if (strlen(conf->agents[i].name) == len &&
                    !strncmp(conf->agents[i].name, name, len))
                        return &conf->agents[i];
        }
        return NULL;
}

static void strv_free(char **strv, size_t cnt) {
        caps_free(strv, cnt);
}

/* Frees what one agent declaration owns. */
static void agent_conf_term(sq_agent_conf_t *agent) {
        size_t i;

        sq_free(agent->name);
        sq_free(agent->handler);
        caps_free(agent->capabilities, agent->capabilities_cnt);
        /* command and env_allow carry a NULL terminator */
        strv_free(agent->command,
                  agent->command_cnt + (agent->command != NULL));
        strv_free(agent->env_allow,
                  agent->env_allow_cnt + (agent->env_allow != NULL));
        sq_free(agent->workdir);
        for (i = 0; i < agent->env_cnt; i++) {
                sq_free(agent->env[i].name);
                sq_free(agent->env[i].value);
        }
        sq_free(agent->env);
}

static bool env_name_valid(const char *name, size_t len) {
        size_t i;

        if (len == 0 || len > ENV_NAME_MAX || isdigit((unsigned char)name[0]))
                return false;
        for (i = 0; i < len; i++) {
                if (!isalnum((unsigned char)name[i]) && name[i] != '_')
                        return false;
        }
        return true;
}

/* Parses a list of environment variable names ("A, B,C"); "" = none.
 * The list is NULL-terminated; the caller owns it (strv_free(cnt + 1)). */
static bool names_parse(const char *value, char ***namesp, size_t *cntp,
                        char *why, size_t why_size) {
        char **names      = sq_calloc(1, sizeof(*names));
        size_t cnt        = 0;
        const char *start = value, *end, *comma;
        size_t len;

        while (isspace((unsigned char)*start))
                start++;
        while (*start) {
                comma = strchr(start, ',');
                end   = comma ? comma : start + strlen(start);
                while (start < end && isspace((unsigned char)*start))
                        start++;
                len = (size_t)(end - start);
                while (len && isspace((unsigned char)start[len - 1]))
                        len--;
                if (!env_name_valid(start, len)) {
                        snprintf(why, why_size,
                                 "\"%.*s\" is not an environment variable "
                                 "name: expected [A-Za-z_][A-Za-z0-9_]*",
                                 (int)SQ_MIN(len, 64), start);
                        strv_free(names, cnt + 1);
                        return false;
                }
                names        = sq_realloc(names, (cnt + 2) * sizeof(*names));
                names[cnt++] = sq_strndup(start, len);
                names[cnt]   = NULL;
                if (!comma)
                        break;
                start = comma + 1;
        }
        *namesp = names;
        *cntp   = cnt;
        return true;
}

/* Parses a command: a JSON array of strings (["/bin/prog", "-x"]) or
 * words separated by whitespace (no quoting, no expansion: never a
 * shell). NULL-terminated; the caller owns it (strv_free(cnt + 1)). */
static bool argv_parse(const char *value, char ***argvp, size_t *cntp,
                       char *why, size_t why_size) {
        char **argv  = sq_calloc(1, sizeof(*argv));
        size_t cnt   = 0;
        json_t *root = NULL;
        json_error_t jerr;
        bool ok = false;

        while (isspace((unsigned char)*value))
                value++;
        if (*value == '[') {
                size_t i;
                root = json_loads(value, JSON_REJECT_DUPLICATES, &jerr);
                if (!root || !json_is_array(root)) {
                        snprintf(why, why_size,
                                 "not a JSON array of strings: %s",
                                 root ? "not an array" : jerr.text);
                        goto done;
                }
                for (i = 0; i < json_array_size(root); i++) {
                        json_t *item = json_array_get(root, i);
                        const char *str;
                        if (!json_is_string(item) ||
                            strlen(json_string_value(item)) !=
                                json_string_length(item)) {
                                snprintf(why, why_size,
                                         "element %zu is not a string (or "
                                         "holds a NUL)",
                                         i);
                                goto done;
                        }
                        str = json_string_value(item);
                        if (cnt == ARGV_MAX || strlen(str) > 4096) {
                                snprintf(why, why_size,
                                         "more than %d words or a word "
                                         "longer than 4096 bytes",
                                         ARGV_MAX);
                                goto done;
                        }
                        argv = sq_realloc(argv, (cnt + 2) * sizeof(*argv));
                        argv[cnt++] = sq_strdup(str);
                        argv[cnt]   = NULL;
                }
        } else {
                const char *p = value, *start;
                while (*p) {
                        start = p;
                        while (*p && !isspace((unsigned char)*p))
                                p++;
                        if (cnt == ARGV_MAX) {
                                snprintf(why, why_size, "more than %d words",
                                         ARGV_MAX);
                                goto done;
                        }
                        argv = sq_realloc(argv, (cnt + 2) * sizeof(*argv));
                        argv[cnt++] = sq_strndup(start, (size_t)(p - start));
                        argv[cnt]   = NULL;
                        while (isspace((unsigned char)*p))
                                p++;
                }
        }
        if (!cnt || !argv[0][0]) {
                snprintf(why, why_size,
                         "expected a program and its arguments, e.g. "
                         "[\"/usr/bin/python3\", \"worker.py\"]");
                goto done;
        }
        *argvp = argv;
        *cntp  = cnt;
        argv   = NULL;
        ok     = true;
done:
        if (argv)
                strv_free(argv, cnt + 1);
        if (root)
                json_decref(root);
        return ok;
}

/* Sets agent.<name>.env.<VAR> (replacing an earlier value). */
static void agent_env_set(sq_agent_conf_t *agent, const char *var,
                          const char *value) {
        size_t i;
        for (i = 0; i < agent->env_cnt; i++) {
                if (!strcmp(agent->env[i].name, var)) {
                        sq_free(agent->env[i].value);
                        agent->env[i].value = sq_strdup(value);
                        return;
                }
        }
        agent->env =
            sq_realloc(agent->env, (agent->env_cnt + 1) * sizeof(*agent->env));
        agent->env[agent->env_cnt].name  = sq_strdup(var);
        agent->env[agent->env_cnt].value = sq_strdup(value);
        agent->env_cnt++;
}

/* A parsed agent field value, held until it is known to be valid. */
typedef struct agent_value_s {
        const sym_t *kind;
        char **strv;
        size_t strv_cnt;
        int64_t num;
} agent_value_t;

/* Parses @p value for field @p def; false with @p why on a bad value. */
static bool agent_value_parse(const agent_field_t *def, const char *value,
                              agent_value_t *val, char *why, size_t why_size) {
        switch (def->type) {
        case AF_KIND:
                val->kind = sym_find(agent_kind_syms, value);
                if (!val->kind)
                        snprintf(why, why_size,
                                 "expected one of: builtin, exec, pool");
                return val->kind != NULL;
        case AF_HANDLER:
        case AF_PATH:
                if (!string_valid(value, def->min, def->max)) {
                        snprintf(why, why_size,
                                 "expected %lld to %lld characters, none of "
                                 "them control characters",
                                 (long long)def->min, (long long)def->max);
                        return false;
                }
                return true;
        case AF_CAPS:
                return caps_parse(value, &val->strv, &val->strv_cnt, why,
                                  why_size);
        case AF_INT:
        case AF_INT64:
                if (sq_parse_int64(value, def->min, def->max, &val->num) !=
                    SQ_OK) {
                        snprintf(why, why_size,
                                 "expected an integer from %lld to %lld",
                                 (long long)def->min, (long long)def->max);
                        return false;
                }
                return true;
        case AF_ARGV:
                return argv_parse(value, &val->strv, &val->strv_cnt, why,
                                  why_size);
        case AF_NAMES:
                return names_parse(value, &val->strv, &val->strv_cnt, why,
                                   why_size);
        }
        return false;
}

/* Stores a parsed value (taking ownership of its strings). */
static void agent_value_store(sq_agent_conf_t *agent, const agent_field_t *def,
                              const char *value, agent_value_t *val) {
        char *field = (char *)agent + def->offset;
        char *str;
        int ival;

        switch (def->type) {
        case AF_KIND:
                agent->kind = (sq_agent_kind_t)val->kind->value;
                break;
        case AF_HANDLER:
        case AF_PATH:
                memcpy(&str, field, sizeof(str));
                sq_free(str);
                str = sq_strdup(value);
                memcpy(field, &str, sizeof(str));
                break;
        case AF_CAPS:
                caps_free(agent->capabilities, agent->capabilities_cnt);
                agent->capabilities     = val->strv;
                agent->capabilities_cnt = val->strv_cnt;
                val->strv               = NULL;
                break;
        case AF_INT:
                ival = (int)val->num;
                memcpy(field, &ival, sizeof(ival));
                break;
        case AF_INT64:
                memcpy(field, &val->num, sizeof(val->num));
                break;
        case AF_ARGV:
                strv_free(agent->command,
                          agent->command_cnt + (agent->command != NULL));
                agent->command     = val->strv;
                agent->command_cnt = val->strv_cnt;
                val->strv          = NULL;
                break;
        case AF_NAMES:
                strv_free(agent->env_allow,
                          agent->env_allow_cnt + (agent->env_allow != NULL));
                agent->env_allow     = val->strv;
                agent->env_allow_cnt = val->strv_cnt;
                val->strv            = NULL;
                break;
        }
}

/* Appends an agent with the per-agent defaults. */
static sq_agent_conf_t *agent_add(sq_config_t *conf, const char *name,
                                  size_t len) {
        sq_agent_conf_t *agent;
        char why[256];
        size_t f;

        sq_assert(conf->agents_cnt < SQ_CONFIG_MAX_AGENTS);
        conf->agents = sq_realloc(conf->agents, (conf->agents_cnt + 1) *
                                                    sizeof(*conf->agents));
        agent        = &conf->agents[conf->agents_cnt++];
        memset(agent, 0, sizeof(*agent));
        agent->name = sq_strndup(name, len);
        agent->kind = SQ_AGENT_BUILTIN;
        for (f = 0; f < SQ_ARRAY_SIZE(agent_fields); f++) {
                agent_value_t val;
                if (!agent_fields[f].def)
                        continue;
                memset(&val, 0, sizeof(val));
                if (!agent_value_parse(&agent_fields[f], agent_fields[f].def,
                                       &val, why, sizeof(why))) {
                        SQ_LOG(SQ_LOG_CRIT, "CONFIG", "agent.*.%s: %s",
                               agent_fields[f].name, why);
                        sq_assert(!"a built-in agent default is invalid");
                }
                agent_value_store(agent, &agent_fields[f], agent_fields[f].def,
                                  &val);
        }
        return agent;
}

/* "kind, handler, ..., limit.* or pool.*" for error sentences: fields
 * sharing a first word with two others are listed once as "word.*". */
static void agent_fields_list(char *buf, size_t size) {
        size_t f, g, len, plen, same;
        const char *name, *dot;

        buf[0] = '\0';
        for (f = 0; f < SQ_ARRAY_SIZE(agent_fields); f++) {
                name = agent_fields[f].name;
                dot  = strchr(name, '.');
                plen = dot ? (size_t)(dot - name) + 1 : 0;
                for (g = 0, same = 0; plen && g < SQ_ARRAY_SIZE(agent_fields);
                     g++)
                        same += !strncmp(agent_fields[g].name, name, plen);
                len = strlen(buf);
                if (same > 2) {
                        for (g = 0; g < f; g++)
                                if (!strncmp(agent_fields[g].name, name, plen))
                                        break;
                        if (g < f)
                                continue; /* listed already */
                        snprintf(buf + len, size - len, "%s%.*s*",
                                 f ? ", " : "", (int)plen, name);
                } else {
                        snprintf(buf + len, size - len, "%s%s", f ? ", " : "",
                                 name);
                }
        }
        len = strlen(buf);
        snprintf(buf + len, size - len, " or env.<VAR>");
}

static sq_err_t agent_set(sq_config_t *conf, const char *key, const char *value,
                          const char *origin, char *errstr,
                          size_t errstr_size) {
        const char *name = key + strlen("agent.");
        const char *dot  = strchr(name, '.');
        const char *field, *best, *var = NULL;
        const agent_field_t *def = NULL;
        sq_agent_conf_t *agent;
        agent_value_t val;
        size_t namelen, f = 0;
        char list[512];
        char why[256];
        sq_err_t err = SQ_ERR_CONFIG;

        memset(&val, 0, sizeof(val));
        agent_fields_list(list, sizeof(list));
        if (!dot) {
                config_error(errstr, errstr_size, origin,
                             "\"%s\" is not an agent key: expected "
                             "agent.<name>.<field> with field %s",
                             key, list);
                goto done;
        }
        namelen = (size_t)(dot - name);
        field   = dot + 1;
        if (!agent_name_valid(name, namelen)) {
                config_error(errstr, errstr_size, origin,
                             "%s: invalid agent name \"%.*s\": expected 1 to "
                             "%d characters from [A-Za-z0-9_-]",
                             key, (int)SQ_MIN(namelen, 100), name,
                             AGENT_NAME_MAX);
                goto done;
        }
        if (!strncmp(field, "env.", 4) && strcmp(field, "env.allow")) {
                var = field + 4;
                if (!env_name_valid(var, strlen(var))) {
                        config_error(errstr, errstr_size, origin,
                                     "%s: \"%s\" is not an environment "
                                     "variable name: expected "
                                     "[A-Za-z_][A-Za-z0-9_]*",
                                     key, var);
                        goto done;
                }
                if (strlen(value) > ENV_VALUE_MAX) {
                        config_error(errstr, errstr_size, origin,
                                     "%s: value longer than %d bytes", key,
                                     ENV_VALUE_MAX);
                        goto done;
                }
        } else {
                for (f = 0; f < SQ_ARRAY_SIZE(agent_fields); f++) {
                        if (!strcmp(field, agent_fields[f].name))
                                break;
                }
                if (f == SQ_ARRAY_SIZE(agent_fields)) {
                        best = suggest(field, &agent_fields[0].name,
                                       SQ_ARRAY_SIZE(agent_fields),
                                       sizeof(agent_fields[0]));
                        config_error(errstr, errstr_size, origin,
                                     "%s: unknown agent field \"%s\" "
                                     "(expected %s)%s%s%s",
                                     key, field, list,
                                     best ? "; did you mean " : "",
                                     best ? best : "", best ? "?" : "");
                        goto done;
                }
                def = &agent_fields[f];
                /* Parse first: a bad value must not leave a half-declared
                 * agent. */
                if (!agent_value_parse(def, value, &val, why, sizeof(why))) {
                        config_error(errstr, errstr_size, origin, "%s=%s: %s",
                                     key, value, why);
                        goto done;
                }
        }

        agent = agent_find(conf, name, namelen);
        if (!agent) {
                if (conf->agents_cnt == SQ_CONFIG_MAX_AGENTS) {
                        config_error(errstr, errstr_size, origin,
                                     "%s: too many agents: at most %d may be "
                                     "declared",
                                     key, SQ_CONFIG_MAX_AGENTS);
                        goto done;
                }
                agent = agent_add(conf, name, namelen);
        }
        if (var) {
                agent_env_set(agent, var, value);
                agent->set_fields |= UINT64_C(1) << AGENT_ENV_BIT;
        } else {
                agent_value_store(agent, def, value, &val);
                agent->set_fields |= UINT64_C(1) << f;
        }
        err = SQ_OK;
done:
        /* Capability lists have no NULL terminator; the others do. */
        if (val.strv)
                strv_free(val.strv,
                          val.strv_cnt + (def && def->type != AF_CAPS));
        return err;
}

static sq_err_t flag_set(sq_config_t *conf, const char *key, const char *value,
                         const char *origin, char *errstr, size_t errstr_size) {
        const char *name = key + strlen("flag.");
        const char *names[SQ_FLAG_CNT], *best;
        char why[256];
        int flag, bp, i;

        if ((flag = sq_flag_find(name)) < 0) {
                for (i = 0; i < SQ_FLAG_CNT; i++)
                        names[i] = sq_flag_name((sq_flag_t)i);
                best = suggest(name, names, SQ_FLAG_CNT, sizeof(names[0]));
                config_error(errstr, errstr_size, origin,
                             "%s: unknown feature flag \"%s\" (known: "
                             "ranked_selection, work_stealing)%s%s%s",
                             key, name, best ? "; did you mean " : "",
                             best ? best : "", best ? "?" : "");
                return SQ_ERR_CONFIG;
        }
        if (sq_flag_parse(value, &bp, why, sizeof(why)) != SQ_OK) {
                config_error(errstr, errstr_size, origin, "%s=%s: %s", key,
                             value, why);
                return SQ_ERR_CONFIG;
        }
        conf->flag_rollout[flag] = bp;
        return SQ_OK;
}

sq_config_t *sq_config_new(void) {
        sq_config_t *conf = sq_calloc(1, sizeof(*conf));
        char host[256];
        char id[300];
        char errstr[512];
        size_t i;

        for (i = 0; i < SQ_ARRAY_SIZE(key_defs); i++) {
                if (!key_defs[i].def)
                        continue;
                if (sq_config_set(conf, key_defs[i].name, key_defs[i].def,
                                  "default", errstr, sizeof(errstr)) != SQ_OK) {
                        SQ_LOG(SQ_LOG_CRIT, "CONFIG", "%s", errstr);
                        sq_assert(!"a built-in default is invalid");
                }
        }

        for (i = 0; i < SQ_FLAG_CNT; i++)
                conf->flag_rollout[i] = sq_flag_default((sq_flag_t)i);

        if (gethostname(host, sizeof(host)) != 0 || !host[0])
                sq_strlcpy(host, "swarmq", sizeof(host));
        host[sizeof(host) - 1] = '\0';
        snprintf(id, sizeof(id), "%s-%ld", host, (long)getpid());
        conf->instance_id = sq_strdup(id);
        return conf;
}

void sq_config_destroy(sq_config_t *conf) {
        char *str;
        size_t i;

        if (!conf)
                return;
        for (i = 0; i < SQ_ARRAY_SIZE(key_defs); i++) {
                if (key_defs[i].type != KEY_STRING &&
                    key_defs[i].type != KEY_TOPIC)
                        continue;
                memcpy(&str, (char *)conf + key_defs[i].offset, sizeof(str));
                sq_free(str);
        }
        for (i = 0; i < conf->kafka_cnt; i++) {
                sq_free(conf->kafka[i].name);
                sq_free(conf->kafka[i].value);
        }
        sq_free(conf->kafka);
        for (i = 0; i < conf->agents_cnt; i++)
                agent_conf_term(&conf->agents[i]);
        sq_free(conf->agents);
        sq_free(conf);
}

sq_err_t sq_config_set(sq_config_t *conf, const char *key, const char *value,
                       const char *origin, char *errstr, size_t errstr_size) {
        const key_def_t *def;
        char expect[256];

        sq_assert(conf && key && value);
        if (!strncmp(key, "kafka.", strlen("kafka.")))
                return kafka_set(conf, key, value, origin, errstr, errstr_size);
        if (!strncmp(key, "agent.", strlen("agent.")))
                return agent_set(conf, key, value, origin, errstr, errstr_size);
        if (!strncmp(key, "flag.", strlen("flag.")))
                return flag_set(conf, key, value, origin, errstr, errstr_size);
        def = key_find(key);
        if (!def)
                return unknown_key(key, origin, errstr, errstr_size);
        if (!key_apply(conf, def, value)) {
                key_expect(def, expect, sizeof(expect));
                config_error(errstr, errstr_size, origin, "%s=%s: %s", key,
                             value, expect);
                return SQ_ERR_CONFIG;
        }
        return SQ_OK;
}

/* Trims leading and trailing whitespace in place; returns the start. */
static char *trim(char *str) {
        char *end;

        while (isspace((unsigned char)*str))
                str++;
        end = str + strlen(str);
        while (end > str && isspace((unsigned char)end[-1]))
                end--;
        *end = '\0';
        return str;
}

sq_err_t sq_config_load_file(sq_config_t *conf, const char *path, char *errstr,
                             size_t errstr_size) {
        char *line   = NULL;
        char *origin = NULL;
        FILE *fp     = NULL;
        size_t origin_size, len;
        char *key, *value, *eq;
        char errbuf[128];
        int lineno   = 0;
        sq_err_t err = SQ_ERR_CONFIG;

        fp = fopen(path, "r");
        if (!fp) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot open configuration file \"%s\": %s", path,
                              strerror_r(errno, errbuf, sizeof(errbuf)));
                err = SQ_ERR_IO;
                goto done;
        }
        line        = sq_malloc(LINE_MAX_LEN + 2);
        origin_size = strlen(path) + 16;
        origin      = sq_malloc(origin_size);

        while (fgets(line, LINE_MAX_LEN + 2, fp)) {
                lineno++;
                snprintf(origin, origin_size, "%s:%d", path, lineno);
                len = strlen(line);
                if (len > LINE_MAX_LEN && line[len - 1] != '\n') {
                        config_error(errstr, errstr_size, origin,
                                     "line longer than %d bytes", LINE_MAX_LEN);
                        goto done;
                }
                key = trim(line);
                if (!*key || *key == '#' || *key == '!')
                        continue;
                eq = strchr(key, '=');
                if (!eq) {
                        config_error(errstr, errstr_size, origin,
                                     "expected key=value, got \"%.100s\"", key);
                        goto done;
                }
                *eq   = '\0';
                value = trim(eq + 1);
                key   = trim(key);
                if (!*key) {
                        config_error(errstr, errstr_size, origin,
                                     "expected key=value, got no key before "
                                     "'='");
                        goto done;
                }
                err = sq_config_set(conf, key, value, origin, errstr,
                                    errstr_size);
                if (err != SQ_OK)
                        goto done;
                err = SQ_ERR_CONFIG;
        }
        if (ferror(fp)) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot read configuration file \"%s\": %s", path,
                              strerror_r(errno, errbuf, sizeof(errbuf)));
                err = SQ_ERR_IO;
                goto done;
        }
        err = SQ_OK;
done:
        if (fp)
                fclose(fp);
        sq_free(origin);
        sq_free(line);
        return err;
}

sq_err_t sq_config_load_env(sq_config_t *conf, char *const *envp, char *errstr,
                            size_t errstr_size) {
        static const char prefix[] = "SWARMQ_";
        const size_t plen          = sizeof(prefix) - 1;
        char *key                  = NULL;
        char *origin               = NULL;
        const char *var, *eq, *p;
        size_t namelen, k;
        sq_err_t err = SQ_OK;

        for (; envp && *envp; envp++) {
                var = *envp;
                eq  = strchr(var, '=');
                if (!eq || strncmp(var, prefix, plen) ||
                    (size_t)(eq - var) < plen)
                        continue;
                namelen = (size_t)(eq - var);
                if (namelen == strlen("SWARMQ_CONFIG") &&
                    !strncmp(var, "SWARMQ_CONFIG", namelen))
                        continue;

                /* SWARMQ_A_B__C -> a.b_c */
                key = sq_malloc(namelen - plen + 1);
                k   = 0;
                for (p = var + plen; p < eq; p++) {
                        if (*p == '_' && p + 1 < eq && p[1] == '_') {
                                key[k++] = '_';
                                p++;
                        } else if (*p == '_') {
                                key[k++] = '.';
                        } else {
                                key[k++] = (char)tolower((unsigned char)*p);
                        }
                }
                key[k] = '\0';
                origin = sq_malloc(namelen + 5);
                snprintf(origin, namelen + 5, "env %.*s", (int)namelen, var);

                err = sq_config_set(conf, key, eq + 1, origin, errstr,
                                    errstr_size);
                sq_free(key);
                sq_free(origin);
                key    = NULL;
                origin = NULL;
                if (err != SQ_OK)
                        break;
        }
        return err;
}

/* Fills handler and capability defaults and checks one agent. */
static const char *kinds_name(unsigned kinds) {
        switch (kinds) {
        case KIND_B:
                return "builtin";
        case KIND_E:
                return "exec";
        case KIND_P:
                return "pool";
        default:
                return "exec and pool";
        }
}

/* Checks an exec or pool agent. */
static sq_err_t agent_finalize_process(sq_agent_conf_t *agent, char *errstr,
                                       size_t errstr_size) {
        const char *kind = sym_name(agent_kind_syms, (int)agent->kind);

        if (!agent->command) {
                sq_errstr_set(errstr, errstr_size,
                              "agent.%s.kind=%s needs agent.%s.command: the "
                              "program to run and its arguments, e.g. "
                              "[\"/usr/bin/python3\", \"worker.py\"]",
                              agent->name, kind, agent->name);
                return SQ_ERR_CONFIG;
        }
        if (agent->kind == SQ_AGENT_POOL && agent->pool_min > agent->pool_max) {
                sq_errstr_set(errstr, errstr_size,
                              "agent.%s.pool.min=%d must not be more than "
                              "agent.%s.pool.max=%d",
                              agent->name, agent->pool_min, agent->name,
                              agent->pool_max);
                return SQ_ERR_CONFIG;
        }
        if (agent->kind == SQ_AGENT_POOL &&
            agent->pool_backoff_ms > agent->pool_backoff_max_ms) {
                sq_errstr_set(errstr, errstr_size,
                              "agent.%s.pool.backoff.ms=%lld must not be "
                              "more than agent.%s.pool.backoff.max.ms=%lld",
                              agent->name, (long long)agent->pool_backoff_ms,
                              agent->name,
                              (long long)agent->pool_backoff_max_ms);
                return SQ_ERR_CONFIG;
        }
        if (!agent->capabilities_cnt) {
                agent->capabilities     = sq_malloc(sizeof(char *));
                agent->capabilities[0]  = sq_strdup(agent->name);
                agent->capabilities_cnt = 1;
        }
        return SQ_OK;
}

static sq_err_t agent_finalize(sq_agent_conf_t *agent, char *errstr,
                               size_t errstr_size) {
        unsigned kindbit = 1u << agent->kind;
        const char *kind = sym_name(agent_kind_syms, (int)agent->kind);
        size_t f;

        for (f = 0; f <= SQ_ARRAY_SIZE(agent_fields); f++) {
                unsigned kinds = f < SQ_ARRAY_SIZE(agent_fields)
                                     ? agent_fields[f].kinds
                                     : KIND_EP;
                if (!(agent->set_fields & (UINT64_C(1) << f)) ||
                    (kinds & kindbit))
                        continue;
                sq_errstr_set(errstr, errstr_size,
                              "agent.%s.%s is set but agent.%s.kind=%s: "
                              "that field is for %s agents only",
                              agent->name,
                              f < SQ_ARRAY_SIZE(agent_fields)
                                  ? agent_fields[f].name
                                  : "env.<VAR>",
                              agent->name, kind, kinds_name(kinds));
                return SQ_ERR_CONFIG;
        }
        if (agent->kind != SQ_AGENT_BUILTIN)
                return agent_finalize_process(agent, errstr, errstr_size);
        if (!agent->handler) {
                if (!builtin_handler_valid(agent->name)) {
                        sq_errstr_set(
                            errstr, errstr_size,
                            "agent.%s.handler is not set and \"%s\" "
                            "is not a builtin handler name: set "
                            "agent.%s.handler to one of " BUILTIN_HANDLERS_LIST,
                            agent->name, agent->name, agent->name);
                        return SQ_ERR_CONFIG;
                }
                agent->handler = sq_strdup(agent->name);
        }
        if (!builtin_handler_valid(agent->handler)) {
                sq_errstr_set(errstr, errstr_size,
                              "agent.%s.handler=%s: unknown builtin handler; "
                              "expected one of " BUILTIN_HANDLERS_LIST,
                              agent->name, agent->handler);
                return SQ_ERR_CONFIG;
        }
        if (!agent->capabilities_cnt) {
                agent->capabilities     = sq_malloc(sizeof(char *));
                agent->capabilities[0]  = sq_strdup(agent->handler);
                agent->capabilities_cnt = 1;
        }
        return SQ_OK;
}

sq_err_t sq_config_finalize(sq_config_t *conf, char *errstr,
                            size_t errstr_size) {
        const char *const *topics[6];
        const char *names[6];
        sq_agent_conf_t *agent;
        size_t i, j, n = 0;
        sq_err_t err = SQ_ERR_CONFIG;

        if (conf->executor_critical_slots >= conf->executor_threads) {
                sq_errstr_set(errstr, errstr_size,
                              "executor.critical.reserved=%d must be less "
                              "than executor.threads=%d: at least one "
                              "executor thread must serve non-critical tasks",
                              conf->executor_critical_slots,
                              conf->executor_threads);
                goto done;
        }
        if (conf->commit_metadata_max > 0 &&
            conf->commit_metadata_max < SQ_OFFSETS_MAP_MIN_BUDGET) {
                sq_errstr_set(errstr, errstr_size,
                              "commit.metadata.max.bytes=%d is too small to "
                              "hold a completed-offset map: use 0 to turn "
                              "the map off, or at least %d",
                              conf->commit_metadata_max,
                              SQ_OFFSETS_MAP_MIN_BUDGET);
                goto done;
        }
        if (conf->admission_low >= conf->admission_high) {
                sq_errstr_set(errstr, errstr_size,
                              "admission.low.mark=%d must be less than "
                              "admission.high.mark=%d",
                              conf->admission_low, conf->admission_high);
                goto done;
        }
        if (!*conf->http_tls_cert != !*conf->http_tls_key) {
                sq_errstr_set(
                    errstr, errstr_size,
                    "http.tls.cert and http.tls.key go together: "
                    "%s is set, %s is not",
                    *conf->http_tls_cert ? "http.tls.cert" : "http.tls.key",
                    *conf->http_tls_cert ? "http.tls.key" : "http.tls.cert");
                goto done;
        }
        if (*conf->http_admin_token && *conf->http_admin_token_file) {
                sq_errstr_set(errstr, errstr_size,
                              "http.admin.token and http.admin.token.file "
                              "are both set: use one");
                goto done;
        }

        for (i = 0; i < SQ_ARRAY_SIZE(key_defs); i++) {
                if (key_defs[i].type != KEY_TOPIC)
                        continue;
                sq_assert(n < SQ_ARRAY_SIZE(topics));
                names[n]  = key_defs[i].name;
                topics[n] = (const char *const *)((const char *)conf +
                                                  key_defs[i].offset);
                n++;
        }
        for (i = 0; i < n; i++) {
                for (j = i + 1; j < n; j++) {
                        if (strcmp(*topics[i], *topics[j]))
                                continue;
                        sq_errstr_set(errstr, errstr_size,
                                      "%s and %s are both \"%s\": each "
                                      "topic key needs its own topic",
                                      names[i], names[j], *topics[i]);
                        goto done;
                }
        }

        if (conf->embedded_broker &&
            sq_config_kafka_get(conf, "bootstrap.servers")) {
                sq_errstr_set(errstr, errstr_size,
                              "embedded.broker=true and "
                              "kafka.bootstrap.servers=%s are both set: "
                              "use the embedded broker or a real cluster, "
                              "not both",
                              sq_config_kafka_get(conf, "bootstrap.servers"));
                goto done;
        }

        if (conf->agents_cnt == 0) {
                for (i = 0; i < SQ_ARRAY_SIZE(builtin_handlers); i++) {
                        agent = agent_add(conf, builtin_handlers[i],
                                          strlen(builtin_handlers[i]));
                        agent->concurrency = conf->executor_threads;
                        /* Demo agents: `fail` fails on purpose, so no
                         * breaker would ever stay closed for it. */
                        agent->breaker_failures = 0;
                }
        }
        for (i = 0; i < conf->agents_cnt; i++) {
                err = agent_finalize(&conf->agents[i], errstr, errstr_size);
                if (err != SQ_OK)
                        goto done;
        }
        err = SQ_OK;
done:
        return err;
}

const char *sq_config_kafka_get(const sq_config_t *conf, const char *name) {
        size_t i;
        for (i = 0; i < conf->kafka_cnt; i++) {
                if (!strcmp(conf->kafka[i].name, name))
                        return conf->kafka[i].value;
        }
        return NULL;
}

/* Keys whose values must never be shown. */
static bool key_is_secret(const char *key) {
        static const char *const words[] = {
            "password", "secret", "sasl.jaas",  "sasl.oauthbearer.config",
            "ssl.key",  "token",  "credential",
        };
        size_t i;

        for (i = 0; i < SQ_ARRAY_SIZE(words); i++) {
                if (strcasestr(key, words[i]))
                        return true;
        }
        return false;
}

static void dump_emit(void (*emit)(void *opaque, const char *key,
                                   const char *value),
                      void *opaque, const char *key, const char *value) {
        /* An unset secret shows as unset, not as a mask of nothing. */
        emit(opaque, key, key_is_secret(key) && *value ? "***" : value);
}

/* Joins @p cnt strings with @p sep (caller frees). */
static char *strv_join(char *const *strv, size_t cnt, const char *sep) {
        size_t len = 1, i;
        char *out;

        for (i = 0; i < cnt; i++)
                len += strlen(strv[i]) + strlen(sep);
        out    = sq_malloc(len);
        out[0] = '\0';
        for (i = 0; i < cnt; i++) {
                size_t used = strlen(out);
                snprintf(out + used, len - used, "%s%s", i ? sep : "", strv[i]);
        }
        return out;
}

/* Formats an agent field: @p buf, a string of the config, a new string
 * (caller frees: the result is neither @p buf nor NULL nor a config
 * string for AF_CAPS, AF_ARGV, AF_NAMES), or NULL when it has no value. */
static char *agent_field_format(const sq_agent_conf_t *agent,
                                const agent_field_t *def, char *buf,
                                size_t size) {
        const char *field = (const char *)agent + def->offset;
        json_t *arr;
        char *str;
        int64_t num;
        size_t i;
        int ival;

        switch (def->type) {
        case AF_KIND:
                snprintf(buf, size, "%s",
                         sym_name(agent_kind_syms, (int)agent->kind));
                return buf;
        case AF_HANDLER:
        case AF_PATH:
                memcpy(&str, field, sizeof(str));
                return str ? sq_strdup(str) : NULL;
        case AF_CAPS:
                if (!agent->capabilities_cnt)
                        return NULL;
                return strv_join(agent->capabilities, agent->capabilities_cnt,
                                 ",");
        case AF_INT:
                memcpy(&ival, field, sizeof(ival));
                snprintf(buf, size, "%d", ival);
                return buf;
        case AF_INT64:
                memcpy(&num, field, sizeof(num));
                snprintf(buf, size, "%lld", (long long)num);
                return buf;
        case AF_ARGV:
                if (!agent->command)
                        return NULL;
                arr = json_array();
                for (i = 0; i < agent->command_cnt; i++)
                        json_array_append_new(arr,
                                              json_string(agent->command[i]));
                str = json_dumps(arr, JSON_COMPACT);
                json_decref(arr);
                sq_assert(str);
                {
                        /* json_dumps() memory is jansson's: copy it. */
                        char *copy = sq_strdup(str);
                        free(str);
                        return copy;
                }
        case AF_NAMES:
                return strv_join(agent->env_allow, agent->env_allow_cnt, ",");
        }
        return NULL;
}

void sq_config_dump(const sq_config_t *conf,
                    void (*emit)(void *opaque, const char *key,
                                 const char *value),
                    void *opaque) {
        const sq_agent_conf_t *agent;
        char key[KAFKA_NAME_MAX + 32];
        char buf[64];
        char *value;
        size_t i, j, f;

        for (i = 0; i < SQ_ARRAY_SIZE(key_defs); i++)
                dump_emit(emit, opaque, key_defs[i].name,
                          key_format(conf, &key_defs[i], buf, sizeof(buf)));

        for (i = 0; i < SQ_FLAG_CNT; i++) {
                snprintf(key, sizeof(key), "flag.%s",
                         sq_flag_name((sq_flag_t)i));
                dump_emit(
                    emit, opaque, key,
                    sq_flag_format(conf->flag_rollout[i], buf, sizeof(buf)));
        }

        for (i = 0; i < conf->kafka_cnt; i++) {
                snprintf(key, sizeof(key), "kafka.%s", conf->kafka[i].name);
                dump_emit(emit, opaque, key, conf->kafka[i].value);
        }

        for (i = 0; i < conf->agents_cnt; i++) {
                agent = &conf->agents[i];
                for (f = 0; f < SQ_ARRAY_SIZE(agent_fields); f++) {
                        if (!(agent_fields[f].kinds & (1u << agent->kind)))
                                continue;
                        value = agent_field_format(agent, &agent_fields[f], buf,
                                                   sizeof(buf));
                        if (!value)
                                continue; /* unset, no default */
                        snprintf(key, sizeof(key), "agent.%s.%s", agent->name,
                                 agent_fields[f].name);
                        dump_emit(emit, opaque, key, value);
                        if (value != buf)
                                sq_free(value);
                }
                for (j = 0; j < agent->env_cnt; j++) {
                        snprintf(key, sizeof(key), "agent.%s.env.%s",
                                 agent->name, agent->env[j].name);
                        dump_emit(emit, opaque, key, agent->env[j].value);
                }
        }
}
