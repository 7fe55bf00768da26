/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ttlmap.c: the bounded TTL map remembers keys for their time to
 * live, forgets the oldest first when full, and agrees with a naive model
 * under many random operations (chains with collisions included).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "ttlmap.h"

/* Each row: operations at given times on a map of 3 entries, TTL 100. */
static const struct {
        char op; /* 'i' insert (expect added), 'I' insert (expect held),
                  * 'c' contains, 'n' not contained */
        const char *key;
        int64_t now;
} script[] = {
    {'n', "a", 0},   {'i', "a", 0},   {'c', "a", 0},   {'I', "a", 50},
    {'c', "a", 99},  {'n', "a", 100}, /* TTL counts from the first insert */
    {'i', "a", 100}, {'i', "b", 110}, {'i', "c", 120}, {'i', "d", 130},
    {'n', "a", 130}, /* full: the oldest was evicted */
    {'c', "b", 130}, {'c', "c", 130}, {'c', "d", 130}, {'n', "b", 210},
    {'c', "c", 210}, {'n', "", 210},  {'i', "", 210},  {'c', "", 210},
    {'n', "c", 220}, {'c', "d", 229}, {'n', "d", 230}, {'c', "", 309},
    {'n', "", 310},
};

static void test_script(void **state) {
        sq_ttlmap_t *map = sq_ttlmap_new(3, 100);
        size_t i;
        (void)state;
        for (i = 0; i < SQ_ARRAY_SIZE(script); i++) {
                bool got = false, want = true;
                switch (script[i].op) {
                case 'i':
                case 'I':
                        got =
                            sq_ttlmap_insert(map, script[i].key, script[i].now);
                        want = script[i].op == 'i';
                        break;
                case 'c':
                case 'n':
                        got  = sq_ttlmap_contains(map, script[i].key,
                                                  script[i].now);
                        want = script[i].op == 'c';
                        break;
                }
                if (got != want)
                        fail_msg("step %zu: %c \"%s\" at %lld gave %d", i,
                                 script[i].op, script[i].key,
                                 (long long)script[i].now, got);
        }
        assert_int_equal(sq_ttlmap_evicted(map), 1);
        assert_int_equal(sq_ttlmap_count(map), 0);
        sq_ttlmap_destroy(map);
}

static void test_no_ttl_keeps_until_evicted(void **state) {
        sq_ttlmap_t *map = sq_ttlmap_new(2, 0);
        (void)state;
        assert_true(sq_ttlmap_insert(map, "x", 0));
        assert_true(sq_ttlmap_contains(map, "x", INT64_C(1) << 60));
        assert_true(sq_ttlmap_insert(map, "y", 1));
        assert_true(sq_ttlmap_insert(map, "z", 2));
        assert_false(sq_ttlmap_contains(map, "x", 3));
        assert_int_equal(sq_ttlmap_count(map), 2);
        sq_ttlmap_destroy(map);
        sq_ttlmap_destroy(NULL);
}

/* An aborted transaction's keys go, the ones before it stay: across the
 * ring's wrap, with more to forget than are held, and with the map
 * still usable afterwards (chains intact). */
static void test_forget_newest(void **state) {
        sq_ttlmap_t *map = sq_ttlmap_new(4, 0);
        (void)state;
        assert_true(sq_ttlmap_insert(map, "a", 0));
        assert_true(sq_ttlmap_insert(map, "b", 1));
        assert_true(sq_ttlmap_insert(map, "c", 2));
        assert_true(sq_ttlmap_insert(map, "d", 3));
        assert_true(sq_ttlmap_insert(map, "e", 4)); /* evicts a, wraps */
        sq_ttlmap_forget_newest(map, 2);            /* e and d */
        assert_int_equal(sq_ttlmap_count(map), 2);
        assert_true(sq_ttlmap_contains(map, "b", 5));
        assert_true(sq_ttlmap_contains(map, "c", 5));
        assert_false(sq_ttlmap_contains(map, "d", 5));
        assert_false(sq_ttlmap_contains(map, "e", 5));
        assert_true(sq_ttlmap_insert(map, "e", 6)); /* held again */
        assert_true(sq_ttlmap_contains(map, "e", 7));
        sq_ttlmap_forget_newest(map, 10);
        assert_int_equal(sq_ttlmap_count(map), 0);
        assert_false(sq_ttlmap_contains(map, "b", 8));
        assert_true(sq_ttlmap_insert(map, "b", 9));
        assert_int_equal(sq_ttlmap_count(map), 1);
        sq_ttlmap_destroy(map);
}

/* Random inserts and lookups against a naive model: an array of (key,
 * time) in insertion order, searched linearly. Few distinct keys so that
 * re-inserts, evictions and expiries all happen often. */
static void test_matches_model(void **state) {
        enum { CAP = 64, KEYS = 300, STEPS = 200000, TTL = 500 };
        sq_ttlmap_t *map = sq_ttlmap_new(CAP, TTL);
        struct {
                int key;
                int64_t at;
        } model[CAP];
        size_t model_cnt = 0, i;
        uint64_t rng     = 88172645463325252ull;
        int64_t now      = 0;
        int step;
        (void)state;

        for (step = 0; step < STEPS; step++) {
                char key[96];
                int k;
                bool in_model = false, got;
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                k = (int)(rng % KEYS);
                now += (int64_t)(rng >> 40) % 4;
                /* Lengths 7 to 76: both sides of the longest key a
                 * slot holds (39 bytes; longer ones go to the heap). */
                snprintf(key, sizeof(key), "task-%d-%0*d", k, k % 70, 0);
                /* Model: expire, then look up. */
                while (model_cnt > 0 && now - model[0].at >= TTL) {
                        memmove(&model[0], &model[1],
                                (model_cnt - 1) * sizeof(model[0]));
                        model_cnt--;
                }
                for (i = 0; i < model_cnt; i++)
                        if (model[i].key == k)
                                in_model = true;
                if (rng & (1u << 20)) {
                        got = sq_ttlmap_insert(map, key, now);
                        if (got == in_model)
                                fail_msg("step %d: insert %s gave %d", step,
                                         key, got);
                        if (!in_model) {
                                if (model_cnt == CAP) {
                                        memmove(&model[0], &model[1],
                                                (CAP - 1) * sizeof(model[0]));
                                        model_cnt--;
                                }
                                model[model_cnt].key  = k;
                                model[model_cnt++].at = now;
                        }
                } else {
                        got = sq_ttlmap_contains(map, key, now);
                        if (got != in_model)
                                fail_msg("step %d: contains %s gave %d", step,
                                         key, got);
                }
                assert_int_equal(sq_ttlmap_count(map), model_cnt);
        }
        sq_ttlmap_destroy(map);
}

/* Memory is fixed at creation apart from keys too long for a slot: a
 * UUID-sized key (and up to 39 bytes) costs nothing more, a longer one
 * its copy, given back when it is evicted. */
static void test_memory_is_bounded(void **state) {
        sq_ttlmap_t *map = sq_ttlmap_new(1000, 0);
        size_t empty     = sq_ttlmap_memory(map), full;
        char key[64];
        int i;
        (void)state;
        for (i = 0; i < 5000; i++) {
                snprintf(key, sizeof(key), "%036d", i); /* UUID-sized */
                sq_ttlmap_insert(map, key, i);
        }
        full = sq_ttlmap_memory(map);
        assert_int_equal(sq_ttlmap_count(map), 1000);
        assert_int_equal(sq_ttlmap_evicted(map), 4000);
        assert_int_equal(full, empty);
        for (i = 0; i < 1500; i++) {
                snprintf(key, sizeof(key), "%040d", i); /* one too long */
                assert_true(sq_ttlmap_insert(map, key, 5000 + i));
                assert_true(sq_ttlmap_contains(map, key, 5000 + i));
        }
        assert_int_equal(sq_ttlmap_memory(map) - empty, 1000 * 41);
        for (i = 0; i < 1000; i++) {
                snprintf(key, sizeof(key), "%039d", i); /* the longest */
                sq_ttlmap_insert(map, key, 7000 + i);
        }
        assert_int_equal(sq_ttlmap_memory(map), empty);
        sq_ttlmap_destroy(map);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_script),
            cmocka_unit_test(test_no_ttl_keeps_until_evicted),
            cmocka_unit_test(test_forget_newest),
            cmocka_unit_test(test_matches_model),
            cmocka_unit_test(test_memory_is_bounded),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
