/* SPDX-License-Identifier: Apache-2.0 */
/*
 * poll.c: the poll thread: its loop, serving the consumer and critical
 * queues, the breaker timer, admin actions taking effect, and the
 * shutdown sequence.
 *
 * DESIGN
 *   Thread: the poll thread is the only caller of consumer poll and
 *   commit. It sleeps in poll(2) on four file descriptors: the consumer
 *   group queue, the critical-lane queue, the producer's delivery-report
 *   queue (all three wired with rd_kafka_queue_io_event_enable) and an
 *   eventfd (sq_daemon_wake: stop requests, dropped jobs, an opened
 *   breaker, admin actions). On wake-up it serves delivery reports first
 *   (they free window room), then up to POLL_BATCH critical records, then
 *   up to POLL_BATCH ordinary ones (admitted jobs go to the scheduler
 *   ADMIT_BATCH at a time), applies backpressure, and commits the
 *   completed prefix of every partition when the commit interval is due.
 *   The poll(2) timeout is the earliest of the next commit, the earliest
 *   open breaker's end, the earliest retry head's due time and the end of
 *   a hold of the consumer queue (admission.c): timers, no sleeps, no
 *   busy loops.
 *
 *   Shutdown: stop intake (pause everything), drain the window within
 *   shutdown.drain.timeout.ms, then abandon what is left (the scheduler is
 *   shut down, the executors and the I/O loop's children stopped and their
 *   jobs dropped), commit synchronously, stop the lag refresher, close the
 *   consumer, flush the producer: these last steps within
 *   shutdown.close.timeout.ms, whatever the brokers answer (or do not):
 *   commits wait for their answer no longer, the consumer's close is
 *   served here (rd_kafka_consumer_close_queue) until then, and the
 *   revocation it brings does not wait a second drain timeout.
 */
#include "event_types.h"
#include "admission_int.h"
#include "commit_int.h"
#include "daemon_int.h"
#include "log.h"
#include "poll_int.h"
#include "rebalance_int.h"
#include "registry_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* How many records one wake-up takes from a queue before looking at the
 * other queues again (keeps the critical lane responsive). */
#define POLL_BATCH 512

/* How many admitted jobs go to the scheduler in one push: one lock and at
 * most one executor wake-up per batch instead of per task, while the
 * first job of a batch waits for at most this many decodes. */
#define ADMIT_BATCH 64

static sq_err_t make_pipe(int fds[2], char *errstr, size_t errstr_size) {
        if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
                sq_errstr_set(errstr, errstr_size, "pipe2() failed: %s",
                              strerror(errno));
                return SQ_ERR_IO;
        }
        return SQ_OK;
}

sq_err_t sq_poll_init(sq_daemon_t *daemon, char *errstr, size_t errstr_size) {
        sq_poll_t *state = &daemon->poll;

        /* First: sq_poll_term() closes what is not -1. */
        state->consumer_pipe[0] = state->consumer_pipe[1] = -1;
        state->critical_pipe[0] = state->critical_pipe[1] = -1;
        state->producer_pipe[0] = state->producer_pipe[1] = -1;
        atomic_store(&state->heartbeat_us, daemon->started_us);
        if ((state->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
                sq_errstr_set(errstr, errstr_size, "eventfd() failed: %s",
                              strerror(errno));
                return SQ_ERR_IO;
        }
        if (make_pipe(state->consumer_pipe, errstr, errstr_size) ||
            make_pipe(state->critical_pipe, errstr, errstr_size) ||
            make_pipe(state->producer_pipe, errstr, errstr_size))
                return SQ_ERR_IO;
        return SQ_OK;
}

sq_err_t sq_poll_new_codec(sq_daemon_t *daemon, char *errstr,
                           size_t errstr_size) {
        daemon->poll.codec = sq_codec_new(errstr, errstr_size);
        if (!daemon->poll.codec)
                return SQ_ERR_CONFIG;
        sq_schemas_use(daemon, daemon->poll.codec);
        return SQ_OK;
}

void sq_poll_watch_queues(sq_daemon_t *daemon) {
        rd_kafka_queue_io_event_enable(daemon->consumer_q,
                                       daemon->poll.consumer_pipe[1], "1", 1);
        rd_kafka_queue_io_event_enable(daemon->critical_q,
                                       daemon->poll.critical_pipe[1], "1", 1);
        rd_kafka_queue_io_event_enable(daemon->producer_q,
                                       daemon->poll.producer_pipe[1], "1", 1);
}

void sq_poll_term(sq_daemon_t *daemon) {
        sq_poll_t *state = &daemon->poll;
        int i;

        sq_codec_destroy(state->codec);
        state->codec = NULL;
        for (i = 0; i < 2; i++) {
                if (state->consumer_pipe[i] >= 0)
                        close(state->consumer_pipe[i]);
                if (state->critical_pipe[i] >= 0)
                        close(state->critical_pipe[i]);
                if (state->producer_pipe[i] >= 0)
                        close(state->producer_pipe[i]);
                state->consumer_pipe[i]     = state->critical_pipe[i] =
                    state->producer_pipe[i] = -1;
        }
        if (state->wake_fd >= 0)
                close(state->wake_fd);
        state->wake_fd = -1;
}

void sq_daemon_wake(sq_daemon_t *daemon) {
        uint64_t one = 1;
        if (write(daemon->poll.wake_fd, &one, sizeof(one)) < 0 &&
            errno != EAGAIN)
                SQ_LOG(SQ_LOG_ERR, "POLL", "cannot wake the poll thread: %s",
                       strerror(errno));
}

/* Poll thread: moves due breakers to half-open. @returns the next due
 * time, or 0. */
static int64_t breakers_tick(sq_daemon_t *daemon, int64_t now) {
        sq_agents_t *agents = sq_daemon_agents(daemon);
        sq_agents_out_t out = {0};
        int64_t due         = sq_agents_next_due(agents);

        if (due && now >= due) {
                due = sq_agents_tick(agents, now, &out);
                sq_daemon_agents_out(daemon, daemon->poll.codec, &out);
        }
        sq_agents_release_ref(agents);
        return due;
}

void sq_poll_serve_reports(sq_daemon_t *daemon, int timeout_ms) {
        rd_kafka_poll(daemon->producer, timeout_ms);
        /* Jobs a denied write finished on another thread: acknowledged
         * here, like those a delivery report finishes. */
        sq_emit_serve_denied(daemon);
}

static void drain_pipe(int fd) {
        char buf[64];
        while (read(fd, buf, sizeof(buf)) > 0)
                ;
}

static int serve_queue(sq_daemon_t *daemon, rd_kafka_queue_t *queue,
                       bool consumer_queue) {
        int n = 0;
        while (n < POLL_BATCH) {
                rd_kafka_message_t *rkm;
                /* A full window holds the consumer queue (admission.c):
                 * what it prefetched waits there for room. */
                if (consumer_queue && sq_admission_holding(daemon))
                        break;
                rkm = consumer_queue
                          ? rd_kafka_consumer_poll(daemon->consumer, 0)
                          : rd_kafka_consume_queue(queue, 0);
                if (!rkm)
                        break;
                sq_admission_admit(daemon, rkm);
                rd_kafka_message_destroy(rkm);
                n++;
                if (n % ADMIT_BATCH == 0)
                        sq_admission_flush(daemon);
                /* Hold (then pause) the moment a lane reaches its high
                 * mark, not at the end of the batch, so the window (and
                 * the work a crash can make run twice) stays at the
                 * configured mark instead of the mark plus a batch. */
                if (sq_admission_at_high_mark(daemon))
                        sq_admission_backpressure(daemon);
        }
        sq_admission_flush(daemon);
        return n;
}

static void stop_intake(sq_daemon_t *daemon) {
        SQ_LOG(SQ_LOG_NOTICE, "STOP",
               "stopping intake; draining %ld in-flight tasks (deadline "
               "%lld ms)",
               sq_partitions_window_total(daemon),
               (long long)daemon->conf->drain_timeout_ms);
        sq_admission_pause_lane(daemon, SQ_LANE_TASKS, true);
        sq_admission_pause_lane(daemon, SQ_LANE_CRITICAL, true);
        sq_admission_pause_lane(daemon, SQ_LANE_RETRY, true);
        /* Tasks held by a rate limit are left in Kafka, not drained. */
        sq_ratelimits_drop_held(daemon, true);
}

/* Emits an instance event when an admin action took effect. */
static void admin_events(sq_daemon_t *daemon) {
        static const char *const types[] = {SQ_EVENT_INSTANCE_RESUMED,
                                            SQ_EVENT_INSTANCE_PAUSED,
                                            SQ_EVENT_INSTANCE_DRAINING};
        int state = atomic_load(&daemon->admin.draining) ? 2
                    : atomic_load(&daemon->admin.paused) ? 1
                                                         : 0;
        if (state == daemon->admin.announced)
                return;
        daemon->admin.announced = state;
        SQ_LOG(SQ_LOG_NOTICE, "ADMIN", "%s", types[state]);
        sq_emit_event(daemon, daemon->poll.codec, types[state], NULL, NULL,
                      "requested over HTTP", NULL);
}

/* POST /admin/drain reached an empty window: commit what is done. */
static void finish_drain(sq_daemon_t *daemon) {
        sq_commit_offsets(daemon, NULL, true);
        sq_partitions_snapshot(daemon);
        atomic_store(&daemon->admin.drained, true);
        SQ_LOG(SQ_LOG_NOTICE, "ADMIN",
               "drained: intake stopped, no task in flight, offsets "
               "committed");
        sq_emit_event(daemon, daemon->poll.codec, SQ_EVENT_INSTANCE_DRAINED,
                      NULL, NULL, NULL, NULL);
}

/* While stopping: true once the window is empty, or waiting no longer
 * makes sense (a failed transaction, the drain deadline). */
static bool drain_over(sq_daemon_t *daemon, int64_t now,
                       int64_t drain_deadline) {
        if (sq_partitions_window_total(daemon) == 0)
                return true;
        if (daemon->commit.txn_dead) {
                /* exactly_once after a failed transaction: nothing
                 * finished now can be committed, so waiting for it only
                 * delays the restart that runs it again. */
                SQ_LOG(SQ_LOG_WARNING, "STOP",
                       "transaction failed; abandoning %ld unfinished tasks "
                       "without waiting (they run again from the last "
                       "committed offsets)",
                       sq_partitions_window_total(daemon));
                return true;
        }
        if (now >= drain_deadline) {
                SQ_LOG(SQ_LOG_WARNING, "STOP",
                       "drain deadline passed; abandoning %ld unfinished "
                       "tasks (they will run again after a restart or on "
                       "another instance)",
                       sq_partitions_window_total(daemon));
                return true;
        }
        return false;
}

/* The poll(2) timeout: the earliest of the next commit, the earliest open
 * breaker's end (moving due ones to half-open), the critical lane's next
 * forwarding repair (doing a due one), the earliest retry head's due time
 * (resuming due ones), the end of a hold of the consumer queue and,
 * stopping, the drain deadline. */
static int64_t next_timeout_us(sq_daemon_t *daemon, int64_t now, bool stopping,
                               int64_t drain_deadline) {
        int64_t timeout_us = daemon->commit.next_us - now, due, retry_due;

        if ((due = breakers_tick(daemon, now)))
                timeout_us = SQ_MIN(timeout_us, due - now);
        /* The critical lane's forwarding, repaired (rebalance.c). */
        if ((due = sq_rebalance_tick(daemon, now)) != INT64_MAX)
                timeout_us = SQ_MIN(timeout_us, due - now);
        /* Start-up registration in the schema registry: its retry. */
        if ((due = sq_schemas_tick(daemon, now)) != INT64_MAX)
                timeout_us = SQ_MIN(timeout_us, due - sq_clock_us());
        /* The retry lane's timer: wake when the earliest waiting head is
         * due. */
        retry_due = sq_admission_retry_due(daemon);
        if (retry_due != INT64_MAX)
                timeout_us =
                    SQ_MIN(timeout_us, (retry_due - sq_wallclock_ms()) * 1000);
        /* A hold of the consumer queue that outlasts its bound becomes a
         * pause even when no acknowledgement wakes us. */
        if ((due = sq_admission_hold_due(daemon)) != INT64_MAX)
                timeout_us = SQ_MIN(timeout_us, due - now);
        if (stopping)
                timeout_us = SQ_MIN(timeout_us, drain_deadline - now);
        return timeout_us < 0 ? 0 : timeout_us;
}

/* One wake-up's work: delivery reports first (they free window room),
 * then the critical and the ordinary queue, backpressure, admin actions,
 * and the commit when its interval is due. */
static void serve_wakeup(sq_daemon_t *daemon) {
        int64_t now;
        int busy = 0;

        /* Clear the wake-ups first: an event enqueued after this writes
         * the pipe again, so nothing is missed. */
        drain_pipe(daemon->poll.consumer_pipe[0]);
        drain_pipe(daemon->poll.critical_pipe[0]);
        drain_pipe(daemon->poll.producer_pipe[0]);
        drain_pipe(daemon->poll.wake_fd);

        sq_poll_serve_reports(daemon, 0);
        if (daemon->eos && atomic_load(&daemon->commit.txn_failed) &&
            !daemon->commit.txn_dead)
                sq_commit_produce_failed(daemon);
        sq_admission_check_map_budget(daemon);
        /* Nothing is admitted before swarmq's schemas are registered
         * (schemas.c): the queues wait, and the registration's success
         * wakes this loop. */
        if (sq_schemas_ready(daemon)) {
                busy += serve_queue(daemon, daemon->critical_q, false);
                busy += serve_queue(daemon, daemon->consumer_q, true);
        }
        sq_admission_backpressure(daemon);
        admin_events(daemon);
        if (atomic_load(&daemon->admin.draining) &&
            !atomic_load(&daemon->admin.drained) &&
            sq_partitions_window_total(daemon) == 0)
                finish_drain(daemon);

        now = sq_clock_us();
        if (now >= daemon->commit.next_us) {
                sq_commit_offsets(daemon, NULL, false);
                sq_partitions_snapshot(daemon);
                daemon->commit.next_us =
                    now + daemon->conf->commit_interval_ms * 1000;
        }
        if (busy)
                /* A full batch may have left records queued without a new
                 * io event: wake ourselves to continue. */
                sq_daemon_wake(daemon);
}

/* Serves the consumer's queue (rebalance and commit callbacks) for up to
 * 100 ms, never past @p deadline_us; a record still queued is not
 * admitted any more (its offset is not committed). */
static void serve_consumer_queue(sq_daemon_t *daemon, int64_t deadline_us) {
        int64_t left_us = deadline_us - sq_clock_us();
        rd_kafka_message_t *rkm;

        rkm = rd_kafka_consume_queue(
            daemon->consumer_q, (int)SQ_MAX(0, SQ_MIN(100, left_us / 1000)));
        if (rkm)
                rd_kafka_message_destroy(rkm);
}

/* true when the consumer holds no partition (or cannot say). */
static bool consumer_unassigned(sq_daemon_t *daemon) {
        rd_kafka_topic_partition_list_t *parts = NULL;
        bool empty;

        if (rd_kafka_assignment(daemon->consumer, &parts))
                return true;
        empty = parts->cnt == 0;
        rd_kafka_topic_partition_list_destroy(parts);
        return empty;
}

/* Gives the partitions back before the close: unsubscribing revokes them
 * through the rebalance callback (rebalance.c, served here), which
 * commits what is done. Why not leave that to the close: a revocation
 * served from within rd_kafka_consumer_close_queue() can wait for ever in
 * its rd_kafka_assign(NULL), for a reply librdkafka's main thread never
 * sends once the group is terminating (confluentinc/librdkafka#4884; 0030
 * hung so when the coordinator timed out). Revoked first, the close has
 * nothing left to revoke. */
static void unassign_before_close(sq_daemon_t *daemon, int64_t deadline_us) {
        rd_kafka_resp_err_t err = rd_kafka_unsubscribe(daemon->consumer);

        if (err) {
                SQ_LOG(SQ_LOG_WARNING, "STOP", "cannot unsubscribe: %s",
                       rd_kafka_err2str(err));
                return;
        }
        while (!consumer_unassigned(daemon) && sq_clock_us() < deadline_us)
                serve_consumer_queue(daemon, deadline_us);
}

/* Closes the consumer: it gives its partitions back (their revocation
 * commits what is done), then it leaves the group.
 * rd_kafka_consumer_close() would block for as long as the coordinator
 * keeps it waiting; this serves the close's queue until the consumer is
 * closed or @p deadline_us passes. */
static void close_consumer(sq_daemon_t *daemon, int64_t deadline_us) {
        rd_kafka_error_t *error;

        SQ_LOG(SQ_LOG_NOTICE, "STOP", "closing the consumer");
        unassign_before_close(daemon, deadline_us);
        error =
            rd_kafka_consumer_close_queue(daemon->consumer, daemon->consumer_q);
        if (error) {
                SQ_LOG(SQ_LOG_WARNING, "STOP", "cannot close the consumer: %s",
                       rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                return;
        }
        while (!rd_kafka_consumer_closed(daemon->consumer)) {
                if (sq_clock_us() >= deadline_us) {
                        daemon->poll.close_abandoned = true;
                        SQ_LOG(SQ_LOG_WARNING, "STOP",
                               "the consumer did not close within "
                               "shutdown.close.timeout.ms=%lld (the group "
                               "coordinator did not answer in time); "
                               "stopping anyway: the committed offsets "
                               "cover finished tasks only, the rest runs "
                               "again on the partitions' next owner",
                               (long long)daemon->conf->close_timeout_ms);
                        return;
                }
                serve_consumer_queue(daemon, deadline_us);
        }
}

/* Stopped: abandon what is left, commit the completed prefix, close the
 * consumer, deliver what finished; all of it after the drain within
 * shutdown.close.timeout.ms, whatever the brokers do. */
static void shut_down(sq_daemon_t *daemon) {
        int64_t deadline_us, left_ms;

        atomic_store(&daemon->partitions.order_closed, true);
        atomic_store(&daemon->cancel, true);
        sq_sched_shutdown(daemon->sched);
        sq_executors_join(daemon);
        sq_runtimes_shutdown(daemon); /* kills children, drops their jobs */
        deadline_us = sq_clock_us() + daemon->conf->close_timeout_ms * 1000;
        daemon->poll.close_deadline_us = deadline_us;
        sq_poll_serve_reports(daemon, 0);
        sq_commit_offsets(daemon, NULL, true);
        sq_lag_stop(daemon); /* no query on a closing consumer */
        close_consumer(daemon, deadline_us);
        /* Results of tasks that finished are still worth delivering
         * (not after a failed transaction: they would be aborted), in
         * what is left of the close deadline. */
        left_ms = SQ_MAX(0, (deadline_us - sq_clock_us()) / 1000);
        if (!daemon->commit.txn_dead &&
            rd_kafka_flush(daemon->producer, (int)left_ms) !=
                RD_KAFKA_RESP_ERR_NO_ERROR)
                SQ_LOG(SQ_LOG_WARNING, "STOP",
                       "%d records not delivered within "
                       "shutdown.close.timeout.ms=%lld",
                       rd_kafka_outq_len(daemon->producer),
                       (long long)daemon->conf->close_timeout_ms);
        rd_kafka_purge(daemon->producer,
                       RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        sq_poll_serve_reports(daemon, 0);
}

static void *poll_main(void *arg) {
        sq_daemon_t *daemon = arg;
        struct pollfd fds[4];
        int64_t drain_deadline = 0;
        bool stopping          = false;

        fds[0].fd = daemon->poll.consumer_pipe[0];
        fds[1].fd = daemon->poll.critical_pipe[0];
        fds[2].fd = daemon->poll.producer_pipe[0];
        fds[3].fd = daemon->poll.wake_fd;
        for (int i = 0; i < 4; i++)
                fds[i].events = POLLIN;
        daemon->commit.next_us =
            sq_clock_us() + daemon->conf->commit_interval_ms * 1000;
        /* The consumer subscribes (and may even be handed its first
         * assignment) before the queues' io events are enabled, and
         * librdkafka writes a queue's pipe only when an op is enqueued:
         * ops already waiting would sit there until the commit interval
         * ends the first poll() (an hour with a long interval, so the
         * instance never became ready). Serve every queue once first. */
        sq_daemon_wake(daemon);

        for (;;) {
                int64_t now = sq_clock_us(), timeout_us;

                atomic_store(&daemon->poll.heartbeat_us, now);
                if (!stopping && atomic_load(&daemon->stop_requested)) {
                        stopping = true;
                        drain_deadline =
                            now + daemon->conf->drain_timeout_ms * 1000;
                        stop_intake(daemon);
                }
                if (stopping && drain_over(daemon, now, drain_deadline))
                        break;
                timeout_us =
                    next_timeout_us(daemon, now, stopping, drain_deadline);
                if (poll(fds, 4, (int)((timeout_us + 999) / 1000)) < 0 &&
                    errno != EINTR) {
                        SQ_LOG(SQ_LOG_CRIT, "POLL", "poll() failed: %s",
                               strerror(errno));
                        daemon->fatal = SQ_ERR_IO;
                        break;
                }
                serve_wakeup(daemon);
        }
        shut_down(daemon);
        return NULL;
}

sq_err_t sq_poll_start(sq_daemon_t *daemon, char *errstr, size_t errstr_size) {
        int perr =
            pthread_create(&daemon->poll.thread, NULL, poll_main, daemon);
        if (perr) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot start the poll thread: %s",
                              strerror(perr));
                return SQ_ERR_IO;
        }
        return SQ_OK;
}
