/* SPDX-License-Identifier: Apache-2.0 */
/*
 * offsets.h: the per-partition completed-offset tracker behind swarmq's
 * at-least-once guarantee, and the completed-offset map it writes into
 * (and reads back from) the commit metadata.
 *
 * Records of one partition are admitted in offset order but complete in any
 * order (tasks run in parallel). A record's offset becomes committable only
 * when it and every admitted record below it are done, so the committed
 * offset is always the contiguous completed prefix: a crash re-delivers
 * what was in flight, never skips it. The records completed above that
 * prefix travel with the commit as a compact map in the OffsetCommit
 * metadata string, so the partition's next owner (after a rebalance or a
 * crash) skips work that was already done instead of running it again.
 *
 * DESIGN
 *   A ring buffer of (offset, done) entries in admission order. Admission
 *   appends (offsets strictly increase; gaps from compaction or transaction
 *   markers are fine because only admitted offsets are tracked). Marking
 *   done finds the entry by binary search (O(log n)) and then pops the
 *   done prefix (amortized O(1)). The ring grows by doubling; its size is
 *   bounded by the admission window, not by the partition's backlog.
 *   The tracker also counts done/not-done transitions between neighbouring
 *   entries in O(1) per operation, which bounds the map's encoded size
 *   without encoding it (sq_offsets_map_bound()).
 *   Owned and used by the poll thread only: no locks.
 *
 *   The map (version 1) is plain ASCII, so it is a valid metadata string
 *   for every client and tool:
 *     "SQ1" KIND VLQ(base) VLQ(n) PAYLOAD CHECK
 *   base is the committed offset the map is relative to (a map whose base
 *   is not the committed offset is stale and ignored). KIND 'R' is
 *   run-length: n done runs, then the lengths of alternating not-done /
 *   done runs starting at base (the first not-done run may be empty, the
 *   others are stored minus one). KIND 'B' is a bitset: n bits, six per
 *   character, bit i = offset base+i is done. Integers are VLQs in the
 *   base64url alphabet (5 payload bits and a continuation bit per
 *   character, as in source maps); CHECK is 24 bits of FNV-1a over what
 *   precedes it, in 4 characters. The encoder writes whichever kind is
 *   shorter. Offsets that were never admitted between two admitted ones
 *   (compacted away, transaction markers) take the status of the next
 *   admitted offset: no consumer is ever handed them. A map that would
 *   not fit the budget is cut after its last whole done run (or bit)
 *   that fits: a shorter map skips less, never wrongly.
 */
#ifndef SQ_OFFSETS_H
#define SQ_OFFSETS_H

#include "common.h"

typedef struct sq_offsets_s sq_offsets_t;

/** A decoded completed-offset map. */
typedef struct sq_offsets_map_s {
        int64_t base;      /**< the committed offset it is relative to */
        int64_t *ranges;   /**< done offsets: [ranges[2i], ranges[2i+1]) */
        size_t ranges_cnt; /**< intervals (pairs) in @c ranges */
        int64_t done_cnt;  /**< offsets covered by the intervals */
} sq_offsets_map_t;

/** Smallest budget that can hold a map at all (header and checksum). */
#define SQ_OFFSETS_MAP_MIN_BUDGET 32

/** @returns an empty tracker (caller owns, sq_offsets_destroy()). */
sq_offsets_t *sq_offsets_new(void);
/** @brief Frees a tracker; NULL is a no-op. */
void sq_offsets_destroy(sq_offsets_t *offsets);

/**
 * @brief Admits @p offset as in flight, or as already done when the map
 *        inherited from the previous owner says so.
 * @param donep set to true when the offset is recorded done at once (the
 *        caller must not run the record); may be NULL.
 * @returns SQ_OK, or SQ_ERR_INVALID_ARG when @p offset is not above the
 *          last admitted offset (a re-delivery the caller must skip).
 */
sq_err_t sq_offsets_admit(sq_offsets_t *offsets, int64_t offset, bool *donep);

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

/** @brief Forgets everything, inherited map included (partition revoked
 *         or re-assigned). */
void sq_offsets_reset(sq_offsets_t *offsets);

/**
 * @brief Takes the previous owner's completed offsets: records in @p map
 *        admitted from now on are recorded done at once, and the part not
 *        admitted yet is carried into this owner's own maps.
 * @param map borrowed (copied); its base should be the committed offset.
 */
void sq_offsets_inherit(sq_offsets_t *offsets, const sq_offsets_map_t *map);

/**
 * @brief Encodes the map of completed offsets above the committable
 *        offset, cut to fit @p budget characters.
 * @param buf room for @p budget + 1 bytes; NUL-terminated on return.
 * @param fullp if not NULL, set to the untruncated map's length (0 when
 *        there is nothing to map).
 * @param donep if not NULL, set to how many offsets the written map
 *        marks done.
 * @returns the length written: 0 when there is nothing to map (nothing
 *          done above the prefix) or @p budget cannot hold any map.
 */
size_t sq_offsets_map_encode(const sq_offsets_t *offsets, size_t budget,
                             char *buf, size_t *fullp, int64_t *donep);

/**
 * @returns an upper bound of the untruncated map's length, in O(1): when
 *          it is under a limit the map is too.
 */
size_t sq_offsets_map_bound(const sq_offsets_t *offsets);

/**
 * @brief Decodes a map read from commit metadata.
 * @param map filled on success (free with sq_offsets_map_clear()).
 * @returns SQ_OK, SQ_ERR_NOT_FOUND when @p str is not a swarmq map at all
 *          (empty, or another client's metadata), or SQ_ERR_DECODE with
 *          @p errstr naming the byte where it went wrong.
 */
sq_err_t sq_offsets_map_decode(const char *str, size_t len,
                               sq_offsets_map_t *map, char *errstr,
                               size_t errstr_size);

/** @brief Frees what a decoded map holds; the struct can be reused. */
void sq_offsets_map_clear(sq_offsets_map_t *map);

#endif /* SQ_OFFSETS_H */
