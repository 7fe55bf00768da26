/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool.c: pool agents: long-lived workers over the framed protocol of
 * docs/worker-protocol.md (see pool.h for the design).
 *
 * DESIGN (on the loop thread)
 *   A worker is STARTING (no hello yet), IDLE, PINGING (a ping is out),
 *   BUSY (a task is out) or STOPPING (retired or failed: stdin closed or
 *   SIGKILLed, waiting for its pidfd). Each worker has one state timer
 *   (hello, pong and task deadlines, kill grace) and one idle timer (next
 *   ping, idle eviction). Tasks wait in a FIFO, each with an acquire
 *   timer. pump() is the one place that matches waiting tasks to idle
 *   workers and starts workers (on demand up to max, min always, never
 *   inside a restart backoff); every state change ends by calling it.
 *   A worker leaves the pool only through its pidfd (reaped there), so
 *   no pid is ever signalled after it was reaped.
 */
#include "pool.h"
#include "log.h"
#include "list.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#define FRAME_HEADER     5     /* u32 length + u8 type */
#define FRAME_SMALL_MAX  65536 /* hello, pong: longest accepted body */
#define FRAME_RESULT_PAD 65536 /* room for the error besides the output */

enum {
        F_HELLO  = 'H',
        F_TASK   = 'T',
        F_RESULT = 'R',
        F_PING   = 'P',
        F_PONG   = 'O',
};

typedef enum {
        W_STARTING,
        W_IDLE,
        W_PINGING,
        W_BUSY,
        W_STOPPING,
} wstate_t;

typedef struct req_s {
        struct req_s *next; /* in the wait FIFO */
        sq_pool_t *pool;
        const sq_task_t *task;
        int64_t deadline_us;
        sq_outcome_cb_t *cb;
        void *opaque;
        int retries;
        bool queued;
        sq_timer_t acquire;
} req_t;

typedef struct worker_s {
        struct worker_s *prev, *next;
        sq_pool_t *pool;
        sq_child_t child;
        wstate_t state;
        sq_iowatch_t w_in, w_out, w_pid;
        sq_timer_t timer;      /* hello, pong, task deadline, kill grace */
        sq_timer_t idle_timer; /* next ping or idle eviction */
        req_t *req;            /* the task it runs (BUSY) */
        uint32_t seq;          /* of the last task or ping sent */
        long tasks;            /* tasks served */
        int64_t idle_since_us;

        /* Frames to the worker */
        unsigned char *wbuf;
        size_t wlen, woff, wsize;

        /* Frame being read */
        unsigned char hdr[FRAME_HEADER];
        size_t hdr_got;
        uint32_t flen; /* body length (type excluded) */
        uint8_t ftype;
        unsigned char *fbuf;
        size_t fkeep; /* most bytes of the body kept */
        size_t fgot;  /* bytes of the body kept */
        size_t fread; /* bytes of the body read (kept or dropped) */
        bool reaped;  /* waitpid() done: never signal the pid again */
        bool out_eof; /* its stdout closed; it should exit now */
} worker_t;

struct sq_pool_s {
        sq_ioloop_t *loop;
        sq_spawn_spec_t *spec;
        char *name;
        char **caps;
        size_t caps_cnt;
        int min, max;
        int64_t acquire_timeout_ms, idle_timeout_ms, ping_interval_ms,
            ping_timeout_ms, start_timeout_ms, recycle_tasks, task_retries,
            backoff_ms, backoff_max_ms, kill_grace_ms;
        size_t output_max;

        /* Loop thread only */
        worker_t *workers;
        int serving; /* workers not STOPPING */
        int starting;
        req_t *wait_head, *wait_tail;
        int waiting;
        int failures; /* consecutive; 0 after a worker answered */
        int64_t next_spawn_us;
        sq_timer_t backoff;
        char last_error[512];
        bool shutting_down;

        /* Statistics (any thread reads) */
        atomic_int st_workers, st_busy, st_waiting;
        atomic_long st_spawned, st_crashed, st_hung, st_recycled, st_evicted,
            st_timed_out, st_retried;

        /* Shutdown: requests not completed and processes not reaped */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        atomic_int pending;
        atomic_int alive;
};

static void pump(sq_pool_t *pool);
static void worker_fail(worker_t *worker, const char *why, atomic_long *stat);

/*
 * Requests
 */

static void req_unqueue(sq_pool_t *pool, req_t *req) {
        req_t *prev = NULL, *r;

        if (!req->queued)
                return;
        for (r = pool->wait_head; r && r != req; r = r->next)
                prev = r; /* O(1) for the head, the common case */
        sq_assert(r == req);
        if (prev)
                prev->next = req->next;
        else
                pool->wait_head = req->next;
        if (pool->wait_tail == req)
                pool->wait_tail = prev;
        req->queued = false;
        req->next   = NULL;
        pool->waiting--;
        atomic_fetch_sub(&pool->st_waiting, 1);
        sq_ioloop_timer_stop(pool->loop, &req->acquire);
}

static void pool_signal(sq_pool_t *pool) {
        pthread_mutex_lock(&pool->lock);
        pthread_cond_broadcast(&pool->cond);
        pthread_mutex_unlock(&pool->lock);
}

/* Hands an outcome to the request's callback and frees it. */
static void req_complete(req_t *req, sq_status_t status, char *error,
                         unsigned char *output, size_t output_len,
                         bool cancelled) {
        sq_pool_t *pool = req->pool;
        sq_outcome_t outcome;

        req_unqueue(pool, req);
        memset(&outcome, 0, sizeof(outcome));
        outcome.status     = status;
        outcome.error      = error;
        outcome.output     = output;
        outcome.output_len = output_len;
        outcome.cancelled  = cancelled;
        req->cb(req->opaque, &outcome);
        sq_free(req);
        if (atomic_fetch_sub(&pool->pending, 1) == 1)
                pool_signal(pool);
}

static char *strf(const char *fmt, ...) SQ_ATTR_PRINTF(1, 2);
static char *strf(const char *fmt, ...) {
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        return sq_strdup(buf);
}

static void on_acquire_timeout(void *opaque) {
        req_t *req      = opaque;
        sq_pool_t *pool = req->pool;

        if (req->deadline_us && sq_clock_us() >= req->deadline_us) {
                req_complete(req, SQ_STATUS_TIMED_OUT,
                             strf("timed out waiting for a worker of pool "
                                  "agent %s",
                                  pool->name),
                             NULL, 0, false);
                return;
        }
        req_complete(req, SQ_STATUS_FAILED,
                     strf("no worker of pool agent %s became free within "
                          "%lld ms (%d workers, at most %d)%s%s",
                          pool->name, (long long)pool->acquire_timeout_ms,
                          pool->serving, pool->max,
                          pool->last_error[0] ? "; last worker problem: " : "",
                          pool->last_error),
                     NULL, 0, false);
}

static void req_enqueue(sq_pool_t *pool, req_t *req, bool front) {
        int64_t due = sq_clock_us() + pool->acquire_timeout_ms * 1000;

        if (req->deadline_us && req->deadline_us < due)
                due = req->deadline_us;
        req->queued = true;
        if (front) {
                req->next       = pool->wait_head;
                pool->wait_head = req;
                if (!pool->wait_tail)
                        pool->wait_tail = req;
        } else {
                req->next = NULL;
                if (pool->wait_tail)
                        pool->wait_tail->next = req;
                else
                        pool->wait_head = req;
                pool->wait_tail = req;
        }
        pool->waiting++;
        atomic_fetch_add(&pool->st_waiting, 1);
        sq_ioloop_timer_start(pool->loop, &req->acquire, due);
}

/*
 * Frames
 */

static void put_u32(unsigned char *p, uint32_t v) {
        p[0] = (unsigned char)(v >> 24);
        p[1] = (unsigned char)(v >> 16);
        p[2] = (unsigned char)(v >> 8);
        p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
               (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static unsigned char *wbuf_reserve(worker_t *worker, size_t len) {
        if (worker->woff == worker->wlen)
                worker->woff = worker->wlen = 0;
        if (worker->wlen + len > worker->wsize) {
                worker->wsize = SQ_MAX(worker->wlen + len, worker->wsize * 2);
                worker->wbuf  = sq_realloc(worker->wbuf, worker->wsize);
        }
        worker->wlen += len;
        return worker->wbuf + worker->wlen - len;
}

static void wbuf_str(worker_t *worker, const char *str) {
        size_t len         = str ? strlen(str) : 0;
        unsigned char *dst = wbuf_reserve(worker, 4 + len);
        put_u32(dst, (uint32_t)len);
        if (len)
                memcpy(dst + 4, str, len);
}

static void on_writable(void *opaque, uint32_t events);

/* Writes what is buffered; watches for room when the pipe is full. */
static void flush_frames(worker_t *worker) {
        sq_pool_t *pool = worker->pool;

        while (worker->woff < worker->wlen) {
                ssize_t w =
                    write(worker->child.in_fd, worker->wbuf + worker->woff,
                          worker->wlen - worker->woff);
                if (w > 0) {
                        worker->woff += (size_t)w;
                        continue;
                }
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN) {
                        if (!worker->w_in.active)
                                sq_ioloop_io_start(pool->loop, &worker->w_in,
                                                   worker->child.in_fd,
                                                   EPOLLOUT, on_writable,
                                                   worker);
                        return;
                }
                worker_fail(worker, "its stdin is closed", &pool->st_crashed);
                return;
        }
        sq_ioloop_io_stop(pool->loop, &worker->w_in);
}

static void on_writable(void *opaque, uint32_t events) {
        (void)events;
        flush_frames(opaque);
}

static void send_task(worker_t *worker, req_t *req) {
        const sq_task_t *task = req->task;
        size_t body = 4 + 4 + strlen(task->id) + 4 + strlen(task->type) + 4 +
                      4 + 4 + task->payload_len;
        int64_t remaining_ms = 0;
        unsigned char *p;
        size_t i;

        for (i = 0; i < task->headers_cnt; i++)
                body += 8 + strlen(task->headers[i].name) +
                        strlen(task->headers[i].value);
        if (req->deadline_us) {
                remaining_ms = (req->deadline_us - sq_clock_us() + 999) / 1000;
                if (remaining_ms < 1)
                        remaining_ms = 1;
        }
        worker->seq++;
        p = wbuf_reserve(worker, FRAME_HEADER + 4);
        put_u32(p, (uint32_t)(body + 1));
        p[4] = F_TASK;
        put_u32(p + 5, worker->seq);
        wbuf_str(worker, task->id);
        wbuf_str(worker, task->type);
        p = wbuf_reserve(worker, 12);
        put_u32(p, (uint32_t)SQ_MIN(remaining_ms, (int64_t)UINT32_MAX));
        put_u32(p + 4, (uint32_t)task->attempt);
        put_u32(p + 8, (uint32_t)task->headers_cnt);
        for (i = 0; i < task->headers_cnt; i++) {
                wbuf_str(worker, task->headers[i].name);
                wbuf_str(worker, task->headers[i].value);
        }
        if (task->payload_len) {
                p = wbuf_reserve(worker, task->payload_len);
                memcpy(p, task->payload, task->payload_len);
        }
        flush_frames(worker);
}

static void send_ping(worker_t *worker) {
        unsigned char *p = wbuf_reserve(worker, FRAME_HEADER + 4);
        worker->seq++;
        put_u32(p, 5);
        p[4] = F_PING;
        put_u32(p + 5, worker->seq);
        flush_frames(worker);
}

/*
 * Worker lifecycle
 */

static void set_state(worker_t *worker, wstate_t state) {
        sq_pool_t *pool = worker->pool;

        if (worker->state == W_BUSY)
                atomic_fetch_sub(&pool->st_busy, 1);
        if (state == W_BUSY)
                atomic_fetch_add(&pool->st_busy, 1);
        if (worker->state == W_STARTING)
                pool->starting--;
        if (state == W_STOPPING && worker->state != W_STOPPING)
                pool->serving--;
        worker->state = state;
}

static void arm_idle(worker_t *worker) {
        sq_pool_t *pool = worker->pool;
        int64_t now = sq_clock_us(), due = 0;

        if (pool->ping_interval_ms)
                due = now + pool->ping_interval_ms * 1000;
        if (pool->idle_timeout_ms && pool->serving > pool->min) {
                int64_t evict =
                    worker->idle_since_us + pool->idle_timeout_ms * 1000;
                if (!due || evict < due)
                        due = evict;
        }
        if (due)
                sq_ioloop_timer_start(pool->loop, &worker->idle_timer, due);
}

static void become_idle(worker_t *worker, bool fresh) {
        set_state(worker, W_IDLE);
        sq_ioloop_timer_stop(worker->pool->loop, &worker->timer);
        if (fresh)
                worker->idle_since_us = sq_clock_us();
        arm_idle(worker);
}

/* Graceful stop: EOF on stdin, SIGKILL after the grace. */
static void retire(worker_t *worker, const char *why) {
        sq_pool_t *pool = worker->pool;

        SQ_LOG(SQ_LOG_INFO, "POOL", "agent=%s worker pid=%d retired: %s",
               pool->name, (int)worker->child.pid, why);
        set_state(worker, W_STOPPING);
        sq_ioloop_timer_stop(pool->loop, &worker->idle_timer);
        sq_ioloop_io_stop(pool->loop, &worker->w_in);
        if (worker->child.in_fd >= 0) {
                close(worker->child.in_fd);
                worker->child.in_fd = -1;
        }
        sq_ioloop_timer_start(pool->loop, &worker->timer,
                              sq_clock_us() + pool->kill_grace_ms * 1000);
}

/* The worker's task goes back to the queue (bounded), or FAILS. */
static void retry_or_fail(worker_t *worker, const char *why) {
        sq_pool_t *pool = worker->pool;
        req_t *req      = worker->req;

        worker->req = NULL;
        if (!req)
                return;
        if (!pool->shutting_down && req->retries < pool->task_retries &&
            (!req->deadline_us || sq_clock_us() < req->deadline_us)) {
                req->retries++;
                atomic_fetch_add(&pool->st_retried, 1);
                SQ_LOG(SQ_LOG_NOTICE, "POOL",
                       "agent=%s task_id=%s: worker pid=%d %s; retrying on "
                       "another worker (retry %d of %lld)",
                       pool->name, req->task->id, (int)worker->child.pid, why,
                       req->retries, (long long)pool->task_retries);
                req_enqueue(pool, req, true);
                return;
        }
        req_complete(req, SQ_STATUS_FAILED,
                     strf("worker pid %d of pool agent %s %s while running "
                          "the task (retried %d %s)",
                          (int)worker->child.pid, pool->name, why, req->retries,
                          req->retries == 1 ? "time" : "times"),
                     NULL, 0, pool->shutting_down);
}

static void note_failure(sq_pool_t *pool, const char *what) {
        int64_t delay = pool->backoff_ms;
        int i;

        pool->failures++;
        for (i = 1; i < pool->failures && delay < pool->backoff_max_ms; i++)
                delay *= 2;
        delay               = SQ_MIN(delay, pool->backoff_max_ms);
        pool->next_spawn_us = sq_clock_us() + delay * 1000;
        snprintf(pool->last_error, sizeof(pool->last_error), "%s", what);
}

/* Kills a misbehaving worker now; the pidfd finishes it. */
static void worker_fail(worker_t *worker, const char *why, atomic_long *stat) {
        sq_pool_t *pool = worker->pool;
        char what[512];

        if (worker->state == W_STOPPING)
                return;
        snprintf(what, sizeof(what), "worker pid %d %s", (int)worker->child.pid,
                 why);
        SQ_LOG(SQ_LOG_WARNING, "POOL", "agent=%s %s; killing and replacing it",
               pool->name, what);
        atomic_fetch_add(stat, 1);
        note_failure(pool, what);
        retry_or_fail(worker, why);
        set_state(worker, W_STOPPING);
        sq_ioloop_timer_stop(pool->loop, &worker->timer);
        sq_ioloop_timer_stop(pool->loop, &worker->idle_timer);
        if (!worker->reaped)
                kill(-worker->child.pid, SIGKILL);
}

static void worker_free(worker_t *worker) {
        sq_pool_t *pool = worker->pool;

        sq_ioloop_io_stop(pool->loop, &worker->w_in);
        sq_ioloop_io_stop(pool->loop, &worker->w_out);
        sq_ioloop_io_stop(pool->loop, &worker->w_pid);
        sq_ioloop_timer_stop(pool->loop, &worker->timer);
        sq_ioloop_timer_stop(pool->loop, &worker->idle_timer);
        sq_child_close(&worker->child);
        SQ_LIST_UNLINK(pool->workers, worker);
        sq_free(worker->wbuf);
        sq_free(worker->fbuf);
        sq_free(worker);
        atomic_fetch_sub(&pool->st_workers, 1);
        if (atomic_fetch_sub(&pool->alive, 1) == 1)
                pool_signal(pool);
}

/* The pidfd: the worker exited. Reap it (after killing what is left of
 * its group, while the zombie still holds the group id). */
static void on_worker_exit(void *opaque, uint32_t events) {
        worker_t *worker = opaque;
        sq_pool_t *pool  = worker->pool;
        int wstatus      = 0;
        char why[128];
        (void)events;

        kill(-worker->child.pid, SIGKILL);
        while (waitpid(worker->child.pid, &wstatus, 0) < 0 && errno == EINTR)
                ;
        worker->reaped = true;
        if (WIFEXITED(wstatus))
                snprintf(why, sizeof(why), "exited with status %d",
                         WEXITSTATUS(wstatus));
        else
                snprintf(why, sizeof(why), "was killed by signal %d (%s)",
                         WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
        if (worker->state != W_STOPPING) {
                /* Unexpected: a crash, or kill -9 from outside. */
                worker_fail(worker, why, &pool->st_crashed);
        } else if (worker->req) {
                retry_or_fail(worker, why);
        }
        SQ_LOG(SQ_LOG_DEBUG, "POOL", "agent=%s worker pid=%d %s", pool->name,
               (int)worker->child.pid, why);
        worker_free(worker);
        pump(pool);
}

static bool hello_ok(worker_t *worker, const unsigned char *body, size_t len,
                     char *why, size_t why_size) {
        sq_pool_t *pool = worker->pool;
        json_t *root, *caps;
        json_error_t jerr;
        bool ok = false;
        size_t i, j;

        root = json_loadb((const char *)body, len, 0, &jerr);
        if (!root || !json_is_object(root)) {
                snprintf(why, why_size,
                         "sent a hello that is not a JSON "
                         "object");
                goto done;
        }
        if (json_integer_value(json_object_get(root, "protocol")) !=
            SQ_POOL_PROTOCOL_VERSION) {
                snprintf(why, why_size,
                         "speaks protocol %lld; swarmq speaks %d",
                         (long long)json_integer_value(
                             json_object_get(root, "protocol")),
                         SQ_POOL_PROTOCOL_VERSION);
                goto done;
        }
        caps = json_object_get(root, "capabilities");
        if (caps && json_is_array(caps)) {
                for (i = 0; i < pool->caps_cnt; i++) {
                        for (j = 0; j < json_array_size(caps); j++) {
                                const char *c =
                                    json_string_value(json_array_get(caps, j));
                                if (c && !strcmp(c, pool->caps[i]))
                                        break;
                        }
                        if (j == json_array_size(caps)) {
                                snprintf(why, why_size,
                                         "does not offer capability \"%s\" "
                                         "of agent.%s.capabilities",
                                         pool->caps[i], pool->name);
                                goto done;
                        }
                }
        }
        SQ_LOG(SQ_LOG_INFO, "POOL",
               "agent=%s worker pid=%d ready: worker=%s version=%s", pool->name,
               (int)worker->child.pid,
               json_string_value(json_object_get(root, "worker"))
                   ? json_string_value(json_object_get(root, "worker"))
                   : "-",
               json_string_value(json_object_get(root, "version"))
                   ? json_string_value(json_object_get(root, "version"))
                   : "-");
        ok = true;
done:
        if (root)
                json_decref(root);
        return ok;
}

/* A result frame for the worker's task. */
static void handle_result(worker_t *worker) {
        sq_pool_t *pool        = worker->pool;
        const unsigned char *p = worker->fbuf, *end = p + worker->fgot;
        req_t *req            = worker->req;
        unsigned char *output = NULL;
        char *error           = NULL;
        size_t output_len, dropped;
        uint32_t elen;
        uint8_t status;

        if (worker->fgot < 9 || get_u32(p) != worker->seq) {
                worker_fail(worker,
                            "sent a result frame for another task or too "
                            "short",
                            &pool->st_crashed);
                return;
        }
        status = p[4];
        elen   = get_u32(p + 5);
        p += 9;
        if (elen > (size_t)(end - p)) {
                worker_fail(worker, "sent a result whose error is cut",
                            &pool->st_crashed);
                return;
        }
        if (elen)
                error = sq_strndup((const char *)p, elen);
        p += elen;
        output_len = (size_t)(end - p);
        dropped    = worker->flen - worker->fgot;
        if (output_len > pool->output_max) {
                dropped += output_len - pool->output_max;
                output_len = pool->output_max;
        }
        output = output_len ? sq_memdup(p, output_len) : NULL;
        if (dropped) {
                char *note = strf("%s%soutput truncated to %zu bytes "
                                  "(agent.%s.output.max.bytes; %zu bytes "
                                  "dropped)",
                                  error ? error : "", error ? "; " : "",
                                  output_len, pool->name, dropped);
                sq_free(error);
                error = note;
        }
        worker->req = NULL;
        worker->tasks++;
        pool->failures = 0;
        sq_ioloop_timer_stop(pool->loop, &worker->timer);
        req_complete(req, status == 0 ? SQ_STATUS_SUCCEEDED : SQ_STATUS_FAILED,
                     status != 0 && !error ? strf("worker reported a failure")
                                           : error,
                     output, output_len, false);
        if (pool->recycle_tasks && worker->tasks >= pool->recycle_tasks) {
                atomic_fetch_add(&pool->st_recycled, 1);
                retire(worker, "recycled after its task limit");
        } else {
                become_idle(worker, true);
        }
}

static void handle_frame(worker_t *worker) {
        sq_pool_t *pool = worker->pool;
        char why[300];

        switch (worker->ftype) {
        case F_HELLO:
                if (worker->state != W_STARTING)
                        break;
                if (!hello_ok(worker, worker->fbuf, worker->fgot, why,
                              sizeof(why))) {
                        worker_fail(worker, why, &pool->st_crashed);
                        return;
                }
                become_idle(worker, true);
                pump(pool);
                return;
        case F_RESULT:
                if (worker->state != W_BUSY)
                        break;
                handle_result(worker);
                pump(pool);
                return;
        case F_PONG:
                if (worker->state != W_PINGING)
                        break;
                if (worker->fgot != 4 || get_u32(worker->fbuf) != worker->seq)
                        break;
                pool->failures = 0;
                become_idle(worker, false);
                pump(pool);
                return;
        default:
                break;
        }
        snprintf(why, sizeof(why),
                 "broke the protocol: frame type 0x%02x unexpected now",
                 worker->ftype);
        worker_fail(worker, why, &pool->st_crashed);
}

/* Feeds bytes from the worker's stdout to the frame parser. */
static void feed(worker_t *worker, const unsigned char *data, size_t len) {
        sq_pool_t *pool = worker->pool;

        while (len && worker->state != W_STOPPING) {
                if (worker->hdr_got < FRAME_HEADER) {
                        size_t take =
                            SQ_MIN(len, FRAME_HEADER - worker->hdr_got);
                        uint32_t flen;
                        memcpy(worker->hdr + worker->hdr_got, data, take);
                        worker->hdr_got += take;
                        data += take;
                        len -= take;
                        if (worker->hdr_got < FRAME_HEADER)
                                return;
                        flen = get_u32(worker->hdr);
                        if (flen < 1) {
                                worker_fail(worker,
                                            "broke the protocol: empty frame",
                                            &pool->st_crashed);
                                return;
                        }
                        worker->ftype = worker->hdr[4];
                        worker->flen  = flen - 1;
                        if (worker->ftype != F_RESULT &&
                            worker->flen > FRAME_SMALL_MAX) {
                                worker_fail(worker,
                                            "broke the protocol: frame too "
                                            "long",
                                            &pool->st_crashed);
                                return;
                        }
                        worker->fkeep = SQ_MIN(
                            worker->flen, pool->output_max + FRAME_RESULT_PAD);
                        worker->fbuf =
                            sq_realloc(worker->fbuf, worker->fkeep + 1);
                        worker->fgot  = 0;
                        worker->fread = 0;
                }
                {
                        size_t take = SQ_MIN(len, worker->flen - worker->fread);
                        size_t keep =
                            worker->fgot < worker->fkeep
                                ? SQ_MIN(take, worker->fkeep - worker->fgot)
                                : 0;
                        if (keep)
                                memcpy(worker->fbuf + worker->fgot, data, keep);
                        worker->fgot += keep;
                        worker->fread += take;
                        data += take;
                        len -= take;
                        if (worker->fread < worker->flen)
                                continue;
                }
                worker->hdr_got = 0;
                handle_frame(worker);
        }
}

static void on_readable(void *opaque, uint32_t events) {
        worker_t *worker = opaque;
        sq_pool_t *pool  = worker->pool;
        unsigned char buf[65536];
        (void)events;

        for (;;) {
                ssize_t r = read(worker->child.out_fd, buf, sizeof(buf));
                if (r > 0) {
                        feed(worker, buf, (size_t)r);
                        if (worker->state == W_STOPPING)
                                return;
                        continue;
                }
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0 && errno == EAGAIN)
                        return;
                /* EOF: the worker closed its stdout (or died: the pidfd
                 * tells which; a retired worker exits this way). */
                sq_ioloop_io_stop(pool->loop, &worker->w_out);
                if (worker->state != W_STOPPING) {
                        /* Usually the exit follows at once and its pidfd
                         * says why; give it a moment before killing. */
                        worker->out_eof = true;
                        sq_ioloop_timer_start(pool->loop, &worker->timer,
                                              sq_clock_us() + 200000);
                }
                return;
        }
}

static void on_worker_timer(void *opaque) {
        worker_t *worker = opaque;
        sq_pool_t *pool  = worker->pool;
        char why[160];
        req_t *req;

        if (worker->out_eof && worker->state != W_STOPPING) {
                worker_fail(worker, "closed its stdout", &pool->st_crashed);
                return;
        }
        switch (worker->state) {
        case W_STARTING:
                snprintf(why, sizeof(why),
                         "sent no hello within %lld ms "
                         "(agent.%s.pool.start.timeout.ms)",
                         (long long)pool->start_timeout_ms, pool->name);
                worker_fail(worker, why, &pool->st_hung);
                break;
        case W_PINGING:
                snprintf(why, sizeof(why),
                         "did not answer a ping within %lld ms "
                         "(agent.%s.pool.ping.timeout.ms)",
                         (long long)pool->ping_timeout_ms, pool->name);
                worker_fail(worker, why, &pool->st_hung);
                break;
        case W_BUSY:
                /* The task's own deadline: not the worker's fault, no
                 * retry, no backoff; the worker is replaced. */
                req         = worker->req;
                worker->req = NULL;
                atomic_fetch_add(&pool->st_timed_out, 1);
                req_complete(req, SQ_STATUS_TIMED_OUT,
                             strf("timed out: worker pid %d of pool agent %s "
                                  "killed (SIGTERM, then SIGKILL after %lld "
                                  "ms) and replaced",
                                  (int)worker->child.pid, pool->name,
                                  (long long)pool->kill_grace_ms),
                             NULL, 0, false);
                set_state(worker, W_STOPPING);
                kill(-worker->child.pid, SIGTERM);
                sq_ioloop_timer_start(pool->loop, &worker->timer,
                                      sq_clock_us() +
                                          pool->kill_grace_ms * 1000);
                pump(pool);
                break;
        case W_STOPPING:
        case W_IDLE:
                kill(-worker->child.pid, SIGKILL);
                break;
        }
}

static void on_idle_timer(void *opaque) {
        worker_t *worker = opaque;
        sq_pool_t *pool  = worker->pool;
        int64_t now      = sq_clock_us();

        if (worker->state != W_IDLE)
                return;
        if (pool->idle_timeout_ms && pool->serving > pool->min &&
            now >= worker->idle_since_us + pool->idle_timeout_ms * 1000) {
                atomic_fetch_add(&pool->st_evicted, 1);
                retire(worker, "idle above pool.min");
                return;
        }
        if (pool->ping_interval_ms) {
                set_state(worker, W_PINGING);
                sq_ioloop_timer_start(pool->loop, &worker->timer,
                                      now + pool->ping_timeout_ms * 1000);
                send_ping(worker);
                return;
        }
        arm_idle(worker);
}

static void spawn_worker(sq_pool_t *pool) {
        worker_t *worker = sq_calloc(1, sizeof(*worker));
        char errstr[512];

        worker->pool = pool;
        sq_timer_init(&worker->timer, on_worker_timer, worker);
        sq_timer_init(&worker->idle_timer, on_idle_timer, worker);
        if (sq_spawn(pool->spec, false, &worker->child, errstr,
                     sizeof(errstr)) != SQ_OK) {
                SQ_LOG(SQ_LOG_ERR, "POOL", "agent=%s cannot start a worker: %s",
                       pool->name, errstr);
                note_failure(pool, errstr);
                sq_free(worker);
                return;
        }
        /* The worker never gets our stdin's end closed by a retired
         * sibling: every fd of ours is CLOEXEC in the child. */
        worker->state = W_STARTING;
        pool->starting++;
        pool->serving++;
        SQ_LIST_PUSH(pool->workers, worker);
        atomic_fetch_add(&pool->alive, 1);
        atomic_fetch_add(&pool->st_workers, 1);
        atomic_fetch_add(&pool->st_spawned, 1);
        sq_ioloop_io_start(pool->loop, &worker->w_pid, worker->child.pidfd,
                           EPOLLIN, on_worker_exit, worker);
        sq_ioloop_io_start(pool->loop, &worker->w_out, worker->child.out_fd,
                           EPOLLIN, on_readable, worker);
        sq_ioloop_timer_start(pool->loop, &worker->timer,
                              sq_clock_us() + pool->start_timeout_ms * 1000);
        SQ_LOG(SQ_LOG_DEBUG, "POOL", "agent=%s started worker pid=%d",
               pool->name, (int)worker->child.pid);
}

static void on_backoff(void *opaque) {
        pump(opaque);
}

/* Matches waiting tasks with idle workers, then starts the workers that
 * are needed (min, or demand up to max) unless backing off. */
static void pump(sq_pool_t *pool) {
        worker_t *worker;
        int64_t now;
        int want;

        if (pool->shutting_down)
                return;
        for (worker = pool->workers; worker && pool->wait_head;
             worker = worker->next) {
                req_t *req;
                if (worker->state != W_IDLE)
                        continue;
                req = pool->wait_head;
                req_unqueue(pool, req);
                sq_ioloop_timer_stop(pool->loop, &worker->idle_timer);
                set_state(worker, W_BUSY);
                worker->req = req;
                if (req->deadline_us)
                        sq_ioloop_timer_start(pool->loop, &worker->timer,
                                              req->deadline_us);
                send_task(worker, req);
        }
        want =
            SQ_MAX(pool->min - pool->serving, pool->waiting - pool->starting);
        want = SQ_MIN(want, pool->max - pool->serving);
        if (want <= 0)
                return;
        now = sq_clock_us();
        if (now < pool->next_spawn_us) {
                if (!sq_timer_armed(&pool->backoff))
                        sq_ioloop_timer_start(pool->loop, &pool->backoff,
                                              pool->next_spawn_us);
                return;
        }
        while (want-- > 0) {
                int failures = pool->failures;
                spawn_worker(pool);
                if (pool->failures != failures) {
                        /* Could not start one: back off before the next. */
                        sq_ioloop_timer_start(pool->loop, &pool->backoff,
                                              pool->next_spawn_us);
                        return;
                }
        }
}

/*
 * Public API
 */

sq_pool_t *sq_pool_new(sq_ioloop_t *loop, const sq_agent_conf_t *aconf,
                       char *const *envp) {
        sq_pool_t *pool = sq_calloc(1, sizeof(*pool));
        size_t i;

        pool->loop     = loop;
        pool->spec     = sq_spawn_spec_new(aconf, envp);
        pool->name     = sq_strdup(aconf->name);
        pool->caps_cnt = aconf->capabilities_cnt;
        pool->caps     = sq_calloc(pool->caps_cnt + 1, sizeof(char *));
        for (i = 0; i < pool->caps_cnt; i++)
                pool->caps[i] = sq_strdup(aconf->capabilities[i]);
        pool->min                = aconf->pool_min;
        pool->max                = aconf->pool_max;
        pool->acquire_timeout_ms = aconf->pool_acquire_timeout_ms;
        pool->idle_timeout_ms    = aconf->pool_idle_timeout_ms;
        pool->ping_interval_ms   = aconf->pool_ping_interval_ms;
        pool->ping_timeout_ms    = aconf->pool_ping_timeout_ms;
        pool->start_timeout_ms   = aconf->pool_start_timeout_ms;
        pool->recycle_tasks      = aconf->pool_recycle_tasks;
        pool->task_retries       = aconf->pool_task_retries;
        pool->backoff_ms         = aconf->pool_backoff_ms;
        pool->backoff_max_ms     = aconf->pool_backoff_max_ms;
        pool->kill_grace_ms      = aconf->kill_grace_ms;
        pool->output_max         = (size_t)aconf->output_max_bytes;
        sq_timer_init(&pool->backoff, on_backoff, pool);
        pthread_mutex_init(&pool->lock, NULL);
        pthread_cond_init(&pool->cond, NULL);
        return pool;
}

static void start_cb(void *opaque) {
        pump(opaque);
}

void sq_pool_start(sq_pool_t *pool) {
        sq_ioloop_post(pool->loop, start_cb, pool);
}

static void submit_cb(void *opaque) {
        req_t *req      = opaque;
        sq_pool_t *pool = req->pool;

        if (pool->shutting_down) {
                req_complete(req, SQ_STATUS_FAILED,
                             sq_strdup("instance stopping"), NULL, 0, true);
                return;
        }
        req_enqueue(pool, req, false);
        pump(pool);
}

void sq_pool_submit(sq_pool_t *pool, const sq_task_t *task, int64_t deadline_us,
                    sq_outcome_cb_t *cb, void *opaque) {
        req_t *req = sq_calloc(1, sizeof(*req));

        req->pool        = pool;
        req->task        = task;
        req->deadline_us = deadline_us;
        req->cb          = cb;
        req->opaque      = opaque;
        sq_timer_init(&req->acquire, on_acquire_timeout, req);
        atomic_fetch_add(&pool->pending, 1);
        sq_ioloop_post(pool->loop, submit_cb, req);
}

static void shutdown_cb(void *opaque) {
        sq_pool_t *pool = opaque;
        worker_t *worker;

        pool->shutting_down = true;
        sq_ioloop_timer_stop(pool->loop, &pool->backoff);
        while (pool->wait_head)
                req_complete(pool->wait_head, SQ_STATUS_FAILED,
                             sq_strdup("instance stopping"), NULL, 0, true);
        for (worker = pool->workers; worker; worker = worker->next) {
                if (worker->req) {
                        req_t *req  = worker->req;
                        worker->req = NULL;
                        req_complete(req, SQ_STATUS_FAILED,
                                     sq_strdup("instance stopping"), NULL, 0,
                                     true);
                        set_state(worker, W_STOPPING);
                        kill(-worker->child.pid, SIGKILL);
                } else if (worker->state != W_STOPPING) {
                        retire(worker, "instance stopping");
                }
        }
}

typedef struct cancel_req_s {
        sq_pool_t *pool;
        char task_id[]; /* NUL-terminated */
} cancel_req_t;

/* The task cancelled by its id ends CANCELLED: taken out of the wait
 * FIFO, or its worker killed and replaced, as on a task timeout. */
static void cancel_cb(void *opaque) {
        cancel_req_t *creq = opaque;
        sq_pool_t *pool    = creq->pool;
        worker_t *worker;
        req_t *req, *next;

        for (req = pool->wait_head; req; req = next) {
                next = req->next;
                if (sq_task_named(req->task, creq->task_id))
                        req_complete(req, SQ_STATUS_CANCELLED,
                                     strf("cancelled by its id while waiting "
                                          "for a worker of pool agent %s",
                                          pool->name),
                                     NULL, 0, false);
        }
        for (worker = pool->workers; worker; worker = worker->next) {
                if (worker->state != W_BUSY || !worker->req ||
                    !sq_task_named(worker->req->task, creq->task_id))
                        continue;
                req         = worker->req;
                worker->req = NULL;
                req_complete(req, SQ_STATUS_CANCELLED,
                             strf("cancelled by its id: worker pid %d of pool "
                                  "agent %s killed and replaced",
                                  (int)worker->child.pid, pool->name),
                             NULL, 0, false);
                /* As a timed-out task's worker (on_worker_timer), at once. */
                set_state(worker, W_STOPPING);
                kill(-worker->child.pid, SIGKILL);
                sq_ioloop_timer_start(pool->loop, &worker->timer,
                                      sq_clock_us() +
                                          pool->kill_grace_ms * 1000);
        }
        pump(pool);
        sq_free(creq);
}

void sq_pool_cancel(sq_pool_t *pool, const char *task_id) {
        size_t len         = strlen(task_id);
        cancel_req_t *creq = sq_malloc(sizeof(*creq) + len + 1);

        creq->pool = pool;
        memcpy(creq->task_id, task_id, len + 1);
        sq_ioloop_post(pool->loop, cancel_cb, creq);
}

void sq_pool_shutdown(sq_pool_t *pool) {
        sq_ioloop_call(pool->loop, shutdown_cb, pool);
        pthread_mutex_lock(&pool->lock);
        while (atomic_load(&pool->pending) > 0 || atomic_load(&pool->alive) > 0)
                pthread_cond_wait(&pool->cond, &pool->lock);
        pthread_mutex_unlock(&pool->lock);
}

void sq_pool_destroy(sq_pool_t *pool) {
        size_t i;

        if (!pool)
                return;
        sq_assert(!pool->workers);
        sq_spawn_spec_destroy(pool->spec);
        for (i = 0; i < pool->caps_cnt; i++)
                sq_free(pool->caps[i]);
        sq_free(pool->caps);
        sq_free(pool->name);
        pthread_cond_destroy(&pool->cond);
        pthread_mutex_destroy(&pool->lock);
        sq_free(pool);
}

void sq_pool_stats(sq_pool_t *pool, sq_pool_stats_t *stats) {
        stats->workers   = atomic_load(&pool->st_workers);
        stats->busy      = atomic_load(&pool->st_busy);
        stats->waiting   = atomic_load(&pool->st_waiting);
        stats->spawned   = atomic_load(&pool->st_spawned);
        stats->crashed   = atomic_load(&pool->st_crashed);
        stats->hung      = atomic_load(&pool->st_hung);
        stats->recycled  = atomic_load(&pool->st_recycled);
        stats->evicted   = atomic_load(&pool->st_evicted);
        stats->timed_out = atomic_load(&pool->st_timed_out);
        stats->retried   = atomic_load(&pool->st_retried);
}
