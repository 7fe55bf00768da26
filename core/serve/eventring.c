/* SPDX-License-Identifier: Apache-2.0 */
/*
 * eventring.c: the bounded ring of recent events behind GET /events (see
 * eventring.h).
 *
 * DESIGN
 *   Slot i holds the event with sequence seq where (seq - 1) % capacity ==
 *   i. `last` is the newest sequence; the oldest still held is
 *   max(1, last - capacity + 1). Both push and read take the one mutex;
 *   push copies one fixed-size slot (a few hundred bytes), so executors
 *   contend for nanoseconds, and nothing is allocated after creation.
 *   `armed` is an atomic so a push with no waiting reader only loads it;
 *   arm sets it under the mutex after checking `last`, and push publishes
 *   `last` under the same mutex before testing it, so a reader either sees
 *   the new event or gets notified.
 */
#include "eventring.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

struct sq_eventring_s {
        pthread_mutex_t lock;
        sq_ring_event_t *slots; /* owned, capacity entries */
        size_t capacity;
        uint64_t last; /* newest sequence, 0 = none; under lock */
        atomic_bool armed;
        sq_eventring_notify_t *notify;
        void *notify_opaque; /* borrowed */
};

sq_eventring_t *sq_eventring_new(size_t capacity) {
        sq_eventring_t *ring = sq_calloc(1, sizeof(*ring));

        sq_assert(capacity >= 1);
        ring->slots    = sq_calloc(capacity, sizeof(*ring->slots));
        ring->capacity = capacity;
        pthread_mutex_init(&ring->lock, NULL);
        return ring;
}

void sq_eventring_destroy(sq_eventring_t *ring) {
        if (!ring)
                return;
        pthread_mutex_destroy(&ring->lock);
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

uint64_t sq_eventring_push(sq_eventring_t *ring, int64_t at_ms,
                           const char *type, const char *task_id,
                           const char *agent, const char *detail) {
        sq_ring_event_t *slot;
        uint64_t seq;

        pthread_mutex_lock(&ring->lock);
        seq         = ++ring->last;
        slot        = &ring->slots[(seq - 1) % ring->capacity];
        slot->seq   = seq;
        slot->at_ms = at_ms;
        field_copy(slot->type, sizeof(slot->type), type);
        field_copy(slot->task_id, sizeof(slot->task_id), task_id);
        field_copy(slot->agent, sizeof(slot->agent), agent);
        field_copy(slot->detail, sizeof(slot->detail), detail);
        pthread_mutex_unlock(&ring->lock);

        if (atomic_load_explicit(&ring->armed, memory_order_relaxed) &&
            atomic_exchange(&ring->armed, false) && ring->notify)
                ring->notify(ring->notify_opaque);
        return seq;
}

size_t sq_eventring_read(sq_eventring_t *ring, uint64_t after,
                         sq_ring_event_t *out, size_t max, uint64_t *missedp) {
        uint64_t oldest, seq;
        size_t n = 0;

        *missedp = 0;
        pthread_mutex_lock(&ring->lock);
        oldest =
            ring->last >= ring->capacity ? ring->last - ring->capacity + 1 : 1;
        if (after > ring->last)
                after = ring->last; /* a cursor from the future: resync */
        if (ring->last > 0 && after + 1 < oldest) {
                *missedp = oldest - after - 1;
                after    = oldest - 1;
        }
        for (seq = after + 1; seq <= ring->last && n < max; seq++)
                out[n++] = ring->slots[(seq - 1) % ring->capacity];
        pthread_mutex_unlock(&ring->lock);
        return n;
}

uint64_t sq_eventring_last_seq(sq_eventring_t *ring) {
        uint64_t last;

        pthread_mutex_lock(&ring->lock);
        last = ring->last;
        pthread_mutex_unlock(&ring->lock);
        return last;
}

size_t sq_eventring_capacity(const sq_eventring_t *ring) {
        return ring->capacity;
}

bool sq_eventring_arm(sq_eventring_t *ring, uint64_t seen) {
        bool armed;

        pthread_mutex_lock(&ring->lock);
        armed = ring->last <= seen;
        if (armed)
                atomic_store(&ring->armed, true);
        pthread_mutex_unlock(&ring->lock);
        return armed;
}
