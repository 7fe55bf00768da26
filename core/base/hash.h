/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hash.h: the non-cryptographic hashes swarmq uses, once: FNV-1a in 64
 * and 32 bits, over bytes or a C string, and splitmix64's finaliser.
 *
 * DESIGN
 *   Every function takes the running hash and returns the next one, so a
 *   caller hashes several pieces as one byte string (start from
 *   SQ_HASH_FNV64_BASIS or SQ_HASH_FNV32_BASIS): the feature-flag bucket
 *   hashes "<flag>:<task id>" that way without building the string. Some
 *   values are contracts and must never change: the flag buckets
 *   (docs/configuration.md, tests/unit/test_flags.c) and the 24-bit check
 *   of the completed-offset map in commit metadata (offsets.h), which other
 *   instances and versions read. Others only spread keys over a table
 *   (capabilities, agent affinity, the dedup map, the ordering gate).
 *   Pure functions: any thread.
 */
#ifndef SQ_HASH_H
#define SQ_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SQ_HASH_FNV64_BASIS UINT64_C(0xcbf29ce484222325)
#define SQ_HASH_FNV64_PRIME UINT64_C(0x100000001b3)
#define SQ_HASH_FNV32_BASIS UINT32_C(0x811c9dc5)
#define SQ_HASH_FNV32_PRIME UINT32_C(0x01000193)

/**
 * @brief FNV-1a, 64 bits, of @p len bytes at @p buf (borrowed).
 * @param h the hash so far: SQ_HASH_FNV64_BASIS to start.
 * @returns the hash with the bytes added.
 */
uint64_t sq_hash_fnv1a64(const void *buf, size_t len, uint64_t h);

/** @brief sq_hash_fnv1a64() of the bytes of @p str, without its NUL. */
uint64_t sq_hash_fnv1a64_str(const char *str, uint64_t h);

/**
 * @brief FNV-1a, 32 bits, of @p len bytes at @p buf (borrowed).
 * @param h the hash so far: SQ_HASH_FNV32_BASIS to start.
 */
uint32_t sq_hash_fnv1a32(const void *buf, size_t len, uint32_t h);

/** @brief sq_hash_fnv1a32() of the bytes of @p str, without its NUL. */
uint32_t sq_hash_fnv1a32_str(const char *str, uint32_t h);

/**
 * @brief splitmix64's finaliser: spreads every bit of @p x over the
 *        result (FNV's low bits are weak for combined or short keys).
 */
uint64_t sq_hash_mix64(uint64_t x);

#endif /* SQ_HASH_H */
