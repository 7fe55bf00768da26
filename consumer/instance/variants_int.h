/* SPDX-License-Identifier: Apache-2.0 */
/*
 * variants_int.h: A/B comparison of the feature flags' variants
 * (variants.c): each finished task counted, and its run time observed,
 * under the variant ("on" or "off") it took of every flag.
 *
 * DESIGN
 *   Children made at start (flag x variant x status), so the per-task
 *   path is a few relaxed loads, a hash per flag and two metric updates;
 *   and nothing at all while no flag is in a partial rollout (the
 *   default: every flag on). Written by executors and the I/O loop, read
 *   by the HTTP thread through the metrics registry.
 */
#ifndef SQ_VARIANTS_INT_H
#define SQ_VARIANTS_INT_H

#include "daemon.h"
#include "flags.h"
#include "metrics.h"
#include "task.h"

typedef struct sq_variants_s {
        /* [flag][variant: 0 off, 1 on][status] */
        sq_metric_t *tasks[SQ_FLAG_CNT][2][SQ_STATUS_CNT];
        sq_metric_t *duration[SQ_FLAG_CNT][2];
} sq_variants_t;

/** @brief Registers swarmq_flag_tasks_total and
 *         swarmq_flag_task_duration_seconds. Main. */
void sq_variants_register(sq_daemon_t *daemon);

/**
 * @brief Counts a finished task attempt (@p status as counted in
 *        swarmq_tasks_total) under each flag's variant for its id, and
 *        its run time when it ran (@p duration_s >= 0). No-op while no
 *        flag is in a partial rollout. Executors, the I/O loop.
 */
void sq_variants_observe(sq_daemon_t *daemon, const sq_task_t *task,
                         sq_status_t status, double duration_s);

#endif /* SQ_VARIANTS_INT_H */
