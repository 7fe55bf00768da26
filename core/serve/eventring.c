/* SPDX-License-Identifier: Apache-2.0 */
/*
 * eventring.c: the bounded ring of recent events behind GET /events (see
 * eventring.h).
 *
 * DESIGN
 *   Slot i holds the event with sequence seq where (seq - 1) % capacity ==
 *   i. Pushes take no lock: five threads push (three events per task under
 *   a backlog), and the mutex this ring had cost 5 % of the instance's CPU
 *   in futex wake-ups (docs/benchmarks.md, issue 14). A push claims the
 *   next sequence with one fetch-add on `next`, then writes its slot under
 *   the slot's own version, a seqlock: the version is seq | BUSY while the
 *   slot is written, seq once it is complete, 0 before the first write.
 *   A reader copies a slot and keeps the copy only if the version was seq
 *   before and after the copy (the copy may race with a writer; the
 *   version check throws away any torn copy, as in the kernel's seqlocks).
 *
 *   Sequences complete out of order: a reader returns the complete events
 *   after its cursor up to the first one claimed but not yet written, and
 *   the rest on its next read, so it never skips one. A writer lapped
 *   while it was descheduled (capacity newer events claimed meanwhile)
 *   finds a newer version in its slot and drops its event, which readers
 *   count as missed, as they count every event older than the newest
 *   `capacity`; a writer that finds its slot still BUSY with the write of
 *   the event `capacity` older waits for it (a few hundred bytes' copy)
 *   by yielding.
 *
 *   Notification: `armed` and the versions are a Dekker pair: a push
 *   stores its version, then tests `armed`; arm stores `armed`, then
 *   tests the slot after the reader's cursor. Each needs a full barrier
 *   between its store and its load, so that one of them sees the other
 *   and a reader either finds the new event or is notified. The pushes
 *   are the hot side (every event) and arming the rare one (a stream with
 *   nothing left to send), so the barrier is asymmetric where Linux
 *   offers it: arm runs membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED),
 *   which makes every running thread of the process execute a full
 *   barrier, and a push needs only a compiler barrier (as liburcu's
 *   "memb" flavour does). A fence at the end of each push cost more than
 *   the rest of it: it waits for the slot's stores to cold cache lines.
 *
 *   The mode is chosen once, at creation: asymmetric only when both
 *   registering and one expedited barrier succeed; otherwise (old
 *   kernels, seccomp) both sides fence. It never changes afterwards, so
 *   no push can fence by one rule while an arm relies on the other. If an
 *   expedited barrier later fails (the kernel may refuse with ENOMEM), arm
 *   cannot know that a push has seen `armed`, so it reports "read again"
 *   (false): the caller reads, and if it then parks without being armed,
 *   the HTTP server's one-second tick wakes it. Slower, never a stream
 *   left parked with an event waiting.
 *
 *   Arm looks first and arms only when nothing is waiting; one that finds
 *   an event that completed between its look and its store leaves `armed`
 *   set (other streams may be parked on it): at worst one extra notify,
 *   which only makes streams read again.
 */
#include "eventring.h"

#include <linux/membarrier.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The membarrier(2) system call, or what a test put in its place. */
static long membarrier_sys(int cmd) {
        return syscall(__NR_membarrier, cmd, 0, 0);
}

static sq_eventring_membarrier_t *membarrier_fn = membarrier_sys;

void sq_eventring_set_membarrier(sq_eventring_membarrier_t *fn) {
        membarrier_fn = fn ? fn : membarrier_sys;
}

/* A version with this bit set: the slot is being written. */
#define SLOT_BUSY ((uint64_t)1 << 63)

typedef struct slot_s {
        _Atomic uint64_t version; /* seq, seq | SLOT_BUSY, or 0 */
        sq_ring_event_t event;
} slot_t;

struct sq_eventring_s {
        slot_t *slots; /* owned, capacity entries */
        size_t capacity;
        /* The newest sequence claimed (its event may still be being
         * written), 0 = none; a line of its own: every push adds to it. */
        _Alignas(64) _Atomic uint64_t next;
        _Alignas(64) atomic_bool armed;
        /* Arm runs membarrier(): pushes need only a compiler barrier.
         * Set at creation, never changed (see DESIGN). */
        bool asym;
        sq_eventring_notify_t *notify;
        void *notify_opaque; /* borrowed */
};

sq_eventring_t *sq_eventring_new(size_t capacity) {
        sq_eventring_t *ring = sq_calloc(1, sizeof(*ring));

        sq_assert(capacity >= 1);
        ring->slots    = sq_calloc(capacity, sizeof(*ring->slots));
        ring->capacity = capacity;
        /* Registering is per process and idempotent; one barrier proves
         * the command works here (a filter may allow one and not the
         * other). Otherwise both sides fence. */
        ring->asym =
            membarrier_fn(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 &&
            membarrier_fn(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0;
        return ring;
}

void sq_eventring_destroy(sq_eventring_t *ring) {
        if (!ring)
                return;
        sq_free(ring->slots);
        sq_free(ring);
}

void sq_eventring_set_notify(sq_eventring_t *ring, sq_eventring_notify_t *cb,
                             void *opaque) {
        ring->notify        = cb;
        ring->notify_opaque = opaque;
}

static void field_copy(char *dst, size_t dst_size, const char *src) {
        sq_strlcpy(dst, src ? src : "", dst_size);
}

static slot_t *slot_of(sq_eventring_t *ring, uint64_t seq) {
        return &ring->slots[(seq - 1) % ring->capacity];
}

/* Takes the slot of @p seq for writing; false when a newer event already
 * took it (this writer was lapped: its event is dropped). */
static bool slot_claim(slot_t *slot, uint64_t seq) {
        uint64_t cur =
            atomic_load_explicit(&slot->version, memory_order_relaxed);

        for (;;) {
                if ((cur & ~SLOT_BUSY) > seq)
                        return false;
                if (cur & SLOT_BUSY) {
                        /* The event `capacity` older is being written. */
                        sched_yield();
                        cur = atomic_load_explicit(&slot->version,
                                                   memory_order_relaxed);
                        continue;
                }
                if (atomic_compare_exchange_weak_explicit(
                        &slot->version, &cur, seq | SLOT_BUSY,
                        memory_order_relaxed, memory_order_relaxed))
                        break;
        }
        /* The BUSY version is visible before any of the writes below. */
        atomic_thread_fence(memory_order_release);
        return true;
}

uint64_t sq_eventring_push(sq_eventring_t *ring, int64_t at_ms,
                           const char *type, const char *task_id,
                           const char *agent, const char *detail) {
        uint64_t seq =
            atomic_fetch_add_explicit(&ring->next, 1, memory_order_relaxed) + 1;
        slot_t *slot = slot_of(ring, seq);
        sq_ring_event_t *ev;

        if (slot_claim(slot, seq)) {
                ev        = &slot->event;
                ev->seq   = seq;
                ev->at_ms = at_ms;
                field_copy(ev->type, sizeof(ev->type), type);
                field_copy(ev->task_id, sizeof(ev->task_id), task_id);
                field_copy(ev->agent, sizeof(ev->agent), agent);
                field_copy(ev->detail, sizeof(ev->detail), detail);
                atomic_store_explicit(&slot->version, seq,
                                      memory_order_release);
        }
        /* The Dekker pair with sq_eventring_arm() (see DESIGN). */
        if (ring->asym)
                atomic_signal_fence(memory_order_seq_cst);
        else
                atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&ring->armed, memory_order_relaxed) &&
            atomic_exchange(&ring->armed, false) && ring->notify)
                ring->notify(ring->notify_opaque);
        return seq;
}

/* Copies the event of @p seq into @p out if it is there, complete.
 * @returns 1 copied, 0 not written yet, -1 overwritten by a newer one. */
static int slot_read(sq_eventring_t *ring, uint64_t seq, sq_ring_event_t *out) {
        slot_t *slot = slot_of(ring, seq);
        uint64_t v1 =
            atomic_load_explicit(&slot->version, memory_order_acquire);
        uint64_t v2;

        if (v1 == seq) {
                memcpy(out, &slot->event, sizeof(*out));
                atomic_thread_fence(memory_order_acquire);
                v2 = atomic_load_explicit(&slot->version, memory_order_relaxed);
                if (v2 == seq)
                        return 1;
                v1 = v2; /* rewritten under the copy */
        }
        return (v1 & ~SLOT_BUSY) > seq ? -1 : 0;
}

size_t sq_eventring_read(sq_eventring_t *ring, uint64_t after,
                         sq_ring_event_t *out, size_t max, uint64_t *missedp) {
        uint64_t next = atomic_load_explicit(&ring->next, memory_order_acquire);
        uint64_t oldest, seq;
        size_t n = 0;

        *missedp = 0;
        oldest   = next >= ring->capacity ? next - ring->capacity + 1 : 1;
        if (after > next)
                after = next; /* a cursor from the future: resync */
        if (next > 0 && after + 1 < oldest) {
                *missedp = oldest - after - 1;
                after    = oldest - 1;
        }
        /* Contiguous from after + 1: stop at the first event not written
         * yet (the next read returns it) or overwritten meanwhile (the
         * next read counts it missed, `next` having moved past it). */
        for (seq = after + 1; seq <= next && n < max; seq++) {
                if (slot_read(ring, seq, &out[n]) != 1)
                        break;
                n++;
        }
        return n;
}

uint64_t sq_eventring_last_seq(sq_eventring_t *ring) {
        return atomic_load_explicit(&ring->next, memory_order_acquire);
}

size_t sq_eventring_capacity(const sq_eventring_t *ring) {
        return ring->capacity;
}

/* Whether an event after @p seen can be read now, or was overwritten
 * (a read then counts it missed): either way the reader must read. */
static bool newer_waiting(sq_eventring_t *ring, uint64_t seen) {
        uint64_t next = atomic_load_explicit(&ring->next, memory_order_acquire);
        sq_ring_event_t ev;

        if (next <= seen)
                return false;
        if (next - seen > ring->capacity)
                return true;
        /* 0: claimed but not written yet; its push will notify. */
        return slot_read(ring, seen + 1, &ev) != 0;
}

bool sq_eventring_arm(sq_eventring_t *ring, uint64_t seen) {
        if (newer_waiting(ring, seen))
                return false; /* not armed: no notify owed */
        atomic_store(&ring->armed, true);
        /* The Dekker pair with sq_eventring_push() (see DESIGN): a push
         * that completed before the store is seen here. */
        if (!ring->asym)
                atomic_thread_fence(memory_order_seq_cst);
        else if (membarrier_fn(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0)
                /* Pushes did not fence: without the barrier, a push may
                 * have missed `armed` while its event is still invisible
                 * here. No promise of a notify: the caller reads again. */
                return false;
        return !newer_waiting(ring, seen);
}
