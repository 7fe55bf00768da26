/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reload_int.h: applying a reloaded configuration (reload.c); the
 * public entry points are sq_daemon_reload() and
 * sq_daemon_reload_rejected() in daemon.h.
 *
 * DESIGN
 *   The signal thread reloads; main frees what the last reload left.
 */
#ifndef SQ_RELOAD_INT_H
#define SQ_RELOAD_INT_H

#include <pthread.h>

#include "config.h"
#include "daemon.h"

/** What reloads keep (reload.c). */
typedef struct sq_reload_s {
        pthread_mutex_t lock; /* one reload at a time */
        /* The configuration running since the last reload, for /status:
         * the reloadable keys from the reloaded file, the rest as the
         * instance started (they wait for a restart). Dump form (secrets
         * masked); NULL before the first reload. Under the instance's
         * snap_lock. */
        sq_kv_t *running_conf;
        size_t running_conf_cnt;
} sq_reload_t;

/** @brief Initializes the reload lock. Main. */
void sq_reload_init(sq_daemon_t *daemon);

/**
 * @brief Frees the running configuration the last reload left for
 *        /status and destroys the lock. With the HTTP server destroyed
 *        and no reload running.
 * @locality main
 */
void sq_reload_term(sq_daemon_t *daemon);

#endif /* SQ_RELOAD_INT_H */
