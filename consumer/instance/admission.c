/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admission.c: what the poll thread lets in: admitting a record as a job
 * (decode, dedup, retry headers, lane priority, the ordering gate), the
 * retry lane's wait for a head record that is not due, and backpressure
 * (pausing partitions on the admission window, the completed-offset map's
 * budget, memory.limit.bytes, an admin pause, the stop request).
 *
 * DESIGN
 *   Thread: the poll thread only, which is also the only thread that
 *   pauses or resumes partitions; the state here (lane_paused, mem_paused,
 *   the partitions' paused, map_paused and retry_waiting) is written by it
 *   alone. Other threads read the atomic copies (paused_any,
 *   mem_paused_flag) and the window counters.
 *
 *   Admission window: every admitted record is a job counted in
 *   window[lane] until it is freed (acknowledged or dropped). At the high
 *   mark the poll thread first holds the consumer queue: it takes no
 *   record from it, which stays in librdkafka's prefetch, and takes them
 *   again the moment acknowledgements bring the window under the mark.
 *   Only a hold that lasts ADMISSION_HOLD_US turns into a pause of the
 *   lane's partitions (the consumer keeps polling, so the group never
 *   evicts the instance on long tasks), resumed at the low mark. A pause
 *   costs what a hold does not: librdkafka drops the records it
 *   prefetched for a paused partition and fetches them again after the
 *   resume, which leaves the executors idle meanwhile. Under a backlog of
 *   short tasks the window is full whenever acknowledgements lag, and
 *   pausing there fetched every record 3.5 times over and halved the
 *   throughput (docs/benchmarks.md, 2026-12-07T11). The hold delays what
 *   else comes through that queue (rebalances, commit results, the retry
 *   lane's records) by at most ADMISSION_HOLD_US. The critical lane has
 *   its own queue and its own mark: it is never held or paused because
 *   the ordinary lane is full. The retry lane has the ordinary lane's
 *   marks.
 *
 *   One function, sync_pauses(), brings every assigned partition's pause
 *   state to what its lane, its map, its retry wait and the stop request
 *   ask for; everything else here only changes those inputs and calls it.
 *
 *   A record that is not admitted (not ours any more, a retry not due yet)
 *   is not committed: the next owner, or this instance after the wait,
 *   reads it again.
 */
#include "event_types.h"
#include "admission_int.h"
#include "allocator.h"
#include "daemon_int.h"
#include "delay.h"
#include "kafka_conf.h"
#include "log.h"
#include "poll_int.h"

#include <string.h>

/* How long the consumer queue is held at a lane's high mark before the
 * lane's partitions are paused (see DESIGN): long enough for the
 * acknowledgements of a backlog's results to free room, short enough that
 * a rebalance or the retry lane barely notices. */
#define ADMISSION_HOLD_US 500000

void sq_admission_init(sq_daemon_t *daemon) {
        const sq_config_t *conf = daemon->conf;
        if (conf->dedup_max_entries > 0 && conf->dedup_ttl_ms > 0)
                daemon->admission.dedup = sq_ttlmap_new(
                    (size_t)conf->dedup_max_entries, conf->dedup_ttl_ms * 1000);
}

void sq_admission_term(sq_daemon_t *daemon) {
        sq_ttlmap_destroy(daemon->admission.dedup);
        daemon->admission.dedup = NULL;
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

/*
 * Admission (poll thread)
 */

/* A partition's head record must wait (a retry not due, a writer schema
 * the registry did not serve): pause its partition, then seek it back to
 * that record (pausing sets the next fetch to the record after the last
 * one consumed; the seek, queued behind the pause on the same partition,
 * sets it back), and wake when it is due. Nothing is admitted, so nothing
 * is committed past it: a crash while it waits loses nothing. */
static void hold_at(sq_daemon_t *daemon, sq_partition_t *part, int64_t offset,
                    int64_t due_ms) {
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

static void retry_wait(sq_daemon_t *daemon, sq_partition_t *part,
                       int64_t offset, int64_t due_ms) {
        sq_metric_add(daemon->m.retry_waits, 1);
        hold_at(daemon, part, offset, due_ms);
}

static void sync_pauses(sq_daemon_t *daemon);

void sq_admission_sync_pauses(sq_daemon_t *daemon) {
        sync_pauses(daemon);
}

/* Resumes the held partitions (a retry head, a schema fetch) whose head is
 * due. @returns the earliest due time still waited for (wall clock ms), or
 * INT64_MAX. */
int64_t sq_admission_retry_due(sq_daemon_t *daemon) {
        int64_t now = sq_wallclock_ms(), next = INT64_MAX;
        bool changed = false;
        sq_partition_t *part;
        int lane, i;

        SQ_FOREACH_PARTITION(daemon, lane, i, part) {
                if (!part->assigned || !part->retry_waiting)
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

/* The partition a consumed record may be admitted from, or NULL when it
 * is not admitted: an error or end of partition, a topic not ours, a
 * partition not owned (or revoking, or the instance stopping), a retry
 * record not due yet (its partition starts waiting) or behind one.
 * *hopp says the record is a retry-lane record that held its partition
 * for delay.hold.max.ms and is still not due: admitted only to be moved
 * to the end of the topic (sq_emit_delay()). */
static sq_partition_t *admissible(sq_daemon_t *daemon,
                                  const rd_kafka_message_t *rkm,
                                  const char *topic, sq_lane_t *lanep,
                                  bool *hopp) {
        sq_partition_t *part;
        sq_lane_t lane;

        if (rkm->err) {
                char denied[512];
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        return NULL;
                /* A missing ACL: which one, since librdkafka's string
                 * names neither the operation nor (for a group) the
                 * resource. The consumer keeps trying: granting it later
                 * is enough. */
                if (sq_kafka_acl_denied(
                        rkm->err, "Read", rkm->rkt ? topic : NULL,
                        daemon->conf->group_id, NULL, denied, sizeof(denied))) {
                        SQ_LOG(SQ_LOG_ERR, "POLL",
                               "consumer: %s; the principal needs it to "
                               "consume in group %s",
                               denied, daemon->conf->group_id);
                        return NULL;
                }
                SQ_LOG(SQ_LOG_WARNING, "POLL", "consumer error: %s%s%s",
                       rd_kafka_message_errstr(rkm), rkm->rkt ? " topic=" : "",
                       rkm->rkt ? topic : "");
                return NULL;
        }
        if (!sq_partitions_lane(daemon, topic, &lane)) {
                SQ_LOG(SQ_LOG_WARNING, "POLL",
                       "record from unexpected topic=%s ignored", topic);
                return NULL;
        }
        part = sq_partitions_get(daemon, lane, rkm->partition);
        if (!part->assigned || atomic_load(&part->revoking) ||
            atomic_load(&daemon->stop_requested))
                return NULL; /* not ours any more: not admitted, not
                              * committed */
        *hopp = false;
        if (part->retry_waiting)
                return NULL; /* behind a head that is not due: fetched
                              * again after the seek */
        if (lane == SQ_LANE_RETRY) {
                rd_kafka_headers_t *hdrs = NULL;
                int64_t due, now = sq_wallclock_ms(), wake;
                if (rd_kafka_message_headers(rkm, &hdrs) ==
                        RD_KAFKA_RESP_ERR_NO_ERROR &&
                    sq_retry_header_int(hdrs, SQ_HDR_BACKOFF_TS, 0, INT64_MAX,
                                        &due) &&
                    due > now) {
                        /* It holds the partition until it is due, or for
                         * delay.hold.max.ms after it was written; then,
                         * still not due, it moves to the end so that a
                         * long delay does not hold up the records behind
                         * it (one rewrite per period). */
                        if (sq_delay_decide(
                                due, rd_kafka_message_timestamp(rkm, NULL), now,
                                daemon->conf->delay_hold_max_ms,
                                &wake) == SQ_DELAY_WAIT) {
                                retry_wait(daemon, part, rkm->offset, wake);
                                return NULL;
                        }
                        *hopp = true;
                }
        }
        *lanep = lane;
        return part;
}

void sq_admission_admit(sq_daemon_t *daemon, rd_kafka_message_t *rkm) {
        /* An error event may have no topic (a group authorization error:
         * rd_kafka_topic_name(NULL) would crash). */
        const char *topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "";
        sq_partition_t *part;
        sq_job_t *job;
        sq_lane_t lane;
        char errstr[512];
        const char *by;
        bool done;
        sq_err_t err;
        bool demoted, hop;

        if (!(part = admissible(daemon, rkm, topic, &lane, &hop)))
                return;
        /* Registry mode: a writer schema the registry did not serve holds
         * the partition at this record (a transient failure is not the
         * record's fault: it is not dead-lettered). While a back-off runs,
         * a record that would ask the registry waits without asking. */
        if (sq_schemas_fetch_wait_ms(daemon) > 0 &&
            sq_codec_needs_registry(daemon->poll.codec, rkm->payload,
                                    rkm->len)) {
                hold_at(daemon, part, rkm->offset,
                        sq_wallclock_ms() + sq_schemas_fetch_wait_ms(daemon));
                return;
        }
        if (sq_codec_prepare(daemon->poll.codec, rkm->payload, rkm->len, errstr,
                             sizeof(errstr)) == SQ_ERR_UNAVAILABLE) {
                int64_t wait_ms = sq_schemas_fetch_failed(daemon, errstr);
                SQ_LOG(SQ_LOG_WARNING, "SCHEMA",
                       "holding topic=%s partition=%d at offset=%lld for "
                       "%lld ms: %s",
                       topic, (int)rkm->partition, (long long)rkm->offset,
                       (long long)wait_ms, errstr);
                hold_at(daemon, part, rkm->offset, sq_wallclock_ms() + wait_ms);
                return;
        }
        sq_schemas_fetch_ok(daemon);
        if (sq_offsets_admit(part->offsets, rkm->offset, &done) != SQ_OK)
                return; /* re-delivery after a seek/resume: already held */
        if (part->first_admitted < 0)
                part->first_admitted = rkm->offset;
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

        /* The job and its copy of the record in one allocation. */
        job              = sq_calloc(1, sizeof(*job) + sq_record_size(rkm));
        job->part        = part;
        job->part_gen    = atomic_load(&part->gen);
        job->offset      = rkm->offset;
        job->received_us = sq_clock_us();
        job->rec         = sq_record_init(job + 1, rkm);
        atomic_fetch_add(&part->outstanding, 1);
        atomic_fetch_add(&daemon->partitions.window[lane], 1);
        sq_metric_add(daemon->m.received[lane], 1);

        err = sq_codec_decode_task(daemon->poll.codec, rkm->payload, rkm->len,
                                   &job->task, errstr, sizeof(errstr));
        if (err != SQ_OK) {
                SQ_LOG(SQ_LOG_WARNING, "DECODE",
                       "undecodable record sent to the dead-letter topic "
                       "topic=%s partition=%d offset=%lld: %s",
                       topic, (int)rkm->partition, (long long)rkm->offset,
                       errstr);
                sq_metric_add(daemon->m.dead_letters[SQ_DL_DECODE_ERROR], 1);
                sq_emit_undecodable(daemon, rkm, job, errstr);
                return;
        }
        if (daemon->admission.dedup &&
            sq_ttlmap_contains(daemon->admission.dedup, job->task->id,
                               job->received_us)) {
                /* Succeeded here within dedup.ttl.ms: not run again. The
                 * event is the record's acknowledgement, as a result
                 * would be. */
                SQ_LOG(SQ_LOG_INFO, "DEDUP",
                       "dropping duplicate task_id=%s topic=%s partition=%d "
                       "offset=%lld: it succeeded within dedup.ttl.ms",
                       job->task->id, topic, (int)rkm->partition,
                       (long long)rkm->offset);
                sq_metric_add(daemon->m.duplicates_dropped, 1);
                if (!sq_emit_event_acks(daemon)) {
                        /* events.publish=none: no record to wait for. */
                        sq_emit_event(daemon, daemon->poll.codec,
                                      SQ_EVENT_DUPLICATE_DROPPED, job->task,
                                      NULL, "this task id already succeeded",
                                      NULL);
                        sq_job_acked(daemon, job);
                        return;
                }
                atomic_store(&job->pending_acks, 1);
                sq_emit_event(daemon, daemon->poll.codec,
                              SQ_EVENT_DUPLICATE_DROPPED, job->task, NULL,
                              "this task id already succeeded", job);
                return;
        }
        if ((by = sq_control_cancelled(daemon, job->task))) {
                /* Queued in Kafka, waiting in the retry lane or arriving
                 * after its cancel: it ends here without running. */
                char why[64];
                snprintf(why, sizeof(why), "cancelled %s %s", by,
                         lane == SQ_LANE_RETRY ? "while it waited"
                                               : "before it started");
                sq_emit_cancelled(daemon, daemon->poll.codec, job, why);
                return;
        }
        if (hop) {
                sq_emit_delay(daemon, daemon->poll.codec, job, true);
                return;
        }
        /* (Most tasks have no not_before: no clock read for them.) */
        if (lane != SQ_LANE_RETRY && job->task->not_before &&
            job->task->not_before > sq_wallclock_ms()) {
                /* Read before its time: it waits on the retry lane (the
                 * header's due time is its not_before), where a record
                 * runs only once due; never here, holding memory. */
                sq_emit_delay(daemon, daemon->poll.codec, job, false);
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
        demoted =
            lane != SQ_LANE_CRITICAL && job->task->priority == SQ_PRIO_CRITICAL;
        if (lane == SQ_LANE_CRITICAL) {
                job->task->priority = SQ_PRIO_CRITICAL;
        } else if (demoted) {
                /* Never silently: counted, logged (the first time and
                 * every 1000th after), and said in its received event. */
                uint64_t n =
                    (uint64_t)sq_metric_value(daemon->m.priority_demoted);
                sq_metric_add(daemon->m.priority_demoted, 1);
                if (n % 1000 == 0)
                        SQ_LOG(SQ_LOG_WARNING, "ADMIT",
                               "task_id=%s topic=%s has priority CRITICAL: "
                               "run as HIGH (%llu so far); write critical "
                               "tasks to %s, whose reserved executor slots "
                               "they are",
                               job->task->id, topic, (unsigned long long)n + 1,
                               daemon->conf->topic_critical);
                job->task->priority = SQ_PRIO_HIGH;
        }
        job->item.priority = job->task->priority;

        sq_emit_event(daemon, daemon->poll.codec, SQ_EVENT_RECEIVED, job->task,
                      NULL,
                      demoted ? "priority CRITICAL run as HIGH: critical tasks "
                                "go to topic.critical"
                              : NULL,
                      NULL);
        if (daemon->partitions.order &&
            job_order_key(daemon, lane, rkm, job->task, &job->order.key)) {
                job->ordered = true;
                if (!sq_order_admit(daemon->partitions.order, &job->order)) {
                        /* Started when the job before it on its key is
                         * freed (job_free). */
                        atomic_fetch_add(&daemon->partitions.order_held, 1);
                        return;
                }
        }
        job->item.next = NULL;
        if (!daemon->admission.batch_head)
                daemon->admission.batch_tail = &daemon->admission.batch_head;
        *daemon->admission.batch_tail = &job->item;
        daemon->admission.batch_tail  = &job->item.next;
}

void sq_admission_flush(sq_daemon_t *daemon) {
        sq_sched_item_t *first = daemon->admission.batch_head;

        daemon->admission.batch_head = NULL;
        daemon->admission.batch_tail = &daemon->admission.batch_head;
        sq_sched_push_list(daemon->sched, first);
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

        SQ_FOREACH_PARTITION(daemon, lane, i, part) {
                bool want = daemon->admission.lane_paused[lane] ||
                            part->map_paused || part->retry_waiting || stopping;
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

void sq_admission_pause_lane(sq_daemon_t *daemon, sq_lane_t lane, bool pause) {
        if (pause && !daemon->admission.lane_paused[lane] &&
            !atomic_load(&daemon->admin.paused))
                sq_metric_add(daemon->m.pauses, 1);
        daemon->admission.lane_paused[lane] = pause;
        atomic_store(&daemon->admission.paused_any,
                     daemon->admission.lane_paused[0] ||
                         daemon->admission.lane_paused[1] ||
                         daemon->admission.lane_paused[2]);
        sync_pauses(daemon);
}

/* A partition whose completed-offset map nears the commit metadata budget
 * stops admitting (paused) until its head-of-line records finish and the
 * map shrinks: the map is never dropped for lack of room. Exact sizes are
 * computed only when the O(1) bound is over the mark. */
void sq_admission_check_map_budget(sq_daemon_t *daemon) {
        size_t budget     = (size_t)daemon->conf->commit_metadata_max;
        size_t pause_mark = budget / 4 * 3, resume_mark = budget / 2;
        sq_partition_t *part;
        bool changed = false;
        int lane, i;

        if (budget == 0)
                return;
        SQ_FOREACH_PARTITION(daemon, lane, i, part) {
                size_t full = 0;
                if (!part->assigned || !part->map_dirty)
                        continue;
                part->map_dirty = false;
                if (!part->map_paused &&
                    sq_offsets_map_bound(part->offsets) <= pause_mark)
                        continue;
                sq_offsets_map_encode(part->offsets, budget,
                                      daemon->commit.map_buf, &full, NULL);
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
 * task memory is handed back to the system (sq_allocator_release():
 * glibc's malloc_trim, which walks the heaps, or jemalloc's purge; at most
 * every MEM_PAUSED_CHECK_US) so RSS can fall. */
#define MEM_CHECK_US        10000
#define MEM_PAUSED_CHECK_US 100000

static void check_memory(sq_daemon_t *daemon) {
        uint64_t limit    = (uint64_t)daemon->conf->memory_limit_bytes;
        uint64_t pause_at = limit / 10 * 9, resume_at = limit / 10 * 8;
        long window = atomic_load(&daemon->partitions.window[SQ_LANE_TASKS]);
        int64_t now;
        uint64_t rss;

        if (!limit || atomic_load(&daemon->stop_requested))
                return;
        now = sq_clock_us();
        if (now < daemon->admission.mem_next_check_us &&
            !(daemon->admission.mem_paused && window == 0))
                return;
        daemon->admission.mem_next_check_us = now + MEM_CHECK_US;
        if (sq_metrics_read_rss(&rss) != SQ_OK)
                return;
        if (!daemon->admission.mem_paused && rss >= pause_at) {
                SQ_LOG(SQ_LOG_NOTICE, "MEMORY",
                       "pausing intake: rss=%llu bytes is over 90%% of "
                       "memory.limit.bytes=%llu (window=%ld)",
                       (unsigned long long)rss, (unsigned long long)limit,
                       window);
                daemon->admission.mem_paused = true;
                sq_metric_add(daemon->m.memory_pauses, 1);
        } else if (daemon->admission.mem_paused) {
                daemon->admission.mem_next_check_us = now + MEM_PAUSED_CHECK_US;
                if (rss >= resume_at) {
                        sq_allocator_release();
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
                daemon->admission.mem_paused = false;
        }
        atomic_store(&daemon->admission.mem_paused_flag,
                     daemon->admission.mem_paused);
}

void sq_admission_backpressure(sq_daemon_t *daemon) {
        static const char *lane_names[] = {"tasks", "critical", "retry"};
        bool hold                       = false;
        int64_t now                     = 0;
        int lane;

        check_memory(daemon);
        for (lane = 0; lane < SQ_LANE_CNT; lane++) {
                long window = atomic_load(&daemon->partitions.window[lane]);
                bool mem =
                    lane == SQ_LANE_TASKS && daemon->admission.mem_paused;
                /* The retry lane has the ordinary lane's marks. */
                long high = lane != SQ_LANE_CRITICAL
                                ? daemon->conf->admission_high
                                : daemon->conf->critical_high;
                long low  = lane != SQ_LANE_CRITICAL
                                ? daemon->conf->admission_low
                                : daemon->conf->critical_high / 2;
                if (atomic_load(&daemon->stop_requested))
                        continue; /* stop() paused everything for good */
                if (atomic_load(&daemon->admin.paused)) {
                        /* POST /admin/pause or /admin/drain */
                        if (!daemon->admission.lane_paused[lane])
                                sq_admission_pause_lane(daemon, (sq_lane_t)lane,
                                                        true);
                        continue;
                }
                if (!daemon->admission.lane_paused[lane] &&
                    (window >= high || mem)) {
                        /* A full window of the consumer queue's lanes:
                         * hold first, pause once the hold is due. */
                        if (!mem && lane != SQ_LANE_CRITICAL) {
                                if (!now)
                                        now = sq_clock_us();
                                if (!daemon->admission.hold_since_us) {
                                        daemon->admission.hold_since_us = now;
                                        sq_metric_add(daemon->m.holds, 1);
                                }
                                if (now - daemon->admission.hold_since_us <
                                    ADMISSION_HOLD_US) {
                                        hold = true;
                                        continue;
                                }
                        }
                        SQ_LOG(SQ_LOG_DEBUG, "WINDOW",
                               "pausing lane=%s window=%ld high=%ld",
                               lane_names[lane], window, high);
                        sq_admission_pause_lane(daemon, (sq_lane_t)lane, true);
                } else if (daemon->admission.lane_paused[lane] &&
                           window <= low && !mem) {
                        SQ_LOG(SQ_LOG_DEBUG, "WINDOW",
                               "resuming lane=%s window=%ld low=%ld",
                               lane_names[lane], window, low);
                        sq_admission_pause_lane(daemon, (sq_lane_t)lane, false);
                }
        }
        if (!hold)
                daemon->admission.hold_since_us = 0;
}

bool sq_admission_holding(sq_daemon_t *daemon) {
        sq_admission_t *adm = &daemon->admission;
        long high           = daemon->conf->admission_high;
        bool full =
            (!adm->lane_paused[SQ_LANE_TASKS] &&
             atomic_load(&daemon->partitions.window[SQ_LANE_TASKS]) >= high) ||
            (!adm->lane_paused[SQ_LANE_RETRY] &&
             atomic_load(&daemon->partitions.window[SQ_LANE_RETRY]) >= high);
        /* Room again: the hold is over, and the queue is served now (its
         * rebalances and commit results with it), so the next hold gets
         * its whole ADMISSION_HOLD_US. */
        if (!full)
                adm->hold_since_us = 0;
        return full;
}

int64_t sq_admission_hold_due(sq_daemon_t *daemon) {
        return daemon->admission.hold_since_us
                   ? daemon->admission.hold_since_us + ADMISSION_HOLD_US
                   : INT64_MAX;
}

/* True when a lane not yet paused has reached its high mark. */
bool sq_admission_at_high_mark(sq_daemon_t *daemon) {
        return (!daemon->admission.lane_paused[SQ_LANE_TASKS] &&
                atomic_load(&daemon->partitions.window[SQ_LANE_TASKS]) >=
                    daemon->conf->admission_high) ||
               (!daemon->admission.lane_paused[SQ_LANE_CRITICAL] &&
                atomic_load(&daemon->partitions.window[SQ_LANE_CRITICAL]) >=
                    daemon->conf->critical_high);
}
