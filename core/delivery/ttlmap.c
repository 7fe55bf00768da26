/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ttlmap.c: bounded TTL map of string keys (see ttlmap.h for the design).
 */
#include "ttlmap.h"
#include "hash.h"

#include <string.h>

/* The index: open addressing with linear probing over 2 cells or more
 * per slot. A cell holds a slot's index (low 24 bits) and 8 bits of its
 * key's hash (the high ones; the low ones pick the home cell), or EMPTY.
 * A lookup of an id that is not held (the common case: every new task)
 * reads one cell's cache line and, 255 times in 256, never the ring;
 * the chained table this replaced read a bucket, then the slot behind
 * it (two cache misses each for the dedup map, 5 % of the instance's
 * CPU, issue 14). Same 4 bytes per cell. */
#define EMPTY     UINT32_MAX
#define SLOT_MASK ((uint32_t)0xffffff)
#define TAG_MASK  (~SLOT_MASK)

/* Keys up to this long (a UUID is 36) live in their slot: no allocation
 * per insert, no pointer to follow per lookup. Longer ones are copied to
 * the heap. A slot is then 64 bytes, a cache line's size. */
#define KEY_INLINE_MAX 39

typedef struct ttl_entry_s {
        int64_t at_us;
        uint32_t hash;
        uint32_t unused; /* keeps a slot at 64 bytes */
        uint32_t len;    /* the key's length */
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
        uint32_t *cells; /* the index (see EMPTY) */
        size_t cells_mask;
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
        /* Mix the high bits down: the home cell takes the low ones, the
         * tag the high ones. */
        h ^= h >> 15;
        h *= 0x2c1b3c6du;
        h ^= h >> 12;
        return h;
}

sq_ttlmap_t *sq_ttlmap_new(size_t max_entries, int64_t ttl_us) {
        sq_ttlmap_t *map = sq_calloc(1, sizeof(*map));
        size_t ncells    = 16;

        /* A slot's index fits in a cell, and EMPTY is never one. */
        sq_assert(max_entries >= 1 && max_entries < SLOT_MASK);
        while (ncells < max_entries * 2)
                ncells *= 2;
        map->ring        = sq_calloc(max_entries, sizeof(*map->ring));
        map->max_entries = max_entries;
        map->cells       = sq_malloc(ncells * sizeof(*map->cells));
        map->cells_mask  = ncells - 1;
        map->ttl_us      = ttl_us;
        memset(map->cells, 0xff, ncells * sizeof(*map->cells)); /* EMPTY */
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
        sq_free(map->cells);
        sq_free(map);
}

/* Removes the entry in @p slot from the index (backward-shift deletion:
 * the cells after it that may move closer to their home cell do, so no
 * probe ever stops early) and frees what it holds. */
static void unlink_slot(sq_ttlmap_t *map, int32_t slot) {
        ttl_entry_t *old = &map->ring[slot];
        size_t mask      = map->cells_mask;
        size_t i         = old->hash & mask, j, home;
        uint32_t cell;

        while ((map->cells[i] & SLOT_MASK) != (uint32_t)slot) {
                sq_assert(map->cells[i] != EMPTY);
                i = (i + 1) & mask;
        }
        for (j = i;;) {
                j    = (j + 1) & mask;
                cell = map->cells[j];
                if (cell == EMPTY)
                        break;
                home = map->ring[cell & SLOT_MASK].hash & mask;
                /* It may fill cell i when i is between its home and j. */
                if (((j - home) & mask) >= ((j - i) & mask)) {
                        map->cells[i] = cell;
                        i             = j;
                }
        }
        map->cells[i] = EMPTY;
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

/* Looks @p key up; @p posp (when not NULL) gets its cell, or the empty
 * cell where it would go. */
static ttl_entry_t *find(const sq_ttlmap_t *map, const char *key, size_t len,
                         uint32_t hash, size_t *posp) {
        size_t i     = hash & map->cells_mask;
        uint32_t tag = hash & TAG_MASK, cell;

        for (;; i = (i + 1) & map->cells_mask) {
                ttl_entry_t *entry;
                cell = map->cells[i];
                if (cell == EMPTY)
                        break;
                if ((cell & TAG_MASK) != tag)
                        continue;
                entry = &map->ring[cell & SLOT_MASK];
                if (entry->hash == hash && entry->len == len &&
                    !memcmp(entry_key(entry), key, len)) {
                        if (posp)
                                *posp = i;
                        return entry;
                }
        }
        if (posp)
                *posp = i;
        return NULL;
}

bool sq_ttlmap_insert(sq_ttlmap_t *map, const char *key, int64_t now_us) {
        uint32_t hash = hash_key(key);
        ttl_entry_t *entry;
        int32_t slot;
        size_t len, pos;

        len = strlen(key);
        sq_assert(len < UINT32_MAX);
        expire(map, now_us);
        if (find(map, key, len, hash, &pos))
                return false;
        if (map->cnt == map->max_entries) {
                pop_oldest(map);
                map->evicted++;
                /* The pop may have moved cells: look for room again. */
                find(map, key, len, hash, &pos);
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
        entry->at_us    = now_us;
        entry->hash     = hash;
        map->cells[pos] = (hash & TAG_MASK) | (uint32_t)slot;
        map->cnt++;
        return true;
}

bool sq_ttlmap_contains(sq_ttlmap_t *map, const char *key, int64_t now_us) {
        expire(map, now_us);
        return find(map, key, strlen(key), hash_key(key), NULL) != NULL;
}

uint32_t sq_ttlmap_key_hash(const char *key) {
        return hash_key(key);
}

size_t sq_ttlmap_index_cells(const sq_ttlmap_t *map) {
        return map->cells_mask + 1;
}

size_t sq_ttlmap_count(const sq_ttlmap_t *map) {
        return map->cnt;
}

uint64_t sq_ttlmap_evicted(const sq_ttlmap_t *map) {
        return map->evicted;
}

size_t sq_ttlmap_memory(const sq_ttlmap_t *map) {
        return sizeof(*map) + map->max_entries * sizeof(*map->ring) +
               (map->cells_mask + 1) * sizeof(*map->cells) + map->key_bytes;
}
