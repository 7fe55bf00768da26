/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ttlmap.c: the bounded TTL map remembers keys for their time to
 * live, forgets the oldest first when full, and agrees with a naive model
 * under many random operations (chains with collisions included), and
 * under random operations on keys picked to collide in its index: many
 * in the same few buckets (long chains), the same high 8 bits of the
 * hash, buckets on both sides of the table's end, the same full hash.
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

/* ---- Keys that collide in the index, against a reference model ---- */

#define KEY_SIZE 80
#define POOL_MAX 160

typedef struct {
        char key[KEY_SIZE];
} pool_key_t;

static uint64_t next_rand(uint64_t *rng) {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        return *rng;
}

/* Candidate key @p i: lengths 2 to 71, on both sides of the longest key
 * a slot holds (39 bytes; longer ones go to the heap). */
static void candidate(char *key, const char *prefix, uint32_t i) {
        snprintf(key, KEY_SIZE, "%s%u-%0*d", prefix, i, (int)(i % 64), 0);
}

/* Finds a key whose hash has @p tag as its high 8 bits (< 0: any) and
 * whose bucket among @p cells is @p home (< 0: any), searching candidates
 * from *@p next on. @returns whether one was found (written to @p key). */
static bool find_key(char *key, const char *prefix, uint32_t *next, int tag,
                     long home, size_t cells) {
        uint32_t limit = *next + (1u << 22);
        for (; *next < limit; (*next)++) {
                uint32_t hash;
                candidate(key, prefix, *next);
                hash = sq_ttlmap_key_hash(key);
                if ((tag < 0 || (int)(hash >> 24) == tag) &&
                    (home < 0 || (long)(hash & (cells - 1)) == home)) {
                        (*next)++;
                        return true;
                }
        }
        return false;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* Twin candidate @p i: random letters and digits (keys that differ in a
 * few digits only do not collide), of one length per parity (12 bytes,
 * then 50: in the slot and on the heap), so that only the keys' bytes
 * tell a pair apart. */
static void twin_candidate(char *key, uint32_t i) {
        static const char digits[] = "abcdefghijklmnopqrstuvwxyz012345";
        uint64_t x                 = i + 0x9e3779b97f4a7c15ull;
        size_t len                 = i & 1 ? 50 : 12, n;
        for (n = 0; n < len; n++) {
                if (n % 12 == 0) { /* splitmix64's finalizer */
                        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
                        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
                        x ^= x >> 31;
                }
                key[n] = digits[(x >> (5 * (n % 12))) & 31];
        }
        key[len] = '\0';
}

/* Pairs of distinct keys of the same length with the same 32-bit hash (a
 * birthday search over 2^19 candidates finds 11 of the same length): the map
 * must compare the keys themselves. @returns the number of keys written (pairs,
 * in order). */
static size_t find_twins(pool_key_t *twins, size_t max) {
        enum { N = 1 << 19 };
        uint64_t *h = malloc(N * sizeof(*h)); /* hash << 32 | candidate */
        size_t n    = 0, i;
        char key[KEY_SIZE];
        assert_non_null(h);
        for (i = 0; i < N; i++) {
                twin_candidate(key, (uint32_t)i);
                h[i] = (uint64_t)sq_ttlmap_key_hash(key) << 32 | i;
        }
        qsort(h, N, sizeof(*h), cmp_u64);
        for (i = 1; i < N && n + 2 <= max; i++) {
                /* Same hash, same parity (so the same length). */
                if (h[i] >> 32 != h[i - 1] >> 32 || (h[i] ^ h[i - 1]) & 1)
                        continue;
                twin_candidate(twins[n++].key, (uint32_t)h[i - 1]);
                twin_candidate(twins[n++].key, (uint32_t)h[i]);
        }
        free(h);
        return n;
}

/* The keys one run draws from, for a map with @p cells buckets: a third
 * (at most 12) share their high 8 hash bits (a tag) and fall in the 4
 * buckets around the table's end (long chains; an open-addressed index
 * would probe across its last cell), a sixth (at most 12) share that tag
 * in any bucket, up to 8
 * are same-hash twins, the rest any key. @returns the pool's size (<= @p want).
 */
static size_t build_pool(pool_key_t *pool, size_t want, size_t cells,
                         const pool_key_t *twins, size_t ntwins,
                         uint64_t *rng) {
        static const long around_wrap[] = {-2, -1, 0, 1};
        uint32_t next                   = (uint32_t)(next_rand(rng) % 1000000);
        size_t n                        = 0, i, skip;
        int tag                         = -1;

        for (i = 0; n < want / 3 && n < 12; i++) {
                long home = around_wrap[i % 4];
                home      = (long)(((size_t)home + cells) & (cells - 1));
                if (!find_key(pool[n].key, "wrap", &next, tag, home, cells))
                        break;
                tag = (int)(sq_ttlmap_key_hash(pool[n].key) >> 24);
                n++;
        }
        assert_int_equal(n, want / 3 < 12 ? want / 3 : 12); /* all found */
        while (n < want / 3 + want / 6 && n < 24 &&
               find_key(pool[n].key, "tag", &next, tag, -1, cells))
                n++;
        skip = ntwins > 8 ? 2 * (next_rand(rng) % (ntwins / 2 - 3)) : 0;
        for (i = 0; i < 8 && skip + i < ntwins && n < want; i++)
                pool[n++] = twins[skip + i];
        while (n < want) {
                candidate(pool[n].key, "any", (uint32_t)next_rand(rng));
                n++;
        }
        return n;
}

/* The reference: the keys held, oldest first, with their insert times;
 * expired keys are dropped when the map would drop them (on insert and
 * lookup), so its count matches the map's at every step. */
typedef struct {
        size_t key[POOL_MAX];
        int64_t at[POOL_MAX];
        size_t cnt, cap;
        int64_t ttl;
} model_t;

static void model_drop_front(model_t *model) {
        memmove(&model->key[0], &model->key[1],
                (model->cnt - 1) * sizeof(model->key[0]));
        memmove(&model->at[0], &model->at[1],
                (model->cnt - 1) * sizeof(model->at[0]));
        model->cnt--;
}

static void model_expire(model_t *model, int64_t now) {
        while (model->ttl > 0 && model->cnt > 0 &&
               now - model->at[0] >= model->ttl)
                model_drop_front(model);
}

static bool model_holds(const model_t *model, size_t k) {
        size_t i;
        for (i = 0; i < model->cnt; i++)
                if (model->key[i] == k)
                        return true;
        return false;
}

/* One run: @p steps random inserts, lookups and forgets of the pool's
 * keys at times that sometimes expire part of the map, every answer
 * compared with the model's, and now and then every pool key looked
 * up (a key lost from the index, or a false hit, shows there). */
static void run_against_model(size_t cap, int64_t ttl, uint64_t seed, int steps,
                              const pool_key_t *twins, size_t ntwins) {
        sq_ttlmap_t *map = sq_ttlmap_new(cap, ttl);
        pool_key_t pool[POOL_MAX];
        model_t model;
        size_t npool, cells = sq_ttlmap_buckets(map), k, i;
        uint64_t rng = seed;
        int64_t now  = 0;
        int step;

        assert_true(cells >= 2 * cap && (cells & (cells - 1)) == 0);
        npool =
            build_pool(pool, 2 * cap + 10 < POOL_MAX ? 2 * cap + 10 : POOL_MAX,
                       cells, twins, ntwins, &rng);
        memset(&model, 0, sizeof(model));
        model.cap = cap;
        model.ttl = ttl;
        for (step = 0; step < steps; step++) {
                uint64_t r  = next_rand(&rng);
                unsigned op = (unsigned)(r % 100);
                bool got, want;

                /* Time: mostly a few ticks, sometimes half a TTL, rarely
                 * past everything held. */
                if ((r >> 8) % 64 == 0)
                        now += ttl > 0 ? ttl / 2 : 1;
                else if ((r >> 8) % 1024 == 1)
                        now += ttl + 1;
                else
                        now += (int64_t)((r >> 20) % 3);
                k = (size_t)((r >> 32) % npool);
                if (op < 45) {
                        got = sq_ttlmap_insert(map, pool[k].key, now);
                        model_expire(&model, now);
                        want = !model_holds(&model, k);
                        if (want) {
                                if (model.cnt == model.cap)
                                        model_drop_front(&model);
                                model.key[model.cnt]  = k;
                                model.at[model.cnt++] = now;
                        }
                } else if (op < 93) {
                        got = sq_ttlmap_contains(map, pool[k].key, now);
                        model_expire(&model, now);
                        want = model_holds(&model, k);
                } else {
                        size_t cnt = (size_t)((r >> 40) % 4);
                        sq_ttlmap_forget_newest(map, cnt);
                        model.cnt -= cnt < model.cnt ? cnt : model.cnt;
                        got = want = true;
                }
                if (got != want)
                        fail_msg("cap %zu ttl %lld seed %llu step %d: op %u "
                                 "on \"%s\" at %lld gave %d, the model %d",
                                 cap, (long long)ttl, (unsigned long long)seed,
                                 step, op, pool[k].key, (long long)now, got,
                                 want);
                if (sq_ttlmap_count(map) != model.cnt)
                        fail_msg("cap %zu ttl %lld seed %llu step %d: count "
                                 "%zu, the model %zu",
                                 cap, (long long)ttl, (unsigned long long)seed,
                                 step, sq_ttlmap_count(map), model.cnt);
                if (step % 8 != 0)
                        continue;
                model_expire(&model, now);
                for (i = 0; i < npool; i++)
                        if (sq_ttlmap_contains(map, pool[i].key, now) !=
                            model_holds(&model, i))
                                fail_msg("cap %zu ttl %lld seed %llu step "
                                         "%d: \"%s\" held %d, the model %d",
                                         cap, (long long)ttl,
                                         (unsigned long long)seed, step,
                                         pool[i].key, !model_holds(&model, i),
                                         model_holds(&model, i));
        }
        sq_ttlmap_destroy(map);
}

static void test_colliding_keys_match_model(void **state) {
        static const size_t caps[]  = {1, 2, 3, 5, 7, 8, 9, 16, 31, 64};
        static const int64_t ttls[] = {0, 25, 200};
        pool_key_t twins[64];
        size_t ntwins = find_twins(twins, SQ_ARRAY_SIZE(twins)), c, t;
        uint64_t seed = 0x9e3779b97f4a7c15ull;
        (void)state;

        /* Same-hash pairs of one length exist among 2^19 keys (11). */
        assert_true(ntwins >= 8);
        assert_int_equal(strlen(twins[0].key), strlen(twins[1].key));
        assert_int_equal(sq_ttlmap_key_hash(twins[0].key),
                         sq_ttlmap_key_hash(twins[1].key));
        assert_string_not_equal(twins[0].key, twins[1].key);
        for (c = 0; c < SQ_ARRAY_SIZE(caps); c++)
                for (t = 0; t < SQ_ARRAY_SIZE(ttls); t++)
                        run_against_model(caps[c], ttls[t],
                                          seed += 0x632be59bd9b4e019ull, 6000,
                                          twins, ntwins);
}

/* A key expires while keys filed beside it stay found: y in the first
 * bucket, x and z in the last with y's high 8 hash bits (an open-addressed
 * index would hold x, y, z in one probe chain across its end, y in the
 * middle). y, the oldest, expires. */
static void test_expiry_mid_chain(void **state) {
        sq_ttlmap_t *map = sq_ttlmap_new(4, 100);
        size_t cells     = sq_ttlmap_buckets(map);
        char x[KEY_SIZE], y[KEY_SIZE], z[KEY_SIZE];
        uint32_t next = 0;
        int tag;
        (void)state;

        assert_true(find_key(y, "mid", &next, -1, 0, cells));
        tag = (int)(sq_ttlmap_key_hash(y) >> 24);
        assert_true(find_key(x, "mid", &next, tag, (long)cells - 1, cells));
        assert_true(find_key(z, "mid", &next, tag, (long)cells - 1, cells));
        assert_true(sq_ttlmap_insert(map, y, 0));
        assert_true(sq_ttlmap_insert(map, x, 10));
        assert_true(sq_ttlmap_insert(map, z, 20));
        assert_true(sq_ttlmap_contains(map, z, 99));
        assert_false(sq_ttlmap_contains(map, y, 100)); /* expired */
        assert_true(sq_ttlmap_contains(map, x, 100));
        assert_true(sq_ttlmap_contains(map, z, 100));
        assert_false(sq_ttlmap_insert(map, z, 101)); /* still held */
        assert_true(sq_ttlmap_insert(map, y, 102));
        assert_true(sq_ttlmap_contains(map, y, 103));
        assert_int_equal(sq_ttlmap_count(map), 3);
        assert_false(sq_ttlmap_contains(map, x, 110));
        assert_true(sq_ttlmap_contains(map, z, 110));
        assert_true(sq_ttlmap_contains(map, y, 110));
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
            cmocka_unit_test(test_colliding_keys_match_model),
            cmocka_unit_test(test_expiry_mid_chain),
            cmocka_unit_test(test_memory_is_bounded),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
