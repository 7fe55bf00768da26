/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ttlmap.c: bounded TTL map of string keys (see ttlmap.h for the design).
 */
#include "ttlmap.h"
#include "hash.h"

#include <string.h>

#define NIL (-1)

/* Keys up to this long (a UUID is 36) live in their slot: no allocation
 * per insert, no pointer to follow per lookup. Longer ones are copied to
 * the heap. A slot is then 64 bytes, a cache line's size. */
#define KEY_INLINE_MAX 39

typedef struct ttl_entry_s {
        int64_t at_us;
        uint32_t hash;
        int32_t next; /* next slot in the same bucket, or NIL */
        uint32_t len; /* the key's length */
        union {
                char bytes[KEY_INLINE_MAX + 1]; /* len <= KEY_INLINE_MAX */
                char *heap;                     /* owned, otherwise */
        } key;
} ttl_entry_t;
_Static_assert(sizeof(ttl_entry_t) == 64, "a slot is 64 bytes");

static const char *entry_key(const ttl_entry_t *entry) {
        return entry->len <= KEY_INLINE_MAX ? entry->key.bytes
                                            : entry->key.heap;
}

struct sq_ttlmap_s {
        ttl_entry_t *ring; /* max_entries slots, oldest at head */
        size_t max_entries;
        size_t head;
        size_t cnt;
        int32_t *buckets; /* slot index of each chain's first entry */
        size_t buckets_mask;
        int64_t ttl_us;
        size_t key_bytes; /* bytes held by long keys' copies */
        uint64_t evicted;
};

/* Frees what a slot's key holds (a long key's copy). */
static void entry_clear(sq_ttlmap_t *map, ttl_entry_t *entry) {
        if (entry->len > KEY_INLINE_MAX) {
                map->key_bytes -= entry->len + 1;
                sq_free(entry->key.heap);
        }
        entry->len = 0;
}

static uint32_t hash_key(const char *key) {
        uint32_t h = sq_hash_fnv1a32_str(key, SQ_HASH_FNV32_BASIS);
        /* Mix the high bits down: buckets take the low ones. */
        h ^= h >> 15;
        h *= 0x2c1b3c6du;
        h ^= h >> 12;
        return h;
}

sq_ttlmap_t *sq_ttlmap_new(size_t max_entries, int64_t ttl_us) {
        sq_ttlmap_t *map = sq_calloc(1, sizeof(*map));
        size_t nbuckets  = 16, i;

        sq_assert(max_entries >= 1 && max_entries <= INT32_MAX / 2);
        while (nbuckets < max_entries * 2)
                nbuckets *= 2;
        map->ring         = sq_calloc(max_entries, sizeof(*map->ring));
        map->max_entries  = max_entries;
        map->buckets      = sq_malloc(nbuckets * sizeof(*map->buckets));
        map->buckets_mask = nbuckets - 1;
        map->ttl_us       = ttl_us;
        for (i = 0; i < nbuckets; i++)
                map->buckets[i] = NIL;
        return map;
}

void sq_ttlmap_destroy(sq_ttlmap_t *map) {
        size_t i;
        if (!map)
                return;
        for (i = 0; i < map->cnt; i++)
                entry_clear(map,
                            &map->ring[(map->head + i) % map->max_entries]);
        sq_free(map->ring);
        sq_free(map->buckets);
        sq_free(map);
}

/* Removes the entry in @p slot from its chain and frees what it holds. */
static void unlink_slot(sq_ttlmap_t *map, int32_t slot) {
        ttl_entry_t *old = &map->ring[slot];
        int32_t *link    = &map->buckets[old->hash & map->buckets_mask];

        while (*link != slot) {
                sq_assert(*link != NIL);
                link = &map->ring[*link].next;
        }
        *link = old->next;
        entry_clear(map, old);
        map->cnt--;
}

/* Removes the oldest entry (the ring's head). */
static void pop_oldest(sq_ttlmap_t *map) {
        unlink_slot(map, (int32_t)map->head);
        map->head = (map->head + 1) % map->max_entries;
}

void sq_ttlmap_forget_newest(sq_ttlmap_t *map, size_t cnt) {
        /* The newest entry is the ring's tail: removing it leaves the
         * ring contiguous. */
        while (cnt-- > 0 && map->cnt > 0)
                unlink_slot(map, (int32_t)((map->head + map->cnt - 1) %
                                           map->max_entries));
}

static bool expired(const sq_ttlmap_t *map, const ttl_entry_t *entry,
                    int64_t now_us) {
        return map->ttl_us > 0 && now_us - entry->at_us >= map->ttl_us;
}

static void expire(sq_ttlmap_t *map, int64_t now_us) {
        while (map->cnt > 0 && expired(map, &map->ring[map->head], now_us))
                pop_oldest(map);
}

static ttl_entry_t *find(const sq_ttlmap_t *map, const char *key, size_t len,
                         uint32_t hash) {
        int32_t slot = map->buckets[hash & map->buckets_mask];
        while (slot != NIL) {
                ttl_entry_t *entry = &map->ring[slot];
                if (entry->hash == hash && entry->len == len &&
                    !memcmp(entry_key(entry), key, len))
                        return entry;
                slot = entry->next;
        }
        return NULL;
}

bool sq_ttlmap_insert(sq_ttlmap_t *map, const char *key, int64_t now_us) {
        uint32_t hash = hash_key(key);
        ttl_entry_t *entry;
        int32_t slot;
        size_t len;

        len = strlen(key);
        sq_assert(len < UINT32_MAX);
        expire(map, now_us);
        if (find(map, key, len, hash))
                return false;
        if (map->cnt == map->max_entries) {
                pop_oldest(map);
                map->evicted++;
        }
        slot       = (int32_t)((map->head + map->cnt) % map->max_entries);
        entry      = &map->ring[slot];
        entry->len = (uint32_t)len;
        if (len <= KEY_INLINE_MAX) {
                memcpy(entry->key.bytes, key, len + 1);
        } else {
                entry->key.heap = sq_strndup(key, len);
                map->key_bytes += len + 1;
        }
        entry->at_us = now_us;
        entry->hash  = hash;
        entry->next  = map->buckets[hash & map->buckets_mask];
        map->buckets[hash & map->buckets_mask] = slot;
        map->cnt++;
        return true;
}

bool sq_ttlmap_contains(sq_ttlmap_t *map, const char *key, int64_t now_us) {
        expire(map, now_us);
        return find(map, key, strlen(key), hash_key(key)) != NULL;
}

uint32_t sq_ttlmap_key_hash(const char *key) {
        return hash_key(key);
}

size_t sq_ttlmap_buckets(const sq_ttlmap_t *map) {
        return map->buckets_mask + 1;
}

size_t sq_ttlmap_count(const sq_ttlmap_t *map) {
        return map->cnt;
}

uint64_t sq_ttlmap_evicted(const sq_ttlmap_t *map) {
        return map->evicted;
}

size_t sq_ttlmap_memory(const sq_ttlmap_t *map) {
        return sizeof(*map) + map->max_entries * sizeof(*map->ring) +
               (map->buckets_mask + 1) * sizeof(*map->buckets) + map->key_bytes;
}
