/* SPDX-License-Identifier: Apache-2.0 */
/*
 * workflow.h: workflows (docs/workflows.md): a tree of tasks, chains and
 * groups (a group with a join is a chord) that a submitter declares in
 * one JSON document, the records that carry a workflow's state in
 * topic.workflows, and the step function that says, from what ended so
 * far, which tasks to submit next and whether the workflow is over.
 *
 * A workflow document:
 *
 *   {"id": "nightly-1",                              (optional)
 *    "priority": "HIGH", "timeout_ms": 60000, ...    (defaults, inherited)
 *    "workflow": NODE}
 *
 *   NODE = a task   {"type": "sha256", "payload": "x", ...}
 *                   (the JSON task fields but id, attempt, created_at,
 *                   not_before, workflow_id and parent_id)
 *        | a chain  {"chain": [NODE, ...]}      one after the other, each
 *                                               step's output the next
 *                                               step's payload
 *        | a group  {"group": [NODE, ...]}      all at once
 *        | a chord  {"group": [NODE, ...], "join": NODE}
 *                   the join runs once every child ended, with the
 *                   children's results as its payload
 *   A chain, group or chord may carry the defaults too ("priority",
 *   "timeout_ms", "max_attempts", "capabilities", "headers"); a task
 *   inherits its ancestors' unless it sets them (headers are merged).
 *
 * Node ids: the workflow id, then one component per level: a child's
 * index in its chain or group, or "join": "nightly-1.0", "nightly-1.0.2",
 * "nightly-1.join". A task's id is its node's id.
 *
 * The records of topic.workflows (JSON), all of one workflow on the
 * partition sq_workflow_partition() gives:
 *   key "<wf>"           {"workflow": id, "spec": NODE-document,
 *                         "submitted_at": ms, "started": [task ids],
 *                         "status": null | "SUCCEEDED" | ...,
 *                         "finished_at": ms}     the owner's state
 *   key "<wf>/declared"  {"workflow": id, "spec": ..., "submitted_at": ms}
 *                                                the submitter's
 *   key "<wf>/<task id>" {"workflow": id, "ended": task id,
 *                         "status": "...", "output_base64": "...",
 *                         "error": ..., "at": ms, "by": instance}
 *                                                a task of it ended
 *
 * DESIGN
 *   Pure data and functions, no I/O, no threads, no clock (times are
 *   passed in): consumer/instance/workflows.c owns the Kafka side, and
 *   tests/unit/test_workflow.c drives these with records alone. Folding
 *   is order-free (a task's first ended record wins, started ids are a
 *   union, a final status sticks), so a replay of the partition in any
 *   interleaving rebuilds the same state. Task ids are a function of the
 *   workflow id and the node's place, so a step submitted twice (an
 *   owner killed between submitting and recording it) is the same task
 *   twice, which the consumers' dedup and the first-ended rule absorb.
 */
#ifndef SQ_WORKFLOW_H
#define SQ_WORKFLOW_H

#include "common.h"
#include "task.h"

#include <jansson.h>

/** Bounds of a workflow document. */
#define SQ_WORKFLOW_ID_MAX    200 /* bytes of a workflow id */
#define SQ_WORKFLOW_DEPTH_MAX 32  /* nesting of chains and groups */
#define SQ_WORKFLOW_NODES_MAX 100000

typedef struct sq_workflow_s sq_workflow_t;

/**
 * @brief Parses and checks a workflow document.
 * @param json @p len bytes (borrowed).
 * @param id the workflow id when the document has none (borrowed; NULL:
 *        the document must name it).
 * @returns a new workflow (caller owns, sq_workflow_destroy()), or NULL
 *          with @p errstr naming the bad place ("workflow.chain[1]: unknown
 *          field \"tpye\" ...").
 */
sq_workflow_t *sq_workflow_parse(const char *json, size_t len, const char *id,
                                 char *errstr, size_t errstr_size);

/** @brief Frees a workflow; NULL is a no-op. */
void sq_workflow_destroy(sq_workflow_t *wf);

/** @returns the workflow's id (borrowed). */
const char *sq_workflow_id(const sq_workflow_t *wf);

/** @returns how many tasks the workflow has in all. */
size_t sq_workflow_task_cnt(const sq_workflow_t *wf);

/** @returns the final status, or -1 while the workflow runs. */
int sq_workflow_status(const sq_workflow_t *wf);

/** @returns when the workflow was submitted (ms since 1970). */
int64_t sq_workflow_submitted_at(const sq_workflow_t *wf);

/** @returns how many of its tasks ended so far. */
size_t sq_workflow_ended_cnt(const sq_workflow_t *wf);

/** @returns how many of its tasks were submitted so far. */
size_t sq_workflow_started_cnt(const sq_workflow_t *wf);

/**
 * @returns the partition of topic.workflows that holds @p workflow_id's
 *          records, of @p partition_cnt (FNV-1a of the id).
 */
int32_t sq_workflow_partition(const char *workflow_id, int32_t partition_cnt);

/**
 * @brief Children from a task's output (docs/workflows.md, "Children from
 *        a task's result"): an output that is a JSON object with a
 *        "spawn" member (a node: a group with a join, usually) declares a
 *        workflow of its own, id "<task id>.spawn", whose tasks inherit
 *        the task's priority, timeout_ms and headers (its trace) unless
 *        the node sets them; its optional "output" member (a string) is
 *        what the task's own result keeps.
 * @param task the parent (borrowed).
 * @param wfp set to the children's workflow (caller owns), or NULL when
 *        the output spawns nothing (not such an object).
 * @param keptp set to the output the task's result keeps (caller owns,
 *        sq_free(); NULL when empty), with its length in @p kept_lenp;
 *        only when *@p wfp is set.
 * @returns SQ_OK, or SQ_ERR_DECODE with @p errstr naming the bad place
 *          (the node, or a task id too long to name the children's
 *          workflow).
 */
sq_err_t sq_workflow_spawn(const sq_task_t *task, const void *output,
                           size_t len, sq_workflow_t **wfp, char **keptp,
                           size_t *kept_lenp, char *errstr, size_t errstr_size);

/**
 * @brief The submitter's record (key "<wf>/declared").
 * @returns a new string (caller owns, sq_free()).
 */
char *sq_workflow_declaration(const sq_workflow_t *wf, int64_t now_ms);

/**
 * @brief The owner's state record (key "<wf>").
 * @returns a new string (caller owns, sq_free()).
 */
char *sq_workflow_state_record(const sq_workflow_t *wf);

/**
 * @brief The record saying a task of a workflow ended (key
 *        "<wf>/<task id>"), from its result.
 * @param result borrowed; its workflow_id must be set.
 * @returns a new string (caller owns, sq_free()).
 */
char *sq_workflow_ended_record(const sq_result_t *result);

/**
 * @brief Writes a record's key into @p buf: "<wf>", "<wf>/declared" or
 *        "<wf>/<task id>" (@p task_id NULL for the state, "" for the
 *        declaration).
 * @returns the key's length, or 0 when it does not fit.
 */
size_t sq_workflow_key(const char *workflow_id, const char *task_id, char *buf,
                       size_t size);

/** The records of a partition, folded into workflows by id. */
typedef struct sq_workflows_s sq_workflows_t;

/** @returns an empty set (caller owns, sq_workflows_destroy()). */
sq_workflows_t *sq_workflows_new(void);
/** @brief Frees the set and its workflows; NULL is a no-op. */
void sq_workflows_destroy(sq_workflows_t *set);

/**
 * @brief Folds one record of topic.workflows into the set.
 * @param partition the record's partition (remembered for
 *        sq_workflows_drop_partition()).
 * @param value NULL for a tombstone.
 * @param wfp set to the workflow the record touched (borrowed, valid
 *        until the set changes), or NULL.
 * @returns SQ_OK, or SQ_ERR_DECODE with @p errstr naming the problem (the
 *          record is skipped).
 */
sq_err_t sq_workflows_apply(sq_workflows_t *set, int32_t partition,
                            const char *key, size_t key_len, const void *value,
                            size_t len, sq_workflow_t **wfp, char *errstr,
                            size_t errstr_size);

/** @returns the workflow of @p id (borrowed), or NULL. */
sq_workflow_t *sq_workflows_get(sq_workflows_t *set, const char *id);

/** @brief Forgets every workflow of @p partition (a revoked one). */
void sq_workflows_drop_partition(sq_workflows_t *set, int32_t partition);

/** @brief Calls @p fn for each workflow (of @p partition, or -1: all). */
void sq_workflows_foreach(sq_workflows_t *set, int32_t partition,
                          void (*fn)(sq_workflow_t *wf, void *arg), void *arg);

/** @returns how many workflows the set holds (running only if asked). */
size_t sq_workflows_count(const sq_workflows_t *set, bool running_only);

/** What the step function says to do now. */
typedef struct sq_workflow_step_s {
        sq_task_t **ready; /**< tasks to submit (owned), their ids new */
        size_t ready_cnt;
        bool done; /**< the workflow is over: its result below */
        sq_status_t status;
        unsigned char *output; /**< owned; NULL when empty */
        size_t output_len;
        char *error; /**< owned; NULL on success */
} sq_workflow_step_t;

/**
 * @brief From what ended so far, the tasks to submit next (those not yet
 *        started or ended) and whether the workflow is over.
 * @param now_ms the created_at of new tasks.
 * @param step filled (caller frees with sq_workflow_step_term()).
 */
void sq_workflow_step(const sq_workflow_t *wf, int64_t now_ms,
                      sq_workflow_step_t *step);

/** @brief Frees what a step holds. */
void sq_workflow_step_term(sq_workflow_step_t *step);

/**
 * @brief Records that @p step's ready tasks were submitted (their ids
 *        join "started") and, when it was the last, the final status.
 */
void sq_workflow_mark(sq_workflow_t *wf, const sq_workflow_step_t *step,
                      int64_t now_ms);

/**
 * @returns the ids of every task of the workflow, in document order (a
 *          new reference, caller owns, json_decref()).
 */
json_t *sq_workflow_task_ids(const sq_workflow_t *wf);

/**
 * @brief The workflow's tree as JSON, for replay and /status: each node's
 *        id, kind, type, and for tasks whether it started and how it
 *        ended.
 * @returns a new reference (caller owns, json_decref()).
 */
json_t *sq_workflow_tree(const sq_workflow_t *wf);

#endif /* SQ_WORKFLOW_H */
