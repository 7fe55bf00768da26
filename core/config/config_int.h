/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_int.h: what the files of core/config/ share and nothing outside
 * them sees: the key table's row types, the agent fields' entry points,
 * the suggestion and error helpers.
 *
 * DESIGN
 *   config.h is the public face (sq_config_t, new, set, load, finalize,
 *   dump, key_reloadable); this header splits its implementation by
 *   concern, one file each:
 *     config.c         the face: new, destroy, set (dispatch by family:
 *                      kafka.*, agent.*, flag.*, known keys), finalize
 *     config_keys.c    the key table: one row per key with its type,
 *                      range, field, default, reloadability, scope, help
 *     config_agents.c  agent.<name>.<field>: the field table, parsing,
 *                      per-agent checks, the default builtin agents
 *     config_schedules.c schedule.<name>.<field>: periodic schedules
 *     config_ratelimits.c ratelimit.<name>.<field>: rate limits
 *     config_load.c    the properties file and SWARMQ_* environment
 *     config_suggest.c "did you mean" for unknown keys and fields
 *     config_dump.c    every key=value in a stable order, secrets masked
 *   Everything here runs on one thread before sq_config_finalize(), except
 *   the read-only table lookups (key_find, key_reloadable), which are safe
 *   from any thread. Ownership: the config owns every string and array it
 *   points to; agent values parsed but not stored are freed by the caller.
 */
#ifndef SQ_CONFIG_INT_H
#define SQ_CONFIG_INT_H

#include "config.h"

#define SQ_CONFIG_KAFKA_NAME_MAX 255 /* librdkafka property names are short */

/* A named value: an enum's names, or an int key's special words. */
typedef struct sq_config_sym_s {
        const char *name;
        int value;
} sq_config_sym_t;

typedef enum {
        SQ_KEY_INT,      /* int, [min, max], plus named values in syms */
        SQ_KEY_INT64,    /* int64_t, [min, max] */
        SQ_KEY_BOOL,     /* bool: true/false, yes/no, on/off, 1/0 */
        SQ_KEY_STRING,   /* char *, length [min, max], no control chars */
        SQ_KEY_TOPIC,    /* char *, a legal Kafka topic name */
        SQ_KEY_ENUM,     /* an enum stored as int, names in syms */
        SQ_KEY_LOGLEVEL, /* int, sq_log_level_parse() */
        SQ_KEY_DOUBLE,   /* double, [min, max] */
} sq_config_key_type_t;

/* One row of the key table (config_keys.c). */
typedef struct sq_config_key_s {
        const char *name;
        sq_config_key_type_t type;
        int64_t min; /* numbers: smallest value; strings: shortest */
        int64_t max; /* numbers: largest value; strings: longest */
        size_t offset;
        const char *def;             /* default as text; NULL: computed */
        const sq_config_sym_t *syms; /* NULL-terminated, or NULL */
        bool reload;                 /* a SIGHUP reload applies it */
        sq_config_scope_t scope;     /* one instance, or its whole group */
        const char *help;
} sq_config_key_t;

/* The key table, in dump and documentation order. */
extern const sq_config_key_t sq_config_keys[];
extern const size_t sq_config_keys_cnt;

/** @returns the row of the known key @p name, or NULL. */
const sq_config_key_t *sq_config_key_find(const char *name);

/**
 * @brief Parses @p value for @p key and stores it in @p conf.
 * @returns false (and @p conf unchanged) when the value is not valid.
 */
bool sq_config_key_apply(sq_config_t *conf, const sq_config_key_t *key,
                         const char *value);

/** @brief Writes what @p key accepts, for error sentences, to @p buf. */
void sq_config_key_expect(const sq_config_key_t *key, char *buf, size_t size);

/**
 * @brief Formats the current value of @p key.
 * @returns @p buf, a string of @p conf (borrowed) or a literal.
 */
const char *sq_config_key_format(const sq_config_t *conf,
                                 const sq_config_key_t *key, char *buf,
                                 size_t size);

/** @returns the entry of @p syms named @p name (any case), or NULL. */
const sq_config_sym_t *sq_config_sym_find(const sq_config_sym_t *syms,
                                          const char *name);

/** @returns the name of @p value in @p syms, or NULL. */
const char *sq_config_sym_name(const sq_config_sym_t *syms, int value);

/** @returns true if @p str is [min, max] bytes with no control chars. */
bool sq_config_string_valid(const char *str, int64_t min, int64_t max);

/**
 * @brief Writes "origin: message" to @p errstr (just the message without
 *        an origin).
 */
void sq_config_error(char *errstr, size_t errstr_size, const char *origin,
                     const char *fmt, ...) SQ_ATTR_PRINTF(4, 5);

/*
 * Agents (config_agents.c)
 */

/**
 * @brief Sets agent.<name>.<field>, declaring the agent on first use.
 * @returns SQ_OK, or SQ_ERR_CONFIG with @p errstr naming the key.
 */
sq_err_t sq_config_agent_set(sq_config_t *conf, const char *key,
                             const char *value, const char *origin,
                             char *errstr, size_t errstr_size);

/**
 * @brief Declares the default builtin agents when none is declared, then
 *        checks every agent and fills its derived defaults.
 * @returns SQ_OK, or SQ_ERR_CONFIG with @p errstr naming the agent's key.
 */
sq_err_t sq_config_agents_finalize(sq_config_t *conf, char *errstr,
                                   size_t errstr_size);

/** @brief Frees what one agent declaration owns (not @p agent itself). */
void sq_config_agent_term(sq_agent_conf_t *agent);

/**
 * @returns whether a reload applies the agent field @p field ("kind",
 *          "breaker.probes", "env.FOO", ...); false for unknown fields.
 */
bool sq_config_agent_field_reloadable(const char *field);

/**
 * @brief Emits every field of @p agent that applies to its kind and has a
 *        value, then its env.<VAR>, as "agent.<name>.<field>" (unmasked).
 */
void sq_config_agent_dump(const sq_agent_conf_t *agent,
                          void (*emit)(void *opaque, const char *key,
                                       const char *value),
                          void *opaque);

/** @returns whether @p name (@p len bytes) is an agent or schedule
 *           name: 1 to 64 characters from [A-Za-z0-9_-]. */
bool sq_config_name_valid(const char *name, size_t len);

/**
 * @brief Splits a comma-separated capability list (agents, schedules).
 * @returns true with *@p capsp set (caller owns, sq_config_caps_free()),
 *          or false with why in @p why.
 */
bool sq_config_caps_parse(const char *value, char ***capsp, size_t *cntp,
                          char *why, size_t why_size);
/** @brief Frees a capability list. */
void sq_config_caps_free(char **caps, size_t cnt);

/*
 * Schedules (config_schedules.c)
 */

/**
 * @brief Sets schedule.<name>.<field>, declaring the schedule on first
 *        use.
 * @returns SQ_OK, or SQ_ERR_CONFIG with @p errstr naming the key.
 */
sq_err_t sq_config_schedule_set(sq_config_t *conf, const char *key,
                                const char *value, const char *origin,
                                char *errstr, size_t errstr_size);

/**
 * @brief Checks every schedule (a type; a cron or an every.ms, not both).
 * @returns SQ_OK, or SQ_ERR_CONFIG with @p errstr naming the key.
 */
sq_err_t sq_config_schedules_finalize(sq_config_t *conf, char *errstr,
                                      size_t errstr_size);

/** @brief Frees what one schedule declaration owns. */
void sq_config_schedule_term(sq_schedule_conf_t *sched);

/** @brief Emits the fields of @p sched as "schedule.<name>.<field>". */
void sq_config_schedule_dump(const sq_schedule_conf_t *sched,
                             void (*emit)(void *opaque, const char *key,
                                          const char *value),
                             void *opaque);

/*
 * Rate limits (config_ratelimits.c)
 */

/**
 * @brief Sets ratelimit.<name>.<field>, declaring the limit on first use.
 * @returns SQ_OK, or SQ_ERR_CONFIG with @p errstr naming the key.
 */
sq_err_t sq_config_ratelimit_set(sq_config_t *conf, const char *key,
                                 const char *value, const char *origin,
                                 char *errstr, size_t errstr_size);

/**
 * @brief Checks every limit (a rate; a type or a capability, not both).
 * @returns SQ_OK, or SQ_ERR_CONFIG with @p errstr naming the key.
 */
sq_err_t sq_config_ratelimits_finalize(sq_config_t *conf, char *errstr,
                                       size_t errstr_size);

/** @brief Frees what one limit declaration owns. */
void sq_config_ratelimit_term(sq_ratelimit_conf_t *rl);

/** @brief Emits the fields of @p rl as "ratelimit.<name>.<field>". */
void sq_config_ratelimit_dump(const sq_ratelimit_conf_t *rl,
                              void (*emit)(void *opaque, const char *key,
                                           const char *value),
                              void *opaque);

/** @returns whether a reload applies the rate limit field @p field. */
bool sq_config_ratelimit_field_reloadable(const char *field);

/*
 * Suggestions (config_suggest.c)
 */

/* sq_config_suggest() is in config.h: the CLI uses it too. */

/**
 * @brief Writes the error for an unknown key, with the closest known key
 *        or the kafka. prefix it probably lacks.
 * @returns SQ_ERR_CONFIG.
 */
sq_err_t sq_config_unknown_key(const char *key, const char *origin,
                               char *errstr, size_t errstr_size);

#endif /* SQ_CONFIG_INT_H */
