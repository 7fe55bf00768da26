/* SPDX-License-Identifier: Apache-2.0 */
/*
 * task.h: the three records swarmq speaks, as plain C structs: a Task (what
 * upstream producers write), a Result (one per task, on swarmq-results) and
 * an Event (task lifecycle, on swarmq-events). Field names follow
 * the schemas in schemas/, which are the contract.
 *
 * DESIGN
 *   Plain owned data: every string and buffer inside a struct is owned by
 *   the struct and freed by its _destroy(). Optional strings are NULL when
 *   absent. Decoders (codec.c) build these; the consumer fills the runtime
 *   part of a task (sq_task_t.rt) that never goes on the wire.
 */
#ifndef SQ_TASK_H
#define SQ_TASK_H

#include "common.h"

typedef enum {
        SQ_PRIO_LOW      = 0,
        SQ_PRIO_NORMAL   = 1,
        SQ_PRIO_HIGH     = 2,
        SQ_PRIO_CRITICAL = 3,
} sq_priority_t;
#define SQ_PRIO_CNT 4

typedef enum {
        SQ_STATUS_SUCCEEDED     = 0,
        SQ_STATUS_FAILED        = 1,
        SQ_STATUS_TIMED_OUT     = 2,
        SQ_STATUS_DEAD_LETTERED = 3,
        SQ_STATUS_CANCELLED     = 4, /* cancelled by id before it ended */
} sq_status_t;
#define SQ_STATUS_CNT 5

/** One string header (task.headers map entry). */
typedef struct sq_kv_s {
        char *name;
        char *value;
} sq_kv_t;

/** Where a task came from: the Kafka coordinates of its record. */
typedef struct sq_source_s {
        char *topic; /**< NULL when unknown */
        int32_t partition;
        int64_t offset;
} sq_source_t;

typedef struct sq_task_s {
        char *id;   /**< required, non-empty */
        char *type; /**< required; names the operation, e.g. "sha256" */
        sq_priority_t priority;
        char **capabilities; /**< required capabilities, may be empty */
        size_t capabilities_cnt;
        unsigned char *payload; /**< may be NULL when payload_len is 0 */
        size_t payload_len;
        char *key;          /**< optional ordering/affinity key */
        int64_t created_at; /**< timestamp-millis */
        int64_t timeout_ms; /**< 0 = no timeout */
        int32_t max_attempts;
        int32_t attempt; /**< 1 for the first delivery */
        sq_kv_t *headers;
        size_t headers_cnt;
        int64_t not_before; /**< timestamp-millis; 0 = none (null) */
        char *workflow_id;  /**< optional: its workflow (docs/workflows.md) */
        char *parent_id;    /**< optional: the step it follows in it */
} sq_task_t;

typedef struct sq_result_s {
        char *task_id;
        sq_status_t status;
        unsigned char *output;
        size_t output_len;
        char *error; /**< optional */
        char *agent; /**< optional: NULL when no agent ran it */
        char *instance;
        int32_t attempts;
        sq_source_t source;
        int64_t created_at; /**< the task's created_at, millis */
        int64_t started_at; /**< millis; 0 when never started */
        int64_t finished_at;
        char *workflow_id; /**< optional: the task's workflow_id */
        char *parent_id;   /**< optional: the task's parent_id */
} sq_result_t;

typedef struct sq_event_s {
        char *event_id;
        char *task_id; /**< optional for instance events */
        char *type;    /**< e.g. "received", "started", "succeeded" */
        int64_t at;    /**< millis */
        char *instance;
        char *agent;       /**< optional */
        char *detail;      /**< optional */
        char *workflow_id; /**< optional: the task's workflow_id */
        char *parent_id;   /**< optional: the task's parent_id */
} sq_event_t;

/** @returns "LOW", "NORMAL", "HIGH" or "CRITICAL". */
const char *sq_priority_name(sq_priority_t prio);
/** @brief Parses a priority name (case-insensitive). */
sq_err_t sq_priority_parse(const char *str, sq_priority_t *priop);
/** @returns "SUCCEEDED", "FAILED", "TIMED_OUT", "DEAD_LETTERED" or
 *           "CANCELLED". */
const char *sq_status_name(sq_status_t status);

/**
 * @returns whether a cancel of @p id names @p task: its own id, or its
 *          workflow's (cancelling a workflow cancels every task of it).
 */
bool sq_task_named(const sq_task_t *task, const char *id);
/** @brief Parses a status name (case-insensitive). */
sq_err_t sq_status_parse(const char *str, sq_status_t *statusp);

/** @returns a zeroed task with defaults (NORMAL, attempt 1, 3 attempts). */
sq_task_t *sq_task_new(void);
/** @brief Frees a task and everything it owns; NULL is a no-op. */
void sq_task_destroy(sq_task_t *task);
/** @brief Appends a capability (copied). */
void sq_task_add_capability(sq_task_t *task, const char *cap);
/** @brief Appends a header (both strings copied). */
void sq_task_add_header(sq_task_t *task, const char *name, const char *value);
/** @returns a header's value (borrowed) or NULL. */
const char *sq_task_header(const sq_task_t *task, const char *name);

/** @returns a zeroed result. */
sq_result_t *sq_result_new(void);
/** @brief Frees a result and everything it owns; NULL is a no-op. */
void sq_result_destroy(sq_result_t *result);

/** @returns a zeroed event. */
sq_event_t *sq_event_new(void);
/** @brief Frees an event and everything it owns; NULL is a no-op. */
void sq_event_destroy(sq_event_t *event);

#endif /* SQ_TASK_H */
