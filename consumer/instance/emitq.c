/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emitq.c: the producing thread (emitq_int.h): the one thread that calls
 * rd_kafka_producev() for the records executors and the poll thread
 * finish under at_least_once, fed through one lock-free list.
 *
 * DESIGN
 *   A pushed record is one malloc() block: its value, its key, then its
 *   list node. The value comes first so that librdkafka can take the block
 *   as the payload (RD_KAFKA_MSG_F_FREE) and free it after the delivery
 *   report: one copy per record, as RD_KAFKA_MSG_F_COPY from the executor
 *   made before. Pushers prepend with a compare-and-swap; the thread takes
 *   the whole list (atomic_exchange), reverses it into push order and
 *   produces it. A pusher wakes the thread only when the thread said it
 *   sleeps (sleeping, set under the lock before it checks the list once
 *   more: a push either sees the flag or is seen by that check).
 */
#include "daemon_int.h"
#include "log.h"

#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How the thread waits (state): a pusher signals an idle thread only;
 * a gathering one wakes when its time is up. */
enum { EMITQ_RUNNING, EMITQ_IDLE, EMITQ_GATHERING };

/* Set on the producing thread: what it pushes (a refused record's
 * replacement, produced from within sq_emit_produce_queued()) is produced
 * at once. */
static _Thread_local bool on_emitq_thread;

void sq_emitq_init(sq_daemon_t *daemon) {
        sq_emitq_t *q = &daemon->emitq;
        pthread_condattr_t attr;

        atomic_init(&q->head, NULL);
        atomic_init(&q->running, false);
        atomic_init(&q->state, EMITQ_RUNNING);
        pthread_mutex_init(&q->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* emitq_wait() */
        pthread_cond_init(&q->cond, &attr);
        pthread_condattr_destroy(&attr);
}

void sq_emitq_term(sq_daemon_t *daemon) {
        pthread_mutex_destroy(&daemon->emitq.lock);
        pthread_cond_destroy(&daemon->emitq.cond);
}

/* Produces @p list (pushed last first) in push order. */
static void produce_list(sq_daemon_t *daemon, sq_emitq_rec_t *list) {
        sq_emitq_rec_t *fifo = NULL, *next;

        while (list) {
                next       = list->next;
                list->next = fifo;
                fifo       = list;
                list       = next;
        }
        for (; fifo; fifo = next) {
                /* Read first: librdkafka may free the block (and the
                 * node in it) as soon as it has the record. */
                next = fifo->next;
                sq_emit_produce_queued(daemon, daemon->emitq.codec, fifo);
        }
}

/* Waits, under q->lock, for something to produce. After a batch
 * (@p gather) for hold_us: records that arrive meanwhile go out
 * together. Else (idle) until a record is pushed. */
static void emitq_wait(sq_emitq_t *q, bool gather) {
        struct timespec until;

        pthread_mutex_lock(&q->lock);
        if (gather && q->hold_us > 0) {
                clock_gettime(CLOCK_MONOTONIC, &until);
                until.tv_nsec += (long)(q->hold_us * 1000);
                if (until.tv_nsec >= 1000000000L) {
                        until.tv_sec++;
                        until.tv_nsec -= 1000000000L;
                }
                atomic_store(&q->state, EMITQ_GATHERING);
                while (atomic_load(&q->running) &&
                       pthread_cond_timedwait(&q->cond, &q->lock, &until) !=
                           ETIMEDOUT)
                        ;
        } else {
                atomic_store(&q->state, EMITQ_IDLE);
                /* After the store: a push this check misses sees the
                 * state, and signals. */
                while (!atomic_load(&q->head) && atomic_load(&q->running))
                        pthread_cond_wait(&q->cond, &q->lock);
        }
        atomic_store(&q->state, EMITQ_RUNNING);
        pthread_mutex_unlock(&q->lock);
}

static void *emitq_main(void *arg) {
        sq_daemon_t *daemon = arg;
        sq_emitq_t *q       = &daemon->emitq;
        bool gather         = false;

        on_emitq_thread = true;
        for (;;) {
                sq_emitq_rec_t *list;

                /* Records pushed while a batch was produced go out at
                 * once; a lone record after an idle spell too. */
                if (!atomic_load(&q->head))
                        emitq_wait(q, gather);
                list = atomic_exchange(&q->head, NULL);
                if (!list) {
                        if (!atomic_load(&q->running))
                                break; /* stopped, and nothing left */
                        gather = false;
                        continue;
                }
                produce_list(daemon, list);
                gather = true;
        }
        return NULL;
}

sq_err_t sq_emitq_start(sq_daemon_t *daemon, char *errstr, size_t errstr_size) {
        sq_emitq_t *q = &daemon->emitq;
        char linger[32];
        size_t size = sizeof(linger);
        int err;

        if (daemon->eos || q->started)
                return SQ_OK;
        if (rd_kafka_conf_get(rd_kafka_conf(daemon->producer), "linger.ms",
                              linger, &size) == RD_KAFKA_CONF_OK)
                q->hold_us =
                    SQ_MIN((int64_t)(strtod(linger, NULL) * 1000), 1000);
        if (!(q->codec = sq_codec_new(errstr, errstr_size)))
                return SQ_ERR_ENCODE;
        sq_schemas_use(daemon, q->codec);
        atomic_store(&q->running, true);
        if ((err = pthread_create(&q->thread, NULL, emitq_main, daemon))) {
                atomic_store(&q->running, false);
                sq_codec_destroy(q->codec);
                q->codec = NULL;
                sq_errstr_set(errstr, errstr_size,
                              "cannot start the producing thread: %s",
                              strerror(err));
                return SQ_ERR_IO;
        }
        q->started = true;
        return SQ_OK;
}

void sq_emitq_stop(sq_daemon_t *daemon) {
        sq_emitq_t *q = &daemon->emitq;

        if (!q->started)
                return;
        pthread_mutex_lock(&q->lock);
        atomic_store(&q->running, false);
        pthread_cond_signal(&q->cond);
        pthread_mutex_unlock(&q->lock);
        pthread_join(q->thread, NULL);
        q->started = false;
        sq_codec_destroy(q->codec);
        q->codec = NULL;
}

bool sq_emitq_push(sq_daemon_t *daemon, rd_kafka_topic_t *rkt,
                   int32_t partition, int64_t timestamp_ms, const void *key,
                   size_t key_len, const void *value, size_t value_len,
                   rd_kafka_headers_t *headers, void *opaque) {
        sq_emitq_t *q = &daemon->emitq;
        sq_emitq_rec_t *rec, *head;
        size_t off;
        char *block;

        if (on_emitq_thread ||
            !atomic_load_explicit(&q->running, memory_order_relaxed))
                return false;
        off = value_len + key_len;
        off = (off + alignof(sq_emitq_rec_t) - 1) &
              ~(alignof(sq_emitq_rec_t) - 1);
        /* malloc(), not sq_malloc(): librdkafka free()s the block. */
        if (!(block = malloc(off + sizeof(*rec))))
                return false;
        if (value_len)
                memcpy(block, value, value_len);
        if (key_len)
                memcpy(block + value_len, key, key_len);
        rec               = (sq_emitq_rec_t *)(void *)(block + off);
        rec->block        = block;
        rec->rkt          = rkt;
        rec->partition    = partition;
        rec->timestamp_ms = timestamp_ms;
        rec->value        = value ? block : NULL;
        rec->value_len    = value_len;
        rec->key          = key ? block + value_len : NULL;
        rec->key_len      = key_len;
        rec->headers      = headers;
        rec->opaque       = opaque;

        head = atomic_load_explicit(&q->head, memory_order_relaxed);
        do
                rec->next = head;
        while (!atomic_compare_exchange_weak(&q->head, &head, rec));
        /* After the swap: an idle thread either sees the record or has
         * said so before (emitq_wait()). */
        if (atomic_load(&q->state) == EMITQ_IDLE) {
                pthread_mutex_lock(&q->lock);
                pthread_cond_signal(&q->cond);
                pthread_mutex_unlock(&q->lock);
        }
        return true;
}

bool sq_emitq_drain(sq_daemon_t *daemon, int64_t deadline_us) {
        sq_emitq_t *q = &daemon->emitq;

        if (!q->started)
                return true;
        /* Everything pushed before is produced once the list is empty
         * and then the thread waits (it set the state after its last
         * batch). */
        while (atomic_load(&q->head) ||
               atomic_load(&q->state) == EMITQ_RUNNING) {
                struct timespec ts = {0, 1000000};
                if (sq_clock_us() >= deadline_us)
                        return false;
                nanosleep(&ts, NULL);
        }
        return true;
}
