/* SPDX-License-Identifier: Apache-2.0 */
/*
 * executor.c: the executor threads: pop a job from the scheduler, pick an
 * agent, run the task, produce its result and its lifecycle events.
 *
 * DESIGN
 *   Each executor owns a codec (codecs are not thread-safe). A job is
 *   selected on the current agent registry, of which the executor holds a
 *   reference until the job and any job handed over to it are done (a
 *   reload meanwhile leaves them on the old registry's agents). A job
 *   whose agents are all busy is parked on an agent (agents.c) and this
 *   thread moves on; the executor that next frees a slot on that agent,
 *   or on another agent able to run it (work stealing), takes the parked
 *   job over (sq_sched_claim) so no thread ever blocks on a busy agent.
 *   Jobs the registry hands back (breaker opened, reload) are pushed to
 *   the scheduler again. Every finished run reports its outcome and run
 *   time to the registry (EWMAs, circuit breaker). Before running, a job is
 * dropped if its partition was given up (the new owner will run it) or the
 * instance passed its drain deadline. After the result and terminal event are
 * produced the job belongs to the delivery reports (emit.c): this thread must
 * not touch it again.
 *
 *   exec and pool agents run out of process: the executor produces
 *   `started`, submits the task to the agent's runtime (exec.c, pool.c)
 *   and returns to the scheduler without waiting. The runtime calls
 *   async_done() on the I/O loop thread, which finishes the job with the
 *   loop's own codec (finish_job() is the one finish path for both
 *   threads) and then releases the agent's slot or hands it to the next
 *   parked job, which it starts there. A job of an instance stopping past
 *   its deadline is dropped, not failed. Each exec or pool agent is bound
 *   to its runtime (runtimes.c); the run enters it before submitting and
 *   leaves it in async_done(), holding a reference to its registry until
 *   then. A job whose runtime a reload drained meanwhile goes back to the
 *   scheduler.
 */
#include "event_types.h"
#include "daemon_int.h"
#include "registry_int.h"
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The event of a job that ends here: only a success or a cancellation
 * does (a failure goes to sq_emit_failure(): a retry or a dead letter). */
static const char *terminal_event_type(sq_status_t status) {
        return status == SQ_STATUS_CANCELLED ? SQ_EVENT_CANCELLED
                                             : SQ_EVENT_SUCCEEDED;
}

/* Returns why the job must not run, or NULL. */
static const char *drop_reason(sq_daemon_t *daemon, const sq_job_t *job) {
        if (atomic_load(&daemon->cancel))
                return "instance stopping past its drain deadline";
        /* A partition being revoked still gets its queued jobs run: the
         * revocation waits for them (up to the drain deadline) so the
         * new owner starts after them instead of running them again. Only
         * jobs left when the partition is finally given up are dropped. */
        if (atomic_load(&job->part->gen) != job->part_gen)
                return "partition revoked";
        return NULL;
}

/* Counts the task, then produces its result and terminal event; after
 * this the job belongs to the delivery reports. Executor threads and the
 * I/O loop thread (each with its own codec). */
static void finish_job(sq_daemon_t *daemon, sq_codec_t *codec, sq_job_t *job,
                       sq_agent_t *agent, sq_status_t status, const char *error,
                       unsigned char *output, size_t output_len,
                       int64_t started_ms, bool no_agent) {
        const sq_task_t *task = job->task;
        sq_dl_reason_t why    = status == SQ_STATUS_TIMED_OUT ? SQ_DL_TIMED_OUT
                                : no_agent                    ? SQ_DL_NO_AGENT
                                                              : SQ_DL_FAILED;
        bool retryable        = true;
        char too_large[256], spawn_err[600];
        sq_workflow_t *spawn = NULL;
        char *kept           = NULL;
        size_t kept_len      = 0;
        sq_result_t result;

        memset(&result, 0, sizeof(result));
        /* Borrowed pointers: the struct is only encoded, never freed. */
        sq_emit_result_of_job(daemon, job, &result);
        result.status     = status;
        result.output     = output;
        result.output_len = output_len;
        result.error      = (char *)error;
        result.agent      = agent ? (char *)sq_agent_name(agent) : NULL;
        /* The first attempt's start (result.avsc): from the retry
         * record when this is a later attempt, else this one's. */
        if (!result.started_at)
                result.started_at = started_ms;
        /* One wall-clock read: the result's and the terminal event's. */
        result.finished_at = sq_wallclock_ms();

        /* Children from the output (agent.<name>.spawn): a workflow of
         * their own, declared with this result; the result keeps the
         * output's "output". A bad declaration fails the task for good
         * (running it again gives the same output). */
        if (status == SQ_STATUS_SUCCEEDED && agent && sq_agent_spawns(agent)) {
                char why_spawn[512];
                if (sq_workflow_spawn(task, output, output_len, &spawn, &kept,
                                      &kept_len, why_spawn,
                                      sizeof(why_spawn)) != SQ_OK) {
                        snprintf(spawn_err, sizeof(spawn_err), "%s", why_spawn);
                } else if (spawn && !daemon->conf->workflows_enable) {
                        snprintf(spawn_err, sizeof(spawn_err),
                                 "spawn: the output spawns workflow %s, but "
                                 "workflows.enable=false on instance %s",
                                 sq_workflow_id(spawn),
                                 daemon->conf->instance_id);
                        sq_workflow_destroy(spawn);
                        spawn = NULL;
                        sq_free(kept);
                        kept = NULL;
                } else {
                        spawn_err[0] = '\0';
                        if (spawn) {
                                output            = (unsigned char *)kept;
                                output_len        = kept_len;
                                result.output     = output;
                                result.output_len = output_len;
                        }
                }
                if (!spawn && spawn_err[0]) {
                        status            = SQ_STATUS_FAILED;
                        result.status     = status;
                        result.output     = NULL;
                        result.output_len = 0;
                        result.error      = spawn_err;
                        why               = SQ_DL_FAILED;
                        retryable         = false;
                }
        }

        /* An output the result record cannot hold (the producer would
         * refuse it): the task fails with why, without its output, and is
         * dead-lettered at once (running it again gives the same output).
         * Encoded twice only when the output is near the limit. */
        if (output_len + 2 * SQ_EMIT_RECORD_OVERHEAD >
            (size_t)daemon->max_record_bytes) {
                size_t size = sq_emit_result_size(daemon, codec, &result);
                if (!size || size > (size_t)daemon->max_record_bytes) {
                        snprintf(too_large, sizeof(too_large),
                                 "output of %zu bytes does not fit in a "
                                 "result record (kafka.message.max.bytes="
                                 "%lld); output dropped",
                                 output_len,
                                 (long long)daemon->max_record_bytes);
                        status            = SQ_STATUS_FAILED;
                        result.status     = status;
                        result.output     = NULL;
                        result.output_len = 0;
                        result.error      = too_large;
                        why               = SQ_DL_OUTPUT_TOO_LARGE;
                        retryable         = false;
                }
        }
        /* A task's last attempt counts as DEAD_LETTERED when it is
         * dead-lettered (the status of its result), any other attempt by
         * its own status: one count per attempt. Counted before anything
         * is produced, so a reader that saw the result sees the count. */
        {
                sq_status_t counted = status;
                if (status != SQ_STATUS_SUCCEEDED &&
                    status != SQ_STATUS_CANCELLED &&
                    sq_emit_dead_letters(daemon, job, retryable))
                        counted = SQ_STATUS_DEAD_LETTERED;
                sq_metric_add(
                    agent ? sq_agent_metrics(agent)
                                ->tasks[counted][task->priority]
                          : daemon->m.tasks_none[counted][task->priority],
                    1);
                /* The flags' variants (A/B): nothing unless a rollout is
                 * partial. */
                sq_variants_observe(
                    daemon, task, counted,
                    started_ms ? (double)(result.finished_at - started_ms) / 1e3
                               : -1);
        }
        if (status != SQ_STATUS_SUCCEEDED && status != SQ_STATUS_CANCELLED) {
                /* Retried while attempts are left, else dead-lettered
                 * (emit.c); the job belongs to the delivery reports. A
                 * cancelled task ends here, like a success: its result
                 * and event, no retry. */
                sq_emit_failure(daemon, codec, job, &result, why, retryable);
                sq_free(kept);
                return;
        }
        atomic_store(&job->pending_acks, 1 + sq_emit_event_acks(daemon));
        job->succeeded = status == SQ_STATUS_SUCCEEDED;
        /* The result and its event in one transaction (exactly_once),
         * with the declaration of the children it spawned. */
        sq_emit_txn_hold(daemon);
        if (spawn) {
                sq_emit_spawn(daemon, codec, job, spawn);
                sq_workflow_destroy(spawn);
        }
        if (!sq_emit_event_acks(daemon)) {
                /* events.publish=none: the result is the job's only
                 * record, after which it may be freed; the event (for
                 * GET /events only) and the hand-off come first. */
                sq_job_finished(daemon, job);
                sq_emit_event_at(daemon, codec, terminal_event_type(status),
                                 task, result.agent, error, job,
                                 result.finished_at);
                sq_emit_result(daemon, codec, job, &result);
                sq_emit_txn_release(daemon);
                sq_free(kept);
                return;
        }
        sq_emit_result(daemon, codec, job, &result);
        /* Its event is still to produce, so the job is alive: the next
         * task of its key may start (ordering.handoff=finished). */
        sq_job_finished(daemon, job);
        sq_emit_event_at(daemon, codec, terminal_event_type(status), task,
                         result.agent, error, job, result.finished_at);
        sq_emit_txn_release(daemon);
        sq_free(kept);
        /* The job may be freed by now (poll thread): do not touch it. */
}

/* An out-of-process run (exec or pool agent) between submit and done. */
typedef struct async_run_s {
        sq_daemon_t *daemon;
        sq_agents_t *agents; /* a reference, released in async_done() */
        sq_runtime_t *rt;    /* entered, left in async_done() */
        sq_job_t *job;
        sq_slot_t slot;
        int64_t started_ms;
        int64_t t0_us;
} async_run_t;

static bool run_on_agent(sq_daemon_t *daemon, sq_codec_t *codec,
                         sq_agents_t *agents, sq_job_t *job,
                         const sq_slot_t *slot, int64_t now_us,
                         sq_agent_outcome_t *outcomep, int64_t *latency_usp);

/* Registry callback: may this parked job move to another agent? */
static bool may_steal(void *opaque, void *job) {
        sq_daemon_t *daemon = opaque;
        return sq_flags_enabled(&daemon->flags, SQ_FLAG_WORK_STEALING,
                                ((sq_job_t *)job)->task->id);
}

static sq_agent_outcome_t outcome_of(sq_status_t status) {
        /* A cancelled task says nothing of its agent's health. */
        return status == SQ_STATUS_SUCCEEDED   ? SQ_AGENT_OUTCOME_SUCCESS
               : status == SQ_STATUS_CANCELLED ? SQ_AGENT_OUTCOME_NONE
                                               : SQ_AGENT_OUTCOME_FAILURE;
}

/* Releases @p slot with an outcome and runs every job the registry hands
 * the slot to, until one goes out of process or none is left. */
static void release_chain(sq_daemon_t *daemon, sq_codec_t *codec,
                          sq_agents_t *agents, sq_slot_t *slot,
                          sq_agent_outcome_t outcome, int64_t latency_us,
                          bool claim) {
        sq_agents_out_t out = {0};
        sq_job_t *next;

        for (;;) {
                sq_priority_t prio;
                bool done;
                next = sq_agents_release(agents, slot, outcome, latency_us,
                                         may_steal, daemon, &out);
                sq_daemon_agents_out(daemon, codec, &out);
                if (!next)
                        return;
                /* The agent's slot passed to a parked job: run it here. */
                prio = next->item.priority;
                if (claim)
                        sq_sched_claim(daemon->sched, prio);
                done = run_on_agent(daemon, codec, agents, next, slot,
                                    sq_clock_us(), &outcome, &latency_us);
                if (claim)
                        sq_sched_done(daemon->sched, prio);
                if (!done)
                        return; /* out of process: its completion goes on */
        }
}

/* I/O loop thread: an exec or pool task ended. Finishes the job, then
 * frees the agent's slot or hands it to the next parked job. */
static void async_done(void *opaque, sq_outcome_t *outcome) {
        async_run_t *run       = opaque;
        sq_daemon_t *daemon    = run->daemon;
        sq_agents_t *agents    = run->agents;
        sq_slot_t slot         = run->slot;
        sq_agent_outcome_t res = SQ_AGENT_OUTCOME_NONE;
        int64_t latency_us     = sq_clock_us() - run->t0_us;

        sq_metric_observe(sq_agent_metrics(slot.agent)->duration,
                          (double)latency_us / 1e6);
        if (outcome->cancelled || atomic_load(&daemon->cancel)) {
                /* Cut short by shutdown: not a task failure. The
                 * partition's next owner runs it again. */
                sq_job_drop(daemon, run->job, "instance stopping");
        } else {
                finish_job(daemon, daemon->executors.io_codec, run->job,
                           slot.agent, outcome->status, outcome->error,
                           outcome->output, outcome->output_len,
                           run->started_ms, false);
                res = outcome_of(outcome->status);
        }
        sq_free(outcome->output);
        sq_free(outcome->error);
        sq_runtime_leave(daemon, run->rt);
        sq_free(run);

        /* Parked jobs of this agent run from here: an exec or pool job
         * only starts a child or writes a frame, so the loop never
         * blocks on it, and its own completion continues the chain (a
         * slot is only ever handed over on the same agent, so the jobs
         * run here are exec or pool jobs too, stolen ones included). */
        release_chain(daemon, daemon->executors.io_codec, agents, &slot, res,
                      latency_us, false);
        sq_agents_release_ref(agents);
}

/* Runs one job on an agent whose slot it holds, @p now_us being the
 * monotonic clock the caller just read (one clock read per stage: this
 * one starts the run, its deadline and its scheduling latency). Returns
 * true when the job is done with the slot (ran here, or was dropped), with
 * the outcome and run time for the registry; false when it went to an
 * exec or pool agent, whose completion releases the slot. */
static bool run_on_agent(sq_daemon_t *daemon, sq_codec_t *codec,
                         sq_agents_t *agents, sq_job_t *job,
                         const sq_slot_t *slot, int64_t now_us,
                         sq_agent_outcome_t *outcomep, int64_t *latency_usp) {
        sq_agent_t *agent     = slot->agent;
        const sq_task_t *task = job->task;
        const char *why       = drop_reason(daemon, job);
        int64_t timeout_ms, started_ms, t0, deadline_us, end_us;
        const char *by;
        char cancelled[64];
        sq_runtime_t *rt = NULL;
        sq_status_t status;
        async_run_t *arun;
        sq_run_t run;

        *outcomep    = SQ_AGENT_OUTCOME_NONE;
        *latency_usp = 0;
        if (why) {
                sq_job_drop(daemon, job, why);
                return true;
        }
        if ((by = sq_control_cancelled(daemon, task))) {
                /* Cancelled while it waited for an executor or a slot. */
                snprintf(cancelled, sizeof(cancelled),
                         "cancelled %s before it started", by);
                sq_emit_cancelled(daemon, codec, job, cancelled);
                return true;
        }
        if (sq_agent_kind(agent) != SQ_AGENT_BUILTIN &&
            !(rt = sq_runtime_enter(agent))) {
                /* Selected on a registry a reload replaced, whose runtime
                 * for this agent has drained and stopped since: selected
                 * again on the current one. */
                sq_sched_push(daemon->sched, &job->item);
                return true;
        }
        started_ms = sq_wallclock_ms();
        t0         = now_us;
        sq_metric_observe(daemon->m.sched_latency[task->priority],
                          (double)(t0 - job->received_us) / 1e6);
        sq_emit_event_at(daemon, codec, SQ_EVENT_STARTED, task,
                         sq_agent_name(agent), NULL, NULL, started_ms);
        timeout_ms  = task->timeout_ms > 0 ? task->timeout_ms
                                           : daemon->conf->default_timeout_ms;
        deadline_us = timeout_ms > 0 ? t0 + timeout_ms * 1000 : 0;

        if (rt) {
                arun             = sq_malloc(sizeof(*arun));
                arun->daemon     = daemon;
                arun->agents     = sq_agents_keep(agents);
                arun->rt         = rt;
                arun->job        = job;
                arun->slot       = *slot;
                arun->started_ms = started_ms;
                arun->t0_us      = t0;
                sq_runtime_submit(rt, task, deadline_us, async_done, arun);
                return false;
        }

        memset(&run, 0, sizeof(run));
        run.task        = task;
        run.cancel      = &daemon->cancel;
        run.cancels     = daemon->control.cancels;
        run.deadline_us = deadline_us;
        status          = sq_agent_run(agent, &run);
        end_us          = sq_clock_us();
        *latency_usp    = end_us - t0;
        sq_metric_observe(sq_agent_metrics(agent)->duration,
                          (double)*latency_usp / 1e6);

        if (atomic_load(&daemon->cancel)) {
                /* Cut short by shutdown: not a task failure. Abandon it so
                 * the partition's next owner runs it again. */
                sq_free(run.output);
                sq_job_drop(daemon, job, "instance stopping");
                return true;
        }
        if (run.deadline_us && status != SQ_STATUS_TIMED_OUT &&
            status != SQ_STATUS_CANCELLED && end_us > run.deadline_us) {
                /* A handler that does not watch the deadline (or returned
                 * just past it): the task still timed out. */
                snprintf(run.error, sizeof(run.error),
                         "timed out: ran %lld ms, timeout_ms %lld",
                         (long long)((end_us - t0) / 1000),
                         (long long)timeout_ms);
                sq_free(run.output);
                run.output     = NULL;
                run.output_len = 0;
                status         = SQ_STATUS_TIMED_OUT;
        }
        finish_job(daemon, codec, job, agent, status,
                   status == SQ_STATUS_SUCCEEDED ? NULL : run.error, run.output,
                   run.output_len, started_ms, false);
        sq_free(run.output);
        *outcomep = outcome_of(status);
        return true;
}

static void run_job(sq_executor_t *exec, sq_job_t *job) {
        sq_daemon_t *daemon   = exec->daemon;
        sq_agents_t *agents   = NULL;
        const sq_task_t *task = job->task;
        sq_agent_outcome_t outcome;
        int64_t latency_us;
        sq_acquire_t acq;
        sq_select_t sel;
        sq_slot_t slot;
        const char *why, *by;
        char errstr[512], cancelled[64];
        int64_t t0, t1;

        if ((why = drop_reason(daemon, job))) {
                sq_job_drop(daemon, job, why);
                return;
        }
        if ((by = sq_control_cancelled(daemon, task))) {
                /* Before selection: no slot taken, no agent needed. */
                snprintf(cancelled, sizeof(cancelled),
                         "cancelled %s before it started", by);
                sq_emit_cancelled(daemon, exec->codec, job, cancelled);
                return;
        }
        /* Over a rate limit: held (no executor, no slot) until its token
         * is due, then back in the scheduler. */
        if (daemon->ratelimits.cnt && sq_ratelimits_hold(daemon, job))
                return;
        memset(&sel, 0, sizeof(sel));
        sel.key    = task->key;
        sel.ranked = sq_flags_enabled(&daemon->flags, SQ_FLAG_RANKED_SELECTION,
                                      task->id);
        sel.critical = job->item.priority == SQ_PRIO_CRITICAL;
        t0           = sq_clock_us();
        do {
                sq_agents_release_ref(agents);
                agents = sq_daemon_agents(daemon);
                if (sq_agents_requirement(agents, task, &sel.req, errstr,
                                          sizeof(errstr)) != SQ_OK) {
                        acq = SQ_ACQ_NO_AGENT;
                        break;
                }
                acq = sq_agents_acquire(agents, &sel, job, &slot, errstr,
                                        sizeof(errstr));
        } while (acq == SQ_ACQ_STALE);
        t1 = sq_clock_us(); /* the selection's end, the run's start */
        sq_metric_observe(daemon->m.selection, (double)(t1 - t0) / 1e6);
        if (acq == SQ_ACQ_NO_AGENT || acq == SQ_ACQ_NO_HEALTHY) {
                finish_job(daemon, exec->codec, job, NULL, SQ_STATUS_FAILED,
                           errstr, NULL, 0, 0, acq == SQ_ACQ_NO_AGENT);
                goto done;
        }
        if (acq == SQ_ACQ_PARKED)
                goto done; /* a releasing executor takes it over */

        if (run_on_agent(daemon, exec->codec, agents, job, &slot, t1, &outcome,
                         &latency_us))
                release_chain(daemon, exec->codec, agents, &slot, outcome,
                              latency_us, true);
done:
        sq_agents_release_ref(agents);
}

static void *executor_main(void *arg) {
        sq_executor_t *exec = arg;
        sq_daemon_t *daemon = exec->daemon;
        sq_sched_item_t *item;
        int done = -1; /* the priority of the job just run */

        /* The slot of the job just run is freed as the next is taken,
         * under one lock. */
        while ((item = sq_sched_next(daemon->sched, done))) {
                done = (int)item->priority;
                run_job(exec, (sq_job_t *)item);
                /* A liveness stamp (/healthz): the coarse clock will do. */
                atomic_store(&daemon->executors.progress_us,
                             sq_clock_coarse_us());
        }
        return NULL;
}

sq_err_t sq_executors_start(sq_daemon_t *daemon, char *errstr,
                            size_t errstr_size) {
        int i;

        daemon->executors.cnt = daemon->conf->executor_threads;
        daemon->executors.threads =
            sq_calloc((size_t)daemon->executors.cnt, sizeof(sq_executor_t));
        for (i = 0; i < daemon->executors.cnt; i++) {
                sq_executor_t *exec = &daemon->executors.threads[i];
                exec->daemon        = daemon;
                exec->idx           = i;
                exec->codec         = sq_codec_new(errstr, errstr_size);
                if (!exec->codec)
                        return SQ_ERR_ENCODE;
                sq_schemas_use(daemon, exec->codec);
        }
        for (i = 0; i < daemon->executors.cnt; i++) {
                sq_executor_t *exec = &daemon->executors.threads[i];
                int err =
                    pthread_create(&exec->thread, NULL, executor_main, exec);
                if (err) {
                        sq_errstr_set(errstr, errstr_size,
                                      "cannot start executor thread %d: %s", i,
                                      strerror(err));
                        daemon->executors.cnt = i;
                        return SQ_ERR_IO;
                }
        }
        return SQ_OK;
}

void sq_executors_join(sq_daemon_t *daemon) {
        int i;
        for (i = 0; i < daemon->executors.cnt; i++)
                pthread_join(daemon->executors.threads[i].thread, NULL);
        for (i = 0;
             i < daemon->conf->executor_threads && daemon->executors.threads;
             i++)
                sq_codec_destroy(daemon->executors.threads[i].codec);
        sq_free(daemon->executors.threads);
        daemon->executors.threads = NULL;
        daemon->executors.cnt     = 0;
}
