/* SPDX-License-Identifier: Apache-2.0 */
/*
 * allocator.h: which malloc the process runs on, its figures for
 * swarmq_malloc_* and a way to hand its free memory back to the system.
 *
 * DESIGN
 *   The library layer and the instance are built on plain malloc/free;
 *   the allocator behind them is the binary's choice. swarmq-consumer is
 *   linked with jemalloc where the build finds it (CMake option
 *   SWARMQ_JEMALLOC): its executors allocate every record librdkafka
 *   copies, and the poll thread frees them in the delivery reports, a
 *   pattern glibc serves through the executors' arenas under their locks
 *   (about a quarter of the instance's CPU per task under a backlog,
 *   docs/benchmarks.md). Such a binary installs its allocator's
 *   operations at start (sq_allocator_use()); everything else (the
 *   producer library, the tests, a build without jemalloc) keeps glibc's:
 *   mallinfo2() and malloc_trim().
 */
#ifndef SQ_ALLOCATOR_H
#define SQ_ALLOCATOR_H

#include <stddef.h>

/** The allocator's figures (bytes), as swarmq_malloc_* reports them. */
typedef struct sq_alloc_stats_s {
        size_t heap;       /**< got from the system for its heaps */
        size_t mmap;       /**< large allocations mapped on their own */
        size_t in_use;     /**< allocated and not freed */
        size_t free;       /**< free, held, not returned to the system */
        size_t releasable; /**< what sq_allocator_release() could return */
} sq_alloc_stats_t;

/** An allocator's operations. */
typedef struct sq_allocator_s {
        const char *name;                     /**< "glibc", "jemalloc" */
        void (*stats)(sq_alloc_stats_t *out); /**< fills every field */
        void (*release)(void);                /**< returns free memory */
} sq_allocator_t;

/**
 * @brief Makes @p allocator the one the process runs on (a binary linked
 *        with another malloc calls this in main(), before any thread).
 * @param allocator static; NULL goes back to glibc's.
 */
void sq_allocator_use(const sq_allocator_t *allocator);

/** @brief The name of the allocator in use ("glibc" by default). */
const char *sq_allocator_name(void);

/** @brief The allocator's figures (any thread; may take its locks). */
void sq_allocator_stats(sq_alloc_stats_t *out);

/** @brief Hands the allocator's free memory back to the system, so that
 *         RSS can fall (memory.limit.bytes); may walk its heaps. */
void sq_allocator_release(void);

#endif /* SQ_ALLOCATOR_H */
