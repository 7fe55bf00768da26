/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ioloop.c: the I/O loop: posted callbacks run in order on the loop
 * thread (also when posted by many threads at once), timers fire in
 * deadline order and can be stopped, fd watches deliver readiness, and a
 * watch stopped while its event is in the current batch is not called.
 * Every wait is on a condition (sq_ioloop_call), never a sleep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ioloop.h"

typedef struct rec_s {
        sq_ioloop_t *loop;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int order[64];
        int cnt;
        bool on_loop;
} rec_t;

static void rec_init(rec_t *rec, sq_ioloop_t *loop) {
        memset(rec, 0, sizeof(*rec));
        rec->loop    = loop;
        rec->on_loop = true;
        pthread_mutex_init(&rec->lock, NULL);
        pthread_cond_init(&rec->cond, NULL);
}

static void rec_term(rec_t *rec) {
        pthread_cond_destroy(&rec->cond);
        pthread_mutex_destroy(&rec->lock);
}

static void rec_add(rec_t *rec, int value) {
        pthread_mutex_lock(&rec->lock);
        if (rec->cnt < 64)
                rec->order[rec->cnt] = value;
        rec->cnt++;
        rec->on_loop &= sq_ioloop_on_loop(rec->loop);
        pthread_cond_broadcast(&rec->cond);
        pthread_mutex_unlock(&rec->lock);
}

static void rec_wait(rec_t *rec, int cnt) {
        pthread_mutex_lock(&rec->lock);
        while (rec->cnt < cnt)
                pthread_cond_wait(&rec->cond, &rec->lock);
        pthread_mutex_unlock(&rec->lock);
}

typedef struct item_s {
        rec_t *rec;
        int value;
        sq_timer_t timer;
} item_t;

static void item_cb(void *opaque) {
        item_t *item = opaque;
        rec_add(item->rec, item->value);
}

static sq_ioloop_t *loop_new_started(void) {
        char errstr[256];
        sq_ioloop_t *loop = sq_ioloop_new(errstr, sizeof(errstr));
        assert_non_null(loop);
        assert_int_equal(sq_ioloop_start(loop, errstr, sizeof(errstr)), SQ_OK);
        return loop;
}

static void test_post_order(void **state) {
        sq_ioloop_t *loop = loop_new_started();
        item_t items[10];
        rec_t rec;
        int i;
        (void)state;

        rec_init(&rec, loop);
        assert_false(sq_ioloop_on_loop(loop));
        for (i = 0; i < 10; i++) {
                items[i].rec   = &rec;
                items[i].value = i;
                sq_ioloop_post(loop, item_cb, &items[i]);
        }
        rec_wait(&rec, 10);
        for (i = 0; i < 10; i++)
                assert_int_equal(rec.order[i], i);
        assert_true(rec.on_loop);
        sq_ioloop_destroy(loop);
        rec_term(&rec);
}

typedef struct poster_s {
        sq_ioloop_t *loop;
        item_t *items;
        int cnt;
} poster_t;

static void *poster_main(void *arg) {
        poster_t *poster = arg;
        int i;
        for (i = 0; i < poster->cnt; i++)
                sq_ioloop_post(poster->loop, item_cb, &poster->items[i]);
        return NULL;
}

static void test_post_from_many_threads(void **state) {
        enum { THREADS = 4, PER = 5000 };
        sq_ioloop_t *loop = loop_new_started();
        item_t *items     = calloc(THREADS * PER, sizeof(*items));
        pthread_t threads[THREADS];
        poster_t posters[THREADS];
        rec_t rec;
        int i;
        (void)state;

        rec_init(&rec, loop);
        for (i = 0; i < THREADS * PER; i++) {
                items[i].rec   = &rec;
                items[i].value = i;
        }
        for (i = 0; i < THREADS; i++) {
                posters[i].loop  = loop;
                posters[i].items = items + i * PER;
                posters[i].cnt   = PER;
                assert_int_equal(
                    pthread_create(&threads[i], NULL, poster_main, &posters[i]),
                    0);
        }
        for (i = 0; i < THREADS; i++)
                pthread_join(threads[i], NULL);
        /* Every post runs exactly once: none lost to a missed wake-up. */
        rec_wait(&rec, THREADS * PER);
        assert_int_equal(rec.cnt, THREADS * PER);
        assert_true(rec.on_loop);
        sq_ioloop_destroy(loop);
        free(items);
        rec_term(&rec);
}

/* Arms timers out of order (and stops one) on the loop thread. */
typedef struct timers_s {
        sq_ioloop_t *loop;
        item_t *items;
        int cnt;
        int stop_idx;
} timers_t;

static void arm_timers(void *opaque) {
        timers_t *t = opaque;
        int64_t now = sq_clock_us();
        int i;
        for (i = 0; i < t->cnt; i++) {
                sq_timer_init(&t->items[i].timer, item_cb, &t->items[i]);
                /* Deadlines in reverse order of arming: 2 ms apart. */
                sq_ioloop_timer_start(t->loop, &t->items[i].timer,
                                      now + (t->cnt - i) * 2000);
                assert_true(sq_timer_armed(&t->items[i].timer));
        }
        sq_ioloop_timer_stop(t->loop, &t->items[t->stop_idx].timer);
        assert_false(sq_timer_armed(&t->items[t->stop_idx].timer));
        /* Re-arming moves a timer: item 0 (the last) becomes the first. */
        sq_ioloop_timer_start(t->loop, &t->items[0].timer, now);
}

static void test_timers_fire_in_deadline_order(void **state) {
        sq_ioloop_t *loop = loop_new_started();
        item_t items[8];
        timers_t t;
        rec_t rec;
        int i;
        (void)state;

        rec_init(&rec, loop);
        for (i = 0; i < 8; i++) {
                items[i].rec   = &rec;
                items[i].value = i;
        }
        t.loop     = loop;
        t.items    = items;
        t.cnt      = 8;
        t.stop_idx = 3;
        sq_ioloop_call(loop, arm_timers, &t);
        rec_wait(&rec, 7);
        /* 0 first (re-armed to now), then 7, 6, 5, 4, 2, 1; 3 stopped. */
        assert_int_equal(rec.order[0], 0);
        assert_int_equal(rec.order[1], 7);
        assert_int_equal(rec.order[2], 6);
        assert_int_equal(rec.order[3], 5);
        assert_int_equal(rec.order[4], 4);
        assert_int_equal(rec.order[5], 2);
        assert_int_equal(rec.order[6], 1);
        sq_ioloop_destroy(loop); /* joins: nothing else fires */
        assert_int_equal(rec.cnt, 7);
        rec_term(&rec);
}

/* Two pipes made readable at once; the first callback stops the other
 * watch, whose event is already in the same epoll batch. */
typedef struct pipes_s pipes_t;
typedef struct side_s {
        pipes_t *p;
        int idx;
} side_t;

struct pipes_s {
        sq_ioloop_t *loop;
        int fds[2][2];
        sq_iowatch_t watch[2];
        side_t side[2];
        int calls[2];
        rec_t *rec;
};

static void pipe_cb_stop_other(void *opaque, uint32_t events) {
        side_t *side = opaque;
        pipes_t *p   = side->p;
        char buf[8];
        (void)events;
        assert_true(read(p->fds[side->idx][0], buf, sizeof(buf)) > 0);
        p->calls[side->idx]++;
        sq_ioloop_io_stop(p->loop, &p->watch[1 - side->idx]);
        rec_add(p->rec, side->idx);
}

static void add_watches(void *opaque) {
        pipes_t *p = opaque;
        int i;
        for (i = 0; i < 2; i++)
                assert_int_equal(sq_ioloop_io_start(
                                     p->loop, &p->watch[i], p->fds[i][0],
                                     EPOLLIN, pipe_cb_stop_other, &p->side[i]),
                                 SQ_OK);
        /* Both readable before the loop's next epoll_wait. */
        assert_int_equal(write(p->fds[0][1], "a", 1), 1);
        assert_int_equal(write(p->fds[1][1], "b", 1), 1);
}

static void nothing(void *opaque) {
        (void)opaque;
}

static void test_watch_stopped_in_batch_is_not_called(void **state) {
        sq_ioloop_t *loop = loop_new_started();
        pipes_t p;
        rec_t rec;
        int i;
        (void)state;

        memset(&p, 0, sizeof(p));
        rec_init(&rec, loop);
        p.loop = loop;
        p.rec  = &rec;
        for (i = 0; i < 2; i++) {
                assert_int_equal(pipe(p.fds[i]), 0);
                p.side[i].p   = &p;
                p.side[i].idx = i;
        }
        sq_ioloop_call(loop, add_watches, &p);
        rec_wait(&rec, 1);
        /* A round trip through the loop: any pending event was served. */
        sq_ioloop_call(loop, nothing, NULL);
        assert_int_equal(p.calls[0] + p.calls[1], 1);
        sq_ioloop_destroy(loop);
        for (i = 0; i < 2; i++) {
                close(p.fds[i][0]);
                close(p.fds[i][1]);
        }
        rec_term(&rec);
}

static void test_call_without_thread_runs_inline(void **state) {
        char errstr[256];
        sq_ioloop_t *loop = sq_ioloop_new(errstr, sizeof(errstr));
        item_t item;
        rec_t rec;
        (void)state;

        rec_init(&rec, loop);
        rec.on_loop = false;
        item.rec    = &rec;
        item.value  = 42;
        sq_ioloop_call(loop, item_cb, &item);
        assert_int_equal(rec.cnt, 1);
        assert_int_equal(rec.order[0], 42);
        sq_ioloop_destroy(loop);
        rec_term(&rec);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_post_order),
            cmocka_unit_test(test_post_from_many_threads),
            cmocka_unit_test(test_timers_fire_in_deadline_order),
            cmocka_unit_test(test_watch_stopped_in_batch_is_not_called),
            cmocka_unit_test(test_call_without_thread_runs_inline),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
