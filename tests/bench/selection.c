/* SPDX-License-Identifier: Apache-2.0 */
/*
 * selection.c: agent selection latency at scale: 1,000 agents over 64
 * capabilities (each agent has 3), tasks requiring 1 or 2 capabilities,
 * ranked selection with and without a key. Times acquire (requirement
 * interning + cache lookup + ranking + slot), then releases the slot.
 * Prints p50/p99/p999 in nanoseconds per mode.
 *
 *   selection [-a AGENTS] [-n SAMPLES]
 *
 * DESIGN
 *   Single thread, no Kafka: the figure is the cost an executor pays per
 *   task under the registry mutex (uncontended). Each sample is timed
 *   with CLOCK_MONOTONIC around one sq_agents_acquire(); the clock read
 *   itself (about 20 ns here) is included, so the figures are upper bounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agents.h"

static int64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp64(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

static void run(sq_agents_t *agents, sq_task_t **tasks, int tasks_cnt,
                int samples, bool ranked, bool keyed, const char *label) {
        int64_t *lat = malloc((size_t)samples * sizeof(*lat));
        char errstr[256];
        int i;

        for (i = 0; i < samples; i++) {
                sq_task_t *task     = tasks[i % tasks_cnt];
                sq_agents_out_t out = {0};
                sq_select_t sel     = {0};
                sq_slot_t slot;
                int64_t t0 = now_ns();
                if (sq_agents_requirement(agents, task, &sel.req, errstr,
                                          sizeof(errstr)) != SQ_OK) {
                        fprintf(stderr, "selection: %s\n", errstr);
                        exit(1);
                }
                sel.key    = keyed ? task->id : NULL;
                sel.ranked = ranked;
                if (sq_agents_acquire(agents, &sel, NULL, &slot, errstr,
                                      sizeof(errstr)) != SQ_ACQ_RUN) {
                        fprintf(stderr, "selection: no slot: %s\n", errstr);
                        exit(1);
                }
                lat[i] = now_ns() - t0;
                sq_agents_release(agents, &slot,
                                  i % 10 ? SQ_AGENT_OUTCOME_SUCCESS
                                         : SQ_AGENT_OUTCOME_FAILURE,
                                  1000 + i % 977, NULL, NULL, &out);
                sq_agents_out_reset(&out);
        }
        qsort(lat, (size_t)samples, sizeof(*lat), cmp64);
        printf("%-28s samples=%d p50_ns=%lld p99_ns=%lld p999_ns=%lld "
               "max_ns=%lld\n",
               label, samples, (long long)lat[samples / 2],
               (long long)lat[(int)(samples * 0.99)],
               (long long)lat[(int)(samples * 0.999)],
               (long long)lat[samples - 1]);
        free(lat);
}

int main(int argc, char **argv) {
        int agents_cnt = 1000, samples = 1000000, opt, i;
        sq_config_t *conf = sq_config_new();
        sq_task_t *tasks[256];
        sq_agents_t *agents;
        char key[64], val[64], errstr[512];

        while ((opt = getopt(argc, argv, "a:n:")) != -1) {
                if (opt == 'a')
                        agents_cnt = (int)strtol(optarg, NULL, 10);
                else if (opt == 'n')
                        samples = (int)strtol(optarg, NULL, 10);
                else {
                        fprintf(stderr, "usage: selection [-a AGENTS] "
                                        "[-n SAMPLES]\n");
                        return 2;
                }
        }
        if (agents_cnt < 64 || agents_cnt > SQ_AGENTS_MAX || samples < 100) {
                fprintf(stderr,
                        "selection: -a from 64 to %d, -n at least "
                        "100\n",
                        SQ_AGENTS_MAX);
                return 2;
        }
        /* Agent i: capabilities i%64, (i*7+3)%64, (i*13+5)%64, breaker on
         * (5 failures), concurrency 8. */
        for (i = 0; i < agents_cnt; i++) {
                int c1 = i % 64, c2 = (i * 7 + 3) % 64, c3 = (i * 13 + 5) % 64;
                snprintf(key, sizeof(key), "agent.a%d.handler", i);
                sq_config_set(conf, key, "noop", "bench", errstr,
                              sizeof(errstr));
                snprintf(key, sizeof(key), "agent.a%d.concurrency", i);
                sq_config_set(conf, key, "8", "bench", errstr, sizeof(errstr));
                snprintf(key, sizeof(key), "agent.a%d.capabilities", i);
                if (c2 == c1)
                        c2 = (c2 + 1) % 64;
                if (c3 == c1 || c3 == c2)
                        c3 = (c3 + 2) % 64;
                if (c3 == c1 || c3 == c2)
                        c3 = (c3 + 2) % 64;
                snprintf(val, sizeof(val), "c%d,c%d,c%d", c1, c2, c3);
                if (sq_config_set(conf, key, val, "bench", errstr,
                                  sizeof(errstr)) != SQ_OK) {
                        fprintf(stderr, "selection: %s\n", errstr);
                        return 1;
                }
        }
        if (sq_config_finalize(conf, errstr, sizeof(errstr)) != SQ_OK ||
            !(agents = sq_agents_new(conf, NULL, errstr, sizeof(errstr)))) {
                fprintf(stderr, "selection: %s\n", errstr);
                return 1;
        }
        /* 256 tasks: half need one capability, half the two first ones of
         * some agent (so a candidate always exists). */
        for (i = 0; i < 256; i++) {
                int a    = (i * 37) % agents_cnt;
                tasks[i] = sq_task_new();
                snprintf(key, sizeof(key), "task-%d", i);
                tasks[i]->id   = sq_strdup(key);
                tasks[i]->type = sq_strdup("bench");
                snprintf(val, sizeof(val), "c%d", a % 64);
                sq_task_add_capability(tasks[i], val);
                if (i % 2) {
                        int c2 = (a * 7 + 3) % 64;
                        if (c2 == a % 64)
                                c2 = (c2 + 1) % 64;
                        snprintf(val, sizeof(val), "c%d", c2);
                        sq_task_add_capability(tasks[i], val);
                }
        }
        printf("agents=%d capabilities=%d words=%d\n", agents_cnt, 64,
               sq_agents_words(agents));
        run(agents, tasks, 256, samples / 10, true, false, "warm-up");
        run(agents, tasks, 256, samples, false, false, "least-loaded");
        run(agents, tasks, 256, samples, true, false, "ranked");
        run(agents, tasks, 256, samples, true, true, "ranked+key-affinity");
        for (i = 0; i < 256; i++)
                sq_task_destroy(tasks[i]);
        sq_agents_release_ref(agents);
        sq_config_destroy(conf);
        return 0;
}
