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

#include "daemon.h"

/**
 * @brief Frees the running configuration the last reload left for
 *        /status. With the HTTP server destroyed.
 * @locality main
 */
void sq_reload_term(sq_daemon_t *daemon);

#endif /* SQ_RELOAD_INT_H */
