/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_dump.c: every key=value of a configuration, in a stable order,
 * with secrets masked: what --dump-config prints, /status shows and a
 * reload compares.
 *
 * DESIGN
 *   The order is the key table's, then the feature flags, then the
 *   kafka.* keys in the order they were set, then each agent's fields
 *   (those of its kind that have a value) and its env.<VAR>. Every value
 *   goes through one masking step: a key whose name contains password,
 *   secret, sasl.jaas, sasl.oauthbearer.config, ssl.key, token or
 *   credential shows "***" (an empty one stays empty, so "unset" stays
 *   visible). The dump only reads the config: any thread may dump a
 *   finalized config; the strings passed to @p emit live for one call.
 */
#include "config_int.h"

#include <stdio.h>
#include <string.h>

/* The caller's callback, behind the mask. */
typedef struct dump_s {
        void (*emit)(void *opaque, const char *key, const char *value);
        void *opaque;
} dump_t;

/* Keys whose values must never be shown. */
static bool key_is_secret(const char *key) {
        static const char *const words[] = {
            "password", "secret", "sasl.jaas",  "sasl.oauthbearer.config",
            "ssl.key",  "token",  "credential", "user.info",
        };
        size_t i;

        for (i = 0; i < SQ_ARRAY_SIZE(words); i++) {
                if (strcasestr(key, words[i]))
                        return true;
        }
        return false;
}

static void dump_emit(void *opaque, const char *key, const char *value) {
        const dump_t *dump = opaque;
        /* An unset secret shows as unset, not as a mask of nothing. */
        dump->emit(dump->opaque, key,
                   key_is_secret(key) && *value ? "***" : value);
}

void sq_config_dump(const sq_config_t *conf,
                    void (*emit)(void *opaque, const char *key,
                                 const char *value),
                    void *opaque) {
        dump_t dump = {emit, opaque};
        char key[SQ_CONFIG_KAFKA_NAME_MAX + 32];
        char buf[64];
        size_t i;

        for (i = 0; i < sq_config_keys_cnt; i++)
                dump_emit(&dump, sq_config_keys[i].name,
                          sq_config_key_format(conf, &sq_config_keys[i], buf,
                                               sizeof(buf)));

        for (i = 0; i < SQ_FLAG_CNT; i++) {
                snprintf(key, sizeof(key), "flag.%s",
                         sq_flag_name((sq_flag_t)i));
                dump_emit(
                    &dump, key,
                    sq_flag_format(conf->flag_rollout[i], buf, sizeof(buf)));
        }

        for (i = 0; i < conf->kafka_cnt; i++) {
                snprintf(key, sizeof(key), "kafka.%s", conf->kafka[i].name);
                dump_emit(&dump, key, conf->kafka[i].value);
        }

        for (i = 0; i < conf->agents_cnt; i++)
                sq_config_agent_dump(&conf->agents[i], dump_emit, &dump);

        for (i = 0; i < conf->schedules_cnt; i++)
                sq_config_schedule_dump(&conf->schedules[i], dump_emit, &dump);

        for (i = 0; i < conf->ratelimits_cnt; i++)
                sq_config_ratelimit_dump(&conf->ratelimits[i], dump_emit,
                                         &dump);
}
