/* SPDX-License-Identifier: Apache-2.0 */
/*
 * executor.c: the executor threads: pop a job from the scheduler, pick an
 * agent, run the task, produce its result and its lifecycle events.
 *
 * DESIGN
 *   Each executor owns a codec (codecs are not thread-safe). A job whose
 *   agents are all busy is parked on an agent (agents.c) and this thread
 *   moves on; the executor that next frees a slot on that agent takes the
 *   parked job over (sq_sched_claim) so no thread ever blocks on a busy
 *   agent. Before running, a job is dropped if its partition was given up
 *   (the new owner will run it) or the instance passed its drain deadline.
 * After the result and terminal event are produced the job belongs to the
 * delivery reports (emit.c): this thread must not touch it again.
 */
#include "daemon_int.h"
#include "log.h"

#include <string.h>

static const char *terminal_event_type(sq_status_t status) {
        switch (status) {
        case SQ_STATUS_SUCCEEDED:
                return "succeeded";
        case SQ_STATUS_FAILED:
                return "failed";
        case SQ_STATUS_TIMED_OUT:
                return "timed_out";
        case SQ_STATUS_DEAD_LETTERED:
                return "dead_lettered";
        }
        return "failed";
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
 * this the job belongs to the delivery reports. */
static void finish_job(sq_executor_t *exec, sq_job_t *job, sq_agent_t *agent,
                       sq_status_t status, const char *error,
                       unsigned char *output, size_t output_len,
                       int64_t started_ms) {
        sq_daemon_t *daemon   = exec->daemon;
        const sq_task_t *task = job->task;
        int agent_slot        = agent ? sq_agent_index(agent) + 1 : 0;
        sq_result_t result;

        sq_metric_add(daemon->m.tasks[(agent_slot * SQ_STATUS_CNT + status) *
                                          SQ_PRIO_CNT +
                                      task->priority],
                      1);
        memset(&result, 0, sizeof(result));
        /* Borrowed pointers: the struct is only encoded, never freed. */
        result.task_id          = task->id;
        result.status           = status;
        result.output           = output;
        result.output_len       = output_len;
        result.error            = (char *)error;
        result.agent            = agent ? (char *)sq_agent_name(agent) : NULL;
        result.instance         = daemon->conf->instance_id;
        result.attempts         = task->attempt;
        result.source.topic     = (char *)job->part->topic;
        result.source.partition = job->part->partition;
        result.source.offset    = job->offset;
        result.created_at       = task->created_at;
        result.started_at       = started_ms;
        result.finished_at      = sq_wallclock_ms();

        atomic_store(&job->pending_acks, 2);
        job->succeeded = status == SQ_STATUS_SUCCEEDED;
        sq_emit_result(daemon, exec->codec, job, &result);
        sq_emit_event(daemon, exec->codec, terminal_event_type(status), task,
                      result.agent, error, job);
        /* The job may be freed by now (poll thread): do not touch it. */
}

/* Runs one job on an agent whose slot it holds. */
static void execute(sq_executor_t *exec, sq_job_t *job, sq_agent_t *agent) {
        sq_daemon_t *daemon   = exec->daemon;
        const sq_task_t *task = job->task;
        const char *why       = drop_reason(daemon, job);
        int64_t timeout_ms, started_ms, t0;
        sq_status_t status;
        sq_run_t run;

        if (why) {
                sq_job_drop(daemon, job, why);
                return;
        }
        started_ms = sq_wallclock_ms();
        sq_metric_observe(daemon->m.sched_latency[task->priority],
                          (double)(sq_clock_us() - job->received_us) / 1e6);
        sq_emit_event(daemon, exec->codec, "started", task,
                      sq_agent_name(agent), NULL, NULL);

        memset(&run, 0, sizeof(run));
        run.task        = task;
        run.cancel      = &daemon->cancel;
        timeout_ms      = task->timeout_ms > 0 ? task->timeout_ms
                                               : daemon->conf->default_timeout_ms;
        t0              = sq_clock_us();
        run.deadline_us = timeout_ms > 0 ? t0 + timeout_ms * 1000 : 0;
        status          = sq_agent_run(agent, &run);
        sq_metric_observe(daemon->m.duration[sq_agent_index(agent)],
                          (double)(sq_clock_us() - t0) / 1e6);

        if (atomic_load(&daemon->cancel)) {
                /* Cut short by shutdown: not a task failure. Abandon it so
                 * the partition's next owner runs it again. */
                sq_free(run.output);
                sq_job_drop(daemon, job, "instance stopping");
                return;
        }
        finish_job(exec, job, agent, status,
                   status == SQ_STATUS_SUCCEEDED ? NULL : run.error, run.output,
                   run.output_len, started_ms);
        sq_free(run.output);
}

static void run_job(sq_executor_t *exec, sq_job_t *job) {
        sq_daemon_t *daemon        = exec->daemon;
        sq_priority_t claimed_prio = SQ_PRIO_NORMAL;
        bool claimed               = false;
        sq_agent_t *agent;
        const char *why;
        int64_t t0;

        if ((why = drop_reason(daemon, job))) {
                sq_job_drop(daemon, job, why);
                return;
        }
        if (!job->candidates) {
                finish_job(exec, job, NULL, SQ_STATUS_FAILED,
                           job->no_agent_reason, NULL, 0, 0);
                return;
        }
        t0    = sq_clock_us();
        agent = sq_agents_acquire(daemon->agents, job->candidates, job,
                                  job->item.priority == SQ_PRIO_CRITICAL);
        sq_metric_observe(daemon->m.selection,
                          (double)(sq_clock_us() - t0) / 1e6);
        if (!agent)
                return; /* parked: a releasing executor takes it over */

        for (;;) {
                sq_job_t *next;
                execute(exec, job, agent);
                if (claimed)
                        sq_sched_done(daemon->sched, claimed_prio);
                next = sq_agents_release(daemon->agents, agent);
                if (!next)
                        break;
                /* The agent's slot passed to a parked job: run it here. */
                job          = next;
                claimed_prio = job->item.priority;
                claimed      = true;
                sq_sched_claim(daemon->sched, claimed_prio);
        }
}

static void *executor_main(void *arg) {
        sq_executor_t *exec = arg;
        sq_daemon_t *daemon = exec->daemon;
        sq_sched_item_t *item;

        while ((item = sq_sched_pop(daemon->sched))) {
                sq_priority_t prio = item->priority;
                run_job(exec, (sq_job_t *)item);
                sq_sched_done(daemon->sched, prio);
                atomic_store(&daemon->exec_progress_us, sq_clock_us());
        }
        return NULL;
}

sq_err_t sq_executors_start(sq_daemon_t *daemon, char *errstr,
                            size_t errstr_size) {
        int i;

        daemon->executors_cnt = daemon->conf->executor_threads;
        daemon->executors =
            sq_calloc((size_t)daemon->executors_cnt, sizeof(sq_executor_t));
        for (i = 0; i < daemon->executors_cnt; i++) {
                sq_executor_t *exec = &daemon->executors[i];
                exec->daemon        = daemon;
                exec->idx           = i;
                exec->codec         = sq_codec_new(errstr, errstr_size);
                if (!exec->codec)
                        return SQ_ERR_ENCODE;
        }
        for (i = 0; i < daemon->executors_cnt; i++) {
                sq_executor_t *exec = &daemon->executors[i];
                int err =
                    pthread_create(&exec->thread, NULL, executor_main, exec);
                if (err) {
                        sq_errstr_set(errstr, errstr_size,
                                      "cannot start executor thread %d: %s", i,
                                      strerror(err));
                        daemon->executors_cnt = i;
                        return SQ_ERR_IO;
                }
        }
        return SQ_OK;
}

void sq_executors_join(sq_daemon_t *daemon) {
        int i;
        for (i = 0; i < daemon->executors_cnt; i++)
                pthread_join(daemon->executors[i].thread, NULL);
        for (i = 0; i < daemon->conf->executor_threads && daemon->executors;
             i++)
                sq_codec_destroy(daemon->executors[i].codec);
        sq_free(daemon->executors);
        daemon->executors     = NULL;
        daemon->executors_cnt = 0;
}
