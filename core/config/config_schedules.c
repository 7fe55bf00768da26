/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_schedules.c: periodic schedule declarations,
 * schedule.<name>.<field>: the field table, parsing each field, the
 * per-schedule checks of finalize and the dump.
 *
 * DESIGN
 *   Like the agent fields (config_agents.c), one row per field holds its
 *   type, range, default and place in sq_schedule_conf_t; a schedule is
 *   declared by the first key naming it and starts with every default;
 *   bit i of set_fields records that row i was set, so finalize can
 *   require a type and exactly one of cron and every.ms. Values are
 *   parsed before anything is stored. No field reloads: the schedules
 *   thread is built at start (docs/schedules.md). Every key of the
 *   family is group-wide (sq_config_key_scope()): the instance that owns
 *   topic.schedules fires what its own configuration says. One thread,
 *   before sq_config_finalize().
 */
#include "config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOAD_MAX 65536

typedef enum {
        SF_CRON,     /* char *, a cron expression */
        SF_INT64,    /* int64_t, [min, max] */
        SF_MISSED,   /* sq_missed_t */
        SF_STRING,   /* char *, [min, max] bytes */
        SF_CAPS,     /* capability list */
        SF_PRIORITY, /* sq_priority_t */
} sched_field_type_t;

typedef struct sched_field_s {
        const char *name;
        sched_field_type_t type;
        int64_t min;
        int64_t max;
        size_t offset;
        const char *def; /* default as text; NULL: none */
} sched_field_t;

#define SOFF(field) offsetof(sq_schedule_conf_t, field)

static const sched_field_t sched_fields[] = {
    {"cron", SF_CRON, 0, 0, SOFF(cron), NULL},
    {"every.ms", SF_INT64, 100, INT64_C(31622400000), SOFF(every_ms), NULL},
    {"missed", SF_MISSED, 0, 0, SOFF(missed), "all"},
    {"type", SF_STRING, 1, 255, SOFF(type), NULL},
    {"capabilities", SF_CAPS, 0, 0, SOFF(capabilities), NULL},
    {"payload", SF_STRING, 0, PAYLOAD_MAX, SOFF(payload), ""},
    {"priority", SF_PRIORITY, 0, 0, SOFF(priority), "NORMAL"},
    {"timeout.ms", SF_INT64, 0, 604800000, SOFF(timeout_ms), "0"},
};
enum { F_CRON = 0, F_EVERY = 1, F_TYPE = 3 };

static const sq_config_sym_t missed_syms[] = {
    {"all", SQ_MISSED_ALL},
    {"once", SQ_MISSED_ONCE},
    {"skip", SQ_MISSED_SKIP},
    {NULL, 0},
};

static void fields_list(char *buf, size_t size) {
        size_t i, len = 0;
        buf[0] = '\0';
        for (i = 0; i < SQ_ARRAY_SIZE(sched_fields) && len < size; i++)
                len += (size_t)snprintf(buf + len, size - len, "%s%s",
                                        i ? ", " : "", sched_fields[i].name);
}

/* Parses @p value for @p f and stores it in @p sched; false with why. */
static bool field_apply(sq_schedule_conf_t *sched, const sched_field_t *f,
                        const char *value, char *why, size_t why_size) {
        char *at = (char *)sched + f->offset;
        char *str, *old;

        switch (f->type) {
        case SF_CRON: {
                sq_cron_t cron;
                if (sq_cron_parse(value, &cron, why, why_size) != SQ_OK)
                        return false;
                str = sq_strdup(value);
                memcpy(&sched->spec.cron, &cron, sizeof(cron));
                sq_free(sched->cron);
                sched->cron = str;
                return true;
        }
        case SF_INT64: {
                char *end;
                long long v;
                errno = 0;
                v     = strtoll(value, &end, 10);
                if (errno || end == value || *end || v < f->min || v > f->max) {
                        snprintf(why, why_size,
                                 "expected an integer from %lld to %lld",
                                 (long long)f->min, (long long)f->max);
                        return false;
                }
                memcpy(at, &(int64_t){v}, sizeof(int64_t));
                return true;
        }
        case SF_MISSED: {
                const sq_config_sym_t *sym =
                    sq_config_sym_find(missed_syms, value);
                if (!sym) {
                        snprintf(why, why_size, "expected all, once or skip");
                        return false;
                }
                sched->missed = (sq_missed_t)sym->value;
                return true;
        }
        case SF_STRING:
                if (!sq_config_string_valid(value, f->min, f->max)) {
                        snprintf(why, why_size,
                                 "expected %lld to %lld characters, no "
                                 "control characters",
                                 (long long)f->min, (long long)f->max);
                        return false;
                }
                str = sq_strdup(value);
                memcpy(&old, at, sizeof(old));
                sq_free(old);
                memcpy(at, &str, sizeof(str));
                return true;
        case SF_CAPS: {
                char **caps = NULL;
                size_t cnt  = 0;
                if (*value &&
                    !sq_config_caps_parse(value, &caps, &cnt, why, why_size))
                        return false;
                sq_config_caps_free(sched->capabilities,
                                    sched->capabilities_cnt);
                sched->capabilities     = caps;
                sched->capabilities_cnt = cnt;
                return true;
        }
        case SF_PRIORITY: {
                sq_priority_t prio;
                if (sq_priority_parse(value, &prio) != SQ_OK) {
                        snprintf(why, why_size,
                                 "expected LOW, NORMAL, HIGH or CRITICAL");
                        return false;
                }
                sched->priority = prio;
                return true;
        }
        }
        return false;
}

static sq_schedule_conf_t *schedule_add(sq_config_t *conf, const char *name,
                                        size_t namelen) {
        sq_schedule_conf_t *sched;
        char why[256];
        size_t i;

        conf->schedules = sq_realloc(
            conf->schedules, (conf->schedules_cnt + 1) * sizeof(*sched));
        sched = &conf->schedules[conf->schedules_cnt++];
        memset(sched, 0, sizeof(*sched));
        sched->name = sq_malloc(namelen + 1);
        memcpy(sched->name, name, namelen);
        sched->name[namelen] = '\0';
        for (i = 0; i < SQ_ARRAY_SIZE(sched_fields); i++) {
                if (!sched_fields[i].def)
                        continue;
                if (!field_apply(sched, &sched_fields[i], sched_fields[i].def,
                                 why, sizeof(why)))
                        sq_assert(!"a schedule field's default is invalid");
        }
        return sched;
}

sq_err_t sq_config_schedule_set(sq_config_t *conf, const char *key,
                                const char *value, const char *origin,
                                char *errstr, size_t errstr_size) {
        const char *name = key + strlen("schedule.");
        const char *dot  = strchr(name, '.');
        const char *field, *best;
        sq_schedule_conf_t *sched = NULL;
        char list[256], why[256];
        size_t namelen, f, i;

        fields_list(list, sizeof(list));
        if (!dot) {
                sq_config_error(errstr, errstr_size, origin,
                                "\"%s\" is not a schedule key: expected "
                                "schedule.<name>.<field> with field %s",
                                key, list);
                return SQ_ERR_CONFIG;
        }
        namelen = (size_t)(dot - name);
        field   = dot + 1;
        if (!sq_config_name_valid(name, namelen)) {
                sq_config_error(errstr, errstr_size, origin,
                                "%s: invalid schedule name \"%.*s\": expected "
                                "1 to 64 characters from [A-Za-z0-9_-]",
                                key, (int)SQ_MIN(namelen, 100), name);
                return SQ_ERR_CONFIG;
        }
        for (f = 0; f < SQ_ARRAY_SIZE(sched_fields); f++)
                if (!strcmp(field, sched_fields[f].name))
                        break;
        if (f == SQ_ARRAY_SIZE(sched_fields)) {
                best = sq_config_suggest(field, &sched_fields[0].name,
                                         SQ_ARRAY_SIZE(sched_fields),
                                         sizeof(sched_fields[0]));
                sq_config_error(errstr, errstr_size, origin,
                                "%s: unknown schedule field \"%s\" (expected "
                                "%s)%s%s%s",
                                key, field, list, best ? "; did you mean " : "",
                                best ? best : "", best ? "?" : "");
                return SQ_ERR_CONFIG;
        }
        for (i = 0; i < conf->schedules_cnt && !sched; i++)
                if (strlen(conf->schedules[i].name) == namelen &&
                    !memcmp(conf->schedules[i].name, name, namelen))
                        sched = &conf->schedules[i];
        if (!sched) {
                /* Validate before declaring: a bad first key declares
                 * nothing. */
                sq_schedule_conf_t probe = {0};
                bool ok = field_apply(&probe, &sched_fields[f], value, why,
                                      sizeof(why));
                sq_config_schedule_term(&probe);
                if (!ok)
                        goto bad;
                sched = schedule_add(conf, name, namelen);
        }
        if (!field_apply(sched, &sched_fields[f], value, why, sizeof(why)))
                goto bad;
        sched->set_fields |= 1u << f;
        if (f == F_EVERY)
                sched->spec.every_ms = sched->every_ms;
        return SQ_OK;
bad:
        sq_config_error(errstr, errstr_size, origin, "%s=%.200s: %s", key,
                        value, why);
        return SQ_ERR_CONFIG;
}

sq_err_t sq_config_schedules_finalize(sq_config_t *conf, char *errstr,
                                      size_t errstr_size) {
        size_t i;

        for (i = 0; i < conf->schedules_cnt; i++) {
                const sq_schedule_conf_t *sched = &conf->schedules[i];
                bool cron  = sched->set_fields & (1u << F_CRON);
                bool every = sched->set_fields & (1u << F_EVERY);

                if (!(sched->set_fields & (1u << F_TYPE))) {
                        sq_errstr_set(errstr, errstr_size,
                                      "schedule.%s.type is not set: a "
                                      "schedule needs the type of the task "
                                      "it submits",
                                      sched->name);
                        return SQ_ERR_CONFIG;
                }
                if (cron == every) {
                        sq_errstr_set(errstr, errstr_size,
                                      "schedule.%s: set one of "
                                      "schedule.%s.cron and "
                                      "schedule.%s.every.ms%s",
                                      sched->name, sched->name, sched->name,
                                      cron ? ", not both" : "");
                        return SQ_ERR_CONFIG;
                }
        }
        return SQ_OK;
}

void sq_config_schedule_term(sq_schedule_conf_t *sched) {
        sq_free(sched->name);
        sq_free(sched->cron);
        sq_free(sched->type);
        sq_free(sched->payload);
        sq_config_caps_free(sched->capabilities, sched->capabilities_cnt);
}

void sq_config_schedule_dump(const sq_schedule_conf_t *sched,
                             void (*emit)(void *opaque, const char *key,
                                          const char *value),
                             void *opaque) {
        char key[128], buf[4096];
        size_t i, len;

#define EMIT(field, value)                                                     \
        do {                                                                   \
                snprintf(key, sizeof(key), "schedule.%s.%s", sched->name,      \
                         field);                                               \
                emit(opaque, key, value);                                      \
        } while (0)
        if (sched->cron)
                EMIT("cron", sched->cron);
        else {
                snprintf(buf, sizeof(buf), "%lld", (long long)sched->every_ms);
                EMIT("every.ms", buf);
        }
        EMIT("missed", sq_config_sym_name(missed_syms, (int)sched->missed));
        EMIT("type", sched->type ? sched->type : "");
        buf[0] = '\0';
        for (i = 0, len = 0; i < sched->capabilities_cnt && len < sizeof(buf);
             i++)
                len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
                                        i ? "," : "", sched->capabilities[i]);
        if (sched->capabilities_cnt)
                EMIT("capabilities", buf);
        if (sched->payload && *sched->payload)
                EMIT("payload", sched->payload);
        EMIT("priority", sq_priority_name(sched->priority));
        snprintf(buf, sizeof(buf), "%lld", (long long)sched->timeout_ms);
        EMIT("timeout.ms", buf);
#undef EMIT
}
