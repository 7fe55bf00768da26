/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scheduler.h: the admission lanes between the poll thread and the executor
 * threads: a critical fast lane with executor slots reserved for it, and
 * HIGH / NORMAL / LOW lanes served by priority with aging so that LOW
 * never starves.
 *
 * DESIGN
 *   Items are intrusive (sq_sched_item_t embedded in the caller's job), so
 *   pushing allocates nothing. One mutex and one condvar guard the lanes;
 *   executors sleep on the condvar (no polling) and are woken by a push or
 *   by a slot being freed. The poll thread pushes; executor threads pop.
 *
 *   Wake-ups: one at a time, and only when an executor sleeps and could
 *   take an item (the slot rules bind every executor alike, so one
 *   wake-up is enough). An executor that takes an item while more are
 *   takeable wakes the next sleeper, so a batch pushed at once
 *   (sq_sched_push_list) spreads over as many executors as it keeps
 *   busy, and a busy instance makes no futex call per task: a push finds
 *   nobody asleep, and an executor finishing a task takes the next one
 *   under the same lock (sq_sched_next).
 *
 *   Slot accounting: of `threads` executor slots, `critical_reserved` are
 *   only ever used by CRITICAL items. A non-critical item is popped only
 *   while fewer than threads - critical_reserved non-critical items run,
 *   so a critical task always finds a free executor within one task's
 *   time even behind a deep backlog.
 *
 *   Aging: each non-critical lane is FIFO, so its head is its oldest item.
 *   The pick compares the heads' scores, level * aging + waited, and takes
 *   the highest: a LOW item that has waited two aging periods beats a
 *   fresh HIGH one. O(1) per pick.
 */
#ifndef SQ_SCHEDULER_H
#define SQ_SCHEDULER_H

#include "common.h"
#include "task.h"

typedef struct sq_sched_item_s {
        struct sq_sched_item_s *next;
        sq_priority_t priority;
        int64_t enqueued_us; /* set by push */
} sq_sched_item_t;

typedef struct sq_sched_s sq_sched_t;

/**
 * @brief Creates the lanes.
 * @param threads executor slots (>= 1).
 * @param critical_reserved slots only CRITICAL items may use (< threads).
 * @param aging_us how long a wait is worth one priority level.
 */
sq_sched_t *sq_sched_new(int threads, int critical_reserved, int64_t aging_us);
/** @brief Frees the lanes (items left in them are not touched). */
void sq_sched_destroy(sq_sched_t *sched);

/** @brief Queues an item (borrowed until popped). Any thread. */
void sq_sched_push(sq_sched_t *sched, sq_sched_item_t *item);

/**
 * @brief Queues a list of items linked by their next pointers (a batch
 *        admitted together): one lock, and at most one executor woken
 *        (it wakes the next while items are left). Any thread.
 */
void sq_sched_push_list(sq_sched_t *sched, sq_sched_item_t *first);

/**
 * @brief Takes the next item the slot rules allow, waiting for one.
 *        The caller must call sq_sched_done() when it finished running it.
 * @returns the item, or NULL once sq_sched_shutdown() was called and no
 *          item is left that this caller may take.
 */
sq_sched_item_t *sq_sched_pop(sq_sched_t *sched);

/**
 * @brief sq_sched_done() for the item the caller just ran (when
 *        @p done_priority >= 0), then sq_sched_pop(), under one lock: an
 *        executor's loop.
 */
sq_sched_item_t *sq_sched_next(sq_sched_t *sched, int done_priority);

/**
 * @brief Non-blocking pop (for tests and for executors that want to check
 *        before sleeping). @p now_us is not needed any more: the pick
 *        compares the lanes' waits, in which the clock cancels out.
 * @returns an item or NULL.
 */
sq_sched_item_t *sq_sched_try_pop(sq_sched_t *sched, int64_t now_us);

/** @brief Frees the slot taken by popping an item of @p priority. */
void sq_sched_done(sq_sched_t *sched, sq_priority_t priority);

/**
 * @brief Takes a slot without popping (an executor continuing with a job
 *        handed over by an agent); may briefly exceed the non-critical
 *        share. Pair with sq_sched_done().
 */
void sq_sched_claim(sq_sched_t *sched, sq_priority_t priority);

/** @brief Wakes every waiter; pop returns NULL once lanes are empty. */
void sq_sched_shutdown(sq_sched_t *sched);

/** @returns items queued in one lane (priority) right now. */
size_t sq_sched_depth(sq_sched_t *sched, sq_priority_t priority);
/** @returns items running (popped or claimed, not done). */
int sq_sched_running(sq_sched_t *sched);

#endif /* SQ_SCHEDULER_H */
