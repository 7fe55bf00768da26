/* SPDX-License-Identifier: Apache-2.0 */
/*
 * partitions.c: the instance's partition table (one sq_partition_t per
 * topic-partition of the three input lanes) and the jobs admitted from
 * it: freeing a job, its acknowledgement, its drop, the admission window
 * it counts in, and the snapshots /status and /metrics read.
 *
 * DESIGN
 *   Threads: the table belongs to the poll thread, which alone creates
 *   partitions and writes their plain fields. It grows parts[] under
 *   snap_lock because the HTTP thread and the lag refresher walk it; a
 *   partition, once created, lives until the instance is destroyed, so
 *   jobs, the refresher and the HTTP thread keep plain pointers to it.
 *   Its `gen` changes on every assign and revoke: a job of an earlier
 *   ownership sees that its offset no longer matters.
 *
 *   Jobs: the poll thread creates a job per admitted record (admission.c)
 *   and counts it in window[lane] and in its partition's outstanding;
 *   job_free() undoes both, whoever frees it: the poll thread on the last
 *   delivery report (sq_job_acked), any thread when a job will not run
 *   here (sq_job_drop). Under an ordering mode the next job held behind
 *   a job's key starts when the job finished running (sq_job_finished,
 *   ordering.handoff=finished, the default), or when it is freed
 *   (ordering.handoff=acknowledged, or a job dropped before it ran). Its
 *   results still go out in offset order: the job hands its key over after
 *   producing its first record, and the idempotent producer keeps the
 *   order of each partition; its offset still commits only once its
 *   records are acknowledged (offsets.c does not depend on the gate).
 *
 *   Snapshots: every commit interval the poll thread copies each
 *   partition's state (assigned, paused, committed, position, the fetched
 *   watermarks, its map's size) into the snap_* fields under snap_lock,
 *   where /status, /metrics and the lag refresher read them.
 */
#include "daemon_int.h"
#include "log.h"
#include "poll_int.h"

#include <string.h>

/*
 * Partition state
 */

static const char *lane_topic(const sq_daemon_t *daemon, sq_lane_t lane) {
        switch (lane) {
        case SQ_LANE_TASKS:
                return daemon->conf->topic_tasks;
        case SQ_LANE_CRITICAL:
                return daemon->conf->topic_critical;
        case SQ_LANE_RETRY:
                return daemon->conf->topic_retry;
        }
        return daemon->conf->topic_tasks;
}

sq_partition_t *sq_partitions_get(sq_daemon_t *daemon, sq_lane_t lane,
                                  int32_t partition) {
        sq_partition_t *part;
        if (partition < daemon->partitions.cnt[lane] &&
            (part = daemon->partitions.parts[lane][partition]))
                return part;
        /* Growing parts[] under snap_lock: HTTP readers walk it. */
        pthread_mutex_lock(&daemon->snap_lock);
        if (partition >= daemon->partitions.cnt[lane]) {
                int cnt =
                    SQ_MAX(partition + 1, daemon->partitions.cnt[lane] * 2);
                daemon->partitions.parts[lane] =
                    sq_realloc(daemon->partitions.parts[lane],
                               (size_t)cnt * sizeof(sq_partition_t *));
                memset(daemon->partitions.parts[lane] +
                           daemon->partitions.cnt[lane],
                       0,
                       (size_t)(cnt - daemon->partitions.cnt[lane]) *
                           sizeof(sq_partition_t *));
                daemon->partitions.cnt[lane] = cnt;
        }
        if (!(part = daemon->partitions.parts[lane][partition])) {
                part                    = sq_calloc(1, sizeof(*part));
                part->lane              = lane;
                part->topic             = lane_topic(daemon, lane);
                part->partition         = partition;
                part->offsets           = sq_offsets_new();
                part->committed         = -1;
                part->acked             = -1;
                part->start_offset      = -1;
                part->base_offset       = -1;
                part->first_admitted    = -1;
                part->lag               = -1;
                part->snap_committed    = -1;
                part->snap_high         = -1;
                part->snap_pos          = -1;
                part->snap_fetched_low  = -1;
                part->snap_fetched_high = -1;
                atomic_init(&part->queried_low, -1);
                atomic_init(&part->queried_high, -1);
                daemon->partitions.parts[lane][partition] = part;
        }
        pthread_mutex_unlock(&daemon->snap_lock);
        return part;
}

bool sq_partitions_lane(const sq_daemon_t *daemon, const char *topic,
                        sq_lane_t *lanep) {
        if (!strcmp(topic, daemon->conf->topic_tasks))
                *lanep = SQ_LANE_TASKS;
        else if (!strcmp(topic, daemon->conf->topic_critical))
                *lanep = SQ_LANE_CRITICAL;
        else if (!strcmp(topic, daemon->conf->topic_retry))
                *lanep = SQ_LANE_RETRY;
        else
                return false;
        return true;
}

/*
 * Jobs
 */

/* Releases @p job's key in the ordering gate, once: the next job held
 * behind it starts (pushed to the scheduler). Returns that job instead when
 * the instance is stopping (it will never run here: the caller frees it),
 * else NULL. */
static sq_job_t *order_release(sq_daemon_t *daemon, sq_job_t *job) {
        sq_order_item_t *item;
        sq_job_t *next;

        if (!job->ordered || atomic_exchange(&job->order_released, true))
                return NULL;
        item = sq_order_release(daemon->partitions.order, &job->order);
        if (!item)
                return NULL;
        next = (sq_job_t *)((char *)item - offsetof(sq_job_t, order));
        atomic_fetch_sub(&daemon->partitions.order_held, 1);
        if (atomic_load(&daemon->partitions.order_closed))
                return next;
        sq_sched_push(daemon->sched, &next->item);
        return NULL;
}

/* Frees a job; under an ordering mode whose key it still holds, the next
 * job held behind its key starts, or is freed too when stopping. */
static void job_free(sq_daemon_t *daemon, sq_job_t *job) {
        while (job) {
                sq_job_t *next = order_release(daemon, job);
                atomic_fetch_sub(&job->part->outstanding, 1);
                atomic_fetch_sub(&daemon->partitions.window[job->part->lane],
                                 1);
                sq_task_destroy(job->task);
                sq_record_term(job->rec); /* its memory is the job's */
                sq_free(job);
                job = next; /* stopping: it will never run here */
        }
}

void sq_job_finished(sq_daemon_t *daemon, sq_job_t *job) {
        sq_job_t *next;

        /* ordering.handoff=acknowledged: the key waits for job_free(). */
        if (daemon->conf->ordering_handoff != SQ_HANDOFF_FINISHED)
                return;
        if ((next = order_release(daemon, job)))
                job_free(daemon, next);
}

/* Jobs in memory over every lane. */
long sq_partitions_window_total(sq_daemon_t *daemon) {
        long total = 0;
        int lane;
        for (lane = 0; lane < SQ_LANE_CNT; lane++)
                total += atomic_load(&daemon->partitions.window[lane]);
        return total;
}

/* Poll thread (delivery reports): the job's records are acknowledged. */
void sq_job_acked(sq_daemon_t *daemon, sq_job_t *job) {
        sq_partition_t *part = job->part;
        if (atomic_load(&part->gen) == job->part_gen && part->assigned) {
                if (sq_offsets_mark_done(part->offsets, job->offset) != SQ_OK)
                        SQ_LOG(SQ_LOG_WARNING, "OFFSETS",
                               "acknowledged offset not in flight topic=%s "
                               "partition=%d offset=%lld",
                               part->topic, (int)part->partition,
                               (long long)job->offset);
                part->map_dirty = true;
        }
        /* Its result is in Kafka: a later delivery of the same task id is
         * a duplicate. */
        if (daemon->admission.dedup && job->succeeded) {
                /* The coarse clock (a tick of a few ms): a TTL in
                 * seconds needs no better, and it costs no clock read. */
                if (sq_ttlmap_insert(daemon->admission.dedup, job->task->id,
                                     sq_clock_coarse_us()) &&
                    daemon->eos)
                        /* exactly_once: forgotten again if the
                         * transaction holding its result aborts. */
                        daemon->commit.txn_dedup_new++;
                atomic_store(&daemon->admission.dedup_entries,
                             sq_ttlmap_count(daemon->admission.dedup));
        }
        job_free(daemon, job);
}

/* Any thread: the job will not run here; its offset stays uncommitted. */
void sq_job_drop(sq_daemon_t *daemon, sq_job_t *job, const char *why) {
        SQ_LOG(SQ_LOG_DEBUG, "EXEC",
               "dropping task_id=%s topic=%s partition=%d offset=%lld: %s",
               job->task ? job->task->id : "-", job->part->topic,
               (int)job->part->partition, (long long)job->offset, why);
        sq_metric_add(daemon->m.dropped, 1);
        job_free(daemon, job);
        sq_daemon_wake(daemon);
}

/*
 * Snapshots (poll thread writes, HTTP thread and lag refresher read)
 */

/* Snapshots every partition for /status and /metrics. The fetched
 * watermarks go stale while a partition is paused; the lag refresher
 * (lag.c) queries fresh ones and sq_lag_compute() takes the newer. The
 * parts[] walk needs no lock here: only this thread grows it. */
void sq_partitions_snapshot(sq_daemon_t *daemon) {
        sq_partition_t *part;
        int lane, i;

        SQ_FOREACH_PARTITION(daemon, lane, i, part) {
                int64_t lo = -1, hi = -1, pos = -1;
                if (part->assigned && rd_kafka_get_watermark_offsets(
                                          daemon->consumer, part->topic,
                                          part->partition, &lo, &hi) != 0)
                        lo = hi = -1;
                if (part->assigned) {
                        /* Nothing admitted since the assignment: the lag
                         * counts from the group's committed offset, not
                         * from the start of the partition (an idle
                         * partition that was handed over would otherwise
                         * show all its records as lag for good); with
                         * neither, from the log start (sq_lag_compute). */
                        pos = sq_offsets_committable(part->offsets);
                        if (pos < 0)
                                pos = part->committed >= 0 ? part->committed
                                                           : part->start_offset;
                }
                pthread_mutex_lock(&daemon->snap_lock);
                part->map_bytes         = part->assigned ? part->map_len : 0;
                part->map_done_snap     = part->assigned ? part->map_done : 0;
                part->snap_assigned     = part->assigned;
                part->snap_paused       = part->paused;
                part->snap_committed    = part->committed;
                part->snap_pos          = pos;
                part->snap_fetched_low  = lo;
                part->snap_fetched_high = hi;
                sq_lag_compute(part);
                pthread_mutex_unlock(&daemon->snap_lock);
        }
}

void sq_partitions_init(sq_daemon_t *daemon) {
        if (daemon->conf->ordering != SQ_ORDERING_UNORDERED)
                daemon->partitions.order = sq_order_new();
}

/* Main, with every other thread stopped. */
void sq_partitions_term(sq_daemon_t *daemon) {
        sq_partition_t *part;
        int lane, i;

        if (daemon->partitions.order) {
                /* Jobs still held behind a key whose running job was never
                 * freed (none after a clean stop). */
                sq_order_item_t *item =
                    sq_order_take_held(daemon->partitions.order);
                while (item) {
                        sq_job_t *job = (sq_job_t *)((char *)item -
                                                     offsetof(sq_job_t, order));
                        item          = item->next;
                        job->ordered  = false;
                        job_free(daemon, job);
                }
                sq_order_destroy(daemon->partitions.order);
                daemon->partitions.order = NULL;
        }
        SQ_FOREACH_PARTITION(daemon, lane, i, part) {
                sq_offsets_destroy(part->offsets);
                sq_free(part->base_map);
                sq_free(part);
        }
        for (lane = 0; lane < SQ_LANE_CNT; lane++) {
                sq_free(daemon->partitions.parts[lane]);
                daemon->partitions.parts[lane] = NULL;
                daemon->partitions.cnt[lane]   = 0;
        }
}
