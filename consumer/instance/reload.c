/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reload.c: applying a reloaded configuration (SIGHUP): the agents (with
 * their breakers), the feature flags, breaker.when.open and log.level
 * change at once; every other changed key is logged as ignored until a
 * restart, and /status shows the configuration that really runs. Which
 * keys reload is the config key table's reload column
 * (sq_config_key_reloadable()), not a list here.
 *
 * DESIGN
 *   Thread: the signal thread (consumer/main.c); one reload at a time
 *   (reload.lock). The new registry is built beside the running one,
 *   sharing each agent's state by name, then swapped in under registry.lock:
 *   running jobs keep a reference to the registry they were selected
 *   from, parked jobs are selected again on the new one. Exec and pool
 *   agents get their runtimes before the swap (runtimes.c): kept when
 *   their process settings are unchanged, else new, the old one draining.
 *   What /status shows of a reload changes in one step: the flags,
 *   the registry pointer and the running configuration (running_conf)
 *   are published together under snap_lock (registry.lock nested inside
 *   it, never the reverse), and status.c reads the three under it too,
 *   so no snapshot shows a reloaded flag next to the old config.
 */
#include "daemon_int.h"
#include "instance_metrics_int.h"
#include "log.h"
#include "registry_int.h"
#include "reload_int.h"

#include <stdio.h>
#include <string.h>

typedef struct kv_list_s {
        sq_kv_t *kv;
        size_t cnt;
} kv_list_t;

static void kv_collect(void *opaque, const char *key, const char *value) {
        kv_list_t *list = opaque;
        list->kv = sq_realloc(list->kv, (list->cnt + 1) * sizeof(*list->kv));
        list->kv[list->cnt].name  = sq_strdup(key);
        list->kv[list->cnt].value = sq_strdup(value);
        list->cnt++;
}

static void kv_free(kv_list_t *list) {
        size_t i;
        for (i = 0; i < list->cnt; i++) {
                sq_free(list->kv[i].name);
                sq_free(list->kv[i].value);
        }
        sq_free(list->kv);
}

static const char *kv_get(const kv_list_t *list, const char *key) {
        size_t i;
        for (i = 0; i < list->cnt; i++)
                if (!strcmp(list->kv[i].name, key))
                        return list->kv[i].value;
        return NULL;
}

static void list_key(char *buf, size_t size, const char *key) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", len ? ", " : "", key);
}

/* Lists in @p buf the keys, added, removed or changed between the two
 * dumps, that only a restart applies. */
static void restart_only_changes(const kv_list_t *old, const kv_list_t *new,
                                 char *buf, size_t size) {
        size_t i;
        const char *other;

        buf[0] = '\0';
        for (i = 0; i < new->cnt; i++) {
                const char *key = new->kv[i].name;
                if (sq_config_key_reloadable(key) ||
                    !strcmp(key, "instance.id"))
                        continue; /* instance.id: the default has the pid */
                other = kv_get(old, key);
                if (!other || strcmp(other, new->kv[i].value))
                        list_key(buf, size, key);
        }
        for (i = 0; i < old->cnt; i++) {
                const char *key = old->kv[i].name;
                if (!sq_config_key_reloadable(key) && !kv_get(new, key))
                        list_key(buf, size, key);
        }
}

/* What now runs, for /status: reloadable keys from @p new, the others
 * from @p old (the configuration the instance started with).
 * @returns the list (caller owns, free with kv_free). */
static kv_list_t running_conf_build(const kv_list_t *old,
                                    const kv_list_t *new) {
        kv_list_t running = {0};
        size_t i;

        for (i = 0; i < new->cnt; i++)
                if (sq_config_key_reloadable(new->kv[i].name))
                        kv_collect(&running, new->kv[i].name, new->kv[i].value);
        for (i = 0; i < old->cnt; i++)
                if (!sq_config_key_reloadable(old->kv[i].name))
                        kv_collect(&running, old->kv[i].name, old->kv[i].value);
        return running;
}

void sq_daemon_reload_rejected(sq_daemon_t *daemon, const char *why) {
        SQ_LOG(SQ_LOG_ERR, "RELOAD",
               "configuration reload rejected, keeping the running "
               "configuration: %s",
               why);
        sq_metric_add(daemon->m.reloads_error, 1);
}

sq_err_t sq_daemon_reload(sq_daemon_t *daemon, sq_config_t *conf, char *errstr,
                          size_t errstr_size) {
        kv_list_t old_kv = {0}, new_kv = {0}, running, prev;
        sq_agents_out_t out = {0};
        sq_agents_t *agents, *old;
        char ignored[1024], flagbuf[16], flags[256];
        sq_err_t err = SQ_ERR_CONFIG;
        int f;

        if (atomic_load(&daemon->starting)) {
                sq_config_destroy(conf);
                sq_errstr_set(errstr, errstr_size,
                              "the instance is still starting (waiting for "
                              "%s); send SIGHUP again once it runs",
                              atomic_load(&daemon->starting));
                sq_daemon_reload_rejected(daemon, errstr);
                return SQ_ERR_CONFIG;
        }
        pthread_mutex_lock(&daemon->reload.lock);
        old = sq_daemon_agents(daemon);

        agents = sq_agents_new(conf, old, errstr, errstr_size);
        if (!agents) {
                sq_daemon_reload_rejected(daemon, errstr);
                sq_agents_release_ref(old);
                goto done;
        }
        /* Exec and pool agents: their runtimes, kept, new or replaced
         * (a replaced one drains). Before the swap: the new registry is
         * used only once each of its agents has its runtime. */
        sq_runtimes_bind(daemon, conf, agents);
        sq_instance_metrics_register_agents(daemon, agents);
        sq_config_dump(daemon->conf, kv_collect, &old_kv);
        sq_config_dump(conf, kv_collect, &new_kv);
        restart_only_changes(&old_kv, &new_kv, ignored, sizeof(ignored));
        running = running_conf_build(&old_kv, &new_kv);
        /* One step for /status, which reads these three under snap_lock
         * too: a snapshot shows the registry, the flags and the config of
         * the same configuration, never a reloaded flag next to the old
         * config, nor the reverse. */
        pthread_mutex_lock(&daemon->snap_lock);
        sq_flags_set(&daemon->flags, conf->flag_rollout);
        sq_registry_swap(daemon, agents); /* returns old: released below */
        prev.kv                         = daemon->reload.running_conf;
        prev.cnt                        = daemon->reload.running_conf_cnt;
        daemon->reload.running_conf     = running.kv;
        daemon->reload.running_conf_cnt = running.cnt;
        pthread_mutex_unlock(&daemon->snap_lock);
        kv_free(&prev);
        /* The daemon's reference to the old registry goes; running jobs
         * keep theirs. Parked jobs are selected again on the new one. */
        sq_agents_retire(old, &out);
        sq_daemon_agents_out(daemon, NULL, &out);
        sq_agents_release_ref(old); /* ours */
        sq_agents_release_ref(old); /* the daemon's */
        sq_log_set_level((sq_log_level_t)conf->log_level);
        sq_ratelimits_reload(daemon, conf);
        if (ignored[0])
                SQ_LOG(SQ_LOG_WARNING, "RELOAD",
                       "changed keys ignored until restart: %s", ignored);
        flags[0] = '\0';
        for (f = 0; f < SQ_FLAG_CNT; f++) {
                size_t len = strlen(flags);
                snprintf(flags + len, sizeof(flags) - len, "%sflag.%s=%s",
                         f ? " " : "", sq_flag_name((sq_flag_t)f),
                         sq_flag_format(conf->flag_rollout[f], flagbuf,
                                        sizeof(flagbuf)));
        }
        SQ_LOG(SQ_LOG_NOTICE, "RELOAD", "configuration reloaded: agents=%d %s",
               sq_agents_count(agents), flags);
        sq_metric_add(daemon->m.reloads_ok, 1);
        err = SQ_OK;
done:
        pthread_mutex_unlock(&daemon->reload.lock);
        kv_free(&old_kv);
        kv_free(&new_kv);
        sq_config_destroy(conf);
        return err;
}

void sq_reload_init(sq_daemon_t *daemon) {
        pthread_mutex_init(&daemon->reload.lock, NULL);
}

void sq_reload_term(sq_daemon_t *daemon) {
        kv_list_t running = {daemon->reload.running_conf,
                             daemon->reload.running_conf_cnt};
        kv_free(&running);
        daemon->reload.running_conf     = NULL;
        daemon->reload.running_conf_cnt = 0;
        pthread_mutex_destroy(&daemon->reload.lock);
}
