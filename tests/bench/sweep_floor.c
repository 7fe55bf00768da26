/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sweep_floor: the key sweep's floor as this machine gives it right now
 * (tests/bench/keysweep.sh). The same sleeps as sweep_gen's records (same
 * count, keys, seed and maximum), run by CONCURRENCY bare threads in the
 * same ordering, with no Kafka, no decoding, no results: what remains is
 * the kernel's wake-up of a sleeping thread (timer slack, and the wait for
 * a core on a loaded machine) and a mutex hand-off. The sweep's arithmetic
 * floor assumes a sleep of N ms takes exactly N ms; on a shared 2-core
 * machine a 2 ms sleep often takes 2.1 to 3 ms, so a mode can be well
 * above that floor while its consumer adds next to nothing.
 *
 *   sweep_floor -o partition|key|unordered -c CONCURRENCY [-n COUNT]
 *               [-K KEYS] [-m MAX_MS] [-S SEED]
 *
 * Prints one line:
 *   sweep_floor ordering=O concurrency=C count=N keys=K seconds=S
 *     sleep_overshoot_us=U measured_floor_s=F
 * seconds: from the first task taken to the last one finished;
 * sleep_overshoot_us: the mean time a sleep took beyond what it asked;
 * measured_floor_s: the sweep's floor formula (the sum for partition,
 * the sum / CONCURRENCY for unordered, for key the larger of the longest
 * key chain and the sum / CONCURRENCY) applied to the sleeps as long as
 * they took here instead of as long as they asked: what no consumer can
 * beat at this moment on this machine, with no hand-off at all.
 *
 * DESIGN
 *   Every record is admitted at the start, in offset order, as swarmq's
 *   admission window (10,000 by default) and parallel-consumer's buffer
 *   admit the sweep's 10,000: the first record of each key goes to a
 *   ready FIFO, each later one waits behind its key's previous record and
 *   joins the FIFO when that one finishes (partition: one key; unordered:
 *   no waiting). Workers take from the FIFO under one mutex and sleep with
 *   nanosleep(2), as swarmq's sleep handler and Java's Thread.sleep do.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "sweep_records.h"

typedef struct {
        int64_t ms;
        int64_t key;
        int64_t next_of_key; /* the key's next record, -1: none */
        int64_t took_ns;     /* how long its sleep took (0 for 0 ms) */
} task_t;

static task_t *tasks;
static int64_t *ready; /* FIFO of task indexes */
static int64_t ready_head, ready_tail, finished, count;
static int64_t first_ns, last_ns, overshoot_ns;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond  = PTHREAD_COND_INITIALIZER;

static int64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *worker(void *arg) {
        int64_t mine = 0;

        (void)arg;
        pthread_mutex_lock(&lock);
        for (;;) {
                int64_t i, t0, t1;
                struct timespec ts;

                while (ready_head == ready_tail && finished < count)
                        pthread_cond_wait(&cond, &lock);
                if (ready_head == ready_tail)
                        break;
                i  = ready[ready_head++];
                t0 = now_ns();
                if (!first_ns)
                        first_ns = t0;
                pthread_mutex_unlock(&lock);

                if (tasks[i].ms > 0) {
                        ts.tv_sec  = (time_t)(tasks[i].ms / 1000);
                        ts.tv_nsec = (long)(tasks[i].ms % 1000) * 1000000;
                        nanosleep(&ts, NULL);
                }
                t1 = now_ns();
                if (tasks[i].ms > 0) {
                        tasks[i].took_ns = t1 - t0;
                        mine += t1 - t0 - tasks[i].ms * 1000000;
                }

                pthread_mutex_lock(&lock);
                if (tasks[i].next_of_key >= 0) {
                        ready[ready_tail++] = tasks[i].next_of_key;
                        pthread_cond_signal(&cond);
                }
                if (++finished == count) {
                        last_ns = t1;
                        pthread_cond_broadcast(&cond);
                }
        }
        overshoot_ns += mine;
        pthread_mutex_unlock(&lock);
        return NULL;
}

/* keysweep.sh's floor_of() with each sleep as long as it took here: the
 * sum for partition, the sum / CONCURRENCY for unordered, for key the
 * larger of the longest key chain (the sum of one key's sleeps) and the
 * sum / CONCURRENCY. */
static double measured_floor_s(const char *ordering, int64_t conc,
                               int64_t keys) {
        int64_t *chain = sq_calloc((size_t)keys, sizeof(*chain));
        int64_t sum = 0, longest = 0, i;
        double floor_ns;

        for (i = 0; i < count; i++) {
                sum += tasks[i].took_ns;
                chain[tasks[i].key] += tasks[i].took_ns;
                if (chain[tasks[i].key] > longest)
                        longest = chain[tasks[i].key];
        }
        sq_free(chain);
        floor_ns = (double)sum / (double)conc;
        if (!strcmp(ordering, "partition"))
                floor_ns = (double)sum;
        else if (!strcmp(ordering, "key") && (double)longest > floor_ns)
                floor_ns = (double)longest;
        return floor_ns / 1e9;
}

int main(int argc, char **argv) {
        int64_t keys = 10, max_ms = 5, seed = 42, conc = 0, i, positive = 0;
        int64_t *last_of_key;
        const char *ordering = NULL;
        sweep_records_t records;
        pthread_t *threads;
        int opt;

        count = 10000;
        while ((opt = getopt(argc, argv, "o:c:n:K:m:S:h")) != -1) {
                switch (opt) {
                case 'o':
                        ordering = optarg;
                        break;
                case 'c':
                        if (sq_parse_int64(optarg, 1, 4096, &conc))
                                goto usage;
                        break;
                case 'n':
                        if (sq_parse_int64(optarg, 1, 10000000, &count))
                                goto usage;
                        break;
                case 'K':
                        if (sq_parse_int64(optarg, 1, 10000000, &keys))
                                goto usage;
                        break;
                case 'm':
                        if (sq_parse_int64(optarg, 0, 86400000, &max_ms))
                                goto usage;
                        break;
                case 'S':
                        if (sq_parse_int64(optarg, 1, INT64_MAX, &seed))
                                goto usage;
                        break;
                default:
                        goto usage;
                }
        }
        if (!ordering || !conc || optind != argc ||
            (strcmp(ordering, "partition") && strcmp(ordering, "key") &&
             strcmp(ordering, "unordered")))
                goto usage;

        tasks       = sq_calloc((size_t)count, sizeof(*tasks));
        ready       = sq_calloc((size_t)count, sizeof(*ready));
        last_of_key = sq_calloc((size_t)keys, sizeof(*last_of_key));
        for (i = 0; i < keys; i++)
                last_of_key[i] = -1;
        sweep_records_init(&records, seed, keys, max_ms);
        for (i = 0; i < count; i++) {
                int64_t k;
                sweep_records_next(&records, &tasks[i].ms, &tasks[i].key);
                tasks[i].next_of_key = -1;
                positive += tasks[i].ms > 0;
                k = !strcmp(ordering, "partition") ? 0 : tasks[i].key;
                if (!strcmp(ordering, "unordered") || last_of_key[k] < 0)
                        ready[ready_tail++] = i;
                else
                        tasks[last_of_key[k]].next_of_key = i;
                last_of_key[k] = i;
        }

        threads = sq_calloc((size_t)conc, sizeof(*threads));
        for (i = 0; i < conc; i++)
                if (pthread_create(&threads[i], NULL, worker, NULL)) {
                        fprintf(stderr,
                                "sweep_floor: cannot start thread "
                                "%lld of %lld\n",
                                (long long)i + 1, (long long)conc);
                        return 1;
                }
        for (i = 0; i < conc; i++)
                pthread_join(threads[i], NULL);

        printf("sweep_floor ordering=%s concurrency=%lld count=%lld keys=%lld "
               "seconds=%.3f sleep_overshoot_us=%.0f measured_floor_s=%.3f\n",
               ordering, (long long)conc, (long long)count, (long long)keys,
               (double)(last_ns - first_ns) / 1e9,
               positive ? (double)overshoot_ns / 1e3 / (double)positive : 0.0,
               measured_floor_s(ordering, conc, keys));
        sq_free(tasks);
        sq_free(ready);
        sq_free(last_of_key);
        sq_free(threads);
        return 0;

usage:
        fprintf(stderr,
                "Usage: sweep_floor -o partition|key|unordered -c CONCURRENCY "
                "[-n COUNT] [-K KEYS] [-m MAX_MS] [-S SEED]\n");
        return 2;
}
