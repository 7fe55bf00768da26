/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hash.c: FNV-1a (64 and 32 bits) and splitmix64's finaliser (hash.h).
 *
 * DESIGN
 *   Written once, byte by byte, exactly as the FNV reference defines it
 *   (xor the byte, then multiply by the prime), because some results are
 *   stored or documented (hash.h says which): a faster variant would have
 *   to give the same values. Bytes are read as unsigned char, so the
 *   result does not depend on the sign of char. No state: any thread.
 */
#include "hash.h"

uint64_t sq_hash_fnv1a64(const void *buf, size_t len, uint64_t h) {
        const unsigned char *p = buf;
        size_t i;

        for (i = 0; i < len; i++)
                h = (h ^ p[i]) * SQ_HASH_FNV64_PRIME;
        return h;
}

uint64_t sq_hash_fnv1a64_str(const char *str, uint64_t h) {
        const unsigned char *p;

        for (p = (const unsigned char *)str; *p; p++)
                h = (h ^ *p) * SQ_HASH_FNV64_PRIME;
        return h;
}

uint32_t sq_hash_fnv1a32(const void *buf, size_t len, uint32_t h) {
        const unsigned char *p = buf;
        size_t i;

        for (i = 0; i < len; i++)
                h = (h ^ p[i]) * SQ_HASH_FNV32_PRIME;
        return h;
}

uint32_t sq_hash_fnv1a32_str(const char *str, uint32_t h) {
        const unsigned char *p;

        for (p = (const unsigned char *)str; *p; p++)
                h = (h ^ *p) * SQ_HASH_FNV32_PRIME;
        return h;
}

uint64_t sq_hash_mix64(uint64_t x) {
        x ^= x >> 30;
        x *= UINT64_C(0xbf58476d1ce4e5b9);
        x ^= x >> 27;
        x *= UINT64_C(0x94d049bb133111eb);
        x ^= x >> 31;
        return x;
}
