/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scheduler.c: priority lanes with aging and reserved critical slots (see
 * sched.h for the design).
 */
#include "scheduler.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct lane_s {
        sq_sched_item_t *head;
        sq_sched_item_t *tail;
        _Atomic size_t depth; /* read without the lock by metrics */
} lane_t;

struct sq_sched_s {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        lane_t lanes[SQ_PRIO_CNT];
        int threads;
        int critical_reserved;
        int64_t aging_us;
        int running_critical;
        int running_other;
        int sleeping; /* executors waiting on cond */
        bool shutdown;
};

sq_sched_t *sq_sched_new(int threads, int critical_reserved, int64_t aging_us) {
        sq_sched_t *sched = sq_calloc(1, sizeof(*sched));
        sq_assert(threads >= 1);
        sq_assert(critical_reserved >= 0 && critical_reserved < threads);
        pthread_mutex_init(&sched->lock, NULL);
        pthread_cond_init(&sched->cond, NULL);
        sched->threads           = threads;
        sched->critical_reserved = critical_reserved;
        sched->aging_us          = aging_us > 0 ? aging_us : 1;
        return sched;
}

void sq_sched_destroy(sq_sched_t *sched) {
        if (!sched)
                return;
        pthread_cond_destroy(&sched->cond);
        pthread_mutex_destroy(&sched->lock);
        sq_free(sched);
}

static void lane_push(lane_t *lane, sq_sched_item_t *item) {
        item->next = NULL;
        if (lane->tail)
                lane->tail->next = item;
        else
                lane->head = item;
        lane->tail = item;
        atomic_fetch_add_explicit(&lane->depth, 1, memory_order_relaxed);
}

static sq_sched_item_t *lane_pop(lane_t *lane) {
        sq_sched_item_t *item = lane->head;
        lane->head            = item->next;
        if (!lane->head)
                lane->tail = NULL;
        item->next = NULL;
        atomic_fetch_sub_explicit(&lane->depth, 1, memory_order_relaxed);
        return item;
}

/* Called with the lock held: could a waiting executor take an item now?
 * Every executor is bound by the same slot rules, so when one cannot,
 * none can, and one wake-up is always enough. */
static bool pickable_locked(const sq_sched_t *sched) {
        int prio;
        if (sched->lanes[SQ_PRIO_CRITICAL].head)
                return true;
        if (sched->running_other >= sched->threads - sched->critical_reserved)
                return false;
        for (prio = SQ_PRIO_LOW; prio <= SQ_PRIO_HIGH; prio++)
                if (sched->lanes[prio].head)
                        return true;
        return false;
}

static bool lanes_empty(sq_sched_t *sched) {
        return !atomic_load(&sched->lanes[SQ_PRIO_CRITICAL].depth) &&
               !atomic_load(&sched->lanes[SQ_PRIO_HIGH].depth) &&
               !atomic_load(&sched->lanes[SQ_PRIO_NORMAL].depth) &&
               !atomic_load(&sched->lanes[SQ_PRIO_LOW].depth);
}

typedef enum { WAKE_NONE, WAKE_ONE, WAKE_ALL } wake_t;

/* Called with the lock held: whom to wake after unlocking. Nobody when
 * no executor sleeps (no futex call then); one when an item is takeable;
 * all once shut down with nothing left to take, so that every sleeper
 * returns (one that slept on an item the slot rules held back would
 * otherwise sleep on after the lanes emptied). */
static wake_t wake_locked(sq_sched_t *sched) {
        if (!sched->sleeping)
                return WAKE_NONE;
        if (pickable_locked(sched))
                return WAKE_ONE;
        if (sched->shutdown && lanes_empty(sched))
                return WAKE_ALL;
        return WAKE_NONE;
}

static void wake(sq_sched_t *sched, wake_t how) {
        if (how == WAKE_ONE)
                pthread_cond_signal(&sched->cond);
        else if (how == WAKE_ALL)
                pthread_cond_broadcast(&sched->cond);
}

void sq_sched_push(sq_sched_t *sched, sq_sched_item_t *item) {
        item->next = NULL;
        sq_sched_push_list(sched, item);
}

void sq_sched_push_list(sq_sched_t *sched, sq_sched_item_t *first) {
        int64_t now = sq_clock_us();
        wake_t how;

        if (!first)
                return;
        pthread_mutex_lock(&sched->lock);
        while (first) {
                sq_sched_item_t *next = first->next;
                sq_assert((unsigned)first->priority < SQ_PRIO_CNT);
                first->enqueued_us = now;
                lane_push(&sched->lanes[first->priority], first);
                first = next;
        }
        how = wake_locked(sched);
        pthread_mutex_unlock(&sched->lock);
        /* One executor: the one that takes an item wakes the next while
         * items are left (sq_sched_next), so a batch wakes as many
         * executors as it keeps busy, at most one futex call each. */
        wake(sched, how);
}

/* Called with the lock held. The heads' scores, level * aging + (now -
 * enqueued), are compared with the clock cancelled out (level * aging -
 * enqueued): no clock read per pick. */
static sq_sched_item_t *pick_locked(sq_sched_t *sched) {
        lane_t *best       = NULL;
        int64_t best_score = 0;
        int prio;

        if (sched->lanes[SQ_PRIO_CRITICAL].head) {
                sched->running_critical++;
                return lane_pop(&sched->lanes[SQ_PRIO_CRITICAL]);
        }
        if (sched->running_other >= sched->threads - sched->critical_reserved)
                return NULL;
        for (prio = SQ_PRIO_HIGH; prio >= SQ_PRIO_LOW; prio--) {
                lane_t *lane = &sched->lanes[prio];
                int64_t score;
                if (!lane->head)
                        continue;
                score =
                    (int64_t)prio * sched->aging_us - lane->head->enqueued_us;
                /* Strictly greater: ties go to the higher priority. */
                if (!best || score > best_score) {
                        best       = lane;
                        best_score = score;
                }
        }
        if (!best)
                return NULL;
        sched->running_other++;
        return lane_pop(best);
}

sq_sched_item_t *sq_sched_try_pop(sq_sched_t *sched, int64_t now_us) {
        sq_sched_item_t *item;
        pthread_mutex_lock(&sched->lock);
        (void)now_us; /* the pick compares waits: the clock cancels out */
        item = pick_locked(sched);
        pthread_mutex_unlock(&sched->lock);
        return item;
}

/* Called with the lock held: frees the slot an item of @p priority took. */
static void done_locked(sq_sched_t *sched, sq_priority_t priority) {
        if (priority == SQ_PRIO_CRITICAL)
                sched->running_critical--;
        else
                sched->running_other--;
        sq_assert(sched->running_critical >= 0 && sched->running_other >= 0);
}

sq_sched_item_t *sq_sched_next(sq_sched_t *sched, int done_priority) {
        sq_sched_item_t *item;
        wake_t how;

        pthread_mutex_lock(&sched->lock);
        if (done_priority >= 0)
                done_locked(sched, (sq_priority_t)done_priority);
        while (!(item = pick_locked(sched))) {
                if (sched->shutdown && lanes_empty(sched))
                        break;
                sched->sleeping++;
                pthread_cond_wait(&sched->cond, &sched->lock);
                sched->sleeping--;
        }
        /* Items left that a sleeping executor could take: wake one (it
         * does the same), instead of every push waking every executor. */
        how = wake_locked(sched);
        pthread_mutex_unlock(&sched->lock);
        wake(sched, how);
        return item;
}

sq_sched_item_t *sq_sched_pop(sq_sched_t *sched) {
        return sq_sched_next(sched, -1);
}

void sq_sched_done(sq_sched_t *sched, sq_priority_t priority) {
        wake_t how;
        pthread_mutex_lock(&sched->lock);
        done_locked(sched, priority);
        /* The freed slot may let a waiting executor take an item the slot
         * rules held back. */
        how = wake_locked(sched);
        pthread_mutex_unlock(&sched->lock);
        wake(sched, how);
}

void sq_sched_claim(sq_sched_t *sched, sq_priority_t priority) {
        pthread_mutex_lock(&sched->lock);
        if (priority == SQ_PRIO_CRITICAL)
                sched->running_critical++;
        else
                sched->running_other++;
        pthread_mutex_unlock(&sched->lock);
}

void sq_sched_shutdown(sq_sched_t *sched) {
        pthread_mutex_lock(&sched->lock);
        sched->shutdown = true;
        pthread_mutex_unlock(&sched->lock);
        pthread_cond_broadcast(&sched->cond);
}

size_t sq_sched_depth(sq_sched_t *sched, sq_priority_t priority) {
        return atomic_load_explicit(&sched->lanes[priority].depth,
                                    memory_order_relaxed);
}

int sq_sched_running(sq_sched_t *sched) {
        int running;
        pthread_mutex_lock(&sched->lock);
        running = sched->running_critical + sched->running_other;
        pthread_mutex_unlock(&sched->lock);
        return running;
}
