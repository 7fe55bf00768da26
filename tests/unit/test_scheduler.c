/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_scheduler.c: priority order, aging (LOW never starves), and executor
 * slots reserved for the critical lane.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "scheduler.h"

#define AGING_US 1000000 /* one priority level per second of waiting */

static sq_sched_item_t *item_at(sq_sched_item_t *items, int i,
                                sq_priority_t prio) {
        items[i].priority = prio;
        return &items[i];
}

static void test_priority_order_without_aging(void **state) {
        sq_sched_t *sched = sq_sched_new(8, 1, AGING_US);
        sq_sched_item_t items[4];
        int64_t now;
        (void)state;
        sq_sched_push(sched, item_at(items, 0, SQ_PRIO_LOW));
        sq_sched_push(sched, item_at(items, 1, SQ_PRIO_NORMAL));
        sq_sched_push(sched, item_at(items, 2, SQ_PRIO_HIGH));
        sq_sched_push(sched, item_at(items, 3, SQ_PRIO_CRITICAL));
        now = sq_clock_us();
        /* Pushed within microseconds: no aging effect. */
        assert_ptr_equal(sq_sched_try_pop(sched, now), &items[3]);
        assert_ptr_equal(sq_sched_try_pop(sched, now), &items[2]);
        assert_ptr_equal(sq_sched_try_pop(sched, now), &items[1]);
        assert_ptr_equal(sq_sched_try_pop(sched, now), &items[0]);
        assert_null(sq_sched_try_pop(sched, now));
        assert_int_equal(sq_sched_running(sched), 4);
        sq_sched_done(sched, SQ_PRIO_CRITICAL);
        sq_sched_done(sched, SQ_PRIO_HIGH);
        sq_sched_done(sched, SQ_PRIO_NORMAL);
        sq_sched_done(sched, SQ_PRIO_LOW);
        assert_int_equal(sq_sched_running(sched), 0);
        sq_sched_destroy(sched);
}

static void test_fifo_within_a_lane(void **state) {
        sq_sched_t *sched = sq_sched_new(8, 1, AGING_US);
        sq_sched_item_t items[5];
        int i;
        (void)state;
        for (i = 0; i < 5; i++)
                sq_sched_push(sched, item_at(items, i, SQ_PRIO_NORMAL));
        for (i = 0; i < 5; i++)
                assert_ptr_equal(sq_sched_try_pop(sched, sq_clock_us()),
                                 &items[i]);
        sq_sched_destroy(sched);
}

static void test_aging_lets_low_overtake_high(void **state) {
        /* A LOW item that waited more than two aging periods wins over a
         * HIGH item that just arrived; one that waited less does not. */
        sq_sched_t *sched = sq_sched_new(8, 1, AGING_US);
        sq_sched_item_t items[3];
        int64_t t0;
        (void)state;
        sq_sched_push(sched, item_at(items, 0, SQ_PRIO_LOW));
        sq_sched_push(sched, item_at(items, 1, SQ_PRIO_HIGH));
        t0                   = items[0].enqueued_us;
        items[1].enqueued_us = t0 + 2 * AGING_US + 10;
        /* At t0 + 2 aging + 10 us: LOW score 2.00001 s, HIGH 2 s. */
        assert_ptr_equal(sq_sched_try_pop(sched, t0 + 2 * AGING_US + 10),
                         &items[0]);
        sq_sched_push(sched, item_at(items, 2, SQ_PRIO_LOW));
        items[2].enqueued_us = t0 + 2 * AGING_US;
        /* This LOW waited 1 aging period less than needed: HIGH first. */
        assert_ptr_equal(sq_sched_try_pop(sched, t0 + 3 * AGING_US), &items[1]);
        assert_ptr_equal(sq_sched_try_pop(sched, t0 + 3 * AGING_US), &items[2]);
        sq_sched_destroy(sched);
}

static void test_low_never_starves_under_steady_high_load(void **state) {
        /* A stream of fresh HIGH items arriving every 100 ms: the LOW item
         * queued at the start must be picked within 2 aging periods. */
        sq_sched_t *sched = sq_sched_new(1, 0, AGING_US);
        sq_sched_item_t low, high[64];
        int64_t t0, now;
        int i, low_picked_at = -1;
        (void)state;
        sq_sched_push(sched, item_at(&low, 0, SQ_PRIO_LOW));
        t0 = low.enqueued_us;
        for (i = 0; i < 64 && low_picked_at < 0; i++) {
                sq_sched_item_t *got;
                now = t0 + (int64_t)i * 100000;
                sq_sched_push(sched, item_at(high, i, SQ_PRIO_HIGH));
                high[i].enqueued_us = now;
                got                 = sq_sched_try_pop(sched, now);
                assert_non_null(got);
                if (got == &low)
                        low_picked_at = i;
                sq_sched_done(sched, got->priority);
        }
        assert_true(low_picked_at > 0);
        assert_true(low_picked_at <= 21); /* 2 aging periods + 1 step */
        while (sq_sched_try_pop(sched, now))
                sq_sched_done(sched, SQ_PRIO_HIGH);
        sq_sched_destroy(sched);
}

static void test_reserved_slots_only_serve_critical(void **state) {
        /* 4 slots, 1 reserved: 3 NORMAL run, the 4th waits even though a
         * slot is free; a CRITICAL item still gets the reserved slot. */
        sq_sched_t *sched = sq_sched_new(4, 1, AGING_US);
        sq_sched_item_t items[6];
        int i;
        (void)state;
        for (i = 0; i < 4; i++)
                sq_sched_push(sched, item_at(items, i, SQ_PRIO_NORMAL));
        for (i = 0; i < 3; i++)
                assert_non_null(sq_sched_try_pop(sched, sq_clock_us()));
        assert_null(sq_sched_try_pop(sched, sq_clock_us()));
        assert_int_equal(sq_sched_depth(sched, SQ_PRIO_NORMAL), 1);
        sq_sched_push(sched, item_at(items, 4, SQ_PRIO_CRITICAL));
        assert_ptr_equal(sq_sched_try_pop(sched, sq_clock_us()), &items[4]);
        /* Critical work may exceed the reservation (it takes any slot). */
        sq_sched_push(sched, item_at(items, 5, SQ_PRIO_CRITICAL));
        assert_ptr_equal(sq_sched_try_pop(sched, sq_clock_us()), &items[5]);
        /* Freeing a NORMAL slot lets the queued NORMAL item run. */
        sq_sched_done(sched, SQ_PRIO_NORMAL);
        assert_ptr_equal(sq_sched_try_pop(sched, sq_clock_us()), &items[3]);
        sq_sched_destroy(sched);
}

typedef struct {
        sq_sched_t *sched;
        int popped;
} popper_t;

static void *popper_main(void *arg) {
        popper_t *popper = arg;
        sq_sched_item_t *item;
        while ((item = sq_sched_pop(popper->sched))) {
                popper->popped++;
                sq_sched_done(popper->sched, item->priority);
        }
        return NULL;
}

static void test_blocking_pop_drains_then_returns_null(void **state) {
        sq_sched_t *sched = sq_sched_new(4, 1, AGING_US);
        static sq_sched_item_t items[1000];
        popper_t poppers[3];
        pthread_t threads[3];
        int i, total = 0;
        (void)state;
        for (i = 0; i < 3; i++) {
                poppers[i].sched  = sched;
                poppers[i].popped = 0;
                pthread_create(&threads[i], NULL, popper_main, &poppers[i]);
        }
        for (i = 0; i < 1000; i++)
                sq_sched_push(sched, item_at(items, i, (sq_priority_t)(i % 4)));
        sq_sched_shutdown(sched);
        for (i = 0; i < 3; i++) {
                pthread_join(threads[i], NULL);
                total += poppers[i].popped;
        }
        assert_int_equal(total, 1000);
        assert_int_equal(sq_sched_running(sched), 0);
        sq_sched_destroy(sched);
}

static void test_push_list_keeps_order(void **state) {
        sq_sched_t *sched = sq_sched_new(8, 1, AGING_US);
        sq_sched_item_t items[5];
        int i;
        (void)state;
        for (i = 0; i < 5; i++)
                item_at(items, i, SQ_PRIO_NORMAL)->next =
                    i < 4 ? &items[i + 1] : NULL;
        sq_sched_push_list(sched, &items[0]);
        sq_sched_push_list(sched, NULL); /* nothing: no-op */
        assert_int_equal(sq_sched_depth(sched, SQ_PRIO_NORMAL), 5);
        for (i = 0; i < 5; i++)
                assert_ptr_equal(sq_sched_try_pop(sched, sq_clock_us()),
                                 &items[i]);
        assert_null(sq_sched_try_pop(sched, sq_clock_us()));
        sq_sched_destroy(sched);
}

/* Executors looping on sq_sched_next(): each item waits until all three
 * executors hold one, so the batch must reach every sleeping executor
 * (one woken by the push, each of them waking the next). */
typedef struct batch_exec_s {
        sq_sched_t *sched;
        _Atomic int *started;
        _Atomic int ran;
        atomic_bool timed_out;
} batch_exec_t;

static void *batch_exec_main(void *arg) {
        batch_exec_t *exec = arg;
        sq_sched_item_t *item;
        int done = -1;
        while ((item = sq_sched_next(exec->sched, done))) {
                int64_t deadline = sq_clock_us() + 10 * 1000000;
                done             = (int)item->priority;
                atomic_fetch_add(exec->started, 1);
                while (atomic_load(exec->started) < 3 &&
                       sq_clock_us() < deadline)
                        sched_yield();
                if (atomic_load(exec->started) < 3)
                        atomic_store(&exec->timed_out, true);
                exec->ran++;
        }
        return NULL;
}

static void test_batch_reaches_every_sleeping_executor(void **state) {
        sq_sched_t *sched = sq_sched_new(4, 1, AGING_US);
        sq_sched_item_t items[3];
        batch_exec_t execs[3];
        pthread_t threads[3];
        _Atomic int started = 0;
        int i;
        (void)state;
        for (i = 0; i < 3; i++) {
                execs[i].sched   = sched;
                execs[i].started = &started;
                atomic_init(&execs[i].ran, 0);
                atomic_init(&execs[i].timed_out, false);
                pthread_create(&threads[i], NULL, batch_exec_main, &execs[i]);
        }
        for (i = 0; i < 3; i++)
                item_at(items, i, SQ_PRIO_NORMAL)->next =
                    i < 2 ? &items[i + 1] : NULL;
        sq_sched_push_list(sched, &items[0]);
        /* Not before all three started (or gave up): the shutdown wakes
         * every executor, which would hide a missing wake-up. */
        while (atomic_load(&started) < 3 && !execs[0].ran && !execs[1].ran &&
               !execs[2].ran)
                sched_yield();
        sq_sched_shutdown(sched);
        for (i = 0; i < 3; i++) {
                pthread_join(threads[i], NULL);
                assert_false(atomic_load(&execs[i].timed_out));
                assert_int_equal(atomic_load(&execs[i].ran), 1);
        }
        assert_int_equal(sq_sched_running(sched), 0);
        sq_sched_destroy(sched);
}

/* Shut down with items queued that the slot rules hold back from an
 * idle executor (it sleeps on them): once the others took them, every
 * executor returns. */
static atomic_bool release_items;

static void *held_exec_main(void *arg) {
        sq_sched_t *sched = arg;
        sq_sched_item_t *item;
        int done = -1;
        while ((item = sq_sched_next(sched, done))) {
                done = (int)item->priority;
                while (!atomic_load(&release_items))
                        sched_yield();
        }
        return NULL;
}

static void test_shutdown_wakes_executor_held_back_by_slots(void **state) {
        /* 3 executors, 1 reserved: 2 run NORMAL items, the third sleeps
         * while 2 more NORMAL items wait for a slot. */
        sq_sched_t *sched = sq_sched_new(3, 1, AGING_US);
        sq_sched_item_t items[4];
        pthread_t threads[3];
        struct timespec deadline;
        int i;
        (void)state;
        atomic_store(&release_items, false);
        for (i = 0; i < 3; i++)
                pthread_create(&threads[i], NULL, held_exec_main, sched);
        for (i = 0; i < 4; i++)
                sq_sched_push(sched, item_at(items, i, SQ_PRIO_NORMAL));
        while (sq_sched_running(sched) < 2)
                sched_yield();
        sq_sched_shutdown(sched);
        atomic_store(&release_items, true);
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 10;
        for (i = 0; i < 3; i++)
                assert_int_equal(
                    pthread_timedjoin_np(threads[i], NULL, &deadline), 0);
        assert_int_equal(sq_sched_running(sched), 0);
        sq_sched_destroy(sched);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_priority_order_without_aging),
            cmocka_unit_test(test_fifo_within_a_lane),
            cmocka_unit_test(test_aging_lets_low_overtake_high),
            cmocka_unit_test(test_low_never_starves_under_steady_high_load),
            cmocka_unit_test(test_reserved_slots_only_serve_critical),
            cmocka_unit_test(test_blocking_pop_drains_then_returns_null),
            cmocka_unit_test(test_push_list_keeps_order),
            cmocka_unit_test(test_batch_reaches_every_sleeping_executor),
            cmocka_unit_test(test_shutdown_wakes_executor_held_back_by_slots),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
