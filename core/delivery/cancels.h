/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cancels.h: the ids of recently cancelled tasks, and the control record
 * that asks for a cancellation.
 *
 * A cancellation is a record on the control topic (topic.control,
 * swarmq-control), keyed by the task id, whose value is a JSON object:
 *
 *   {"cancel": "<task id>", "at": <ms since 1970>, "by": "<who>"}
 *
 * ("at" and "by" are informative; other fields are ignored, so later
 * kinds of control record can be added). Every instance reads every
 * partition of the control topic and remembers each cancelled id for
 * cancel.ttl.ms, so a cancel that arrives before its task is still
 * honoured when the task comes.
 *
 * DESIGN
 *   A bounded TTL map (ttlmap.c) under a mutex: the control thread adds,
 *   the poll thread (admission) and the executors look up. The lookup is
 *   on every task's path, so it starts with an atomic read of the count:
 *   with no cancellation in the last cancel.ttl.ms it takes no lock at
 *   all; otherwise one uncontended lock and an O(1) hash lookup. Time is
 *   passed in (monotonic microseconds) so tests need no clock.
 */
#ifndef SQ_CANCELS_H
#define SQ_CANCELS_H

#include "common.h"
#include "task.h"

typedef struct sq_cancels_s sq_cancels_t;

/**
 * @brief Creates a set of at most @p max_entries ids, each forgotten
 *        @p ttl_us after it was added.
 * @returns the set (free with sq_cancels_destroy()).
 */
sq_cancels_t *sq_cancels_new(size_t max_entries, int64_t ttl_us);
/** @brief Frees the set; NULL is a no-op. */
void sq_cancels_destroy(sq_cancels_t *cancels);

/**
 * @brief Remembers @p task_id (copied) as cancelled from @p now_us on (a
 *        full TTL from when it is read: the control reader skips records
 *        already older than the TTL).
 * @returns true when it was not already there. Any thread.
 */
bool sq_cancels_add(sq_cancels_t *cancels, const char *task_id, int64_t now_us);

/**
 * @brief Whether @p task_id was cancelled within the TTL. Any thread; no
 *        lock while the set is empty.
 */
bool sq_cancels_contains(sq_cancels_t *cancels, const char *task_id,
                         int64_t now_us);

/** @returns the ids held (any thread). */
size_t sq_cancels_count(sq_cancels_t *cancels);

/**
 * @brief Whether @p task was cancelled: by its id, or by its workflow's
 *        (a workflow's tasks carry its id in workflow_id).
 * @returns NULL when not, else "by its id" or "with its workflow".
 */
const char *sq_cancels_task(sq_cancels_t *cancels, const sq_task_t *task,
                            int64_t now_us);

/**
 * @brief Reads a control record's value.
 * @param buf borrowed, @p len bytes.
 * @param idp set to the task id to cancel (caller owns, sq_free()).
 * @returns SQ_OK, or SQ_ERR_DECODE with @p errstr a sentence naming what
 *          is wrong.
 */
sq_err_t sq_cancels_parse(const void *buf, size_t len, char **idp, char *errstr,
                          size_t errstr_size);

/**
 * @brief The value of a control record cancelling @p task_id.
 * @param by who asks (an instance, "swarmq-producer"), borrowed.
 * @returns a NUL-terminated JSON object (caller owns, sq_free()).
 */
char *sq_cancels_record(const char *task_id, const char *by, int64_t at_ms);

#endif /* SQ_CANCELS_H */
