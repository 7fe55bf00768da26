/* SPDX-License-Identifier: Apache-2.0 */
/*
 * alloc_jemalloc.c: jemalloc's operations for allocator.h, in a
 * swarmq-consumer linked with jemalloc (CMake option SWARMQ_JEMALLOC).
 *
 * DESIGN
 *   Linked into the binary (not into the libraries), jemalloc's malloc
 *   and free replace glibc's for the whole process, librdkafka included.
 *   Why: the executors allocate the copy of every record librdkafka
 *   produces, and the poll thread frees it in the delivery report; glibc
 *   returns each such chunk to the executor's arena under that arena's
 *   lock and coalesces it, jemalloc caches it in the freeing thread
 *   (docs/benchmarks.md: about a quarter less CPU per task). The figures
 *   of swarmq_malloc_* and the release of memory.limit.bytes then come
 *   from jemalloc's mallctl() instead of mallinfo2() and malloc_trim().
 */
#include "allocator.h"

#include <jemalloc/jemalloc.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* "stats.arenas.<i>" and "arena.<i>" of every arena at once. */
#define ARENAS_ALL_STR "4096"
_Static_assert(MALLCTL_ARENAS_ALL == 4096, "ARENAS_ALL_STR");

static size_t stat_size(const char *name) {
        size_t val = 0, len = sizeof(val);
        if (mallctl(name, &val, &len, NULL, 0) != 0)
                return 0;
        return val;
}

static void je_stats(sq_alloc_stats_t *out) {
        uint64_t epoch = 1;
        size_t len     = sizeof(epoch);
        long page      = sysconf(_SC_PAGESIZE);
        size_t mapped, allocated;

        /* The statistics are a snapshot taken at an epoch: refresh it. */
        (void)mallctl("epoch", &epoch, &len, &epoch, len);
        mapped          = stat_size("stats.mapped");
        allocated       = stat_size("stats.allocated");
        out->heap       = mapped;
        out->mmap       = 0; /* large allocations are extents of its heap */
        out->in_use     = allocated;
        out->free       = mapped > allocated ? mapped - allocated : 0;
        out->releasable = stat_size("stats.arenas." ARENAS_ALL_STR ".pdirty") *
                          (size_t)(page > 0 ? page : 4096);
}

static void je_release(void) {
        (void)mallctl("arena." ARENAS_ALL_STR ".purge", NULL, NULL, NULL, 0);
}

static const sq_allocator_t jemalloc = {"jemalloc", je_stats, je_release};

void sq_alloc_jemalloc_use(void);

/* Called by main() before any thread starts. */
void sq_alloc_jemalloc_use(void) {
        sq_allocator_use(&jemalloc);
}
