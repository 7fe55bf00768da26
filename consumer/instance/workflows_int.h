/* SPDX-License-Identifier: Apache-2.0 */
/*
 * workflows_int.h: the workflows this instance runs (workflows.c): the
 * partitions of topic.workflows Kafka gave it, their workflows rebuilt
 * from the topic, and what /status and /metrics show of them.
 *
 * DESIGN
 *   Main starts the workflows thread (workflows.enable) and stops it
 *   after the poll thread. The thread owns its consumer, its producers
 *   (one, or under exactly_once one per owned partition), its codec and
 *   the set of workflows; it publishes counts as atomics
 *   and a JSON snapshot of the running workflows under snap_lock, which
 *   the HTTP thread reads. The executors and the I/O loop read only
 *   `partitions` (emit.c: which partition a task's ending goes to).
 */
#ifndef SQ_WORKFLOWS_INT_H
#define SQ_WORKFLOWS_INT_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "codec.h"
#include "common.h"
#include "daemon.h"
#include "qthread_int.h"
#include "task.h"
#include "workflow.h"

/** What this instance is to one partition of topic.workflows. */
typedef enum {
        SQ_WF_PART_NONE    = 0, /**< another instance owns it */
        SQ_WF_PART_LOADING = 1, /**< ours: reading it to its end */
        SQ_WF_PART_OWNED   = 2, /**< ours: its workflows run here */
        SQ_WF_PART_REREAD  = 3, /**< ours: to be read again (exactly_once:
                                     a step failed, or its fencing) */
} sq_wf_part_t;

/** The acknowledgements of the one batch of records the workflows
 *  thread has open (workflows.c); workflows thread only. */
typedef struct sq_wf_acks_s {
        uintptr_t seq;           /* the open batch's, in each record's opaque */
        int pending;             /* records not acknowledged yet */
        rd_kafka_resp_err_t err; /* the batch's first error */
} sq_wf_acks_t;

typedef struct sq_workflows_inst_s {
        /* Partitions of topic.workflows, read at start (0: off). */
        atomic_int partitions;
        sq_qthread_t qt;      /* the thread and its consumer (group
                                  <group.id>.workflows) */
        rd_kafka_t *producer; /* at_least_once: the steps' records */
        rd_kafka_t **txp;     /* exactly_once: per partition, while owned
                                 and fenced: its transactional producer */
        sq_wf_acks_t acks;    /* the open batch's delivery reports */
        sq_codec_t *codec;    /* encodes the tasks and results */
        sq_workflows_t *set;  /* the owned partitions' workflows */
        unsigned char *part;  /* sq_wf_part_t per partition */
        json_t *dirty;        /* ids to step after the records read */
        json_t *unsaved;      /* ids whose state record failed */
        int64_t retry_at_ms;  /* a failed step is tried again then */
        /* For /metrics and /status (HTTP thread reads). */
        atomic_llong owned;                /* partitions owned */
        atomic_llong running;              /* running workflows owned here */
        atomic_llong begun;                /* workflows started here */
        atomic_llong submitted;            /* tasks submitted here */
        atomic_llong ended[SQ_STATUS_CNT]; /* workflows ended here */
        char *snapshot; /* the running workflows (JSON), under snap_lock */
        int64_t snapshot_at_ms;
} sq_workflows_inst_t;

/** @brief Prepares the state (no thread, no client). Main. */
void sq_workflows_init(sq_daemon_t *daemon);

/**
 * @brief With workflows.enable: reads topic.workflows' partition count,
 *        creates the consumer (group <group.id>.workflows) and producer,
 *        and starts the workflows thread. Main.
 * @returns SQ_OK (also when disabled), or an error naming why.
 */
sq_err_t sq_workflows_start(sq_daemon_t *daemon, char *errstr,
                            size_t errstr_size);

/** @brief Stops and joins the thread, leaves the group (the others take
 *         its partitions over at once); idempotent. Main. */
void sq_workflows_stop(sq_daemon_t *daemon);

/** @brief Frees the state. Main, after sq_workflows_stop(). */
void sq_workflows_term(sq_daemon_t *daemon);

/** @brief Registers the swarmq_workflow* collectors. Main. */
void sq_workflows_register_metrics(sq_daemon_t *daemon);

/** @returns /status's "workflows" object (a jansson json_t *, caller
 *           owns). HTTP thread. */
void *sq_workflows_status(sq_daemon_t *daemon);

/**
 * @brief The declaration of a workflow spawned by a task's output, for
 *        topic.workflows (emit.c, with the task's result): its key and
 *        partition.
 * @returns the value (caller owns, sq_free()), or NULL when workflows
 *          are off here.
 */
char *sq_workflows_declare_record(sq_daemon_t *daemon, const sq_workflow_t *wf,
                                  char *key, size_t key_size,
                                  int32_t *partitionp);

/**
 * @brief The record saying @p result's task ended, for topic.workflows
 *        (emit.c, after the result): its key and partition.
 * @returns the value (caller owns, sq_free()), or NULL when workflows
 *          are off or the result is not of a workflow.
 */
char *sq_workflows_ended_record(sq_daemon_t *daemon, const sq_result_t *result,
                                char *key, size_t key_size,
                                int32_t *partitionp);

/**
 * @brief The replacement of an ending topic.workflows refused for its
 *        size (emit.c): the same task FAILED, its output dropped, the
 *        error saying why (@p why, borrowed).
 * @returns the value (caller owns, sq_free()), or NULL when @p value is
 *          not an ending.
 */
char *sq_workflows_ended_refused(sq_daemon_t *daemon, const void *value,
                                 size_t len, const char *why,
                                 int32_t *partitionp);

#endif /* SQ_WORKFLOWS_INT_H */
