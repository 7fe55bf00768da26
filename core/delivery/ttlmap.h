/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ttlmap.h: a bounded map of recently seen string keys that forgets them
 * after a time to live, or oldest first when full. swarmq keeps the ids of
 * recently succeeded tasks in one, so a duplicate delivery of a task that
 * already succeeded is dropped instead of run again.
 *
 * DESIGN
 *   A ring of max_entries slots in insertion order (the oldest at its
 *   head) and a chained hash table over the slots (bucket heads and next
 *   links are slot indices, 2 buckets per slot, so chains stay short).
 *   Insert, lookup and expiry are O(1) (expected; amortized for expiry):
 *   expiry pops the ring's head while it is older than the TTL, eviction
 *   pops it when the ring is full. Keys are copied (owned by the map):
 *   into their slot up to 39 bytes (a slot is 64 bytes, so an insert
 *   allocates nothing and a lookup follows no pointer), to the
 *   heap when longer. Memory is fixed at creation apart from the long
 *   keys' copies: no resizing.
 *   Not thread-safe: one owner thread (the poll thread in the daemon).
 *   Time is passed in by the caller (monotonic microseconds), so tests
 *   need no clock.
 */
#ifndef SQ_TTLMAP_H
#define SQ_TTLMAP_H

#include "common.h"

typedef struct sq_ttlmap_s sq_ttlmap_t;

/**
 * @brief Creates a map.
 * @param max_entries the most keys held at once (>= 1).
 * @param ttl_us how long a key is remembered; <= 0 = until evicted.
 * @returns the map (caller owns, sq_ttlmap_destroy()).
 */
sq_ttlmap_t *sq_ttlmap_new(size_t max_entries, int64_t ttl_us);

/** @brief Frees the map and its keys; NULL is a no-op. */
void sq_ttlmap_destroy(sq_ttlmap_t *map);

/**
 * @brief Remembers @p key (copied) from @p now_us, evicting the oldest key
 *        when full. A key already held keeps its first time.
 * @returns true when the key was added, false when it was already held.
 */
bool sq_ttlmap_insert(sq_ttlmap_t *map, const char *key, int64_t now_us);

/** @returns whether @p key is held and not older than the TTL at @p now_us
 *           (expired keys are dropped on the way). */
bool sq_ttlmap_contains(sq_ttlmap_t *map, const char *key, int64_t now_us);

/**
 * @brief Forgets the @p cnt keys inserted last (all of them when fewer are
 *        held): the keys of work that was undone (an aborted transaction)
 *        whose older keys still stand.
 */
void sq_ttlmap_forget_newest(sq_ttlmap_t *map, size_t cnt);

/** @returns keys held now (expired ones may linger until the next call). */
size_t sq_ttlmap_count(const sq_ttlmap_t *map);

/** @returns keys dropped because the map was full. */
uint64_t sq_ttlmap_evicted(const sq_ttlmap_t *map);

/**
 * @brief The hash @p key is filed under: its low bits pick the key's
 *        bucket. Tests pick keys whose hashes collide with it.
 */
uint32_t sq_ttlmap_key_hash(const char *key);

/** @returns the number of buckets (a power of two, at least twice
 *           max_entries); a key's bucket is its hash modulo it. */
size_t sq_ttlmap_buckets(const sq_ttlmap_t *map);

/** @returns bytes the map holds: its fixed tables plus the copies of keys
 *           too long for a slot. */
size_t sq_ttlmap_memory(const sq_ttlmap_t *map);

#endif /* SQ_TTLMAP_H */
