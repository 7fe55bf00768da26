/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rebalance.c: partitions coming and going: the rebalance callback,
 * draining and committing revoked partitions, wiring newly assigned ones
 * (the critical lane's own queue, their pause state) and inheriting the
 * completed-offset maps their previous owner committed.
 *
 * DESIGN
 *   Thread: the poll thread, from consumer poll (librdkafka serves the
 *   rebalance callback there). Admission runs on the same thread after the
 *   callback returns, so a partition's tracker holds its inherited map
 *   before its first record is admitted.
 *
 *   Revocation: nothing more is admitted from the partitions (revoking);
 *   their queued and running jobs get until shutdown.drain.timeout.ms to
 *   finish and be acknowledged (delivery reports are served meanwhile),
 *   the completed prefix is committed synchronously, then the partitions
 *   are given up (jobs still left are dropped when they finish: their
 *   generation changed, and the new owner runs them again). A lost
 *   assignment (the member's session ended) is given up without waiting
 *   or committing: the coordinator would refuse the commit. The stop's
 *   revocation (from the consumer's close) waits and commits until the
 *   close deadline at the latest (poll.c).
 *
 *   Assignment: librdkafka keeps a partition's pause flag across unassign
 *   and assign, so every newly assigned partition is paused or resumed
 *   explicitly, by the lane's state.
 */
#include "admission_int.h"
#include "commit_int.h"
#include "daemon_int.h"
#include "kafka_conf.h"
#include "log.h"
#include "poll_int.h"
#include "rebalance_int.h"

#include <string.h>

/* The partition of @p list's element @p i, or NULL when its topic is
 * not one of the instance's lanes. */
static sq_partition_t *
list_partition(sq_daemon_t *daemon, const rd_kafka_topic_partition_list_t *list,
               int i) {
        sq_lane_t lane;
        if (!sq_partitions_lane(daemon, list->elems[i].topic, &lane))
                return NULL;
        return sq_partitions_get(daemon, lane, list->elems[i].partition);
}

/* Forwards a critical partition's queue to @p to (borrowed), or with NULL
 * forwards it nowhere (a revoked partition: its fetcher stops). */
static void forward_queue(sq_daemon_t *daemon, const sq_partition_t *part,
                          rd_kafka_queue_t *to) {
        rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(
            daemon->consumer, part->topic, part->partition);
        if (pq) {
                rd_kafka_queue_forward(pq, to);
                rd_kafka_queue_destroy(pq);
        }
}

/* Waits until every job of the revoked partitions is freed (or the drain
 * deadline passes), serving delivery reports meanwhile. While the
 * instance stops (the consumer's close revokes everything), the stop's
 * drain is over: only delivery reports are left to wait for, until the
 * close deadline at the latest, never a second drain timeout. */
static void drain_partitions(sq_daemon_t *daemon,
                             const rd_kafka_topic_partition_list_t *list) {
        int64_t deadline =
            sq_clock_us() + daemon->conf->drain_timeout_ms * 1000;
        int i;

        if (daemon->poll.close_deadline_us)
                deadline = SQ_MIN(deadline, daemon->poll.close_deadline_us);

        for (;;) {
                long outstanding = 0;
                for (i = 0; i < list->cnt; i++) {
                        sq_partition_t *part = list_partition(daemon, list, i);
                        if (part)
                                outstanding += atomic_load(&part->outstanding);
                }
                if (!outstanding)
                        return;
                if (daemon->commit.txn_dead)
                        /* exactly_once after a failed transaction: what
                         * they finish cannot be committed any more (and
                         * records that were refused never report). */
                        return;
                if (sq_clock_us() >= deadline) {
                        SQ_LOG(SQ_LOG_WARNING, "REBALANCE",
                               "%s deadline passed with %ld jobs of the "
                               "revoked partitions unfinished; their "
                               "records will run again on the new owner",
                               daemon->poll.close_deadline_us ? "close"
                                                              : "drain",
                               outstanding);
                        return;
                }
                /* Blocks until a delivery report arrives (or 100 ms). */
                sq_poll_serve_reports(daemon, 100);
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
        part->base_offset    = -1;
        part->first_admitted = -1;
        sq_free(part->base_map);
        part->base_map     = NULL;
        part->base_map_len = 0;
        sq_offsets_reset(part->offsets);
}

void sq_rebalance_set_base(sq_partition_t *part, int64_t offset,
                           const void *metadata, size_t metadata_size) {
        part->base_offset = offset;
        sq_free(part->base_map);
        part->base_map     = NULL;
        part->base_map_len = 0;
        if (metadata && metadata_size > 0) {
                part->base_map     = sq_memdup(metadata, metadata_size);
                part->base_map_len = metadata_size;
        }
}

/* The tracker of a rewound partition starts from its base: the records
 * its base map marks done were committed with their results, and must
 * not run again. */
static void rewind_tracker(sq_daemon_t *daemon, sq_partition_t *part) {
        sq_offsets_map_t map;
        char errstr[256];

        if (daemon->conf->commit_metadata_max == 0 || !part->base_map ||
            sq_offsets_map_decode(part->base_map, part->base_map_len, &map,
                                  errstr, sizeof(errstr)) != SQ_OK)
                return; /* none, or not ours: nothing above it is done */
        if (map.base == part->base_offset)
                sq_offsets_inherit(part->offsets, &map);
        sq_offsets_map_clear(&map);
}

void sq_rebalance_rewind(sq_daemon_t *daemon, const char *cause) {
        rd_kafka_topic_partition_list_t *seek =
            rd_kafka_topic_partition_list_new(16);
        long in_memory = sq_partitions_window_total(daemon);
        rd_kafka_error_t *error;
        sq_partition_t *part;
        int lane, i;

        SQ_FOREACH_PARTITION(daemon, lane, i, part) {
                int64_t base, to;
                char *map;
                size_t map_len;

                if (!part->assigned)
                        continue;
                base           = part->base_offset;
                to             = base >= 0 ? base : part->first_admitted;
                map            = part->base_map;
                map_len        = part->base_map_len;
                part->base_map = NULL; /* kept across the forget */
                /* What was admitted under the old generation is dropped
                 * wherever it is (executor.c, emit.c, partitions.c), as
                 * for a revoked partition. */
                atomic_fetch_add(&part->gen, 1);
                partition_forget(part);
                part->base_offset  = base;
                part->base_map     = map;
                part->base_map_len = map_len;
                part->start_offset = base;
                rewind_tracker(daemon, part);
                if (to >= 0)
                        rd_kafka_topic_partition_list_add(seek, part->topic,
                                                          part->partition)
                            ->offset = to;
        }
        /* Records fetched past the seek offset and not yet served are
         * discarded by librdkafka (their fetch version is outdated). */
        if (seek->cnt > 0 &&
            (error = rd_kafka_seek_partitions(daemon->consumer, seek, 10000))) {
                SQ_LOG(SQ_LOG_ERR, "TXN", "rewind: cannot seek: %s",
                       rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
        for (i = 0; i < seek->cnt; i++)
                if (seek->elems[i].err)
                        SQ_LOG(SQ_LOG_ERR, "TXN",
                               "rewind: cannot seek topic=%s partition=%d: %s",
                               seek->elems[i].topic,
                               (int)seek->elems[i].partition,
                               rd_kafka_err2str(seek->elems[i].err));
        SQ_LOG(SQ_LOG_WARNING, "TXN",
               "rewound %d partitions to their last committed offsets after "
               "the aborted transaction (%s); %ld tasks in memory are "
               "dropped and run again from there",
               seek->cnt, cause, in_memory);
        rd_kafka_topic_partition_list_destroy(seek);
        /* A retry or map-budget pause was forgotten with the rest. */
        sq_admission_sync_pauses(daemon);
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
                sq_partition_t *part;
                sq_offsets_map_t map;
                char errstr[256];
                sq_lane_t lane;
                sq_err_t derr;

                if (rktpar->err ||
                    !sq_partitions_lane(daemon, rktpar->topic, &lane))
                        continue;
                part = sq_partitions_get(daemon, lane, rktpar->partition);
                if (rktpar->offset >= 0) {
                        part->start_offset = rktpar->offset;
                        if (daemon->eos)
                                sq_rebalance_set_base(part, rktpar->offset,
                                                      rktpar->metadata,
                                                      rktpar->metadata_size);
                }
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
                        sq_offsets_inherit(part->offsets, &map);
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
                sq_partition_t *part = list_partition(daemon, list, i);
                if (part)
                        atomic_store(&part->revoking, true);
        }
        /* Tasks held by a rate limit go to the partitions' next owner
         * now rather than hold up the drain. */
        sq_ratelimits_drop_held(daemon, false);
        if (daemon->poll.close_abandoned) {
                /* Served by rd_kafka_destroy() after the close deadline:
                 * the stop already said what it left undone. */
        } else if (rd_kafka_assignment_lost(daemon->consumer)) {
                /* The group no longer knows this member (its session
                 * expired, or the coordinator answered Unknown member or
                 * Illegal generation): the partitions may have a new
                 * owner already, and a commit would be refused. */
                SQ_LOG(SQ_LOG_NOTICE, "REBALANCE",
                       "assignment lost: not committing the %d revoked "
                       "partitions (the group no longer knows this member); "
                       "their next owner runs again what was finished "
                       "since the last commit",
                       list->cnt);
                /* exactly_once: nor can the open transaction commit
                 * their offsets; its results would be committed without
                 * them, and the new owner would write them again. */
                sq_commit_assignment_lost(daemon);
        } else {
                drain_partitions(daemon, list);
                sq_commit_offsets(daemon, list, true);
        }
        for (i = 0; i < list->cnt; i++) {
                sq_partition_t *part = list_partition(daemon, list, i);
                if (!part)
                        continue;
                if (part->lane == SQ_LANE_CRITICAL)
                        forward_queue(daemon, part, NULL);
                atomic_fetch_add(&part->gen, 1);
                if (part->assigned)
                        atomic_fetch_sub(
                            &daemon->partitions.assigned_cnt[part->lane], 1);
                part->assigned = false;
                part->paused   = false;
                partition_forget(part);
                atomic_store(&part->revoking, false);
        }
        sq_metric_add(daemon->m.revoked_partitions, (double)list->cnt);
}

/* Re-forwarding the critical partitions' queues: often for a while after
 * an assignment, then now and then (see sq_rebalance_tick()). */
#define CRITICAL_FORWARD_WINDOW_US (30 * 1000 * 1000)
#define CRITICAL_FORWARD_FAST_US   (100 * 1000)
#define CRITICAL_FORWARD_SLOW_US   (1000 * 1000)

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
                sq_partition_t *part = list_partition(daemon, list, i);
                if (!part)
                        continue;
                atomic_fetch_add(&part->gen, 1);
                if (!part->assigned)
                        atomic_fetch_add(
                            &daemon->partitions.assigned_cnt[part->lane], 1);
                part->assigned = true;
                part->paused   = false;
                partition_forget(part);
                if (part->lane == SQ_LANE_CRITICAL) {
                        /* The fast lane's own queue: never behind a paused
                         * or deep ordinary queue. */
                        forward_queue(daemon, part, daemon->critical_q);
                        daemon->poll.critical_forward_until_us =
                            sq_clock_us() + CRITICAL_FORWARD_WINDOW_US;
                        daemon->poll.critical_forward_next_us =
                            sq_clock_us() + CRITICAL_FORWARD_FAST_US;
                }
                if (daemon->admission.lane_paused[part->lane] ||
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

int64_t sq_rebalance_tick(sq_daemon_t *daemon, int64_t now) {
        sq_partition_t *part;
        int i;

        if (atomic_load(&daemon->partitions.assigned_cnt[SQ_LANE_CRITICAL]) ==
            0)
                return INT64_MAX;
        if (now < daemon->poll.critical_forward_next_us)
                return daemon->poll.critical_forward_next_us;
        for (i = 0; i < daemon->partitions.cnt[SQ_LANE_CRITICAL]; i++) {
                part = daemon->partitions.parts[SQ_LANE_CRITICAL][i];
                if (part && part->assigned && !atomic_load(&part->revoking))
                        forward_queue(daemon, part, daemon->critical_q);
        }
        daemon->poll.critical_forward_next_us =
            now + (now < daemon->poll.critical_forward_until_us
                       ? CRITICAL_FORWARD_FAST_US
                       : CRITICAL_FORWARD_SLOW_US);
        return daemon->poll.critical_forward_next_us;
}

void sq_daemon_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *partitions,
                            void *opaque) {
        sq_daemon_t *daemon         = opaque;
        bool cooperative            = sq_kafka_cooperative(rk);
        rd_kafka_error_t *error     = NULL;
        rd_kafka_resp_err_t ret_err = RD_KAFKA_RESP_ERR_NO_ERROR;

        /* Served from inside a consumer poll, maybe mid-batch: jobs
         * admitted before it go to the executors first (a revocation
         * waits for them to finish). */
        sq_admission_flush(daemon);
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
        /* The owned partitions changed: each rate limit's share too. */
        sq_ratelimits_rebalanced(daemon);
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
