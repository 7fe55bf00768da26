/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ordering.h: the ordering gate behind `ordering=key` and
 * `ordering=partition`: jobs that share an ordering key run one at a time,
 * in admission (offset) order; jobs with different keys run in parallel.
 *
 * DESIGN
 *   The poll thread admits every ordered job through the gate. A job whose
 *   key is idle may run at once (the caller pushes it to the scheduler);
 *   otherwise it is held on its key's FIFO and no executor ever sees it, so
 *   no thread blocks waiting for a key. When a job is freed (its result
 *   acknowledged, or dropped), releasing it hands back the next held job of
 *   its key, which the caller pushes in turn. A key's entry exists only
 *   while it has a job admitted and not freed, so memory is bounded by the
 *   admission window. Keys are 64-bit hashes: two keys that collide are
 *   merely serialized, never run concurrently by mistake. Items are
 *   intrusive (embedded in the job): the gate allocates one entry per busy
 *   key only. A mutex guards it because jobs are freed on the poll thread
 *   (acknowledgements) and on executor threads (drops); it is never held
 *   across a call out of this module.
 */
#ifndef SQ_ORDERING_H
#define SQ_ORDERING_H

#include "common.h"

typedef struct sq_order_item_s {
        struct sq_order_item_s *next; /* gate only */
        uint64_t key;
} sq_order_item_t;

typedef struct sq_order_s sq_order_t;

/** @returns an empty gate (caller owns, sq_order_destroy()). */
sq_order_t *sq_order_new(void);

/** @brief Frees the gate; items still held are not touched (take them
 *         with sq_order_take_all() first). NULL is a no-op. */
void sq_order_destroy(sq_order_t *order);

/**
 * @brief Admits @p item (borrowed until released or taken) under
 *        @p item->key.
 * @returns true when its key was idle: it runs now. false when it is held
 *          behind an earlier item of the same key.
 */
bool sq_order_admit(sq_order_t *order, sq_order_item_t *item);

/**
 * @brief Releases @p item, which must be the running item of its key.
 * @returns the next held item of the key, which is now its running item
 *          (the caller starts it), or NULL when the key is idle again.
 */
sq_order_item_t *sq_order_release(sq_order_t *order, sq_order_item_t *item);

/**
 * @brief Removes every held (not running) item, for shutdown.
 * @returns them as a list linked through @c next (caller frees them).
 */
sq_order_item_t *sq_order_take_held(sq_order_t *order);

/** @returns keys with an item admitted and not released. */
size_t sq_order_busy_keys(sq_order_t *order);

/**
 * @brief The key of a job: a hash of the lane, the partition and the key
 *        bytes (NULL key with 0 length: the partition alone).
 */
uint64_t sq_order_key(int lane, int32_t partition, const void *key,
                      size_t key_len);

#endif /* SQ_ORDERING_H */
