/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ioloop.h: the I/O loop: one thread that sleeps in epoll_wait(2) on the
 * file descriptors of child processes (pipes, pidfds), a timer heap and
 * an eventfd through which any thread posts work to it.
 *
 * DESIGN
 *   Thread: everything registered with the loop (fd watches, timers) is
 *   touched only on the loop thread. Other threads talk to it through
 *   sq_ioloop_post(): a mutex-guarded FIFO of callbacks plus an eventfd
 *   written when the FIFO goes from empty to non-empty (libuv's
 *   src/unix/async.c is the model: EINTR retried, EAGAIN on a full
 *   eventfd is fine since a wake-up is already pending). The loop reads
 *   the eventfd before it takes the FIFO, so a post is never missed.
 *
 *   Watches and timers are intrusive (embedded in the caller's object):
 *   registering allocates nothing. Removing a watch while its events are
 *   still in the current epoll batch is safe: the loop forgets them.
 *   Timers are a binary min-heap keyed by their monotonic deadline.
 *
 *   Ownership: the loop owns its thread, epoll fd, eventfd and the posted
 *   callbacks not run yet (freed without running by destroy). Callers own
 *   the watch and timer structs and must remove them before freeing.
 */
#ifndef SQ_IOLOOP_H
#define SQ_IOLOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"

typedef struct sq_ioloop_s sq_ioloop_t;

/** A callback run on the loop thread. */
typedef void(sq_ioloop_fn_t)(void *opaque);
/** An fd callback: @p events are EPOLLIN/EPOLLOUT/EPOLLHUP/EPOLLERR. */
typedef void(sq_ioloop_io_cb_t)(void *opaque, uint32_t events);

/** An fd watch, embedded in its owner. Loop thread only. */
typedef struct sq_iowatch_s {
        int fd;
        uint32_t events;
        sq_ioloop_io_cb_t *cb;
        void *opaque;
        bool active;
} sq_iowatch_t;

/** A one-shot timer, embedded in its owner. Loop thread only. */
typedef struct sq_timer_s {
        int64_t due_us; /**< sq_clock_us() deadline while armed */
        long heap_idx;  /**< position in the heap, -1 when not armed */
        sq_ioloop_fn_t *cb;
        void *opaque;
} sq_timer_t;

/**
 * @brief Creates the loop (not started).
 * @returns the loop (caller owns, sq_ioloop_destroy()) or NULL with
 *          @p errstr naming the failed system call.
 */
sq_ioloop_t *sq_ioloop_new(char *errstr, size_t errstr_size);

/** @brief Starts the loop thread. */
sq_err_t sq_ioloop_start(sq_ioloop_t *loop, char *errstr, size_t errstr_size);

/**
 * @brief Stops the loop thread after the callbacks posted before this
 *        call have run, and joins it. Not from the loop thread. A no-op
 *        when not started.
 */
void sq_ioloop_stop(sq_ioloop_t *loop);

/** @brief Stops (if needed) and frees the loop; NULL is a no-op. */
void sq_ioloop_destroy(sq_ioloop_t *loop);

/**
 * @brief Runs @p fn(@p opaque) on the loop thread, after every callback
 *        posted before it. Any thread (from the loop thread it runs in
 *        the current iteration, after the current callback returns).
 * @locks the post queue mutex, briefly.
 */
void sq_ioloop_post(sq_ioloop_t *loop, sq_ioloop_fn_t *fn, void *opaque);

/**
 * @brief Runs @p fn(@p opaque) on the loop thread and waits until it
 *        returned. Never from the loop thread; for set-up and shutdown
 *        only (it blocks the caller). Runs @p fn inline when the loop is
 *        not running.
 */
void sq_ioloop_call(sq_ioloop_t *loop, sq_ioloop_fn_t *fn, void *opaque);

/** @returns true on the loop thread. */
bool sq_ioloop_on_loop(const sq_ioloop_t *loop);

/**
 * @brief Starts watching @p fd for @p events. Loop thread only.
 * @param watch caller-owned, borrowed until sq_ioloop_io_stop().
 */
sq_err_t sq_ioloop_io_start(sq_ioloop_t *loop, sq_iowatch_t *watch, int fd,
                            uint32_t events, sq_ioloop_io_cb_t *cb,
                            void *opaque);
/** @brief Changes the watched events. Loop thread only. */
sq_err_t sq_ioloop_io_modify(sq_ioloop_t *loop, sq_iowatch_t *watch,
                             uint32_t events);
/** @brief Stops watching (the fd is not closed); a no-op when inactive. */
void sq_ioloop_io_stop(sq_ioloop_t *loop, sq_iowatch_t *watch);

/** @brief Initialises a timer (not armed). */
void sq_timer_init(sq_timer_t *timer, sq_ioloop_fn_t *cb, void *opaque);
/**
 * @brief Arms (or re-arms) @p timer to fire once at @p due_us
 *        (sq_clock_us()). Loop thread only.
 */
void sq_ioloop_timer_start(sq_ioloop_t *loop, sq_timer_t *timer,
                           int64_t due_us);
/** @brief Disarms a timer; a no-op when not armed. Loop thread only. */
void sq_ioloop_timer_stop(sq_ioloop_t *loop, sq_timer_t *timer);
/** @returns true while @p timer is armed. */
bool sq_timer_armed(const sq_timer_t *timer);

#endif /* SQ_IOLOOP_H */
