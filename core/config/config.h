/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h: swarmq's configuration: one librdkafka-style properties file
 * (key=value, '#' comments), overridden by SWARMQ_* environment variables,
 * overridden by command-line flags (-X key=value, -b BROKERS, ...).
 *
 * DESIGN
 *   sq_config_set() is the single entry point every source goes through, so
 *   validation is identical for file, environment and flags, and a bad key
 *   or value is reported with its name and its origin ("file.properties:12",
 *   "env SWARMQ_HTTP_PORT", "flag -X"). Unknown keys are errors, never
 *   silently ignored. Keys starting with "kafka." are passed to librdkafka
 *   without the prefix (validated by librdkafka when the client is built).
 *   Agents are declared in the same file under "agent.<name>.<field>".
 *   After all sources are applied, sq_config_finalize() checks cross-key
 *   rules (low < high mark, every agent has a kind and capabilities...).
 *   A config is immutable after finalize and may be read from any thread.
 *   The key table (config_keys.c) holds each key's facts: type, range,
 *   default, help, whether a SIGHUP reload applies it, and its scope.
 *   The implementation is split by concern; config_int.h has the map.
 */
#ifndef SQ_CONFIG_H
#define SQ_CONFIG_H

#include "common.h"
#include "flags.h"
#include "schedule.h"
#include "task.h"

#define SQ_CONFIG_MAX_AGENTS 4096 /* agents.c's bitsets and uint16 indices */

typedef enum {
        SQ_AGENT_BUILTIN = 0, /* in-process handler */
        SQ_AGENT_EXEC    = 1, /* one process per task (exec.c) */
        SQ_AGENT_POOL    = 2, /* long-lived worker processes (pool.c) */
} sq_agent_kind_t;

/*
 * The handlers of `builtin` agents, in documentation order: the one list
 * the config validates agent.<name>.handler against and builtins.c builds
 * its table from. X(name) is applied to each name.
 */
#define SQ_CONFIG_BUILTINS(X) X(noop) X(echo) X(sleep) X(sha256) X(fail) X(cpu)

typedef struct sq_agent_conf_s {
        char *name;
        sq_agent_kind_t kind;
        char *handler;       /**< builtin handler name: noop, echo, ... */
        char **capabilities; /**< at least one */
        size_t capabilities_cnt;
        int concurrency;           /**< max tasks at once, >= 1 (default 4) */
        int breaker_failures;      /**< .breaker.failures, 5; 0 = off */
        int64_t breaker_window_ms; /**< .breaker.window.ms, 60000 */
        int64_t breaker_open_ms;   /**< .breaker.open.ms, 10000 */
        int breaker_probes;        /**< .breaker.probes, 1 */

        /* exec and pool: the program and its sandbox */
        char **command; /**< argv, command[0] the program; NULL-terminated */
        size_t command_cnt;
        char *workdir;    /**< working directory; NULL: swarmq's */
        char **env_allow; /**< variables inherited from swarmq's env */
        size_t env_allow_cnt;
        sq_kv_t *env; /**< variables set: agent.<name>.env.<VAR> */
        size_t env_cnt;
        int64_t kill_grace_ms;     /**< SIGTERM to SIGKILL, default 2000 */
        int64_t output_max_bytes;  /**< output cap, default 524288 */
        bool spawn;                /**< .spawn: its outputs may spawn children
                                    *   (docs/workflows.md), default false */
        int64_t stderr_max_bytes;  /**< exec: stderr kept, default 4096 */
        int64_t limit_as_bytes;    /**< RLIMIT_AS, 0 = inherited */
        int64_t limit_cpu_seconds; /**< RLIMIT_CPU, 0 = inherited */
        int64_t limit_nofile;      /**< RLIMIT_NOFILE, 0 = inherited */

        /* pool */
        int pool_min;                    /**< workers kept running, default 1 */
        int pool_max;                    /**< workers at most, default 4 */
        int64_t pool_acquire_timeout_ms; /**< wait for a worker, 30000 */
        int64_t pool_idle_timeout_ms;    /**< evict idle above min, 60000 */
        int64_t pool_ping_interval_ms;   /**< ping idle workers, 10000 */
        int64_t pool_ping_timeout_ms;    /**< pong deadline, 5000 */
        int64_t pool_start_timeout_ms;   /**< hello deadline, 10000 */
        int64_t pool_recycle_tasks;      /**< replace after N tasks, 0 off */
        int64_t pool_task_retries;       /**< on a worker's death, 1 */
        int64_t pool_backoff_ms;         /**< first restart delay, 100 */
        int64_t pool_backoff_max_ms;     /**< longest restart delay 30000 */

        uint64_t set_fields; /**< bit i: agent field i was set */
} sq_agent_conf_t;

/** A periodic schedule: schedule.<name>.<field> (config_schedules.c). */
typedef struct sq_schedule_conf_s {
        char *name;
        char *cron;              /**< .cron as written; NULL: every.ms */
        int64_t every_ms;        /**< .every.ms; 0: cron */
        sq_schedule_spec_t spec; /**< parsed from cron or every.ms */
        sq_missed_t missed;      /**< .missed, default all */
        char *type;              /**< .type of the task, required */
        char **capabilities;     /**< .capabilities, may be empty */
        size_t capabilities_cnt;
        char *payload;          /**< .payload, "" */
        sq_priority_t priority; /**< .priority, NORMAL */
        int64_t timeout_ms;     /**< .timeout.ms, 0: task.default */
        uint32_t set_fields;    /**< bit i: schedule field i was set */
} sq_schedule_conf_t;

/** A rate limit: ratelimit.<name>.<field> (config_ratelimits.c). */
typedef struct sq_ratelimit_conf_s {
        char *name;
        char *type;       /**< .type: tasks of this type; NULL */
        char *capability; /**< .capability: tasks needing it; NULL */
        double rate;      /**< .rate: tasks per second, the whole group */
        double burst;     /**< .burst; 0: one second's worth */
        uint32_t set_fields;
} sq_ratelimit_conf_t;

/** What a task does when every capable agent's breaker is open. */
typedef enum {
        SQ_WHEN_OPEN_WAIT = 0, /**< park until a breaker goes half-open */
        SQ_WHEN_OPEN_FAIL = 1, /**< FAILED: "no healthy agent" */
} sq_when_open_t;

typedef enum {
        SQ_ORDERING_UNORDERED = 0,
        SQ_ORDERING_KEY       = 1,
        SQ_ORDERING_PARTITION = 2,
} sq_ordering_t;

/** Which lifecycle events go to topic.events (events.publish). */
typedef enum {
        SQ_EVENTS_ALL      = 0, /**< every event */
        SQ_EVENTS_TERMINAL = 1, /**< a task's last event, instance events */
        SQ_EVENTS_NONE     = 2, /**< none (GET /events still has them) */
} sq_events_publish_t;

/** output.format: how results and events are written. */
typedef enum {
        SQ_OUTPUT_AVRO = 0, /**< Confluent-framed Avro */
        SQ_OUTPUT_JSON = 1, /**< one JSON object per record (docs/wire.md) */
} sq_output_format_t;

/** When the next task of an ordering key may start (ordering.handoff). */
typedef enum {
        SQ_HANDOFF_FINISHED     = 0, /**< once the previous one finished */
        SQ_HANDOFF_ACKNOWLEDGED = 1, /**< once its records are acknowledged */
} sq_handoff_t;

typedef enum {
        SQ_JITTER_FULL  = 0, /* uniform in [0, d] */
        SQ_JITTER_EQUAL = 1, /* d/2 + uniform in [0, d/2] */
        SQ_JITTER_NONE  = 2, /* exactly d */
} sq_jitter_t;

typedef enum {
        SQ_GUARANTEE_AT_LEAST_ONCE = 0,
        SQ_GUARANTEE_EXACTLY_ONCE  = 1,
} sq_guarantee_t;

typedef struct sq_config_s {
        /* Identity */
        char *instance_id; /**< instance.id; default "<hostname>-<pid>" */
        char *group_id;    /**< group.id; default "swarmq" */

        /* Topics: topic.tasks, topic.critical, topic.retry, topic.dlt,
         * topic.results, topic.events */
        char *topic_tasks;
        char *topic_critical;
        char *topic_retry;
        char *topic_dlt;
        char *topic_results;
        char *topic_events;
        char *topic_control;       /**< topic.control */
        char *topic_schedules;     /**< topic.schedules */
        int64_t schedules_late_ms; /**< schedules.late.ms */
        int schedules_catchup_max; /**< schedules.catchup.max */
        char *topic_workflows;     /**< topic.workflows */
        bool workflows_enable;     /**< workflows.enable */
        int64_t cancel_ttl_ms;     /**< cancel.ttl.ms */
        int cancel_max_entries;    /**< cancel.max.entries */

        /* Schema Registry (schema.registry.*): "" url = embedded catalog */
        char *schema_registry_url;
        char *schema_registry_user_info; /**< user:password, a secret */
        char *schema_registry_ca_location;
        int schema_registry_timeout_ms;
        int schema_registry_cache_max;

        /* Executor and scheduler */
        int executor_threads;          /**< executor.threads, default 4 */
        int executor_critical_slots;   /**< executor.critical.reserved, 1 */
        int admission_high;            /**< admission.high.mark, 10000 */
        int admission_low;             /**< admission.low.mark, 5000 */
        int critical_high;             /**< admission.critical.high.mark 1000*/
        int64_t aging_ms;              /**< scheduler.aging.ms, 500 */
        sq_ordering_t ordering;        /**< ordering: unordered|key|partition*/
        sq_handoff_t ordering_handoff; /**< ordering.handoff, finished */
        sq_events_publish_t events_publish; /**< events.publish, all */
        sq_output_format_t output_format;   /**< output.format, avro */
        int64_t default_timeout_ms;       /**< task.default.timeout.ms, 60000 */
        sq_when_open_t breaker_when_open; /**< breaker.when.open, wait */

        /* Offsets and shutdown */
        int64_t commit_interval_ms;      /**< commit.interval.ms, 1000 */
        int64_t drain_timeout_ms;        /**< shutdown.drain.timeout.ms 30000 */
        int64_t close_timeout_ms;        /**< shutdown.close.timeout.ms 15000 */
        int64_t lag_refresh_interval_ms; /**< lag.refresh.interval.ms 5000 */
        int commit_metadata_max;         /**< commit.metadata.max.bytes, 4096 */
        int dedup_max_entries;           /**< dedup.max.entries, 100000 */
        int64_t dedup_ttl_ms;            /**< dedup.ttl.ms, 3600000 */
        sq_guarantee_t guarantee;        /**< processing.guarantee */

        /* Retries (retry.c): failed attempts go to topic.retry, then
         * topic.dlt */
        int retry_max_attempts;           /**< retry.max.attempts, 10 */
        int64_t retry_backoff_initial_ms; /**< retry.backoff.initial.ms */
        int64_t retry_backoff_max_ms;     /**< retry.backoff.max.ms */
        int64_t delay_hold_max_ms;        /**< delay.hold.max.ms */
        double retry_backoff_multiplier;  /**< retry.backoff.multiplier */
        sq_jitter_t retry_backoff_jitter; /**< retry.backoff.jitter */

        /* Memory: intake pauses above 90% of the limit (RSS), resumes
         * below 80% */
        int64_t memory_limit_bytes; /**< memory.limit.bytes, 0 = none */

        /* HTTP */
        int http_port;               /**< http.port, default 8080; 0 = off */
        char *http_bind;             /**< http.bind, default "127.0.0.1" */
        char *http_admin_token;      /**< http.admin.token; "" = admin off */
        char *http_admin_token_file; /**< http.admin.token.file, "" none */
        char *http_tls_cert;         /**< http.tls.cert (PEM file), "" */
        char *http_tls_key;          /**< http.tls.key (PEM file), "" */
        int http_events_buffer;      /**< http.events.buffer, 4096 */
        int http_events_rate;        /**< http.events.rate, 500 per s */
        int http_events_clients;     /**< http.events.clients, 16 */
        int http_connections_max;    /**< http.connections.max, 256 */
        int http_connections_per_ip; /**< http.connections.per.ip, 64 */

        /* Topic creation at start-up (real brokers; the embedded broker
         * creates its topics itself) */
        bool topics_create;            /**< topics.create, default true */
        int topics_partitions;         /**< topics.partitions, default 12 */
        int topics_replication_factor; /**< topics.replication.factor, -1 */

        /* Embedded broker (librdkafka mock cluster) */
        bool embedded_broker;    /**< embedded.broker, default false */
        int embedded_partitions; /**< embedded.partitions, default 12 */
        int embedded_brokers;    /**< embedded.brokers, default 1 */

        /* Logging */
        int log_level; /**< log.level (sq_log_level_t), default info */

        /* kafka.* passthrough, in the order set (later wins in librdkafka) */
        sq_kv_t *kafka;
        size_t kafka_cnt;

        /* Feature flags: flag.<name>, rollout in basis points */
        int flag_rollout[SQ_FLAG_CNT];

        /* Agents, in declaration order */
        sq_agent_conf_t *agents;
        size_t agents_cnt;

        /* Periodic schedules, in declaration order */
        sq_schedule_conf_t *schedules;
        size_t schedules_cnt;

        /* Rate limits, in declaration order */
        sq_ratelimit_conf_t *ratelimits;
        size_t ratelimits_cnt;
} sq_config_t;

/** Where a key's value must agree (the key table's scope column). */
typedef enum {
        SQ_CONFIG_SCOPE_INSTANCE = 0, /**< may differ between instances */
        SQ_CONFIG_SCOPE_GROUP    = 1, /**< the same on every instance of
                                       *   a group: group.id, the topics,
                                       *   ordering, processing.guarantee */
} sq_config_scope_t;

/** @returns a config holding every default (caller owns, destroy). */
sq_config_t *sq_config_new(void);
/** @brief Frees a config; NULL is a no-op. */
void sq_config_destroy(sq_config_t *conf);

/**
 * @brief Sets one key. @p origin names where it came from for errors
 *        (e.g. "swarmq.properties:12", "env SWARMQ_HTTP_PORT", "-X").
 * @returns SQ_OK or SQ_ERR_CONFIG with @p errstr naming the key, the bad
 *          value and the origin.
 */
sq_err_t sq_config_set(sq_config_t *conf, const char *key, const char *value,
                       const char *origin, char *errstr, size_t errstr_size);

/**
 * @brief Reads a properties file: key=value lines, '#' or '!' comments,
 *        blank lines, surrounding whitespace trimmed.
 * @returns SQ_OK, or SQ_ERR_CONFIG / SQ_ERR_IO with @p errstr naming the
 *          file and line.
 */
sq_err_t sq_config_load_file(sq_config_t *conf, const char *path, char *errstr,
                             size_t errstr_size);

/**
 * @brief Applies SWARMQ_* variables from @p envp (NULL-terminated, like
 *        environ): SWARMQ_HTTP_PORT=9000 sets http.port; the name after
 *        SWARMQ_ is lower-cased and '_' becomes '.'; a double underscore
 *        "__" becomes a literal '_' (SWARMQ_KAFKA_SASL_USERNAME sets
 *        kafka.sasl.username). Only variables naming a key swarmq has
 *        are taken (a table key, agent.*, flag.*, kafka.<a property
 *        librdkafka knows); the others are ignored with one warning
 *        naming them. SWARMQ_BOOTSTRAP_SERVERS (or the deprecated
 *        SWARMQ_KAFKA_BOOTSTRAP_SERVERS, with a warning) sets
 *        kafka.bootstrap.servers. SWARMQ_CONFIG is the config-file path and is
 *        skipped here.
 */
sq_err_t sq_config_load_env(sq_config_t *conf, char *const *envp, char *errstr,
                            size_t errstr_size);

/**
 * @brief Validates cross-key rules and fills derived defaults (the
 *        default builtin agents when none are declared).
 * @returns SQ_OK or SQ_ERR_CONFIG with @p errstr naming the keys.
 */
sq_err_t sq_config_finalize(sq_config_t *conf, char *errstr,
                            size_t errstr_size);

/** @returns a rate limit's burst: .burst, or one second's worth of its
 *           rate (at least 1) when .burst is 0. */
double sq_config_ratelimit_burst(const sq_ratelimit_conf_t *rl);

/** @returns the kafka.* value for @p name (without prefix) or NULL. */
const char *sq_config_kafka_get(const sq_config_t *conf, const char *name);

/**
 * @brief Writes every key=value (secrets such as *password*, *secret*,
 *        sasl.jaas*, ssl.key*, token, credential masked as "***") to the
 *        @p emit callback, one
 *        per call, in a stable order. Used by --dump-config and /status.
 */
void sq_config_dump(const sq_config_t *conf,
                    void (*emit)(void *opaque, const char *key,
                                 const char *value),
                    void *opaque);

/**
 * @brief Whether a SIGHUP reload applies @p key at once (the reload column
 *        of the key table and of the agent fields; every flag.<name>);
 *        a change of any other key waits for a restart.
 * @param key a full key as the dump names it: "log.level",
 *        "agent.<name>.concurrency", "flag.work_stealing" (borrowed).
 * @returns true for every agent.<name>.<field> (an exec or pool agent's
 *          process settings by a new runtime: sq_config_agent_runtime_
 *          fingerprint()); false for kafka.* and unknown keys.
 * @locality any thread (reads constant tables only).
 */
bool sq_config_key_reloadable(const char *key);

/**
 * @brief The settings of @p agent that its process runtime is built from
 *        (kind, command, workdir, env, limits, pool.*), as one string:
 *        two agent configurations with equal fingerprints can share one
 *        exec or pool runtime; a reload that changes it builds a new one.
 * @returns "field=value\n" lines (caller owns, free with sq_free()).
 */
char *sq_config_agent_runtime_fingerprint(const sq_agent_conf_t *agent);

/**
 * @brief The scope column of the key table: whether every instance of a
 *        group must share @p key's value.
 * @returns SQ_CONFIG_SCOPE_INSTANCE for kafka.*, agent.*, flag.* and
 *          unknown keys.
 * @locality any thread.
 */
sq_config_scope_t sq_config_key_scope(const char *key);

/**
 * @brief "Did you mean": the closest of @p cnt names to @p name by edit
 *        distance (config_suggest.c), used for keys, agent fields, flags
 *        and swarmq-producer's commands, options and event types.
 * @returns the closest name, or NULL when none is close enough. Name i
 *          is the string pointer at (const char *)names + i * stride, so
 *          a table's name column can be searched in place.
 */
const char *sq_config_suggest(const char *name, const char *const *names,
                              size_t cnt, size_t stride);

#endif /* SQ_CONFIG_H */
