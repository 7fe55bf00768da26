/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_eventring.c: the bounded event ring behind GET /events: sequence
 * numbers, wrap-around and what a reader that fell behind is told, field
 * truncation, the arm/notify hand-shake (with membarrier, without it, and
 * with it failing after start), concurrent pushers, and a reader lapped by
 * them (no torn event, nothing lost uncounted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "eventring.h"

static void push_n(sq_eventring_t *ring, int n) {
        char id[32];
        int i;
        for (i = 0; i < n; i++) {
                snprintf(id, sizeof(id), "t-%d", i);
                sq_eventring_push(ring, 1000 + i, "received", id, NULL, NULL);
        }
}

/* Each row: capacity, events pushed, reader's cursor, batch size, and
 * what the read must return. */
static const struct {
        size_t capacity;
        int pushed;
        uint64_t after;
        size_t max;
        size_t want_cnt;
        uint64_t want_first;
        uint64_t want_missed;
} read_cases[] = {
    {8, 0, 0, 8, 0, 0, 0},     /* empty ring */
    {8, 5, 0, 8, 5, 1, 0},     /* all of it */
    {8, 5, 3, 8, 2, 4, 0},     /* after a cursor */
    {8, 5, 5, 8, 0, 0, 0},     /* up to date */
    {8, 5, 2, 2, 2, 3, 0},     /* batch smaller than what is there */
    {8, 20, 0, 8, 8, 13, 12},  /* wrapped: 12 overwritten */
    {8, 20, 11, 8, 8, 13, 1},  /* one behind the oldest */
    {8, 20, 12, 8, 8, 13, 0},  /* exactly at the oldest */
    {8, 20, 99, 8, 0, 0, 0},   /* a cursor from the future */
    {1, 3, 0, 4, 1, 3, 2},     /* capacity one */
    {16, 16, 0, 16, 16, 1, 0}, /* exactly full */
};

static void test_read_cases(void **state) {
        sq_ring_event_t out[16];
        size_t c;
        (void)state;

        for (c = 0; c < SQ_ARRAY_SIZE(read_cases); c++) {
                sq_eventring_t *ring = sq_eventring_new(read_cases[c].capacity);
                uint64_t missed      = 77;
                size_t cnt, i;

                push_n(ring, read_cases[c].pushed);
                assert_int_equal(sq_eventring_last_seq(ring),
                                 read_cases[c].pushed);
                cnt = sq_eventring_read(ring, read_cases[c].after, out,
                                        read_cases[c].max, &missed);
                if (cnt != read_cases[c].want_cnt ||
                    missed != read_cases[c].want_missed)
                        fail_msg("case %zu: %zu events, %llu missed; "
                                 "expected %zu, %llu",
                                 c, cnt, (unsigned long long)missed,
                                 read_cases[c].want_cnt,
                                 (unsigned long long)read_cases[c].want_missed);
                for (i = 0; i < cnt; i++) {
                        char id[32];
                        uint64_t seq = read_cases[c].want_first + i;
                        assert_int_equal(out[i].seq, seq);
                        /* The event pushed as the seq-th one. */
                        snprintf(id, sizeof(id), "t-%d", (int)seq - 1);
                        assert_string_equal(out[i].task_id, id);
                        assert_int_equal(out[i].at_ms, 1000 + (int)seq - 1);
                        assert_string_equal(out[i].type, "received");
                        assert_string_equal(out[i].agent, "");
                }
                sq_eventring_destroy(ring);
        }
        sq_eventring_destroy(NULL);
}

static void test_fields_are_truncated(void **state) {
        sq_eventring_t *ring = sq_eventring_new(4);
        char longid[1000], longdetail[2000];
        sq_ring_event_t out[1];
        uint64_t missed;
        (void)state;

        memset(longid, 'i', sizeof(longid) - 1);
        longid[sizeof(longid) - 1] = '\0';
        memset(longdetail, 'd', sizeof(longdetail) - 1);
        longdetail[sizeof(longdetail) - 1] = '\0';
        sq_eventring_push(ring, 5, "a-type-name-longer-than-32-bytes-x", longid,
                          "agent", longdetail);
        assert_int_equal(sq_eventring_read(ring, 0, out, 1, &missed), 1);
        assert_int_equal(strlen(out[0].type), SQ_EVENTRING_TYPE_MAX - 1);
        assert_int_equal(strlen(out[0].task_id), SQ_EVENTRING_ID_MAX - 1);
        assert_int_equal(strlen(out[0].detail), SQ_EVENTRING_DETAIL_MAX - 1);
        assert_string_equal(out[0].agent, "agent");
        sq_eventring_destroy(ring);
}

typedef struct notified_s {
        atomic_int calls;
} notified_t;

static void on_notify(void *opaque) {
        notified_t *n = opaque;
        atomic_fetch_add(&n->calls, 1);
}

static void test_arm_notifies_once(void **state) {
        sq_eventring_t *ring = sq_eventring_new(8);
        notified_t n         = {0};
        (void)state;

        sq_eventring_set_notify(ring, on_notify, &n);
        push_n(ring, 2); /* not armed: no call */
        assert_int_equal(atomic_load(&n.calls), 0);

        /* A reader behind the newest event is not armed: it must read. */
        assert_false(sq_eventring_arm(ring, 1));
        push_n(ring, 1);
        assert_int_equal(atomic_load(&n.calls), 0);

        /* Up to date: armed; the next push notifies, once. */
        assert_true(sq_eventring_arm(ring, 3));
        push_n(ring, 3);
        assert_int_equal(atomic_load(&n.calls), 1);

        /* Arming again after catching up works again. */
        assert_true(sq_eventring_arm(ring, sq_eventring_last_seq(ring)));
        push_n(ring, 1);
        assert_int_equal(atomic_load(&n.calls), 2);
        sq_eventring_destroy(ring);
}

/* Four pushers and one reader: every sequence number exactly once, in
 * order, each event intact (its fields belong together). */
#define PUSHERS    4
#define PER_PUSHER 20000

static void *pusher(void *arg) {
        sq_eventring_t *ring = arg;
        char id[32];
        int i;
        for (i = 0; i < PER_PUSHER; i++) {
                snprintf(id, sizeof(id), "%d", i);
                sq_eventring_push(ring, i, "started", id, id, id);
        }
        return NULL;
}

static void test_concurrent_pushers(void **state) {
        sq_eventring_t *ring = sq_eventring_new(PUSHERS * PER_PUSHER);
        static sq_ring_event_t out[256];
        pthread_t threads[PUSHERS];
        uint64_t cursor = 0, missed, total_missed = 0;
        int t;
        (void)state;

        for (t = 0; t < PUSHERS; t++)
                assert_int_equal(
                    pthread_create(&threads[t], NULL, pusher, ring), 0);
        while (cursor < PUSHERS * PER_PUSHER) {
                size_t cnt = sq_eventring_read(ring, cursor, out,
                                               SQ_ARRAY_SIZE(out), &missed);
                size_t i;
                total_missed += missed;
                for (i = 0; i < cnt; i++) {
                        char at[32];
                        assert_int_equal(out[i].seq, cursor + 1);
                        snprintf(at, sizeof(at), "%lld",
                                 (long long)out[i].at_ms);
                        assert_string_equal(out[i].task_id, at);
                        assert_string_equal(out[i].agent, at);
                        assert_string_equal(out[i].detail, at);
                        cursor = out[i].seq;
                }
        }
        for (t = 0; t < PUSHERS; t++)
                pthread_join(threads[t], NULL);
        assert_int_equal(total_missed, 0);
        assert_int_equal(sq_eventring_last_seq(ring), PUSHERS * PER_PUSHER);
        sq_eventring_destroy(ring);
}

/* A small ring under four pushers and a reader at once: the ring laps
 * the reader (and can lap a descheduled pusher) all the time. Every event
 * read must be whole (its four strings name the same pusher and count:
 * a torn copy would mix two events), the reader's sequences contiguous
 * once the missed ones are added, each pusher's events in the order it
 * pushed them, and every event either read or counted missed. */
#define LAP_CAPACITY 16
#define LAP_PER      50000

static void *lap_pusher(void *arg) {
        sq_eventring_t **args = arg;
        sq_eventring_t *ring  = args[0];
        int who               = (int)(intptr_t)args[1];
        char id[32], agent[32], detail[64];
        int i;

        for (i = 0; i < LAP_PER; i++) {
                snprintf(id, sizeof(id), "p%d-%d", who, i);
                snprintf(agent, sizeof(agent), "a%d-%d", who, i);
                snprintf(detail, sizeof(detail), "detail of p%d-%d", who, i);
                sq_eventring_push(ring, (int64_t)who * 1000000 + i, "started",
                                  id, agent, detail);
        }
        return NULL;
}

static void test_lapped_reader_sees_whole_events(void **state) {
        sq_eventring_t *ring = sq_eventring_new(LAP_CAPACITY);
        sq_eventring_t *args[PUSHERS][2];
        static sq_ring_event_t out[8];
        pthread_t threads[PUSHERS];
        int64_t last_of[PUSHERS];
        uint64_t cursor = 0, missed, total_missed = 0, total_read = 0;
        const uint64_t total = (uint64_t)PUSHERS * LAP_PER;
        int t;
        (void)state;

        for (t = 0; t < PUSHERS; t++) {
                last_of[t] = -1;
                args[t][0] = ring;
                args[t][1] = (sq_eventring_t *)(intptr_t)t;
                assert_int_equal(
                    pthread_create(&threads[t], NULL, lap_pusher, args[t]), 0);
        }
        while (cursor < total) {
                size_t cnt = sq_eventring_read(ring, cursor, out,
                                               SQ_ARRAY_SIZE(out), &missed);
                size_t i;
                total_missed += missed;
                cursor += missed;
                for (i = 0; i < cnt; i++) {
                        char want[64];
                        int who   = (int)(out[i].at_ms / 1000000);
                        int64_t n = out[i].at_ms % 1000000;
                        assert_int_equal(out[i].seq, cursor + 1);
                        assert_true(who >= 0 && who < PUSHERS);
                        snprintf(want, sizeof(want), "p%d-%lld", who,
                                 (long long)n);
                        assert_string_equal(out[i].task_id, want);
                        snprintf(want, sizeof(want), "a%d-%lld", who,
                                 (long long)n);
                        assert_string_equal(out[i].agent, want);
                        snprintf(want, sizeof(want), "detail of p%d-%lld", who,
                                 (long long)n);
                        assert_string_equal(out[i].detail, want);
                        assert_string_equal(out[i].type, "started");
                        assert_true(n > last_of[who]);
                        last_of[who] = n;
                        cursor       = out[i].seq;
                        total_read++;
                }
                if (!cnt && !missed)
                        sched_yield();
        }
        for (t = 0; t < PUSHERS; t++)
                pthread_join(threads[t], NULL);
        assert_int_equal(sq_eventring_last_seq(ring), total);
        assert_int_equal(total_read + total_missed, total);
        assert_true(total_read > 0);
        /* Up to date: nothing more, and arming says so. */
        assert_int_equal(
            sq_eventring_read(ring, cursor, out, SQ_ARRAY_SIZE(out), &missed),
            0);
        assert_int_equal(missed, 0);
        assert_true(sq_eventring_arm(ring, cursor));
        sq_eventring_destroy(ring);
}

/* A pusher in lock-step with a reader that parks whenever it is up to
 * date: the pusher pushes one event and waits until the reader has read
 * it, so each event's notify is the only thing that can wake the parked
 * reader. A lost notify leaves it parked with an event waiting: it waits
 * 5 s for it, then fails. Run with whichever barrier the ring uses
 * (membarrier where the kernel has it). */
#define NOTIFY_EVENTS 20000

typedef struct {
        sq_eventring_t *ring;
        atomic_ulong read; /* the reader's cursor */
        atomic_bool failed;
} lockstep_t;

static void on_notify_post(void *opaque) {
        sem_post(opaque);
}

static void *lockstep_pusher(void *arg) {
        lockstep_t *ls = arg;
        unsigned long i;
        for (i = 1; i <= NOTIFY_EVENTS && !atomic_load(&ls->failed); i++) {
                sq_eventring_push(ls->ring, (int64_t)i, "started", "t", NULL,
                                  NULL);
                while (atomic_load(&ls->read) < i && !atomic_load(&ls->failed))
                        sched_yield();
        }
        return NULL;
}

static void run_lockstep(void) {
        static sq_ring_event_t out[8];
        lockstep_t ls   = {.ring = sq_eventring_new(64)};
        uint64_t cursor = 0, missed;
        pthread_t thread;
        int parks = 0;
        sem_t sem;

        assert_int_equal(sem_init(&sem, 0, 0), 0);
        sq_eventring_set_notify(ls.ring, on_notify_post, &sem);
        assert_int_equal(pthread_create(&thread, NULL, lockstep_pusher, &ls),
                         0);
        while (cursor < NOTIFY_EVENTS) {
                size_t cnt = sq_eventring_read(ls.ring, cursor, out,
                                               SQ_ARRAY_SIZE(out), &missed);
                struct timespec until;
                assert_int_equal(missed, 0);
                if (cnt) {
                        cursor = out[cnt - 1].seq;
                        atomic_store(&ls.read, cursor);
                        continue;
                }
                if (!sq_eventring_arm(ls.ring, cursor))
                        continue; /* something came meanwhile */
                parks++;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += 5;
                if (sem_timedwait(&sem, &until) != 0) {
                        atomic_store(&ls.failed, true);
                        pthread_join(thread, NULL);
                        fail_msg(
                            "parked at %llu for 5 s without a notify; "
                            "the ring's newest is %llu",
                            (unsigned long long)cursor,
                            (unsigned long long)sq_eventring_last_seq(ls.ring));
                }
        }
        pthread_join(thread, NULL);
        assert_true(parks > 0); /* the hand-shake was exercised */
        sem_destroy(&sem);
        sq_eventring_destroy(ls.ring);
}

static void test_parked_reader_is_always_woken(void **state) {
        (void)state;
        run_lockstep(); /* membarrier where the kernel has it */
}

/* Stand-ins for membarrier(2). */
static long membarrier_real(int cmd) {
        return syscall(__NR_membarrier, cmd, 0, 0);
}

static long membarrier_missing(int cmd) {
        (void)cmd;
        errno = ENOSYS;
        return -1;
}

/* Registering works, expedited barriers fail: with @c fail_every N, every
 * Nth of them after ring creation's first (0: all of them). The others
 * are real barriers. */
static atomic_int expedited_calls, fail_every;

static long membarrier_failing(int cmd) {
        int n;
        if (cmd != MEMBARRIER_CMD_PRIVATE_EXPEDITED)
                return membarrier_real(cmd);
        n = atomic_fetch_add(&expedited_calls, 1);
        if (n > 0 && (atomic_load(&fail_every) == 0 ||
                      n % atomic_load(&fail_every) == 0)) {
                errno = ENOMEM;
                return -1;
        }
        return membarrier_real(cmd);
}

/* Without membarrier (old kernel, seccomp) both sides fence. */
static void test_parked_reader_woken_without_membarrier(void **state) {
        (void)state;
        sq_eventring_set_membarrier(membarrier_missing);
        run_lockstep();
        sq_eventring_set_membarrier(NULL);
}

/* A barrier that fails after creation chose membarrier: arm reports
 * "read again" (no notify is promised), never "armed" without one. */
static void test_arm_refused_when_barrier_fails(void **state) {
        sq_eventring_t *ring;
        notified_t n = {0};
        (void)state;

        if (membarrier_real(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0)
                skip(); /* no membarrier here: the fence path, tested above */
        atomic_store(&expedited_calls, 0);
        atomic_store(&fail_every, 0);
        sq_eventring_set_membarrier(membarrier_failing);
        ring = sq_eventring_new(8);
        sq_eventring_set_notify(ring, on_notify, &n);
        push_n(ring, 1);
        assert_false(sq_eventring_arm(ring, 1)); /* up to date, yet refused */
        assert_false(sq_eventring_arm(ring, 1));
        sq_eventring_destroy(ring);

        /* Every third barrier failing: the parked reader is still always
         * woken (it reads again whenever arm refuses). */
        atomic_store(&expedited_calls, 0);
        atomic_store(&fail_every, 3);
        run_lockstep();
        assert_true(atomic_load(&expedited_calls) > 3);
        sq_eventring_set_membarrier(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_read_cases),
            cmocka_unit_test(test_fields_are_truncated),
            cmocka_unit_test(test_arm_notifies_once),
            cmocka_unit_test(test_concurrent_pushers),
            cmocka_unit_test(test_lapped_reader_sees_whole_events),
            cmocka_unit_test(test_parked_reader_is_always_woken),
            cmocka_unit_test(test_parked_reader_woken_without_membarrier),
            cmocka_unit_test(test_arm_refused_when_barrier_fails),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
