/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emitq_int.h: the producing thread (emitq.c), the one thread that hands
 * the instance's records to librdkafka under at_least_once.
 *
 * DESIGN
 *   Executors and the poll thread push finished records (a copy of key and
 *   value, the headers, the delivery opaque) onto one lock-free list; the
 *   producing thread takes the whole list at once, puts it back in push
 *   order and produces it (emit.c, sq_emit_produce_queued()). Five threads
 *   calling rd_kafka_producev() contended on librdkafka's topic and
 *   partition locks (8 % of the instance's CPU, issue 14); one thread
 *   calling it in a loop does not. Nor does it wake per record: once it
 *   produced a batch it gives the next one up to 1 ms (never more than
 *   kafka.linger.ms, which librdkafka waits anyway; none with linger 0)
 *   to gather; a pusher signals it only when it sleeps with nothing
 *   queued.
 *
 *   Order: records are produced in the order they were pushed (one list,
 *   taken whole), so a thread's records keep their order, and a record
 *   pushed before a task finished goes out before any record of a task
 *   that started after it (ordering.handoff=finished keeps per-key order).
 *
 *   Main starts the thread before any other that emits and stops it after
 *   they are all gone (sq_daemon_destroy()); the thread then produces what
 *   is left. The poll thread waits for the list to be empty before its
 *   final flush (sq_emitq_drain()). exactly_once does not use it: records
 *   must go into the open transaction before the poll thread commits it
 *   (emit.c produces them directly under the transaction's read hold).
 *   A record the thread cannot copy (out of memory), or one pushed on the
 *   producing thread itself (a refused record's replacement), is produced
 *   directly.
 */
#ifndef SQ_EMITQ_INT_H
#define SQ_EMITQ_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "common.h"
#include "daemon.h"

/** One queued record; it lives at the end of the block that holds its
 * value and key (sq_emitq_push()). */
typedef struct sq_emitq_rec_s {
        struct sq_emitq_rec_s *next;
        void *block; /* malloc()ed; starts with the value when there is one */
        rd_kafka_topic_t *rkt;
        int32_t partition;
        int64_t timestamp_ms;
        const void *value; /* NULL: a record without value */
        size_t value_len;
        const void *key;
        size_t key_len;
        rd_kafka_headers_t *headers; /* taken */
        void *opaque;
} sq_emitq_rec_t;

/** The producing thread and its list. */
typedef struct sq_emitq_s {
        /* The list's head alone on its cache line: every push swaps it
         * (one contended atomic per record; a counter beside it cost as
         * much again). */
        char pad0[64];
        _Atomic(sq_emitq_rec_t *) head; /* pushed last first */
        char pad1[64 - sizeof(void *)];
        atomic_bool running; /* pushes go to the list */
        atomic_int state;    /* EMITQ_* (emitq.c): how it waits */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_t thread;
        int64_t hold_us;   /* a batch's gathering time: up to 1 ms */
        bool started;      /* main */
        sq_codec_t *codec; /* the thread's (refused records' replacements) */
} sq_emitq_t;

/** @brief Initializes the list's lock and condition. Main. */
void sq_emitq_init(sq_daemon_t *daemon);

/** @brief Destroys what sq_emitq_init() made. Main, thread stopped. */
void sq_emitq_term(sq_daemon_t *daemon);

/**
 * @brief Starts the producing thread (not under exactly_once). Main.
 * @returns SQ_OK, or SQ_ERR_IO / SQ_ERR_NOMEM with @p errstr set.
 */
sq_err_t sq_emitq_start(sq_daemon_t *daemon, char *errstr, size_t errstr_size);

/** @brief Stops the thread once it produced what is queued; idempotent.
 * Main, once no other thread pushes. */
void sq_emitq_stop(sq_daemon_t *daemon);

/**
 * @brief Queues a record for the producing thread. Any thread.
 * @returns false when the caller must produce it itself (no thread, the
 *          producing thread itself, or no memory for the copy); true when
 *          queued (@p headers taken).
 */
bool sq_emitq_push(sq_daemon_t *daemon, rd_kafka_topic_t *rkt,
                   int32_t partition, int64_t timestamp_ms, const void *key,
                   size_t key_len, const void *value, size_t value_len,
                   rd_kafka_headers_t *headers, void *opaque);

/**
 * @brief Waits until every record pushed so far is handed to librdkafka,
 *        or @p deadline_us (sq_clock_us()) passes. Poll thread, stopping.
 * @returns true when the list was emptied.
 */
bool sq_emitq_drain(sq_daemon_t *daemon, int64_t deadline_us);

#endif /* SQ_EMITQ_INT_H */
