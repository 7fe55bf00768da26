/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schemas.c: the instance's Schema Registry: the shared client, start-up
 * registration with back-off, and the back-off of records whose writer
 * schema could not be fetched (schemas_int.h has the DESIGN).
 */
#include "daemon_int.h"
#include "log.h"
#include "schemas_int.h"

#include <inttypes.h>
#include <string.h>

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000

sq_err_t sq_schemas_init(sq_daemon_t *daemon, char *errstr,
                         size_t errstr_size) {
        sq_schemas_t *state     = &daemon->schemas;
        const sq_config_t *conf = daemon->conf;
        sq_schema_registry_conf_t rconf;
        char why[512];

        pthread_mutex_init(&state->lock, NULL);
        state->backoff_ms       = BACKOFF_MIN_MS;
        state->fetch_backoff_ms = BACKOFF_MIN_MS;
        if (!conf->schema_registry_url || !*conf->schema_registry_url) {
                atomic_store(&state->ready, true);
                return SQ_OK;
        }
        rconf.url         = conf->schema_registry_url;
        rconf.userinfo    = conf->schema_registry_user_info;
        rconf.ca_location = conf->schema_registry_ca_location;
        rconf.timeout_ms  = conf->schema_registry_timeout_ms;
        rconf.cache_max   = conf->schema_registry_cache_max;
        if (!(state->reg = sq_schema_registry_new(&rconf, why, sizeof(why)))) {
                sq_errstr_set(errstr, errstr_size, "%s", why);
                return SQ_ERR_CONFIG;
        }
        snprintf(state->why, sizeof(state->why),
                 "the schemas are not registered in the schema registry %s "
                 "yet",
                 sq_schema_registry_url(state->reg));
        return SQ_OK;
}

void sq_schemas_term(sq_daemon_t *daemon) {
        sq_schema_registry_destroy(daemon->schemas.reg);
        daemon->schemas.reg = NULL;
        pthread_mutex_destroy(&daemon->schemas.lock);
}

void sq_schemas_use(sq_daemon_t *daemon, sq_codec_t *codec) {
        sq_codec_set_json_output(codec,
                                 daemon->conf->output_format == SQ_OUTPUT_JSON);
        if (daemon->schemas.reg)
                sq_codec_use_registry(codec, daemon->schemas.reg);
}

bool sq_schemas_ready(sq_daemon_t *daemon) {
        return atomic_load(&daemon->schemas.ready);
}

static void set_why(sq_schemas_t *state, const char *why) {
        pthread_mutex_lock(&state->lock);
        sq_strlcpy(state->why, why, sizeof(state->why));
        pthread_mutex_unlock(&state->lock);
}

void sq_schemas_why(sq_daemon_t *daemon, char *buf, size_t size) {
        sq_schemas_t *state = &daemon->schemas;
        buf[0]              = '\0';
        if (atomic_load(&state->ready) && !atomic_load(&state->fetch_failing))
                return;
        pthread_mutex_lock(&state->lock);
        sq_strlcpy(buf, state->why, size);
        pthread_mutex_unlock(&state->lock);
}

/* One registration try: every subject of swarmq's topics. */
static sq_err_t register_all(sq_daemon_t *daemon, char *errstr,
                             size_t errstr_size) {
        const sq_config_t *conf = daemon->conf;
        const struct {
                sq_codec_kind_t kind;
                const char *topic;
        } subjects[] = {
            {SQ_CODEC_KIND_TASK, conf->topic_tasks},
            {SQ_CODEC_KIND_TASK, conf->topic_critical},
            {SQ_CODEC_KIND_RESULT, conf->topic_results},
            {SQ_CODEC_KIND_EVENT, conf->topic_events},
        };
        uint32_t ids[SQ_ARRAY_SIZE(subjects)];
        sq_err_t err;
        size_t i;

        for (i = 0; i < SQ_ARRAY_SIZE(subjects); i++) {
                err = sq_codec_register_schema(
                    daemon->schemas.reg, subjects[i].kind, subjects[i].topic,
                    &ids[i], errstr, errstr_size);
                if (err != SQ_OK)
                        return err;
        }
        SQ_LOG(SQ_LOG_NOTICE, "SCHEMA",
               "registered in the schema registry %s: %s-value id=%" PRIu32
               " %s-value id=%" PRIu32 " %s-value id=%" PRIu32
               " %s-value id=%" PRIu32,
               sq_schema_registry_url(daemon->schemas.reg), conf->topic_tasks,
               ids[0], conf->topic_critical, ids[1], conf->topic_results,
               ids[2], conf->topic_events, ids[3]);
        return SQ_OK;
}

int64_t sq_schemas_tick(sq_daemon_t *daemon, int64_t now_us) {
        sq_schemas_t *state = &daemon->schemas;
        char errstr[512], why[600];

        if (atomic_load(&state->ready))
                return INT64_MAX;
        if (now_us < state->next_try_us)
                return state->next_try_us;
        if (register_all(daemon, errstr, sizeof(errstr)) == SQ_OK) {
                atomic_store(&state->ready, true);
                sq_daemon_wake(daemon); /* serve the consumer now */
                return INT64_MAX;
        }
        snprintf(why, sizeof(why), "%s; retrying in %.1f s", errstr,
                 (double)state->backoff_ms / 1000.0);
        SQ_LOG(SQ_LOG_WARNING, "SCHEMA",
               "cannot register swarmq's schemas, no task is taken until "
               "they are: %s",
               why);
        set_why(state, why);
        state->next_try_us = sq_clock_us() + state->backoff_ms * 1000;
        state->backoff_ms  = SQ_MIN(state->backoff_ms * 2, BACKOFF_MAX_MS);
        return state->next_try_us;
}

int64_t sq_schemas_fetch_failed(sq_daemon_t *daemon, const char *why) {
        sq_schemas_t *state = &daemon->schemas;
        int64_t now_ms      = sq_wallclock_ms(), wait_ms;
        char msg[600];

        /* One outage, one back-off: partitions that fail during a wait
         * already counted wait until the same moment. */
        if (now_ms < state->fetch_until_ms)
                return state->fetch_until_ms - now_ms;
        wait_ms               = state->fetch_backoff_ms;
        state->fetch_until_ms = now_ms + wait_ms;

        snprintf(msg, sizeof(msg),
                 "a task's writer schema could not be fetched: %s; its "
                 "partition waits %.1f s",
                 why, (double)wait_ms / 1000.0);
        set_why(state, msg);
        atomic_store(&state->fetch_failing, true);
        state->fetch_backoff_ms =
            SQ_MIN(state->fetch_backoff_ms * 2, BACKOFF_MAX_MS);
        return wait_ms;
}

int64_t sq_schemas_fetch_wait_ms(sq_daemon_t *daemon) {
        int64_t now_ms = sq_wallclock_ms();
        return daemon->schemas.fetch_until_ms > now_ms
                   ? daemon->schemas.fetch_until_ms - now_ms
                   : 0;
}

void sq_schemas_fetch_ok(sq_daemon_t *daemon) {
        sq_schemas_t *state = &daemon->schemas;
        if (!atomic_load(&state->fetch_failing))
                return;
        atomic_store(&state->fetch_failing, false);
        state->fetch_backoff_ms = BACKOFF_MIN_MS;
        state->fetch_until_ms   = 0;
}
