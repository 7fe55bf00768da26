/* SPDX-License-Identifier: Apache-2.0 */
/*
 * event_types.h: the one list of lifecycle event types swarmq writes to the
 * events topic (and GET /events): the consumer emits them by these names,
 * and swarmq-producer's `replay --type` checks and lists them from here.
 *
 * DESIGN
 *   The consumer passes these SQ_EVENT_* constants to sq_emit_event(),
 *   never a literal, and sq_event_types[] has one row (name, meaning) for
 *   each: a new event type is a constant here and a row there, and the
 *   CLI's list can neither miss it nor show one never written. Constant
 *   data: any thread.
 */
#ifndef SQ_EVENT_TYPES_H
#define SQ_EVENT_TYPES_H

#include <stddef.h>

/* The wire names. Each has a row in sq_event_types[] (event_types.c). */
#define SQ_EVENT_RECEIVED          "received"
#define SQ_EVENT_STARTED           "started"
#define SQ_EVENT_SUCCEEDED         "succeeded"
#define SQ_EVENT_RETRY_SCHEDULED   "retry_scheduled"
#define SQ_EVENT_DEAD_LETTERED     "dead_lettered"
#define SQ_EVENT_DUPLICATE_DROPPED "duplicate_dropped"
#define SQ_EVENT_DELAYED           "delayed"
#define SQ_EVENT_CANCELLED         "cancelled"
#define SQ_EVENT_WORKFLOW_STARTED  "workflow_started"
#define SQ_EVENT_WORKFLOW_ENDED    "workflow_ended"
#define SQ_EVENT_BREAKER_OPEN      "breaker_open"
#define SQ_EVENT_BREAKER_HALF_OPEN "breaker_half_open"
#define SQ_EVENT_BREAKER_CLOSED    "breaker_closed"
#define SQ_EVENT_INSTANCE_PAUSED   "instance_paused"
#define SQ_EVENT_INSTANCE_RESUMED  "instance_resumed"
#define SQ_EVENT_INSTANCE_DRAINING "instance_draining"
#define SQ_EVENT_INSTANCE_DRAINED  "instance_drained"

/** One event type: its wire name and what it means. */
typedef struct sq_event_type_s {
        const char *name;
        const char *meaning;
} sq_event_type_t;

/** Every event type, in lifecycle order. */
extern const sq_event_type_t sq_event_types[];
extern const size_t sq_event_types_cnt;

/** @returns the row of event type @p name, or NULL when there is none. */
const sq_event_type_t *sq_event_type_find(const char *name);

#endif /* SQ_EVENT_TYPES_H */
