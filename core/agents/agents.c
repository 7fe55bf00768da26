/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agents.c: the agent registry, capability index, selection cache,
 * ranking, breakers, parking and stealing (see agents.h for the design).
 *
 * DESIGN (data)
 *   domain_t      one mutex and one generation for a chain of registries
 *                 (the current one and those still referenced by running
 *                 jobs after reloads); refcounted by its registries.
 *   state_t       an agent's mutable state (slots, parked queue, breaker,
 *                 EWMAs, counters), shared by name across the chain;
 *                 refcounted by the agents pointing at it; guarded by
 *                 the domain mutex.
 *   sq_agents_t   immutable after build except the selection cache and
 *                 the scratch arrays (both under the domain mutex).
 */
#include "agents.h"
#include "hash.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define CAP_SLOTS   128 /* interning table: power of two > 64 */
#define CACHE_SLOTS 256 /* selection cache entries (direct-mapped) */
#define EWMA_ALPHA  0.2
#define STEAL_SCAN  16 /* parked jobs looked at per victim agent */
#define W_FREE      0.4
#define W_SUCCESS   0.4
#define W_LATENCY   0.2

typedef struct domain_s {
        atomic_int refcnt;
        pthread_mutex_t lock;
        uint64_t gen;                  /* under lock */
        atomic_int_least64_t next_due; /* earliest open_until, 0 none */
} domain_t;

typedef struct parked_entry_s {
        void *job;
        uint64_t req;
} parked_entry_t;

/* A growable deque of parked jobs. */
typedef struct parked_s {
        parked_entry_t *jobs;
        size_t capacity; /* power of two, or 0 */
        size_t head;
        size_t cnt;
} parked_t;

typedef struct state_s {
        int refcnt; /* under the domain lock */
        char *name;
        int in_flight;
        parked_t parked;
        sq_breaker_t breaker;
        double ewma_success;
        double ewma_latency_us;
        uint64_t transitions[SQ_BREAKER_STATE_CNT];
        uint64_t stolen;
} state_t;

struct sq_agent_s {
        char *name;
        int idx;
        sq_agent_kind_t kind;
        sq_builtin_fn_t *handler;
        uint64_t capmask;
        uint64_t name_hash;
        int concurrency;
        bool spawn; /* agent.<name>.spawn */
        sq_breaker_conf_t bconf;
        state_t *state;
        sq_agents_t *registry;
        sq_agent_metrics_t m;
        void *runtime; /* exec or pool: the instance's runtime (borrowed) */
};

typedef struct cache_entry_s {
        uint64_t req;
        uint64_t gen;   /* 0 = empty (domain generations start at 1) */
        int cnt;        /* candidates */
        int eligible;   /* the first `eligible` are not open */
        uint16_t *list; /* agent indices */
        int list_size;
} cache_entry_t;

struct sq_agents_s {
        atomic_int refcnt;
        domain_t *dom;
        bool retired; /* under the domain lock */
        bool fail_when_open;
        sq_agent_t *agents;
        int agents_cnt;
        int words;
        char *capabilities[SQ_CAPABILITIES_MAX];
        int capabilities_cnt;
        int8_t cap_slots[CAP_SLOTS]; /* -1 empty, else capability bit */
        uint64_t *agents_with;       /* [capability][words] */
        uint64_t *parked_set;        /* [words]: agents with parked jobs */
        cache_entry_t cache[CACHE_SLOTS];
        double *scratch_score; /* [agents_cnt], under the lock */
        uint16_t *scratch_idx;
};

/*
 * Hashing
 */

static uint64_t str_hash(const char *str) {
        return sq_hash_fnv1a64_str(str, SQ_HASH_FNV64_BASIS);
}

/*
 * Capability interning (lock-free after build: the table is immutable)
 */

static int capability_bit(const sq_agents_t *agents, const char *name) {
        uint64_t h = str_hash(name);
        size_t i;
        for (i = 0; i < CAP_SLOTS; i++) {
                int bit = agents->cap_slots[(h + i) & (CAP_SLOTS - 1)];
                if (bit < 0)
                        return -1;
                if (!strcmp(agents->capabilities[bit], name))
                        return bit;
        }
        return -1;
}

static int capability_intern(sq_agents_t *agents, const char *name) {
        uint64_t h = str_hash(name);
        size_t i;
        int bit = capability_bit(agents, name);

        if (bit >= 0)
                return bit;
        if (agents->capabilities_cnt == SQ_CAPABILITIES_MAX)
                return -1;
        bit                       = agents->capabilities_cnt++;
        agents->capabilities[bit] = sq_strdup(name);
        for (i = 0;; i++) {
                int8_t *slot = &agents->cap_slots[(h + i) & (CAP_SLOTS - 1)];
                if (*slot < 0) {
                        *slot = (int8_t)bit;
                        return bit;
                }
        }
}

/*
 * Domain and states
 */

static domain_t *domain_new(void) {
        domain_t *dom = sq_calloc(1, sizeof(*dom));
        atomic_init(&dom->refcnt, 1);
        pthread_mutex_init(&dom->lock, NULL);
        dom->gen = 1;
        return dom;
}

static void domain_release(domain_t *dom) {
        if (atomic_fetch_sub(&dom->refcnt, 1) != 1)
                return;
        pthread_mutex_destroy(&dom->lock);
        sq_free(dom);
}

static state_t *state_new(const char *name) {
        state_t *state = sq_calloc(1, sizeof(*state));
        state->refcnt  = 1;
        state->name    = sq_strdup(name);
        sq_breaker_init(&state->breaker);
        state->ewma_success = 1.0;
        return state;
}

/* Under the domain lock (or with the last registry of the domain). */
static void state_release(state_t *state) {
        if (--state->refcnt > 0)
                return;
        sq_free(state->parked.jobs);
        sq_free(state->name);
        sq_free(state);
}

/*
 * Build and free
 */

sq_agents_t *sq_agents_new(const sq_config_t *conf, sq_agents_t *prev,
                           char *errstr, size_t errstr_size) {
        sq_agents_t *agents = sq_calloc(1, sizeof(*agents));
        size_t i, c;
        int w;

        atomic_init(&agents->refcnt, 1);
        memset(agents->cap_slots, -1, sizeof(agents->cap_slots));
        agents->fail_when_open = conf->breaker_when_open == SQ_WHEN_OPEN_FAIL;
        if (prev) {
                agents->dom = prev->dom;
                atomic_fetch_add(&agents->dom->refcnt, 1);
        } else {
                agents->dom = domain_new();
        }
        if (conf->agents_cnt > SQ_AGENTS_MAX) {
                sq_errstr_set(errstr, errstr_size,
                              "%zu agents are declared; at most %d are "
                              "supported",
                              conf->agents_cnt, SQ_AGENTS_MAX);
                goto fail;
        }
        agents->words = (int)SQ_MAX((conf->agents_cnt + 63) / 64, 1);
        agents->agents =
            sq_calloc(SQ_MAX(conf->agents_cnt, 1), sizeof(*agents->agents));
        agents->agents_with =
            sq_calloc((size_t)SQ_CAPABILITIES_MAX * (size_t)agents->words,
                      sizeof(uint64_t));
        agents->parked_set = sq_calloc((size_t)agents->words, sizeof(uint64_t));
        agents->scratch_score =
            sq_calloc(SQ_MAX(conf->agents_cnt, 1), sizeof(double));
        agents->scratch_idx =
            sq_calloc(SQ_MAX(conf->agents_cnt, 1), sizeof(uint16_t));

        for (i = 0; i < conf->agents_cnt; i++) {
                const sq_agent_conf_t *aconf = &conf->agents[i];
                sq_agent_t *agent            = &agents->agents[i];
                sq_agent_t *old =
                    prev ? sq_agents_find(prev, aconf->name) : NULL;

                agent->name            = sq_strdup(aconf->name);
                agent->idx             = (int)i;
                agent->kind            = aconf->kind;
                agent->concurrency     = aconf->concurrency;
                agent->spawn           = aconf->spawn;
                agent->name_hash       = sq_hash_mix64(str_hash(aconf->name));
                agent->registry        = agents;
                agent->bconf.failures  = aconf->breaker_failures;
                agent->bconf.window_us = aconf->breaker_window_ms * 1000;
                agent->bconf.open_us   = aconf->breaker_open_ms * 1000;
                agent->bconf.probes    = aconf->breaker_probes;
                if (old) {
                        pthread_mutex_lock(&agents->dom->lock);
                        agent->state = old->state;
                        agent->state->refcnt++;
                        pthread_mutex_unlock(&agents->dom->lock);
                } else {
                        agent->state = state_new(aconf->name);
                }
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
                        int bit         = capability_intern(agents, cap);
                        if (bit < 0) {
                                sq_errstr_set(errstr, errstr_size,
                                              "agent.%s.capabilities: "
                                              "capability \"%s\" is over the "
                                              "limit of %d distinct "
                                              "capabilities",
                                              aconf->name, cap,
                                              SQ_CAPABILITIES_MAX);
                                goto fail;
                        }
                        agent->capmask |= UINT64_C(1) << bit;
                        w = (int)(i / 64);
                        agents->agents_with[bit * agents->words + w] |=
                            UINT64_C(1) << (i % 64);
                }
        }
        /* A new registry changes what the cache may hold. */
        pthread_mutex_lock(&agents->dom->lock);
        agents->dom->gen++;
        pthread_mutex_unlock(&agents->dom->lock);
        return agents;

fail:
        sq_agents_release_ref(agents);
        return NULL;
}

sq_agents_t *sq_agents_keep(sq_agents_t *agents) {
        atomic_fetch_add(&agents->refcnt, 1);
        return agents;
}

void sq_agents_release_ref(sq_agents_t *agents) {
        domain_t *dom;
        int i;

        if (!agents || atomic_fetch_sub(&agents->refcnt, 1) != 1)
                return;
        dom = agents->dom;
        pthread_mutex_lock(&dom->lock);
        for (i = 0; i < agents->agents_cnt; i++)
                if (agents->agents[i].state)
                        state_release(agents->agents[i].state);
        pthread_mutex_unlock(&dom->lock);
        for (i = 0; i < agents->agents_cnt; i++)
                sq_free(agents->agents[i].name);
        for (i = 0; i < agents->capabilities_cnt; i++)
                sq_free(agents->capabilities[i]);
        for (i = 0; i < CACHE_SLOTS; i++)
                sq_free(agents->cache[i].list);
        sq_free(agents->agents);
        sq_free(agents->agents_with);
        sq_free(agents->parked_set);
        sq_free(agents->scratch_score);
        sq_free(agents->scratch_idx);
        domain_release(dom);
        sq_free(agents);
}

int sq_agents_count(const sq_agents_t *agents) {
        return agents->agents_cnt;
}

sq_agent_t *sq_agents_get(sq_agents_t *agents, int idx) {
        sq_assert(idx >= 0 && idx < agents->agents_cnt);
        return &agents->agents[idx];
}

sq_agent_t *sq_agents_find(sq_agents_t *agents, const char *name) {
        int i;
        for (i = 0; i < agents->agents_cnt; i++)
                if (!strcmp(agents->agents[i].name, name))
                        return &agents->agents[i];
        return NULL;
}

int sq_agents_words(const sq_agents_t *agents) {
        return agents->words;
}

/*
 * Out lists
 */

static void out_requeue(sq_agents_out_t *out, void *job) {
        if (out->requeue_cnt == out->requeue_size) {
                out->requeue_size =
                    out->requeue_size ? out->requeue_size * 2 : 16;
                out->requeue = sq_realloc(out->requeue,
                                          out->requeue_size * sizeof(void *));
        }
        out->requeue[out->requeue_cnt++] = job;
}

static void out_change(sq_agents_out_t *out, sq_agent_t *agent,
                       sq_breaker_state_t from, sq_breaker_state_t to) {
        if (out->changes_cnt == out->changes_size) {
                out->changes_size =
                    out->changes_size ? out->changes_size * 2 : 4;
                out->changes = sq_realloc(
                    out->changes, out->changes_size * sizeof(*out->changes));
        }
        out->changes[out->changes_cnt].agent = agent;
        out->changes[out->changes_cnt].from  = from;
        out->changes[out->changes_cnt].to    = to;
        out->changes_cnt++;
}

void sq_agents_out_reset(sq_agents_out_t *out) {
        sq_free(out->requeue);
        sq_free(out->changes);
        memset(out, 0, sizeof(*out));
}

/*
 * Parked queues (under the lock)
 */

static void parked_push(parked_t *parked, void *job, uint64_t req, bool front) {
        parked_entry_t *slot;
        if (parked->cnt == parked->capacity) {
                size_t capacity = parked->capacity ? parked->capacity * 2 : 16;
                parked_entry_t *jobs = sq_malloc(capacity * sizeof(*jobs));
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
                slot         = &parked->jobs[parked->head];
        } else {
                slot = &parked->jobs[(parked->head + parked->cnt) &
                                     (parked->capacity - 1)];
        }
        slot->job = job;
        slot->req = req;
        parked->cnt++;
}

/* Removes and returns entry @p i (0 = head), keeping the order. */
static void *parked_take(parked_t *parked, size_t i) {
        size_t mask = parked->capacity - 1, j;
        void *job   = parked->jobs[(parked->head + i) & mask].job;
        for (j = i; j > 0; j--)
                parked->jobs[(parked->head + j) & mask] =
                    parked->jobs[(parked->head + j - 1) & mask];
        parked->head = (parked->head + 1) & mask;
        parked->cnt--;
        return job;
}

static void parked_set_update(sq_agents_t *agents, sq_agent_t *agent) {
        uint64_t bit = UINT64_C(1) << (agent->idx % 64);
        if (agent->state->parked.cnt)
                agents->parked_set[agent->idx / 64] |= bit;
        else
                agents->parked_set[agent->idx / 64] &= ~bit;
}

/* Moves every job parked on @p agent to out->requeue. */
static void unpark_all(sq_agents_t *agents, sq_agent_t *agent,
                       sq_agents_out_t *out) {
        parked_t *parked = &agent->state->parked;
        while (parked->cnt)
                out_requeue(out, parked_take(parked, 0));
        parked_set_update(agents, agent);
}

/*
 * Breakers (under the lock)
 */

static void breaker_changed(sq_agents_t *agents, sq_agent_t *agent,
                            sq_breaker_state_t from, sq_agents_out_t *out) {
        state_t *state        = agent->state;
        sq_breaker_state_t to = state->breaker.state;
        int64_t due;

        state->transitions[to]++;
        agents->dom->gen++;
        out_change(out, agent, from, to);
        if (to == SQ_BREAKER_OPEN) {
                /* Its parked jobs may have healthy candidates elsewhere. */
                unpark_all(agents, agent, out);
                due = atomic_load(&agents->dom->next_due);
                if (!due || state->breaker.open_until_us < due)
                        atomic_store(&agents->dom->next_due,
                                     state->breaker.open_until_us);
        }
}

/*
 * Selection
 */

sq_err_t sq_agents_requirement(const sq_agents_t *agents, const sq_task_t *task,
                               uint64_t *reqp, char *errstr,
                               size_t errstr_size) {
        uint64_t req = 0;
        size_t i;
        int bit;

        if (task->capabilities_cnt == 0) {
                /* No explicit requirement: the type names the capability. */
                bit = capability_bit(agents, task->type);
                if (bit < 0) {
                        sq_errstr_set(errstr, errstr_size,
                                      "no agent has capability \"%s\" "
                                      "(the task's type; the task lists no "
                                      "capabilities)",
                                      task->type);
                        return SQ_ERR_NO_AGENT;
                }
                *reqp = UINT64_C(1) << bit;
                return SQ_OK;
        }
        for (i = 0; i < task->capabilities_cnt; i++) {
                bit = capability_bit(agents, task->capabilities[i]);
                if (bit < 0) {
                        sq_errstr_set(errstr, errstr_size,
                                      "no agent has capability \"%s\"",
                                      task->capabilities[i]);
                        return SQ_ERR_NO_AGENT;
                }
                req |= UINT64_C(1) << bit;
        }
        *reqp = req;
        return SQ_OK;
}

/* AND of the requirement's capability sets into @p bits. */
static void candidates_of(const sq_agents_t *agents, uint64_t req,
                          uint64_t *bits) {
        int w;
        bool first = true;

        for (; req; req &= req - 1) {
                const uint64_t *set =
                    &agents->agents_with[__builtin_ctzll(req) * agents->words];
                for (w = 0; w < agents->words; w++)
                        bits[w] = first ? set[w] : bits[w] & set[w];
                first = false;
        }
        if (first)
                memset(bits, 0, (size_t)agents->words * sizeof(*bits));
}

sq_err_t sq_agents_candidates(sq_agents_t *agents, const sq_task_t *task,
                              uint64_t *bits, char *errstr,
                              size_t errstr_size) {
        uint64_t req, any = 0;
        sq_err_t err;
        int w;

        if ((err = sq_agents_requirement(agents, task, &req, errstr,
                                         errstr_size)))
                return err;
        candidates_of(agents, req, bits);
        for (w = 0; w < agents->words; w++)
                any |= bits[w];
        if (!any) {
                sq_errstr_set(errstr, errstr_size,
                              "no single agent has all %zu required "
                              "capabilities",
                              task->capabilities_cnt);
                return SQ_ERR_NO_AGENT;
        }
        return SQ_OK;
}

/* The cached candidates of @p req, rebuilt when stale. Under the lock. */
static cache_entry_t *cache_get(sq_agents_t *agents, uint64_t req) {
        cache_entry_t *entry =
            &agents->cache[sq_hash_mix64(req) & (CACHE_SLOTS - 1)];
        uint64_t bits[SQ_AGENTS_MAX / 64];
        int w, n = 0, open_n = 0;

        if (entry->gen == agents->dom->gen && entry->req == req)
                return entry;
        candidates_of(agents, req, bits);
        if (entry->list_size < agents->agents_cnt) {
                sq_free(entry->list);
                entry->list_size = agents->agents_cnt;
                entry->list =
                    sq_malloc((size_t)entry->list_size * sizeof(*entry->list));
        }
        /* Not open first, in index order; open ones after them. */
        for (w = 0; w < agents->words; w++) {
                uint64_t m;
                for (m = bits[w]; m; m &= m - 1) {
                        int i = w * 64 + __builtin_ctzll(m);
                        if (agents->agents[i].state->breaker.state !=
                            SQ_BREAKER_OPEN)
                                entry->list[n++] = (uint16_t)i;
                        else
                                agents->scratch_idx[open_n++] = (uint16_t)i;
                }
        }
        memcpy(entry->list + n, agents->scratch_idx,
               (size_t)open_n * sizeof(*entry->list));
        entry->req      = req;
        entry->gen      = agents->dom->gen;
        entry->eligible = n;
        entry->cnt      = n + open_n;
        return entry;
}

/* Ranked pick among eligible candidates with a free slot; -1 none. */
static int pick_ranked(sq_agents_t *agents, const cache_entry_t *entry,
                       const char *key) {
        double best_lat = 0, best = -1;
        int i, n = 0, pick = -1;
        uint16_t *idx = agents->scratch_idx;

        for (i = 0; i < entry->eligible; i++) {
                sq_agent_t *agent = &agents->agents[entry->list[i]];
                state_t *state    = agent->state;
                if (state->in_flight >= agent->concurrency ||
                    !sq_breaker_could_allow(&state->breaker, &agent->bconf))
                        continue;
                if (state->ewma_latency_us > 0 &&
                    (best_lat == 0 || state->ewma_latency_us < best_lat))
                        best_lat = state->ewma_latency_us;
                idx[n++] = entry->list[i];
        }
        for (i = 0; i < n; i++) {
                sq_agent_t *agent = &agents->agents[idx[i]];
                state_t *state    = agent->state;
                double lat_score  = state->ewma_latency_us > 0
                                        ? best_lat / state->ewma_latency_us
                                        : 1.0;
                double score =
                    W_FREE * (double)(agent->concurrency - state->in_flight) /
                        agent->concurrency +
                    W_SUCCESS * state->ewma_success + W_LATENCY * lat_score;
                agents->scratch_score[i] = score;
                if (score > best) {
                        best = score;
                        pick = idx[i];
                }
        }
        if (key && n > 1) {
                uint64_t kh = str_hash(key), top = 0;
                for (i = 0; i < n; i++) {
                        uint64_t h;
                        if (agents->scratch_score[i] <
                            best - SQ_AGENTS_AFFINITY_BAND)
                                continue;
                        h = sq_hash_mix64(kh ^
                                          agents->agents[idx[i]].name_hash);
                        if (h >= top) {
                                top  = h;
                                pick = idx[i];
                        }
                }
        }
        return pick;
}

/* Least-loaded pick (ranked_selection off); -1 none. */
static int pick_least_loaded(sq_agents_t *agents, const cache_entry_t *entry) {
        int i, pick = -1, best_free = 0;
        for (i = 0; i < entry->eligible; i++) {
                sq_agent_t *agent = &agents->agents[entry->list[i]];
                int free_slots = agent->concurrency - agent->state->in_flight;
                if (free_slots > best_free &&
                    sq_breaker_could_allow(&agent->state->breaker,
                                           &agent->bconf)) {
                        best_free = free_slots;
                        pick      = entry->list[i];
                }
        }
        return pick;
}

sq_acquire_t sq_agents_acquire(sq_agents_t *agents, const sq_select_t *sel,
                               void *job, sq_slot_t *slot, char *errstr,
                               size_t errstr_size) {
        sq_acquire_t ret = SQ_ACQ_PARKED;
        cache_entry_t *entry;
        sq_agent_t *park_on = NULL;
        int pick, i;

        pthread_mutex_lock(&agents->dom->lock);
        if (agents->retired) {
                ret = SQ_ACQ_STALE;
                goto done;
        }
        entry = cache_get(agents, sel->req);
        if (!entry->cnt) {
                sq_errstr_set(errstr, errstr_size,
                              "no single agent has all %d required "
                              "capabilities",
                              __builtin_popcountll(sel->req));
                ret = SQ_ACQ_NO_AGENT;
                goto done;
        }
        pick = sel->ranked ? pick_ranked(agents, entry, sel->key)
                           : pick_least_loaded(agents, entry);
        if (pick >= 0) {
                sq_agent_t *agent = &agents->agents[pick];
                bool allowed      = sq_breaker_allow(&agent->state->breaker,
                                                     &agent->bconf, &slot->probe);
                sq_assert(allowed);
                agent->state->in_flight++;
                slot->agent = agent;
                ret         = SQ_ACQ_RUN;
                goto done;
        }
        /* Park: shortest queue among the not open... */
        for (i = 0; i < entry->eligible; i++) {
                sq_agent_t *agent = &agents->agents[entry->list[i]];
                if (!park_on ||
                    agent->state->parked.cnt < park_on->state->parked.cnt)
                        park_on = agent;
        }
        /* ...or, all open, the first to go half-open (unless "fail"). */
        if (!park_on && agents->fail_when_open) {
                sq_errstr_set(errstr, errstr_size,
                              "no healthy agent: the circuit breaker of "
                              "every capable agent is open (first: %s)",
                              agents->agents[entry->list[0]].name);
                ret = SQ_ACQ_NO_HEALTHY;
                goto done;
        }
        for (i = entry->eligible; !entry->eligible && i < entry->cnt; i++) {
                sq_agent_t *agent = &agents->agents[entry->list[i]];
                if (!park_on || agent->state->breaker.open_until_us <
                                    park_on->state->breaker.open_until_us)
                        park_on = agent;
        }
        parked_push(&park_on->state->parked, job, sel->req, sel->critical);
        parked_set_update(agents, park_on);
done:
        pthread_mutex_unlock(&agents->dom->lock);
        return ret;
}

/* Records an outcome into the agent's EWMAs and breaker. Under lock. */
static void record(sq_agents_t *agents, sq_slot_t *slot,
                   sq_agent_outcome_t outcome, int64_t latency_us,
                   sq_agents_out_t *out) {
        sq_agent_t *agent       = slot->agent;
        state_t *state          = agent->state;
        sq_breaker_state_t from = state->breaker.state;
        bool ok                 = outcome == SQ_AGENT_OUTCOME_SUCCESS;

        if (outcome == SQ_AGENT_OUTCOME_NONE) {
                sq_breaker_cancel(&state->breaker, slot->probe);
                return;
        }
        state->ewma_success +=
            EWMA_ALPHA * ((ok ? 1.0 : 0.0) - state->ewma_success);
        state->ewma_latency_us =
            state->ewma_latency_us > 0
                ? state->ewma_latency_us +
                      EWMA_ALPHA * ((double)latency_us - state->ewma_latency_us)
                : (double)SQ_MAX(latency_us, 1);
        if (sq_breaker_record(&state->breaker, &agent->bconf, sq_clock_us(),
                              slot->probe, ok))
                breaker_changed(agents, agent, from, out);
}

/* A job parked elsewhere that @p agent can run, taken off its queue. */
static void *steal(sq_agents_t *agents, sq_agent_t *agent,
                   sq_agents_steal_cb_t *may_steal, void *opaque) {
        int w;
        for (w = 0; w < agents->words; w++) {
                uint64_t m;
                for (m = agents->parked_set[w]; m; m &= m - 1) {
                        sq_agent_t *victim =
                            &agents->agents[w * 64 + __builtin_ctzll(m)];
                        parked_t *parked = &victim->state->parked;
                        size_t i, scan = SQ_MIN(parked->cnt, STEAL_SCAN);
                        if (victim == agent)
                                continue;
                        for (i = 0; i < scan; i++) {
                                parked_entry_t *e =
                                    &parked->jobs[(parked->head + i) &
                                                  (parked->capacity - 1)];
                                void *job;
                                if ((agent->capmask & e->req) != e->req ||
                                    !may_steal(opaque, e->job))
                                        continue;
                                job = parked_take(parked, i);
                                parked_set_update(agents, victim);
                                return job;
                        }
                }
        }
        return NULL;
}

void *sq_agents_release(sq_agents_t *agents, sq_slot_t *slot,
                        sq_agent_outcome_t outcome, int64_t latency_us,
                        sq_agents_steal_cb_t *may_steal, void *opaque,
                        sq_agents_out_t *out) {
        sq_agent_t *agent = slot->agent;
        state_t *state    = agent->state;
        void *job         = NULL;

        pthread_mutex_lock(&agents->dom->lock);
        record(agents, slot, outcome, latency_us, out);
        slot->probe = false;
        if (agents->retired) {
                /* Jobs parked through the new registry select again. */
                state->in_flight--;
                while (state->parked.cnt)
                        out_requeue(out, parked_take(&state->parked, 0));
                goto done;
        }
        if (state->in_flight <= agent->concurrency &&
            sq_breaker_could_allow(&state->breaker, &agent->bconf)) {
                if (state->parked.cnt) {
                        job = parked_take(&state->parked, 0);
                        parked_set_update(agents, agent);
                } else if (may_steal &&
                           state->breaker.state == SQ_BREAKER_CLOSED &&
                           (job = steal(agents, agent, may_steal, opaque))) {
                        state->stolen++;
                        out->stolen++;
                }
        }
        if (job)
                sq_breaker_allow(&state->breaker, &agent->bconf, &slot->probe);
        else
                state->in_flight--; /* else the slot passes to the job */
done:
        pthread_mutex_unlock(&agents->dom->lock);
        return job;
}

void sq_agents_retire(sq_agents_t *agents, sq_agents_out_t *out) {
        int i;
        pthread_mutex_lock(&agents->dom->lock);
        agents->retired = true;
        for (i = 0; i < agents->agents_cnt; i++)
                unpark_all(agents, &agents->agents[i], out);
        agents->dom->gen++;
        pthread_mutex_unlock(&agents->dom->lock);
}

int64_t sq_agents_tick(sq_agents_t *agents, int64_t now_us,
                       sq_agents_out_t *out) {
        int64_t next = 0;
        int i;

        pthread_mutex_lock(&agents->dom->lock);
        for (i = 0; i < agents->agents_cnt; i++) {
                sq_agent_t *agent     = &agents->agents[i];
                sq_breaker_t *breaker = &agent->state->breaker;
                if (breaker->state != SQ_BREAKER_OPEN)
                        continue;
                if (sq_breaker_tick(breaker, now_us)) {
                        breaker_changed(agents, agent, SQ_BREAKER_OPEN, out);
                        unpark_all(agents, agent, out);
                } else if (!next || breaker->open_until_us < next) {
                        next = breaker->open_until_us;
                }
        }
        atomic_store(&agents->dom->next_due, next);
        pthread_mutex_unlock(&agents->dom->lock);
        return next;
}

int64_t sq_agents_next_due(const sq_agents_t *agents) {
        return atomic_load(&agents->dom->next_due);
}

/*
 * Accessors
 */

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
        return __atomic_load_n(&agent->state->in_flight, __ATOMIC_RELAXED);
}

int sq_agent_parked(sq_agent_t *agent) {
        return (int)__atomic_load_n(&agent->state->parked.cnt,
                                    __ATOMIC_RELAXED);
}

sq_breaker_state_t sq_agent_breaker_state(sq_agent_t *agent) {
        return (sq_breaker_state_t)__atomic_load_n(
            (int *)&agent->state->breaker.state, __ATOMIC_RELAXED);
}

void sq_agent_capabilities(const sq_agent_t *agent,
                           void (*cb)(void *opaque, const char *capability),
                           void *opaque) {
        uint64_t m;
        for (m = agent->capmask; m; m &= m - 1)
                cb(opaque, agent->registry->capabilities[__builtin_ctzll(m)]);
}

void sq_agent_stats(sq_agent_t *agent, sq_agent_stats_t *stats) {
        state_t *state        = agent->state;
        pthread_mutex_t *lock = &agent->registry->dom->lock;

        pthread_mutex_lock(lock);
        stats->concurrency  = agent->concurrency;
        stats->in_flight    = state->in_flight;
        stats->parked       = (int)state->parked.cnt;
        stats->success_rate = state->ewma_success;
        stats->latency_us   = state->ewma_latency_us;
        stats->breaker      = state->breaker.state;
        memcpy(stats->transitions, state->transitions,
               sizeof(stats->transitions));
        stats->stolen = state->stolen;
        pthread_mutex_unlock(lock);
}

sq_agent_metrics_t *sq_agent_metrics(sq_agent_t *agent) {
        return &agent->m;
}

sq_agent_kind_t sq_agent_kind(const sq_agent_t *agent) {
        return agent->kind;
}

bool sq_agent_spawns(const sq_agent_t *agent) {
        return agent->spawn;
}

void sq_agent_set_runtime(sq_agent_t *agent, void *runtime) {
        agent->runtime = runtime;
}

void *sq_agent_runtime(const sq_agent_t *agent) {
        return agent->runtime;
}

sq_status_t sq_agent_run(sq_agent_t *agent, sq_run_t *run) {
        sq_assert(agent->kind == SQ_AGENT_BUILTIN);
        return agent->handler(run);
}
