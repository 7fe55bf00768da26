/* SPDX-License-Identifier: Apache-2.0 */
/*
 * workflows.c: running workflows (workflows.enable; docs/workflows.md):
 * the instance Kafka assigns a partition of topic.workflows to owns the
 * workflows whose records are there, rebuilds them from the partition,
 * submits their next tasks as earlier ones end, and writes each one's
 * result when it is over.
 *
 * DESIGN
 *   Owner: every instance with workflows.enable joins the consumer group
 *   <group.id>.workflows on topic.workflows; a workflow lives on the
 *   partition its id hashes to (sq_workflow_partition()), so its owner
 *   is whoever Kafka assigns that partition. A kill -9, a stop or a
 *   rebalance moves the partition, and its workflows with it.
 *
 *   Thread: the workflows thread (qthread.c), started by main, sleeps in
 *   poll(2) on the pipe its consumer's queue signals and on an eventfd
 *   main writes to stop it (with a timeout while a failed step waits to
 *   be tried again, and to refresh the snapshot). It owns the consumer,
 *   the producers, the codec and the set of workflows; the HTTP thread
 *   reads the atomics and the snapshot (under snap_lock).
 *
 *   Taking over (the rebalance callback, on this thread): each assigned
 *   partition is read from its beginning, read_committed (the topic is
 *   compacted: a workflow's declaration, its state and its tasks'
 *   endings, the last of each key) and marked loading; its EOF says its
 *   workflows are all known, and only then are they stepped. Under
 *   exactly_once the partition's transactional producer
 *   (swarmq-workflows-<group.id>-<partition>) is made first: its
 *   init_transactions fences the previous owner and aborts the step it
 *   left open. A revoked partition's workflows are forgotten (at least
 *   once, the producer flushed first, so the next owner reads what this
 *   one wrote; exactly once, every step is committed or aborted).
 *
 *   Stepping a workflow (after its records were read): sq_workflow_step()
 *   says which tasks to submit (those neither started nor ended) and
 *   whether it is over. A step's records are the tasks and the state
 *   record that says they started, or the workflow's result, its final
 *   state and tombstones for its declaration and endings; and the
 *   workflow_started or workflow_ended event.
 *   - exactly_once: one transaction of the partition's producer, with
 *     the consumer's position on the partition: all in Kafka or none.
 *     A step that fails is aborted, and the partition is read again
 *     (its memory was ahead of Kafka), then stepped again.
 *   - at_least_once: the tasks (or the result) are produced and
 *     acknowledged first, then the state: a crash between the two
 *     submits the same task ids again (the consumers' dedup drops a
 *     task that already succeeded; the first ending of a task is the
 *     one that counts) or writes the result twice, never loses it. A
 *     step that cannot be produced is tried again a second later.
 *
 *   The endings themselves are written by whichever instance ran the
 *   task, with its result (emit.c, sq_workflows_ended_record()), tracked
 *   like the result: the task's offset is committed only once its ending
 *   is in Kafka, and under exactly_once it is in the same transaction.
 */
#include "daemon_int.h"
#include "kafka_conf.h"
#include "event_types.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

#define FLUSH_MS      30000 /* a step's records, acknowledged */
#define RETRY_MS      1000  /* a failed step, tried again */
#define STOP_FLUSH_MS 10000 /* flushing on revoke and stop */
#define SNAPSHOT_MS   250   /* /status's list, at most this often */
#define SNAPSHOT_MAX  50    /* running workflows listed in /status */
#define KEY_MAX       (2 * SQ_WORKFLOW_ID_MAX + 600)
#define METADATA_MS   10000
#define INIT_TXN_MS   60000 /* init_transactions' deadline */

void sq_workflows_init(sq_daemon_t *daemon) {
        sq_workflows_inst_t *w = &daemon->workflows;
        int i;

        sq_qthread_init(&w->qt);
        atomic_init(&w->partitions, 0);
        atomic_init(&w->owned, 0);
        atomic_init(&w->running, 0);
        atomic_init(&w->begun, 0);
        atomic_init(&w->submitted, 0);
        for (i = 0; i < SQ_STATUS_CNT; i++)
                atomic_init(&w->ended[i], 0);
}

void sq_workflows_term(sq_daemon_t *daemon) {
        sq_workflows_inst_t *w = &daemon->workflows;
        sq_workflows_destroy(w->set);
        w->set = NULL;
        sq_free(w->part);
        w->part = NULL;
        sq_free(w->txp);
        w->txp = NULL;
        json_decref(w->dirty);
        json_decref(w->unsaved);
        w->dirty = w->unsaved = NULL;
        sq_free(w->snapshot);
        w->snapshot = NULL;
}

char *sq_workflows_declare_record(sq_daemon_t *daemon, const sq_workflow_t *wf,
                                  char *key, size_t key_size,
                                  int32_t *partitionp) {
        int32_t parts = atomic_load(&daemon->workflows.partitions);

        if (!parts || !daemon->rkt_workflows ||
            !sq_workflow_key(sq_workflow_id(wf), "", key, key_size))
                return NULL;
        *partitionp = sq_workflow_partition(sq_workflow_id(wf), parts);
        return sq_workflow_declaration(wf, sq_wallclock_ms());
}

char *sq_workflows_ended_record(sq_daemon_t *daemon, const sq_result_t *result,
                                char *key, size_t key_size,
                                int32_t *partitionp) {
        int32_t parts = atomic_load(&daemon->workflows.partitions);

        if (!result->workflow_id || !parts || !daemon->rkt_workflows ||
            !sq_workflow_key(result->workflow_id, result->task_id, key,
                             key_size))
                return NULL;
        *partitionp = sq_workflow_partition(result->workflow_id, parts);
        return sq_workflow_ended_record(result);
}

char *sq_workflows_ended_refused(sq_daemon_t *daemon, const void *value,
                                 size_t len, const char *why,
                                 int32_t *partitionp) {
        int32_t parts = atomic_load(&daemon->workflows.partitions);
        json_t *obj   = json_loadb(value, len, 0, NULL);
        const char *wf, *task_id;
        sq_result_t result;
        char error[600];
        char *rec = NULL;

        wf      = json_string_value(json_object_get(obj, "workflow"));
        task_id = json_string_value(json_object_get(obj, "ended"));
        if (wf && task_id && parts) {
                memset(&result, 0, sizeof(result));
                snprintf(error, sizeof(error),
                         "its output does not fit in topic.workflows: %s", why);
                result.task_id     = (char *)task_id;
                result.workflow_id = (char *)wf;
                result.status      = SQ_STATUS_FAILED;
                result.error       = error;
                result.instance    = daemon->conf->instance_id;
                result.finished_at = sq_wallclock_ms();
                *partitionp        = sq_workflow_partition(wf, parts);
                rec                = sq_workflow_ended_record(&result);
        }
        json_decref(obj);
        return rec;
}

/* The partition of topic.workflows that holds workflow @p id. */
static int32_t partition_of(sq_daemon_t *daemon, const char *id) {
        return sq_workflow_partition(
            id, atomic_load(&daemon->workflows.partitions));
}

/* Delivery reports of the workflows producers, counted against the one
 * batch this thread has open (w->acks): each record's opaque is its
 * batch's sequence number, so a late report of an earlier batch (one a
 * flush gave up on) counts for nothing. */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque) {
        sq_daemon_t *daemon = opaque;
        sq_wf_acks_t *acks  = &daemon->workflows.acks;
        (void)rk;
        if ((uintptr_t)rkm->_private != acks->seq)
                return;
        acks->pending--;
        if (rkm->err && !acks->err)
                acks->err = rkm->err;
}

/* The records of one step of a workflow (docs/workflows.md, "Exactly
 * once, at least once"). Under exactly_once they are one transaction of
 * the producer of the workflow's partition, with the workflows
 * consumer's position on that partition: all of them are in Kafka, or
 * none. Otherwise they go out through the one idempotent producer, and
 * batch_sync() waits for those produced so far (a step's tasks are in
 * Kafka before the state that says they started). */
typedef struct batch_s {
        rd_kafka_t *rk;
        int32_t partition; /* of topic.workflows: the workflow's */
        bool txn;          /* exactly_once */
} batch_t;

/* exactly_once: the partition's workflows are read again from the
 * topic (at RETRY_MS, or @p delay_ms), in place of what this thread
 * holds of them: the step that failed left the memory ahead of Kafka. */
static void reread(sq_daemon_t *daemon, int32_t p, int delay_ms) {
        sq_workflows_inst_t *w = &daemon->workflows;
        int64_t at             = sq_wallclock_ms() + delay_ms;

        w->part[p] = SQ_WF_PART_REREAD;
        if (!w->retry_at_ms || at < w->retry_at_ms)
                w->retry_at_ms = at;
}

/* A step that did not make it into Kafka. Under exactly_once its
 * transaction is aborted (a producer that cannot abort, fenced or
 * failed for good, is dropped and a new one fences again) and the
 * partition is read again; @p error (taken, may be NULL) says why,
 * else the batch's produce error. */
static void batch_fail(sq_daemon_t *daemon, batch_t *batch,
                       rd_kafka_error_t *error, const char *what,
                       const char *id) {
        sq_workflows_inst_t *w = &daemon->workflows;
        rd_kafka_error_t *aborted;
        bool dead;

        if (!batch->txn) {
                SQ_LOG(SQ_LOG_WARNING, "WORKFLOW",
                       "workflow_id=%s: %s not written: %s; trying again in "
                       "%d ms",
                       id, what,
                       error ? rd_kafka_error_string(error)
                             : rd_kafka_err2str(w->acks.err),
                       RETRY_MS);
                if (error)
                        rd_kafka_error_destroy(error);
                return;
        }
        dead = error && rd_kafka_error_is_fatal(error);
        SQ_LOG(dead ? SQ_LOG_ERR : SQ_LOG_WARNING, "WORKFLOW",
               "workflow_id=%s: %s not written: %s; its transaction %s, "
               "topic=%s partition=%d is read again",
               id, what,
               error ? rd_kafka_error_string(error)
                     : rd_kafka_err2str(w->acks.err),
               dead ? "is dropped with its producer" : "aborted",
               daemon->conf->topic_workflows, (int)batch->partition);
        if (error)
                rd_kafka_error_destroy(error);
        if (!dead &&
            (aborted = rd_kafka_abort_transaction(batch->rk, FLUSH_MS))) {
                SQ_LOG(SQ_LOG_ERR, "WORKFLOW",
                       "topic=%s partition=%d: cannot abort the "
                       "transaction: %s; its producer is dropped",
                       daemon->conf->topic_workflows, (int)batch->partition,
                       rd_kafka_error_string(aborted));
                rd_kafka_error_destroy(aborted);
                dead = true;
        }
        if (dead) {
                /* The next one's init_transactions fences this one and
                 * aborts what it left open. */
                rd_kafka_destroy(w->txp[batch->partition]);
                w->txp[batch->partition] = NULL;
        }
        reread(daemon, batch->partition, dead ? 5 * RETRY_MS : RETRY_MS);
}

/* Opens a step's batch for a workflow of @p partition. */
static bool batch_begin(sq_daemon_t *daemon, batch_t *batch, int32_t partition,
                        const char *id) {
        sq_workflows_inst_t *w = &daemon->workflows;
        rd_kafka_error_t *error;

        w->acks.seq++;
        w->acks.pending  = 0;
        w->acks.err      = RD_KAFKA_RESP_ERR_NO_ERROR;
        batch->partition = partition;
        batch->txn       = daemon->eos;
        batch->rk        = daemon->eos ? w->txp[partition] : w->producer;
        if (!batch->rk)
                return false; /* exactly_once: owned only once fenced */
        if (batch->txn && (error = rd_kafka_begin_transaction(batch->rk))) {
                batch_fail(daemon, batch, error, "a transaction", id);
                return false;
        }
        return true;
}

/* Produces one record of @p batch (value NULL: a tombstone). */
static void batch_add(sq_daemon_t *daemon, batch_t *batch, const char *topic,
                      int32_t partition, const char *key, const void *value,
                      size_t len, int64_t timestamp_ms) {
        sq_workflows_inst_t *w  = &daemon->workflows;
        rd_kafka_resp_err_t err = rd_kafka_producev(
            batch->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_TIMESTAMP(timestamp_ms),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)w->acks.seq), RD_KAFKA_V_END);
        if (err && !w->acks.err)
                w->acks.err = err;
        if (!err)
                w->acks.pending++;
}

/* At least once: waits for the acknowledgements of what the batch
 * produced so far. Exactly once: the transaction's end does. @returns
 * true when none failed (else the caller calls batch_fail()). */
static bool batch_sync(sq_daemon_t *daemon, batch_t *batch) {
        sq_workflows_inst_t *w = &daemon->workflows;

        if (!batch->txn) {
                /* Delivery reports are served by flush, on this thread. */
                rd_kafka_flush(batch->rk, FLUSH_MS);
                if (w->acks.pending > 0 && !w->acks.err)
                        w->acks.err = RD_KAFKA_RESP_ERR__TIMED_OUT;
        }
        return !w->acks.err;
}

/* Ends the batch: at least once, its records acknowledged; exactly
 * once, its transaction committed with the workflows consumer's
 * position on the partition (how far its owner read and acted: the
 * group's committed offset, its lag). @returns true when it made it
 * (else batch_fail() was called, naming @p what of workflow @p id). */
static bool batch_end(sq_daemon_t *daemon, batch_t *batch, const char *what,
                      const char *id) {
        sq_workflows_inst_t *w = &daemon->workflows;
        rd_kafka_topic_partition_list_t *offsets;
        rd_kafka_error_t *error = NULL;

        if (!batch_sync(daemon, batch)) {
                batch_fail(daemon, batch, NULL, what, id);
                return false;
        }
        if (!batch->txn)
                return true;
        offsets = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(
            offsets, daemon->conf->topic_workflows, batch->partition);
        if (!rd_kafka_position(w->qt.rk, offsets) &&
            offsets->elems[0].offset >= 0) {
                error = sq_kafka_send_offsets(batch->rk, w->qt.rk, offsets,
                                              FLUSH_MS);
        }
        rd_kafka_topic_partition_list_destroy(offsets);
        if (!error)
                error = rd_kafka_commit_transaction(batch->rk, FLUSH_MS);
        if (error) {
                batch_fail(daemon, batch, error, what, id);
                return false;
        }
        return true;
}

/* The state record of @p wf into @p batch. */
static void add_state(sq_daemon_t *daemon, batch_t *batch, sq_workflow_t *wf) {
        const char *id = sq_workflow_id(wf);
        char *rec      = sq_workflow_state_record(wf);

        batch_add(daemon, batch, daemon->conf->topic_workflows,
                  batch->partition, id, rec, strlen(rec), 0);
        sq_free(rec);
}

/* At least once: the state record of @p wf, alone, acknowledged (a
 * step whose state record failed before). */
static bool save_state(sq_daemon_t *daemon, sq_workflow_t *wf) {
        sq_workflows_inst_t *w = &daemon->workflows;
        const char *id         = sq_workflow_id(wf);
        batch_t batch;

        if (!batch_begin(daemon, &batch, partition_of(daemon, id), id))
                return false;
        add_state(daemon, &batch, wf);
        if (!batch_end(daemon, &batch, "its state", id)) {
                json_object_set_new(w->unsaved, id, json_true());
                return false;
        }
        json_object_del(w->unsaved, id);
        return true;
}

/* An event about the workflow itself (task_id = its id), into the
 * step's batch (events.publish decides whether it goes out). */
static void add_event(sq_daemon_t *daemon, batch_t *batch, const char *type,
                      const char *id, const char *detail) {
        int64_t now = sq_wallclock_ms();
        sq_task_t task;
        const void *buf;
        size_t len;

        memset(&task, 0, sizeof(task));
        task.id          = (char *)id; /* borrowed: only read */
        task.workflow_id = (char *)id;
        if (sq_emit_event_encoded(daemon, daemon->workflows.codec, type, &task,
                                  detail, now, &buf, &len))
                batch_add(daemon, batch, daemon->conf->topic_events,
                          RD_KAFKA_PARTITION_UA, id, buf, len, now);
}

/* Adds @p step's ready tasks to @p batch. @returns false when one
 * cannot be encoded. */
static bool add_tasks(sq_daemon_t *daemon, batch_t *batch, sq_workflow_t *wf,
                      const sq_workflow_step_t *step) {
        const sq_config_t *conf = daemon->conf;
        char errstr[512];
        size_t i;

        for (i = 0; i < step->ready_cnt; i++) {
                const sq_task_t *task = step->ready[i];
                const void *buf;
                size_t len;
                if (sq_codec_encode_task(daemon->workflows.codec, task, &buf,
                                         &len, errstr,
                                         sizeof(errstr)) != SQ_OK) {
                        SQ_LOG(SQ_LOG_ERR, "WORKFLOW",
                               "workflow_id=%s task_id=%s: cannot encode "
                               "it: %s",
                               sq_workflow_id(wf), task->id, errstr);
                        daemon->workflows.acks.err = RD_KAFKA_RESP_ERR__BAD_MSG;
                        return false;
                }
                batch_add(daemon, batch,
                          task->priority == SQ_PRIO_CRITICAL
                              ? conf->topic_critical
                              : conf->topic_tasks,
                          RD_KAFKA_PARTITION_UA, task->id, buf, len, 0);
        }
        return true;
}

/* Submits @p step's ready tasks and records that they started (one
 * transaction under exactly_once; the tasks acknowledged before the
 * state otherwise). @returns false when it must be tried again. */
static bool submit(sq_daemon_t *daemon, sq_workflow_t *wf,
                   const sq_workflow_step_t *step) {
        sq_workflows_inst_t *w = &daemon->workflows;
        const char *id         = sq_workflow_id(wf);
        bool first             = sq_workflow_started_cnt(wf) == 0;
        batch_t batch;

        if (!batch_begin(daemon, &batch, partition_of(daemon, id), id))
                return false;
        if (!add_tasks(daemon, &batch, wf, step) ||
            !batch_sync(daemon, &batch)) {
                batch_fail(daemon, &batch, NULL, "its next tasks", id);
                return false;
        }
        sq_workflow_mark(wf, step, sq_wallclock_ms());
        if (first)
                add_event(daemon, &batch, SQ_EVENT_WORKFLOW_STARTED, id, NULL);
        add_state(daemon, &batch, wf);
        if (!batch_end(daemon, &batch,
                       batch.txn ? "its next tasks and state" : "its state",
                       id)) {
                /* At least once, the tasks are out: the state is written
                 * again later. Exactly once, nothing is out. */
                if (batch.txn)
                        return false;
                json_object_set_new(w->unsaved, id, json_true());
        } else {
                json_object_del(w->unsaved, id);
        }
        atomic_fetch_add(&w->submitted, (long long)step->ready_cnt);
        SQ_LOG(SQ_LOG_DEBUG, "WORKFLOW",
               "workflow_id=%s submitted %zu tasks (%zu of %zu started)", id,
               step->ready_cnt, sq_workflow_started_cnt(wf),
               sq_workflow_task_cnt(wf));
        if (first) {
                atomic_fetch_add(&w->begun, 1);
                SQ_LOG(SQ_LOG_INFO, "WORKFLOW",
                       "workflow_id=%s started: %zu tasks in all", id,
                       sq_workflow_task_cnt(wf));
        }
        return !json_object_get(w->unsaved, id);
}

/* Writes the workflow's result (task_id = its id) and its last records:
 * the final state and tombstones for its declaration and endings; one
 * transaction under exactly_once, else the result acknowledged first. */
static bool finish(sq_daemon_t *daemon, sq_workflow_t *wf,
                   const sq_workflow_step_t *step) {
        sq_workflows_inst_t *w = &daemon->workflows;
        const char *id         = sq_workflow_id(wf);
        int32_t partition      = partition_of(daemon, id);
        sq_result_t result;
        char key[KEY_MAX], errstr[512];
        json_t *ids, *tid;
        const void *buf;
        size_t len, i;
        batch_t batch;

        memset(&result, 0, sizeof(result));
        /* Borrowed pointers: the struct is only encoded, never freed. */
        result.task_id          = (char *)id;
        result.workflow_id      = (char *)id;
        result.status           = step->status;
        result.output           = step->output;
        result.output_len       = step->output_len;
        result.error            = step->error;
        result.instance         = daemon->conf->instance_id;
        result.attempts         = 1;
        result.source.topic     = daemon->conf->topic_workflows;
        result.source.partition = partition;
        result.source.offset    = -1;
        result.created_at       = sq_workflow_submitted_at(wf);
        result.started_at       = sq_workflow_submitted_at(wf);
        result.finished_at      = sq_wallclock_ms();
        if (sq_codec_encode_result(w->codec, &result, &buf, &len, errstr,
                                   sizeof(errstr)) != SQ_OK) {
                /* Only a string that is not UTF-8 fails, and every one
                 * here is ours or a task's checked error. */
                SQ_LOG(SQ_LOG_ERR, "WORKFLOW",
                       "workflow_id=%s: cannot encode its result: %s", id,
                       errstr);
                return false;
        }
        if (!batch_begin(daemon, &batch, partition, id))
                return false;
        batch_add(daemon, &batch, daemon->conf->topic_results,
                  RD_KAFKA_PARTITION_UA, id, buf, len, result.finished_at);
        if (!batch_sync(daemon, &batch)) {
                batch_fail(daemon, &batch, NULL, "its result", id);
                return false;
        }
        sq_workflow_mark(wf, step, result.finished_at);
        add_event(daemon, &batch, SQ_EVENT_WORKFLOW_ENDED, id,
                  sq_status_name(step->status));
        add_state(daemon, &batch, wf);
        if (!batch.txn && !batch_sync(daemon, &batch)) {
                /* At least once, the result is out: the state comes
                 * later, and the tombstones are left out. */
                batch_fail(daemon, &batch, NULL, "its state", id);
                json_object_set_new(w->unsaved, id, json_true());
                goto ended;
        }
        /* The endings and the declaration are no longer needed: the
         * state (kept, small) says how it ended. */
        ids = sq_workflow_task_ids(wf);
        json_array_foreach(ids, i, tid) {
                if (sq_workflow_key(id, json_string_value(tid), key,
                                    sizeof(key)))
                        batch_add(daemon, &batch, daemon->conf->topic_workflows,
                                  partition, key, NULL, 0, 0);
        }
        json_decref(ids);
        if (sq_workflow_key(id, "", key, sizeof(key)))
                batch_add(daemon, &batch, daemon->conf->topic_workflows,
                          partition, key, NULL, 0, 0);
        if (batch.txn) {
                if (!batch_end(daemon, &batch, "its result and state", id))
                        return false; /* nothing is out */
        } else if (!batch_sync(daemon, &batch)) {
                SQ_LOG(SQ_LOG_WARNING, "WORKFLOW",
                       "workflow_id=%s: its tombstones not written: %s "
                       "(compaction keeps its endings)",
                       id, rd_kafka_err2str(w->acks.err));
        }
ended:
        atomic_fetch_add(&w->ended[step->status], 1);
        SQ_LOG(SQ_LOG_INFO, "WORKFLOW",
               "workflow_id=%s ended %s after %lld ms%s%s", id,
               sq_status_name(step->status),
               (long long)(result.finished_at - result.created_at),
               step->error ? ": " : "", step->error ? step->error : "");
        return true;
}

/* Steps @p wf. @returns false when something must be tried again. */
static bool advance(sq_daemon_t *daemon, sq_workflow_t *wf) {
        sq_workflows_inst_t *w = &daemon->workflows;
        sq_workflow_step_t step;
        bool ok = true;

        sq_workflow_step(wf, sq_wallclock_ms(), &step);
        if (step.ready_cnt)
                ok = submit(daemon, wf, &step);
        else if (step.done)
                ok = finish(daemon, wf, &step);
        else if (json_object_get(w->unsaved, sq_workflow_id(wf)))
                ok = save_state(daemon, wf);
        sq_workflow_step_term(&step);
        return ok;
}

/* Steps @p wf if its partition is owned here (not being read again);
 * a step that failed is tried again at RETRY_MS (under exactly_once,
 * once its partition was read again). */
static void advance_cb(sq_workflow_t *wf, void *arg) {
        sq_daemon_t *daemon    = arg;
        sq_workflows_inst_t *w = &daemon->workflows;

        if (w->part[partition_of(daemon, sq_workflow_id(wf))] !=
            SQ_WF_PART_OWNED)
                return;
        if (!advance(daemon, wf)) {
                int64_t at = sq_wallclock_ms() + RETRY_MS;
                if (!w->retry_at_ms || at < w->retry_at_ms)
                        w->retry_at_ms = at;
        }
}

static void count_running(sq_workflow_t *wf, void *arg) {
        long long *cnt = arg;
        *cnt += sq_workflow_status(wf) < 0;
}

/* /status's list of running workflows, rebuilt at most every
 * SNAPSHOT_MS. */
static void list_running(sq_workflow_t *wf, void *arg) {
        json_t *list = arg, *one;
        if (sq_workflow_status(wf) >= 0 ||
            json_array_size(list) >= SNAPSHOT_MAX)
                return;
        one = json_object();
        json_object_set_new(one, "id", json_string(sq_workflow_id(wf)));
        json_object_set_new(one, "tasks",
                            json_integer((json_int_t)sq_workflow_task_cnt(wf)));
        json_object_set_new(
            one, "started",
            json_integer((json_int_t)sq_workflow_started_cnt(wf)));
        json_object_set_new(
            one, "ended", json_integer((json_int_t)sq_workflow_ended_cnt(wf)));
        json_object_set_new(one, "submitted_at_ms",
                            json_integer(sq_workflow_submitted_at(wf)));
        json_array_append_new(list, one);
}

static void publish(sq_daemon_t *daemon, bool force) {
        sq_workflows_inst_t *w = &daemon->workflows;
        int64_t now            = sq_wallclock_ms();
        long long running      = 0;
        json_t *list;
        char *text, *copy;

        if (!force && now - w->snapshot_at_ms < SNAPSHOT_MS)
                return;
        w->snapshot_at_ms = now;
        sq_workflows_foreach(w->set, -1, count_running, &running);
        atomic_store(&w->running, running);
        list = json_array();
        sq_workflows_foreach(w->set, -1, list_running, list);
        text = json_dumps(list, JSON_COMPACT);
        json_decref(list);
        copy = sq_strdup(text ? text : "[]");
        free(text); /* jansson's malloc */
        pthread_mutex_lock(&daemon->snap_lock);
        text        = w->snapshot;
        w->snapshot = copy;
        pthread_mutex_unlock(&daemon->snap_lock);
        sq_free(text);
}

/* exactly_once: partition @p p's transactional producer, made before
 * the partition is read: its init_transactions fences the partition's
 * previous owner (a zombie's later steps fail) and aborts the step it
 * left open, so what the partition holds once read is all there is.
 * @returns false (logged) when it cannot be made. */
static bool fence(sq_daemon_t *daemon, int32_t p) {
        sq_workflows_inst_t *w = &daemon->workflows;
        rd_kafka_error_t *error;
        char errstr[512];

        if (w->txp[p])
                return true;
        w->txp[p] = sq_kafka_new_workflows_producer(daemon, p, dr_msg_cb,
                                                    errstr, sizeof(errstr));
        if (!w->txp[p]) {
                SQ_LOG(SQ_LOG_ERR, "WORKFLOW",
                       "topic=%s partition=%d: cannot create its "
                       "transactional producer: %s",
                       daemon->conf->topic_workflows, (int)p, errstr);
                return false;
        }
        if ((error = rd_kafka_init_transactions(w->txp[p], INIT_TXN_MS))) {
                SQ_LOG(SQ_LOG_ERR, "WORKFLOW",
                       "topic=%s partition=%d: cannot start its transactions "
                       "(fencing its previous owner): %s; trying again",
                       daemon->conf->topic_workflows, (int)p,
                       rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                rd_kafka_destroy(w->txp[p]);
                w->txp[p] = NULL;
                return false;
        }
        SQ_LOG(SQ_LOG_INFO, "WORKFLOW",
               "topic=%s partition=%d: transactions started as "
               "swarmq-workflows-%s-%d (its previous owner fenced)",
               daemon->conf->topic_workflows, (int)p, daemon->conf->group_id,
               (int)p);
        return true;
}

/* exactly_once: the partitions to read again (a step or a fencing
 * failed) are fenced if need be, their workflows forgotten and read
 * again from the beginning of the partition. */
static void reread_due(sq_daemon_t *daemon) {
        sq_workflows_inst_t *w                 = &daemon->workflows;
        int32_t cnt                            = atomic_load(&w->partitions);
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_error_t *error;
        int32_t p;

        for (p = 0; p < cnt; p++) {
                if (w->part[p] != SQ_WF_PART_REREAD)
                        continue;
                if (!fence(daemon, p)) {
                        reread(daemon, p, 5 * RETRY_MS);
                        continue;
                }
                sq_workflows_drop_partition(w->set, p);
                w->part[p] = SQ_WF_PART_LOADING;
                if (!parts)
                        parts = rd_kafka_topic_partition_list_new(cnt);
                rd_kafka_topic_partition_list_add(
                    parts, daemon->conf->topic_workflows, p)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
                SQ_LOG(SQ_LOG_NOTICE, "WORKFLOW",
                       "topic=%s partition=%d: reading its workflows again",
                       daemon->conf->topic_workflows, (int)p);
        }
        if (!parts)
                return;
        if ((error = rd_kafka_seek_partitions(w->qt.rk, parts, METADATA_MS))) {
                SQ_LOG(SQ_LOG_WARNING, "WORKFLOW",
                       "cannot read topic=%s again: %s",
                       daemon->conf->topic_workflows,
                       rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
        rd_kafka_topic_partition_list_destroy(parts);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
        sq_daemon_t *daemon     = opaque;
        sq_workflows_inst_t *w  = &daemon->workflows;
        int32_t cnt             = atomic_load(&w->partitions);
        bool cooperative        = sq_kafka_cooperative(rk);
        rd_kafka_error_t *error = NULL;
        int i;

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                for (i = 0; i < parts->cnt; i++) {
                        int32_t p              = parts->elems[i].partition;
                        parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
                        if (p < 0 || p >= cnt || w->part[p] != SQ_WF_PART_NONE)
                                continue;
                        atomic_fetch_add(&w->owned, 1);
                        /* exactly_once: fenced before it is read; if
                         * that fails, the loop tries again. */
                        if (!daemon->eos || fence(daemon, p))
                                w->part[p] = SQ_WF_PART_LOADING;
                        else
                                reread(daemon, p, 5 * RETRY_MS);
                }
                SQ_LOG(SQ_LOG_NOTICE, "WORKFLOW",
                       "assigned %d partitions of topic=%s: reading their "
                       "workflows",
                       parts->cnt, daemon->conf->topic_workflows);
                if (cooperative)
                        error = rd_kafka_incremental_assign(rk, parts);
                else
                        rd_kafka_assign(rk, parts);
        } else {
                /* What this owner wrote is in Kafka before the next one
                 * reads the partitions (exactly_once: every step is
                 * committed or aborted by then). */
                if (w->producer)
                        rd_kafka_flush(w->producer, STOP_FLUSH_MS);
                for (i = 0; i < parts->cnt; i++) {
                        int32_t p = parts->elems[i].partition;
                        if (p < 0 || p >= cnt || w->part[p] == SQ_WF_PART_NONE)
                                continue;
                        w->part[p] = SQ_WF_PART_NONE;
                        atomic_fetch_sub(&w->owned, 1);
                        sq_workflows_drop_partition(w->set, p);
                        if (w->txp && w->txp[p]) {
                                rd_kafka_destroy(w->txp[p]);
                                w->txp[p] = NULL;
                        }
                }
                SQ_LOG(SQ_LOG_NOTICE, "WORKFLOW",
                       "%d partitions of topic=%s revoked: their workflows "
                       "run on their next owner",
                       parts->cnt, daemon->conf->topic_workflows);
                if (cooperative)
                        error = rd_kafka_incremental_unassign(rk, parts);
                else
                        rd_kafka_assign(rk, NULL);
                publish(daemon, true);
        }
        if (error) {
                SQ_LOG(SQ_LOG_ERR, "WORKFLOW", "incremental assignment: %s",
                       rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
}

/* One record (or event) of the workflows consumer. */
static void handle_message(sq_daemon_t *daemon, const rd_kafka_message_t *rkm) {
        sq_workflows_inst_t *w = &daemon->workflows;
        int32_t cnt            = atomic_load(&w->partitions);
        int32_t p              = rkm->partition;
        sq_workflow_t *wf      = NULL;
        char errstr[512];

        if (p < 0 || p >= cnt)
                return;
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (w->part[p] == SQ_WF_PART_LOADING) {
                        w->part[p] = SQ_WF_PART_OWNED;
                        SQ_LOG(SQ_LOG_INFO, "WORKFLOW",
                               "topic=%s partition=%d read to offset %lld: "
                               "running its workflows",
                               daemon->conf->topic_workflows, (int)p,
                               (long long)rkm->offset);
                        sq_workflows_foreach(w->set, p, advance_cb, daemon);
                        publish(daemon, true);
                }
                return;
        }
        if (rkm->err) {
                SQ_LOG(SQ_LOG_WARNING, "WORKFLOW", "consumer error: %s",
                       rd_kafka_message_errstr(rkm));
                return;
        }
        if (w->part[p] == SQ_WF_PART_NONE)
                return; /* a record of a partition given up meanwhile */
        if (sq_workflows_apply(w->set, p, rkm->key, rkm->key_len, rkm->payload,
                               rkm->len, &wf, errstr,
                               sizeof(errstr)) != SQ_OK) {
                SQ_LOG(SQ_LOG_WARNING, "WORKFLOW",
                       "ignored topic=%s partition=%d offset=%lld: %s",
                       daemon->conf->topic_workflows, (int)p,
                       (long long)rkm->offset, errstr);
                return;
        }
        if (wf && w->part[p] == SQ_WF_PART_OWNED)
                json_object_set_new(w->dirty, sq_workflow_id(wf), json_true());
}

/* Steps the workflows the records just read touched. */
static void advance_dirty(sq_daemon_t *daemon) {
        sq_workflows_inst_t *w = &daemon->workflows;
        const char *id;
        json_t *val;

        json_object_foreach(w->dirty, id, val) {
                sq_workflow_t *wf = sq_workflows_get(w->set, id);
                if (wf)
                        advance_cb(wf, daemon);
        }
        json_object_clear(w->dirty);
}

static void *workflows_main(void *arg) {
        sq_daemon_t *daemon    = arg;
        sq_workflows_inst_t *w = &daemon->workflows;
        int timeout;

        do {
                rd_kafka_message_t *rkm;
                int n = 0;

                timeout = -1;
                sq_qthread_drain(&w->qt);
                /* Serves the rebalance callback too; a bounded batch,
                 * then the workflows it touched step. */
                while (n++ < 10000 &&
                       (rkm = rd_kafka_consumer_poll(w->qt.rk, 0))) {
                        handle_message(daemon, rkm);
                        rd_kafka_message_destroy(rkm);
                }
                advance_dirty(daemon);
                if (w->retry_at_ms) {
                        int64_t now = sq_wallclock_ms();
                        if (now >= w->retry_at_ms) {
                                /* After a failed step: the partitions to
                                 * read again (exactly_once), and every
                                 * owned workflow steps again (those with
                                 * nothing to do do nothing). */
                                w->retry_at_ms = 0;
                                reread_due(daemon);
                                sq_workflows_foreach(w->set, -1, advance_cb,
                                                     daemon);
                        }
                        if (w->retry_at_ms)
                                timeout = (int)SQ_MAX(w->retry_at_ms - now, 0);
                }
                publish(daemon, false);
                if (n > 10000)
                        timeout = 0; /* more records wait */
                else if (timeout < 0 || timeout > SNAPSHOT_MS)
                        timeout = SNAPSHOT_MS; /* the snapshot's refresh */
        } while (sq_qthread_sleep(&w->qt, timeout, "WORKFLOW"));
        return NULL;
}

/* The partition count of topic.workflows, from the cluster's metadata. */
static int32_t partition_count(sq_daemon_t *daemon, char *errstr,
                               size_t errstr_size) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt              = daemon->rkt_workflows;
        rd_kafka_resp_err_t err;
        int32_t cnt = 0;

        err = rd_kafka_metadata(daemon->producer, 0, rkt, &md, METADATA_MS);
        if (err) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot read the metadata of topic.workflows=%s: "
                              "%s",
                              daemon->conf->topic_workflows,
                              rd_kafka_err2str(err));
                return 0;
        }
        if (md->topic_cnt == 1 && !md->topics[0].err)
                cnt = md->topics[0].partition_cnt;
        else
                sq_errstr_set(errstr, errstr_size,
                              "topic.workflows=%s: %s (workflows.enable=true "
                              "needs it; topics.create=true makes it)",
                              daemon->conf->topic_workflows,
                              md->topic_cnt == 1
                                  ? rd_kafka_err2str(md->topics[0].err)
                                  : "not in the metadata");
        rd_kafka_metadata_destroy(md);
        return cnt;
}

sq_err_t sq_workflows_start(sq_daemon_t *daemon, char *errstr,
                            size_t errstr_size) {
        sq_workflows_inst_t *w = &daemon->workflows;
        int32_t cnt;
        sq_err_t err;

        if (!daemon->conf->workflows_enable)
                return SQ_OK;
        /* Only now, after sq_kafka_ensure_topics(): a topic handle on the
         * producer asks for the topic's metadata, and a broker with
         * auto.create.topics.enable would create it at once, with its
         * default partition count and without compaction. */
        daemon->rkt_workflows = rd_kafka_topic_new(
            daemon->producer, daemon->conf->topic_workflows, NULL);
        cnt = partition_count(daemon, errstr, errstr_size);
        if (cnt <= 0)
                return SQ_ERR_KAFKA;
        w->part    = sq_calloc((size_t)cnt, 1);
        w->set     = sq_workflows_new();
        w->dirty   = json_object();
        w->unsaved = json_object();
        w->codec   = sq_codec_new(errstr, errstr_size);
        if (!w->codec)
                return SQ_ERR_CONFIG;
        sq_schemas_use(daemon, w->codec);
        if (daemon->eos) {
                /* One per owned partition, made as it is assigned. */
                w->txp = sq_calloc((size_t)cnt, sizeof(*w->txp));
        } else {
                w->producer = sq_kafka_new_workflows_producer(
                    daemon, -1, dr_msg_cb, errstr, errstr_size);
                if (!w->producer)
                        return SQ_ERR_KAFKA;
        }
        w->qt.rk = sq_kafka_new_workflows_consumer(daemon, rebalance_cb, errstr,
                                                   errstr_size);
        if (!w->qt.rk)
                return SQ_ERR_KAFKA;
        /* Only now, before its thread reads it: emit.c writes endings
         * once it knows the count. */
        atomic_store(&w->partitions, cnt);
        if ((err = sq_qthread_start(
                 &w->qt, "topic.workflows", daemon->conf->topic_workflows,
                 "workflows", workflows_main, daemon, errstr, errstr_size)))
                return err;
        SQ_LOG(SQ_LOG_NOTICE, "WORKFLOW",
               "workflows on: the owners of topic=%s's %d partitions (group "
               "%s.workflows) run them",
               daemon->conf->topic_workflows, (int)cnt, daemon->conf->group_id);
        return SQ_OK;
}

void sq_workflows_stop(sq_daemon_t *daemon) {
        sq_workflows_inst_t *w = &daemon->workflows;
        int32_t i;

        /* Leaves the group: the revoke callback (run there) flushes what
         * was written, and the others take the partitions over. */
        sq_qthread_stop(&w->qt);
        if (w->producer) {
                rd_kafka_flush(w->producer, STOP_FLUSH_MS);
                rd_kafka_destroy(w->producer);
                w->producer = NULL;
        }
        for (i = 0; w->txp && i < atomic_load(&w->partitions); i++) {
                if (w->txp[i])
                        rd_kafka_destroy(w->txp[i]);
                w->txp[i] = NULL;
        }
        sq_codec_destroy(w->codec);
        w->codec = NULL;
}

/*
 * /metrics and /status (HTTP thread)
 */

static void collect_ended(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        char labels[64];
        int s;
        (void)metrics;

        for (s = 0; s < SQ_STATUS_CNT; s++) {
                snprintf(labels, sizeof(labels), "status=\"%s\"",
                         sq_status_name((sq_status_t)s));
                sq_metrics_emit(
                    out, "swarmq_workflows_ended_total", labels,
                    (double)atomic_load(&daemon->workflows.ended[s]));
        }
}

static void collect_running(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(out, "swarmq_workflows_running", NULL,
                        (double)atomic_load(&daemon->workflows.running));
}

static void collect_started(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(out, "swarmq_workflows_started_total", NULL,
                        (double)atomic_load(&daemon->workflows.begun));
}

static void collect_submitted(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(out, "swarmq_workflow_tasks_submitted_total", NULL,
                        (double)atomic_load(&daemon->workflows.submitted));
}

static void collect_owned(void *opaque, sq_metrics_t *metrics, void *out) {
        sq_daemon_t *daemon = opaque;
        (void)metrics;
        sq_metrics_emit(out, "swarmq_workflows_partitions_owned", NULL,
                        (double)atomic_load(&daemon->workflows.owned));
}

void sq_workflows_register_metrics(sq_daemon_t *daemon) {
        sq_metrics_t *metrics = daemon->metrics;

        if (!daemon->conf->workflows_enable)
                return;
        sq_metrics_collector(metrics, "swarmq_workflows_ended_total",
                             "Workflows this instance ended (wrote the "
                             "result of), by status",
                             SQ_METRIC_COUNTER, collect_ended, daemon);
        sq_metrics_collector(metrics, "swarmq_workflows_running",
                             "Running workflows on the partitions of "
                             "topic.workflows this instance owns",
                             SQ_METRIC_GAUGE, collect_running, daemon);
        sq_metrics_collector(metrics, "swarmq_workflows_started_total",
                             "Workflows this instance started (submitted "
                             "the first tasks of)",
                             SQ_METRIC_COUNTER, collect_started, daemon);
        sq_metrics_collector(metrics, "swarmq_workflow_tasks_submitted_total",
                             "Tasks of workflows this instance submitted",
                             SQ_METRIC_COUNTER, collect_submitted, daemon);
        sq_metrics_collector(metrics, "swarmq_workflows_partitions_owned",
                             "Partitions of topic.workflows this instance "
                             "owns",
                             SQ_METRIC_GAUGE, collect_owned, daemon);
}

void *sq_workflows_status(sq_daemon_t *daemon) {
        sq_workflows_inst_t *w = &daemon->workflows;
        json_t *obj = json_object(), *list = NULL;
        json_error_t jerr;
        int s;

        json_object_set_new(obj, "topic",
                            json_string(daemon->conf->topic_workflows));
        json_object_set_new(obj, "partitions",
                            json_integer(atomic_load(&w->partitions)));
        json_object_set_new(obj, "partitions_owned",
                            json_integer(atomic_load(&w->owned)));
        json_object_set_new(obj, "running",
                            json_integer(atomic_load(&w->running)));
        json_object_set_new(obj, "started",
                            json_integer(atomic_load(&w->begun)));
        {
                json_t *ended = json_object();
                for (s = 0; s < SQ_STATUS_CNT; s++)
                        json_object_set_new(
                            ended, sq_status_name((sq_status_t)s),
                            json_integer(atomic_load(&w->ended[s])));
                json_object_set_new(obj, "ended", ended);
        }
        json_object_set_new(obj, "tasks_submitted",
                            json_integer(atomic_load(&w->submitted)));
        pthread_mutex_lock(&daemon->snap_lock);
        if (w->snapshot)
                list = json_loads(w->snapshot, 0, &jerr);
        pthread_mutex_unlock(&daemon->snap_lock);
        json_object_set_new(obj, "list", list ? list : json_array());
        return obj;
}
