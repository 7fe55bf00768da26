/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool_vs_exec.c: per-task cost of a pool agent (a task frame to a
 * long-lived worker and its result back) against an exec agent (a fork and
 * exec per task), side by side in one run, through the same I/O loop code
 * the daemon uses, with no Kafka in the way.
 *
 *   pool_vs_exec -w BUILD/consumer/swarmq-worker [-n TASKS] [-c COMMAND]
 *
 * DESIGN
 *   One task at a time (submit, wait for the done callback on a condvar,
 *   submit the next), so each figure is a round trip: for the pool, the
 *   post to the loop, the frame write, the worker's read/echo/write and
 *   the result frame read; for exec, fork, exec, the payload on stdin,
 *   the output on stdout and the reaping. Prints mean, p50 and p99 in
 *   microseconds, one line per agent kind, machine-readable.
 */
#include "exec.h"
#include "ioloop.h"
#include "pool.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct waiter_s {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool done;
        sq_status_t status;
} waiter_t;

static void done_cb(void *opaque, sq_outcome_t *outcome) {
        waiter_t *w = opaque;
        sq_free(outcome->output);
        sq_free(outcome->error);
        pthread_mutex_lock(&w->lock);
        w->status = outcome->status;
        w->done   = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
}

static void wait_done(waiter_t *w) {
        pthread_mutex_lock(&w->lock);
        while (!w->done)
                pthread_cond_wait(&w->cond, &w->lock);
        w->done = false;
        pthread_mutex_unlock(&w->lock);
}

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

static void report(const char *what, int64_t *us, int n, int failed) {
        double sum = 0;
        int i;
        for (i = 0; i < n; i++)
                sum += (double)us[i];
        qsort(us, (size_t)n, sizeof(*us), cmp_i64);
        printf("%s tasks=%d failed=%d mean_us=%.1f p50_us=%lld p99_us=%lld\n",
               what, n, failed, sum / n, (long long)us[n / 2],
               (long long)us[(n * 99) / 100]);
}

/* Runs n tasks one after the other; kind 0 = pool, 1 = exec. */
static void run(int kind, void *agent, const sq_task_t *task, int n,
                int64_t *us, int *failed) {
        waiter_t w;
        int i;

        memset(&w, 0, sizeof(w));
        pthread_mutex_init(&w.lock, NULL);
        pthread_cond_init(&w.cond, NULL);
        *failed = 0;
        for (i = 0; i < n; i++) {
                int64_t t0 = sq_clock_us();
                if (kind == 0)
                        sq_pool_submit(agent, task, 0, done_cb, &w);
                else
                        sq_exec_submit(agent, task, 0, done_cb, &w);
                wait_done(&w);
                us[i] = sq_clock_us() - t0;
                *failed += w.status != SQ_STATUS_SUCCEEDED;
        }
        pthread_cond_destroy(&w.cond);
        pthread_mutex_destroy(&w.lock);
}

int main(int argc, char **argv) {
        const char *worker = NULL, *command = "/bin/cat";
        char *pool_argv[2] = {NULL, NULL};
        char *exec_argv[2] = {NULL, NULL};
        char *allow[2]     = {"PATH", NULL};
        sq_agent_conf_t pconf, econf;
        sq_ioloop_t *loop;
        sq_pool_t *pool;
        sq_exec_t *ex;
        sq_task_t *task;
        int64_t *us;
        char errstr[256];
        int n = 20000, opt, failed;

        while ((opt = getopt(argc, argv, "w:n:c:")) != -1) {
                switch (opt) {
                case 'w':
                        worker = optarg;
                        break;
                case 'n':
                        n = atoi(optarg) > 0 ? atoi(optarg) : n;
                        break;
                case 'c':
                        command = optarg;
                        break;
                default:
                        fprintf(stderr,
                                "usage: %s -w WORKER [-n TASKS] "
                                "[-c EXEC_COMMAND]\n",
                                argv[0]);
                        return 2;
                }
        }
        if (!worker) {
                fprintf(stderr, "%s: -w path/to/swarmq-worker is required\n",
                        argv[0]);
                return 2;
        }
        pool_argv[0] = (char *)worker;
        exec_argv[0] = (char *)command;

        memset(&pconf, 0, sizeof(pconf));
        pconf.name                    = "bench";
        pconf.kind                    = SQ_AGENT_POOL;
        pconf.command                 = pool_argv;
        pconf.command_cnt             = 1;
        pconf.env_allow               = allow;
        pconf.env_allow_cnt           = 1;
        pconf.kill_grace_ms           = 1000;
        pconf.output_max_bytes        = 1 << 20;
        pconf.pool_min                = 1;
        pconf.pool_max                = 1;
        pconf.pool_acquire_timeout_ms = 60000;
        pconf.pool_start_timeout_ms   = 10000;
        pconf.pool_ping_timeout_ms    = 5000;
        pconf.pool_backoff_ms         = 100;
        pconf.pool_backoff_max_ms     = 1000;
        econf                         = pconf;
        econf.kind                    = SQ_AGENT_EXEC;
        econf.command                 = exec_argv;
        econf.stderr_max_bytes        = 4096;

        task              = sq_task_new();
        task->id          = sq_strdup("bench-1");
        task->type        = sq_strdup("bench");
        task->payload     = (unsigned char *)sq_strdup("echo 0123456789abcdef");
        task->payload_len = strlen((char *)task->payload);

        loop = sq_ioloop_new(errstr, sizeof(errstr));
        if (!loop || sq_ioloop_start(loop, errstr, sizeof(errstr))) {
                fprintf(stderr, "%s\n", errstr);
                return 1;
        }
        pool = sq_pool_new(loop, &pconf, environ);
        ex   = sq_exec_new(loop, &econf, environ);
        sq_pool_start(pool);
        us = calloc((size_t)n, sizeof(*us));

        /* Warm-up: the first pool task waits for the worker's hello. */
        run(0, pool, task, 100, us, &failed);
        run(0, pool, task, n, us, &failed);
        report("pool", us, n, failed);
        /* exec costs ~1000x more per task: a tenth of the count is plenty. */
        run(1, ex, task, n / 10 > 100 ? n / 10 : 100, us, &failed);
        report("exec", us, n / 10 > 100 ? n / 10 : 100, failed);

        sq_pool_shutdown(pool);
        sq_exec_shutdown(ex);
        sq_ioloop_stop(loop);
        sq_pool_destroy(pool);
        sq_exec_destroy(ex);
        sq_ioloop_destroy(loop);
        sq_task_destroy(task);
        free(us);
        return 0;
}
