/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool.h: `pool` agents: long-lived worker processes that speak the framed
 * protocol of docs/worker-protocol.md over their stdin and stdout.
 *
 * DESIGN
 *   Thread: a pool lives on the I/O loop. sq_pool_submit() (any thread)
 *   posts the task to the loop; everything else (spawning, framing,
 *   timers, replacing workers) runs on the loop thread. The done callback
 *   runs on the loop thread exactly once per submitted task.
 *
 *   Workers: started on demand up to pool.max (and pool.min kept
 *   running), each must send a hello within pool.start.timeout.ms. An
 *   idle worker gets a ping every pool.ping.interval.ms and must answer
 *   within pool.ping.timeout.ms; one that does not is killed and replaced.
 *   Idle workers above pool.min are stopped after pool.idle.timeout.ms;
 *   a worker is recycled after pool.recycle.tasks tasks. A task waits for
 *   a free worker at most pool.acquire.timeout.ms (then FAILED).
 *
 *   Failures: a worker that dies, breaks the protocol or misses a
 *   deadline is killed (SIGKILL to its process group) and replaced; its
 *   task, if any, is retried on another worker up to pool.task.retries
 *   times. Consecutive start failures back off exponentially from
 *   pool.backoff.ms to pool.backoff.max.ms, so a broken worker binary
 *   does not fork in a loop. A task's own deadline kills its worker
 *   (SIGTERM, SIGKILL after kill.grace.ms) and is not retried.
 *
 *   Ownership: the task is borrowed until the done callback; the
 *   outcome's buffers pass to the callback.
 */
#ifndef SQ_POOL_H
#define SQ_POOL_H

#include <stdatomic.h>

#include "common.h"
#include "config.h"
#include "exec.h"
#include "ioloop.h"
#include "task.h"

/** The protocol version this host speaks (the hello's "protocol"). */
#define SQ_POOL_PROTOCOL_VERSION 1

typedef struct sq_pool_s sq_pool_t;

/** Counters and gauges of one pool (read from any thread). */
typedef struct sq_pool_stats_s {
        int workers;  /**< processes alive (starting, idle, busy) */
        int busy;     /**< running a task */
        int waiting;  /**< tasks waiting for a worker */
        long spawned; /**< workers started */
        long crashed; /**< died or broke the protocol */
        long hung;    /**< missed a ping or start deadline */
        long recycled;
        long evicted;   /**< idle above pool.min */
        long timed_out; /**< killed by a task's deadline */
        long retried;   /**< tasks run again after their worker died */
} sq_pool_stats_t;

/**
 * @brief Creates a pool agent (no worker started yet).
 * @param envp borrowed, read now (allow-listed variables).
 */
sq_pool_t *sq_pool_new(sq_ioloop_t *loop, const sq_agent_conf_t *aconf,
                       char *const *envp);

/** @brief Starts pool.min workers (on the loop). Any thread. */
void sq_pool_start(sq_pool_t *pool);

/**
 * @brief Runs @p task on a worker. Any thread; returns at once.
 * @param task borrowed until @p cb is called.
 * @param deadline_us sq_clock_us() deadline, 0 = none.
 */
void sq_pool_submit(sq_pool_t *pool, const sq_task_t *task, int64_t deadline_us,
                    sq_outcome_cb_t *cb, void *opaque);

/**
 * @brief Ends the task with id @p task_id, if this pool has it: waiting
 *        for a worker, it leaves the queue; running, its worker is killed
 *        (and replaced). Its outcome is CANCELLED. Any thread but after
 *        sq_pool_shutdown(); returns at once.
 * @param task_id borrowed (copied).
 */
void sq_pool_cancel(sq_pool_t *pool, const char *task_id);

/**
 * @brief Cancels waiting and running tasks (their callbacks run with a
 *        cancelled outcome), closes every worker's stdin, kills what is
 *        still alive after kill.grace.ms, and waits until all are gone.
 *        Not from the loop thread.
 */
void sq_pool_shutdown(sq_pool_t *pool);

/** @brief Frees the pool; shut it down first. NULL is a no-op. */
void sq_pool_destroy(sq_pool_t *pool);

/** @brief Fills @p stats (relaxed atomics: a consistent-enough view). */
void sq_pool_stats(sq_pool_t *pool, sq_pool_stats_t *stats);

#endif /* SQ_POOL_H */
