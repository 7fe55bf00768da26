/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schedules_int.h: the periodic schedules of the group (schedules.c):
 * which instance fires them, the last fired ticks, and what /status and
 * /metrics show of them.
 *
 * DESIGN
 *   Main starts the schedules thread (only where schedules are declared)
 *   and stops it before the Kafka clients go. The thread owns its
 *   consumer, its producer, its codec and each schedule's cursor; it
 *   publishes the role and each schedule's last and next tick and counts
 *   as atomics, which the HTTP thread reads.
 */
#ifndef SQ_SCHEDULES_INT_H
#define SQ_SCHEDULES_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "codec.h"
#include "common.h"
#include "daemon.h"
#include "qthread_int.h"

/** What this instance is to the group's schedules. */
typedef enum {
        SQ_SCHEDULES_OFF     = 0, /**< no schedule declared here */
        SQ_SCHEDULES_STANDBY = 1, /**< another instance fires them */
        SQ_SCHEDULES_LOADING = 2, /**< owner, reading the last ticks */
        SQ_SCHEDULES_OWNER   = 3, /**< owner: fires each tick */
} sq_schedules_role_t;

/** One schedule's state (conf->schedules[i]). */
typedef struct sq_schedule_state_s {
        atomic_llong last;    /**< newest tick fired (ms), 0: none known */
        atomic_llong next;    /**< next tick it fires (owner), 0: none */
        atomic_llong fired;   /**< ticks this instance fired */
        atomic_llong skipped; /**< ticks its missed policy skipped here */
        int64_t cursor;       /**< newest tick handled (schedules thread) */
} sq_schedule_state_t;

typedef struct sq_schedules_s {
        sq_schedule_state_t *state; /* one per conf->schedules[i] */
        atomic_int role;            /* sq_schedules_role_t */
        sq_qthread_t qt;            /* the thread and its consumer (group
                                       <group.id>.schedules) */
        rd_kafka_t *producer;       /* while owner; NULL otherwise */
        sq_codec_t *codec;          /* encodes the tasks it fires */
        int64_t retry_at_ms;        /* a failed tick is tried again then */
} sq_schedules_t;

/** @brief Prepares the state (no thread, no client). Main. */
void sq_schedules_init(sq_daemon_t *daemon);

/**
 * @brief With schedules declared: creates the consumer of topic.schedules
 *        (group <group.id>.schedules) and starts the schedules thread.
 *        Main.
 * @returns SQ_OK (also with no schedule), or an error naming why.
 */
sq_err_t sq_schedules_start(sq_daemon_t *daemon, char *errstr,
                            size_t errstr_size);

/** @brief Stops and joins the thread, leaves the group (a standby takes
 *         over at once), flushes what it fired; idempotent. Main. */
void sq_schedules_stop(sq_daemon_t *daemon);

/** @brief Frees the state. Main, after sq_schedules_stop(). */
void sq_schedules_term(sq_daemon_t *daemon);

/** @brief Registers the swarmq_schedule_* collectors. Main. */
void sq_schedules_register_metrics(sq_daemon_t *daemon);

/** @returns /status's "schedules" object (a jansson json_t *, caller
 *           owns). HTTP thread. */
void *sq_schedules_status(sq_daemon_t *daemon);

#endif /* SQ_SCHEDULES_INT_H */
