/* SPDX-License-Identifier: Apache-2.0 */
/*
 * runtimes_int.h: the out-of-process agents' runtimes (runtimes.c): one
 * exec runtime (children per task) or pool runtime (long-lived workers)
 * per exec or pool agent, built at start and by SIGHUP reloads, drained
 * when a reload replaces or removes them.
 *
 * DESIGN
 *   Each exec or pool agent of a registry is bound to its runtime
 *   (sq_agent_set_runtime()) when the registry is built, so an executor
 *   finds it in O(1) from the agent it selected. Runtimes are never freed
 *   before the instance is: a registry still referenced by a running job
 *   may point to a retired one. A run enters its runtime before it
 *   submits and leaves it when its outcome is in; a retired runtime with
 *   no run inside is stopped (it takes no task after) and shut down by
 *   the drainer thread. A run that finds its runtime stopped goes back to
 *   the scheduler and is selected again on the current registry.
 */
#ifndef SQ_RUNTIMES_INT_H
#define SQ_RUNTIMES_INT_H

#include "agents.h"
#include "common.h"
#include "config.h"
#include "daemon.h"
#include "exec.h"

typedef struct sq_runtime_s sq_runtime_t;
typedef struct sq_runtimes_s sq_runtimes_t;

/**
 * @brief Creates the I/O loop (daemon->executors.ioloop, and its codec)
 *        and a runtime for each exec and pool agent of the registry the
 *        instance starts with, bound to its agents.
 * @returns SQ_OK, or an error with @p errstr set.
 * @locality main, while the instance is built (after sq_registry_load())
 */
sq_err_t sq_runtimes_new(sq_daemon_t *daemon, char *errstr, size_t errstr_size);

/**
 * @brief Starts the I/O loop, the drainer and the pools' workers, before
 *        the executors; registers the runtime metrics.
 * @returns SQ_OK, or an error with @p errstr set.
 * @locality main
 */
sq_err_t sq_runtimes_start(sq_daemon_t *daemon, char *errstr,
                           size_t errstr_size);

/**
 * @brief Binds the exec and pool agents of @p agents (built from @p conf
 *        by a reload, not yet in use) to runtimes: the running runtime of
 *        the same name where its settings are unchanged, else a new one
 *        (started now). Running runtimes left without an agent of
 *        @p conf are retired: they drain, then stop.
 * @locality the reload (signal thread), under reload.lock
 */
void sq_runtimes_bind(sq_daemon_t *daemon, const sq_config_t *conf,
                      sq_agents_t *agents);

/**
 * @brief Enters the runtime of @p agent for one run.
 * @returns the runtime, or NULL when it is stopped (drained after a
 *          reload): the caller puts its job back in the scheduler.
 * @locality any thread
 */
sq_runtime_t *sq_runtime_enter(sq_agent_t *agent);

/**
 * @brief Submits @p task to @p rt (entered); @p cb runs on the I/O loop
 *        with its outcome, after which the caller calls
 *        sq_runtime_leave().
 * @param task borrowed until @p cb is called.
 */
void sq_runtime_submit(sq_runtime_t *rt, const sq_task_t *task,
                       int64_t deadline_us, sq_outcome_cb_t *cb, void *opaque);

/** @brief Leaves @p rt (one run done); wakes the drainer when a retired
 *         runtime is left empty. Any thread. */
void sq_runtime_leave(sq_daemon_t *daemon, sq_runtime_t *rt);

/**
 * @brief Asks every runtime to end the task @p task_id if it runs it
 *        (CANCELLED). Any thread, before sq_runtimes_shutdown() (which
 *        stops the control thread first).
 */
void sq_runtimes_cancel(sq_daemon_t *daemon, const char *task_id);

/**
 * @brief Shuts every runtime down after the executors are joined:
 *        children killed, their jobs dropped; stops the drainer.
 * @locality the poll thread when it stops, or main
 */
void sq_runtimes_shutdown(sq_daemon_t *daemon);

/** @brief Frees the runtimes and the I/O loop. Main. */
void sq_runtimes_destroy(sq_daemon_t *daemon);

/**
 * @brief Frees the runtimes' /metrics collector contexts. Main, after the
 *        metrics registry is destroyed.
 */
void sq_runtimes_free_collectors(sq_daemon_t *daemon);

#endif /* SQ_RUNTIMES_INT_H */
