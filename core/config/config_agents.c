/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_agents.c: agent declarations, agent.<name>.<field>: the field
 * table, parsing each field's value (capability lists, commands, variable
 * names), the per-agent checks of finalize, the default builtin agents,
 * and formatting an agent's fields for the dump.
 *
 * DESIGN
 *   Like the key table, one row per field holds its type, the agent kinds
 *   it applies to, its range, where it lives in sq_agent_conf_t, its
 *   default and whether a reload applies it. An agent is declared by the
 *   first key that names it and starts with every row's default; bit i of
 *   set_fields records that row i was set, so finalize can reject a field
 *   of another kind (the file may set pool.max before kind=pool, which is
 *   why the check waits for finalize). A value is parsed into an
 *   agent_value_t first and stored only when valid: a bad value never
 *   leaves a half-declared agent. Builtin handler names come from
 *   SQ_CONFIG_BUILTINS (config.h), the list builtins.c is built from. One
 *   thread, before sq_config_finalize(); the agent owns its strings.
 */
#include "config_int.h"
#include "log.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AGENT_NAME_MAX   64  /* agent names: [A-Za-z0-9_-]{1,64} */
#define CAPABILITY_MAX   128 /* longest capability name */
#define CAPABILITIES_MAX 64  /* capabilities per agent */

static const sq_config_sym_t agent_kind_syms[] = {
    {"builtin", SQ_AGENT_BUILTIN},
    {"exec", SQ_AGENT_EXEC},
    {"pool", SQ_AGENT_POOL},
    {NULL, 0},
};

#define BUILTIN_NAME(name) #name,
static const char *const builtin_handlers[] = {
    SQ_CONFIG_BUILTINS(BUILTIN_NAME)};
/* "noop, echo, ..." for error sentences (past the first ", "). */
#define BUILTIN_LISTED(name)  ", " #name
#define BUILTIN_HANDLERS_LIST (SQ_CONFIG_BUILTINS(BUILTIN_LISTED) + 2)

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
        AF_BOOL,    /* bool: true/false, yes/no, on/off, 1/0 */
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
        bool runtime;    /* a setting of the agent's process runtime */
} agent_field_t;

/* Every agent field reloads (SIGHUP). The column says how a change
 * applies: SELECT fields (selection, concurrency, breakers) change in the
 * rebuilt registry at once; RUNTIME fields are the exec and pool agents'
 * process settings (command, env, limits, pool.*): a change builds a new
 * runtime for the agent and drains the old one (consumer/instance/
 * runtimes.c). The kind is both. */
#define SELECT  false
#define RUNTIME true

#define AOFF(field) offsetof(sq_agent_conf_t, field)

static const agent_field_t agent_fields[] = {
    {"kind", AF_KIND, KIND_ALL, 0, 0, AOFF(kind), NULL, RUNTIME},
    {"handler", AF_HANDLER, KIND_B, 1, 4096, AOFF(handler), NULL, SELECT},
    {"capabilities", AF_CAPS, KIND_ALL, 0, 0, AOFF(capabilities), NULL, SELECT},
    {"concurrency", AF_INT, KIND_ALL, 1, 100000, AOFF(concurrency), "4",
     SELECT},
    {"breaker.failures", AF_INT, KIND_ALL, 0, 1000000, AOFF(breaker_failures),
     "5", SELECT},
    {"breaker.window.ms", AF_INT64, KIND_ALL, 1, 86400000,
     AOFF(breaker_window_ms), "60000", SELECT},
    {"breaker.open.ms", AF_INT64, KIND_ALL, 1, 86400000, AOFF(breaker_open_ms),
     "10000", SELECT},
    {"breaker.probes", AF_INT, KIND_ALL, 1, 1000, AOFF(breaker_probes), "1",
     SELECT},
    {"spawn", AF_BOOL, KIND_ALL, 0, 1, AOFF(spawn), "false", SELECT},
    {"command", AF_ARGV, KIND_EP, 0, 0, AOFF(command), NULL, RUNTIME},
    {"workdir", AF_PATH, KIND_EP, 1, 4096, AOFF(workdir), NULL, RUNTIME},
    {"env.allow", AF_NAMES, KIND_EP, 0, 0, AOFF(env_allow),
     "PATH,HOME,LANG,LC_ALL,TZ", RUNTIME},
    {"kill.grace.ms", AF_INT64, KIND_EP, 0, 600000, AOFF(kill_grace_ms), "2000",
     RUNTIME},
    {"output.max.bytes", AF_INT64, KIND_EP, 0, 64 << 20, AOFF(output_max_bytes),
     "524288", RUNTIME},
    {"stderr.max.bytes", AF_INT64, KIND_E, 0, 1 << 20, AOFF(stderr_max_bytes),
     "4096", RUNTIME},
    {"limit.as.bytes", AF_INT64, KIND_EP, 0, INT64_C(1) << 50,
     AOFF(limit_as_bytes), "0", RUNTIME},
    {"limit.cpu.seconds", AF_INT64, KIND_EP, 0, 604800, AOFF(limit_cpu_seconds),
     "0", RUNTIME},
    {"limit.nofile", AF_INT64, KIND_EP, 0, 1048576, AOFF(limit_nofile), "0",
     RUNTIME},
    {"pool.min", AF_INT, KIND_P, 0, 10000, AOFF(pool_min), "1", RUNTIME},
    {"pool.max", AF_INT, KIND_P, 1, 10000, AOFF(pool_max), "4", RUNTIME},
    {"pool.acquire.timeout.ms", AF_INT64, KIND_P, 1, 3600000,
     AOFF(pool_acquire_timeout_ms), "30000", RUNTIME},
    {"pool.idle.timeout.ms", AF_INT64, KIND_P, 0, 86400000,
     AOFF(pool_idle_timeout_ms), "60000", RUNTIME},
    {"pool.ping.interval.ms", AF_INT64, KIND_P, 0, 3600000,
     AOFF(pool_ping_interval_ms), "10000", RUNTIME},
    {"pool.ping.timeout.ms", AF_INT64, KIND_P, 1, 600000,
     AOFF(pool_ping_timeout_ms), "5000", RUNTIME},
    {"pool.start.timeout.ms", AF_INT64, KIND_P, 1, 600000,
     AOFF(pool_start_timeout_ms), "10000", RUNTIME},
    {"pool.recycle.tasks", AF_INT64, KIND_P, 0, 1000000000,
     AOFF(pool_recycle_tasks), "0", RUNTIME},
    {"pool.task.retries", AF_INT64, KIND_P, 0, 10, AOFF(pool_task_retries), "1",
     RUNTIME},
    {"pool.backoff.ms", AF_INT64, KIND_P, 1, 60000, AOFF(pool_backoff_ms),
     "100", RUNTIME},
    {"pool.backoff.max.ms", AF_INT64, KIND_P, 1, 3600000,
     AOFF(pool_backoff_max_ms), "30000", RUNTIME},
};
/* agent.<name>.env.<VAR> counts as this bit in set_fields. */
#define AGENT_ENV_BIT SQ_ARRAY_SIZE(agent_fields)
#define ARGV_MAX      256  /* command words */
#define ENV_NAME_MAX  255  /* environment variable name length */
#define ENV_VALUE_MAX 4096 /* agent.<name>.env.<VAR> value length */

static bool builtin_handler_valid(const char *name) {
        size_t i;
        for (i = 0; i < SQ_ARRAY_SIZE(builtin_handlers); i++) {
                if (!strcmp(builtin_handlers[i], name))
                        return true;
        }
        return false;
}

bool sq_config_name_valid(const char *name, size_t len) {
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

void sq_config_caps_free(char **caps, size_t cnt) {
        size_t i;
        for (i = 0; i < cnt; i++)
                sq_free(caps[i]);
        sq_free(caps);
}

/**
 * Splits a comma-separated capability list. On failure writes why to
 * @p why and returns false. On success the caller owns *capsp (free with
 * sq_config_caps_free()).
 */
bool sq_config_caps_parse(const char *value, char ***capsp, size_t *cntp,
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
        sq_config_caps_free(caps, cnt);
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
        sq_config_caps_free(strv, cnt);
}

/* Frees what one agent declaration owns. */
void sq_config_agent_term(sq_agent_conf_t *agent) {
        size_t i;

        sq_free(agent->name);
        sq_free(agent->handler);
        sq_config_caps_free(agent->capabilities, agent->capabilities_cnt);
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
        const sq_config_sym_t *kind;
        char **strv;
        size_t strv_cnt;
        int64_t num;
} agent_value_t;

/* Parses @p value for field @p def; false with @p why on a bad value. */
static bool agent_value_parse(const agent_field_t *def, const char *value,
                              agent_value_t *val, char *why, size_t why_size) {
        switch (def->type) {
        case AF_KIND:
                val->kind = sq_config_sym_find(agent_kind_syms, value);
                if (!val->kind)
                        snprintf(why, why_size,
                                 "expected one of: builtin, exec, pool");
                return val->kind != NULL;
        case AF_HANDLER:
        case AF_PATH:
                if (!sq_config_string_valid(value, def->min, def->max)) {
                        snprintf(why, why_size,
                                 "expected %lld to %lld characters, none of "
                                 "them control characters",
                                 (long long)def->min, (long long)def->max);
                        return false;
                }
                return true;
        case AF_CAPS:
                return sq_config_caps_parse(value, &val->strv, &val->strv_cnt,
                                            why, why_size);
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
        case AF_BOOL: {
                bool b;
                if (sq_parse_bool(value, &b) != SQ_OK) {
                        snprintf(why, why_size,
                                 "expected true or false (yes/no, on/off, "
                                 "1/0)");
                        return false;
                }
                val->num = b;
                return true;
        }
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
                sq_config_caps_free(agent->capabilities,
                                    agent->capabilities_cnt);
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
        case AF_BOOL: {
                bool b = val->num != 0;
                memcpy(field, &b, sizeof(b));
                break;
        }
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

sq_err_t sq_config_agent_set(sq_config_t *conf, const char *key,
                             const char *value, const char *origin,
                             char *errstr, size_t errstr_size) {
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
                sq_config_error(errstr, errstr_size, origin,
                                "\"%s\" is not an agent key: expected "
                                "agent.<name>.<field> with field %s",
                                key, list);
                goto done;
        }
        namelen = (size_t)(dot - name);
        field   = dot + 1;
        if (!sq_config_name_valid(name, namelen)) {
                sq_config_error(
                    errstr, errstr_size, origin,
                    "%s: invalid agent name \"%.*s\": expected 1 to "
                    "%d characters from [A-Za-z0-9_-]",
                    key, (int)SQ_MIN(namelen, 100), name, AGENT_NAME_MAX);
                goto done;
        }
        if (!strncmp(field, "env.", 4) && strcmp(field, "env.allow")) {
                var = field + 4;
                if (!env_name_valid(var, strlen(var))) {
                        sq_config_error(errstr, errstr_size, origin,
                                        "%s: \"%s\" is not an environment "
                                        "variable name: expected "
                                        "[A-Za-z_][A-Za-z0-9_]*",
                                        key, var);
                        goto done;
                }
                if (strlen(value) > ENV_VALUE_MAX) {
                        sq_config_error(errstr, errstr_size, origin,
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
                        best = sq_config_suggest(field, &agent_fields[0].name,
                                                 SQ_ARRAY_SIZE(agent_fields),
                                                 sizeof(agent_fields[0]));
                        sq_config_error(errstr, errstr_size, origin,
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
                        sq_config_error(errstr, errstr_size, origin,
                                        "%s=%s: %s", key, value, why);
                        goto done;
                }
        }

        agent = agent_find(conf, name, namelen);
        if (!agent) {
                if (conf->agents_cnt == SQ_CONFIG_MAX_AGENTS) {
                        sq_config_error(
                            errstr, errstr_size, origin,
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
        const char *kind =
            sq_config_sym_name(agent_kind_syms, (int)agent->kind);

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
        const char *kind =
            sq_config_sym_name(agent_kind_syms, (int)agent->kind);
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
                        sq_errstr_set(errstr, errstr_size,
                                      "agent.%s.handler is not set and \"%s\" "
                                      "is not a builtin handler name: set "
                                      "agent.%s.handler to one of %s",
                                      agent->name, agent->name, agent->name,
                                      BUILTIN_HANDLERS_LIST);
                        return SQ_ERR_CONFIG;
                }
                agent->handler = sq_strdup(agent->name);
        }
        if (!builtin_handler_valid(agent->handler)) {
                sq_errstr_set(errstr, errstr_size,
                              "agent.%s.handler=%s: unknown builtin handler; "
                              "expected one of %s",
                              agent->name, agent->handler,
                              BUILTIN_HANDLERS_LIST);
                return SQ_ERR_CONFIG;
        }
        if (!agent->capabilities_cnt) {
                agent->capabilities     = sq_malloc(sizeof(char *));
                agent->capabilities[0]  = sq_strdup(agent->handler);
                agent->capabilities_cnt = 1;
        }
        return SQ_OK;
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
                         sq_config_sym_name(agent_kind_syms, (int)agent->kind));
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
        case AF_BOOL: {
                bool b;
                memcpy(&b, field, sizeof(b));
                snprintf(buf, size, "%s", b ? "true" : "false");
                return buf;
        }
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

sq_err_t sq_config_agents_finalize(sq_config_t *conf, char *errstr,
                                   size_t errstr_size) {
        sq_agent_conf_t *agent;
        sq_err_t err;
        size_t i;

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
                        return err;
        }
        return SQ_OK;
}

bool sq_config_agent_field_reloadable(const char *field) {
        size_t f;

        if (!strncmp(field, "env.", 4))
                return field[4] != '\0';
        for (f = 0; f < SQ_ARRAY_SIZE(agent_fields); f++) {
                if (!strcmp(agent_fields[f].name, field))
                        return true;
        }
        return false; /* not a field */
}

char *sq_config_agent_runtime_fingerprint(const sq_agent_conf_t *agent) {
        char buf[64];
        char *out  = NULL, *value;
        size_t len = 0, f, j;

        /* "field=value\n" per runtime setting, table order, then env. */
#define APPEND(name_, value_)                                                  \
        do {                                                                   \
                size_t add_ = strlen(name_) + strlen(value_) + 2;              \
                out         = sq_realloc(out, len + add_ + 1);                 \
                snprintf(out + len, add_ + 1, "%s=%s\n", name_, value_);       \
                len += add_;                                                   \
        } while (0)
        for (f = 0; f < SQ_ARRAY_SIZE(agent_fields); f++) {
                /* A pool checks its workers' hello against the agent's
                 * capabilities: for a pool they are a runtime setting. */
                bool runtime = agent_fields[f].runtime ||
                               (agent->kind == SQ_AGENT_POOL &&
                                !strcmp(agent_fields[f].name, "capabilities"));
                if (!runtime || !(agent_fields[f].kinds & (1u << agent->kind)))
                        continue;
                value = agent_field_format(agent, &agent_fields[f], buf,
                                           sizeof(buf));
                if (!value)
                        continue;
                APPEND(agent_fields[f].name, value);
                if (value != buf)
                        sq_free(value);
        }
        for (j = 0; j < agent->env_cnt; j++) {
                char name[ENV_NAME_MAX + 8];
                snprintf(name, sizeof(name), "env.%s", agent->env[j].name);
                APPEND(name, agent->env[j].value);
        }
#undef APPEND
        return out ? out : sq_strdup("");
}

void sq_config_agent_dump(const sq_agent_conf_t *agent,
                          void (*emit)(void *opaque, const char *key,
                                       const char *value),
                          void *opaque) {
        char key[SQ_CONFIG_KAFKA_NAME_MAX + 32];
        char buf[64];
        char *value;
        size_t f, j;

        for (f = 0; f < SQ_ARRAY_SIZE(agent_fields); f++) {
                if (!(agent_fields[f].kinds & (1u << agent->kind)))
                        continue;
                value = agent_field_format(agent, &agent_fields[f], buf,
                                           sizeof(buf));
                if (!value)
                        continue; /* unset, no default */
                snprintf(key, sizeof(key), "agent.%s.%s", agent->name,
                         agent_fields[f].name);
                emit(opaque, key, value);
                if (value != buf)
                        sq_free(value);
        }
        for (j = 0; j < agent->env_cnt; j++) {
                snprintf(key, sizeof(key), "agent.%s.env.%s", agent->name,
                         agent->env[j].name);
                emit(opaque, key, agent->env[j].value);
        }
}
