/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agents.h: the agent registry: named, capability-tagged executors with a
 * concurrency limit; the capability index that finds the agents able to
 * run a task; ranked selection; circuit breakers; parking and work
 * stealing; and the hand-over from one registry to the next on a reload.
 *
 * DESIGN
 *   Index. Capabilities are interned at load into bit numbers (at most
 *   64; a hash table maps a name to its bit without a lock), so a task's
 *   requirement is one 64-bit mask. For each capability the index keeps
 *   the set of agents having it as a bitset of ceil(agents / 64) words
 *   (up to SQ_AGENTS_MAX agents); a requirement's candidates are the AND
 *   of its capabilities' sets: O(words x required capabilities), no scan
 *   of the agents. A task with no capabilities requires its `type`.
 *
 *   Selection cache. The candidates of a requirement mask, split into the
 *   agents whose breaker is not open (first) and those that are, are
 *   cached in a direct-mapped table keyed by the mask. An entry is valid
 *   while its generation equals the registry domain's generation, which
 *   every breaker transition and every reload bumps.
 *
 *   Ranking (flag ranked_selection). Among cached candidates with a free
 *   slot whose breaker lets a task through: score = 0.4 x free fraction
 *   + 0.4 x EWMA success rate + 0.2 x (best EWMA latency / own EWMA
 *   latency). A task with a key then takes, among the agents scoring
 *   within SQ_AGENTS_AFFINITY_BAND of the best, the one with the highest
 *   rendezvous hash of (key, agent name): the same key keeps going to the
 *   same agent while that agent stays near the top, and moves only when
 *   it falls out. Without the flag: the agent with the most free slots.
 *
 *   Parking. With no free eligible slot the job is parked on the eligible
 *   candidate with the shortest parked queue (critical jobs at its
 *   front); with every candidate's breaker open, on the one that goes
 *   half-open first (or, with breaker.when.open=fail, the task fails with
 *   "no healthy agent"). A release hands the freed slot to the agent's
 *   first parked job; with nothing parked there (flag work_stealing) it
 *   takes a job parked on another agent whose requirement this agent
 *   meets. No executor thread ever blocks on a busy agent.
 *
 *   Breakers (breaker.c) live in the per-agent state below; transitions
 *   are returned to the caller in sq_agents_out_t (with the jobs to put
 *   back in the scheduler) so that events, logs and scheduler pushes
 *   happen after the registry mutex is released.
 *
 *   Reload. A registry is immutable after sq_agents_new() except for the
 *   per-agent state (slots, parked jobs, breaker, EWMAs, counters), which
 *   lives in a state object shared, by agent name, with the registry it
 *   replaces; all registries of one chain share one mutex (the domain).
 *   So a task running on the old registry keeps its slot counted against
 *   the agent's new concurrency, and breaker state survives a reload.
 *   Registries are reference-counted: the daemon holds the current one,
 *   each running job holds the one it was selected from. Retiring a
 *   registry (sq_agents_retire) hands every parked job back to be
 *   selected again on the new one; acquire on a retired registry answers
 *   SQ_ACQ_STALE.
 *
 *   Locking: one mutex per domain, held only for these few instructions,
 *   never across a handler, the log sink or librdkafka.
 */
#ifndef SQ_AGENTS_H
#define SQ_AGENTS_H

#include "breaker.h"
#include "builtins.h"
#include "common.h"
#include "config.h"
#include "metrics.h"
#include "task.h"

#define SQ_AGENTS_MAX       SQ_CONFIG_MAX_AGENTS
#define SQ_CAPABILITIES_MAX 64
/** Score distance from the best within which key affinity decides. */
#define SQ_AGENTS_AFFINITY_BAND 0.15

typedef struct sq_agents_s sq_agents_t;
typedef struct sq_agent_s sq_agent_t;

/** Metric children of one agent, filled by the daemon after building. */
typedef struct sq_agent_metrics_s {
        sq_metric_t *tasks[SQ_STATUS_CNT][SQ_PRIO_CNT];
        sq_metric_t *duration;
} sq_agent_metrics_t;

/** What a task asks of the selection. */
typedef struct sq_select_s {
        uint64_t req;    /**< capability bits (sq_agents_requirement) */
        const char *key; /**< affinity key, or NULL */
        bool ranked;     /**< rank (flag ranked_selection) or least-loaded */
        bool critical;   /**< park at the front of a queue */
} sq_select_t;

/** A slot held on an agent. */
typedef struct sq_slot_s {
        sq_agent_t *agent;
        bool probe; /**< a half-open breaker's probe */
} sq_slot_t;

typedef enum {
        SQ_ACQ_RUN        = 0, /**< slot taken: run the job now */
        SQ_ACQ_PARKED     = 1, /**< parked: a release will hand it over */
        SQ_ACQ_NO_AGENT   = 2, /**< no agent meets the requirement */
        SQ_ACQ_NO_HEALTHY = 3, /**< all breakers open, policy "fail" */
        SQ_ACQ_STALE      = 4, /**< registry retired: use the current one */
} sq_acquire_t;

typedef enum {
        SQ_AGENT_OUTCOME_NONE    = 0, /**< did not run (dropped) */
        SQ_AGENT_OUTCOME_SUCCESS = 1,
        SQ_AGENT_OUTCOME_FAILURE = 2, /**< failed or timed out */
} sq_agent_outcome_t;

/** A breaker transition, reported to the caller after the lock. */
typedef struct sq_breaker_change_s {
        sq_agent_t *agent; /**< borrowed from the caller's registry */
        sq_breaker_state_t from, to;
} sq_breaker_change_t;

/**
 * Side effects of a registry call, for the caller to act on after the
 * registry mutex is released. Init with {0}; free with
 * sq_agents_out_reset().
 */
typedef struct sq_agents_out_s {
        void **requeue; /**< jobs to push back to the scheduler */
        size_t requeue_cnt, requeue_size;
        sq_breaker_change_t *changes;
        size_t changes_cnt, changes_size;
        int stolen; /**< jobs this call moved between agents */
} sq_agents_out_t;

/** Per-agent figures for /metrics and /status (a consistent snapshot). */
typedef struct sq_agent_stats_s {
        int concurrency;
        int in_flight;
        int parked;
        double success_rate; /**< EWMA of successes, 0..1 (1 at start) */
        double latency_us;   /**< EWMA run time, 0 before the first task */
        sq_breaker_state_t breaker;
        uint64_t transitions[SQ_BREAKER_STATE_CNT]; /**< by target state */
        uint64_t stolen;                            /**< jobs it took over */
} sq_agent_stats_t;

/**
 * @brief Builds a registry from the finalized config.
 * @param prev the registry this one replaces (borrowed), or NULL: agents
 *        of the same name keep their state and the mutex is shared.
 * @returns the registry with one reference (sq_agents_release_ref()) or
 *          NULL with @p errstr naming the agent or capability at fault.
 */
sq_agents_t *sq_agents_new(const sq_config_t *conf, sq_agents_t *prev,
                           char *errstr, size_t errstr_size);
/** @brief Takes a reference. @returns @p agents. */
sq_agents_t *sq_agents_keep(sq_agents_t *agents);
/** @brief Drops a reference; the last one frees the registry. */
void sq_agents_release_ref(sq_agents_t *agents);

/**
 * @brief Marks @p agents replaced: every job parked on its agents goes to
 *        @p out->requeue; acquire answers SQ_ACQ_STALE from now on.
 */
void sq_agents_retire(sq_agents_t *agents, sq_agents_out_t *out);

/** @returns the number of agents. */
int sq_agents_count(const sq_agents_t *agents);
/** @returns agent @p idx (0-based, declaration order), borrowed. */
sq_agent_t *sq_agents_get(sq_agents_t *agents, int idx);
/** @returns the agent called @p name, or NULL. */
sq_agent_t *sq_agents_find(sq_agents_t *agents, const char *name);
/** @returns how many 64-bit words an agent bitset of this registry has. */
int sq_agents_words(const sq_agents_t *agents);

/**
 * @brief Interns the task's required capabilities (its capabilities, or
 *        its type when it lists none). Lock-free.
 * @returns SQ_OK, or SQ_ERR_NO_AGENT with @p errstr naming the first
 *          capability no agent has.
 */
sq_err_t sq_agents_requirement(const sq_agents_t *agents, const sq_task_t *task,
                               uint64_t *reqp, char *errstr,
                               size_t errstr_size);

/**
 * @brief Finds the agents able to run @p task, as a bitset.
 * @param bits sq_agents_words() words, set to bit i = agent i.
 * @returns SQ_OK, or SQ_ERR_NO_AGENT with @p errstr naming the first
 *          capability no agent has (or the combination none has).
 */
sq_err_t sq_agents_candidates(sq_agents_t *agents, const sq_task_t *task,
                              uint64_t *bits, char *errstr, size_t errstr_size);

/**
 * @brief Selects an agent for a job and takes a slot on it, or parks it.
 * @param job the caller's job handle, borrowed while parked.
 * @param slot set when SQ_ACQ_RUN.
 * @param errstr set for SQ_ACQ_NO_AGENT and SQ_ACQ_NO_HEALTHY.
 */
sq_acquire_t sq_agents_acquire(sq_agents_t *agents, const sq_select_t *sel,
                               void *job, sq_slot_t *slot, char *errstr,
                               size_t errstr_size);

/** Says whether a parked @p job may be stolen (flag work_stealing). */
typedef bool(sq_agents_steal_cb_t)(void *opaque, void *job);

/**
 * @brief Records the outcome of the task that held @p slot, then hands
 *        the slot to a parked job (the agent's own first, else one stolen
 *        from another agent when @p may_steal allows), or frees it.
 * @param slot in: the slot released; out: the slot the returned job holds.
 * @param latency_us the task's run time (ignored for SQ_AGENT_OUTCOME_NONE).
 * @param may_steal NULL: no stealing.
 * @param out jobs to requeue and breaker transitions (caller acts on them).
 * @returns the parked job that now owns the slot (run it on
 *          slot->agent), or NULL.
 */
void *sq_agents_release(sq_agents_t *agents, sq_slot_t *slot,
                        sq_agent_outcome_t outcome, int64_t latency_us,
                        sq_agents_steal_cb_t *may_steal, void *opaque,
                        sq_agents_out_t *out);

/**
 * @brief Moves breakers whose open period passed to half-open; their
 *        parked jobs go to @p out->requeue to be selected again.
 * @returns the next time (sq_clock_us) a breaker will be due, or 0.
 */
int64_t sq_agents_tick(sq_agents_t *agents, int64_t now_us,
                       sq_agents_out_t *out);

/** @returns the next time a breaker is due (lock-free), or 0. */
int64_t sq_agents_next_due(const sq_agents_t *agents);

/** @brief Frees the arrays of @p out and zeroes it. */
void sq_agents_out_reset(sq_agents_out_t *out);

/** @returns the agent's name (borrowed, lives as long as the registry). */
const char *sq_agent_name(const sq_agent_t *agent);
/** @returns the agent's index in its registry. */
int sq_agent_index(const sq_agent_t *agent);
/** @returns the agent's concurrency limit. */
int sq_agent_concurrency(const sq_agent_t *agent);
/** @returns tasks running on the agent right now (any registry). */
int sq_agent_in_flight(sq_agent_t *agent);
/** @returns jobs parked waiting for the agent right now. */
int sq_agent_parked(sq_agent_t *agent);
/** @returns the breaker's state now. */
sq_breaker_state_t sq_agent_breaker_state(sq_agent_t *agent);
/**
 * @brief Calls @p cb with each of the agent's capabilities (borrowed
 *        names, interned in its registry).
 */
void sq_agent_capabilities(const sq_agent_t *agent,
                           void (*cb)(void *opaque, const char *capability),
                           void *opaque);
/** @brief Fills @p stats under the registry lock. */
void sq_agent_stats(sq_agent_t *agent, sq_agent_stats_t *stats);
/** @returns the agent's metric children (filled by the daemon). */
sq_agent_metrics_t *sq_agent_metrics(sq_agent_t *agent);

/** @returns how the agent runs tasks: builtin, exec or pool. */
sq_agent_kind_t sq_agent_kind(const sq_agent_t *agent);

/** @returns whether the agent's outputs may spawn children
 *           (agent.<name>.spawn, docs/workflows.md). */
bool sq_agent_spawns(const sq_agent_t *agent);

/**
 * @brief Binds an exec or pool agent to the runtime that runs its tasks
 *        (opaque here; the instance's runtimes.c owns it and keeps it
 *        alive as long as any registry). Only between sq_agents_new()
 *        and the registry's first use: a registry is immutable after.
 * @param runtime borrowed.
 */
void sq_agent_set_runtime(sq_agent_t *agent, void *runtime);
/** @returns the runtime bound by sq_agent_set_runtime(), or NULL. */
void *sq_agent_runtime(const sq_agent_t *agent);

/**
 * @brief Runs @p run->task on a builtin agent (its handler), on the
 *        calling thread.
 * @returns the task's status; run->output / run->error filled.
 */
sq_status_t sq_agent_run(sq_agent_t *agent, sq_run_t *run);

#endif /* SQ_AGENTS_H */
