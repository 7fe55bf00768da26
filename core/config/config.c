/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c: the face of swarmq's configuration (config.h): a config with
 * every default, the one setter every source goes through, the cross-key
 * checks of finalize, kafka.* passthrough and flag.* keys. The key table,
 * agents, loaders, suggestions and dump live in the other config_*.c
 * files (config_int.h has the map).
 *
 * DESIGN
 *   sq_config_set() dispatches by family: kafka.<property> is kept as
 *   given (librdkafka validates it when the client is built), agent.* goes
 *   to config_agents.c, flag.<name> to the feature flags, anything else
 *   must be a row of the key table or it is an error with a suggestion.
 *   Defaults go through the same setter as user values. Cross-key rules
 *   wait for sq_config_finalize(), because sources may set keys in any
 *   order. Everything here runs on one thread before finalize; after it
 *   the config is read-only and shared. Ownership: the config owns every
 *   string and array it points to.
 */
#include "config_int.h"
#include "log.h"
#include "offsets.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static sq_err_t kafka_set(sq_config_t *conf, const char *key, const char *value,
                          const char *origin, char *errstr,
                          size_t errstr_size) {
        const char *name = key + strlen("kafka.");
        sq_kv_t *kv;
        size_t i;

        if (!*name) {
                sq_config_error(errstr, errstr_size, origin,
                                "\"%s\" names no librdkafka property: expected "
                                "kafka.<property>, e.g. "
                                "kafka.bootstrap.servers",
                                key);
                return SQ_ERR_CONFIG;
        }
        if (!sq_config_string_valid(name, 1, SQ_CONFIG_KAFKA_NAME_MAX) ||
            strchr(name, ' ')) {
                sq_config_error(errstr, errstr_size, origin,
                                "\"%.300s\" is not a librdkafka property name: "
                                "expected at most %d characters, no spaces or "
                                "control characters",
                                key, SQ_CONFIG_KAFKA_NAME_MAX);
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

static sq_err_t flag_set(sq_config_t *conf, const char *key, const char *value,
                         const char *origin, char *errstr, size_t errstr_size) {
        const char *name = key + strlen("flag.");
        const char *names[SQ_FLAG_CNT], *best;
        char why[256];
        int flag, bp, i;

        if ((flag = sq_flag_find(name)) < 0) {
                for (i = 0; i < SQ_FLAG_CNT; i++)
                        names[i] = sq_flag_name((sq_flag_t)i);
                best = sq_config_suggest(name, names, SQ_FLAG_CNT,
                                         sizeof(names[0]));
                sq_config_error(errstr, errstr_size, origin,
                                "%s: unknown feature flag \"%s\" (known: "
                                "ranked_selection, work_stealing)%s%s%s",
                                key, name, best ? "; did you mean " : "",
                                best ? best : "", best ? "?" : "");
                return SQ_ERR_CONFIG;
        }
        if (sq_flag_parse(value, &bp, why, sizeof(why)) != SQ_OK) {
                sq_config_error(errstr, errstr_size, origin, "%s=%s: %s", key,
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

        for (i = 0; i < sq_config_keys_cnt; i++) {
                if (!sq_config_keys[i].def)
                        continue;
                if (sq_config_set(conf, sq_config_keys[i].name,
                                  sq_config_keys[i].def, "default", errstr,
                                  sizeof(errstr)) != SQ_OK) {
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
        for (i = 0; i < sq_config_keys_cnt; i++) {
                if (sq_config_keys[i].type != SQ_KEY_STRING &&
                    sq_config_keys[i].type != SQ_KEY_TOPIC)
                        continue;
                memcpy(&str, (char *)conf + sq_config_keys[i].offset,
                       sizeof(str));
                sq_free(str);
        }
        for (i = 0; i < conf->kafka_cnt; i++) {
                sq_free(conf->kafka[i].name);
                sq_free(conf->kafka[i].value);
        }
        sq_free(conf->kafka);
        for (i = 0; i < conf->agents_cnt; i++)
                sq_config_agent_term(&conf->agents[i]);
        sq_free(conf->agents);
        for (i = 0; i < conf->schedules_cnt; i++)
                sq_config_schedule_term(&conf->schedules[i]);
        sq_free(conf->schedules);
        for (i = 0; i < conf->ratelimits_cnt; i++)
                sq_config_ratelimit_term(&conf->ratelimits[i]);
        sq_free(conf->ratelimits);
        sq_free(conf);
}

sq_err_t sq_config_set(sq_config_t *conf, const char *key, const char *value,
                       const char *origin, char *errstr, size_t errstr_size) {
        const sq_config_key_t *def;
        char expect[256];

        sq_assert(conf && key && value);
        if (!strncmp(key, "kafka.", strlen("kafka.")))
                return kafka_set(conf, key, value, origin, errstr, errstr_size);
        if (!strncmp(key, "agent.", strlen("agent.")))
                return sq_config_agent_set(conf, key, value, origin, errstr,
                                           errstr_size);
        if (!strncmp(key, "flag.", strlen("flag.")))
                return flag_set(conf, key, value, origin, errstr, errstr_size);
        if (!strncmp(key, "ratelimit.", strlen("ratelimit.")))
                return sq_config_ratelimit_set(conf, key, value, origin, errstr,
                                               errstr_size);
        if (!strncmp(key, "schedule.", strlen("schedule.")))
                return sq_config_schedule_set(conf, key, value, origin, errstr,
                                              errstr_size);
        def = sq_config_key_find(key);
        if (!def)
                return sq_config_unknown_key(key, origin, errstr, errstr_size);
        if (!sq_config_key_apply(conf, def, value)) {
                sq_config_key_expect(def, expect, sizeof(expect));
                sq_config_error(errstr, errstr_size, origin, "%s=%s: %s", key,
                                value, expect);
                return SQ_ERR_CONFIG;
        }
        return SQ_OK;
}

sq_err_t sq_config_finalize(sq_config_t *conf, char *errstr,
                            size_t errstr_size) {
        const char *const *topics[16];
        const char *names[16];
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

        for (i = 0; i < sq_config_keys_cnt; i++) {
                if (sq_config_keys[i].type != SQ_KEY_TOPIC)
                        continue;
                sq_assert(n < SQ_ARRAY_SIZE(topics));
                names[n]  = sq_config_keys[i].name;
                topics[n] = (const char *const *)((const char *)conf +
                                                  sq_config_keys[i].offset);
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

        err = sq_config_agents_finalize(conf, errstr, errstr_size);
        if (err != SQ_OK)
                goto done;
        err = sq_config_schedules_finalize(conf, errstr, errstr_size);
        if (err != SQ_OK)
                goto done;
        err = sq_config_ratelimits_finalize(conf, errstr, errstr_size);
        if (err != SQ_OK)
                goto done;
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
