/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ioloop.c: the I/O loop thread: epoll, a timer heap and a posted-callback
 * FIFO woken by an eventfd (see ioloop.h for the design).
 */
#include "ioloop.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define EVENTS_MAX 64

typedef struct post_s {
        struct post_s *next;
        sq_ioloop_fn_t *fn;
        void *opaque;
} post_t;

struct sq_ioloop_s {
        int epfd;
        int wakefd;
        pthread_t thread;
        bool started;
        atomic_bool stopping;

        pthread_mutex_t lock; /* guards the post FIFO */
        post_t *head;
        post_t *tail;

        /* Loop thread only */
        sq_timer_t **heap;
        size_t heap_cnt;
        size_t heap_size;
        struct epoll_event events[EVENTS_MAX];
        int events_cur; /* index being served in events[] */
        int events_cnt;
        sq_iowatch_t wake_watch;
};

sq_ioloop_t *sq_ioloop_new(char *errstr, size_t errstr_size) {
        sq_ioloop_t *loop = sq_calloc(1, sizeof(*loop));

        loop->epfd   = -1;
        loop->wakefd = -1;
        pthread_mutex_init(&loop->lock, NULL);
        if ((loop->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
                sq_errstr_set(errstr, errstr_size,
                              "I/O loop: epoll_create1() failed: %s",
                              strerror(errno));
                goto fail;
        }
        if ((loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
                sq_errstr_set(errstr, errstr_size,
                              "I/O loop: eventfd() failed: %s",
                              strerror(errno));
                goto fail;
        }
        return loop;
fail:
        sq_ioloop_destroy(loop);
        return NULL;
}

/*
 * Timer heap (loop thread)
 */

static bool timer_before(const sq_timer_t *a, const sq_timer_t *b) {
        return a->due_us < b->due_us;
}

static void heap_set(sq_ioloop_t *loop, size_t idx, sq_timer_t *timer) {
        loop->heap[idx] = timer;
        timer->heap_idx = (long)idx;
}

static void heap_up(sq_ioloop_t *loop, size_t idx) {
        sq_timer_t *timer = loop->heap[idx];
        while (idx > 0) {
                size_t parent = (idx - 1) / 2;
                if (!timer_before(timer, loop->heap[parent]))
                        break;
                heap_set(loop, idx, loop->heap[parent]);
                idx = parent;
        }
        heap_set(loop, idx, timer);
}

static void heap_down(sq_ioloop_t *loop, size_t idx) {
        sq_timer_t *timer = loop->heap[idx];
        for (;;) {
                size_t child = 2 * idx + 1;
                if (child >= loop->heap_cnt)
                        break;
                if (child + 1 < loop->heap_cnt &&
                    timer_before(loop->heap[child + 1], loop->heap[child]))
                        child++;
                if (!timer_before(loop->heap[child], timer))
                        break;
                heap_set(loop, idx, loop->heap[child]);
                idx = child;
        }
        heap_set(loop, idx, timer);
}

void sq_timer_init(sq_timer_t *timer, sq_ioloop_fn_t *cb, void *opaque) {
        timer->due_us   = 0;
        timer->heap_idx = -1;
        timer->cb       = cb;
        timer->opaque   = opaque;
}

bool sq_timer_armed(const sq_timer_t *timer) {
        return timer->heap_idx >= 0;
}

void sq_ioloop_timer_stop(sq_ioloop_t *loop, sq_timer_t *timer) {
        size_t idx;
        sq_timer_t *last;

        if (timer->heap_idx < 0)
                return;
        idx             = (size_t)timer->heap_idx;
        last            = loop->heap[--loop->heap_cnt];
        timer->heap_idx = -1;
        if (last == timer)
                return;
        heap_set(loop, idx, last);
        heap_up(loop, idx);
        heap_down(loop, (size_t)last->heap_idx);
}

void sq_ioloop_timer_start(sq_ioloop_t *loop, sq_timer_t *timer,
                           int64_t due_us) {
        sq_ioloop_timer_stop(loop, timer);
        if (loop->heap_cnt == loop->heap_size) {
                loop->heap_size = loop->heap_size ? loop->heap_size * 2 : 64;
                loop->heap      = sq_realloc(loop->heap,
                                             loop->heap_size * sizeof(*loop->heap));
        }
        timer->due_us = due_us;
        heap_set(loop, loop->heap_cnt++, timer);
        heap_up(loop, (size_t)timer->heap_idx);
}

/* Fires every timer due by now; returns the wait until the next one, in
 * ms for epoll_wait (-1 = none). */
static int run_timers(sq_ioloop_t *loop) {
        for (;;) {
                sq_timer_t *timer;
                int64_t now;

                if (!loop->heap_cnt)
                        return -1;
                timer = loop->heap[0];
                now   = sq_clock_us();
                if (timer->due_us > now) {
                        int64_t ms = (timer->due_us - now + 999) / 1000;
                        return (int)SQ_MIN(ms, 60000);
                }
                sq_ioloop_timer_stop(loop, timer);
                timer->cb(timer->opaque); /* may re-arm or free it */
        }
}

/*
 * fd watches (loop thread)
 */

sq_err_t sq_ioloop_io_start(sq_ioloop_t *loop, sq_iowatch_t *watch, int fd,
                            uint32_t events, sq_ioloop_io_cb_t *cb,
                            void *opaque) {
        struct epoll_event ev;

        memset(&ev, 0, sizeof(ev));
        watch->fd     = fd;
        watch->events = events;
        watch->cb     = cb;
        watch->opaque = opaque;
        ev.events     = events;
        ev.data.ptr   = watch;
        if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                SQ_LOG(SQ_LOG_ERR, "IOLOOP", "epoll_ctl(ADD, fd=%d): %s", fd,
                       strerror(errno));
                watch->active = false;
                return SQ_ERR_IO;
        }
        watch->active = true;
        return SQ_OK;
}

sq_err_t sq_ioloop_io_modify(sq_ioloop_t *loop, sq_iowatch_t *watch,
                             uint32_t events) {
        struct epoll_event ev;

        sq_assert(watch->active);
        if (watch->events == events)
                return SQ_OK;
        memset(&ev, 0, sizeof(ev));
        ev.events   = events;
        ev.data.ptr = watch;
        if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, watch->fd, &ev) < 0) {
                SQ_LOG(SQ_LOG_ERR, "IOLOOP", "epoll_ctl(MOD, fd=%d): %s",
                       watch->fd, strerror(errno));
                return SQ_ERR_IO;
        }
        watch->events = events;
        return SQ_OK;
}

void sq_ioloop_io_stop(sq_ioloop_t *loop, sq_iowatch_t *watch) {
        int i;

        if (!watch->active)
                return;
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, watch->fd, NULL);
        watch->active = false;
        /* Forget its events still waiting in this batch: the owner may
         * free the watch as soon as this returns. */
        for (i = loop->events_cur + 1; i < loop->events_cnt; i++) {
                if (loop->events[i].data.ptr == watch)
                        loop->events[i].data.ptr = NULL;
        }
}

/*
 * Posting (any thread)
 */

static void wake(sq_ioloop_t *loop) {
        uint64_t one = 1;
        for (;;) {
                if (write(loop->wakefd, &one, sizeof(one)) >= 0)
                        return;
                if (errno == EINTR)
                        continue;
                /* EAGAIN: the counter is saturated, a wake-up is pending. */
                if (errno != EAGAIN)
                        SQ_LOG(SQ_LOG_ERR, "IOLOOP",
                               "cannot wake the I/O loop: %s", strerror(errno));
                return;
        }
}

void sq_ioloop_post(sq_ioloop_t *loop, sq_ioloop_fn_t *fn, void *opaque) {
        post_t *post = sq_malloc(sizeof(*post));
        bool was_empty;

        post->next   = NULL;
        post->fn     = fn;
        post->opaque = opaque;
        pthread_mutex_lock(&loop->lock);
        was_empty = !loop->head;
        if (loop->tail)
                loop->tail->next = post;
        else
                loop->head = post;
        loop->tail = post;
        pthread_mutex_unlock(&loop->lock);
        if (was_empty)
                wake(loop);
}

typedef struct call_s {
        sq_ioloop_fn_t *fn;
        void *opaque;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool done;
} call_t;

static void call_run(void *opaque) {
        call_t *call = opaque;
        call->fn(call->opaque);
        pthread_mutex_lock(&call->lock);
        call->done = true;
        pthread_cond_signal(&call->cond);
        pthread_mutex_unlock(&call->lock);
}

void sq_ioloop_call(sq_ioloop_t *loop, sq_ioloop_fn_t *fn, void *opaque) {
        call_t call;

        if (!loop->started) {
                fn(opaque);
                return;
        }
        sq_assert(!sq_ioloop_on_loop(loop));
        memset(&call, 0, sizeof(call));
        call.fn     = fn;
        call.opaque = opaque;
        pthread_mutex_init(&call.lock, NULL);
        pthread_cond_init(&call.cond, NULL);
        sq_ioloop_post(loop, call_run, &call);
        pthread_mutex_lock(&call.lock);
        while (!call.done)
                pthread_cond_wait(&call.cond, &call.lock);
        pthread_mutex_unlock(&call.lock);
        pthread_cond_destroy(&call.cond);
        pthread_mutex_destroy(&call.lock);
}

bool sq_ioloop_on_loop(const sq_ioloop_t *loop) {
        return loop->started && pthread_equal(pthread_self(), loop->thread);
}

/* Runs the posted callbacks, including those they post themselves. */
static void run_posts(sq_ioloop_t *loop) {
        for (;;) {
                post_t *post;

                pthread_mutex_lock(&loop->lock);
                post = loop->head;
                if (post) {
                        loop->head = post->next;
                        if (!loop->head)
                                loop->tail = NULL;
                }
                pthread_mutex_unlock(&loop->lock);
                if (!post)
                        return;
                post->fn(post->opaque);
                sq_free(post);
        }
}

static void wake_cb(void *opaque, uint32_t events) {
        sq_ioloop_t *loop = opaque;
        uint64_t cnt;
        (void)events;
        /* Read first, then take the FIFO: a post after this read writes
         * the eventfd again. */
        while (read(loop->wakefd, &cnt, sizeof(cnt)) < 0 && errno == EINTR)
                ;
        run_posts(loop);
}

static void *loop_main(void *arg) {
        sq_ioloop_t *loop = arg;

        while (!atomic_load(&loop->stopping)) {
                int timeout = run_timers(loop);
                int n =
                    epoll_wait(loop->epfd, loop->events, EVENTS_MAX, timeout);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        SQ_LOG(SQ_LOG_CRIT, "IOLOOP", "epoll_wait() failed: %s",
                               strerror(errno));
                        break;
                }
                loop->events_cnt = n;
                for (loop->events_cur = 0; loop->events_cur < n;
                     loop->events_cur++) {
                        struct epoll_event *ev =
                            &loop->events[loop->events_cur];
                        sq_iowatch_t *watch = ev->data.ptr;
                        if (watch && watch->active)
                                watch->cb(watch->opaque, ev->events);
                }
                loop->events_cnt = 0;
                loop->events_cur = 0;
        }
        return NULL;
}

sq_err_t sq_ioloop_start(sq_ioloop_t *loop, char *errstr, size_t errstr_size) {
        int err;

        if (sq_ioloop_io_start(loop, &loop->wake_watch, loop->wakefd, EPOLLIN,
                               wake_cb, loop) != SQ_OK) {
                sq_errstr_set(errstr, errstr_size,
                              "I/O loop: cannot watch its eventfd");
                return SQ_ERR_IO;
        }
        err = pthread_create(&loop->thread, NULL, loop_main, loop);
        if (err) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot start the I/O loop thread: %s",
                              strerror(err));
                return SQ_ERR_IO;
        }
        loop->started = true;
        return SQ_OK;
}

static void stop_cb(void *opaque) {
        sq_ioloop_t *loop = opaque;
        atomic_store(&loop->stopping, true);
}

void sq_ioloop_stop(sq_ioloop_t *loop) {
        if (!loop->started)
                return;
        sq_assert(!sq_ioloop_on_loop(loop));
        sq_ioloop_post(loop, stop_cb, loop);
        pthread_join(loop->thread, NULL);
        loop->started = false;
}

void sq_ioloop_destroy(sq_ioloop_t *loop) {
        post_t *post;

        if (!loop)
                return;
        sq_ioloop_stop(loop);
        while ((post = loop->head)) {
                loop->head = post->next;
                sq_free(post);
        }
        if (loop->epfd >= 0)
                close(loop->epfd);
        if (loop->wakefd >= 0)
                close(loop->wakefd);
        sq_free(loop->heap);
        pthread_mutex_destroy(&loop->lock);
        sq_free(loop);
}
