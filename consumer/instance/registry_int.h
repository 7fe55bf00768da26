/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry_int.h: the instance's current agent registry (registry.c).
 *
 * DESIGN
 *   Any thread. The pointer is swapped by a reload under registry.lock;
 *   readers hold a reference, never the lock, while they use it.
 */
#ifndef SQ_REGISTRY_INT_H
#define SQ_REGISTRY_INT_H

#include <pthread.h>

#include "agents.h"
#include "codec.h"
#include "daemon.h"

/**
 * The current agent registry (registry.c). A reload (reload.c) swaps it
 * under lock; every reader takes a reference under lock.
 */
typedef struct sq_registry_s {
        pthread_mutex_t lock;
        sq_agents_t *agents; /* the instance's reference */
} sq_registry_t;

/**
 * @brief The current agent registry, with a reference.
 * @returns the registry (release with sq_agents_release_ref()).
 * @locality any thread
 * @locks registry.lock, briefly
 */
sq_agents_t *sq_daemon_agents(sq_daemon_t *daemon);

/**
 * @brief Acts on a registry call's side effects after its lock: requeues
 *        jobs (drops them when the instance is stopping), logs breaker
 *        transitions and produces their events, counts stolen jobs, wakes
 *        the poll thread when a breaker opened (its timer). Resets @p out.
 * @param codec the calling thread's codec (borrowed), or NULL to log the
 *        transitions without events.
 * @param out borrowed.
 * @locality any thread, with no registry lock held
 */
void sq_daemon_agents_out(sq_daemon_t *daemon, sq_codec_t *codec,
                          sq_agents_out_t *out);

/** @brief Initializes the registry's lock (no registry yet). Main. */
void sq_registry_init(sq_daemon_t *daemon);

/**
 * @brief Releases the instance's reference to the registry and destroys
 *        the lock. Main, with every other thread stopped.
 */
void sq_registry_term(sq_daemon_t *daemon);

/**
 * @brief Builds the first registry from the instance's configuration.
 * @returns SQ_OK, or SQ_ERR_CONFIG with @p errstr naming the agent key.
 * @locality main, before any thread starts
 */
sq_err_t sq_registry_load(sq_daemon_t *daemon, char *errstr,
                          size_t errstr_size);

/**
 * @brief Makes @p agents the current registry.
 * @param agents takes ownership (the instance's reference).
 * @returns the registry it replaced (caller owns the instance's
 *          reference: release with sq_agents_release_ref()).
 * @locality the signal thread (reload)
 * @locks registry.lock, briefly
 */
sq_agents_t *sq_registry_swap(sq_daemon_t *daemon, sq_agents_t *agents);

#endif /* SQ_REGISTRY_INT_H */
