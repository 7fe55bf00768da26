/* SPDX-License-Identifier: Apache-2.0 */
/*
 * offsets.h: the per-partition completed-offset tracker behind swarmq's
 * at-least-once guarantee.
 *
 * Records of one partition are admitted in offset order but complete in any
 * order (tasks run in parallel). A record's offset becomes committable only
 * when it and every admitted record below it are done, so the committed
 * offset is always the contiguous completed prefix: a crash re-delivers
 * what was in flight, never skips it.
 *
 * DESIGN
 *   A ring buffer of (offset, done) entries in admission order. Admission
 *   appends (offsets strictly increase; gaps from compaction or transaction
 *   markers are fine because only admitted offsets are tracked). Marking
 *   done finds the entry by binary search (O(log n)) and then pops the
 *   done prefix (amortized O(1)). The ring grows by doubling; its size is
 *   bounded by the admission window, not by the partition's backlog.
 *   Owned and used by the poll thread only: no locks.
 */
#ifndef SQ_OFFSETS_H
#define SQ_OFFSETS_H

#include "common.h"

typedef struct sq_offsets_s sq_offsets_t;

/** @returns an empty tracker (caller owns, sq_offsets_destroy()). */
sq_offsets_t *sq_offsets_new(void);
/** @brief Frees a tracker; NULL is a no-op. */
void sq_offsets_destroy(sq_offsets_t *offsets);

/**
 * @brief Admits @p offset as in flight.
 * @returns SQ_OK, or SQ_ERR_INVALID_ARG when @p offset is not above the
 *          last admitted offset (a re-delivery the caller must skip).
 */
sq_err_t sq_offsets_admit(sq_offsets_t *offsets, int64_t offset);

/**
 * @brief Marks an admitted offset done.
 * @returns SQ_OK, or SQ_ERR_NOT_FOUND when @p offset is not in flight
 *          (never admitted, already done, or dropped by a reset).
 */
sq_err_t sq_offsets_mark_done(sq_offsets_t *offsets, int64_t offset);

/**
 * @returns the offset to commit (the first admitted offset not yet done,
 *          or one past the last admitted when all are done), or -1 when
 *          nothing was ever admitted since the last reset.
 */
int64_t sq_offsets_committable(const sq_offsets_t *offsets);

/** @returns how many admitted offsets are not done yet. */
size_t sq_offsets_in_flight(const sq_offsets_t *offsets);

/** @returns entries held (in flight plus done above the first in flight). */
size_t sq_offsets_held(const sq_offsets_t *offsets);

/** @brief Forgets everything (partition revoked or re-assigned). */
void sq_offsets_reset(sq_offsets_t *offsets);

#endif /* SQ_OFFSETS_H */
