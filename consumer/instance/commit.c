/* SPDX-License-Identifier: Apache-2.0 */
/*
 * commit.c: committing what is done: per partition the first offset not
 * yet done, with the completed-offset map above it as commit metadata;
 * asynchronously every commit.interval.ms, synchronously on revocation
 * and shutdown; under processing.guarantee=exactly_once through the
 * producer's transaction instead; and the offset-commit callback.
 *
 * DESIGN
 *   Thread: the poll thread only (it is the only caller of consumer commit,
 *   and librdkafka serves the commit callback on it, from consumer poll).
 *   The partitions' commit fields (committed, committed_map, acked,
 *   acked_map, map_len, map_done, map_cut_warned) and map_buf are its own.
 *
 *   Offsets: per partition, the completed-offset tracker (offsets.c)
 *   commits only the contiguous prefix of records whose result and
 *   terminal event (or dead letter) the broker acknowledged. A partition
 *   is left out of a periodic commit only when the broker acknowledged
 *   that very offset and map: a commit that failed, or was sent and not yet
 *   acknowledged, goes again.
 *
 *   Exactly once: every record is produced under a read lock on txn_lock,
 *   a task's ending records under one (emit.c, sq_emit_txn_hold()), so
 *   they are never split over two transactions; ending a transaction
 *   takes the write lock (writer-preferring, serving delivery reports
 *   while it waits: a reader may wait for producer queue room), flushes
 *   (the delivery reports mark offsets done, on this thread), sends the
 *   committable offsets to the transaction, commits it and begins the
 *   next. A failed transaction is aborted and stops the instance with
 *   SQ_ERR_KAFKA: its tasks run again from the last committed offsets.
 */
#include "commit_int.h"
#include "daemon_int.h"
#include "hash.h"
#include "log.h"
#include "poll_int.h"

#include <stdio.h>
#include <time.h>

void sq_commit_init(sq_daemon_t *daemon) {
        /* Writer-preferring: a transaction's end is not starved by a
         * steady stream of produce calls. */
        pthread_rwlockattr_t attr;
        pthread_rwlockattr_init(&attr);
        pthread_rwlockattr_setkind_np(
            &attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&daemon->commit.txn_lock, &attr);
        pthread_rwlockattr_destroy(&attr);
        daemon->commit.map_buf =
            sq_calloc((size_t)daemon->conf->commit_metadata_max + 1, 1);
}

void sq_commit_term(sq_daemon_t *daemon) {
        sq_free(daemon->commit.map_buf);
        daemon->commit.map_buf = NULL;
        pthread_rwlock_destroy(&daemon->commit.txn_lock);
}

/* FNV-1a, 64 bits: tells whether a map changed since it was committed. */
static uint64_t hash_bytes(const char *buf, size_t len) {
        return sq_hash_fnv1a64(buf, len, SQ_HASH_FNV64_BASIS);
}

static rd_kafka_topic_partition_list_t *
commit_list(sq_daemon_t *daemon, const rd_kafka_topic_partition_list_t *only,
            bool sync) {
        rd_kafka_topic_partition_list_t *list =
            rd_kafka_topic_partition_list_new(16);
        sq_partition_t *part;
        int lane, i;

        SQ_FOREACH_PARTITION(daemon, lane, i, part) {
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
                            daemon->commit.map_buf, &full, &map_done);
                map_hash = hash_bytes(daemon->commit.map_buf, map_len);
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
                        rktpar->metadata =
                            sq_memdup(daemon->commit.map_buf, map_len);
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
                if (!sq_partitions_lane(daemon, rktpar->topic, &lane))
                        continue;
                part = sq_partitions_get(daemon, lane, rktpar->partition);
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
void sq_commit_fail_transaction(sq_daemon_t *daemon, const char *what,
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
        daemon->commit.txn_dead = true;
        daemon->fatal           = SQ_ERR_KAFKA;
        sq_daemon_stop(daemon);
}

/* exactly_once: takes the transaction's write lock. An executor holding
 * it for reading while it produces a task's records may be waiting for
 * room in the producer's queue, which only the delivery reports served
 * on this thread free: serve them while waiting, or both would wait for
 * ever. */
static void txn_lock_write(sq_daemon_t *daemon) {
        for (;;) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_nsec += 10 * 1000000;
                if (ts.tv_nsec >= 1000000000) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000;
                }
                if (pthread_rwlock_clockwrlock(&daemon->commit.txn_lock,
                                               CLOCK_MONOTONIC, &ts) == 0)
                        return;
                sq_poll_serve_reports(daemon, 0);
        }
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

        if (daemon->commit.txn_dead)
                return;
        txn_lock_write(daemon);
        if (rd_kafka_flush(daemon->producer, 60000) ||
            atomic_load(&daemon->commit.txn_failed))
                goto fail;
        list = commit_list(daemon, only, sync);
        if (list->cnt == 0 && atomic_load(&daemon->commit.txn_produced) == 0)
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
        atomic_store(&daemon->commit.txn_produced, 0);
        sq_metric_add(daemon->m.commits_ok, 1);
        what = "beginning a transaction";
        if ((error = rd_kafka_begin_transaction(daemon->producer)))
                goto fail;
        goto done;
fail:
        sq_commit_fail_transaction(daemon, what, error);
done:
        pthread_rwlock_unlock(&daemon->commit.txn_lock);
        if (list)
                rd_kafka_topic_partition_list_destroy(list);
}

/* A synchronous commit of @p list. While the instance stops, the wait
 * for the answer ends at the stop's close deadline
 * (shutdown.close.timeout.ms): a coordinator that does not answer must
 * not hold the stop (librdkafka keeps the request; the offsets it would
 * have committed run again on the next owner: nothing unfinished is
 * committed, nothing finished is lost). The offset-commit callback
 * records the answer either way. */
static rd_kafka_resp_err_t commit_sync(sq_daemon_t *daemon,
                                       rd_kafka_topic_partition_list_t *list) {
        int64_t deadline_us = daemon->poll.close_deadline_us;
        rd_kafka_queue_t *queue;
        rd_kafka_resp_err_t err;

        if (!deadline_us)
                return rd_kafka_commit(daemon->consumer, list, 0);
        queue = rd_kafka_queue_new(daemon->consumer);
        err = rd_kafka_commit_queue(daemon->consumer, list, queue, NULL, NULL);
        while (!err) {
                int64_t left_us = deadline_us - sq_clock_us();
                rd_kafka_event_t *rkev;

                if (left_us <= 0) {
                        SQ_LOG(SQ_LOG_WARNING, "STOP",
                               "commit of %d partitions not answered within "
                               "shutdown.close.timeout.ms=%lld; not waiting "
                               "for it (what it covers runs again on the "
                               "next owner)",
                               list->cnt,
                               (long long)daemon->conf->close_timeout_ms);
                        err = RD_KAFKA_RESP_ERR__TIMED_OUT;
                        break;
                }
                rkev =
                    rd_kafka_queue_poll(queue, (int)((left_us + 999) / 1000));
                if (!rkev)
                        continue;
                if (rd_kafka_event_type(rkev) == RD_KAFKA_EVENT_OFFSET_COMMIT) {
                        err = rd_kafka_event_error(rkev);
                        rd_kafka_event_destroy(rkev);
                        break;
                }
                rd_kafka_event_destroy(rkev);
        }
        /* An answer that comes later is dropped with the queue. */
        rd_kafka_queue_destroy(queue);
        return err;
}

/* Commits the completed prefix of the partitions in @p only (or all
 * assigned ones when NULL). The periodic asynchronous commit skips what it
 * already sent; a synchronous commit (revocation, shutdown) sends every
 * prefix again, because an asynchronous commit still in flight may yet
 * fail (a rebalance in progress does that) after the partition is gone.
 * exactly_once: through the transaction instead. */
void sq_commit_offsets(sq_daemon_t *daemon,
                       const rd_kafka_topic_partition_list_t *only, bool sync) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;

        if (daemon->eos) {
                commit_transaction(daemon, only, sync);
                return;
        }
        list = commit_list(daemon, only, sync);
        if (list->cnt > 0) {
                err = sync ? commit_sync(daemon, list)
                           : rd_kafka_commit(daemon->consumer, list, 1);
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
