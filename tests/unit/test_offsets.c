/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_offsets.c: the completed-offset tracker commits only the contiguous
 * completed prefix, whatever order tasks finish in; the completed-offset
 * map round-trips, stays within its budget (cut maps skip less, never
 * wrongly), and corrupt metadata is refused, never trusted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "offsets.h"

static void test_empty_tracker_has_nothing_to_commit(void **state) {
        sq_offsets_t *offsets = sq_offsets_new();
        (void)state;
        assert_int_equal(sq_offsets_committable(offsets), -1);
        assert_int_equal(sq_offsets_in_flight(offsets), 0);
        assert_int_equal(sq_offsets_mark_done(offsets, 0), SQ_ERR_NOT_FOUND);
        sq_offsets_destroy(offsets);
}

/* Each row: offsets admitted 10..10+n-1, then done in the given order; after
 * each completion the expected committable offset. */
static const struct {
        const char *name;
        int n;
        int done_order[8];
        int64_t expect_after[8];
} completion_cases[] = {
    {"in order", 4, {0, 1, 2, 3}, {11, 12, 13, 14}},
    {"reverse", 4, {3, 2, 1, 0}, {10, 10, 10, 14}},
    {"middle first", 5, {2, 0, 4, 1, 3}, {10, 11, 11, 13, 15}},
    {"head last", 3, {1, 2, 0}, {10, 10, 13}},
};

static void test_out_of_order_completion_commits_prefix(void **state) {
        size_t c;
        (void)state;
        for (c = 0; c < sizeof(completion_cases) / sizeof(completion_cases[0]);
             c++) {
                sq_offsets_t *offsets = sq_offsets_new();
                int i;
                for (i = 0; i < completion_cases[c].n; i++)
                        assert_int_equal(
                            sq_offsets_admit(offsets, 10 + i, NULL), SQ_OK);
                assert_int_equal(sq_offsets_committable(offsets), 10);
                for (i = 0; i < completion_cases[c].n; i++) {
                        int64_t off = 10 + completion_cases[c].done_order[i];
                        assert_int_equal(sq_offsets_mark_done(offsets, off),
                                         SQ_OK);
                        if (sq_offsets_committable(offsets) !=
                            completion_cases[c].expect_after[i])
                                fail_msg(
                                    "case \"%s\" step %d: committable "
                                    "%lld, expected %lld",
                                    completion_cases[c].name, i,
                                    (long long)sq_offsets_committable(offsets),
                                    (long long)completion_cases[c]
                                        .expect_after[i]);
                }
                assert_int_equal(sq_offsets_in_flight(offsets), 0);
                assert_int_equal(sq_offsets_held(offsets), 0);
                sq_offsets_destroy(offsets);
        }
}

static void test_gaps_in_offsets_are_skipped(void **state) {
        /* Compacted topics and transaction markers leave holes. */
        sq_offsets_t *offsets = sq_offsets_new();
        (void)state;
        assert_int_equal(sq_offsets_admit(offsets, 5, NULL), SQ_OK);
        assert_int_equal(sq_offsets_admit(offsets, 9, NULL), SQ_OK);
        assert_int_equal(sq_offsets_admit(offsets, 20, NULL), SQ_OK);
        assert_int_equal(sq_offsets_mark_done(offsets, 9), SQ_OK);
        assert_int_equal(sq_offsets_committable(offsets), 5);
        assert_int_equal(sq_offsets_mark_done(offsets, 5), SQ_OK);
        assert_int_equal(sq_offsets_committable(offsets), 20);
        assert_int_equal(sq_offsets_mark_done(offsets, 20), SQ_OK);
        assert_int_equal(sq_offsets_committable(offsets), 21);
        sq_offsets_destroy(offsets);
}

static void test_rejects_duplicates_and_unknown(void **state) {
        sq_offsets_t *offsets = sq_offsets_new();
        (void)state;
        assert_int_equal(sq_offsets_admit(offsets, 3, NULL), SQ_OK);
        assert_int_equal(sq_offsets_admit(offsets, 3, NULL),
                         SQ_ERR_INVALID_ARG);
        assert_int_equal(sq_offsets_admit(offsets, 2, NULL),
                         SQ_ERR_INVALID_ARG);
        assert_int_equal(sq_offsets_admit(offsets, -1, NULL),
                         SQ_ERR_INVALID_ARG);
        assert_int_equal(sq_offsets_mark_done(offsets, 4), SQ_ERR_NOT_FOUND);
        assert_int_equal(sq_offsets_mark_done(offsets, 3), SQ_OK);
        assert_int_equal(sq_offsets_mark_done(offsets, 3), SQ_ERR_NOT_FOUND);
        sq_offsets_destroy(offsets);
}

static void test_ring_grows_and_wraps(void **state) {
        /* 10,000 offsets, completed in a strided order so the ring holds
         * many done entries above a pending one and wraps repeatedly. */
        sq_offsets_t *offsets = sq_offsets_new();
        int64_t next, i;
        (void)state;
        for (i = 0; i < 10000; i++)
                assert_int_equal(sq_offsets_admit(offsets, i, NULL), SQ_OK);
        for (i = 1; i < 10000; i += 2)
                assert_int_equal(sq_offsets_mark_done(offsets, i), SQ_OK);
        assert_int_equal(sq_offsets_committable(offsets), 0);
        assert_int_equal(sq_offsets_in_flight(offsets), 5000);
        for (i = 0; i < 10000; i += 2) {
                assert_int_equal(sq_offsets_mark_done(offsets, i), SQ_OK);
                next = i + 2;
                assert_int_equal(sq_offsets_committable(offsets),
                                 next < 10000 ? next : 10000);
        }
        /* Wrap-around: admit and complete far more than the capacity,
         * pairs completed high first. */
        for (i = 10000; i < 200000; i += 2) {
                assert_int_equal(sq_offsets_admit(offsets, i, NULL), SQ_OK);
                assert_int_equal(sq_offsets_admit(offsets, i + 1, NULL), SQ_OK);
                assert_int_equal(sq_offsets_mark_done(offsets, i + 1), SQ_OK);
                assert_int_equal(sq_offsets_committable(offsets), i);
                assert_int_equal(sq_offsets_mark_done(offsets, i), SQ_OK);
                assert_int_equal(sq_offsets_committable(offsets), i + 2);
        }
        sq_offsets_reset(offsets);
        assert_int_equal(sq_offsets_committable(offsets), -1);
        assert_int_equal(sq_offsets_admit(offsets, 7, NULL), SQ_OK);
        assert_int_equal(sq_offsets_committable(offsets), 7);
        sq_offsets_destroy(offsets);
}

/*
 * The completed-offset map
 */

/* A deterministic generator (tests must not depend on the clock). */
static uint64_t rng_state;
static uint64_t rng_next(void) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

/* Builds a tracker: offsets base + i*stride for i < n admitted, then the
 * ones for which done(i) holds marked done (never i = 0, the head). */
typedef bool (*done_fn_t)(int i);
static bool every_other(int i) {
        return i % 2 == 1;
}
static bool all_but_head(int i) {
        return i > 0;
}
static bool every_tenth(int i) {
        return i % 10 == 0;
}
static bool every_hundredth(int i) {
        return i % 100 == 0;
}
static bool one_above(int i) {
        return i == 1;
}
static bool last_only(int i) {
        return i == 999;
}
static bool blocks_of_50(int i) {
        return (i / 50) % 2 == 1;
}
static bool pseudo_random(int i) {
        return ((uint32_t)i * 2654435761u >> 7) % 3 == 0;
}
static bool none_done(int i) {
        (void)i;
        return false;
}

static sq_offsets_t *build(int64_t base, int n, int stride, done_fn_t done) {
        sq_offsets_t *offsets = sq_offsets_new();
        int i;
        for (i = 0; i < n; i++)
                assert_int_equal(
                    sq_offsets_admit(offsets, base + (int64_t)i * stride, NULL),
                    SQ_OK);
        for (i = 1; i < n; i++)
                if (done(i))
                        assert_int_equal(
                            sq_offsets_mark_done(offsets,
                                                 base + (int64_t)i * stride),
                            SQ_OK);
        return offsets;
}

/* Is @p offset done according to the decoded map? */
static bool map_says_done(const sq_offsets_map_t *map, int64_t offset) {
        size_t i;
        for (i = 0; i < map->ranges_cnt; i++)
                if (offset >= map->ranges[2 * i] &&
                    offset < map->ranges[2 * i + 1])
                        return true;
        return false;
}

static const struct {
        const char *name;
        int64_t base;
        int n;
        int stride; /* > 1: offsets the consumer never saw in between */
        done_fn_t done;
        char kind; /* expected encoding: 'R', 'B', or 0 = no map */
} map_cases[] = {
    {"nothing done", 100, 1000, 1, none_done, 0},
    {"one done above the head", 100, 1000, 1, one_above, 'B'},
    {"all done above a stuck head", 7, 1000, 1, all_but_head, 'R'},
    {"alternating", 0, 1000, 1, every_other, 'B'},
    {"every tenth", 5000, 1000, 1, every_tenth, 'B'},
    {"every hundredth", 5000, 1000, 1, every_hundredth, 'R'},
    {"blocks of 50", 42, 1000, 1, blocks_of_50, 'R'},
    {"pseudo-random third", 1, 1000, 1, pseudo_random, 'B'},
    {"last only", 3, 1000, 1, last_only, 'R'},
    {"alternating, offsets 3 apart", 10, 1000, 3, every_other, 'B'},
    {"large base", INT64_C(4611686018427387904), 1000, 1, every_tenth, 'B'},
};

static void test_map_round_trips(void **state) {
        size_t c;
        (void)state;
        for (c = 0; c < SQ_ARRAY_SIZE(map_cases); c++) {
                sq_offsets_t *offsets =
                    build(map_cases[c].base, map_cases[c].n,
                          map_cases[c].stride, map_cases[c].done);
                char buf[4097];
                size_t len, full;
                int64_t done_cnt;
                sq_offsets_map_t map;
                char errstr[256];
                int i;

                len =
                    sq_offsets_map_encode(offsets, 4096, buf, &full, &done_cnt);
                if (!map_cases[c].kind) {
                        assert_int_equal(len, 0);
                        assert_int_equal(full, 0);
                        sq_offsets_destroy(offsets);
                        continue;
                }
                assert_int_equal(len, strlen(buf));
                assert_int_equal(len, full);
                assert_true(len <= sq_offsets_map_bound(offsets));
                if (buf[3] != map_cases[c].kind)
                        fail_msg("case \"%s\": kind %c, expected %c (%s)",
                                 map_cases[c].name, buf[3], map_cases[c].kind,
                                 buf);
                for (i = 0; buf[i]; i++)
                        assert_true(buf[i] > ' ' && buf[i] < 127);
                assert_int_equal(sq_offsets_map_decode(buf, len, &map, errstr,
                                                       sizeof(errstr)),
                                 SQ_OK);
                assert_int_equal(map.base, map_cases[c].base);
                assert_int_equal(map.base, sq_offsets_committable(offsets));
                assert_int_equal(map.done_cnt, done_cnt);
                for (i = 0; i < map_cases[c].n; i++) {
                        int64_t off = map_cases[c].base +
                                      (int64_t)i * map_cases[c].stride;
                        bool want = i > 0 && map_cases[c].done(i);
                        if (map_says_done(&map, off) != want)
                                fail_msg("case \"%s\": offset %lld done=%d in "
                                         "the map, expected %d",
                                         map_cases[c].name, (long long)off,
                                         map_says_done(&map, off), want);
                }
                sq_offsets_map_clear(&map);
                sq_offsets_destroy(offsets);
        }
}

/* Over the budget, the map is cut: what it says is done is done, it is
 * never longer than the budget, and it is never empty. */
static void test_map_cut_to_budget(void **state) {
        static const size_t budgets[] = {32, 40, 64, 100, 500, 1000};
        size_t c, b;
        (void)state;
        for (c = 0; c < SQ_ARRAY_SIZE(map_cases); c++) {
                if (!map_cases[c].kind)
                        continue;
                for (b = 0; b < SQ_ARRAY_SIZE(budgets); b++) {
                        sq_offsets_t *offsets =
                            build(map_cases[c].base, map_cases[c].n,
                                  map_cases[c].stride, map_cases[c].done);
                        char buf[1001];
                        char errstr[256];
                        sq_offsets_map_t map;
                        size_t len, full, r;
                        int64_t done_cnt;

                        len = sq_offsets_map_encode(offsets, budgets[b], buf,
                                                    &full, &done_cnt);
                        assert_true(len <= budgets[b]);
                        if (len == 0) {
                                /* Only a huge base leaves no room. */
                                assert_true(budgets[b] < 40);
                                sq_offsets_destroy(offsets);
                                continue;
                        }
                        assert_int_equal(sq_offsets_map_decode(buf, len, &map,
                                                               errstr,
                                                               sizeof(errstr)),
                                         SQ_OK);
                        assert_true(map.done_cnt > 0);
                        assert_int_equal(map.done_cnt, done_cnt);
                        for (r = 0; r < map.ranges_cnt; r++) {
                                int64_t o;
                                for (o = map.ranges[2 * r];
                                     o < map.ranges[2 * r + 1]; o++) {
                                        int64_t rel = o - map_cases[c].base;
                                        /* A gap offset takes the next
                                         * admitted offset's status. */
                                        int i =
                                            (int)((rel + map_cases[c].stride -
                                                   1) /
                                                  map_cases[c].stride);
                                        if (!(i > 0 && i < map_cases[c].n &&
                                              map_cases[c].done(i)))
                                                fail_msg("case \"%s\" budget "
                                                         "%zu: offset %lld "
                                                         "is not done",
                                                         map_cases[c].name,
                                                         budgets[b],
                                                         (long long)o);
                                }
                        }
                        sq_offsets_map_clear(&map);
                        sq_offsets_destroy(offsets);
                }
        }
}

/* Appends the checksum the encoder would (24 bits of FNV-1a, 4 base64url
 * characters): lets a test build maps that pass the checksum but are
 * wrong inside. */
static size_t seal(char *out, const char *body) {
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
            "tuvwxyz0123456789-_";
        size_t n   = strlen(body), i;
        uint32_t h = 2166136261u;
        memcpy(out, body, n);
        for (i = 0; i < n; i++) {
                h ^= (unsigned char)body[i];
                h *= 16777619u;
        }
        for (i = 0; i < 4; i++)
                out[n + i] = b64[(h >> (6 * i)) & 63];
        out[n + 4] = '\0';
        return n + 4;
}

static const struct {
        const char *body;
        const char *says;
} sealed_bad[] = {
    /* base: 14 continued digits overflow 63 bits */
    {"SQ1R______________AB", "overflows"},
    {"SQ1RA_", "cut short"},
    {"SQ1RAEAAA", "run count"},         /* 4 runs announced, 3 bytes */
    {"SQ1RAAAA", "run count"},          /* zero runs */
    {"SQ1RABAAAA", "unexpected bytes"}, /* one run pair, then junk */
    {"SQ1BAHA", "bit count"},           /* 7 bits need 2 characters */
    {"SQ1BAB!", "unexpected byte"},
    {"SQ1R!BAA", "unexpected byte"},
    /* base 2^63-2, a done run of 2: past the largest offset */
    {"SQ1R-________________HBAB", "overflows"},
    {"SQ1Z0AAA", "kind"},
};

/* Metadata that is not a valid map is refused with a sentence, whatever
 * the bytes; a map that is not ours is just "not found". */
static void test_map_corrupt_is_refused(void **state) {
        static const struct {
                const char *str;
                sq_err_t want;
        } bad[] = {
            {"", SQ_ERR_NOT_FOUND},
            {"some other client's metadata", SQ_ERR_NOT_FOUND},
            {"SQ", SQ_ERR_NOT_FOUND},
            {"SQ1", SQ_ERR_DECODE},
            {"SQ1R", SQ_ERR_DECODE},
            {"SQ1RAAAAAAAA", SQ_ERR_DECODE},
            {"SQ1X0000AAAA", SQ_ERR_DECODE},
            {"SQ1R\xff\xfe\x01\x02\x03\x04\x05\x06", SQ_ERR_DECODE},
        };
        sq_offsets_t *offsets = build(1000, 500, 1, every_tenth);
        char buf[4097], mutated[4097], errstr[256];
        sq_offsets_map_t map;
        size_t i, len, pos;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(bad); i++) {
                errstr[0] = '\0';
                assert_int_equal(sq_offsets_map_decode(bad[i].str,
                                                       strlen(bad[i].str), &map,
                                                       errstr, sizeof(errstr)),
                                 bad[i].want);
                if (bad[i].want == SQ_ERR_DECODE)
                        assert_true(strlen(errstr) > 0);
                assert_null(map.ranges);
        }

        len = sq_offsets_map_encode(offsets, 4096, buf, NULL, NULL);
        assert_true(len > 12);
        /* Every single-byte change and every cut is caught. */
        for (pos = 0; pos < len; pos++) {
                static const char subst[] = {'A', 'z', '0', '_', '-', '~', 0};
                size_t s;
                for (s = 0; s < sizeof(subst); s++) {
                        if (buf[pos] == subst[s])
                                continue;
                        memcpy(mutated, buf, len);
                        mutated[pos] = subst[s];
                        if (sq_offsets_map_decode(mutated, len, &map, errstr,
                                                  sizeof(errstr)) == SQ_OK)
                                fail_msg("byte %zu set to 0x%02x was not "
                                         "caught",
                                         pos, (unsigned char)subst[s]);
                }
                if (pos >= 3 && sq_offsets_map_decode(buf, pos, &map, errstr,
                                                      sizeof(errstr)) == SQ_OK)
                        fail_msg("map cut to %zu bytes was not caught", pos);
        }
        /* Well-formed checksums around bad bodies: each one is refused
         * for what is wrong inside, and says where. */
        for (i = 0; i < SQ_ARRAY_SIZE(sealed_bad); i++) {
                char sealed[128];
                size_t n  = seal(sealed, sealed_bad[i].body);
                errstr[0] = '\0';
                assert_int_equal(sq_offsets_map_decode(sealed, n, &map, errstr,
                                                       sizeof(errstr)),
                                 SQ_ERR_DECODE);
                if (!strstr(errstr, sealed_bad[i].says))
                        fail_msg("\"%s\": error \"%s\" does not say \"%s\"",
                                 sealed_bad[i].body, errstr,
                                 sealed_bad[i].says);
                assert_null(map.ranges);
        }
        sq_offsets_destroy(offsets);
}

/* The next owner skips what the map says, commits past it, and carries
 * the part it has not read yet into its own map. */
static void test_inherited_map_skips_done_records(void **state) {
        sq_offsets_t *prev = build(50, 200, 1, blocks_of_50);
        sq_offsets_t *next = sq_offsets_new();
        char buf[4097], buf2[4097], errstr[256];
        sq_offsets_map_t map, map2;
        size_t len;
        bool done;
        int64_t o;
        int skipped = 0;
        (void)state;

        len = sq_offsets_map_encode(prev, 4096, buf, NULL, NULL);
        assert_int_equal(
            sq_offsets_map_decode(buf, len, &map, errstr, sizeof(errstr)),
            SQ_OK);
        assert_int_equal(map.done_cnt, 100); /* 100..149 and 200..249 */
        sq_offsets_inherit(next, &map);

        /* Read up to 120: 50..99 run, 100..120 are skipped. */
        for (o = 50; o <= 120; o++) {
                assert_int_equal(sq_offsets_admit(next, o, &done), SQ_OK);
                assert_int_equal(done, o >= 100);
                skipped += done;
        }
        assert_int_equal(skipped, 21);
        assert_int_equal(sq_offsets_in_flight(next), 50);
        assert_int_equal(sq_offsets_committable(next), 50);
        /* Its own map: 100..120 held done, 121..149 and 200..249 carried. */
        len = sq_offsets_map_encode(next, 4096, buf2, NULL, NULL);
        assert_int_equal(
            sq_offsets_map_decode(buf2, len, &map2, errstr, sizeof(errstr)),
            SQ_OK);
        assert_int_equal(map2.base, 50);
        assert_int_equal(map2.done_cnt, 100);
        assert_true(map_says_done(&map2, 100) && map_says_done(&map2, 149) &&
                    map_says_done(&map2, 200) && map_says_done(&map2, 249));
        assert_false(map_says_done(&map2, 150) || map_says_done(&map2, 250));
        sq_offsets_map_clear(&map2);
        /* Finishing 50..99 commits straight past the skipped ones. */
        for (o = 50; o < 100; o++)
                assert_int_equal(sq_offsets_mark_done(next, o), SQ_OK);
        assert_int_equal(sq_offsets_committable(next), 121);
        /* With nothing held, the map is just the carried part. */
        len = sq_offsets_map_encode(next, 4096, buf2, NULL, NULL);
        assert_int_equal(
            sq_offsets_map_decode(buf2, len, &map2, errstr, sizeof(errstr)),
            SQ_OK);
        assert_int_equal(map2.base, 121);
        assert_int_equal(map2.done_cnt, 29 + 50);
        sq_offsets_map_clear(&map2);
        /* A reset forgets the inherited map too. */
        sq_offsets_reset(next);
        assert_int_equal(sq_offsets_admit(next, 130, &done), SQ_OK);
        assert_false(done);
        sq_offsets_map_clear(&map);
        sq_offsets_destroy(prev);
        sq_offsets_destroy(next);
}

/* The O(1) bound is always at least the real size, under random work. */
static void test_map_bound_holds(void **state) {
        sq_offsets_t *offsets = sq_offsets_new();
        int64_t next          = 0, pending[512];
        size_t pending_cnt    = 0, step;
        char buf[65537];
        (void)state;

        rng_state = 0x9e3779b97f4a7c15ull;
        for (step = 0; step < 20000; step++) {
                size_t full, bound;
                if (pending_cnt < SQ_ARRAY_SIZE(pending) &&
                    (pending_cnt == 0 || rng_next() % 3 != 0)) {
                        next += 1 + (int64_t)(rng_next() % 2);
                        assert_int_equal(sq_offsets_admit(offsets, next, NULL),
                                         SQ_OK);
                        pending[pending_cnt++] = next;
                } else {
                        /* Finish a random one; the oldest rarely. */
                        size_t i = 1 + rng_next() % pending_cnt;
                        if (i >= pending_cnt)
                                i = rng_next() % 50 == 0 ? 0 : pending_cnt - 1;
                        assert_int_equal(
                            sq_offsets_mark_done(offsets, pending[i]), SQ_OK);
                        pending[i] = pending[--pending_cnt];
                        /* Keep pending sorted-insensitive: order does not
                         * matter for marking. */
                }
                sq_offsets_map_encode(offsets, 65536, buf, &full, NULL);
                bound = sq_offsets_map_bound(offsets);
                if (full > bound)
                        fail_msg("step %zu: map of %zu bytes over its bound "
                                 "%zu",
                                 step, full, bound);
        }
        sq_offsets_destroy(offsets);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_empty_tracker_has_nothing_to_commit),
            cmocka_unit_test(test_out_of_order_completion_commits_prefix),
            cmocka_unit_test(test_gaps_in_offsets_are_skipped),
            cmocka_unit_test(test_rejects_duplicates_and_unknown),
            cmocka_unit_test(test_ring_grows_and_wraps),
            cmocka_unit_test(test_map_round_trips),
            cmocka_unit_test(test_map_cut_to_budget),
            cmocka_unit_test(test_map_corrupt_is_refused),
            cmocka_unit_test(test_inherited_map_skips_done_records),
            cmocka_unit_test(test_map_bound_holds),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
