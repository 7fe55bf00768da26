/* SPDX-License-Identifier: Apache-2.0 */
/*
 * offsets.c: the per-partition completed-offset tracker (see offsets.h for
 * the design and the invariants).
 */
#include "offsets.h"

typedef struct offset_entry_s {
        int64_t offset;
        bool done;
} offset_entry_t;

struct sq_offsets_s {
        offset_entry_t *ring; /* capacity entries, power of two */
        size_t capacity;
        size_t head; /* index of the oldest held entry */
        size_t cnt;  /* entries held */
        size_t in_flight;
        int64_t last_admitted; /* -1 when none since reset */
};

#define RING_INITIAL_CAPACITY 64

sq_offsets_t *sq_offsets_new(void) {
        sq_offsets_t *offsets = sq_calloc(1, sizeof(*offsets));
        offsets->capacity     = RING_INITIAL_CAPACITY;
        offsets->ring = sq_calloc(offsets->capacity, sizeof(*offsets->ring));
        offsets->last_admitted = -1;
        return offsets;
}

void sq_offsets_destroy(sq_offsets_t *offsets) {
        if (!offsets)
                return;
        sq_free(offsets->ring);
        sq_free(offsets);
}

static offset_entry_t *entry_at(const sq_offsets_t *offsets, size_t i) {
        return &offsets->ring[(offsets->head + i) & (offsets->capacity - 1)];
}

static void grow(sq_offsets_t *offsets) {
        size_t new_capacity  = offsets->capacity * 2;
        offset_entry_t *ring = sq_calloc(new_capacity, sizeof(*ring));
        size_t i;

        for (i = 0; i < offsets->cnt; i++)
                ring[i] = *entry_at(offsets, i);
        sq_free(offsets->ring);
        offsets->ring     = ring;
        offsets->capacity = new_capacity;
        offsets->head     = 0;
}

sq_err_t sq_offsets_admit(sq_offsets_t *offsets, int64_t offset) {
        offset_entry_t *entry;

        if (offset < 0 || offset <= offsets->last_admitted)
                return SQ_ERR_INVALID_ARG;
        if (offsets->cnt == offsets->capacity)
                grow(offsets);
        entry         = entry_at(offsets, offsets->cnt);
        entry->offset = offset;
        entry->done   = false;
        offsets->cnt++;
        offsets->in_flight++;
        offsets->last_admitted = offset;
        return SQ_OK;
}

sq_err_t sq_offsets_mark_done(sq_offsets_t *offsets, int64_t offset) {
        size_t lo = 0, hi = offsets->cnt;
        offset_entry_t *entry;

        /* Entries are sorted by offset: binary search. */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (entry_at(offsets, mid)->offset < offset)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo == offsets->cnt)
                return SQ_ERR_NOT_FOUND;
        entry = entry_at(offsets, lo);
        if (entry->offset != offset || entry->done)
                return SQ_ERR_NOT_FOUND;
        entry->done = true;
        offsets->in_flight--;

        /* Pop the done prefix: what remains starts at the first not done. */
        while (offsets->cnt > 0 && entry_at(offsets, 0)->done) {
                offsets->head = (offsets->head + 1) & (offsets->capacity - 1);
                offsets->cnt--;
        }
        return SQ_OK;
}

int64_t sq_offsets_committable(const sq_offsets_t *offsets) {
        if (offsets->cnt > 0)
                return entry_at(offsets, 0)->offset;
        if (offsets->last_admitted < 0)
                return -1;
        return offsets->last_admitted + 1;
}

size_t sq_offsets_in_flight(const sq_offsets_t *offsets) {
        return offsets->in_flight;
}

size_t sq_offsets_held(const sq_offsets_t *offsets) {
        return offsets->cnt;
}

void sq_offsets_reset(sq_offsets_t *offsets) {
        offsets->head          = 0;
        offsets->cnt           = 0;
        offsets->in_flight     = 0;
        offsets->last_admitted = -1;
}
