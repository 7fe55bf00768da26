/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_ratelimits.c: rate limit declarations, ratelimit.<name>.<field>:
 * what a limit matches (a task type, or a capability), its group-wide
 * rate and burst; parsing, the checks of finalize and the dump.
 *
 * DESIGN
 *   A small field table like the schedules' (config_schedules.c). A limit
 *   is declared by the first key naming it; bit i of set_fields records
 *   that field i was set, so finalize can require a rate and exactly one
 *   of type and capability. rate and burst reload (the buckets take the
 *   new numbers, consumer/instance/ratelimits.c); what a limit matches,
 *   and adding or removing a limit, waits for a restart. Every key of the
 *   family is group-wide: each instance takes its share of the same
 *   limit. One thread, before sq_config_finalize().
 */
#include "config_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rl_field_s {
        const char *name;
        bool number; /* a number in [min, max], else a 1-255 byte string */
        double min;
        double max;
        bool reload;
} rl_field_t;

static const rl_field_t rl_fields[] = {
    {"type", false, 0, 0, false},
    {"capability", false, 0, 0, false},
    {"rate", true, 0.001, 1000000, true},
    {"burst", true, 0, 1000000, true},
};
enum { F_TYPE = 0, F_CAP = 1, F_RATE = 2, F_BURST = 3 };

bool sq_config_ratelimit_field_reloadable(const char *field) {
        size_t f;
        for (f = 0; f < SQ_ARRAY_SIZE(rl_fields); f++)
                if (!strcmp(field, rl_fields[f].name))
                        return rl_fields[f].reload;
        return false;
}

/* Parses @p value for field @p f into @p rl; false with why. */
static bool field_apply(sq_ratelimit_conf_t *rl, size_t f, const char *value,
                        char *why, size_t why_size) {
        if (rl_fields[f].number) {
                char *end;
                double v;
                errno = 0;
                v     = strtod(value, &end);
                if (errno || end == value || *end || !isfinite(v) ||
                    v < rl_fields[f].min || v > rl_fields[f].max) {
                        snprintf(why, why_size,
                                 "expected a number from %g to %g%s",
                                 rl_fields[f].min, rl_fields[f].max,
                                 f == F_BURST ? " (0: one second's worth)"
                                              : " (tasks per second)");
                        return false;
                }
                if (f == F_RATE)
                        rl->rate = v;
                else
                        rl->burst = v;
                return true;
        }
        if (!sq_config_string_valid(value, 1, 255)) {
                snprintf(why, why_size,
                         "expected 1 to 255 characters, no control "
                         "characters");
                return false;
        }
        if (f == F_TYPE) {
                sq_free(rl->type);
                rl->type = sq_strdup(value);
        } else {
                sq_free(rl->capability);
                rl->capability = sq_strdup(value);
        }
        return true;
}

sq_err_t sq_config_ratelimit_set(sq_config_t *conf, const char *key,
                                 const char *value, const char *origin,
                                 char *errstr, size_t errstr_size) {
        const char *name = key + strlen("ratelimit.");
        const char *dot  = strchr(name, '.');
        const char *field, *best;
        sq_ratelimit_conf_t *rl = NULL, probe;
        char why[256];
        size_t namelen, f, i;
        bool ok;

        if (!dot) {
                sq_config_error(errstr, errstr_size, origin,
                                "\"%s\" is not a rate limit key: expected "
                                "ratelimit.<name>.<field> with field type, "
                                "capability, rate or burst",
                                key);
                return SQ_ERR_CONFIG;
        }
        namelen = (size_t)(dot - name);
        field   = dot + 1;
        if (!sq_config_name_valid(name, namelen)) {
                sq_config_error(errstr, errstr_size, origin,
                                "%s: invalid rate limit name \"%.*s\": "
                                "expected 1 to 64 characters from "
                                "[A-Za-z0-9_-]",
                                key, (int)SQ_MIN(namelen, 100), name);
                return SQ_ERR_CONFIG;
        }
        for (f = 0; f < SQ_ARRAY_SIZE(rl_fields); f++)
                if (!strcmp(field, rl_fields[f].name))
                        break;
        if (f == SQ_ARRAY_SIZE(rl_fields)) {
                best = sq_config_suggest(field, &rl_fields[0].name,
                                         SQ_ARRAY_SIZE(rl_fields),
                                         sizeof(rl_fields[0]));
                sq_config_error(errstr, errstr_size, origin,
                                "%s: unknown rate limit field \"%s\" "
                                "(expected type, capability, rate or "
                                "burst)%s%s%s",
                                key, field, best ? "; did you mean " : "",
                                best ? best : "", best ? "?" : "");
                return SQ_ERR_CONFIG;
        }
        /* Parsed on a probe first: a bad value declares nothing. */
        memset(&probe, 0, sizeof(probe));
        ok = field_apply(&probe, f, value, why, sizeof(why));
        sq_config_ratelimit_term(&probe);
        if (!ok) {
                sq_config_error(errstr, errstr_size, origin, "%s=%.200s: %s",
                                key, value, why);
                return SQ_ERR_CONFIG;
        }
        for (i = 0; i < conf->ratelimits_cnt && !rl; i++)
                if (strlen(conf->ratelimits[i].name) == namelen &&
                    !memcmp(conf->ratelimits[i].name, name, namelen))
                        rl = &conf->ratelimits[i];
        if (!rl) {
                conf->ratelimits =
                    sq_realloc(conf->ratelimits, (conf->ratelimits_cnt + 1) *
                                                     sizeof(*conf->ratelimits));
                rl = &conf->ratelimits[conf->ratelimits_cnt++];
                memset(rl, 0, sizeof(*rl));
                rl->name = sq_malloc(namelen + 1);
                memcpy(rl->name, name, namelen);
                rl->name[namelen] = '\0';
        }
        field_apply(rl, f, value, why, sizeof(why));
        rl->set_fields |= 1u << f;
        return SQ_OK;
}

sq_err_t sq_config_ratelimits_finalize(sq_config_t *conf, char *errstr,
                                       size_t errstr_size) {
        size_t i;

        for (i = 0; i < conf->ratelimits_cnt; i++) {
                sq_ratelimit_conf_t *rl = &conf->ratelimits[i];
                if (!(rl->set_fields & (1u << F_RATE))) {
                        sq_errstr_set(errstr, errstr_size,
                                      "ratelimit.%s.rate is not set: a rate "
                                      "limit needs its tasks per second",
                                      rl->name);
                        return SQ_ERR_CONFIG;
                }
                if (!rl->type == !rl->capability) {
                        sq_errstr_set(errstr, errstr_size,
                                      "ratelimit.%s: set one of "
                                      "ratelimit.%s.type and "
                                      "ratelimit.%s.capability%s",
                                      rl->name, rl->name, rl->name,
                                      rl->type ? ", not both" : "");
                        return SQ_ERR_CONFIG;
                }
        }
        return SQ_OK;
}

double sq_config_ratelimit_burst(const sq_ratelimit_conf_t *rl) {
        return rl->burst > 0 ? rl->burst : fmax(1.0, rl->rate);
}

void sq_config_ratelimit_term(sq_ratelimit_conf_t *rl) {
        sq_free(rl->name);
        sq_free(rl->type);
        sq_free(rl->capability);
}

void sq_config_ratelimit_dump(const sq_ratelimit_conf_t *rl,
                              void (*emit)(void *opaque, const char *key,
                                           const char *value),
                              void *opaque) {
        char key[128], buf[64];

        if (rl->type) {
                snprintf(key, sizeof(key), "ratelimit.%s.type", rl->name);
                emit(opaque, key, rl->type);
        }
        if (rl->capability) {
                snprintf(key, sizeof(key), "ratelimit.%s.capability", rl->name);
                emit(opaque, key, rl->capability);
        }
        snprintf(key, sizeof(key), "ratelimit.%s.rate", rl->name);
        snprintf(buf, sizeof(buf), "%g", rl->rate);
        emit(opaque, key, buf);
        snprintf(key, sizeof(key), "ratelimit.%s.burst", rl->name);
        snprintf(buf, sizeof(buf), "%g", rl->burst);
        emit(opaque, key, buf);
}
