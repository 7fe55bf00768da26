/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admission_int.h: admitting records and backpressure (admission.c).
 *
 * DESIGN
 *   Poll thread only: these functions read and write the pause state that
 *   thread alone owns, and call the consumer's pause, resume and seek.
 */
#ifndef SQ_ADMISSION_INT_H
#define SQ_ADMISSION_INT_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "partitions_int.h"
#include "ttlmap.h"

/**
 * What admission and backpressure keep (admission.c). Threads: the poll
 * thread writes everything; the atomic copies are for /metrics (HTTP
 * thread).
 */
typedef struct sq_admission_s {
        bool lane_paused[SQ_LANE_CNT]; /* the lane's window is full, or an
                                        * admin pause, or stopping */
        atomic_bool paused_any;        /* a lane is paused (copy) */
        /* memory.limit.bytes: intake paused on RSS */
        bool mem_paused;
        atomic_bool mem_paused_flag; /* copy of mem_paused */
        int64_t mem_next_check_us;
        /* The consumer queue's hold (see admission.c): since when a lane
         * it feeds (tasks, retry) sits at its high mark unpaused; 0 when
         * none does. */
        int64_t hold_since_us;
        /* Succeeded task ids (dedup.ttl.ms), or NULL: admission looks a
         * task id up, sq_job_acked() inserts it (both poll thread). */
        sq_ttlmap_t *dedup;
        atomic_size_t dedup_entries; /* its size (copy) */
        /* Jobs admitted and not yet handed to the scheduler: one push
         * (one lock, at most one wake-up) per batch, not per task. */
        sq_sched_item_t *batch_head;
        sq_sched_item_t **batch_tail;
} sq_admission_t;

/** @brief Creates the dedup map (dedup.ttl.ms, dedup.max.entries). Main. */
void sq_admission_init(sq_daemon_t *daemon);

/** @brief Frees the dedup map. Main, threads stopped. */
void sq_admission_term(sq_daemon_t *daemon);

/**
 * @brief Admits a consumed record: a job queued for the scheduler
 *        (sq_admission_flush() pushes it), or held
 *        behind its ordering key), a dead letter when it does not decode,
 *        a duplicate_dropped event when its task id already succeeded.
 *        Records of partitions not owned, revoking, or while stopping are
 *        ignored; a retry record not due yet starts the partition's wait.
 * @param rkm borrowed (the caller destroys it).
 * @locality poll thread
 */
void sq_admission_admit(sq_daemon_t *daemon, rd_kafka_message_t *rkm);

/**
 * @brief Hands the jobs admitted since the last call to the scheduler,
 *        in one push. Called after each batch of records and before
 *        anything waits for admitted jobs (a revocation drains them).
 * @locality poll thread
 */
void sq_admission_flush(sq_daemon_t *daemon);

/**
 * @brief Resumes the retry partitions whose head record is due.
 * @returns the earliest due time still waited for (wall clock ms), or
 *          INT64_MAX.
 * @locality poll thread
 */
int64_t sq_admission_retry_due(sq_daemon_t *daemon);

/**
 * @brief Brings every assigned partition's pause state to what its lane,
 *        its map's budget, its retry wait and the stop request ask for
 *        (after a rewind forgot a partition's waits).
 * @locality poll thread
 */
void sq_admission_sync_pauses(sq_daemon_t *daemon);

/**
 * @brief Pauses (or resumes) a lane's partitions, counting a pause that
 *        is not an admin action.
 * @locality poll thread
 */
void sq_admission_pause_lane(sq_daemon_t *daemon, sq_lane_t lane, bool pause);

/**
 * @brief Pauses the partitions whose completed-offset map nears
 *        commit.metadata.max.bytes, and resumes those whose map shrank.
 * @locality poll thread
 */
void sq_admission_check_map_budget(sq_daemon_t *daemon);

/**
 * @brief Brings each lane's pause to what its window, memory.limit.bytes,
 *        an admin pause and the stop request ask for.
 * @locality poll thread
 */
void sq_admission_backpressure(sq_daemon_t *daemon);

/**
 * @brief True when a lane not yet paused has reached its high mark.
 * @locality poll thread
 */
bool sq_admission_at_high_mark(sq_daemon_t *daemon);

/**
 * @brief True while the consumer queue is held: a lane it feeds (tasks,
 *        retry) is at its high mark and not paused (yet). Records stay in
 *        librdkafka's queue, taken as soon as the window has room; when
 *        it has room, a hold ends here.
 * @locality poll thread
 */
bool sq_admission_holding(sq_daemon_t *daemon);

/**
 * @brief When the current hold turns into a pause (monotonic us), or
 *        INT64_MAX when nothing is held.
 * @locality poll thread
 */
int64_t sq_admission_hold_due(sq_daemon_t *daemon);

#endif /* SQ_ADMISSION_INT_H */
