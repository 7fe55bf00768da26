/* SPDX-License-Identifier: Apache-2.0 */
/*
 * event_types.c: the table of lifecycle event types (see event_types.h).
 */
#include "event_types.h"

#include <string.h>

/* In lifecycle order: a task's events, then an instance's. */
const sq_event_type_t sq_event_types[] = {
    {SQ_EVENT_RECEIVED, "a task was read and admitted"},
    {SQ_EVENT_STARTED, "an attempt started on an agent"},
    {SQ_EVENT_SUCCEEDED, "the task succeeded (terminal)"},
    {SQ_EVENT_RETRY_SCHEDULED, "an attempt failed; a retry is scheduled"},
    {SQ_EVENT_DEAD_LETTERED, "the task went to the dead-letter topic "
                             "(terminal)"},
    {SQ_EVENT_DELAYED, "read before its not_before: parked on the retry "
                       "topic until then"},
    {SQ_EVENT_CANCELLED, "the task was cancelled (terminal)"},
    {SQ_EVENT_DUPLICATE_DROPPED, "a task id that already succeeded was "
                                 "dropped"},
    {SQ_EVENT_WORKFLOW_STARTED, "a workflow's owner submitted its first "
                                "tasks (task_id is the workflow id)"},
    {SQ_EVENT_WORKFLOW_ENDED, "a workflow ended: its result is written "
                              "(task_id is the workflow id)"},
    {SQ_EVENT_BREAKER_OPEN, "an agent's breaker opened"},
    {SQ_EVENT_BREAKER_HALF_OPEN, "an agent's breaker lets a probe through"},
    {SQ_EVENT_BREAKER_CLOSED, "an agent's breaker closed"},
    {SQ_EVENT_INSTANCE_PAUSED, "intake paused over HTTP"},
    {SQ_EVENT_INSTANCE_RESUMED, "intake resumed over HTTP"},
    {SQ_EVENT_INSTANCE_DRAINING, "draining requested over HTTP"},
    {SQ_EVENT_INSTANCE_DRAINED, "drained: nothing in flight, offsets "
                                "committed"},
};
const size_t sq_event_types_cnt =
    sizeof(sq_event_types) / sizeof(sq_event_types[0]);

const sq_event_type_t *sq_event_type_find(const char *name) {
        size_t i;

        for (i = 0; i < sq_event_types_cnt; i++) {
                if (!strcmp(sq_event_types[i].name, name))
                        return &sq_event_types[i];
        }
        return NULL;
}
