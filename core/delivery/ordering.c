/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ordering.c: the ordering gate (see ordering.h for the design).
 */
#include "ordering.h"
#include "hash.h"

#include <pthread.h>

typedef struct key_entry_s {
        struct key_entry_s *next; /* bucket chain */
        uint64_t key;
        sq_order_item_t *head; /* running item; held ones follow */
        sq_order_item_t *tail;
} key_entry_t;

struct sq_order_s {
        pthread_mutex_t lock;
        key_entry_t **buckets;
        size_t buckets_cnt; /* power of two */
        size_t keys;        /* busy keys */
};

#define BUCKETS_INITIAL 256

sq_order_t *sq_order_new(void) {
        sq_order_t *order = sq_calloc(1, sizeof(*order));
        pthread_mutex_init(&order->lock, NULL);
        order->buckets_cnt = BUCKETS_INITIAL;
        order->buckets = sq_calloc(order->buckets_cnt, sizeof(*order->buckets));
        return order;
}

void sq_order_destroy(sq_order_t *order) {
        size_t i;
        if (!order)
                return;
        for (i = 0; i < order->buckets_cnt; i++) {
                key_entry_t *entry = order->buckets[i], *next;
                for (; entry; entry = next) {
                        next = entry->next;
                        sq_free(entry);
                }
        }
        sq_free(order->buckets);
        pthread_mutex_destroy(&order->lock);
        sq_free(order);
}

static key_entry_t **slot_of(sq_order_t *order, uint64_t key) {
        key_entry_t **link =
            &order->buckets[(key ^ (key >> 29)) & (order->buckets_cnt - 1)];
        while (*link && (*link)->key != key)
                link = &(*link)->next;
        return link;
}

/* Doubles the buckets when keys outnumber them (called with the lock). */
static void grow(sq_order_t *order) {
        size_t old_cnt    = order->buckets_cnt, i;
        key_entry_t **old = order->buckets;

        order->buckets_cnt = old_cnt * 2;
        order->buckets = sq_calloc(order->buckets_cnt, sizeof(*order->buckets));
        for (i = 0; i < old_cnt; i++) {
                key_entry_t *entry = old[i], *next;
                for (; entry; entry = next) {
                        key_entry_t **link =
                            &order->buckets[(entry->key ^ (entry->key >> 29)) &
                                            (order->buckets_cnt - 1)];
                        next        = entry->next;
                        entry->next = *link;
                        *link       = entry;
                }
        }
        sq_free(old);
}

bool sq_order_admit(sq_order_t *order, sq_order_item_t *item) {
        key_entry_t **link, *entry;
        bool run;

        item->next = NULL;
        pthread_mutex_lock(&order->lock);
        link = slot_of(order, item->key);
        if ((entry = *link)) {
                entry->tail->next = item;
                entry->tail       = item;
                run               = false;
        } else {
                entry       = sq_calloc(1, sizeof(*entry));
                entry->key  = item->key;
                entry->head = entry->tail = item;
                *link                     = entry;
                if (++order->keys > order->buckets_cnt)
                        grow(order);
                run = true;
        }
        pthread_mutex_unlock(&order->lock);
        return run;
}

sq_order_item_t *sq_order_release(sq_order_t *order, sq_order_item_t *item) {
        key_entry_t **link, *entry;
        sq_order_item_t *next;

        pthread_mutex_lock(&order->lock);
        link  = slot_of(order, item->key);
        entry = *link;
        sq_assert(entry && entry->head == item);
        next        = item->next;
        item->next  = NULL;
        entry->head = next;
        if (!next) {
                *link = entry->next;
                sq_free(entry);
                order->keys--;
        }
        pthread_mutex_unlock(&order->lock);
        return next;
}

sq_order_item_t *sq_order_take_held(sq_order_t *order) {
        sq_order_item_t *list = NULL, **tail = &list;
        size_t i;

        pthread_mutex_lock(&order->lock);
        for (i = 0; i < order->buckets_cnt; i++) {
                key_entry_t *entry;
                for (entry = order->buckets[i]; entry; entry = entry->next) {
                        if (!entry->head->next)
                                continue;
                        *tail             = entry->head->next;
                        tail              = &entry->tail->next;
                        entry->head->next = NULL;
                        entry->tail       = entry->head;
                }
        }
        pthread_mutex_unlock(&order->lock);
        return list;
}

size_t sq_order_busy_keys(sq_order_t *order) {
        size_t keys;
        pthread_mutex_lock(&order->lock);
        keys = order->keys;
        pthread_mutex_unlock(&order->lock);
        return keys;
}

uint64_t sq_order_key(int lane, int32_t partition, const void *key,
                      size_t key_len) {
        uint32_t part = (uint32_t)partition;
        unsigned char bytes[5];
        uint64_t h;

        /* FNV-1a over the lane (one step of its whole value), the
         * partition's 4 bytes (least significant first), a separator, so
         * (partition, "") and (partition, no key) differ from keys that
         * start with the same bytes, then the key. */
        h = (SQ_HASH_FNV64_BASIS ^ (uint64_t)(unsigned)lane) *
            SQ_HASH_FNV64_PRIME;
        bytes[0] = (unsigned char)(part & 0xff);
        bytes[1] = (unsigned char)((part >> 8) & 0xff);
        bytes[2] = (unsigned char)((part >> 16) & 0xff);
        bytes[3] = (unsigned char)((part >> 24) & 0xff);
        bytes[4] = key ? 1 : 0;
        h        = sq_hash_fnv1a64(bytes, sizeof(bytes), h);
        return key_len ? sq_hash_fnv1a64(key, key_len, h) : h;
}
