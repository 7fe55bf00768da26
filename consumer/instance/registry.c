/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry.c: the instance's current agent registry: taking a reference
 * to it, and acting on the side effects of a registry call (jobs to
 * requeue, breaker transitions to log and announce, stolen jobs to count).
 *
 * DESIGN
 *   Threads: any. The registry pointer is swapped by a reload (reload.c)
 *   under registry.lock; every reader takes a reference under the same lock
 *   and releases it when done, so a registry lives as long as its last
 *   reader or running job. The agents module (core/agents/agents.c) calls
 *   nothing of the instance while it holds its lock: it collects what must
 *   happen after (sq_agents_out_t), and its caller hands that here once
 *   the lock is released. Events are produced with the calling thread's
 *   codec; a reload (no codec of its own) only logs the transitions.
 */
#include "event_types.h"
#include "daemon_int.h"
#include "log.h"
#include "poll_int.h"
#include "registry_int.h"

#include <stdio.h>

sq_agents_t *sq_daemon_agents(sq_daemon_t *daemon) {
        sq_agents_t *agents;
        pthread_mutex_lock(&daemon->registry.lock);
        agents = sq_agents_keep(daemon->registry.agents);
        pthread_mutex_unlock(&daemon->registry.lock);
        return agents;
}

static const char *breaker_event_type(sq_breaker_state_t to) {
        switch (to) {
        case SQ_BREAKER_OPEN:
                return SQ_EVENT_BREAKER_OPEN;
        case SQ_BREAKER_HALF_OPEN:
                return SQ_EVENT_BREAKER_HALF_OPEN;
        case SQ_BREAKER_CLOSED:
                return SQ_EVENT_BREAKER_CLOSED;
        }
        return SQ_EVENT_BREAKER_CLOSED;
}

void sq_daemon_agents_out(sq_daemon_t *daemon, sq_codec_t *codec,
                          sq_agents_out_t *out) {
        bool opened = false;
        size_t i;

        for (i = 0; i < out->changes_cnt; i++) {
                const sq_breaker_change_t *c = &out->changes[i];
                const char *name             = sq_agent_name(c->agent);
                char detail[160];
                snprintf(detail, sizeof(detail), "circuit breaker %s -> %s",
                         sq_breaker_state_name(c->from),
                         sq_breaker_state_name(c->to));
                SQ_LOG(c->to == SQ_BREAKER_OPEN ? SQ_LOG_WARNING
                                                : SQ_LOG_NOTICE,
                       "BREAKER", "agent=%s from=%s to=%s", name,
                       sq_breaker_state_name(c->from),
                       sq_breaker_state_name(c->to));
                if (codec)
                        sq_emit_event(daemon, codec, breaker_event_type(c->to),
                                      NULL, name, detail, NULL);
                opened |= c->to == SQ_BREAKER_OPEN;
        }
        for (i = 0; i < out->requeue_cnt; i++) {
                sq_job_t *job = out->requeue[i];
                if (atomic_load(&daemon->cancel))
                        sq_job_drop(daemon, job, "instance stopping");
                else
                        sq_sched_push(daemon->sched, &job->item);
        }
        if (out->stolen)
                sq_metric_add(daemon->m.stolen, out->stolen);
        if (opened)
                sq_daemon_wake(daemon); /* the poll thread's next timer */
        sq_agents_out_reset(out);
}

void sq_registry_init(sq_daemon_t *daemon) {
        pthread_mutex_init(&daemon->registry.lock, NULL);
}

void sq_registry_term(sq_daemon_t *daemon) {
        sq_agents_release_ref(daemon->registry.agents);
        daemon->registry.agents = NULL;
        pthread_mutex_destroy(&daemon->registry.lock);
}

sq_err_t sq_registry_load(sq_daemon_t *daemon, char *errstr,
                          size_t errstr_size) {
        daemon->registry.agents =
            sq_agents_new(daemon->conf, NULL, errstr, errstr_size);
        return daemon->registry.agents ? SQ_OK : SQ_ERR_CONFIG;
}

sq_agents_t *sq_registry_swap(sq_daemon_t *daemon, sq_agents_t *agents) {
        sq_agents_t *old;
        pthread_mutex_lock(&daemon->registry.lock);
        old                     = daemon->registry.agents;
        daemon->registry.agents = agents;
        pthread_mutex_unlock(&daemon->registry.lock);
        return old;
}
