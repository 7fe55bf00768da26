/* SPDX-License-Identifier: Apache-2.0 */
/*
 * offsets_figures: the sizes behind docs/architecture.md's "Offsets, dedup,
 * ordering": the completed-offset map's encoded length for representative
 * completion patterns, how many completions a budget holds in the worst
 * case, and the dedup map's memory per entry (glibc's mallinfo2).
 *
 *   build/tests/bench/offsets_figures [BUDGET]   (default 4096)
 *
 * DESIGN
 *   Deterministic: patterns are built on a tracker with the same calls the
 *   daemon makes (admit in offset order, mark done in any order), so the
 *   figures are what a commit would carry. Sizes, not speed: no clock.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "offsets.h"
#include "ttlmap.h"

/* Admits n offsets from 1000, marks done those with done(i, arg). */
static size_t pattern(int n, bool (*done)(int, int), int arg, size_t budget,
                      char *buf, int *done_cnt, size_t *full) {
        sq_offsets_t *offsets = sq_offsets_new();
        int i;
        size_t len;

        *done_cnt = 0;
        for (i = 0; i < n; i++)
                sq_offsets_admit(offsets, 1000 + i, NULL);
        for (i = 0; i < n; i++)
                if (done(i, arg) &&
                    sq_offsets_mark_done(offsets, 1000 + i) == SQ_OK)
                        (*done_cnt)++;
        len = sq_offsets_map_encode(offsets, budget, buf, full, NULL);
        sq_offsets_destroy(offsets);
        return len;
}

static bool head_stuck(int i, int arg) {
        (void)arg;
        return i > 0;
}
static bool one_in(int i, int arg) {
        return i > 0 && i % arg == 0;
}
static bool all_but_one_in(int i, int arg) {
        return i % arg != 0;
}
static bool random_pct(int i, int arg) {
        uint32_t h = (uint32_t)i * 2654435761u;
        h ^= h >> 16;
        return i > 0 && (int)(h % 100) < arg;
}
static bool stuck_every(int i, int arg) {
        return i % arg != 0; /* one unfinished record every arg */
}

int main(int argc, char **argv) {
        size_t budget = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 4096;
        char *buf     = malloc(budget + 1);
        static const struct {
                const char *name;
                int n;
                bool (*done)(int, int);
                int arg;
        } rows[] = {
            {"slow head, 100 done behind it", 101, head_stuck, 0},
            {"slow head, 10,000 done behind it", 10001, head_stuck, 0},
            {"slow head, 1,000,000 done behind it", 1000001, head_stuck, 0},
            {"one slow task in 100 (of 10,000)", 10000, stuck_every, 100},
            {"one slow task in 10 (of 10,000)", 10000, stuck_every, 10},
            {"every other done (of 10,000)", 10000, one_in, 2},
            {"one done in 10 (of 10,000)", 10000, one_in, 10},
            {"one done in 100 (of 10,000)", 10000, one_in, 100},
            {"random 50% done (of 10,000)", 10000, random_pct, 50},
            {"random 90% done (of 10,000)", 10000, random_pct, 90},
            {"random 10% done (of 10,000)", 10000, random_pct, 10},
            {"every other done (of 30,000)", 30000, one_in, 2},
            {"all but one in 3 done (of 30,000)", 30000, all_but_one_in, 3},
        };
        size_t r, full, len;
        int done_cnt, g;

        printf("Completed-offset map, budget %zu bytes (base offset 1000)\n\n",
               budget);
        printf("| pattern | completions above the head | map bytes | kind "
               "| fits |\n|---|---|---|---|---|\n");
        for (r = 0; r < SQ_ARRAY_SIZE(rows); r++) {
                len = pattern(rows[r].n, rows[r].done, rows[r].arg, budget, buf,
                              &done_cnt, &full);
                printf("| %s | %d | %zu | %s | %s |\n", rows[r].name, done_cnt,
                       full,
                       full == 0
                           ? "-"
                           : (len ? (buf[3] == 'R' ? "run-length" : "bitset")
                                  : "-"),
                       full <= budget ? "yes" : "cut");
        }

        /* Worst case: isolated completions, each followed by g unfinished
         * records; the most completions that fit for each g, and the
         * least over all g. */
        {
                int worst = -1, worst_g = 0;
                printf("\nWorst case: one done, then g unfinished, "
                       "repeated\n\n| g | completions that fit | "
                       "records in flight needed |\n|---|---|---|\n");
                for (g = 1; g <= 4096; g = g < 8 ? g + 1 : g * 2 + 1) {
                        int lo = 1, hi = 20000, fit = 0;
                        /* Largest D whose pattern fits: binary search. */
                        while (lo <= hi) {
                                int d                 = (lo + hi) / 2;
                                sq_offsets_t *offsets = sq_offsets_new();
                                int64_t o             = 1000, k;
                                sq_offsets_admit(offsets, o++, NULL); /* head */
                                for (k = 0; k < d; k++) {
                                        int j;
                                        sq_offsets_admit(offsets, o, NULL);
                                        sq_offsets_mark_done(offsets, o++);
                                        for (j = 0; j < g; j++)
                                                sq_offsets_admit(offsets, o++,
                                                                 NULL);
                                }
                                sq_offsets_map_encode(offsets, budget, buf,
                                                      &full, NULL);
                                sq_offsets_destroy(offsets);
                                if (full <= budget) {
                                        fit = d;
                                        lo  = d + 1;
                                } else {
                                        hi = d - 1;
                                }
                        }
                        printf("| %d | %d | %lld |\n", g, fit,
                               (long long)fit * g + 1);
                        if (worst < 0 || fit < worst) {
                                worst   = fit;
                                worst_g = g;
                        }
                }
                printf("\nWorst case: %d completions fit in %zu bytes (at g = "
                       "%d)\n",
                       worst, budget, worst_g);
        }

        /* Dedup map memory per entry. */
        {
                static const size_t sizes[] = {12, 36};
                size_t s;
                printf("\nDedup map (dedup.max.entries=100000), memory per "
                       "entry\n\n| task id length | bytes per entry (malloc) "
                       "| bytes per entry (tables + key bytes) |\n"
                       "|---|---|---|\n");
                for (s = 0; s < SQ_ARRAY_SIZE(sizes); s++) {
                        struct mallinfo2 before = mallinfo2(), after;
                        sq_ttlmap_t *map        = sq_ttlmap_new(100000, 0);
                        char key[64];
                        int i;
                        for (i = 0; i < 100000; i++) {
                                snprintf(key, sizeof(key), "%0*d",
                                         (int)sizes[s], i);
                                sq_ttlmap_insert(map, key, i);
                        }
                        after = mallinfo2();
                        printf("| %zu | %.1f | %.1f |\n", sizes[s],
                               (double)(after.uordblks + after.hblkhd -
                                        before.uordblks - before.hblkhd) /
                                   100000.0,
                               (double)sq_ttlmap_memory(map) / 100000.0);
                        sq_ttlmap_destroy(map);
                }
        }
        free(buf);
        return 0;
}
