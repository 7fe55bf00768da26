/* SPDX-License-Identifier: Apache-2.0 */
/*
 * allocator.c: the allocator in use, glibc's unless a binary says
 * otherwise (see allocator.h for the design).
 */
#include "allocator.h"

#include <malloc.h>
#include <stdatomic.h>

/* mallinfo2() walks every free chunk of every arena under its lock (a
 * few milliseconds on a fragmented heap): callers take it once per
 * scrape, never on a hot path. */
static void glibc_stats(sq_alloc_stats_t *out) {
        struct mallinfo2 mi = mallinfo2();

        out->heap       = mi.arena;
        out->mmap       = mi.hblkhd;
        out->in_use     = mi.uordblks + mi.hblkhd;
        out->free       = mi.fordblks;
        out->releasable = mi.keepcost;
}

static void glibc_release(void) {
        malloc_trim(0);
}

static const sq_allocator_t glibc = {"glibc", glibc_stats, glibc_release};

static _Atomic(const sq_allocator_t *) current = &glibc;

void sq_allocator_use(const sq_allocator_t *allocator) {
        atomic_store(&current, allocator ? allocator : &glibc);
}

const char *sq_allocator_name(void) {
        return atomic_load(&current)->name;
}

void sq_allocator_stats(sq_alloc_stats_t *out) {
        atomic_load(&current)->stats(out);
}

void sq_allocator_release(void) {
        atomic_load(&current)->release();
}
