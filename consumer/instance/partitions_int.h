/* SPDX-License-Identifier: Apache-2.0 */
/*
 * partitions_int.h: the partition table and the jobs admitted from it
 * (partitions.c): the lane, partition and job types every file of the
 * instance shares, and the functions that create, find, walk and free
 * them.
 *
 * DESIGN: ownership of a job
 *   The poll thread creates a job per admitted record and pushes it to the
 *   scheduler; an executor pops it, runs it, produces its result and its
 *   terminal event with the job as delivery opaque, and lets go of it.
 *   The producer's delivery reports are served on the poll thread: the
 *   last acknowledgement marks the job's offset done and frees the job.
 *   A job dropped before it ran (its partition revoked, or the instance
 *   stopping) is freed by whoever drops it; its offset stays not done, so
 *   the record is delivered again to the partition's next owner.
 */
#ifndef SQ_PARTITIONS_INT_H
#define SQ_PARTITIONS_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon.h"
#include "offsets.h"
#include "ordering.h"
#include "retry.h"
#include "scheduler.h"
#include "task.h"

/** Which input topic a partition belongs to. */
typedef enum {
        SQ_LANE_TASKS    = 0, /* topic.tasks: paused over the high mark */
        SQ_LANE_CRITICAL = 1, /* topic.critical: its own queue, own mark */
        SQ_LANE_RETRY    = 2, /* topic.retry: paused until the head is due */
} sq_lane_t;
#define SQ_LANE_CNT 3

/**
 * Per-partition state. Created on first assignment and kept until the
 * instance is destroyed (never freed while jobs may point at it); `gen`
 * changes on every assign and revoke so a job from an earlier ownership
 * can tell that its offset no longer matters.
 */
typedef struct sq_partition_s {
        sq_lane_t lane;
        const char *topic; /* borrowed from the config */
        int32_t partition;
        atomic_uint_fast64_t gen;
        atomic_bool revoking;    /* no admission while it drains */
        atomic_long outstanding; /* jobs admitted, not yet freed */
        bool assigned;           /* poll thread only */
        bool paused;             /* poll thread only */
        sq_offsets_t *offsets;   /* poll thread only */
        int64_t committed;       /* last offset committed, -1 none */
        int64_t start_offset;    /* group's committed offset read at
                                  * assignment (the lag of an idle
                                  * partition), -1 unknown */
        uint64_t committed_map;  /* hash of the map sent with it */
        int64_t acked;           /* offset of the last commit the broker
                                  * acknowledged, -1 none (poll thread) */
        uint64_t acked_map;      /* hash of that commit's map */
        size_t map_len;          /* length of that map (poll thread) */
        int64_t map_done;        /* offsets that map marks done */
        bool map_dirty;          /* completions since the budget check */
        bool map_paused;         /* paused: its map nears the budget */
        bool map_cut_warned;     /* logged a cut map this ownership */
        /* exactly_once (poll thread): what the group holds for the
         * partition as far as this ownership knows (read at assignment,
         * then set by each committed transaction), where an aborted
         * transaction rewinds it to (sq_rebalance_rewind()). */
        int64_t base_offset; /* -1 none */
        char *base_map;      /* its commit metadata (owned), or NULL */
        size_t base_map_len;
        int64_t first_admitted; /* first offset admitted this ownership
                                 * (the rewind without a base), -1 none */
        /* Retry lane (poll thread): the head record is not due yet; the
         * partition is paused and seeked back to it until retry_due_ms
         * (wall clock). */
        bool retry_waiting;
        int64_t retry_due_ms;
        int64_t retry_offset;
        size_t map_bytes; /* snapshots for /metrics (snap_lock) */
        int64_t map_done_snap;
        int64_t lag; /* snapshot for /metrics, -1 unknown */
        /* Snapshots for /status, under snap_lock (sq_partitions_snapshot) */
        bool snap_assigned;
        bool snap_paused;
        int64_t snap_committed; /* -1 none */
        int64_t snap_high;      /* high watermark, -1 unknown */
        /* Lag inputs (snap_lock; sq_lag_compute() turns them into lag and
         * snap_high): the poll thread's position (committable, else
         * committed, else the group's start offset; -1 none) and the
         * watermarks the last fetch reported (-1 unknown). */
        int64_t snap_pos;
        int64_t snap_fetched_low;
        int64_t snap_fetched_high;
        /* The watermarks the lag refresher (lag.c) last queried, -1
         * unknown: true while the partition is paused, unlike the
         * fetched ones. Written by the refresher, read under snap_lock. */
        atomic_int_least64_t queried_low;
        atomic_int_least64_t queried_high;
} sq_partition_t;

typedef struct sq_job_s {
        sq_sched_item_t item; /* first: a popped item is the job */
        sq_task_t *task;
        sq_record_t *rec; /* the record it came from (retry, DLT); in the
                           * job's own allocation (sq_record_init()) */
        sq_partition_t *part;
        uint64_t part_gen;
        int64_t offset;
        int64_t received_us;
        sq_order_item_t order;        /* ordering gate link (ordered only) */
        bool ordered;                 /* admitted through the ordering gate */
        atomic_bool order_released;   /* its key handed to the next job */
        atomic_int pending_acks;      /* tracked records not yet acknowledged */
        bool succeeded;               /* its result says SUCCEEDED (dedup) */
        atomic_bool purged;           /* a tracked record was purged */
        bool rl_passed;               /* took its rate limit tokens */
        struct sq_job_s *denied_next; /* daemon->denied_jobs (emit.c) */
} sq_job_t;

/**
 * The partition table, the admission window and the ordering gate
 * (partitions.c). Threads: the poll thread writes the table; it grows it
 * under the instance's snap_lock, under which the HTTP thread and the lag
 * refresher walk it.
 */
typedef struct sq_partitions_s {
        sq_partition_t **parts[SQ_LANE_CNT]; /* [lane][partition], grown on
                                              * demand (poll thread) */
        int cnt[SQ_LANE_CNT];                /* parts[lane]'s length */
        /* Jobs admitted and not yet freed, per lane: the poll thread adds
         * on admission, whoever frees a job subtracts; any thread reads. */
        atomic_long window[SQ_LANE_CNT];
        atomic_int assigned_cnt[SQ_LANE_CNT]; /* owned now: poll thread
                                               * writes, /metrics reads */
        /* The ordering gate (ordering=key|partition), else NULL; its own
         * lock. Any thread that frees a job releases its key. */
        sq_order_t *order;
        atomic_bool order_closed; /* stopping: held jobs are freed */
        atomic_long order_held;   /* jobs held behind their key */
} sq_partitions_t;

/** Walks every partition of every lane (poll thread, or under snap_lock). */
#define SQ_FOREACH_PARTITION(daemon, lane, i, part)                            \
        for (lane = 0; lane < SQ_LANE_CNT; lane++)                             \
                for (i = 0; i < (daemon)->partitions.cnt[lane]; i++)           \
                        if ((part = (daemon)->partitions.parts[lane][i]))

/**
 * @brief The state of a partition, created on first use.
 * @returns the partition (owned by the instance until it is destroyed).
 * @locality poll thread
 * @locks snap_lock while it grows the table
 */
sq_partition_t *sq_partitions_get(sq_daemon_t *daemon, sq_lane_t lane,
                                  int32_t partition);

/**
 * @brief The lane of an input topic.
 * @param topic borrowed.
 * @returns true with *lanep set, or false when @p topic is not one of
 *          topic.tasks, topic.critical and topic.retry.
 */
bool sq_partitions_lane(const sq_daemon_t *daemon, const char *topic,
                        sq_lane_t *lanep);

/**
 * @brief Jobs in memory (admitted and not yet freed) over every lane.
 * @locality any thread
 */
long sq_partitions_window_total(sq_daemon_t *daemon);

/**
 * @brief Copies every partition's state into its snapshot for /status and
 *        /metrics, and recomputes its lag.
 * @locality poll thread
 * @locks snap_lock, per partition
 */
void sq_partitions_snapshot(sq_daemon_t *daemon);

/**
 * @brief Creates the ordering gate (ordering=key|partition); the table
 *        starts empty. Main.
 */
void sq_partitions_init(sq_daemon_t *daemon);

/**
 * @brief Frees the jobs still held by the ordering gate, the gate, and
 *        every partition. With the instance's threads stopped.
 */
void sq_partitions_term(sq_daemon_t *daemon);

/**
 * @brief The job's records are all acknowledged: marks its offset done
 *        (when its partition is still owned by the same assignment),
 *        remembers its task id for dedup, and frees it.
 * @param job takes ownership.
 * @locality poll thread (delivery reports)
 */
void sq_job_acked(sq_daemon_t *daemon, sq_job_t *job);

/**
 * @brief The job will not run here: frees it (its offset stays
 *        uncommitted) and wakes the poll thread.
 * @param job takes ownership.
 * @param why borrowed, for the debug log line.
 * @locality any thread
 */
void sq_job_drop(sq_daemon_t *daemon, sq_job_t *job, const char *why);

/**
 * @brief The job finished running (its first record is produced): under
 *        ordering.handoff=finished the next job held behind its key starts
 *        now, instead of when this one's records are acknowledged. Call it
 *        while the job still has a record to produce (it cannot be freed
 *        yet). Once per job; job_free() releases the key of a job that
 *        never called it.
 * @locality executor threads and the I/O loop
 * @locks the ordering gate's own lock
 */
void sq_job_finished(sq_daemon_t *daemon, sq_job_t *job);

#endif /* SQ_PARTITIONS_INT_H */
