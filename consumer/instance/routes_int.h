/* SPDX-License-Identifier: Apache-2.0 */
/*
 * routes_int.h: the instance's HTTP server and its routes (routes.c).
 *
 * DESIGN
 *   Main sets it up before sq_http_start() and destroys it first, before
 *   anything its handlers read.
 */
#ifndef SQ_ROUTES_INT_H
#define SQ_ROUTES_INT_H

#include <stdatomic.h>
#include <stddef.h>

#include "common.h"
#include "daemon.h"

/**
 * Admin actions (POST /admin/...). The HTTP thread sets the flags, the
 * poll thread applies them (pauses, commits) and announces each state
 * once; /readyz and /status read them.
 */
typedef struct sq_admin_s {
        char *token;          /* NULL: admin actions off (main) */
        atomic_bool paused;   /* pause or drain asked */
        atomic_bool draining; /* drain asked: not ready */
        atomic_bool drained;  /* drain done: window empty, committed */
        int announced;        /* poll thread: the last state announced */
} sq_admin_t;

/**
 * @brief Creates the HTTP server (limits, TLS), loads the admin token and
 *        registers every route (status.c's too).
 * @returns SQ_OK, or an error with @p errstr naming the key.
 * @locality main
 */
sq_err_t sq_routes_setup(sq_daemon_t *daemon, char *errstr, size_t errstr_size);

/**
 * @brief Destroys the HTTP server (no-op when none) and cleanses the
 *        admin token.
 * @locality main
 */
void sq_routes_destroy(sq_daemon_t *daemon);

#endif /* SQ_ROUTES_INT_H */
