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
 *   next.
 *
 *   A failed transaction: on an abortable error (a refused
 *   TxnOffsetCommit, Unknown member when the group coordinator's node
 *   died; a record refused; a flush that timed out) it is aborted and the
 *   instance carries on: everything since the last committed transaction
 *   is forgotten (sq_rebalance_rewind(): the partitions' generations
 *   change, so queued and running jobs are dropped and never produce into
 *   the next transaction; trackers and fetch positions go back to the
 *   committed offsets and maps; the aborted successes leave the dedup
 *   map), and the next transaction begins. A retriable error is tried
 *   again first. A lost assignment aborts the open transaction the same
 *   way. Only a fatal error (fenced by a newer instance with our
 *   transactional.id) stops the instance with SQ_ERR_KAFKA: its tasks run
 *   again from the last committed offsets.
 */
#include "commit_int.h"
#include "daemon_int.h"
#include "hash.h"
#include "kafka_conf.h"
#include "log.h"
#include "poll_int.h"
#include "rebalance_int.h"

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

const char *sq_txn_step_name(sq_txn_step_t step) {
        static const char *const names[SQ_TXN_STEP_CNT] = {
            "produce", "flush", "send_offsets",
            "commit",  "begin", "assignment_lost"};
        return (unsigned)step < SQ_TXN_STEP_CNT ? names[step] : "unknown";
}

/* What failed, for the log: the step and its error. */
static const char *step_what(sq_txn_step_t step) {
        static const char *const what[SQ_TXN_STEP_CNT] = {
            "a produce",
            "flushing the transaction",
            "sending offsets to the transaction",
            "committing the transaction",
            "beginning a transaction",
            "the assignment"};
        return (unsigned)step < SQ_TXN_STEP_CNT ? what[step] : "a transaction";
}

/* exactly_once, a fatal error (fenced by a newer instance with our
 * transactional.id, or any other): no transaction can follow. The
 * instance stops; its offsets stay where the last committed transaction
 * put them, and read_committed readers never see the open one. */
static void txn_stop(sq_daemon_t *daemon, sq_txn_step_t step,
                     const char *cause) {
        SQ_LOG(SQ_LOG_CRIT, "TXN",
               "%s failed: %s; a fatal error: stopping (the tasks of the "
               "open transaction run again from the last committed offsets)",
               step_what(step), cause);
        daemon->commit.txn_dead = true;
        daemon->fatal           = SQ_ERR_KAFKA;
        sq_daemon_stop(daemon);
}

/* exactly_once: the open transaction failed at @p step with @p error
 * (owned; NULL when a record of it failed, see txn_failed). Under the
 * write lock. An abortable error ends it here and the instance carries
 * on: the transaction is aborted (librdkafka purges what it has not sent;
 * read_committed readers never see what it sent), everything since the
 * last committed transaction is forgotten and its partitions rewound
 * there (rebalance.c: its tasks run again, none of them lost or
 * committed twice), its task ids leave the dedup map, and the next
 * transaction begins. A fatal error stops the instance. */
static void txn_abort(sq_daemon_t *daemon, sq_txn_step_t step,
                      const char *cause);

static void txn_fail(sq_daemon_t *daemon, sq_txn_step_t step,
                     rd_kafka_error_t *error) {
        char cause[512] = "";
        bool fatal;

        sq_metric_add(daemon->m.commits_failed, 1);
        /* A produce or flush that failed gives no error object: a fatal
         * producer error names the cause, else a record of the
         * transaction was not delivered. A fatal error may also be
         * raised beside the one returned. */
        fatal = (error && rd_kafka_error_is_fatal(error)) ||
                rd_kafka_fatal_error(daemon->producer, cause, sizeof(cause));
        if (!error && !fatal) {
                /* The failed record's delivery report names the broker's
                 * reason. It may be queued already, or follow in a moment:
                 * librdkafka marks the transaction failed (so a produce
                 * meanwhile says only "Erroneous state") before it queues
                 * the reports of the refused batch. Waited for a little,
                 * bounded: the abort must not hang on it. */
                int waits = 0;
                sq_poll_serve_reports(daemon, 0);
                while (!daemon->commit.txn_dr_cause[0] &&
                       step == SQ_TXN_PRODUCE && waits++ < 10)
                        sq_poll_serve_reports(daemon, 20);
        }
        if (error)
                snprintf(cause, sizeof(cause), "%s",
                         rd_kafka_error_string(error));
        else if (!fatal && daemon->commit.txn_dr_cause[0])
                snprintf(cause, sizeof(cause), "%s",
                         daemon->commit.txn_dr_cause);
        else if (!fatal)
                snprintf(cause, sizeof(cause), "%s",
                         step == SQ_TXN_FLUSH
                             ? "its records were not all acknowledged in time"
                         : daemon->commit.txn_cause[0]
                             ? daemon->commit.txn_cause
                             : "a record of it was not delivered");
        if (error)
                rd_kafka_error_destroy(error);
        if (fatal || step == SQ_TXN_BEGIN) {
                /* No transaction is open after a failed begin. */
                txn_stop(daemon, step, cause);
                return;
        }
        SQ_LOG(SQ_LOG_ERR, "TXN",
               "%s failed: %s; aborting the transaction and rewinding to the "
               "last committed offsets (an abortable error: the instance "
               "carries on)",
               step_what(step), cause);
        txn_abort(daemon, step, cause);
}

/* exactly_once, under the write lock: aborts the open transaction,
 * forgets everything since the last committed one (rewinding the
 * partitions there, forgetting its task ids in the dedup map) and
 * begins the next. A failure to abort or to begin stops the instance. */
static void txn_abort(sq_daemon_t *daemon, sq_txn_step_t step,
                      const char *cause) {
        rd_kafka_error_t *error;
        char why[512];

        if ((error = rd_kafka_abort_transaction(daemon->producer, 60000))) {
                snprintf(why, sizeof(why), "%s, then aborting it failed: %s",
                         cause, rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                txn_stop(daemon, step, why);
                return;
        }
        sq_metric_add(daemon->m.txn_aborted[step], 1);
        atomic_store(&daemon->commit.txn_failed, false);
        daemon->commit.txn_cause[0]    = '\0';
        daemon->commit.txn_dr_cause[0] = '\0';
        atomic_store(&daemon->commit.txn_produced, 0);
        /* The aborted transaction's successes are not in Kafka: the
         * tasks must run again, not be dropped as duplicates. */
        if (daemon->admission.dedup && daemon->commit.txn_dedup_new) {
                sq_ttlmap_forget_newest(daemon->admission.dedup,
                                        daemon->commit.txn_dedup_new);
                atomic_store(&daemon->admission.dedup_entries,
                             sq_ttlmap_count(daemon->admission.dedup));
        }
        daemon->commit.txn_dedup_new = 0;
        sq_rebalance_rewind(daemon, cause);
        if ((error = rd_kafka_begin_transaction(daemon->producer))) {
                snprintf(why, sizeof(why), "%s", rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                txn_stop(daemon, SQ_TXN_BEGIN, why);
                return;
        }
}

/* exactly_once: a transaction's offsets are committed: they are where a
 * later aborted transaction rewinds to. */
static void set_bases(sq_daemon_t *daemon,
                      const rd_kafka_topic_partition_list_t *list) {
        int i;
        for (i = 0; i < list->cnt; i++) {
                const rd_kafka_topic_partition_t *rktpar = &list->elems[i];
                sq_lane_t lane;
                if (!sq_partitions_lane(daemon, rktpar->topic, &lane))
                        continue;
                sq_rebalance_set_base(
                    sq_partitions_get(daemon, lane, rktpar->partition),
                    rktpar->offset, rktpar->metadata, rktpar->metadata_size);
        }
}

/* exactly_once: a retriable error of a transactional call (a coordinator
 * moving, a request timing out) is retried a few times before the
 * transaction is aborted. */
static bool txn_retry(rd_kafka_error_t **errorp, int *triesp) {
        rd_kafka_error_t *error = *errorp;
        if (!error || !rd_kafka_error_is_retriable(error) ||
            rd_kafka_error_txn_requires_abort(error) ||
            rd_kafka_error_is_fatal(error) || ++*triesp > 3)
                return false;
        SQ_LOG(SQ_LOG_WARNING, "TXN", "%s; trying again",
               rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        *errorp = NULL;
        return true;
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
 * earlier transactions. The offsets of every assigned partition go with
 * it (not only of @p only's: the transaction holds the records of all of
 * them, and a task whose result is committed without its offset would
 * run again after a later abort). */
static void commit_transaction(sq_daemon_t *daemon, bool sync) {
        rd_kafka_topic_partition_list_t *list = NULL;
        rd_kafka_error_t *error               = NULL;
        sq_txn_step_t step                    = SQ_TXN_FLUSH;
        int tries                             = 0;

        if (daemon->commit.txn_dead)
                return;
        txn_lock_write(daemon);
        if (atomic_load(&daemon->commit.txn_failed)) {
                step = SQ_TXN_PRODUCE;
                goto fail;
        }
        if (rd_kafka_flush(daemon->producer, 60000))
                goto fail;
        if (atomic_load(&daemon->commit.txn_failed)) {
                step = SQ_TXN_PRODUCE; /* a delivery report said so */
                goto fail;
        }
        list = commit_list(daemon, NULL, sync);
        if (list->cnt == 0 && atomic_load(&daemon->commit.txn_produced) == 0)
                goto done; /* nothing to end */
        if (list->cnt > 0) {
                step = SQ_TXN_SEND_OFFSETS;
                do
                        error = sq_kafka_send_offsets(
                            daemon->producer, daemon->consumer, list, 30000);
                while (txn_retry(&error, &tries));
                if (error)
                        goto fail;
        }
        step  = SQ_TXN_COMMIT;
        tries = 0;
        do
                error = rd_kafka_commit_transaction(daemon->producer, 60000);
        while (txn_retry(&error, &tries));
        if (error)
                goto fail;
        mark_acked(daemon, list, false); /* committed with the transaction */
        set_bases(daemon, list);
        atomic_store(&daemon->commit.txn_produced, 0);
        daemon->commit.txn_dedup_new = 0; /* its successes are in Kafka */
        sq_metric_add(daemon->m.commits_ok, 1);
        step = SQ_TXN_BEGIN;
        if ((error = rd_kafka_begin_transaction(daemon->producer)))
                goto fail;
        goto done;
fail:
        txn_fail(daemon, step, error);
done:
        pthread_rwlock_unlock(&daemon->commit.txn_lock);
        if (list)
                rd_kafka_topic_partition_list_destroy(list);
}

void sq_commit_assignment_lost(sq_daemon_t *daemon) {
        if (!daemon->eos || daemon->commit.txn_dead)
                return;
        txn_lock_write(daemon);
        if (atomic_load(&daemon->commit.txn_produced) > 0 ||
            atomic_load(&daemon->commit.txn_failed)) {
                SQ_LOG(SQ_LOG_WARNING, "TXN",
                       "assignment lost: aborting the open transaction (its "
                       "offsets can no longer be committed by this member; "
                       "its tasks run again on the partitions' next owner) "
                       "and rewinding");
                txn_abort(daemon, SQ_TXN_LOST,
                          "the group no longer knows this member");
        }
        pthread_rwlock_unlock(&daemon->commit.txn_lock);
}

void sq_commit_produce_failed(sq_daemon_t *daemon) {
        if (daemon->commit.txn_dead)
                return;
        txn_lock_write(daemon);
        /* The commit may have dealt with it while this waited. */
        if (atomic_load(&daemon->commit.txn_failed))
                txn_fail(daemon, SQ_TXN_PRODUCE, NULL);
        pthread_rwlock_unlock(&daemon->commit.txn_lock);
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
                commit_transaction(daemon, sync);
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
