/* SPDX-License-Identifier: Apache-2.0 */
/*
 * eventring.h: a bounded ring of the instance's recent lifecycle events
 * (the same ones produced to the events topic), numbered by a sequence
 * number, for GET /events (Server-Sent Events) and the live page.
 *
 * DESIGN
 *   Fixed capacity chosen at creation; every slot is a fixed-size struct
 *   with its strings truncated to their field, so a push never allocates
 *   and a storm of events cannot grow memory: the oldest are overwritten.
 *   Sequence numbers start at 1 and never repeat; a reader keeps the last
 *   sequence it saw and asks for what came after, learning how many it
 *   missed when the ring overwrote them. No lock: a push claims its
 *   sequence with one atomic add and writes its slot under the slot's
 *   version (a seqlock; eventring.c), a read copies slots and keeps the
 *   copies whose version did not change. Producers: the poll thread and
 *   the executors; readers: the HTTP thread.
 *
 *   Notification: a reader with nothing to read arms the ring; the next
 *   push calls the notify callback once and disarms. A push with nobody
 *   waiting costs one relaxed atomic load beyond the copy (and a fence
 *   where membarrier(2) is unavailable: see eventring.c).
 */
#ifndef SQ_EVENTRING_H
#define SQ_EVENTRING_H

#include "common.h"

#define SQ_EVENTRING_TYPE_MAX   32
#define SQ_EVENTRING_ID_MAX     128
#define SQ_EVENTRING_AGENT_MAX  64
#define SQ_EVENTRING_DETAIL_MAX 256

/** One event as kept in the ring: plain fixed-size data. */
typedef struct sq_ring_event_s {
        uint64_t seq;  /**< set by push: 1, 2, 3, ... */
        int64_t at_ms; /**< wall clock, ms since the epoch */
        char type[SQ_EVENTRING_TYPE_MAX];
        char task_id[SQ_EVENTRING_ID_MAX]; /**< "" for instance events */
        char agent[SQ_EVENTRING_AGENT_MAX];
        char detail[SQ_EVENTRING_DETAIL_MAX];
} sq_ring_event_t;

typedef struct sq_eventring_s sq_eventring_t;

/** Called after a push when a reader armed the ring. Any thread. */
typedef void(sq_eventring_notify_t)(void *opaque);

/**
 * @brief Creates a ring of @p capacity events (>= 1).
 * @returns the ring (caller owns, sq_eventring_destroy()).
 */
sq_eventring_t *sq_eventring_new(size_t capacity);

/** @brief Frees the ring; NULL is a no-op. */
void sq_eventring_destroy(sq_eventring_t *ring);

/**
 * @brief Sets the callback run by the push that follows sq_eventring_arm().
 *        Call before any thread pushes.
 * @param opaque borrowed; must outlive the ring's use.
 */
void sq_eventring_set_notify(sq_eventring_t *ring, sq_eventring_notify_t *cb,
                             void *opaque);

/**
 * @brief Appends an event (strings truncated to their fields). Any thread.
 * @param type, task_id, agent, detail borrowed; NULL for none.
 * @returns its sequence number.
 * @locks none (the notify callback runs on the pushing thread).
 */
uint64_t sq_eventring_push(sq_eventring_t *ring, int64_t at_ms,
                           const char *type, const char *task_id,
                           const char *agent, const char *detail);

/**
 * @brief Copies up to @p max events with a sequence above @p after, oldest
 *        first, into @p out.
 * @param missedp set to how many events after @p after were already
 *        overwritten (the reader fell behind), or 0.
 * @returns the number of events copied.
 */
size_t sq_eventring_read(sq_eventring_t *ring, uint64_t after,
                         sq_ring_event_t *out, size_t max, uint64_t *missedp);

/** @returns the sequence of the newest event, 0 when none yet (its push
 *           may still be writing it: a read then stops before it). */
uint64_t sq_eventring_last_seq(sq_eventring_t *ring);

/** @returns the ring's capacity. */
size_t sq_eventring_capacity(const sq_eventring_t *ring);

/**
 * @brief Asks for one notify call on the next push, unless an event newer
 *        than @p seen already exists (then the caller should read again):
 *        checked after arming, so no push slips between a caller's read
 *        and its arm unnoticed.
 * @returns true when armed (a notify will follow the next push), false
 *          when newer events are waiting or the ring could not make sure
 *          of the notify (its memory barrier failed): read again, and do
 *          not count on a notify.
 */
bool sq_eventring_arm(sq_eventring_t *ring, uint64_t seen);

/** The membarrier(2) call: @p cmd, no flags; 0 or -1 as the syscall. */
typedef long(sq_eventring_membarrier_t)(int cmd);

/**
 * @brief Replaces the membarrier(2) call rings make (tests act out a
 *        kernel without it, or one where it fails later); NULL restores
 *        the system call. Rings created afterwards choose their barrier
 *        with it. Not thread-safe: call before any ring exists.
 */
void sq_eventring_set_membarrier(sq_eventring_membarrier_t *fn);

#endif /* SQ_EVENTRING_H */
