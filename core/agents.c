/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agents.c: the agent registry, capability index and slot accounting (see
 * agents.h for the design).
 */
#include "agents.h"

#include <pthread.h>
#include <string.h>

/* A growable deque of parked job pointers. */
typedef struct parked_s {
        void **jobs;
        size_t capacity; /* power of two, or 0 */
        size_t head;
        size_t cnt;
} parked_t;

struct sq_agent_s {
        char *name;
        int idx;
        sq_agent_kind_t kind;
        sq_builtin_fn_t *handler;
        uint64_t capmask;
        int concurrency;
        int in_flight; /* under sq_agents_t.lock */
        parked_t parked;
};

struct sq_agents_s {
        pthread_mutex_t lock;
        sq_agent_t agents[SQ_AGENTS_MAX];
        int agents_cnt;
        char *capabilities[SQ_CAPABILITIES_MAX];
        int capabilities_cnt;
        uint64_t agents_with[SQ_CAPABILITIES_MAX]; /* capability -> agents */
};

/* Capability lookup is linear over at most 64 interned names; a task names
 * one to three. Short strcmp()s on a cache-resident array beat hashing at
 * this size (see tests/bench for the selection figures). */
static int capability_bit(const sq_agents_t *agents, const char *name) {
        int i;
        for (i = 0; i < agents->capabilities_cnt; i++)
                if (!strcmp(agents->capabilities[i], name))
                        return i;
        return -1;
}

sq_agents_t *sq_agents_new(const sq_config_t *conf, char *errstr,
                           size_t errstr_size) {
        sq_agents_t *agents = sq_calloc(1, sizeof(*agents));
        size_t i, c;

        pthread_mutex_init(&agents->lock, NULL);
        if (conf->agents_cnt > SQ_AGENTS_MAX) {
                sq_errstr_set(errstr, errstr_size,
                              "%zu agents are declared; at most %d are "
                              "supported",
                              conf->agents_cnt, SQ_AGENTS_MAX);
                goto fail;
        }
        for (i = 0; i < conf->agents_cnt; i++) {
                const sq_agent_conf_t *aconf = &conf->agents[i];
                sq_agent_t *agent            = &agents->agents[i];

                agent->name        = sq_strdup(aconf->name);
                agent->idx         = (int)i;
                agent->kind        = aconf->kind;
                agent->concurrency = aconf->concurrency;
                agents->agents_cnt++;
                /* exec and pool agents run out of process (exec.c,
                 * pool.c): the executor dispatches on the kind. */
                agent->handler = aconf->kind == SQ_AGENT_BUILTIN
                                     ? sq_builtin_lookup(aconf->handler)
                                     : NULL;
                if (aconf->kind == SQ_AGENT_BUILTIN && !agent->handler) {
                        sq_errstr_set(errstr, errstr_size,
                                      "agent.%s.handler=%s: no such builtin "
                                      "handler",
                                      aconf->name, aconf->handler);
                        goto fail;
                }
                for (c = 0; c < aconf->capabilities_cnt; c++) {
                        const char *cap = aconf->capabilities[c];
                        int bit         = capability_bit(agents, cap);
                        if (bit < 0) {
                                if (agents->capabilities_cnt ==
                                    SQ_CAPABILITIES_MAX) {
                                        sq_errstr_set(
                                            errstr, errstr_size,
                                            "agent.%s.capabilities: "
                                            "capability \"%s\" is over the "
                                            "limit of %d distinct "
                                            "capabilities",
                                            aconf->name, cap,
                                            SQ_CAPABILITIES_MAX);
                                        goto fail;
                                }
                                bit = agents->capabilities_cnt++;
                                agents->capabilities[bit] = sq_strdup(cap);
                        }
                        agent->capmask |= UINT64_C(1) << bit;
                        agents->agents_with[bit] |= UINT64_C(1) << i;
                }
        }
        return agents;

fail:
        sq_agents_destroy(agents);
        return NULL;
}

void sq_agents_destroy(sq_agents_t *agents) {
        int i;
        if (!agents)
                return;
        for (i = 0; i < agents->agents_cnt; i++) {
                sq_free(agents->agents[i].name);
                sq_free(agents->agents[i].parked.jobs);
        }
        for (i = 0; i < agents->capabilities_cnt; i++)
                sq_free(agents->capabilities[i]);
        pthread_mutex_destroy(&agents->lock);
        sq_free(agents);
}

int sq_agents_count(const sq_agents_t *agents) {
        return agents->agents_cnt;
}

sq_agent_t *sq_agents_get(sq_agents_t *agents, int idx) {
        sq_assert(idx >= 0 && idx < agents->agents_cnt);
        return &agents->agents[idx];
}

static uint64_t all_agents_mask(int cnt) {
        return cnt >= 64 ? UINT64_MAX : (UINT64_C(1) << cnt) - 1;
}

sq_err_t sq_agents_candidates(const sq_agents_t *agents, const sq_task_t *task,
                              uint64_t *candidatesp, char *errstr,
                              size_t errstr_size) {
        uint64_t candidates = all_agents_mask(agents->agents_cnt);
        size_t i;

        if (task->capabilities_cnt == 0) {
                /* No explicit requirement: the type names the capability. */
                int bit = capability_bit(agents, task->type);
                if (bit < 0) {
                        sq_errstr_set(errstr, errstr_size,
                                      "no agent has capability \"%s\" "
                                      "(the task's type; the task lists no "
                                      "capabilities)",
                                      task->type);
                        return SQ_ERR_NO_AGENT;
                }
                *candidatesp = agents->agents_with[bit];
                return SQ_OK;
        }
        for (i = 0; i < task->capabilities_cnt; i++) {
                int bit = capability_bit(agents, task->capabilities[i]);
                if (bit < 0) {
                        sq_errstr_set(errstr, errstr_size,
                                      "no agent has capability \"%s\"",
                                      task->capabilities[i]);
                        return SQ_ERR_NO_AGENT;
                }
                candidates &= agents->agents_with[bit];
        }
        if (!candidates) {
                sq_errstr_set(errstr, errstr_size,
                              "no single agent has all %zu required "
                              "capabilities",
                              task->capabilities_cnt);
                return SQ_ERR_NO_AGENT;
        }
        *candidatesp = candidates;
        return SQ_OK;
}

static void parked_push(parked_t *parked, void *job, bool front) {
        if (parked->cnt == parked->capacity) {
                size_t capacity = parked->capacity ? parked->capacity * 2 : 16;
                void **jobs     = sq_malloc(capacity * sizeof(*jobs));
                size_t i;
                for (i = 0; i < parked->cnt; i++)
                        jobs[i] = parked->jobs[(parked->head + i) &
                                               (parked->capacity - 1)];
                sq_free(parked->jobs);
                parked->jobs     = jobs;
                parked->capacity = capacity;
                parked->head     = 0;
        }
        if (front) {
                parked->head = (parked->head - 1) & (parked->capacity - 1);
                parked->jobs[parked->head] = job;
        } else {
                parked->jobs[(parked->head + parked->cnt) &
                             (parked->capacity - 1)] = job;
        }
        parked->cnt++;
}

static void *parked_pop(parked_t *parked) {
        void *job;
        if (!parked->cnt)
                return NULL;
        job          = parked->jobs[parked->head];
        parked->head = (parked->head + 1) & (parked->capacity - 1);
        parked->cnt--;
        return job;
}

sq_agent_t *sq_agents_acquire(sq_agents_t *agents, uint64_t candidates,
                              void *job, bool front) {
        sq_agent_t *best = NULL, *park_on = NULL;
        uint64_t mask;
        int best_free = 0;

        sq_assert(candidates != 0);
        pthread_mutex_lock(&agents->lock);
        for (mask = candidates; mask; mask &= mask - 1) {
                sq_agent_t *agent = &agents->agents[__builtin_ctzll(mask)];
                int free_slots    = agent->concurrency - agent->in_flight;
                if (free_slots > best_free) {
                        best      = agent;
                        best_free = free_slots;
                }
                if (!park_on || agent->parked.cnt < park_on->parked.cnt)
                        park_on = agent;
        }
        if (best)
                best->in_flight++;
        else
                parked_push(&park_on->parked, job, front);
        pthread_mutex_unlock(&agents->lock);
        return best;
}

void *sq_agents_release(sq_agents_t *agents, sq_agent_t *agent) {
        void *job;
        pthread_mutex_lock(&agents->lock);
        job = parked_pop(&agent->parked);
        if (!job)
                agent->in_flight--; /* else the slot passes to the job */
        pthread_mutex_unlock(&agents->lock);
        return job;
}

const char *sq_agent_name(const sq_agent_t *agent) {
        return agent->name;
}

int sq_agent_index(const sq_agent_t *agent) {
        return agent->idx;
}

int sq_agent_concurrency(const sq_agent_t *agent) {
        return agent->concurrency;
}

int sq_agent_in_flight(sq_agent_t *agent) {
        return __atomic_load_n(&agent->in_flight, __ATOMIC_RELAXED);
}

int sq_agent_parked(sq_agent_t *agent) {
        return (int)__atomic_load_n(&agent->parked.cnt, __ATOMIC_RELAXED);
}

sq_agent_kind_t sq_agent_kind(const sq_agent_t *agent) {
        return agent->kind;
}

sq_status_t sq_agent_run(sq_agent_t *agent, sq_run_t *run) {
        sq_assert(agent->kind == SQ_AGENT_BUILTIN);
        return agent->handler(run);
}
