/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon.c: one swarmq consumer instance: its lifecycle and its poll
 * thread.
 *
 * DESIGN
 *   Threads and their roles (fixed):
 *   - poll thread (this file): the only caller of consumer poll and commit.
 *     It sleeps in poll(2) on four file descriptors: the consumer group
 *     queue, the critical-lane queue, the producer's delivery-report queue
 *     (all three wired with rd_kafka_queue_io_event_enable) and an eventfd
 *     for stop requests and dropped jobs. On wake-up it serves delivery
 *     reports first (they free window room), then critical records, then
 *     ordinary ones, then commits the completed prefix of every partition
 *     when the commit interval is due. No sleeps, no busy loops.
 *   - executor threads (executor.c): run tasks on agents, produce results.
 *   - the lag refresher (lag.c): every lag.refresh.interval.ms queries the
 *     high watermarks of the owned partitions (a blocking broker request,
 *     so on no other thread), because librdkafka does not fetch paused
 *     ones; it writes only their atomics and, under snap_lock, their lag.
 *   - librdkafka's own threads, and libmicrohttpd's thread (HTTP handlers
 *     read atomics, the metrics registry and the lag snapshot only).
 *   - main (consumer/main.c): signals; calls sq_daemon_stop().
 *
 *   Admission window: every admitted record is a job counted in
 *   window[lane] until it is freed (acknowledged or dropped). Over the high
 *   mark the lane's partitions are paused; the consumer keeps polling (so
 *   the group never evicts the instance on long tasks), and resumes at the
 *   low mark. The critical lane has its own queue and its own mark: it is
 *   never paused because the ordinary lane is full.
 *
 *   Offsets: per partition, the completed-offset tracker (offsets.c)
 *   commits only the contiguous prefix of records whose result and
 *   terminal event (or dead letter) the broker acknowledged.
 *
 *   Revocation: nothing more is admitted from the partitions; their queued
 *   and running jobs get until shutdown.drain.timeout.ms to finish and be
 *   acknowledged, the completed prefix is committed synchronously, then the
 *   partitions are given up (jobs still left are dropped: the new owner
 *   runs them again).
 *   Shutdown: stop intake (pause everything), drain the window within the
 *   deadline, commit synchronously, close the consumer, flush the producer.
 */
#include "daemon_int.h"
#include "log.h"
#include "status.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

/* How many records one wake-up takes from a queue before looking at the
 * other queues again (keeps the critical lane responsive). */
#define POLL_BATCH 512

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

static sq_partition_t *partition_get(sq_daemon_t *daemon, sq_lane_t lane,
                                     int32_t partition) {
        sq_partition_t *part;
        if (partition < daemon->parts_cnt[lane] &&
            (part = daemon->parts[lane][partition]))
                return part;
        /* Growing parts[] under snap_lock: HTTP readers walk it. */
        pthread_mutex_lock(&daemon->snap_lock);
        if (partition >= daemon->parts_cnt[lane]) {
                int cnt = SQ_MAX(partition + 1, daemon->parts_cnt[lane] * 2);
                daemon->parts[lane] =
                    sq_realloc(daemon->parts[lane],
                               (size_t)cnt * sizeof(sq_partition_t *));
                memset(daemon->parts[lane] + daemon->parts_cnt[lane], 0,
                       (size_t)(cnt - daemon->parts_cnt[lane]) *
                           sizeof(sq_partition_t *));
                daemon->parts_cnt[lane] = cnt;
        }
        if (!(part = daemon->parts[lane][partition])) {
                part                    = sq_calloc(1, sizeof(*part));
                part->lane              = lane;
                part->topic             = lane_topic(daemon, lane);
                part->partition         = partition;
                part->offsets           = sq_offsets_new();
                part->committed         = -1;
                part->acked             = -1;
                part->start_offset      = -1;
                part->lag               = -1;
                part->snap_committed    = -1;
                part->snap_high         = -1;
                part->snap_pos          = -1;
                part->snap_fetched_low  = -1;
                part->snap_fetched_high = -1;
                atomic_init(&part->queried_low, -1);
                atomic_init(&part->queried_high, -1);
                daemon->parts[lane][partition] = part;
        }
        pthread_mutex_unlock(&daemon->snap_lock);
        return part;
}

static bool lane_of_topic(const sq_daemon_t *daemon, const char *topic,
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

#define FOREACH_PARTITION(daemon, lane, i, part)                               \
        for (lane = 0; lane < SQ_LANE_CNT; lane++)                             \
                for (i = 0; i < (daemon)->parts_cnt[lane]; i++)                \
                        if ((part = (daemon)->parts[lane][i]))

/*
 * Jobs
 */

/* Frees a job; under an ordering mode, the next job held behind its key
 * starts (pushed to the scheduler), or is freed too when stopping. */
static void job_free(sq_daemon_t *daemon, sq_job_t *job) {
        while (job) {
                sq_job_t *next = NULL;
                if (job->ordered) {
                        sq_order_item_t *item =
                            sq_order_release(daemon->order, &job->order);
                        if (item) {
                                next = (sq_job_t *)((char *)item -
                                                    offsetof(sq_job_t, order));
                                atomic_fetch_sub(&daemon->order_held, 1);
                        }
                }
                atomic_fetch_sub(&job->part->outstanding, 1);
                atomic_fetch_sub(&daemon->window[job->part->lane], 1);
                sq_task_destroy(job->task);
                sq_record_destroy(job->rec);
                sq_free(job);
                if (next && !atomic_load(&daemon->order_closed)) {
                        sq_sched_push(daemon->sched, &next->item);
                        next = NULL;
                }
                job = next; /* stopping: it will never run here */
        }
}

/* The ordering key of a job (ordering=key: the record's key, else the
 * task's key; none: not ordered), or false when it runs unordered. */
static bool job_order_key(const sq_daemon_t *daemon, sq_lane_t lane,
                          const rd_kafka_message_t *rkm, const sq_task_t *task,
                          uint64_t *keyp) {
        if (daemon->conf->ordering == SQ_ORDERING_PARTITION) {
                *keyp = sq_order_key((int)lane, rkm->partition, NULL, 0);
                return true;
        }
        if (rkm->key && rkm->key_len > 0) {
                *keyp = sq_order_key((int)lane, rkm->partition, rkm->key,
                                     rkm->key_len);
                return true;
        }
        if (task->key && *task->key) {
                *keyp = sq_order_key((int)lane, rkm->partition, task->key,
                                     strlen(task->key));
                return true;
        }
        return false;
}

/* Jobs in memory over every lane. */
static long window_total(sq_daemon_t *daemon) {
        long total = 0;
        int lane;
        for (lane = 0; lane < SQ_LANE_CNT; lane++)
                total += atomic_load(&daemon->window[lane]);
        return total;
}

void sq_daemon_wake(sq_daemon_t *daemon) {
        uint64_t one = 1;
        if (write(daemon->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                SQ_LOG(SQ_LOG_ERR, "POLL", "cannot wake the poll thread: %s",
                       strerror(errno));
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
        if (daemon->dedup && job->succeeded) {
                sq_ttlmap_insert(daemon->dedup, job->task->id, sq_clock_us());
                atomic_store(&daemon->dedup_entries,
                             sq_ttlmap_count(daemon->dedup));
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
 * The agent registry (any thread)
 */

sq_agents_t *sq_daemon_agents(sq_daemon_t *daemon) {
        sq_agents_t *agents;
        pthread_mutex_lock(&daemon->agents_lock);
        agents = sq_agents_keep(daemon->agents);
        pthread_mutex_unlock(&daemon->agents_lock);
        return agents;
}

static const char *breaker_event_type(sq_breaker_state_t to) {
        switch (to) {
        case SQ_BREAKER_OPEN:
                return "breaker_open";
        case SQ_BREAKER_HALF_OPEN:
                return "breaker_half_open";
        case SQ_BREAKER_CLOSED:
                return "breaker_closed";
        }
        return "breaker_closed";
}

void sq_daemon_agents_out(sq_daemon_t *daemon, sq_codec_t *codec,
                          sq_agents_out_t *out) {
        bool opened = false;
        size_t i;

        for (i = 0; i < out->changes_cnt; i++) {
                const sq_breaker_change_t *c = &out->changes[i];
                const char *name             = sq_agent_name(c->agent);
                char detail[160];
                snprintf(detail, sizeof(detail), "circuit breaker %s -> %s",
                         sq_breaker_state_name(c->from),
                         sq_breaker_state_name(c->to));
                SQ_LOG(c->to == SQ_BREAKER_OPEN ? SQ_LOG_WARNING
                                                : SQ_LOG_NOTICE,
                       "BREAKER", "agent=%s from=%s to=%s", name,
                       sq_breaker_state_name(c->from),
                       sq_breaker_state_name(c->to));
                if (codec)
                        sq_emit_event(daemon, codec, breaker_event_type(c->to),
                                      NULL, name, detail, NULL);
                opened |= c->to == SQ_BREAKER_OPEN;
        }
        for (i = 0; i < out->requeue_cnt; i++) {
                sq_job_t *job = out->requeue[i];
                if (atomic_load(&daemon->cancel))
                        sq_job_drop(daemon, job, "instance stopping");
                else
                        sq_sched_push(daemon->sched, &job->item);
        }
        if (out->stolen)
                sq_metric_add(daemon->m.stolen, out->stolen);
        if (opened)
                sq_daemon_wake(daemon); /* the poll thread's next timer */
        sq_agents_out_reset(out);
}

/* Poll thread: moves due breakers to half-open. @returns the next due
 * time, or 0. */
static int64_t breakers_tick(sq_daemon_t *daemon, int64_t now) {
        sq_agents_t *agents = sq_daemon_agents(daemon);
        sq_agents_out_t out = {0};
        int64_t due         = sq_agents_next_due(agents);

        if (due && now >= due) {
                due = sq_agents_tick(agents, now, &out);
                sq_daemon_agents_out(daemon, daemon->poll_codec, &out);
        }
        sq_agents_release_ref(agents);
        return due;
}

/*
 * Admission (poll thread)
 */

/* The retry lane's head record is not due: pause its partition, then seek
 * it back to that record (pausing sets the next fetch to the record after
 * the last one consumed; the seek, queued behind the pause on the same
 * partition, sets it back), and wake when it is due. Nothing is admitted,
 * so nothing is committed past it: a crash while it waits loses nothing. */
static void retry_wait(sq_daemon_t *daemon, sq_partition_t *part,
                       int64_t offset, int64_t due_ms) {
        rd_kafka_topic_partition_list_t *list =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_resp_err_t err;
        rd_kafka_error_t *error;

        SQ_LOG(SQ_LOG_DEBUG, "RETRY",
               "waiting topic=%s partition=%d offset=%lld due in %lld ms",
               part->topic, (int)part->partition, (long long)offset,
               (long long)(due_ms - sq_wallclock_ms()));
        part->retry_waiting = true;
        part->retry_due_ms  = due_ms;
        part->retry_offset  = offset;
        part->paused        = true;
        sq_metric_add(daemon->m.retry_waits, 1);
        rd_kafka_topic_partition_list_add(list, part->topic, part->partition)
            ->offset = offset;
        if ((err = rd_kafka_pause_partitions(daemon->consumer, list)))
                SQ_LOG(SQ_LOG_ERR, "RETRY",
                       "cannot pause topic=%s "
                       "partition=%d: %s",
                       part->topic, (int)part->partition,
                       rd_kafka_err2str(err));
        list->elems[0].offset = offset; /* pause may have reset it */
        if ((error = rd_kafka_seek_partitions(daemon->consumer, list, 0))) {
                SQ_LOG(SQ_LOG_ERR, "RETRY",
                       "cannot seek topic=%s partition=%d to offset=%lld: "
                       "%s",
                       part->topic, (int)part->partition, (long long)offset,
                       rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
        rd_kafka_topic_partition_list_destroy(list);
}

static void sync_pauses(sq_daemon_t *daemon);

/* Resumes the retry partitions whose head is due. @returns the earliest
 * due time still waited for (wall clock ms), or INT64_MAX. */
static int64_t retry_check_due(sq_daemon_t *daemon) {
        int64_t now = sq_wallclock_ms(), next = INT64_MAX;
        bool changed = false;
        int i;

        for (i = 0; i < daemon->parts_cnt[SQ_LANE_RETRY]; i++) {
                sq_partition_t *part = daemon->parts[SQ_LANE_RETRY][i];
                if (!part || !part->assigned || !part->retry_waiting)
                        continue;
                if (part->retry_due_ms <= now) {
                        part->retry_waiting = false;
                        changed             = true;
                } else {
                        next = SQ_MIN(next, part->retry_due_ms);
                }
        }
        if (changed)
                sync_pauses(daemon);
        return next;
}

static void admit_message(sq_daemon_t *daemon, rd_kafka_message_t *rkm) {
        const char *topic = rd_kafka_topic_name(rkm->rkt);
        sq_partition_t *part;
        sq_job_t *job;
        sq_lane_t lane;
        char errstr[512];
        bool done;
        sq_err_t err;

        if (rkm->err) {
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        return;
                SQ_LOG(SQ_LOG_WARNING, "POLL", "consumer error: %s%s%s",
                       rd_kafka_message_errstr(rkm), rkm->rkt ? " topic=" : "",
                       rkm->rkt ? topic : "");
                return;
        }
        if (!lane_of_topic(daemon, topic, &lane)) {
                SQ_LOG(SQ_LOG_WARNING, "POLL",
                       "record from unexpected topic=%s ignored", topic);
                return;
        }
        part = partition_get(daemon, lane, rkm->partition);
        if (!part->assigned || atomic_load(&part->revoking) ||
            atomic_load(&daemon->stop_requested))
                return; /* not ours any more: not admitted, not committed */
        if (lane == SQ_LANE_RETRY) {
                rd_kafka_headers_t *hdrs = NULL;
                int64_t due;
                if (part->retry_waiting)
                        return; /* behind a head that is not due: fetched
                                 * again after the seek */
                if (rd_kafka_message_headers(rkm, &hdrs) ==
                        RD_KAFKA_RESP_ERR_NO_ERROR &&
                    sq_retry_header_int(hdrs, SQ_HDR_BACKOFF_TS, 0, INT64_MAX,
                                        &due) &&
                    due > sq_wallclock_ms()) {
                        retry_wait(daemon, part, rkm->offset, due);
                        return;
                }
        }
        if (sq_offsets_admit(part->offsets, rkm->offset, &done) != SQ_OK)
                return; /* re-delivery after a seek/resume: already held */
        if (done) {
                /* The previous owner finished it (its commit's map says
                 * so): recorded done, not run again. */
                SQ_LOG(SQ_LOG_DEBUG, "OFFSETS",
                       "skipping completed record topic=%s partition=%d "
                       "offset=%lld",
                       topic, (int)rkm->partition, (long long)rkm->offset);
                sq_metric_add(daemon->m.completed_skipped, 1);
                return;
        }

        job              = sq_calloc(1, sizeof(*job));
        job->part        = part;
        job->part_gen    = atomic_load(&part->gen);
        job->offset      = rkm->offset;
        job->received_us = sq_clock_us();
        job->rec         = sq_record_new(rkm);
        atomic_fetch_add(&part->outstanding, 1);
        atomic_fetch_add(&daemon->window[lane], 1);
        sq_metric_add(daemon->m.received[lane], 1);

        err = sq_codec_decode_task(daemon->poll_codec, rkm->payload, rkm->len,
                                   &job->task, errstr, sizeof(errstr));
        if (err != SQ_OK) {
                SQ_LOG(SQ_LOG_WARNING, "DECODE",
                       "undecodable record sent to the dead-letter topic "
                       "topic=%s partition=%d offset=%lld: %s",
                       topic, (int)rkm->partition, (long long)rkm->offset,
                       errstr);
                sq_metric_add(daemon->m.dead_lettered_decode, 1);
                atomic_store(&job->pending_acks, 1);
                sq_emit_event(daemon, daemon->poll_codec, "dead_lettered", NULL,
                              NULL, errstr, NULL);
                sq_emit_dead_letter(daemon, rkm, "DECODE_ERROR", errstr, job);
                return;
        }
        if (daemon->dedup &&
            sq_ttlmap_contains(daemon->dedup, job->task->id, sq_clock_us())) {
                /* Succeeded here within dedup.ttl.ms: not run again. The
                 * event is the record's acknowledgement, as a result
                 * would be. */
                SQ_LOG(SQ_LOG_INFO, "DEDUP",
                       "dropping duplicate task_id=%s topic=%s partition=%d "
                       "offset=%lld: it succeeded within dedup.ttl.ms",
                       job->task->id, topic, (int)rkm->partition,
                       (long long)rkm->offset);
                sq_metric_add(daemon->m.duplicates_dropped, 1);
                atomic_store(&job->pending_acks, 1);
                sq_emit_event(daemon, daemon->poll_codec, "duplicate_dropped",
                              job->task, NULL, "this task id already succeeded",
                              job);
                return;
        }
        if (lane == SQ_LANE_RETRY) {
                /* The value is the task's original bytes: its attempt
                 * number is the header's. */
                int64_t attempt;
                if (sq_retry_header_int(job->rec->headers, SQ_HDR_ATTEMPTS, 1,
                                        INT32_MAX, &attempt))
                        job->task->attempt = (int32_t)attempt;
                else
                        SQ_LOG(SQ_LOG_WARNING, "RETRY",
                               "retry record without a valid %s header "
                               "task_id=%s topic=%s partition=%d "
                               "offset=%lld: counting attempt %d from the "
                               "task",
                               SQ_HDR_ATTEMPTS, job->task->id, topic,
                               (int)rkm->partition, (long long)rkm->offset,
                               (int)job->task->attempt);
        }
        /* The critical topic is the fast lane whatever the task says; the
         * ordinary topic never gets into the reserved slots. */
        if (lane == SQ_LANE_CRITICAL)
                job->task->priority = SQ_PRIO_CRITICAL;
        else if (job->task->priority == SQ_PRIO_CRITICAL)
                job->task->priority = SQ_PRIO_HIGH;
        job->item.priority = job->task->priority;

        sq_emit_event(daemon, daemon->poll_codec, "received", job->task, NULL,
                      NULL, NULL);
        if (daemon->order &&
            job_order_key(daemon, lane, rkm, job->task, &job->order.key)) {
                job->ordered = true;
                if (!sq_order_admit(daemon->order, &job->order)) {
                        /* Started when the job before it on its key is
                         * freed (job_free). */
                        atomic_fetch_add(&daemon->order_held, 1);
                        return;
                }
        }
        sq_sched_push(daemon->sched, &job->item);
}

/*
 * Pause and resume (poll thread)
 */

/* Brings every assigned partition's pause state to what its lane's window,
 * its map's budget and the stop request ask for. */
static void sync_pauses(sq_daemon_t *daemon) {
        rd_kafka_topic_partition_list_t *pause_list =
            rd_kafka_topic_partition_list_new(16);
        rd_kafka_topic_partition_list_t *resume_list =
            rd_kafka_topic_partition_list_new(16);
        bool stopping = atomic_load(&daemon->stop_requested);
        sq_partition_t *part;
        rd_kafka_resp_err_t err;
        int lane, i;

        FOREACH_PARTITION(daemon, lane, i, part) {
                bool want = daemon->lane_paused[lane] || part->map_paused ||
                            part->retry_waiting || stopping;
                if (!part->assigned || part->paused == want)
                        continue;
                rd_kafka_topic_partition_list_add(want ? pause_list
                                                       : resume_list,
                                                  part->topic, part->partition);
                part->paused = want;
        }
        if (pause_list->cnt > 0 &&
            (err = rd_kafka_pause_partitions(daemon->consumer, pause_list)))
                SQ_LOG(SQ_LOG_ERR, "POLL", "cannot pause %d partitions: %s",
                       pause_list->cnt, rd_kafka_err2str(err));
        if (resume_list->cnt > 0 &&
            (err = rd_kafka_resume_partitions(daemon->consumer, resume_list)))
                SQ_LOG(SQ_LOG_ERR, "POLL", "cannot resume %d partitions: %s",
                       resume_list->cnt, rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(pause_list);
        rd_kafka_topic_partition_list_destroy(resume_list);
}

static void set_lane_paused(sq_daemon_t *daemon, sq_lane_t lane, bool pause) {
        if (pause && !daemon->lane_paused[lane] &&
            !atomic_load(&daemon->admin_paused))
                sq_metric_add(daemon->m.pauses, 1);
        daemon->lane_paused[lane] = pause;
        atomic_store(&daemon->paused_any, daemon->lane_paused[0] ||
                                              daemon->lane_paused[1] ||
                                              daemon->lane_paused[2]);
        sync_pauses(daemon);
}

/* A partition whose completed-offset map nears the commit metadata budget
 * stops admitting (paused) until its head-of-line records finish and the
 * map shrinks: the map is never dropped for lack of room. Exact sizes are
 * computed only when the O(1) bound is over the mark. */
static void check_map_budget(sq_daemon_t *daemon) {
        size_t budget     = (size_t)daemon->conf->commit_metadata_max;
        size_t pause_mark = budget / 4 * 3, resume_mark = budget / 2;
        sq_partition_t *part;
        bool changed = false;
        int lane, i;

        if (budget == 0)
                return;
        FOREACH_PARTITION(daemon, lane, i, part) {
                size_t full = 0;
                if (!part->assigned || !part->map_dirty)
                        continue;
                part->map_dirty = false;
                if (!part->map_paused &&
                    sq_offsets_map_bound(part->offsets) <= pause_mark)
                        continue;
                sq_offsets_map_encode(part->offsets, budget, daemon->map_buf,
                                      &full, NULL);
                if (!part->map_paused && full > pause_mark) {
                        SQ_LOG(SQ_LOG_NOTICE, "OFFSETS",
                               "pausing topic=%s partition=%d: its "
                               "completed-offset map needs %zu of %zu bytes "
                               "(in flight %zu, held %zu)",
                               part->topic, (int)part->partition, full, budget,
                               sq_offsets_in_flight(part->offsets),
                               sq_offsets_held(part->offsets));
                        part->map_paused = true;
                        sq_metric_add(daemon->m.map_pauses, 1);
                        changed = true;
                } else if (part->map_paused && full <= resume_mark) {
                        SQ_LOG(SQ_LOG_NOTICE, "OFFSETS",
                               "resuming topic=%s partition=%d: its "
                               "completed-offset map is down to %zu bytes",
                               part->topic, (int)part->partition, full);
                        part->map_paused = false;
                        changed          = true;
                }
        }
        if (changed)
                sync_pauses(daemon);
}

/* memory.limit.bytes: RSS at 90% of the limit pauses ordinary intake
 * (the fast lane is bounded by its own mark); it resumes below 80%, or
 * once no ordinary task is in memory: what is left then is not held by
 * tasks and waiting would not free it, so intake goes on in bursts.
 * Checked at most every MEM_CHECK_US (a read of /proc/self/statm), and on
 * every wake-up while paused with an empty window. While paused, freed
 * task memory is handed back to the system (malloc_trim, which walks the
 * heaps: at most every MEM_PAUSED_CHECK_US) so RSS can fall. */
#define MEM_CHECK_US        10000
#define MEM_PAUSED_CHECK_US 100000

static void check_memory(sq_daemon_t *daemon) {
        uint64_t limit    = (uint64_t)daemon->conf->memory_limit_bytes;
        uint64_t pause_at = limit / 10 * 9, resume_at = limit / 10 * 8;
        long window = atomic_load(&daemon->window[SQ_LANE_TASKS]);
        int64_t now;
        uint64_t rss;

        if (!limit || atomic_load(&daemon->stop_requested))
                return;
        now = sq_clock_us();
        if (now < daemon->mem_next_check_us &&
            !(daemon->mem_paused && window == 0))
                return;
        daemon->mem_next_check_us = now + MEM_CHECK_US;
        if (sq_metrics_read_rss(&rss) != SQ_OK)
                return;
        if (!daemon->mem_paused && rss >= pause_at) {
                SQ_LOG(SQ_LOG_NOTICE, "MEMORY",
                       "pausing intake: rss=%llu bytes is over 90%% of "
                       "memory.limit.bytes=%llu (window=%ld)",
                       (unsigned long long)rss, (unsigned long long)limit,
                       window);
                daemon->mem_paused = true;
                sq_metric_add(daemon->m.memory_pauses, 1);
        } else if (daemon->mem_paused) {
                daemon->mem_next_check_us = now + MEM_PAUSED_CHECK_US;
                if (rss >= resume_at) {
                        malloc_trim(0);
                        if (sq_metrics_read_rss(&rss) != SQ_OK)
                                return;
                }
                if (rss >= resume_at && window > 0)
                        return;
                SQ_LOG(
                    rss < resume_at ? SQ_LOG_NOTICE : SQ_LOG_WARNING, "MEMORY",
                    "resuming intake: rss=%llu bytes%s (80%% of "
                    "memory.limit.bytes=%llu is %llu)",
                    (unsigned long long)rss,
                    rss < resume_at
                        ? ""
                        : " with no task in memory; the limit is too "
                          "low for this instance's baseline",
                    (unsigned long long)limit, (unsigned long long)resume_at);
                daemon->mem_paused = false;
        }
        atomic_store(&daemon->mem_paused_flag, daemon->mem_paused);
}

static void apply_backpressure(sq_daemon_t *daemon) {
        static const char *lane_names[] = {"tasks", "critical", "retry"};
        int lane;

        check_memory(daemon);
        for (lane = 0; lane < SQ_LANE_CNT; lane++) {
                long window = atomic_load(&daemon->window[lane]);
                bool mem    = lane == SQ_LANE_TASKS && daemon->mem_paused;
                /* The retry lane has the ordinary lane's marks. */
                long high = lane != SQ_LANE_CRITICAL
                                ? daemon->conf->admission_high
                                : daemon->conf->critical_high;
                long low  = lane != SQ_LANE_CRITICAL
                                ? daemon->conf->admission_low
                                : daemon->conf->critical_high / 2;
                if (atomic_load(&daemon->stop_requested))
                        continue; /* stop() paused everything for good */
                if (atomic_load(&daemon->admin_paused)) {
                        /* POST /admin/pause or /admin/drain */
                        if (!daemon->lane_paused[lane])
                                set_lane_paused(daemon, (sq_lane_t)lane, true);
                        continue;
                }
                if (!daemon->lane_paused[lane] && (window >= high || mem)) {
                        SQ_LOG(SQ_LOG_DEBUG, "WINDOW",
                               "pausing lane=%s window=%ld high=%ld",
                               lane_names[lane], window, high);
                        set_lane_paused(daemon, (sq_lane_t)lane, true);
                } else if (daemon->lane_paused[lane] && window <= low && !mem) {
                        SQ_LOG(SQ_LOG_DEBUG, "WINDOW",
                               "resuming lane=%s window=%ld low=%ld",
                               lane_names[lane], window, low);
                        set_lane_paused(daemon, (sq_lane_t)lane, false);
                }
        }
}

/*
 * Commits (poll thread)
 */

/* FNV-1a, 64 bits: tells whether a map changed since it was committed. */
static uint64_t hash_bytes(const char *buf, size_t len) {
        uint64_t h = 14695981039346656037ull;
        size_t i;
        for (i = 0; i < len; i++) {
                h ^= (unsigned char)buf[i];
                h *= 1099511628211ull;
        }
        return h;
}

/* Snapshots every partition for /status and /metrics. The fetched
 * watermarks go stale while a partition is paused; the lag refresher
 * (lag.c) queries fresh ones and sq_lag_compute() takes the newer. The
 * parts[] walk needs no lock here: only this thread grows it. */
static void update_lag_snapshot(sq_daemon_t *daemon) {
        sq_partition_t *part;
        int lane, i;

        FOREACH_PARTITION(daemon, lane, i, part) {
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

/* The offsets (with their maps) to commit: see commit_offsets(). */
static rd_kafka_topic_partition_list_t *
commit_list(sq_daemon_t *daemon, const rd_kafka_topic_partition_list_t *only,
            bool sync) {
        rd_kafka_topic_partition_list_t *list =
            rd_kafka_topic_partition_list_new(16);
        sq_partition_t *part;
        int lane, i;

        FOREACH_PARTITION(daemon, lane, i, part) {
                int64_t next = sq_offsets_committable(part->offsets);
                rd_kafka_topic_partition_t *rktpar;
                size_t map_len = 0, full = 0;
                int64_t map_done = 0;
                uint64_t map_hash;

                if (!part->assigned || next < 0)
                        continue;
                if (only && !rd_kafka_topic_partition_list_find(
                                only, part->topic, part->partition))
                        continue;
                /* The completed offsets above @p next travel with it. */
                if (daemon->conf->commit_metadata_max > 0)
                        map_len = sq_offsets_map_encode(
                            part->offsets,
                            (size_t)daemon->conf->commit_metadata_max,
                            daemon->map_buf, &full, &map_done);
                map_hash = hash_bytes(daemon->map_buf, map_len);
                /* Skipped only once the broker acknowledged this very
                 * commit: one sent but not acknowledged yet goes again.
                 * librdkafka retries a timed-out commit by itself, and a
                 * retry can land after a newer commit; the last
                 * acknowledgement then names the older offset and the
                 * newer one is sent again, instead of the partition
                 * staying behind for good. */
                if (!sync &&
                    (next < part->committed ||
                     (next == part->acked && map_hash == part->acked_map)))
                        continue;
                if (full > map_len && !part->map_cut_warned) {
                        SQ_LOG(SQ_LOG_WARNING, "OFFSETS",
                               "completed-offset map of topic=%s "
                               "partition=%d cut from %zu to %zu bytes "
                               "(commit.metadata.max.bytes=%d): the next "
                               "owner may run some finished records again",
                               part->topic, (int)part->partition, full, map_len,
                               daemon->conf->commit_metadata_max);
                        part->map_cut_warned = true;
                }
                rktpar = rd_kafka_topic_partition_list_add(list, part->topic,
                                                           part->partition);
                rktpar->offset = next;
                if (map_len > 0) {
                        /* Freed by librdkafka with the list. */
                        rktpar->metadata = sq_memdup(daemon->map_buf, map_len);
                        rktpar->metadata_size = map_len;
                }
                part->committed     = next;
                part->committed_map = map_hash;
                part->map_len       = map_len;
                part->map_done      = map_done;
        }
        return list;
}

/* Records, per partition of @p offsets, the commit the broker
 * acknowledged (its offset and map). With @p failed (the commit's error),
 * forgets them all instead: a request-level error marks no partition, and
 * re-sending the ones that did land costs one more commit. */
static void mark_acked(sq_daemon_t *daemon,
                       const rd_kafka_topic_partition_list_t *offsets,
                       bool failed) {
        int i;

        for (i = 0; offsets && i < offsets->cnt; i++) {
                const rd_kafka_topic_partition_t *rktpar = &offsets->elems[i];
                sq_partition_t *part;
                sq_lane_t lane;
                if (!lane_of_topic(daemon, rktpar->topic, &lane))
                        continue;
                part = partition_get(daemon, lane, rktpar->partition);
                if (failed || rktpar->err) {
                        part->acked = -1;
                        continue;
                }
                part->acked     = rktpar->offset;
                part->acked_map = hash_bytes((const char *)rktpar->metadata,
                                             rktpar->metadata_size);
        }
}

/* exactly_once: the transaction failed; abort it and stop the instance
 * (its offsets stay where the last committed transaction put them, and
 * read_committed readers never see its results). */
static void fail_transaction(sq_daemon_t *daemon, const char *what,
                             rd_kafka_error_t *error) {
        char fatal[512] = "";

        /* A produce that failed gives no error object: a fatal producer
         * error (fenced by a newer instance with our transactional.id)
         * names the cause, else a record of the transaction failed. */
        if (!error &&
            !rd_kafka_fatal_error(daemon->producer, fatal, sizeof(fatal)))
                snprintf(fatal, sizeof(fatal),
                         "a record of it was not delivered");
        SQ_LOG(SQ_LOG_CRIT, "TXN",
               "%s failed: %s; aborting the transaction and stopping (its "
               "tasks run again from the last committed offsets)",
               what, error ? rd_kafka_error_string(error) : fatal);
        if (!error || !rd_kafka_error_is_fatal(error)) {
                rd_kafka_error_t *aerr =
                    rd_kafka_abort_transaction(daemon->producer, 30000);
                if (aerr) {
                        SQ_LOG(SQ_LOG_ERR, "TXN", "abort failed: %s",
                               rd_kafka_error_string(aerr));
                        rd_kafka_error_destroy(aerr);
                }
        }
        if (error)
                rd_kafka_error_destroy(error);
        sq_metric_add(daemon->m.commits_failed, 1);
        daemon->txn_dead = true;
        daemon->fatal    = SQ_ERR_KAFKA;
        sq_daemon_stop(daemon);
}

/* exactly_once: ends the open transaction with the offsets of what it
 * holds, and opens the next. Under the write lock nothing is produced:
 * the flush makes every record of the transaction acknowledged (delivery
 * reports mark their offsets done, on this thread), so the offsets sent
 * cover exactly the tasks whose results and events are in it or in
 * earlier transactions. */
static void commit_transaction(sq_daemon_t *daemon,
                               const rd_kafka_topic_partition_list_t *only,
                               bool sync) {
        rd_kafka_topic_partition_list_t *list = NULL;
        rd_kafka_error_t *error               = NULL;
        const char *what                      = "flush";

        if (daemon->txn_dead)
                return;
        pthread_rwlock_wrlock(&daemon->txn_lock);
        if (rd_kafka_flush(daemon->producer, 60000) ||
            atomic_load(&daemon->txn_failed))
                goto fail;
        list = commit_list(daemon, only, sync);
        if (list->cnt == 0 && atomic_load(&daemon->txn_produced) == 0)
                goto done; /* nothing to end */
        if (list->cnt > 0) {
                rd_kafka_consumer_group_metadata_t *cgmd =
                    rd_kafka_consumer_group_metadata(daemon->consumer);
                what  = "sending offsets to the transaction";
                error = rd_kafka_send_offsets_to_transaction(daemon->producer,
                                                             list, cgmd, 30000);
                rd_kafka_consumer_group_metadata_destroy(cgmd);
                if (error)
                        goto fail;
        }
        what = "committing the transaction";
        if ((error = rd_kafka_commit_transaction(daemon->producer, 60000)))
                goto fail;
        mark_acked(daemon, list, false); /* committed with the transaction */
        atomic_store(&daemon->txn_produced, 0);
        sq_metric_add(daemon->m.commits_ok, 1);
        what = "beginning a transaction";
        if ((error = rd_kafka_begin_transaction(daemon->producer)))
                goto fail;
        goto done;
fail:
        fail_transaction(daemon, what, error);
done:
        pthread_rwlock_unlock(&daemon->txn_lock);
        if (list)
                rd_kafka_topic_partition_list_destroy(list);
}

/* Commits the completed prefix of the partitions in @p only (or all
 * assigned ones when NULL). The periodic asynchronous commit skips what it
 * already sent; a synchronous commit (revocation, shutdown) sends every
 * prefix again, because an asynchronous commit still in flight may yet
 * fail (a rebalance in progress does that) after the partition is gone.
 * exactly_once: through the transaction instead. */
static void commit_offsets(sq_daemon_t *daemon,
                           const rd_kafka_topic_partition_list_t *only,
                           bool sync) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;

        if (daemon->eos) {
                commit_transaction(daemon, only, sync);
                return;
        }
        list = commit_list(daemon, only, sync);
        if (list->cnt > 0) {
                err = rd_kafka_commit(daemon->consumer, list, sync ? 0 : 1);
                if (sync && err) {
                        SQ_LOG(SQ_LOG_ERR, "COMMIT",
                               "synchronous commit of %d partitions failed: "
                               "%s",
                               list->cnt, rd_kafka_err2str(err));
                        sq_metric_add(daemon->m.commits_failed, 1);
                } else if (sync) {
                        sq_metric_add(daemon->m.commits_ok, 1);
                }
        }
        rd_kafka_topic_partition_list_destroy(list);
}

void sq_daemon_offset_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *offsets,
                                void *opaque) {
        sq_daemon_t *daemon = opaque;

        (void)rk;
        if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
                return;
        if (err) {
                SQ_LOG(SQ_LOG_WARNING, "COMMIT",
                       "commit failed: %s; will retry on the next interval",
                       rd_kafka_err2str(err));
                sq_metric_add(daemon->m.commits_failed, 1);
        } else
                sq_metric_add(daemon->m.commits_ok, 1);
        /* Partitions the broker refused stay unacknowledged, so the next
         * interval sends them again. */
        mark_acked(daemon, offsets, err != RD_KAFKA_RESP_ERR_NO_ERROR);
}

/*
 * Rebalance (poll thread, from consumer poll)
 */

static void serve_delivery_reports(sq_daemon_t *daemon, int timeout_ms) {
        rd_kafka_poll(daemon->producer, timeout_ms);
}

/* Waits until every job of the revoked partitions is freed (or the drain
 * deadline passes), serving delivery reports meanwhile. */
static void drain_partitions(sq_daemon_t *daemon,
                             const rd_kafka_topic_partition_list_t *list) {
        int64_t deadline =
            sq_clock_us() + daemon->conf->drain_timeout_ms * 1000;
        int i;

        for (;;) {
                long outstanding = 0;
                for (i = 0; i < list->cnt; i++) {
                        sq_lane_t lane;
                        if (!lane_of_topic(daemon, list->elems[i].topic, &lane))
                                continue;
                        outstanding +=
                            atomic_load(&partition_get(daemon, lane,
                                                       list->elems[i].partition)
                                             ->outstanding);
                }
                if (!outstanding)
                        return;
                if (daemon->txn_dead)
                        /* exactly_once after a failed transaction: what
                         * they finish cannot be committed any more (and
                         * records that were refused never report). */
                        return;
                if (sq_clock_us() >= deadline) {
                        SQ_LOG(SQ_LOG_WARNING, "REBALANCE",
                               "drain deadline passed with %ld jobs of the "
                               "revoked partitions unfinished; their "
                               "records will run again on the new owner",
                               outstanding);
                        return;
                }
                /* Blocks until a delivery report arrives (or 100 ms). */
                serve_delivery_reports(daemon, 100);
        }
}

/* Forgets what the partition's last ownership knew (assign and revoke). */
static void partition_forget(sq_partition_t *part) {
        part->committed      = -1;
        part->acked          = -1;
        part->acked_map      = 0;
        part->start_offset   = -1;
        part->committed_map  = 0;
        part->map_len        = 0;
        part->map_done       = 0;
        part->map_dirty      = false;
        part->map_paused     = false;
        part->map_cut_warned = false;
        part->retry_waiting  = false;
        part->retry_due_ms   = 0;
        part->retry_offset   = -1;
        sq_offsets_reset(part->offsets);
}

/* Reads the committed offsets of newly assigned partitions with their
 * metadata: the offset is where the lag of a partition counts from until
 * a record is admitted, and each partition's completed-offset map goes to
 * its tracker: records the previous owner finished are skipped. A map that
 * does not decode, or whose base is not the committed offset (an operator
 * reset the offsets), is ignored with a log line: nothing is skipped. */
static void inherit_maps(sq_daemon_t *daemon,
                         const rd_kafka_topic_partition_list_t *assigned) {
        rd_kafka_topic_partition_list_t *list =
            rd_kafka_topic_partition_list_copy(assigned);
        rd_kafka_resp_err_t err;
        int i;

        err = rd_kafka_committed(daemon->consumer, list, 10000);
        if (err) {
                SQ_LOG(SQ_LOG_WARNING, "OFFSETS",
                       "cannot read the committed offsets of %d assigned "
                       "partitions: %s; finished records above them may "
                       "run again",
                       list->cnt, rd_kafka_err2str(err));
                goto done;
        }
        for (i = 0; i < list->cnt; i++) {
                const rd_kafka_topic_partition_t *rktpar = &list->elems[i];
                sq_offsets_map_t map;
                char errstr[256];
                sq_lane_t lane;
                sq_err_t derr;

                if (rktpar->err || !lane_of_topic(daemon, rktpar->topic, &lane))
                        continue;
                if (rktpar->offset >= 0)
                        partition_get(daemon, lane, rktpar->partition)
                            ->start_offset = rktpar->offset;
                if (daemon->conf->commit_metadata_max == 0 ||
                    !rktpar->metadata || rktpar->metadata_size == 0)
                        continue;
                derr = sq_offsets_map_decode(rktpar->metadata,
                                             rktpar->metadata_size, &map,
                                             errstr, sizeof(errstr));
                if (derr == SQ_ERR_NOT_FOUND)
                        continue; /* not ours: another client's metadata */
                if (derr) {
                        SQ_LOG(SQ_LOG_WARNING, "OFFSETS",
                               "ignoring the commit metadata of topic=%s "
                               "partition=%d offset=%lld: %s",
                               rktpar->topic, (int)rktpar->partition,
                               (long long)rktpar->offset, errstr);
                        continue;
                }
                if (map.base != rktpar->offset) {
                        SQ_LOG(SQ_LOG_NOTICE, "OFFSETS",
                               "ignoring a stale completed-offset map "
                               "topic=%s partition=%d: its base %lld is "
                               "not the committed offset %lld",
                               rktpar->topic, (int)rktpar->partition,
                               (long long)map.base, (long long)rktpar->offset);
                } else {
                        SQ_LOG(SQ_LOG_INFO, "OFFSETS",
                               "inherited completed-offset map topic=%s "
                               "partition=%d offset=%lld done=%lld "
                               "ranges=%zu",
                               rktpar->topic, (int)rktpar->partition,
                               (long long)map.base, (long long)map.done_cnt,
                               map.ranges_cnt);
                        sq_offsets_inherit(
                            partition_get(daemon, lane, rktpar->partition)
                                ->offsets,
                            &map);
                }
                sq_offsets_map_clear(&map);
        }
done:
        rd_kafka_topic_partition_list_destroy(list);
}

static void revoke_partitions(sq_daemon_t *daemon,
                              rd_kafka_topic_partition_list_t *list) {
        int i;

        SQ_LOG(SQ_LOG_NOTICE, "REBALANCE", "revoking %d partitions", list->cnt);
        for (i = 0; i < list->cnt; i++) {
                sq_lane_t lane;
                if (lane_of_topic(daemon, list->elems[i].topic, &lane))
                        atomic_store(&partition_get(daemon, lane,
                                                    list->elems[i].partition)
                                          ->revoking,
                                     true);
        }
        drain_partitions(daemon, list);
        commit_offsets(daemon, list, true);
        for (i = 0; i < list->cnt; i++) {
                sq_partition_t *part;
                sq_lane_t lane;
                if (!lane_of_topic(daemon, list->elems[i].topic, &lane))
                        continue;
                part = partition_get(daemon, lane, list->elems[i].partition);
                if (lane == SQ_LANE_CRITICAL) {
                        rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(
                            daemon->consumer, part->topic, part->partition);
                        if (pq) {
                                rd_kafka_queue_forward(pq, NULL);
                                rd_kafka_queue_destroy(pq);
                        }
                }
                atomic_fetch_add(&part->gen, 1);
                if (part->assigned)
                        atomic_fetch_sub(&daemon->assigned_cnt[lane], 1);
                part->assigned = false;
                part->paused   = false;
                partition_forget(part);
                atomic_store(&part->revoking, false);
        }
        sq_metric_add(daemon->m.revoked_partitions, (double)list->cnt);
}

static void assign_partitions(sq_daemon_t *daemon,
                              rd_kafka_topic_partition_list_t *list) {
        rd_kafka_topic_partition_list_t *pause_list =
            rd_kafka_topic_partition_list_new(list->cnt);
        /* librdkafka keeps a partition's pause flag across unassign and
         * assign: a partition paused by backpressure before a revocation
         * comes back paused. Set every newly assigned partition's state
         * explicitly, or it could stay paused for good. */
        rd_kafka_topic_partition_list_t *resume_list =
            rd_kafka_topic_partition_list_new(list->cnt);
        int i;

        SQ_LOG(SQ_LOG_NOTICE, "REBALANCE", "assigned %d partitions", list->cnt);
        for (i = 0; i < list->cnt; i++) {
                sq_partition_t *part;
                sq_lane_t lane;
                if (!lane_of_topic(daemon, list->elems[i].topic, &lane))
                        continue;
                part = partition_get(daemon, lane, list->elems[i].partition);
                atomic_fetch_add(&part->gen, 1);
                if (!part->assigned)
                        atomic_fetch_add(&daemon->assigned_cnt[lane], 1);
                part->assigned = true;
                part->paused   = false;
                partition_forget(part);
                if (lane == SQ_LANE_CRITICAL) {
                        /* The fast lane's own queue: never behind a paused
                         * or deep ordinary queue. */
                        rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(
                            daemon->consumer, part->topic, part->partition);
                        if (pq) {
                                rd_kafka_queue_forward(pq, daemon->critical_q);
                                rd_kafka_queue_destroy(pq);
                        }
                }
                if (daemon->lane_paused[lane] ||
                    atomic_load(&daemon->stop_requested)) {
                        rd_kafka_topic_partition_list_add(
                            pause_list, part->topic, part->partition);
                        part->paused = true;
                } else {
                        rd_kafka_topic_partition_list_add(
                            resume_list, part->topic, part->partition);
                }
        }
        if (pause_list->cnt > 0)
                rd_kafka_pause_partitions(daemon->consumer, pause_list);
        if (resume_list->cnt > 0)
                rd_kafka_resume_partitions(daemon->consumer, resume_list);
        rd_kafka_topic_partition_list_destroy(pause_list);
        rd_kafka_topic_partition_list_destroy(resume_list);
        /* Before any record of these partitions is admitted (admission
         * runs on this thread, after this callback). */
        inherit_maps(daemon, list);
        sq_metric_add(daemon->m.assigned_partitions, (double)list->cnt);
}

void sq_daemon_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *partitions,
                            void *opaque) {
        sq_daemon_t *daemon = opaque;
        bool cooperative =
            !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
        rd_kafka_error_t *error     = NULL;
        rd_kafka_resp_err_t ret_err = RD_KAFKA_RESP_ERR_NO_ERROR;

        switch (err) {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
                if (cooperative)
                        error = rd_kafka_incremental_assign(rk, partitions);
                else
                        ret_err = rd_kafka_assign(rk, partitions);
                /* Partition queues exist once assigned: wire them now. */
                assign_partitions(daemon, partitions);
                atomic_store(&daemon->assigned_once, true);
                break;
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
                revoke_partitions(daemon, partitions);
                if (cooperative)
                        error = rd_kafka_incremental_unassign(rk, partitions);
                else
                        ret_err = rd_kafka_assign(rk, NULL);
                break;
        default:
                SQ_LOG(SQ_LOG_ERR, "REBALANCE", "rebalance failed: %s",
                       rd_kafka_err2str(err));
                revoke_partitions(daemon, partitions);
                ret_err = rd_kafka_assign(rk, NULL);
                break;
        }
        if (error) {
                SQ_LOG(SQ_LOG_ERR, "REBALANCE", "incremental %s failed: %s",
                       err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assign"
                                                                   : "unassign",
                       rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        } else if (ret_err) {
                SQ_LOG(SQ_LOG_ERR, "REBALANCE", "assign failed: %s",
                       rd_kafka_err2str(ret_err));
        }
}

/*
 * The poll loop
 */

static void drain_pipe(int fd) {
        char buf[64];
        while (read(fd, buf, sizeof(buf)) > 0)
                ;
}

/* True when a lane not yet paused has reached its high mark. */
static bool lane_reached_high(sq_daemon_t *daemon) {
        return (!daemon->lane_paused[SQ_LANE_TASKS] &&
                atomic_load(&daemon->window[SQ_LANE_TASKS]) >=
                    daemon->conf->admission_high) ||
               (!daemon->lane_paused[SQ_LANE_CRITICAL] &&
                atomic_load(&daemon->window[SQ_LANE_CRITICAL]) >=
                    daemon->conf->critical_high);
}

static int serve_queue(sq_daemon_t *daemon, rd_kafka_queue_t *queue,
                       bool consumer_queue) {
        int n = 0;
        while (n < POLL_BATCH) {
                rd_kafka_message_t *rkm =
                    consumer_queue ? rd_kafka_consumer_poll(daemon->consumer, 0)
                                   : rd_kafka_consume_queue(queue, 0);
                if (!rkm)
                        break;
                admit_message(daemon, rkm);
                rd_kafka_message_destroy(rkm);
                n++;
                /* Pause the moment a lane reaches its high mark, not at
                 * the end of the batch: pausing drops what librdkafka
                 * prefetched for those partitions, so the window (and
                 * the work a crash can make run twice) stays at the
                 * configured mark instead of the mark plus a batch. */
                if (lane_reached_high(daemon))
                        apply_backpressure(daemon);
        }
        return n;
}

static void stop_intake(sq_daemon_t *daemon) {
        SQ_LOG(SQ_LOG_NOTICE, "STOP",
               "stopping intake; draining %ld in-flight tasks (deadline "
               "%lld ms)",
               window_total(daemon), (long long)daemon->conf->drain_timeout_ms);
        atomic_store(&daemon->ready, false);
        set_lane_paused(daemon, SQ_LANE_TASKS, true);
        set_lane_paused(daemon, SQ_LANE_CRITICAL, true);
        set_lane_paused(daemon, SQ_LANE_RETRY, true);
}

/* Emits an instance event when an admin action took effect. */
static void admin_events(sq_daemon_t *daemon) {
        static const char *const types[] = {
            "instance_resumed", "instance_paused", "instance_draining"};
        int state = atomic_load(&daemon->draining)       ? 2
                    : atomic_load(&daemon->admin_paused) ? 1
                                                         : 0;
        if (state == daemon->admin_state)
                return;
        daemon->admin_state = state;
        SQ_LOG(SQ_LOG_NOTICE, "ADMIN", "%s", types[state]);
        sq_emit_event(daemon, daemon->poll_codec, types[state], NULL, NULL,
                      "requested over HTTP", NULL);
}

/* POST /admin/drain reached an empty window: commit what is done. */
static void finish_drain(sq_daemon_t *daemon) {
        commit_offsets(daemon, NULL, true);
        update_lag_snapshot(daemon);
        atomic_store(&daemon->drained, true);
        SQ_LOG(SQ_LOG_NOTICE, "ADMIN",
               "drained: intake stopped, no task in flight, offsets "
               "committed");
        sq_emit_event(daemon, daemon->poll_codec, "instance_drained", NULL,
                      NULL, NULL, NULL);
}

static void *poll_main(void *arg) {
        sq_daemon_t *daemon = arg;
        struct pollfd fds[4];
        int64_t drain_deadline = 0;
        bool stopping          = false;

        fds[0].fd = daemon->consumer_pipe[0];
        fds[1].fd = daemon->critical_pipe[0];
        fds[2].fd = daemon->producer_pipe[0];
        fds[3].fd = daemon->wake_fd;
        for (int i = 0; i < 4; i++)
                fds[i].events = POLLIN;
        daemon->next_commit_us =
            sq_clock_us() + daemon->conf->commit_interval_ms * 1000;
        /* The consumer subscribes (and may even be handed its first
         * assignment) before the queues' io events are enabled, and
         * librdkafka writes a queue's pipe only when an op is enqueued:
         * ops already waiting would sit there until the commit interval
         * ends the first poll() (an hour with a long interval, so the
         * instance never became ready). Serve every queue once first. */
        sq_daemon_wake(daemon);

        for (;;) {
                int64_t now = sq_clock_us(), timeout_us, due;
                int busy    = 0;

                atomic_store(&daemon->poll_heartbeat_us, now);
                if (!stopping && atomic_load(&daemon->stop_requested)) {
                        stopping = true;
                        drain_deadline =
                            now + daemon->conf->drain_timeout_ms * 1000;
                        stop_intake(daemon);
                }
                if (stopping) {
                        if (window_total(daemon) == 0)
                                break;
                        if (daemon->txn_dead) {
                                /* exactly_once after a failed transaction:
                                 * nothing finished now can be committed,
                                 * so waiting for it only delays the
                                 * restart that runs it again. */
                                SQ_LOG(SQ_LOG_WARNING, "STOP",
                                       "transaction failed; abandoning %ld "
                                       "unfinished tasks without waiting "
                                       "(they run again from the last "
                                       "committed offsets)",
                                       window_total(daemon));
                                break;
                        }
                        if (now >= drain_deadline) {
                                SQ_LOG(SQ_LOG_WARNING, "STOP",
                                       "drain deadline passed; abandoning "
                                       "%ld unfinished tasks (they will run "
                                       "again after a restart or on another "
                                       "instance)",
                                       window_total(daemon));
                                break;
                        }
                }

                timeout_us = daemon->next_commit_us - now;
                if ((due = breakers_tick(daemon, now)))
                        timeout_us = SQ_MIN(timeout_us, due - now);
                {
                        /* The retry lane's timer: wake when the earliest
                         * waiting head is due. */
                        int64_t retry_due = retry_check_due(daemon);
                        if (retry_due != INT64_MAX)
                                timeout_us = SQ_MIN(
                                    timeout_us,
                                    (retry_due - sq_wallclock_ms()) * 1000);
                }
                if (stopping)
                        timeout_us = SQ_MIN(timeout_us, drain_deadline - now);
                if (timeout_us < 0)
                        timeout_us = 0;
                if (poll(fds, 4, (int)((timeout_us + 999) / 1000)) < 0 &&
                    errno != EINTR) {
                        SQ_LOG(SQ_LOG_CRIT, "POLL", "poll() failed: %s",
                               strerror(errno));
                        daemon->fatal = SQ_ERR_IO;
                        break;
                }
                /* Clear the wake-ups first: an event enqueued after this
                 * writes the pipe again, so nothing is missed. */
                drain_pipe(daemon->consumer_pipe[0]);
                drain_pipe(daemon->critical_pipe[0]);
                drain_pipe(daemon->producer_pipe[0]);
                drain_pipe(daemon->wake_fd);

                serve_delivery_reports(daemon, 0);
                if (daemon->eos && atomic_load(&daemon->txn_failed) &&
                    !daemon->txn_dead)
                        fail_transaction(daemon, "a produce", NULL);
                check_map_budget(daemon);
                busy += serve_queue(daemon, daemon->critical_q, false);
                busy += serve_queue(daemon, daemon->consumer_q, true);
                apply_backpressure(daemon);
                admin_events(daemon);
                if (atomic_load(&daemon->draining) &&
                    !atomic_load(&daemon->drained) && window_total(daemon) == 0)
                        finish_drain(daemon);

                now = sq_clock_us();
                if (now >= daemon->next_commit_us) {
                        commit_offsets(daemon, NULL, false);
                        update_lag_snapshot(daemon);
                        daemon->next_commit_us =
                            now + daemon->conf->commit_interval_ms * 1000;
                }
                if (busy)
                        /* A full batch may have left records queued without
                         * a new io event: wake ourselves to continue. */
                        sq_daemon_wake(daemon);
        }

        /* Stopped: abandon what is left, commit the completed prefix. */
        atomic_store(&daemon->order_closed, true);
        atomic_store(&daemon->cancel, true);
        sq_sched_shutdown(daemon->sched);
        sq_executors_join(daemon);
        sq_runtimes_shutdown(daemon); /* kills children, drops their jobs */
        serve_delivery_reports(daemon, 0);
        commit_offsets(daemon, NULL, true);
        sq_lag_stop(daemon); /* no query on a closing consumer */
        SQ_LOG(SQ_LOG_NOTICE, "STOP", "closing the consumer");
        rd_kafka_consumer_close(daemon->consumer);
        /* Results of tasks that finished are still worth delivering
         * (not after a failed transaction: they would be aborted). */
        if (!daemon->txn_dead && rd_kafka_flush(daemon->producer, 10000) !=
                                     RD_KAFKA_RESP_ERR_NO_ERROR)
                SQ_LOG(SQ_LOG_WARNING, "STOP",
                       "%d records not delivered before the flush timeout",
                       rd_kafka_outq_len(daemon->producer));
        rd_kafka_purge(daemon->producer,
                       RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        serve_delivery_reports(daemon, 0);
        return NULL;
}

/*
 * HTTP (libmicrohttpd's thread: atomics and snapshots only)
 */

/* /healthz fails when a thread that must make progress has not. */
static void http_healthz(void *opaque, const char *method, const char *path,
                         sq_http_response_t *resp) {
        sq_daemon_t *daemon = opaque;
        int64_t now         = sq_clock_us();
        int64_t poll_age    = now - atomic_load(&daemon->poll_heartbeat_us);
        int64_t exec_age    = now - atomic_load(&daemon->exec_progress_us);
        int64_t exec_limit_us =
            (2 * daemon->conf->default_timeout_ms + 10000) * 1000;
        size_t queued = 0;
        int prio;

        (void)method;
        (void)path;
        for (prio = 0; prio < SQ_PRIO_CNT; prio++)
                queued += sq_sched_depth(daemon->sched, (sq_priority_t)prio);
        if (poll_age > 15 * 1000000 + daemon->conf->commit_interval_ms * 1000)
                sq_http_respond(resp, 503, NULL,
                                "unhealthy: poll loop stalled for %lld ms\n",
                                (long long)(poll_age / 1000));
        else if (queued > 0 && exec_age > exec_limit_us)
                sq_http_respond(resp, 503, NULL,
                                "unhealthy: %zu tasks queued and no executor "
                                "progress for %lld ms\n",
                                queued, (long long)(exec_age / 1000));
        else
                sq_http_respond(resp, 200, NULL, "ok\n");
}

static void http_readyz(void *opaque, const char *method, const char *path,
                        sq_http_response_t *resp) {
        sq_daemon_t *daemon = opaque;
        (void)method;
        (void)path;
        if (atomic_load(&daemon->stop_requested))
                sq_http_respond(resp, 503, NULL, "not ready: stopping\n");
        else if (atomic_load(&daemon->draining) &&
                 atomic_load(&daemon->drained))
                sq_http_respond(resp, 503, NULL,
                                "not ready: drained (POST /admin/resume to "
                                "take work again)\n");
        else if (atomic_load(&daemon->draining))
                sq_http_respond(resp, 503, NULL,
                                "not ready: draining, %ld tasks in flight\n",
                                window_total(daemon));
        else if (!atomic_load(&daemon->assigned_once))
                sq_http_respond(resp, 503, NULL,
                                "not ready: no partition assignment from "
                                "group %s yet\n",
                                daemon->conf->group_id);
        else
                sq_http_respond(resp, 200, NULL, "ready\n");
}

static void http_metrics(void *opaque, const char *method, const char *path,
                         sq_http_response_t *resp) {
        sq_daemon_t *daemon = opaque;
        (void)method;
        (void)path;
        resp->status       = 200;
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        resp->body = sq_metrics_render(daemon->metrics, &resp->body_len);
}

/* POST /admin/{pause,resume,drain}: bearer token, then flags the poll
 * thread applies (it owns pause/resume and commits). */
static void http_admin(void *opaque, const char *method, const char *path,
                       sq_http_response_t *resp) {
        sq_daemon_t *daemon = opaque;
        const char *auth   = sq_http_request_header(resp->req, "Authorization");
        const char *action = path + strlen("/admin/");
        size_t want        = strlen(daemon->admin_token);

        (void)method;
        if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 ||
            strlen(auth + 7) != want ||
            CRYPTO_memcmp(auth + 7, daemon->admin_token, want) != 0) {
                SQ_LOG(SQ_LOG_WARNING, "ADMIN",
                       "refused POST %s: %s bearer token", path,
                       auth ? "wrong" : "no");
                sq_http_respond(resp, 401, NULL,
                                "unauthorized: POST %s needs \"Authorization: "
                                "Bearer <http.admin.token>\"\n",
                                path);
                sq_http_response_header(resp, "WWW-Authenticate",
                                        "Bearer realm=\"swarmq\"");
                return;
        }
        if (atomic_load(&daemon->stop_requested)) {
                sq_http_respond(resp, 409, NULL,
                                "conflict: the instance is stopping\n");
                return;
        }
        if (!strcmp(action, "pause")) {
                atomic_store(&daemon->admin_paused, true);
        } else if (!strcmp(action, "resume")) {
                atomic_store(&daemon->draining, false);
                atomic_store(&daemon->drained, false);
                atomic_store(&daemon->admin_paused, false);
        } else {
                atomic_store(&daemon->admin_paused, true);
                atomic_store(&daemon->drained, false);
                atomic_store(&daemon->draining, true);
        }
        SQ_LOG(SQ_LOG_NOTICE, "ADMIN", "%s requested over HTTP", action);
        sq_daemon_wake(daemon);
        sq_http_respond(resp, 202, "application/json",
                        "{\"action\":\"%s\",\"state\":\"%s\"}\n", action,
                        atomic_load(&daemon->draining)       ? "draining"
                        : atomic_load(&daemon->admin_paused) ? "paused"
                                                             : "running");
}

/*
 * Metrics
 */

static void collect_lanes(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        char labels[64];
        int prio;
        (void)metrics;
        for (prio = SQ_PRIO_CNT - 1; prio >= 0; prio--) {
                snprintf(labels, sizeof(labels), "lane=\"%s\"",
                         sq_priority_name((sq_priority_t)prio));
                sq_metrics_emit(
                    out, "swarmq_lane_depth", labels,
                    (double)sq_sched_depth(daemon->sched, (sq_priority_t)prio));
        }
}

static void collect_window(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(out, "swarmq_tasks_in_flight", "lane=\"tasks\"",
                        (double)atomic_load(&daemon->window[SQ_LANE_TASKS]));
        sq_metrics_emit(out, "swarmq_tasks_in_flight", "lane=\"critical\"",
                        (double)atomic_load(&daemon->window[SQ_LANE_CRITICAL]));
        sq_metrics_emit(out, "swarmq_tasks_in_flight", "lane=\"retry\"",
                        (double)atomic_load(&daemon->window[SQ_LANE_RETRY]));
}

static void collect_paused(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(out, "swarmq_admission_paused", NULL,
                        atomic_load(&daemon->paused_any) ? 1 : 0);
}

static void collect_mem_paused(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(out, "swarmq_memory_paused", NULL,
                        atomic_load(&daemon->mem_paused_flag) ? 1 : 0);
}

static const char *const agent_gauges[][2] = {
    {"swarmq_agent_in_flight", "Tasks running on each agent"},
    {"swarmq_agent_concurrency", "Each agent's concurrency limit"},
    {"swarmq_agent_parked", "Tasks parked waiting for a slot on each agent"},
    {"swarmq_agent_success_rate",
     "EWMA (alpha 0.2) of each agent's task successes, 0 to 1"},
    {"swarmq_agent_latency_seconds",
     "EWMA (alpha 0.2) of each agent's task run time"},
    {"swarmq_agent_breaker_state",
     "Each agent's circuit breaker: 0 closed, 1 half-open, 2 open"},
};

/* One per-agent gauge, each agent's figures from one snapshot. */
static void collect_agents(void *opaque, sq_metrics_t *metrics, void *out) {
        struct sq_agent_collect_s *ac = opaque;
        sq_agents_t *agents           = sq_daemon_agents(ac->daemon);
        char name[256], labels[320];
        int i;
        (void)metrics;
        for (i = 0; i < sq_agents_count(agents); i++) {
                sq_agent_t *agent = sq_agents_get(agents, i);
                sq_agent_stats_t st;
                double v[SQ_ARRAY_SIZE(agent_gauges)];
                sq_agent_stats(agent, &st);
                v[0] = st.in_flight;
                v[1] = st.concurrency;
                v[2] = st.parked;
                v[3] = st.success_rate;
                v[4] = st.latency_us / 1e6;
                v[5] = st.breaker;
                sq_metrics_escape_label(name, sizeof(name),
                                        sq_agent_name(agent));
                snprintf(labels, sizeof(labels), "agent=\"%s\"", name);
                sq_metrics_emit(out, agent_gauges[ac->which][0], labels,
                                v[ac->which]);
        }
        sq_agents_release_ref(agents);
}

static void collect_breaker_transitions(void *opaque, sq_metrics_t *metrics,
                                        void *out) {
        sq_daemon_t *daemon = opaque;
        sq_agents_t *agents = sq_daemon_agents(daemon);
        char name[256], labels[360];
        int i, to;
        (void)metrics;
        for (i = 0; i < sq_agents_count(agents); i++) {
                sq_agent_t *agent = sq_agents_get(agents, i);
                sq_agent_stats_t st;
                sq_agent_stats(agent, &st);
                sq_metrics_escape_label(name, sizeof(name),
                                        sq_agent_name(agent));
                for (to = 0; to < SQ_BREAKER_STATE_CNT; to++) {
                        snprintf(labels, sizeof(labels),
                                 "agent=\"%s\",to=\"%s\"", name,
                                 sq_breaker_state_name((sq_breaker_state_t)to));
                        sq_metrics_emit(
                            out, "swarmq_agent_breaker_transitions_total",
                            labels, (double)st.transitions[to]);
                }
        }
        sq_agents_release_ref(agents);
}

static void collect_flags(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        char labels[128];
        int f;
        (void)metrics;
        for (f = 0; f < SQ_FLAG_CNT; f++) {
                snprintf(labels, sizeof(labels), "flag=\"%s\"",
                         sq_flag_name((sq_flag_t)f));
                sq_metrics_emit(out, "swarmq_flag_rollout_percent", labels,
                                sq_flags_rollout(&daemon->flags, (sq_flag_t)f) /
                                    100.0);
        }
}

/* Creates (or finds again, after a reload) the agents' metric children. */
static void register_agent_metrics(sq_daemon_t *daemon, sq_agents_t *agents) {
        int a, s, p;
        for (a = 0; a < sq_agents_count(agents); a++) {
                sq_agent_t *agent      = sq_agents_get(agents, a);
                sq_agent_metrics_t *am = sq_agent_metrics(agent);
                const char *name[]     = {sq_agent_name(agent)};
                for (s = 0; s < SQ_STATUS_CNT; s++)
                        for (p = 0; p < SQ_PRIO_CNT; p++) {
                                const char *values[3];
                                values[0] = sq_status_name((sq_status_t)s);
                                values[1] = sq_agent_name(agent);
                                values[2] = sq_priority_name((sq_priority_t)p);
                                am->tasks[s][p] = sq_metrics_child(
                                    daemon->m.tasks_family, values);
                        }
                am->duration =
                    sq_metrics_child(daemon->m.duration_family, name);
        }
}

static void collect_assigned(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(
            out, "swarmq_partitions_assigned", "lane=\"tasks\"",
            (double)atomic_load(&daemon->assigned_cnt[SQ_LANE_TASKS]));
        sq_metrics_emit(
            out, "swarmq_partitions_assigned", "lane=\"critical\"",
            (double)atomic_load(&daemon->assigned_cnt[SQ_LANE_CRITICAL]));
        sq_metrics_emit(
            out, "swarmq_partitions_assigned", "lane=\"retry\"",
            (double)atomic_load(&daemon->assigned_cnt[SQ_LANE_RETRY]));
}

static void collect_lag(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        sq_partition_t *part;
        char topic[256], labels[320];
        int lane, i;
        (void)metrics;
        pthread_mutex_lock(&daemon->snap_lock);
        FOREACH_PARTITION(daemon, lane, i, part) {
                if (part->lag < 0)
                        continue;
                sq_metrics_escape_label(topic, sizeof(topic), part->topic);
                snprintf(labels, sizeof(labels),
                         "topic=\"%s\",partition=\"%d\"", topic,
                         (int)part->partition);
                sq_metrics_emit(out, "swarmq_consumer_lag", labels,
                                (double)part->lag);
        }
        pthread_mutex_unlock(&daemon->snap_lock);
}

/* One sample per assigned partition: the last commit's map length or the
 * offsets it marks done. */
static void emit_map_gauge(sq_daemon_t *daemon, void *out, const char *name,
                           bool done) {
        sq_partition_t *part;
        char topic[256], labels[320];
        int lane, i;
        pthread_mutex_lock(&daemon->snap_lock);
        FOREACH_PARTITION(daemon, lane, i, part) {
                if (part->lag < 0)
                        continue; /* not assigned (or no snapshot yet) */
                sq_metrics_escape_label(topic, sizeof(topic), part->topic);
                snprintf(labels, sizeof(labels),
                         "topic=\"%s\",partition=\"%d\"", topic,
                         (int)part->partition);
                sq_metrics_emit(out, name, labels,
                                done ? (double)part->map_done_snap
                                     : (double)part->map_bytes);
        }
        pthread_mutex_unlock(&daemon->snap_lock);
}

static void collect_order_held(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(out, "swarmq_ordering_held", NULL,
                        (double)atomic_load(&daemon->order_held));
}

static void collect_dedup(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(out, "swarmq_dedup_entries", NULL,
                        (double)atomic_load(&daemon->dedup_entries));
}

static void collect_map_bytes(void *opaque, sq_metrics_t *metrics, void *out) {
        (void)metrics;
        emit_map_gauge(opaque, out, "swarmq_offset_map_bytes", false);
}

static void collect_map_done(void *opaque, sq_metrics_t *metrics, void *out) {
        (void)metrics;
        emit_map_gauge(opaque, out, "swarmq_offset_map_done", true);
}

static void register_metrics(sq_daemon_t *daemon) {
        static const char *const tasks_labels[] = {"status", "agent",
                                                   "priority", NULL};
        static const char *const lane_label[]   = {"lane", NULL};
        static const char *const agent_label[]  = {"agent", NULL};
        static const char *const reason_label[] = {"reason", NULL};
        static const char *const result_label[] = {"result", NULL};
        static const char *const prio_label[]   = {"priority", NULL};
        static const char *const info_labels[]  = {"version", "instance",
                                                   "group", NULL};
        sq_metrics_t *metrics                   = daemon->metrics;
        sq_daemon_metrics_t *m                  = &daemon->m;
        /* The unlabelled counters: one family each, and its only child
         * kept for the hot path in *slot. */
        const struct {
                const char *name;
                const char *help;
                sq_metric_t **slot;
        } counters[] = {
            {"swarmq_retries_total",
             "Failed or timed-out attempts re-published to the retry topic",
             &m->retries},
            {"swarmq_retry_waits_total",
             "Times a retry partition paused until its head record was due",
             &m->retry_waits},
            {"swarmq_tasks_stolen_total",
             "Parked tasks an agent with a free slot took over from another "
             "agent (work stealing)",
             &m->stolen},
            {"swarmq_delivery_errors_total",
             "Records the broker did not acknowledge (produced again when they "
             "gate a commit)",
             &m->delivery_errors},
            {"swarmq_tasks_dropped_total",
             "Admitted tasks abandoned before finishing (partition revoked, "
             "instance stopping); their records run again elsewhere",
             &m->dropped},
            {"swarmq_partitions_assigned_total",
             "Partitions assigned to this instance", &m->assigned_partitions},
            {"swarmq_partitions_revoked_total",
             "Partitions revoked from this instance", &m->revoked_partitions},
            {"swarmq_admission_pauses_total",
             "Times intake paused because the admission window reached its "
             "high mark or memory its limit",
             &m->pauses},
            {"swarmq_memory_pauses_total",
             "Times intake paused because resident memory reached 90% of "
             "memory.limit.bytes",
             &m->memory_pauses},
            {"swarmq_completed_skipped_total",
             "Records not run because the previous owner's completed-offset "
             "map says they were finished",
             &m->completed_skipped},
            {"swarmq_duplicates_dropped_total",
             "Deliveries of a task id that already succeeded within "
             "dedup.ttl.ms, not run again",
             &m->duplicates_dropped},
            {"swarmq_offset_map_pauses_total",
             "Times a partition paused because its completed-offset map neared "
             "commit.metadata.max.bytes",
             &m->map_pauses},
        };
        sq_mfamily_t *fam;
        int s, p;

        fam = sq_metrics_family(metrics, "swarmq_build_info",
                                "Build and instance information (always 1)",
                                SQ_METRIC_GAUGE, info_labels, NULL, 0);
        {
                const char *values[] = {SWARMQ_VERSION,
                                        daemon->conf->instance_id,
                                        daemon->conf->group_id};
                sq_metric_set(sq_metrics_child(fam, values), 1);
        }
        fam             = sq_metrics_family(metrics, "swarmq_tasks_total",
                                            "Tasks finished, by status, agent and "
                                                        "priority",
                                            SQ_METRIC_COUNTER, tasks_labels, NULL, 0);
        m->tasks_family = fam;
        for (s = 0; s < SQ_STATUS_CNT; s++)
                for (p = 0; p < SQ_PRIO_CNT; p++) {
                        const char *values[3];
                        values[0] = sq_status_name((sq_status_t)s);
                        values[1] = "none";
                        values[2] = sq_priority_name((sq_priority_t)p);
                        m->tasks_none[s][p] = sq_metrics_child(fam, values);
                }
        fam = sq_metrics_family(metrics, "swarmq_records_received_total",
                                "Task records admitted from Kafka, by lane",
                                SQ_METRIC_COUNTER, lane_label, NULL, 0);
        {
                const char *tasks[] = {"tasks"}, *crit[] = {"critical"};
                const char *retry[]           = {"retry"};
                m->received[SQ_LANE_TASKS]    = sq_metrics_child(fam, tasks);
                m->received[SQ_LANE_CRITICAL] = sq_metrics_child(fam, crit);
                m->received[SQ_LANE_RETRY]    = sq_metrics_child(fam, retry);
        }
        fam = sq_metrics_family(metrics, "swarmq_dead_letters_total",
                                "Records sent to the dead-letter topic, by "
                                "reason",
                                SQ_METRIC_COUNTER, reason_label, NULL, 0);
        {
                const char *decode[]    = {"DECODE_ERROR"};
                const char *attempts[]  = {"MAX_ATTEMPTS"};
                m->dead_lettered_decode = sq_metrics_child(fam, decode);
                m->dead_lettered_failed = sq_metrics_child(fam, attempts);
        }
        for (s = 0; s < (int)SQ_ARRAY_SIZE(counters); s++) {
                fam               = sq_metrics_family(metrics, counters[s].name,
                                                      counters[s].help, SQ_METRIC_COUNTER,
                                                      NULL, NULL, 0);
                *counters[s].slot = sq_metrics_child(fam, NULL);
        }
        fam = sq_metrics_family(
            metrics, "swarmq_selection_seconds",
            "Time to select an agent for a task", SQ_METRIC_HISTOGRAM, NULL,
            sq_metrics_buckets_selection, sq_metrics_buckets_selection_cnt);
        m->selection = sq_metrics_child(fam, NULL);
        fam          = sq_metrics_family(
                     metrics, "swarmq_task_duration_seconds",
                     "Task run time on its agent", SQ_METRIC_HISTOGRAM, agent_label,
                     sq_metrics_buckets_duration, sq_metrics_buckets_duration_cnt);
        m->duration_family = fam;
        register_agent_metrics(daemon, daemon->agents);
        fam = sq_metrics_family(metrics, "swarmq_config_reloads_total",
                                "Configuration reloads (SIGHUP), by result",
                                SQ_METRIC_COUNTER, result_label, NULL, 0);
        {
                const char *ok[] = {"ok"}, *failed[] = {"error"};
                m->reloads_ok    = sq_metrics_child(fam, ok);
                m->reloads_error = sq_metrics_child(fam, failed);
        }
        fam = sq_metrics_family(metrics, "swarmq_commits_total",
                                "Offset commits, by result", SQ_METRIC_COUNTER,
                                result_label, NULL, 0);
        {
                const char *ok[] = {"ok"}, *failed[] = {"error"};
                m->commits_ok     = sq_metrics_child(fam, ok);
                m->commits_failed = sq_metrics_child(fam, failed);
        }
        fam = sq_metrics_family(metrics, "swarmq_memory_limit_bytes",
                                "memory.limit.bytes (0: no limit)",
                                SQ_METRIC_GAUGE, NULL, NULL, 0);
        sq_metric_set(sq_metrics_child(fam, NULL),
                      (double)daemon->conf->memory_limit_bytes);
        fam = sq_metrics_family(
            metrics, "swarmq_schedule_latency_seconds",
            "Time from a task's admission to its start on an agent, by "
            "priority",
            SQ_METRIC_HISTOGRAM, prio_label, sq_metrics_buckets_duration,
            sq_metrics_buckets_duration_cnt);
        for (p = 0; p < SQ_PRIO_CNT; p++) {
                const char *values[] = {sq_priority_name((sq_priority_t)p)};
                m->sched_latency[p]  = sq_metrics_child(fam, values);
        }

        sq_metrics_collector(metrics, "swarmq_tasks_in_flight",
                             "Tasks admitted and not yet finished and "
                             "acknowledged (the admission window), by lane",
                             SQ_METRIC_GAUGE, collect_window, daemon);
        sq_metrics_collector(metrics, "swarmq_lane_depth",
                             "Tasks queued for an executor, by priority lane",
                             SQ_METRIC_GAUGE, collect_lanes, daemon);
        sq_metrics_collector(metrics, "swarmq_admission_paused",
                             "1 while intake is paused by backpressure",
                             SQ_METRIC_GAUGE, collect_paused, daemon);
        for (s = 0; s < (int)SQ_ARRAY_SIZE(agent_gauges); s++) {
                daemon->agent_collect[s].daemon = daemon;
                daemon->agent_collect[s].which  = s;
                sq_metrics_collector(metrics, agent_gauges[s][0],
                                     agent_gauges[s][1], SQ_METRIC_GAUGE,
                                     collect_agents, &daemon->agent_collect[s]);
        }
        sq_metrics_collector(metrics, "swarmq_agent_breaker_transitions_total",
                             "Circuit breaker transitions, by agent and "
                             "the state entered",
                             SQ_METRIC_COUNTER, collect_breaker_transitions,
                             daemon);
        sq_metrics_collector(metrics, "swarmq_flag_rollout_percent",
                             "Feature flag rollouts: 100 on, 0 off, else "
                             "the share of task ids on the flagged path",
                             SQ_METRIC_GAUGE, collect_flags, daemon);
        sq_metrics_collector(metrics, "swarmq_partitions_assigned",
                             "Partitions this instance owns now, by lane",
                             SQ_METRIC_GAUGE, collect_assigned, daemon);
        sq_metrics_collector(metrics, "swarmq_ordering_held",
                             "Tasks held until the task before them on "
                             "their ordering key finishes",
                             SQ_METRIC_GAUGE, collect_order_held, daemon);
        sq_metrics_collector(metrics, "swarmq_dedup_entries",
                             "Succeeded task ids remembered for dedup",
                             SQ_METRIC_GAUGE, collect_dedup, daemon);
        sq_metrics_collector(metrics, "swarmq_offset_map_bytes",
                             "Length of the completed-offset map in the "
                             "last commit, by topic and partition",
                             SQ_METRIC_GAUGE, collect_map_bytes, daemon);
        sq_metrics_collector(metrics, "swarmq_offset_map_done",
                             "Records above the committed offset that the "
                             "last commit's map marks finished, by topic "
                             "and partition",
                             SQ_METRIC_GAUGE, collect_map_done, daemon);
        sq_metrics_collector(metrics, "swarmq_consumer_lag",
                             "Records in the partition after the committable "
                             "offset, by topic and partition",
                             SQ_METRIC_GAUGE, collect_lag, daemon);
        sq_metrics_collector(metrics, "swarmq_memory_paused",
                             "1 while intake is paused by memory.limit.bytes",
                             SQ_METRIC_GAUGE, collect_mem_paused, daemon);
        sq_metrics_register_process(metrics);
        sq_status_register_metrics(daemon);
}

/*
 * Lifecycle
 */

static sq_err_t make_pipe(int fds[2], char *errstr, size_t errstr_size) {
        if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
                sq_errstr_set(errstr, errstr_size, "pipe2() failed: %s",
                              strerror(errno));
                return SQ_ERR_IO;
        }
        return SQ_OK;
}

/* Reads a small text file whole. @returns sq_malloc()ed text, or NULL
 * with @p errstr naming the file and the key it came from. */
static char *read_small_file(const char *path, const char *key, size_t max,
                             char *errstr, size_t errstr_size) {
        FILE *fp   = fopen(path, "re");
        char *text = NULL;
        size_t len;

        if (!fp) {
                sq_errstr_set(errstr, errstr_size, "%s=%s: cannot open: %s",
                              key, path, strerror(errno));
                return NULL;
        }
        text = sq_malloc(max + 1);
        len  = fread(text, 1, max + 1, fp);
        if (ferror(fp) || len > max) {
                sq_errstr_set(errstr, errstr_size, "%s=%s: %s", key, path,
                              ferror(fp) ? strerror(errno) : "file too large");
                sq_free(text);
                text = NULL;
        } else {
                text[len] = '\0';
        }
        fclose(fp);
        return text;
}

/* The admin token from http.admin.token or the first line of
 * http.admin.token.file, trimmed; NULL when none (admin off). */
static sq_err_t admin_token_load(sq_daemon_t *daemon, char *errstr,
                                 size_t errstr_size) {
        const sq_config_t *conf = daemon->conf;
        char *token, *start, *end;

        if (*conf->http_admin_token)
                token = sq_strdup(conf->http_admin_token);
        else if (*conf->http_admin_token_file)
                token = read_small_file(conf->http_admin_token_file,
                                        "http.admin.token.file", 4096, errstr,
                                        errstr_size);
        else
                return SQ_OK;
        if (!token)
                return SQ_ERR_CONFIG;
        start = token;
        while (*start && isspace((unsigned char)*start))
                start++;
        end = start;
        while (*end && *end != '\n' && *end != '\r')
                end++;
        while (end > start && isspace((unsigned char)end[-1]))
                end--;
        if (end == start) {
                sq_errstr_set(errstr, errstr_size,
                              "%s is empty: the admin token must not be",
                              *conf->http_admin_token
                                  ? "http.admin.token"
                                  : conf->http_admin_token_file);
                sq_free(token);
                return SQ_ERR_CONFIG;
        }
        daemon->admin_token = sq_strndup(start, (size_t)(end - start));
        sq_free(token);
        return SQ_OK;
}

/* The HTTP server: routes, TLS, admin token. */
static sq_err_t http_setup(sq_daemon_t *daemon, char *errstr,
                           size_t errstr_size) {
        const sq_config_t *conf = daemon->conf;
        char *cert = NULL, *key = NULL;
        sq_err_t err = SQ_ERR_CONFIG;

        daemon->http =
            sq_http_new(conf->http_bind, conf->http_port, errstr, errstr_size);
        if (!daemon->http)
                goto done;
        sq_http_set_limits(daemon->http, (unsigned)conf->http_connections_max,
                           (unsigned)conf->http_connections_per_ip);
        if (*conf->http_tls_cert) {
                if (!(cert =
                          read_small_file(conf->http_tls_cert, "http.tls.cert",
                                          1 << 20, errstr, errstr_size)) ||
                    !(key = read_small_file(conf->http_tls_key, "http.tls.key",
                                            1 << 20, errstr, errstr_size)))
                        goto done;
                if ((err = sq_http_set_tls(daemon->http, cert, key, errstr,
                                           errstr_size)))
                        goto done;
        }
        if ((err = admin_token_load(daemon, errstr, errstr_size)))
                goto done;
        sq_http_route(daemon->http, "/healthz", "GET", http_healthz, daemon);
        sq_http_route(daemon->http, "/readyz", "GET", http_readyz, daemon);
        sq_http_route(daemon->http, "/metrics", "GET", http_metrics, daemon);
        sq_status_routes(daemon);
        /* Off without a token: the paths are unknown (404). */
        if (daemon->admin_token) {
                sq_http_route(daemon->http, "/admin/pause", "POST", http_admin,
                              daemon);
                sq_http_route(daemon->http, "/admin/resume", "POST", http_admin,
                              daemon);
                sq_http_route(daemon->http, "/admin/drain", "POST", http_admin,
                              daemon);
                if (!*conf->http_tls_cert &&
                    strcmp(conf->http_bind, "127.0.0.1") &&
                    strcmp(conf->http_bind, "::1"))
                        SQ_LOG(SQ_LOG_WARNING, "HTTP",
                               "admin actions are on and http.bind=%s is not "
                               "loopback without TLS: the bearer token "
                               "crosses the network in clear text; set "
                               "http.tls.cert and http.tls.key",
                               conf->http_bind);
        }
        err = SQ_OK;
done:
        if (key) {
                OPENSSL_cleanse(key, strlen(key));
                sq_free(key);
        }
        sq_free(cert);
        return err;
}

sq_daemon_t *sq_daemon_new(sq_config_t *conf, char *errstr,
                           size_t errstr_size) {
        sq_daemon_t *daemon = sq_calloc(1, sizeof(*daemon));
        unsigned char nonce[8];
        int i;

        daemon->conf             = conf;
        daemon->consumer_pipe[0] = daemon->consumer_pipe[1] = -1;
        daemon->critical_pipe[0] = daemon->critical_pipe[1] = -1;
        daemon->producer_pipe[0] = daemon->producer_pipe[1] = -1;
        daemon->started_us                                  = sq_clock_us();
        pthread_mutex_init(&daemon->snap_lock, NULL);
        sq_lag_init(daemon);
        pthread_mutex_init(&daemon->agents_lock, NULL);
        pthread_mutex_init(&daemon->reload_lock, NULL);
        sq_flags_set(&daemon->flags, conf->flag_rollout);
        {
                /* Writer-preferring: a transaction's end is not starved by
                 * a steady stream of produce calls. */
                pthread_rwlockattr_t attr;
                pthread_rwlockattr_init(&attr);
                pthread_rwlockattr_setkind_np(
                    &attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
                pthread_rwlock_init(&daemon->txn_lock, &attr);
                pthread_rwlockattr_destroy(&attr);
        }
        daemon->eos = conf->guarantee == SQ_GUARANTEE_EXACTLY_ONCE;
        atomic_store(&daemon->poll_heartbeat_us, daemon->started_us);
        atomic_store(&daemon->exec_progress_us, daemon->started_us);
        if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce)) {
                int64_t t = sq_clock_us() ^ (int64_t)getpid();
                memcpy(nonce, &t, sizeof(nonce));
        }
        for (i = 0; i < 8; i++)
                snprintf(daemon->event_nonce + 2 * i, 3, "%02x", nonce[i]);

        if ((daemon->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
                sq_errstr_set(errstr, errstr_size, "eventfd() failed: %s",
                              strerror(errno));
                goto fail;
        }
        if (make_pipe(daemon->consumer_pipe, errstr, errstr_size) ||
            make_pipe(daemon->critical_pipe, errstr, errstr_size) ||
            make_pipe(daemon->producer_pipe, errstr, errstr_size))
                goto fail;

        if (conf->ordering != SQ_ORDERING_UNORDERED)
                daemon->order = sq_order_new();
        daemon->map_buf = sq_calloc((size_t)conf->commit_metadata_max + 1, 1);
        if (conf->dedup_max_entries > 0 && conf->dedup_ttl_ms > 0)
                daemon->dedup = sq_ttlmap_new((size_t)conf->dedup_max_entries,
                                              conf->dedup_ttl_ms * 1000);
        if (!(daemon->agents = sq_agents_new(conf, NULL, errstr, errstr_size)))
                goto fail;
        if (sq_runtimes_new(daemon, errstr, errstr_size))
                goto fail;
        daemon->sched =
            sq_sched_new(conf->executor_threads, conf->executor_critical_slots,
                         conf->aging_ms * 1000);
        if (!(daemon->poll_codec = sq_codec_new(errstr, errstr_size)))
                goto fail;
        daemon->metrics = sq_metrics_new();
        daemon->events  = sq_eventring_new((size_t)conf->http_events_buffer);
        sq_eventring_set_notify(daemon->events, sq_status_events_notify,
                                daemon);
        register_metrics(daemon);

        if (conf->embedded_broker) {
                if (sq_kafka_start_embedded(daemon, errstr, errstr_size))
                        goto fail;
        } else {
                const char *bootstrap =
                    sq_config_kafka_get(conf, "bootstrap.servers");
                if (!bootstrap || !*bootstrap) {
                        sq_errstr_set(errstr, errstr_size,
                                      "no Kafka broker configured: pass -b "
                                      "HOST:PORT, set "
                                      "kafka.bootstrap.servers, or run with "
                                      "--embedded-broker");
                        goto fail;
                }
                daemon->bootstrap = sq_strdup(bootstrap);
        }
        if (sq_kafka_new_clients(daemon, errstr, errstr_size))
                goto fail;
        if (!conf->embedded_broker && conf->topics_create) {
                char topics_err[512];
                /* Not fatal: a cluster that forbids CreateTopics may still
                 * have the topics made by its operators later. */
                if (sq_kafka_ensure_topics(daemon, topics_err,
                                           sizeof(topics_err)))
                        SQ_LOG(SQ_LOG_WARNING, "TOPICS",
                               "%s; create them as README.md describes "
                               "(or set topics.create=false to skip this)",
                               topics_err);
        }
        rd_kafka_queue_io_event_enable(daemon->consumer_q,
                                       daemon->consumer_pipe[1], "1", 1);
        rd_kafka_queue_io_event_enable(daemon->critical_q,
                                       daemon->critical_pipe[1], "1", 1);
        rd_kafka_queue_io_event_enable(daemon->producer_q,
                                       daemon->producer_pipe[1], "1", 1);

        if (conf->http_port != 0 && http_setup(daemon, errstr, errstr_size))
                goto fail;
        return daemon;

fail:
        sq_daemon_destroy(daemon);
        return NULL;
}

sq_err_t sq_daemon_start(sq_daemon_t *daemon, char *errstr,
                         size_t errstr_size) {
        sq_err_t err;
        int perr;

        if (daemon->http &&
            (err = sq_http_start(daemon->http, errstr, errstr_size)))
                return err;
        if ((err = sq_runtimes_start(daemon, errstr, errstr_size)))
                return err;
        if ((err = sq_executors_start(daemon, errstr, errstr_size)))
                return err;
        if ((err = sq_lag_start(daemon, errstr, errstr_size)))
                return err;
        perr = pthread_create(&daemon->poll_thread, NULL, poll_main, daemon);
        if (perr) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot start the poll thread: %s",
                              strerror(perr));
                return SQ_ERR_IO;
        }
        daemon->started = true;
        SQ_LOG(SQ_LOG_NOTICE, "START",
               "instance=%s group=%s bootstrap.servers=%s executors=%d "
               "agents=%d http=%d",
               daemon->conf->instance_id, daemon->conf->group_id,
               daemon->bootstrap, daemon->conf->executor_threads,
               sq_agents_count(daemon->agents), sq_daemon_http_port(daemon));
        return SQ_OK;
}

/*
 * Reload (the signal thread)
 */

typedef struct kv_list_s {
        sq_kv_t *kv;
        size_t cnt;
} kv_list_t;

static void kv_collect(void *opaque, const char *key, const char *value) {
        kv_list_t *list = opaque;
        list->kv = sq_realloc(list->kv, (list->cnt + 1) * sizeof(*list->kv));
        list->kv[list->cnt].name  = sq_strdup(key);
        list->kv[list->cnt].value = sq_strdup(value);
        list->cnt++;
}

static void kv_free(kv_list_t *list) {
        size_t i;
        for (i = 0; i < list->cnt; i++) {
                sq_free(list->kv[i].name);
                sq_free(list->kv[i].value);
        }
        sq_free(list->kv);
}

static const char *kv_get(const kv_list_t *list, const char *key) {
        size_t i;
        for (i = 0; i < list->cnt; i++)
                if (!strcmp(list->kv[i].name, key))
                        return list->kv[i].value;
        return NULL;
}

/* Keys a reload applies; every other change waits for a restart. Of an
 * agent's keys: its kind, handler, capabilities, concurrency, breaker;
 * the process settings of exec and pool agents (command, env, limits,
 * pool.*) belong to their runtimes, built at start. */
static bool key_reloadable(const char *key) {
        static const char *const fields[] = {
            ".kind", ".handler", ".capabilities", ".concurrency", ".breaker."};
        const char *field;
        size_t i;

        if (!strncmp(key, "agent.", 6)) {
                field = strchr(key + 6, '.');
                for (i = 0; field && i < SQ_ARRAY_SIZE(fields); i++)
                        if (!strncmp(field, fields[i], strlen(fields[i])) &&
                            (fields[i][strlen(fields[i]) - 1] == '.' ||
                             !field[strlen(fields[i])]))
                                return true;
                return false;
        }
        return !strncmp(key, "flag.", 5) || !strcmp(key, "breaker.when.open") ||
               !strcmp(key, "log.level");
}

/* An exec or pool agent needs the runtime built at start for its name. */
static bool runtimes_cover(const sq_daemon_t *daemon, const sq_config_t *conf,
                           char *errstr, size_t errstr_size) {
        size_t i, j;

        for (i = 0; i < conf->agents_cnt; i++) {
                const sq_agent_conf_t *aconf = &conf->agents[i];
                bool found                   = false;
                if (aconf->kind == SQ_AGENT_BUILTIN)
                        continue;
                for (j = 0; j < daemon->conf->agents_cnt && !found; j++)
                        found =
                            daemon->conf->agents[j].kind == aconf->kind &&
                            !strcmp(daemon->conf->agents[j].name, aconf->name);
                if (!found) {
                        sq_errstr_set(errstr, errstr_size,
                                      "agent.%s.kind=%s: exec and pool agents "
                                      "start their processes at start-up; "
                                      "adding one (or changing an agent's "
                                      "kind to it) needs a restart",
                                      aconf->name,
                                      aconf->kind == SQ_AGENT_EXEC ? "exec"
                                                                   : "pool");
                        return false;
                }
        }
        return true;
}

static void list_key(char *buf, size_t size, const char *key) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", len ? ", " : "", key);
}

/* Lists in @p buf the keys, added, removed or changed between the two
 * dumps, that only a restart applies. */
static void restart_only_changes(const kv_list_t *old, const kv_list_t *new,
                                 char *buf, size_t size) {
        size_t i;
        const char *other;

        buf[0] = '\0';
        for (i = 0; i < new->cnt; i++) {
                const char *key = new->kv[i].name;
                if (key_reloadable(key) || !strcmp(key, "instance.id"))
                        continue; /* instance.id: the default has the pid */
                other = kv_get(old, key);
                if (!other || strcmp(other, new->kv[i].value))
                        list_key(buf, size, key);
        }
        for (i = 0; i < old->cnt; i++) {
                const char *key = old->kv[i].name;
                if (!key_reloadable(key) && !kv_get(new, key))
                        list_key(buf, size, key);
        }
}

/* What now runs, for /status: reloadable keys from @p new, the others
 * from @p old (the configuration the instance started with). */
static void running_conf_set(sq_daemon_t *daemon, const kv_list_t *old,
                             const kv_list_t *new) {
        kv_list_t running = {0}, prev;
        size_t i;

        for (i = 0; i < new->cnt; i++)
                if (key_reloadable(new->kv[i].name))
                        kv_collect(&running, new->kv[i].name, new->kv[i].value);
        for (i = 0; i < old->cnt; i++)
                if (!key_reloadable(old->kv[i].name))
                        kv_collect(&running, old->kv[i].name, old->kv[i].value);
        pthread_mutex_lock(&daemon->snap_lock);
        prev.kv                  = daemon->running_conf;
        prev.cnt                 = daemon->running_conf_cnt;
        daemon->running_conf     = running.kv;
        daemon->running_conf_cnt = running.cnt;
        pthread_mutex_unlock(&daemon->snap_lock);
        kv_free(&prev);
}

void sq_daemon_reload_rejected(sq_daemon_t *daemon, const char *why) {
        SQ_LOG(SQ_LOG_ERR, "RELOAD",
               "configuration reload rejected, keeping the running "
               "configuration: %s",
               why);
        sq_metric_add(daemon->m.reloads_error, 1);
}

sq_err_t sq_daemon_reload(sq_daemon_t *daemon, sq_config_t *conf, char *errstr,
                          size_t errstr_size) {
        kv_list_t old_kv = {0}, new_kv = {0};
        sq_agents_out_t out = {0};
        sq_agents_t *agents, *old;
        char ignored[1024], flagbuf[16], flags[256];
        sq_err_t err = SQ_ERR_CONFIG;
        int f;

        pthread_mutex_lock(&daemon->reload_lock);
        pthread_mutex_lock(&daemon->agents_lock);
        old = sq_agents_keep(daemon->agents);
        pthread_mutex_unlock(&daemon->agents_lock);

        agents = runtimes_cover(daemon, conf, errstr, errstr_size)
                     ? sq_agents_new(conf, old, errstr, errstr_size)
                     : NULL;
        if (!agents) {
                sq_daemon_reload_rejected(daemon, errstr);
                sq_agents_release_ref(old);
                goto done;
        }
        register_agent_metrics(daemon, agents);
        sq_flags_set(&daemon->flags, conf->flag_rollout);
        pthread_mutex_lock(&daemon->agents_lock);
        daemon->agents = agents;
        pthread_mutex_unlock(&daemon->agents_lock);
        /* The daemon's reference to the old registry goes; running jobs
         * keep theirs. Parked jobs are selected again on the new one. */
        sq_agents_retire(old, &out);
        sq_daemon_agents_out(daemon, NULL, &out);
        sq_agents_release_ref(old); /* ours */
        sq_agents_release_ref(old); /* the daemon's */
        sq_log_set_level((sq_log_level_t)conf->log_level);

        sq_config_dump(daemon->conf, kv_collect, &old_kv);
        sq_config_dump(conf, kv_collect, &new_kv);
        restart_only_changes(&old_kv, &new_kv, ignored, sizeof(ignored));
        running_conf_set(daemon, &old_kv, &new_kv);
        if (ignored[0])
                SQ_LOG(SQ_LOG_WARNING, "RELOAD",
                       "changed keys ignored until restart: %s", ignored);
        flags[0] = '\0';
        for (f = 0; f < SQ_FLAG_CNT; f++) {
                size_t len = strlen(flags);
                snprintf(flags + len, sizeof(flags) - len, "%sflag.%s=%s",
                         f ? " " : "", sq_flag_name((sq_flag_t)f),
                         sq_flag_format(conf->flag_rollout[f], flagbuf,
                                        sizeof(flagbuf)));
        }
        SQ_LOG(SQ_LOG_NOTICE, "RELOAD", "configuration reloaded: agents=%d %s",
               sq_agents_count(agents), flags);
        sq_metric_add(daemon->m.reloads_ok, 1);
        err = SQ_OK;
done:
        pthread_mutex_unlock(&daemon->reload_lock);
        kv_free(&old_kv);
        kv_free(&new_kv);
        sq_config_destroy(conf);
        return err;
}

const char *sq_daemon_bootstrap_servers(const sq_daemon_t *daemon) {
        return daemon->bootstrap;
}

int sq_daemon_http_port(const sq_daemon_t *daemon) {
        return daemon->http ? sq_http_port(daemon->http) : 0;
}

void sq_daemon_stop(sq_daemon_t *daemon) {
        if (!atomic_exchange(&daemon->stop_requested, true))
                sq_daemon_wake(daemon);
}

sq_err_t sq_daemon_wait(sq_daemon_t *daemon) {
        if (daemon->started) {
                pthread_join(daemon->poll_thread, NULL);
                daemon->started = false;
                SQ_LOG(SQ_LOG_NOTICE, "STOP", "instance stopped");
        }
        return daemon->fatal;
}

void sq_daemon_destroy(sq_daemon_t *daemon) {
        sq_partition_t *part;
        int lane, i;

        if (!daemon)
                return;
        if (daemon->started) {
                sq_daemon_stop(daemon);
                sq_daemon_wait(daemon);
        }
        sq_http_destroy(daemon->http);
        daemon->http = NULL; /* the ring's notify callback checks it */
        if (daemon->executors) {
                /* Started executors but never the poll thread. */
                atomic_store(&daemon->order_closed, true);
                atomic_store(&daemon->cancel, true);
                sq_sched_shutdown(daemon->sched);
                sq_executors_join(daemon);
        }
        sq_runtimes_destroy(daemon);
        sq_lag_stop(daemon); /* started, but never the poll thread */
        sq_kafka_destroy_clients(daemon);
        if (daemon->order) {
                /* Jobs still held behind a key whose running job was never
                 * freed (none after a clean stop). */
                sq_order_item_t *item = sq_order_take_held(daemon->order);
                while (item) {
                        sq_job_t *job = (sq_job_t *)((char *)item -
                                                     offsetof(sq_job_t, order));
                        item          = item->next;
                        job->ordered  = false;
                        job_free(daemon, job);
                }
                sq_order_destroy(daemon->order);
        }
        FOREACH_PARTITION(daemon, lane, i, part) {
                sq_offsets_destroy(part->offsets);
                sq_free(part);
        }
        for (lane = 0; lane < SQ_LANE_CNT; lane++)
                sq_free(daemon->parts[lane]);
        sq_codec_destroy(daemon->poll_codec);
        sq_free(daemon->map_buf);
        sq_ttlmap_destroy(daemon->dedup);
        sq_sched_destroy(daemon->sched);
        sq_agents_release_ref(daemon->agents);
        sq_metrics_destroy(daemon->metrics);
        sq_runtimes_free_collectors(daemon);
        sq_eventring_destroy(daemon->events);
        if (daemon->admin_token) {
                OPENSSL_cleanse(daemon->admin_token,
                                strlen(daemon->admin_token));
                sq_free(daemon->admin_token);
        }
        for (i = 0; i < 2; i++) {
                if (daemon->consumer_pipe[i] >= 0)
                        close(daemon->consumer_pipe[i]);
                if (daemon->critical_pipe[i] >= 0)
                        close(daemon->critical_pipe[i]);
                if (daemon->producer_pipe[i] >= 0)
                        close(daemon->producer_pipe[i]);
        }
        if (daemon->wake_fd >= 0)
                close(daemon->wake_fd);
        {
                kv_list_t running = {daemon->running_conf,
                                     daemon->running_conf_cnt};
                kv_free(&running);
        }
        pthread_mutex_destroy(&daemon->snap_lock);
        sq_lag_term(daemon);
        pthread_mutex_destroy(&daemon->agents_lock);
        pthread_mutex_destroy(&daemon->reload_lock);
        pthread_rwlock_destroy(&daemon->txn_lock);
        sq_free(daemon->bootstrap);
        sq_config_destroy(daemon->conf);
        sq_free(daemon);
}
