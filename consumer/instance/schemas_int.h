/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schemas_int.h: the instance's Schema Registry (schema.registry.url):
 * the client every codec of the instance shares, registering swarmq's
 * schemas at start-up with retries, and the back-off of records whose
 * writer schema the registry did not serve (schemas.c).
 *
 * DESIGN
 *   Without schema.registry.url nothing here does anything: the codecs
 *   use the embedded catalog and sq_schemas_ready() is true at once.
 *   With it, the poll thread registers the Task schema under the subjects
 *   of topic.tasks and topic.critical, the Result schema under
 *   topic.results' and the Event schema under topic.events' (each
 *   "<topic>-value"), before it serves the consumer: until then no record
 *   is admitted (so none is written with an id that does not exist) and
 *   /readyz answers 503 with the registry's error. A failed try is retried
 *   on the poll thread's timer, backing off from 0.5 s to 30 s. A record
 *   whose writer schema the registry does not serve holds its partition
 *   (admission.c) for the same back-off: partitions that fail while a
 *   wait runs wait until its end, and the next failure after it doubles.
 *   The state is written by the poll thread only; the HTTP thread reads
 *   `ready` (atomic) and the last error under `lock`.
 */
#ifndef SQ_SCHEMAS_INT_H
#define SQ_SCHEMAS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "codec.h"
#include "common.h"
#include "daemon.h"
#include "schema_registry.h"

typedef struct sq_schemas_s {
        sq_schema_registry_t *reg; /* NULL: the embedded catalog */
        atomic_bool ready;         /* registered (or no registry) */
        atomic_bool fetch_failing; /* a record waits on a schema fetch */
        int64_t next_try_us;       /* poll thread: next registration */
        int64_t backoff_ms;        /* poll thread: registration */
        int64_t fetch_backoff_ms;  /* poll thread: a record's schema */
        int64_t fetch_until_ms;    /* poll thread: the current wait ends */
        pthread_mutex_t lock;      /* why */
        char why[512];             /* the last registry error */
} sq_schemas_t;

/**
 * @brief Creates the registry client when schema.registry.url is set.
 *        Main, before any codec of the instance is made.
 * @returns SQ_OK, or SQ_ERR_CONFIG with @p errstr naming the bad setting.
 */
sq_err_t sq_schemas_init(sq_daemon_t *daemon, char *errstr, size_t errstr_size);

/** @brief Frees the client. Main, every codec destroyed. */
void sq_schemas_term(sq_daemon_t *daemon);

/** @brief Sets up a new codec of the instance: registry mode (if set) and
 *         output.format. */
void sq_schemas_use(sq_daemon_t *daemon, sq_codec_t *codec);

/**
 * @brief Poll thread: registers the schemas when a try is due.
 * @returns the monotonic time (us) of the next try, or INT64_MAX when
 *          none is needed.
 */
int64_t sq_schemas_tick(sq_daemon_t *daemon, int64_t now_us);

/** @brief Whether records may be admitted (registered, or no registry). */
bool sq_schemas_ready(sq_daemon_t *daemon);

/**
 * @brief Poll thread: a record's writer schema could not be fetched
 *        (@p why); @returns how long (ms) to hold its partition, doubling
 *        up to 30 s while fetches keep failing.
 */
int64_t sq_schemas_fetch_failed(sq_daemon_t *daemon, const char *why);

/**
 * @brief Poll thread: how long (ms) the current fetch back-off still runs,
 *        0 when none does: a record that needs the registry meanwhile is
 *        held without a request (a registry that times out would otherwise
 *        stall the poll thread once per such record).
 */
int64_t sq_schemas_fetch_wait_ms(sq_daemon_t *daemon);

/** @brief Poll thread: a record's writer schema is known again. */
void sq_schemas_fetch_ok(sq_daemon_t *daemon);

/**
 * @brief Why the instance waits on the registry ("" when it does not), for
 *        /readyz. Any thread.
 */
void sq_schemas_why(sq_daemon_t *daemon, char *buf, size_t size);

#endif /* SQ_SCHEMAS_INT_H */
