/* SPDX-License-Identifier: Apache-2.0 */
/*
 * task.c: constructors, destructors and name tables for the Task, Result
 * and Event records (see task.h).
 */
#include "task.h"

#include <string.h>
#include <strings.h>

static const char *priority_names[SQ_PRIO_CNT] = {"LOW", "NORMAL", "HIGH",
                                                  "CRITICAL"};
static const char *status_names[SQ_STATUS_CNT] = {
    "SUCCEEDED", "FAILED", "TIMED_OUT", "DEAD_LETTERED", "CANCELLED"};

const char *sq_priority_name(sq_priority_t prio) {
        if ((unsigned)prio >= SQ_PRIO_CNT)
                return "UNKNOWN";
        return priority_names[prio];
}

sq_err_t sq_priority_parse(const char *str, sq_priority_t *priop) {
        int i;
        for (i = 0; i < SQ_PRIO_CNT; i++) {
                if (!strcasecmp(str, priority_names[i])) {
                        *priop = (sq_priority_t)i;
                        return SQ_OK;
                }
        }
        return SQ_ERR_INVALID_ARG;
}

const char *sq_status_name(sq_status_t status) {
        if ((unsigned)status >= SQ_STATUS_CNT)
                return "UNKNOWN";
        return status_names[status];
}

sq_err_t sq_status_parse(const char *str, sq_status_t *statusp) {
        int i;
        for (i = 0; i < SQ_STATUS_CNT; i++) {
                if (!strcasecmp(str, status_names[i])) {
                        *statusp = (sq_status_t)i;
                        return SQ_OK;
                }
        }
        return SQ_ERR_INVALID_ARG;
}

sq_task_t *sq_task_new(void) {
        sq_task_t *task    = sq_calloc(1, sizeof(*task));
        task->priority     = SQ_PRIO_NORMAL;
        task->attempt      = 1;
        task->max_attempts = 3;
        return task;
}

void sq_task_destroy(sq_task_t *task) {
        size_t i;
        if (!task)
                return;
        sq_free(task->id);
        sq_free(task->type);
        for (i = 0; i < task->capabilities_cnt; i++)
                sq_free(task->capabilities[i]);
        sq_free(task->capabilities);
        sq_free(task->payload);
        sq_free(task->key);
        for (i = 0; i < task->headers_cnt; i++) {
                sq_free(task->headers[i].name);
                sq_free(task->headers[i].value);
        }
        sq_free(task->headers);
        sq_free(task->workflow_id);
        sq_free(task->parent_id);
        sq_free(task);
}

void sq_task_add_capability(sq_task_t *task, const char *cap) {
        task->capabilities =
            sq_realloc(task->capabilities, (task->capabilities_cnt + 1) *
                                               sizeof(*task->capabilities));
        task->capabilities[task->capabilities_cnt++] = sq_strdup(cap);
}

void sq_task_add_header(sq_task_t *task, const char *name, const char *value) {
        task->headers = sq_realloc(task->headers, (task->headers_cnt + 1) *
                                                      sizeof(*task->headers));
        task->headers[task->headers_cnt].name  = sq_strdup(name);
        task->headers[task->headers_cnt].value = sq_strdup(value);
        task->headers_cnt++;
}

const char *sq_task_header(const sq_task_t *task, const char *name) {
        size_t i;
        for (i = 0; i < task->headers_cnt; i++)
                if (!strcmp(task->headers[i].name, name))
                        return task->headers[i].value;
        return NULL;
}

sq_result_t *sq_result_new(void) {
        return sq_calloc(1, sizeof(sq_result_t));
}

void sq_result_destroy(sq_result_t *result) {
        if (!result)
                return;
        sq_free(result->task_id);
        sq_free(result->output);
        sq_free(result->error);
        sq_free(result->agent);
        sq_free(result->instance);
        sq_free(result->source.topic);
        sq_free(result->workflow_id);
        sq_free(result->parent_id);
        sq_free(result);
}

sq_event_t *sq_event_new(void) {
        return sq_calloc(1, sizeof(sq_event_t));
}

void sq_event_destroy(sq_event_t *event) {
        if (!event)
                return;
        sq_free(event->event_id);
        sq_free(event->task_id);
        sq_free(event->type);
        sq_free(event->instance);
        sq_free(event->agent);
        sq_free(event->detail);
        sq_free(event->workflow_id);
        sq_free(event->parent_id);
        sq_free(event);
}

bool sq_task_named(const sq_task_t *task, const char *id) {
        return !strcmp(task->id, id) ||
               (task->workflow_id && !strcmp(task->workflow_id, id));
}
