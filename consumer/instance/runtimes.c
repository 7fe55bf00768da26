/* SPDX-License-Identifier: Apache-2.0 */
/*
 * runtimes.c: the exec and pool agents' runtimes: built at start and by
 * reloads, bound to the agents that use them, drained and stopped when a
 * reload replaces or removes them, cancelled by task id, shown in
 * /metrics (see runtimes_int.h).
 *
 * DESIGN
 *   Threads: a reload (signal thread) binds; executors and the I/O loop
 *   enter and leave; the control thread cancels; the HTTP thread reads
 *   the figures; the drainer thread shuts retired runtimes down (a
 *   shutdown waits for its children, so neither the loop nor a reload
 *   may run it). The list of runtimes is under runtimes.lock, never held
 *   across the log sink or a shutdown. A runtime is identified by its
 *   agent's name and its settings' fingerprint
 *   (sq_config_agent_runtime_fingerprint()): a reload that keeps both
 *   keeps the runtime, its workers and its counters.
 *
 *   Drain. `users` counts the runs inside a runtime (entered, not yet
 *   left). The drainer stops a retired runtime whose users are 0 (sets
 *   `stopped`, then reads `users` again: a run that entered before seeing
 *   `stopped` keeps it from being shut down until it leaves), and a run
 *   that enters and finds `stopped` leaves at once and is requeued. So no
 *   task is ever submitted to a runtime that was shut down.
 */
#include "daemon_int.h"
#include "log.h"
#include "pool.h"
#include "runtimes_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct sq_runtime_s {
        char *name;
        sq_agent_kind_t kind;
        char *fingerprint; /* the settings it was built from */
        void *impl;        /* sq_exec_t or sq_pool_t */
        atomic_int users;  /* runs entered and not left */
        atomic_bool stopped;
        atomic_bool retired; /* replaced or removed by a reload */
        bool shut;           /* shut down or being; under the lock */
        unsigned bound;      /* the bind generation that last bound it */
        struct sq_runtime_s *next;
};

typedef struct rt_collector_s rt_collector_t;

struct sq_runtimes_s {
        pthread_mutex_t lock;
        pthread_cond_t cond; /* the drainer: a runtime may be drainable */
        sq_runtime_t *list;  /* every runtime ever built, newest first */
        unsigned gen;        /* bind generation */
        bool started;        /* the loop runs: new pools start at once */
        bool stopping;       /* the drainer ends */
        bool drainer_running;
        pthread_t drainer;
        rt_collector_t *collectors;
};

static sq_runtime_t *runtime_new(sq_daemon_t *daemon,
                                 const sq_agent_conf_t *aconf, char *fp) {
        sq_runtime_t *rt = sq_calloc(1, sizeof(*rt));
        rt->name         = sq_strdup(aconf->name);
        rt->kind         = aconf->kind;
        rt->fingerprint  = fp;
        rt->impl =
            aconf->kind == SQ_AGENT_EXEC
                ? (void *)sq_exec_new(daemon->executors.ioloop, aconf, environ)
                : (void *)sq_pool_new(daemon->executors.ioloop, aconf, environ);
        return rt;
}

static void runtime_shutdown(sq_runtime_t *rt) {
        if (rt->kind == SQ_AGENT_EXEC)
                sq_exec_shutdown(rt->impl);
        else
                sq_pool_shutdown(rt->impl);
}

/* The current (not retired) runtime named @p name, or NULL. Locked. */
static sq_runtime_t *current_named(sq_runtimes_t *rts, const char *name) {
        sq_runtime_t *rt;
        for (rt = rts->list; rt; rt = rt->next)
                if (!atomic_load(&rt->retired) && !strcmp(rt->name, name))
                        return rt;
        return NULL;
}

/* What a bind did, logged once the lock is released. */
typedef struct bind_log_s {
        char text[1024];
} bind_log_t;

static void bind_log_add(bind_log_t *log, const char *what, const char *name) {
        size_t len = strlen(log->text);
        snprintf(log->text + len, sizeof(log->text) - len, "%s%s %s",
                 len ? ", " : "", what, name);
}

void sq_runtimes_bind(sq_daemon_t *daemon, const sq_config_t *conf,
                      sq_agents_t *agents) {
        sq_runtimes_t *rts = daemon->executors.runtimes;
        bind_log_t log     = {{0}};
        sq_runtime_t *rt;
        size_t i;

        pthread_mutex_lock(&rts->lock);
        rts->gen++;
        for (i = 0; i < conf->agents_cnt; i++) {
                const sq_agent_conf_t *aconf = &conf->agents[i];
                sq_agent_t *agent;
                char *fp;

                if (aconf->kind == SQ_AGENT_BUILTIN)
                        continue;
                agent = sq_agents_find(agents, aconf->name);
                fp    = sq_config_agent_runtime_fingerprint(aconf);
                rt    = current_named(rts, aconf->name);
                if (rt && rt->kind == aconf->kind &&
                    !strcmp(rt->fingerprint, fp)) {
                        sq_free(fp);
                } else {
                        if (rt) {
                                atomic_store(&rt->retired, true);
                                bind_log_add(&log, "replaced", rt->name);
                        } else if (rts->started) {
                                bind_log_add(&log, "added", aconf->name);
                        }
                        rt        = runtime_new(daemon, aconf, fp);
                        rt->next  = rts->list;
                        rts->list = rt;
                        if (rts->started && rt->kind == SQ_AGENT_POOL)
                                sq_pool_start(rt->impl);
                }
                rt->bound = rts->gen;
                if (agent)
                        sq_agent_set_runtime(agent, rt);
        }
        for (rt = rts->list; rt; rt = rt->next) {
                if (!atomic_load(&rt->retired) && rt->bound != rts->gen) {
                        atomic_store(&rt->retired, true);
                        bind_log_add(&log, "removed", rt->name);
                }
        }
        pthread_cond_signal(&rts->cond);
        pthread_mutex_unlock(&rts->lock);
        if (log.text[0])
                SQ_LOG(SQ_LOG_NOTICE, "RUNTIME",
                       "exec and pool agents: %s (a replaced or removed "
                       "runtime drains: its running tasks finish, then it "
                       "stops)",
                       log.text);
}

/* The drainer thread: shuts down each retired runtime once it is empty. */
static void *drainer_main(void *arg) {
        sq_daemon_t *daemon = arg;
        sq_runtimes_t *rts  = daemon->executors.runtimes;
        sq_runtime_t *rt;

        pthread_mutex_lock(&rts->lock);
        while (!rts->stopping) {
                for (rt = rts->list; rt; rt = rt->next) {
                        if (rt->shut || !atomic_load(&rt->retired) ||
                            atomic_load(&rt->users) != 0)
                                continue;
                        atomic_store(&rt->stopped, true);
                        if (atomic_load(&rt->users) == 0)
                                break; /* no run can enter any more */
                }
                if (!rt) {
                        pthread_cond_wait(&rts->cond, &rts->lock);
                        continue;
                }
                rt->shut = true;
                pthread_mutex_unlock(&rts->lock);
                runtime_shutdown(rt);
                SQ_LOG(SQ_LOG_NOTICE, "RUNTIME",
                       "agent=%s kind=%s: the runtime a reload retired "
                       "drained and stopped",
                       rt->name, rt->kind == SQ_AGENT_EXEC ? "exec" : "pool");
                pthread_mutex_lock(&rts->lock);
        }
        pthread_mutex_unlock(&rts->lock);
        return NULL;
}

sq_runtime_t *sq_runtime_enter(sq_agent_t *agent) {
        sq_runtime_t *rt = sq_agent_runtime(agent);

        if (!rt)
                return NULL;
        atomic_fetch_add(&rt->users, 1);
        if (atomic_load(&rt->stopped)) {
                atomic_fetch_sub(&rt->users, 1);
                return NULL;
        }
        return rt;
}

void sq_runtime_submit(sq_runtime_t *rt, const sq_task_t *task,
                       int64_t deadline_us, sq_outcome_cb_t *cb, void *opaque) {
        if (rt->kind == SQ_AGENT_EXEC)
                sq_exec_submit(rt->impl, task, deadline_us, cb, opaque);
        else
                sq_pool_submit(rt->impl, task, deadline_us, cb, opaque);
}

void sq_runtime_leave(sq_daemon_t *daemon, sq_runtime_t *rt) {
        sq_runtimes_t *rts = daemon->executors.runtimes;

        if (atomic_fetch_sub(&rt->users, 1) == 1 && atomic_load(&rt->retired)) {
                pthread_mutex_lock(&rts->lock);
                pthread_cond_signal(&rts->cond);
                pthread_mutex_unlock(&rts->lock);
        }
}

sq_err_t sq_runtimes_new(sq_daemon_t *daemon, char *errstr,
                         size_t errstr_size) {
        sq_runtimes_t *rts;

        /* The loop runs even when every agent is builtin: a reload may
         * add an exec or pool agent. Idle, it sleeps in epoll_wait. */
        if (!(daemon->executors.ioloop = sq_ioloop_new(errstr, errstr_size)))
                return SQ_ERR_IO;
        if (!(daemon->executors.io_codec = sq_codec_new(errstr, errstr_size)))
                return SQ_ERR_ENCODE;
        sq_schemas_use(daemon, daemon->executors.io_codec);
        rts = sq_calloc(1, sizeof(*rts));
        pthread_mutex_init(&rts->lock, NULL);
        pthread_cond_init(&rts->cond, NULL);
        daemon->executors.runtimes = rts;
        sq_runtimes_bind(daemon, daemon->conf, daemon->registry.agents);
        return SQ_OK;
}

/* /metrics: the pools' and exec agents' figures (read at scrape time),
 * per agent name: the current runtime plus any of the same name still
 * draining. */
typedef enum {
        RT_WORKERS,
        RT_BUSY,
        RT_WAITING,
        RT_STARTED,
        RT_EXITS,
        RT_RETRIES,
        RT_EXEC_RUNNING,
} rt_metric_t;

struct rt_collector_s {
        sq_daemon_t *daemon;
        rt_metric_t what;
};

/* Sums the pool figures of every runtime named like @p current. */
static void pool_stats_sum(sq_runtimes_t *rts, const sq_runtime_t *current,
                           sq_pool_stats_t *sum) {
        const sq_runtime_t *rt;
        sq_pool_stats_t st;

        memset(sum, 0, sizeof(*sum));
        for (rt = rts->list; rt; rt = rt->next) {
                if (rt->kind != SQ_AGENT_POOL ||
                    strcmp(rt->name, current->name))
                        continue;
                sq_pool_stats(rt->impl, &st);
                sum->workers += st.workers;
                sum->busy += st.busy;
                sum->waiting += st.waiting;
                sum->spawned += st.spawned;
                sum->crashed += st.crashed;
                sum->hung += st.hung;
                sum->recycled += st.recycled;
                sum->evicted += st.evicted;
                sum->timed_out += st.timed_out;
                sum->retried += st.retried;
        }
}

static int exec_running_sum(sq_runtimes_t *rts, const sq_runtime_t *current) {
        const sq_runtime_t *rt;
        int n = 0;
        for (rt = rts->list; rt; rt = rt->next)
                if (rt->kind == SQ_AGENT_EXEC &&
                    !strcmp(rt->name, current->name))
                        n += sq_exec_running(rt->impl);
        return n;
}

static void collect_runtime(void *opaque, sq_metrics_t *metrics, void *out) {
        const rt_collector_t *col = opaque;
        sq_runtimes_t *rts        = col->daemon->executors.runtimes;
        char name[256], labels[400];
        sq_runtime_t *rt;
        (void)metrics;

        pthread_mutex_lock(&rts->lock);
        for (rt = rts->list; rt; rt = rt->next) {
                sq_pool_stats_t st;

                if (atomic_load(&rt->retired))
                        continue; /* counted with its agent's current one */
                sq_metrics_escape_label(name, sizeof(name), rt->name);
                snprintf(labels, sizeof(labels), "agent=\"%s\"", name);
                if (rt->kind == SQ_AGENT_EXEC && col->what == RT_EXEC_RUNNING)
                        sq_metrics_emit(out, "swarmq_exec_running", labels,
                                        exec_running_sum(rts, rt));
                if (rt->kind != SQ_AGENT_POOL)
                        continue;
                pool_stats_sum(rts, rt, &st);
                switch (col->what) {
                case RT_WORKERS:
                        sq_metrics_emit(out, "swarmq_pool_workers", labels,
                                        st.workers);
                        break;
                case RT_BUSY:
                        sq_metrics_emit(out, "swarmq_pool_busy_workers", labels,
                                        st.busy);
                        break;
                case RT_WAITING:
                        sq_metrics_emit(out, "swarmq_pool_waiting_tasks",
                                        labels, st.waiting);
                        break;
                case RT_STARTED:
                        sq_metrics_emit(out,
                                        "swarmq_pool_workers_started_total",
                                        labels, (double)st.spawned);
                        break;
                case RT_RETRIES:
                        sq_metrics_emit(out, "swarmq_pool_task_retries_total",
                                        labels, (double)st.retried);
                        break;
                case RT_EXITS: {
                        const struct {
                                const char *reason;
                                long value;
                        } exits[] = {
                            {"crashed", st.crashed},
                            {"hung", st.hung},
                            {"recycled", st.recycled},
                            {"evicted", st.evicted},
                            {"timed_out", st.timed_out},
                        };
                        size_t e;
                        for (e = 0; e < SQ_ARRAY_SIZE(exits); e++) {
                                snprintf(labels, sizeof(labels),
                                         "agent=\"%s\",reason=\"%s\"", name,
                                         exits[e].reason);
                                sq_metrics_emit(
                                    out, "swarmq_pool_worker_exits_total",
                                    labels, (double)exits[e].value);
                        }
                        break;
                }
                case RT_EXEC_RUNNING:
                        break;
                }
        }
        pthread_mutex_unlock(&rts->lock);
}

static void register_runtime_metrics(sq_daemon_t *daemon) {
        static const struct {
                const char *name;
                const char *help;
                sq_metric_type_t type;
        } families[] = {
            [RT_WORKERS]      = {"swarmq_pool_workers",
                                 "Worker processes alive, by pool agent",
                                 SQ_METRIC_GAUGE},
            [RT_BUSY]         = {"swarmq_pool_busy_workers",
                                 "Workers running a task, by pool agent",
                                 SQ_METRIC_GAUGE},
            [RT_WAITING]      = {"swarmq_pool_waiting_tasks",
                                 "Tasks waiting for a free worker, by pool agent",
                                 SQ_METRIC_GAUGE},
            [RT_STARTED]      = {"swarmq_pool_workers_started_total",
                                 "Worker processes started, by pool agent",
                                 SQ_METRIC_COUNTER},
            [RT_EXITS]        = {"swarmq_pool_worker_exits_total",
                                 "Workers taken out of service, by pool agent and "
                                        "reason (crashed, hung, recycled, evicted, "
                                        "timed_out)",
                                 SQ_METRIC_COUNTER},
            [RT_RETRIES]      = {"swarmq_pool_task_retries_total",
                                 "Tasks run again after their worker died, by "
                                      "pool agent",
                                 SQ_METRIC_COUNTER},
            [RT_EXEC_RUNNING] = {"swarmq_exec_running",
                                 "Child processes running, by exec agent",
                                 SQ_METRIC_GAUGE},
        };
        sq_runtimes_t *rts = daemon->executors.runtimes;
        size_t i;

        rts->collectors =
            sq_calloc(SQ_ARRAY_SIZE(families), sizeof(*rts->collectors));
        for (i = 0; i < SQ_ARRAY_SIZE(families); i++) {
                rt_collector_t *col = &rts->collectors[i];
                col->daemon         = daemon;
                col->what           = (rt_metric_t)i;
                sq_metrics_collector(daemon->metrics, families[i].name,
                                     families[i].help, families[i].type,
                                     collect_runtime, col);
        }
}

sq_err_t sq_runtimes_start(sq_daemon_t *daemon, char *errstr,
                           size_t errstr_size) {
        sq_runtimes_t *rts = daemon->executors.runtimes;
        sq_runtime_t *rt;
        sq_err_t err;
        int perr;

        if (!rts)
                return SQ_OK;
        if ((err = sq_ioloop_start(daemon->executors.ioloop, errstr,
                                   errstr_size)))
                return err;
        if (daemon->metrics && !rts->collectors)
                register_runtime_metrics(daemon);
        if ((perr =
                 pthread_create(&rts->drainer, NULL, drainer_main, daemon))) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot start the runtime drainer thread: %s",
                              strerror(perr));
                return SQ_ERR_IO;
        }
        pthread_mutex_lock(&rts->lock);
        rts->drainer_running = true;
        rts->started         = true;
        for (rt = rts->list; rt; rt = rt->next)
                if (rt->kind == SQ_AGENT_POOL)
                        sq_pool_start(rt->impl);
        pthread_mutex_unlock(&rts->lock);
        return SQ_OK;
}

void sq_runtimes_cancel(sq_daemon_t *daemon, const char *task_id) {
        sq_runtimes_t *rts = daemon->executors.runtimes;
        sq_runtime_t *rt;

        if (!rts)
                return;
        pthread_mutex_lock(&rts->lock);
        for (rt = rts->list; rt; rt = rt->next) {
                if (rt->shut)
                        continue;
                if (rt->kind == SQ_AGENT_EXEC)
                        sq_exec_cancel(rt->impl, task_id);
                else
                        sq_pool_cancel(rt->impl, task_id);
        }
        pthread_mutex_unlock(&rts->lock);
}

void sq_runtimes_shutdown(sq_daemon_t *daemon) {
        sq_runtimes_t *rts = daemon->executors.runtimes;
        sq_runtime_t *rt;

        /* No cancellation is posted to a runtime after this. */
        sq_control_stop(daemon);
        if (!rts)
                return;
        pthread_mutex_lock(&rts->lock);
        rts->stopping = true;
        pthread_cond_signal(&rts->cond);
        pthread_mutex_unlock(&rts->lock);
        if (rts->drainer_running) {
                pthread_join(rts->drainer, NULL);
                rts->drainer_running = false;
        }
        /* Only this thread is left to shut runtimes down. */
        for (rt = rts->list; rt; rt = rt->next) {
                pthread_mutex_lock(&rts->lock);
                bool shut = rt->shut;
                rt->shut  = true;
                pthread_mutex_unlock(&rts->lock);
                if (!shut)
                        runtime_shutdown(rt);
        }
        sq_ioloop_stop(daemon->executors.ioloop);
}

void sq_runtimes_destroy(sq_daemon_t *daemon) {
        sq_runtimes_t *rts = daemon->executors.runtimes;
        sq_runtime_t *rt, *next;

        if (rts) {
                sq_runtimes_shutdown(daemon);
                for (rt = rts->list; rt; rt = next) {
                        next = rt->next;
                        if (rt->kind == SQ_AGENT_EXEC)
                                sq_exec_destroy(rt->impl);
                        else
                                sq_pool_destroy(rt->impl);
                        sq_free(rt->name);
                        sq_free(rt->fingerprint);
                        sq_free(rt);
                }
                rts->list = NULL;
                /* The collectors stay until the metrics registry is
                 * gone (sq_runtimes_free_collectors()); they no longer
                 * render anything. */
        }
        sq_ioloop_destroy(daemon->executors.ioloop);
        daemon->executors.ioloop = NULL;
        sq_codec_destroy(daemon->executors.io_codec);
        daemon->executors.io_codec = NULL;
}

void sq_runtimes_free_collectors(sq_daemon_t *daemon) {
        sq_runtimes_t *rts = daemon->executors.runtimes;

        if (!rts)
                return;
        sq_free(rts->collectors);
        pthread_mutex_destroy(&rts->lock);
        pthread_cond_destroy(&rts->cond);
        sq_free(rts);
        daemon->executors.runtimes = NULL;
}
