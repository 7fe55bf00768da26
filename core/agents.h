/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agents.h: the agent registry: named, capability-tagged executors with a
 * concurrency limit, and the capability bitmask index that finds the
 * agents able to run a task.
 *
 * DESIGN
 *   Capabilities are interned at load into bit numbers (at most 64). For
 *   each capability bit the index keeps the set of agents having it, as a
 *   64-bit agent mask; a task's candidates are the AND of the sets of its
 *   required capabilities: O(number of required capabilities), no scan of
 *   the agents. A task with no capabilities requires its `type` as one.
 *
 *   Capacity: each agent runs at most `concurrency` tasks. acquire takes a
 *   slot on the candidate with the most free slots; when every candidate
 *   is full the job is parked on the candidate with the shortest parked
 *   queue (critical jobs at its front), and the executor that next frees a
 *   slot on that agent takes the parked job over, so a saturated agent
 *   never blocks an executor thread. Slots and parked queues share one
 *   mutex, held only for these few instructions, never across a handler.
 *
 *   The registry is built once from the config and immutable after (a
 *   reload builds a new one in a later issue); agent stats are atomics.
 */
#ifndef SQ_AGENTS_H
#define SQ_AGENTS_H

#include "builtins.h"
#include "common.h"
#include "config.h"
#include "task.h"

#define SQ_AGENTS_MAX       64
#define SQ_CAPABILITIES_MAX 64

typedef struct sq_agents_s sq_agents_t;
typedef struct sq_agent_s sq_agent_t;

/**
 * @brief Builds the registry from the finalized config.
 * @returns the registry (caller owns, sq_agents_destroy()) or NULL with
 *          @p errstr naming the agent or capability at fault.
 */
sq_agents_t *sq_agents_new(const sq_config_t *conf, char *errstr,
                           size_t errstr_size);
/** @brief Frees the registry; parked jobs must have been drained. */
void sq_agents_destroy(sq_agents_t *agents);

/** @returns the number of agents. */
int sq_agents_count(const sq_agents_t *agents);
/** @returns agent @p idx (0-based, declaration order), borrowed. */
sq_agent_t *sq_agents_get(sq_agents_t *agents, int idx);

/**
 * @brief Finds the agents able to run @p task.
 * @param candidatesp set to the mask of capable agents (bit i = agent i).
 * @returns SQ_OK, or SQ_ERR_NO_AGENT with @p errstr naming the first
 *          capability no agent has (or the combination none has).
 */
sq_err_t sq_agents_candidates(const sq_agents_t *agents, const sq_task_t *task,
                              uint64_t *candidatesp, char *errstr,
                              size_t errstr_size);

/**
 * @brief Takes a slot on the least-loaded candidate, or parks @p job.
 * @param job the caller's job handle, borrowed while parked.
 * @param front park at the front of the queue (critical jobs).
 * @returns the agent whose slot was taken, or NULL when the job was
 *          parked (its slot will be handed over by sq_agents_release()).
 */
sq_agent_t *sq_agents_acquire(sq_agents_t *agents, uint64_t candidates,
                              void *job, bool front);

/**
 * @brief Frees a slot of @p agent, or hands it to the first parked job.
 * @returns the parked job that now owns the slot (the caller runs it on
 *          @p agent), or NULL.
 */
void *sq_agents_release(sq_agents_t *agents, sq_agent_t *agent);

/** @returns the agent's name (borrowed, lives as long as the registry). */
const char *sq_agent_name(const sq_agent_t *agent);
/** @returns the agent's index in the registry. */
int sq_agent_index(const sq_agent_t *agent);
/** @returns the agent's concurrency limit. */
int sq_agent_concurrency(const sq_agent_t *agent);
/** @returns tasks running on the agent right now. */
int sq_agent_in_flight(sq_agent_t *agent);
/** @returns jobs parked waiting for the agent right now. */
int sq_agent_parked(sq_agent_t *agent);

/** @returns how the agent runs tasks: builtin, exec or pool. */
sq_agent_kind_t sq_agent_kind(const sq_agent_t *agent);

/**
 * @brief Runs @p run->task on a builtin agent (its handler), on the
 *        calling thread.
 * @returns the task's status; run->output / run->error filled.
 */
sq_status_t sq_agent_run(sq_agent_t *agent, sq_run_t *run);

#endif /* SQ_AGENTS_H */
