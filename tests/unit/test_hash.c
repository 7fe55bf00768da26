/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hash.c: FNV-1a 64 and 32 give the reference test vectors (the
 * values other implementations compute, so stored and documented hashes
 * stay readable), hashing in pieces equals hashing the whole, the string
 * and byte forms agree, and splitmix64's finaliser gives its known values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common.h"
#include "hash.h"

/* Vectors of the FNV reference (Fowler, Noll, Vo; isthe.com/chongo/tech
 * /comp/fnv), and bytes above 0x7f to catch a signed-char reading. */
static const struct {
        const char *str;
        uint64_t h64;
        uint32_t h32;
} vectors[] = {
    {"", UINT64_C(0xcbf29ce484222325), 0x811c9dc5u},
    {"a", UINT64_C(0xaf63dc4c8601ec8c), 0xe40c292cu},
    {"foobar", UINT64_C(0x85944171f73967e8), 0xbf9cf968u},
    {"\xff\x80", UINT64_C(0x0a9a2607b6f6e56a), 0xee1eea4au},
};

static void test_vectors(void **state) {
        size_t i;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(vectors); i++) {
                const char *str = vectors[i].str;
                assert_int_equal(
                    sq_hash_fnv1a64(str, strlen(str), SQ_HASH_FNV64_BASIS),
                    vectors[i].h64);
                assert_int_equal(sq_hash_fnv1a64_str(str, SQ_HASH_FNV64_BASIS),
                                 vectors[i].h64);
                assert_int_equal(
                    sq_hash_fnv1a32(str, strlen(str), SQ_HASH_FNV32_BASIS),
                    vectors[i].h32);
                assert_int_equal(sq_hash_fnv1a32_str(str, SQ_HASH_FNV32_BASIS),
                                 vectors[i].h32);
        }
}

/* Any split of a string hashes like the whole: how the flag bucket hashes
 * "<flag>:<task id>" without building it. */
static void test_pieces(void **state) {
        static const char whole[] = "ranked_selection:task-0001";
        size_t cut, len = strlen(whole);
        uint64_t h64;
        uint32_t h32;
        (void)state;

        for (cut = 0; cut <= len; cut++) {
                h64 = sq_hash_fnv1a64(whole, cut, SQ_HASH_FNV64_BASIS);
                h64 = sq_hash_fnv1a64_str(whole + cut, h64);
                assert_int_equal(
                    h64, sq_hash_fnv1a64_str(whole, SQ_HASH_FNV64_BASIS));
                h32 = sq_hash_fnv1a32(whole, cut, SQ_HASH_FNV32_BASIS);
                h32 = sq_hash_fnv1a32(whole + cut, len - cut, h32);
                assert_int_equal(
                    h32, sq_hash_fnv1a32_str(whole, SQ_HASH_FNV32_BASIS));
        }
        /* The length counts, NULs included: a byte form is not a string. */
        assert_int_not_equal(sq_hash_fnv1a64("a\0", 2, SQ_HASH_FNV64_BASIS),
                             sq_hash_fnv1a64_str("a", SQ_HASH_FNV64_BASIS));
}

static void test_mix64(void **state) {
        (void)state;
        /* splitmix64 seeded with 0: its first output (the generator adds
         * the golden gamma, then finalises). */
        assert_int_equal(sq_hash_mix64(UINT64_C(0x9e3779b97f4a7c15)),
                         UINT64_C(0xe220a8397b1dcdaf));
        assert_int_equal(sq_hash_mix64(0), 0);
        assert_int_equal(sq_hash_mix64(1), UINT64_C(0x5692161d100b05e5));
        assert_int_equal(sq_hash_mix64(UINT64_C(0x0123456789abcdef)),
                         UINT64_C(0xb2c058e4ebb5112c));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_vectors),
            cmocka_unit_test(test_pieces),
            cmocka_unit_test(test_mix64),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
