/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sweep_records.h: the key sweep's records, drawn from a seed
 * (tests/bench/keysweep.sh). sweep_gen writes them to Kafka; sweep_floor
 * runs the same sleeps with bare threads, no Kafka, for the machine's own
 * floor. Both must draw exactly the same sequence, hence this one place.
 *
 * DESIGN
 *   Two xorshift64* streams from one seed: one draws the sleeps, the other
 *   the keys, so every key count gets the same sleep sequence (the same
 *   sum) for a given seed and count. Header-only (static inline): every
 *   .c file of tests/bench/ is its own executable.
 */
#ifndef SQ_BENCH_SWEEP_RECORDS_H
#define SQ_BENCH_SWEEP_RECORDS_H

#include <stdint.h>

typedef struct {
        uint64_t sleep_rng, key_rng;
        uint64_t keys, max_ms;
} sweep_records_t;

static inline uint64_t sweep_next_rand(uint64_t *state) {
        uint64_t x = *state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        return x * 2685821657736338717ULL;
}

static inline void sweep_records_init(sweep_records_t *r, int64_t seed,
                                      int64_t keys, int64_t max_ms) {
        r->sleep_rng = (uint64_t)seed * 0x9E3779B97F4A7C15ULL | 1;
        r->key_rng   = (uint64_t)seed * 0xD1B54A32D192ED03ULL | 1;
        r->keys      = (uint64_t)keys;
        r->max_ms    = (uint64_t)max_ms;
}

/* The next record: its sleep in ms and its key number (0..keys-1). */
static inline void sweep_records_next(sweep_records_t *r, int64_t *msp,
                                      int64_t *keyp) {
        *msp  = (int64_t)(sweep_next_rand(&r->sleep_rng) % (r->max_ms + 1));
        *keyp = (int64_t)(sweep_next_rand(&r->key_rng) % r->keys);
}

#endif /* SQ_BENCH_SWEEP_RECORDS_H */
