/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lag.c: the consumer lag of the partitions an instance owns, and the
 * refresher thread that keeps their high watermarks true while they are
 * paused.
 *
 * DESIGN
 *   Why a refresher: the poll thread takes each partition's high watermark
 *   from rd_kafka_get_watermark_offsets(), which is what the last fetch
 *   response said. librdkafka (2.0.2) does not fetch a paused partition,
 *   so behind a pause (the admission window, memory.limit.bytes,
 *   POST /admin/pause or /admin/drain) that watermark stops moving and the
 *   lag read 0 or a stale figure, exactly when an operator needs it.
 *   Every lag.refresh.interval.ms the refresher asks the leaders
 *   (rd_kafka_offsets_for_times() with the "latest" timestamp, blocking)
 *   for the end offset of every partition the last snapshot says is
 *   assigned (one ListOffsets request per leader, see query_offsets()),
 *   and stores it in the partition's atomics.
 *
 *   Thread: the refresher is a thread of its own because the query blocks
 *   for a broker round trip (up to the request timeout when a broker is
 *   down): not on the poll thread (it would stall intake and commits), not
 *   on the HTTP thread (handlers return at once), not on the I/O loop (it
 *   would stall child processes' pipes and deadlines). It sleeps on a
 *   condition variable with the interval as its deadline; sq_lag_stop()
 *   signals it and joins it. It holds no lock across a librdkafka call:
 *   it copies the assigned partitions under snap_lock, queries without
 *   it, then takes snap_lock again to store the lag.
 *
 *   The lag: high watermark minus the partition's own position (its
 *   committable offset, else the offset last committed, else the group's
 *   offset read at assignment, else the log start). The high watermark is
 *   the larger of the fetched one and the queried one: a partition's
 *   watermark only grows, so the larger is the fresher. With read_committed
 *   (the consumer's isolation level) the query returns the last stable
 *   offset, the fetch the high watermark; they differ only inside an open
 *   transaction, by its records.
 *
 *   Ownership: partitions are never freed while the instance lives, so the
 *   refresher keeps plain pointers to them; topics are borrowed from the
 *   config.
 */
#include "daemon_int.h"
#include "log.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* Deadline of one round's query (rd_kafka_offsets_for_times() keeps it);
 * sq_lag_stop() waits for a query in progress. */
#define LAG_QUERY_TIMEOUT_MS 5000

void sq_lag_init(sq_daemon_t *daemon) {
        pthread_condattr_t attr;

        pthread_mutex_init(&daemon->lag.lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&daemon->lag.cond, &attr);
        pthread_condattr_destroy(&attr);
}

void sq_lag_term(sq_daemon_t *daemon) {
        pthread_cond_destroy(&daemon->lag.cond);
        pthread_mutex_destroy(&daemon->lag.lock);
}

void sq_lag_compute(sq_partition_t *part) {
        int64_t high = SQ_MAX(part->snap_fetched_high,
                              (int64_t)atomic_load(&part->queried_high));
        int64_t pos  = part->snap_pos;

        if (pos < 0)
                pos = SQ_MAX(part->snap_fetched_low,
                             (int64_t)atomic_load(&part->queried_low));
        if (!part->snap_assigned || high < 0 || pos < 0) {
                part->snap_high = part->snap_assigned ? high : -1;
                part->lag       = -1;
                return;
        }
        part->snap_high = high;
        part->lag       = high > pos ? high - pos : 0;
}

/* Copies the partitions the last snapshot says are assigned into
 * @p *partsp (grown as needed; caller owns, sq_free()), and counts in
 * @p *need_lowp those with no position of their own (their lag counts
 * from the log start, so that is queried too). */
static size_t assigned_parts(sq_daemon_t *daemon, sq_partition_t ***partsp,
                             size_t *sizep, size_t *need_lowp) {
        size_t cnt = 0;
        int lane, i;

        *need_lowp = 0;
        pthread_mutex_lock(&daemon->snap_lock);
        for (lane = 0; lane < SQ_LANE_CNT; lane++) {
                for (i = 0; i < daemon->partitions.cnt[lane]; i++) {
                        sq_partition_t *part =
                            daemon->partitions.parts[lane][i];
                        if (!part || !part->snap_assigned)
                                continue;
                        if (cnt == *sizep) {
                                *sizep  = *sizep ? *sizep * 2 : 16;
                                *partsp = sq_realloc(*partsp,
                                                     *sizep * sizeof(**partsp));
                        }
                        (*partsp)[cnt++] = part;
                        if (part->snap_pos < 0)
                                (*need_lowp)++;
                }
        }
        pthread_mutex_unlock(&daemon->snap_lock);
        return cnt;
}

/* Asks the leaders for the @p which (RD_KAFKA_OFFSET_END or _BEGINNING)
 * offset of @p parts (borrowed; NULL entries skipped, and set to NULL when
 * their answer is missing). One ListOffsets request per leader for all of
 * them: a broker answers a connection's requests in order, so each request
 * can wait behind the consumer's long-poll fetch (fetch.wait.max.ms);
 * rd_kafka_query_watermark_offsets() pays that per partition (measured
 * about 0.5 s each on the mock) where this pays it once per round.
 * @returns the first error, or RD_KAFKA_RESP_ERR_NO_ERROR. */
static rd_kafka_resp_err_t query_offsets(sq_daemon_t *daemon,
                                         sq_partition_t **parts, size_t cnt,
                                         int64_t which, bool low) {
        rd_kafka_topic_partition_list_t *list =
            rd_kafka_topic_partition_list_new((int)cnt);
        rd_kafka_resp_err_t err, first = RD_KAFKA_RESP_ERR_NO_ERROR;
        size_t i;
        int j = 0;

        for (i = 0; i < cnt; i++)
                if (parts[i])
                        rd_kafka_topic_partition_list_add(list, parts[i]->topic,
                                                          parts[i]->partition)
                            ->offset = which;
        if (list->cnt == 0)
                goto done;
        /* With OFFSET_END/_BEGINNING as the "timestamp", ListOffsets
         * answers the partition's end (with read_committed, the last
         * stable offset) or start; the list keeps its order. */
        if ((err = rd_kafka_offsets_for_times(daemon->consumer, list,
                                              LAG_QUERY_TIMEOUT_MS))) {
                first = err;
                for (i = 0; i < cnt; i++)
                        parts[i] = NULL;
                goto done;
        }
        for (i = 0; i < cnt; i++) {
                rd_kafka_topic_partition_t *rktpar;
                if (!parts[i])
                        continue;
                rktpar = &list->elems[j++];
                if (rktpar->err || rktpar->offset < 0) {
                        if (!first)
                                first = rktpar->err ? rktpar->err
                                                    : RD_KAFKA_RESP_ERR__FAIL;
                        parts[i] = NULL;
                        continue;
                }
                atomic_store(low ? &parts[i]->queried_low
                                 : &parts[i]->queried_high,
                             rktpar->offset);
        }
done:
        rd_kafka_topic_partition_list_destroy(list);
        return first;
}

/* One round: queries the end of every assigned partition (and the start
 * of those with no position), then recomputes the lag of those it got an
 * answer for. @p failingp carries the error streak across rounds (one
 * warning per streak, not one per partition and round). */
static void refresh_round(sq_daemon_t *daemon, sq_partition_t ***partsp,
                          size_t *sizep, bool *failingp) {
        size_t need_low, ok = 0, i;
        size_t cnt = assigned_parts(daemon, partsp, sizep, &need_low);
        sq_partition_t **parts = *partsp;
        int64_t start_us       = sq_clock_us();
        rd_kafka_resp_err_t err;

        if (cnt == 0)
                return;
        err = query_offsets(daemon, parts, cnt, RD_KAFKA_OFFSET_END, false);
        if (!err && need_low > 0) {
                /* The start only where the lag counts from it. */
                sq_partition_t **low = sq_calloc(cnt, sizeof(*low));
                pthread_mutex_lock(&daemon->snap_lock);
                for (i = 0; i < cnt; i++)
                        if (parts[i] && parts[i]->snap_pos < 0)
                                low[i] = parts[i];
                pthread_mutex_unlock(&daemon->snap_lock);
                err = query_offsets(daemon, low, cnt, RD_KAFKA_OFFSET_BEGINNING,
                                    true);
                sq_free(low);
        }
        for (i = 0; i < cnt; i++)
                ok += parts[i] != NULL;
        SQ_LOG(SQ_LOG_DEBUG, "LAG",
               "high watermarks queried: partitions=%zu answered=%zu "
               "took_ms=%lld",
               cnt, ok, (long long)((sq_clock_us() - start_us) / 1000));
        if (err && !*failingp)
                SQ_LOG(SQ_LOG_WARNING, "LAG",
                       "cannot query the high watermarks of %zu of %zu owned "
                       "partitions: %s; the lag of paused partitions may "
                       "read low until a query succeeds",
                       cnt - ok, cnt, rd_kafka_err2str(err));
        else if (!err && *failingp)
                SQ_LOG(SQ_LOG_NOTICE, "LAG",
                       "high watermark queries succeed again: "
                       "partitions=%zu",
                       cnt);
        *failingp = err != RD_KAFKA_RESP_ERR_NO_ERROR;
        pthread_mutex_lock(&daemon->snap_lock);
        for (i = 0; i < cnt; i++)
                if (parts[i])
                        sq_lag_compute(parts[i]);
        pthread_mutex_unlock(&daemon->snap_lock);
}

static void *lag_main(void *arg) {
        sq_daemon_t *daemon    = arg;
        sq_partition_t **parts = NULL;
        size_t size            = 0;
        bool failing           = false;
        int64_t interval_us    = daemon->conf->lag_refresh_interval_ms * 1000;

        pthread_mutex_lock(&daemon->lag.lock);
        while (!daemon->lag.stop) {
                int64_t due_us = sq_clock_us() + interval_us;
                struct timespec ts;

                pthread_mutex_unlock(&daemon->lag.lock);
                refresh_round(daemon, &parts, &size, &failing);
                pthread_mutex_lock(&daemon->lag.lock);
                ts.tv_sec  = (time_t)(due_us / 1000000);
                ts.tv_nsec = (long)(due_us % 1000000) * 1000;
                /* The interval is the timer: no event tells a paused
                 * consumer that its partitions grew. Stop is the event. */
                while (!daemon->lag.stop &&
                       pthread_cond_timedwait(&daemon->lag.cond,
                                              &daemon->lag.lock,
                                              &ts) != ETIMEDOUT)
                        ;
        }
        pthread_mutex_unlock(&daemon->lag.lock);
        sq_free(parts);
        return NULL;
}

sq_err_t sq_lag_start(sq_daemon_t *daemon, char *errstr, size_t errstr_size) {
        int perr;

        if (daemon->conf->lag_refresh_interval_ms <= 0 || daemon->lag.started)
                return SQ_OK;
        daemon->lag.stop = false;
        if ((perr =
                 pthread_create(&daemon->lag.thread, NULL, lag_main, daemon))) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot start the lag refresher thread "
                              "(lag.refresh.interval.ms=%lld): %s",
                              (long long)daemon->conf->lag_refresh_interval_ms,
                              strerror(perr));
                return SQ_ERR_IO;
        }
        daemon->lag.started = true;
        return SQ_OK;
}

void sq_lag_stop(sq_daemon_t *daemon) {
        if (!daemon->lag.started)
                return;
        pthread_mutex_lock(&daemon->lag.lock);
        daemon->lag.stop = true;
        pthread_cond_signal(&daemon->lag.cond);
        pthread_mutex_unlock(&daemon->lag.lock);
        pthread_join(daemon->lag.thread, NULL);
        daemon->lag.started = false;
}
