/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ratelimits_int.h: rate limits per task type or capability, applied
 * across the group (ratelimits.c): the buckets, the jobs they hold back,
 * and each instance's share.
 *
 * DESIGN
 *   Executors take tokens (sq_ratelimits_hold()); a job that may not start
 *   yet goes to the hold lane, a min-heap by start time that the rate
 *   limit thread empties back into the scheduler when each is due. The
 *   thread also recomputes the shares after a rebalance. The heap is
 *   under its own lock; counts are atomics the HTTP thread reads.
 */
#ifndef SQ_RATELIMITS_INT_H
#define SQ_RATELIMITS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common.h"
#include "config.h"
#include "daemon.h"
#include "ratelimit.h"

typedef struct sq_job_s sq_job_t;

/* One job held back: when it may start, and the limit that said so. */
typedef struct sq_rl_held_s {
        int64_t start_us;
        sq_job_t *job;
        size_t limit;
} sq_rl_held_t;

typedef struct sq_ratelimits_s {
        size_t cnt;              /* limits: conf->ratelimits_cnt */
        sq_ratelimit_t *buckets; /* one per limit */
        atomic_long *held;       /* per limit: jobs held now */
        atomic_llong *delayed;   /* per limit: tasks held back, in all */
        atomic_int owned;        /* partitions owned at the last share */
        atomic_int total;        /* partitions of the group's topics */
        pthread_mutex_t lock;    /* the heap, rebalanced, stopping */
        pthread_cond_t cond;     /* CLOCK_MONOTONIC */
        sq_rl_held_t *heap;      /* min-heap by start_us */
        size_t heap_cnt, heap_cap;
        bool rebalanced; /* shares to compute again */
        bool stopping;
        pthread_t thread;
        bool started;
} sq_ratelimits_t;

/** @brief Builds the buckets of the configured limits. Main. */
void sq_ratelimits_init(sq_daemon_t *daemon);
/** @brief Starts the rate limit thread (only with limits). Main. */
sq_err_t sq_ratelimits_start(sq_daemon_t *daemon, char *errstr,
                             size_t errstr_size);
/** @brief Stops the thread; drops the jobs still held. Idempotent. */
void sq_ratelimits_stop(sq_daemon_t *daemon);
/** @brief Frees the buckets. Main, every thread stopped. */
void sq_ratelimits_term(sq_daemon_t *daemon);

/**
 * @brief Takes a token of every limit @p job's task matches, once per
 *        job. A job that may start now is left to run (false); one that
 *        must wait is held and handed back to the scheduler when due
 *        (true: the caller lets go of it). Stopping, or its partition
 *        being revoked, a job that would wait is dropped instead (true):
 *        its record stays in Kafka for the next owner. Executor threads;
 *        a few compares when no limit matches.
 */
bool sq_ratelimits_hold(sq_daemon_t *daemon, sq_job_t *job);

/**
 * @brief Drops the held jobs of partitions being revoked (or all of them
 *        when @p all): their records run on the next owner. Poll thread.
 */
void sq_ratelimits_drop_held(sq_daemon_t *daemon, bool all);

/** @brief The assignment changed: the shares are computed again (on the
 *         rate limit thread). Poll thread. */
void sq_ratelimits_rebalanced(sq_daemon_t *daemon);

/** @brief A reload: the new rate and burst of each limit declared at
 *         start (by name). Signal thread. */
void sq_ratelimits_reload(sq_daemon_t *daemon, const sq_config_t *conf);

/** @brief Registers the swarmq_ratelimit_* collectors. Main. */
void sq_ratelimits_register_metrics(sq_daemon_t *daemon);

/** @returns /status's "rate_limits" array (json_t *, caller owns). */
void *sq_ratelimits_status(sq_daemon_t *daemon);

#endif /* SQ_RATELIMITS_INT_H */
