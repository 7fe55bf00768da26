/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_keys.c: the configuration key table: every known key with its
 * value type, range, field in sq_config_t, default, reloadability, scope
 * and help line; parsing, describing and formatting a key's value.
 *
 * DESIGN
 *   One row per key is the one place each fact about a key lives: the
 *   setter parses by its type and range, sq_config_new() applies its
 *   default through the same setter (a default that breaks its own range
 *   trips an assertion), the dump walks the rows in order, the reload
 *   asks sq_config_key_reloadable(), and the unit tests check
 *   docs/configuration.md (defaults, the reloadable keys, the group-wide
 *   keys) against the rows. Values are parsed into locals first and stored
 *   only when valid, so a rejected value leaves the config unchanged. The
 *   table is constant: lookups are safe from any thread.
 */
#include "config_int.h"
#include "log.h"
#include "topics.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const sq_config_sym_t ordering_syms[] = {
    {"unordered", SQ_ORDERING_UNORDERED},
    {"key", SQ_ORDERING_KEY},
    {"partition", SQ_ORDERING_PARTITION},
    {NULL, 0},
};
static const sq_config_sym_t events_publish_syms[] = {
    {"all", SQ_EVENTS_ALL},
    {"terminal", SQ_EVENTS_TERMINAL},
    {"none", SQ_EVENTS_NONE},
    {NULL, 0},
};
static const sq_config_sym_t output_format_syms[] = {
    {"avro", SQ_OUTPUT_AVRO},
    {"json", SQ_OUTPUT_JSON},
    {NULL, 0},
};
static const sq_config_sym_t handoff_syms[] = {
    {"finished", SQ_HANDOFF_FINISHED},
    {"acknowledged", SQ_HANDOFF_ACKNOWLEDGED},
    {NULL, 0},
};

static const sq_config_sym_t when_open_syms[] = {
    {"wait", SQ_WHEN_OPEN_WAIT},
    {"fail", SQ_WHEN_OPEN_FAIL},
    {NULL, 0},
};

static const sq_config_sym_t jitter_syms[] = {
    {"full", SQ_JITTER_FULL},
    {"equal", SQ_JITTER_EQUAL},
    {"none", SQ_JITTER_NONE},
    {NULL, 0},
};

static const sq_config_sym_t guarantee_syms[] = {
    {"at_least_once", SQ_GUARANTEE_AT_LEAST_ONCE},
    {"exactly_once", SQ_GUARANTEE_EXACTLY_ONCE},
    {NULL, 0},
};

static const sq_config_sym_t port_syms[] = {
    {"auto", -1},
    {"off", 0},
    {NULL, 0},
};

/* Canonical names for dump, indexed by sq_log_level_t. */
static const char *const log_level_names[] = {
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

/* Stored through memcpy(): the enum must have int's size. */
_Static_assert(sizeof(sq_ordering_t) == sizeof(int), "enum is int-sized");
_Static_assert(sizeof(sq_when_open_t) == sizeof(int), "enum is int-sized");
_Static_assert(sizeof(sq_output_format_t) == sizeof(int), "enum is int-sized");
_Static_assert(sizeof(sq_jitter_t) == sizeof(int), "enum is int-sized");
_Static_assert(sizeof(sq_guarantee_t) == sizeof(int), "enum is int-sized");

#define OFF(field) offsetof(sq_config_t, field)

/* The table's reload and scope columns. */
#define RELOAD   true  /* a SIGHUP reload applies it at once */
#define RESTART  false /* a change waits for a restart */
#define INSTANCE SQ_CONFIG_SCOPE_INSTANCE
#define GROUP    SQ_CONFIG_SCOPE_GROUP

/* Known keys in dump and documentation order. */
const sq_config_key_t sq_config_keys[] = {
    {"instance.id", SQ_KEY_STRING, 1, 255, OFF(instance_id), NULL, NULL,
     RESTART, INSTANCE,
     "This instance's name in results, events, metrics and logs."},
    {"group.id", SQ_KEY_STRING, 1, 255, OFF(group_id), "swarmq", NULL, RESTART,
     GROUP, "Kafka consumer group shared by all instances."},
    {"topic.tasks", SQ_KEY_TOPIC, 1, 249, OFF(topic_tasks),
     SQ_TOPIC_DEFAULT_TASKS, NULL, RESTART, GROUP,
     "Topic upstream producers write tasks to."},
    {"topic.critical", SQ_KEY_TOPIC, 1, 249, OFF(topic_critical),
     SQ_TOPIC_DEFAULT_CRITICAL, NULL, RESTART, GROUP,
     "Topic of CRITICAL tasks (fast lane)."},
    {"topic.retry", SQ_KEY_TOPIC, 1, 249, OFF(topic_retry),
     SQ_TOPIC_DEFAULT_RETRY, NULL, RESTART, GROUP,
     "Topic failed attempts are retried from."},
    {"topic.dlt", SQ_KEY_TOPIC, 1, 249, OFF(topic_dlt), SQ_TOPIC_DEFAULT_DLT,
     NULL, RESTART, GROUP,
     "Dead-letter topic for tasks out of attempts or undecodable."},
    {"topic.results", SQ_KEY_TOPIC, 1, 249, OFF(topic_results),
     SQ_TOPIC_DEFAULT_RESULTS, NULL, RESTART, GROUP,
     "Topic one result per task is written to."},
    {"topic.events", SQ_KEY_TOPIC, 1, 249, OFF(topic_events),
     SQ_TOPIC_DEFAULT_EVENTS, NULL, RESTART, GROUP,
     "Topic task lifecycle events are written to."},
    {"schema.registry.url", SQ_KEY_STRING, 0, 4096, OFF(schema_registry_url),
     "", NULL, RESTART, GROUP,
     "Confluent-compatible Schema Registry: register and frame with its "
     "ids; empty = the embedded catalog."},
    {"schema.registry.basic.auth.user.info", SQ_KEY_STRING, 0, 4096,
     OFF(schema_registry_user_info), "", NULL, RESTART, INSTANCE,
     "user:password for the registry's HTTP basic auth (masked)."},
    {"schema.registry.ssl.ca.location", SQ_KEY_STRING, 0, 4096,
     OFF(schema_registry_ca_location), "", NULL, RESTART, INSTANCE,
     "PEM CA file to verify an https registry; empty = system CAs."},
    {"schema.registry.timeout.ms", SQ_KEY_INT, 100, 600000,
     OFF(schema_registry_timeout_ms), "10000", NULL, RESTART, INSTANCE,
     "Deadline of one registry request."},
    {"schema.registry.cache.max", SQ_KEY_INT, 1, 100000,
     OFF(schema_registry_cache_max), "1000", NULL, RESTART, INSTANCE,
     "Schemas kept in memory by id."},
    {"output.format", SQ_KEY_ENUM, 0, 0, OFF(output_format), "avro",
     output_format_syms, RESTART, GROUP,
     "How results and events are written: avro (Confluent-framed) or json "
     "(one object per record)."},
    {"topic.control", SQ_KEY_TOPIC, 1, 249, OFF(topic_control),
     SQ_TOPIC_DEFAULT_CONTROL, NULL, RESTART, GROUP,
     "Topic of control records (cancellations) every instance reads."},
    {"cancel.ttl.ms", SQ_KEY_INT64, 1000, 604800000, OFF(cancel_ttl_ms),
     "3600000", NULL, RESTART, INSTANCE,
     "How long a cancelled task id is remembered (a task that comes later "
     "is still cancelled)."},
    {"cancel.max.entries", SQ_KEY_INT, 1, 10000000, OFF(cancel_max_entries),
     "100000", NULL, RESTART, INSTANCE,
     "Most cancelled task ids remembered at once (the oldest go first)."},
    {"topic.schedules", SQ_KEY_TOPIC, 1, 249, OFF(topic_schedules),
     SQ_TOPIC_DEFAULT_SCHEDULES, NULL, RESTART, GROUP,
     "One-partition topic of the schedules' last fired ticks; its owner "
     "fires them."},
    {"schedules.late.ms", SQ_KEY_INT64, 0, 86400000, OFF(schedules_late_ms),
     "5000", NULL, RESTART, GROUP,
     "A tick fired later than this is missed: schedule.<name>.missed "
     "decides."},
    {"schedules.catchup.max", SQ_KEY_INT, 0, 1000000,
     OFF(schedules_catchup_max), "1000", NULL, RESTART, GROUP,
     "Most missed ticks a missed=all schedule fires (the newest)."},
    {"topic.workflows", SQ_KEY_TOPIC, 1, 249, OFF(topic_workflows),
     SQ_TOPIC_DEFAULT_WORKFLOWS, NULL, RESTART, GROUP,
     "Compacted topic of the workflows' state, a workflow's records on one "
     "partition; its owner runs the workflow."},
    {"workflows.enable", SQ_KEY_BOOL, 0, 1, OFF(workflows_enable), "false",
     NULL, RESTART, GROUP,
     "Run workflows: own partitions of topic.workflows and report the "
     "endings of workflow tasks there."},
    {"events.publish", SQ_KEY_ENUM, 0, 0, OFF(events_publish), "all",
     events_publish_syms, RESTART, INSTANCE,
     "Which events go to topic.events: all, terminal (each task's last "
     "event and instance events) or none."},
    {"executor.threads", SQ_KEY_INT, 1, 1024, OFF(executor_threads), "4", NULL,
     RESTART, INSTANCE, "Executor threads running tasks."},
    {"executor.critical.reserved", SQ_KEY_INT, 0, 1023,
     OFF(executor_critical_slots), "1", NULL, RESTART, INSTANCE,
     "Executor threads kept for CRITICAL tasks; less than "
     "executor.threads."},
    {"admission.high.mark", SQ_KEY_INT, 1, 10000000, OFF(admission_high),
     "10000", NULL, RESTART, INSTANCE,
     "Tasks in memory at which intake pauses."},
    {"admission.low.mark", SQ_KEY_INT, 1, 10000000, OFF(admission_low), "5000",
     NULL, RESTART, INSTANCE,
     "Tasks in memory at which intake resumes; less than "
     "admission.high.mark."},
    {"admission.critical.high.mark", SQ_KEY_INT, 1, 10000000,
     OFF(critical_high), "1000", NULL, RESTART, INSTANCE,
     "CRITICAL tasks in memory at which the fast lane pauses."},
    {"scheduler.aging.ms", SQ_KEY_INT64, 1, 3600000, OFF(aging_ms), "500", NULL,
     RESTART, INSTANCE,
     "Wait after which a queued task is promoted one priority."},
    {"ordering", SQ_KEY_ENUM, 0, 0, OFF(ordering), "unordered", ordering_syms,
     RESTART, GROUP,
     "unordered, key (one task per key at a time) or partition."},
    {"ordering.handoff", SQ_KEY_ENUM, 0, 0, OFF(ordering_handoff), "finished",
     handoff_syms, RESTART, INSTANCE,
     "When the next task of a key starts: finished (its previous task "
     "finished) or acknowledged (its previous task's records acknowledged "
     "by the broker)."},
    {"task.default.timeout.ms", SQ_KEY_INT64, 0, 604800000,
     OFF(default_timeout_ms), "60000", NULL, RESTART, INSTANCE,
     "Deadline for tasks that set none; 0 = none."},
    {"breaker.when.open", SQ_KEY_ENUM, 0, 0, OFF(breaker_when_open), "wait",
     when_open_syms, RELOAD, INSTANCE,
     "When every capable agent's breaker is open: wait (park until one "
     "goes half-open) or fail (FAILED, \"no healthy agent\")."},
    {"commit.interval.ms", SQ_KEY_INT64, 1, 3600000, OFF(commit_interval_ms),
     "1000", NULL, RESTART, INSTANCE,
     "How often completed offsets are committed."},
    {"lag.refresh.interval.ms", SQ_KEY_INT64, 0, 3600000,
     OFF(lag_refresh_interval_ms), "5000", NULL, RESTART, INSTANCE,
     "How often the high watermarks of owned partitions are queried for "
     "the lag; 0 = only what fetches report."},
    {"shutdown.drain.timeout.ms", SQ_KEY_INT64, 0, 3600000,
     OFF(drain_timeout_ms), "30000", NULL, RESTART, INSTANCE,
     "How long shutdown waits for running tasks."},
    {"shutdown.close.timeout.ms", SQ_KEY_INT64, 0, 3600000,
     OFF(close_timeout_ms), "15000", NULL, RESTART, INSTANCE,
     "How long the rest of a stop may take after the drain: the last "
     "offset commits, leaving the group, the last deliveries."},
    {"memory.limit.bytes", SQ_KEY_INT64, 0, INT64_C(1) << 50,
     OFF(memory_limit_bytes), "0", NULL, RESTART, INSTANCE,
     "Resident memory at which intake stops; it slows from 90%, resumes "
     "below 80%; 0 = no limit."},
    {"commit.metadata.max.bytes", SQ_KEY_INT, 0, 1048576,
     OFF(commit_metadata_max), "4096", NULL, RESTART, INSTANCE,
     "Budget of the completed-offset map in each commit's metadata; 0 = "
     "no map."},
    {"dedup.max.entries", SQ_KEY_INT, 0, 10000000, OFF(dedup_max_entries),
     "100000", NULL, RESTART, INSTANCE,
     "Succeeded task ids remembered to drop duplicates; 0 = no dedup."},
    {"dedup.ttl.ms", SQ_KEY_INT64, 0, 604800000, OFF(dedup_ttl_ms), "3600000",
     NULL, RESTART, INSTANCE,
     "How long a succeeded task id is remembered; 0 = no dedup."},
    {"retry.max.attempts", SQ_KEY_INT, 1, 1000, OFF(retry_max_attempts), "10",
     NULL, RESTART, INSTANCE,
     "Most attempts any task gets (caps the task's own max_attempts)."},
    {"retry.backoff.initial.ms", SQ_KEY_INT64, 0, 86400000,
     OFF(retry_backoff_initial_ms), "1000", NULL, RESTART, INSTANCE,
     "Backoff before the second attempt."},
    {"retry.backoff.max.ms", SQ_KEY_INT64, 0, 604800000,
     OFF(retry_backoff_max_ms), "60000", NULL, RESTART, INSTANCE,
     "Longest backoff between attempts."},
    {"delay.hold.max.ms", SQ_KEY_INT64, 1000, 604800000, OFF(delay_hold_max_ms),
     "60000", NULL, RESTART, INSTANCE,
     "Longest a retry-lane record not yet due (a delayed task, a long "
     "retry) holds its partition before it is moved to the end."},
    {"retry.backoff.multiplier", SQ_KEY_DOUBLE, 1, 100,
     OFF(retry_backoff_multiplier), "2", NULL, RESTART, INSTANCE,
     "Factor the backoff grows by per attempt."},
    {"retry.backoff.jitter", SQ_KEY_ENUM, 0, 0, OFF(retry_backoff_jitter),
     "equal", jitter_syms, RESTART, INSTANCE, "full, equal or none."},
    {"processing.guarantee", SQ_KEY_ENUM, 0, 0, OFF(guarantee), "at_least_once",
     guarantee_syms, RESTART, GROUP,
     "at_least_once, or exactly_once: results, events and offsets in one "
     "Kafka transaction."},
    {"http.port", SQ_KEY_INT, -1, 65535, OFF(http_port), "8080", port_syms,
     RESTART, INSTANCE,
     "HTTP port for /health, /metrics, /status; auto (-1) = ephemeral, "
     "off (0) = no server."},
    {"http.bind", SQ_KEY_STRING, 1, 255, OFF(http_bind), "127.0.0.1", NULL,
     RESTART, INSTANCE, "Address the HTTP server listens on."},
    {"http.admin.token", SQ_KEY_STRING, 0, 4096, OFF(http_admin_token), "",
     NULL, RESTART, INSTANCE,
     "Bearer token for POST /admin/*; empty = admin actions off."},
    {"http.admin.token.file", SQ_KEY_STRING, 0, 4096,
     OFF(http_admin_token_file), "", NULL, RESTART, INSTANCE,
     "File holding the admin bearer token (first line)."},
    {"http.tls.cert", SQ_KEY_STRING, 0, 4096, OFF(http_tls_cert), "", NULL,
     RESTART, INSTANCE,
     "PEM certificate file: serve HTTPS; needs http.tls.key."},
    {"http.tls.key", SQ_KEY_STRING, 0, 4096, OFF(http_tls_key), "", NULL,
     RESTART, INSTANCE, "PEM private key file for http.tls.cert."},
    {"http.events.buffer", SQ_KEY_INT, 16, 1000000, OFF(http_events_buffer),
     "4096", NULL, RESTART, INSTANCE, "Events kept in memory for GET /events."},
    {"http.events.rate", SQ_KEY_INT, 1, 1000000, OFF(http_events_rate), "500",
     NULL, RESTART, INSTANCE,
     "Events per second sent to one /events client; more are dropped."},
    {"http.events.clients", SQ_KEY_INT, 1, 1024, OFF(http_events_clients), "16",
     NULL, RESTART, INSTANCE,
     "Concurrent /events streams; more are refused with 503."},
    {"http.connections.max", SQ_KEY_INT, 1, 65536, OFF(http_connections_max),
     "256", NULL, RESTART, INSTANCE,
     "Open HTTP connections at most; more are refused."},
    {"http.connections.per.ip", SQ_KEY_INT, 0, 65536,
     OFF(http_connections_per_ip), "64", NULL, RESTART, INSTANCE,
     "Open HTTP connections from one client address; 0 = no limit."},
    {"topics.create", SQ_KEY_BOOL, 0, 1, OFF(topics_create), "true", NULL,
     RESTART, INSTANCE, "Create missing swarmq topics at start-up."},
    {"topics.partitions", SQ_KEY_INT, 1, 100000, OFF(topics_partitions), "12",
     NULL, RESTART, INSTANCE, "Partitions of the topics swarmq creates."},
    {"topics.replication.factor", SQ_KEY_INT, -1, 1000,
     OFF(topics_replication_factor), "-1", NULL, RESTART, INSTANCE,
     "Replication factor of the topics swarmq creates; -1 = the broker's "
     "default."},
    {"embedded.broker", SQ_KEY_BOOL, 0, 1, OFF(embedded_broker), "false", NULL,
     RESTART, INSTANCE,
     "Run librdkafka's mock cluster in-process instead of a real one."},
    {"embedded.partitions", SQ_KEY_INT, 1, 1000, OFF(embedded_partitions), "12",
     NULL, RESTART, INSTANCE, "Partitions per topic in the embedded broker."},
    {"embedded.brokers", SQ_KEY_INT, 1, 16, OFF(embedded_brokers), "1", NULL,
     RESTART, INSTANCE, "Brokers in the embedded cluster."},
    {"log.level", SQ_KEY_LOGLEVEL, 0, 7, OFF(log_level), "info", NULL, RELOAD,
     INSTANCE,
     "Log level: emerg, alert, crit, err, warning, notice, info, debug or "
     "0 to 7."},
};

const size_t sq_config_keys_cnt = SQ_ARRAY_SIZE(sq_config_keys);

/**
 * Writes "origin: message" to errstr (just "message" without an origin).
 */
void sq_config_error(char *errstr, size_t errstr_size, const char *origin,
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

const sq_config_sym_t *sq_config_sym_find(const sq_config_sym_t *syms,
                                          const char *name) {
        for (; syms && syms->name; syms++) {
                if (!strcasecmp(syms->name, name))
                        return syms;
        }
        return NULL;
}

const char *sq_config_sym_name(const sq_config_sym_t *syms, int value) {
        for (; syms && syms->name; syms++) {
                if (syms->value == value)
                        return syms->name;
        }
        return NULL;
}

/* Appends "a, b, c" (the names of syms) to buf. */
static void sym_list(const sq_config_sym_t *syms, char *buf, size_t size) {
        size_t len = strlen(buf);
        for (; syms->name && len < size; syms++) {
                snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
                         syms->name);
                len = strlen(buf);
        }
}

const sq_config_key_t *sq_config_key_find(const char *name) {
        size_t i;
        for (i = 0; i < SQ_ARRAY_SIZE(sq_config_keys); i++) {
                if (!strcmp(sq_config_keys[i].name, name))
                        return &sq_config_keys[i];
        }
        return NULL;
}

/* true if @p str is [min, max] bytes long with no control characters. */
bool sq_config_string_valid(const char *str, int64_t min, int64_t max) {
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
void sq_config_key_expect(const sq_config_key_t *def, char *buf, size_t size) {
        buf[0] = '\0';
        switch (def->type) {
        case SQ_KEY_INT:
        case SQ_KEY_INT64:
                snprintf(buf, size, "expected an integer from %lld to %lld",
                         (long long)def->min, (long long)def->max);
                if (def->syms) {
                        sq_strlcpy(buf + strlen(buf),
                                   ", or one of: ", size - strlen(buf));
                        sym_list(def->syms, buf + strlen(buf),
                                 size - strlen(buf));
                }
                break;
        case SQ_KEY_BOOL:
                snprintf(buf, size,
                         "expected true or false (or yes/no, on/off, 1/0)");
                break;
        case SQ_KEY_STRING:
                snprintf(buf, size,
                         "expected %lld to %lld characters, none of them "
                         "control characters",
                         (long long)def->min, (long long)def->max);
                break;
        case SQ_KEY_TOPIC:
                snprintf(buf, size,
                         "expected a topic name of 1 to 249 characters from "
                         "[A-Za-z0-9._-]");
                break;
        case SQ_KEY_ENUM:
                sq_strlcpy(buf, "expected one of: ", size);
                sym_list(def->syms, buf + strlen(buf), size - strlen(buf));
                break;
        case SQ_KEY_LOGLEVEL:
                snprintf(buf, size,
                         "expected a log level: emerg, alert, crit, err, "
                         "warning, notice, info, debug, or 0 to 7");
                break;
        case SQ_KEY_DOUBLE:
                snprintf(buf, size, "expected a number from %lld to %lld",
                         (long long)def->min, (long long)def->max);
                break;
        }
}

/* Parses @p value for @p def and stores it; false leaves conf as is. */
bool sq_config_key_apply(sq_config_t *conf, const sq_config_key_t *def,
                         const char *value) {
        char *field = (char *)conf + def->offset;
        const sq_config_sym_t *sym;
        sq_log_level_t level;
        int64_t num;
        char *copy;
        bool bval;
        int ival;

        switch (def->type) {
        case SQ_KEY_INT:
        case SQ_KEY_INT64:
                sym = sq_config_sym_find(def->syms, value);
                if (sym)
                        num = sym->value;
                else if (sq_parse_int64(value, def->min, def->max, &num) !=
                         SQ_OK)
                        return false;
                if (def->type == SQ_KEY_INT) {
                        ival = (int)num;
                        memcpy(field, &ival, sizeof(ival));
                } else {
                        memcpy(field, &num, sizeof(num));
                }
                return true;
        case SQ_KEY_BOOL:
                if (sq_parse_bool(value, &bval) != SQ_OK)
                        return false;
                memcpy(field, &bval, sizeof(bval));
                return true;
        case SQ_KEY_STRING:
        case SQ_KEY_TOPIC:
                if (def->type == SQ_KEY_STRING
                        ? !sq_config_string_valid(value, def->min, def->max)
                        : !topic_valid(value))
                        return false;
                memcpy(&copy, field, sizeof(copy));
                sq_free(copy);
                copy = sq_strdup(value);
                memcpy(field, &copy, sizeof(copy));
                return true;
        case SQ_KEY_ENUM:
                sym = sq_config_sym_find(def->syms, value);
                if (!sym)
                        return false;
                memcpy(field, &sym->value, sizeof(sym->value));
                return true;
        case SQ_KEY_LOGLEVEL:
                if (sq_log_level_parse(value, &level) != SQ_OK)
                        return false;
                ival = (int)level;
                memcpy(field, &ival, sizeof(ival));
                return true;
        case SQ_KEY_DOUBLE: {
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
const char *sq_config_key_format(const sq_config_t *conf,
                                 const sq_config_key_t *def, char *buf,
                                 size_t size) {
        const char *field = (const char *)conf + def->offset;
        const char *name;
        const char *str;
        int64_t num;
        bool bval;
        int ival;

        switch (def->type) {
        case SQ_KEY_INT:
                memcpy(&ival, field, sizeof(ival));
                name = sq_config_sym_name(def->syms, ival);
                if (name)
                        return name;
                snprintf(buf, size, "%d", ival);
                return buf;
        case SQ_KEY_INT64:
                memcpy(&num, field, sizeof(num));
                snprintf(buf, size, "%lld", (long long)num);
                return buf;
        case SQ_KEY_BOOL:
                memcpy(&bval, field, sizeof(bval));
                return bval ? "true" : "false";
        case SQ_KEY_STRING:
        case SQ_KEY_TOPIC:
                memcpy(&str, field, sizeof(str));
                return str ? str : "";
        case SQ_KEY_ENUM:
                memcpy(&ival, field, sizeof(ival));
                name = sq_config_sym_name(def->syms, ival);
                return name ? name : "";
        case SQ_KEY_LOGLEVEL:
                memcpy(&ival, field, sizeof(ival));
                return log_level_names[ival & 7];
        case SQ_KEY_DOUBLE: {
                double dval;
                memcpy(&dval, field, sizeof(dval));
                snprintf(buf, size, "%g", dval);
                return buf;
        }
        }
        return "";
}

bool sq_config_key_reloadable(const char *key) {
        const sq_config_key_t *def;
        const char *field;

        if (!strncmp(key, "agent.", strlen("agent."))) {
                field = strchr(key + strlen("agent."), '.');
                return field && sq_config_agent_field_reloadable(field + 1);
        }
        /* A rate limit's rate and burst (the buckets take them). */
        if (!strncmp(key, "ratelimit.", strlen("ratelimit."))) {
                field = strchr(key + strlen("ratelimit."), '.');
                return field && sq_config_ratelimit_field_reloadable(field + 1);
        }
        /* Every feature flag: the rollouts are atomics (sq_flags_set). */
        if (!strncmp(key, "flag.", strlen("flag.")))
                return sq_flag_find(key + strlen("flag.")) >= 0;
        def = sq_config_key_find(key);
        return def && def->reload;
}

sq_config_scope_t sq_config_key_scope(const char *key) {
        const sq_config_key_t *def = sq_config_key_find(key);

        /* The owner of topic.schedules fires what its configuration says:
         * every instance must say the same. */
        if (!strncmp(key, "schedule.", strlen("schedule.")) ||
            !strncmp(key, "ratelimit.", strlen("ratelimit.")))
                return SQ_CONFIG_SCOPE_GROUP;
        return def ? def->scope : SQ_CONFIG_SCOPE_INSTANCE;
}
