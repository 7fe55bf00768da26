/* SPDX-License-Identifier: Apache-2.0 */
/*
 * instance_metrics_int.h: the instance's metrics (instance_metrics.c): the
 * children kept for the hot path, and their registration.
 *
 * DESIGN
 *   The handles are set once while the instance is built and never change;
 *   any thread updates them lock-free. Agents' own children live in each
 *   agent (sq_agent_metrics()) and are registered again on a reload.
 */
#ifndef SQ_INSTANCE_METRICS_INT_H
#define SQ_INSTANCE_METRICS_INT_H

#include "agents.h"
#include "metrics.h"
#include "commit_int.h"
#include "partitions_int.h"

/**
 * Why a record went to the dead-letter topic: one vocabulary for the
 * swarmq-reason header, the metric's reason label, the result's error and
 * `swarmq-producer dlt list --reason`.
 */
typedef enum {
        SQ_DL_DECODE_ERROR     = 0, /* the record is not a task */
        SQ_DL_FAILED           = 1, /* its last attempt failed */
        SQ_DL_TIMED_OUT        = 2, /* its last attempt timed out */
        SQ_DL_NO_AGENT         = 3, /* no agent has its capabilities */
        SQ_DL_OUTPUT_TOO_LARGE = 4, /* its output cannot fit in a result */
        SQ_DL_RECORD_REFUSED   = 5, /* Kafka refused its result or retry */
        SQ_DL_REASON_CNT
} sq_dl_reason_t;

/** @returns the reason's name ("DECODE_ERROR", "FAILED", ...). */
const char *sq_dl_reason_name(sq_dl_reason_t reason);

/** Metric handles kept for the hot path (children of the registry). */
typedef struct sq_daemon_metrics_s {
        /* tasks without an agent, [status][priority]; agents' own
         * children are in sq_agent_metrics() */
        sq_metric_t *tasks_none[SQ_STATUS_CNT][SQ_PRIO_CNT];
        sq_mfamily_t *tasks_family;
        sq_mfamily_t *duration_family;
        sq_metric_t *stolen;
        sq_metric_t *reloads_ok;
        sq_metric_t *reloads_error;
        sq_metric_t *received[SQ_LANE_CNT];
        /* swarmq_dead_letters_total{reason}, [sq_dl_reason_t] */
        sq_metric_t *dead_letters[SQ_DL_REASON_CNT];
        sq_metric_t *records_refused; /* refused for what they are */
        sq_metric_t *retries;         /* retry records produced */
        sq_metric_t *retry_waits;     /* retry partition paused */
        sq_metric_t *delayed;         /* tasks moved to wait (not_before) */
        sq_metric_t *delay_hops;      /* waiting records moved to the end */
        sq_metric_t *selection;
        sq_metric_t *delivery_errors;
        sq_metric_t *commits_ok;
        sq_metric_t *commits_failed;
        /* swarmq_transactions_aborted_total{reason}, [sq_txn_step_t] */
        sq_metric_t *txn_aborted[SQ_TXN_STEP_CNT];
        sq_metric_t *dropped;
        sq_metric_t *revoked_partitions;
        sq_metric_t *assigned_partitions;
        sq_metric_t *pauses;
        sq_metric_t *holds;
        sq_metric_t *memory_pauses;
        sq_metric_t *sched_latency[SQ_PRIO_CNT]; /* admission to start */
        sq_metric_t *completed_skipped;
        sq_metric_t *duplicates_dropped;
        sq_metric_t *priority_demoted; /* CRITICAL on topic.tasks: HIGH */
        sq_metric_t *map_pauses;
        sq_metric_t *events_dropped; /* /events clients fell behind */
        /* Opaques of the per-agent /metrics collectors (one per gauge). */
        struct sq_agent_collect_s {
                struct sq_daemon_s *daemon;
                int which;
        } agent_collect[6];
} sq_daemon_metrics_t;

/**
 * @brief Registers the instance's metric families, keeps the hot-path
 *        children in daemon->m, and adds the collectors (and the status
 *        module's). Once, while the instance is built.
 * @locality main
 */
void sq_instance_metrics_register(sq_daemon_t *daemon);

/**
 * @brief Creates (or finds again, after a reload) each agent's children
 *        of swarmq_tasks_total and swarmq_task_duration_seconds.
 * @param agents borrowed.
 * @locality main (start-up) or the signal thread (reload)
 */
void sq_instance_metrics_register_agents(sq_daemon_t *daemon,
                                         sq_agents_t *agents);

#endif /* SQ_INSTANCE_METRICS_INT_H */
