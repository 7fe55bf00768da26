/* SPDX-License-Identifier: Apache-2.0 */
/*
 * swarmq/producer.h: the public C API for submitting tasks to swarmq.
 *
 *   char errstr[512];
 *   swarmq_producer_t *p = swarmq_producer_new("localhost:9092", errstr,
 *                                              sizeof(errstr));
 *   swarmq_task_t *task = swarmq_task_new("job-1", "sha256");
 *   swarmq_task_set_payload(task, "hello", 5);
 *   swarmq_producer_submit(p, task, errstr, sizeof(errstr));
 *   swarmq_task_destroy(task);
 *   if (swarmq_producer_flush(p, 30000) > 0)
 *           ... some tasks were not delivered ...
 *   swarmq_producer_destroy(p);
 *
 * DESIGN
 *   Handles are opaque; no librdkafka or Avro type appears here, so the
 *   library can change its internals without breaking callers. A task is
 *   encoded (Confluent-framed Avro) and copied into the Kafka client when it
 *   is submitted, so the caller may destroy or reuse the task right after.
 *   Tasks of priority CRITICAL go to the fast-lane topic, all others to the
 *   tasks topic; the record key is the task key when set, else the task id.
 *   The underlying Kafka producer is idempotent with acks=all and
 *   linger.ms=5 unless overridden through swarmq_producer_set().
 *
 *   Threads: one thread at a time may call a given producer's functions
 *   (like a FILE *); separate producers are independent. Delivery reports
 *   are served inside submit(), poll() and flush() on the calling thread.
 *
 *   Errors: functions that can fail return a swarmq_err_t and write a full
 *   sentence into the caller's errstr buffer (which may be NULL).
 */
#ifndef SWARMQ_PRODUCER_H
#define SWARMQ_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SWARMQ_BUILDING_LIBRARY) && defined(__GNUC__)
#define SWARMQ_API __attribute__((visibility("default")))
#else
#define SWARMQ_API
#endif

/** Result codes of the public API: 0 is success, errors are negative. */
typedef enum {
        SWARMQ_OK              = 0,
        SWARMQ_ERR_INVALID_ARG = -1, /**< a bad argument or setting */
        SWARMQ_ERR_STATE       = -2, /**< wrong call order (e.g. set()
                                      *   after the first submit) */
        SWARMQ_ERR_ENCODE     = -3,  /**< the task could not be encoded */
        SWARMQ_ERR_QUEUE_FULL = -4,  /**< the local queue stayed full for
                                      *   submit.block.ms */
        SWARMQ_ERR_KAFKA     = -5,   /**< the Kafka client refused */
        SWARMQ_ERR_TRANSPORT = -6,   /**< no broker answered in time */
} swarmq_err_t;

/** Task priorities; CRITICAL goes to the fast-lane topic. */
typedef enum {
        SWARMQ_PRIORITY_LOW      = 0,
        SWARMQ_PRIORITY_NORMAL   = 1,
        SWARMQ_PRIORITY_HIGH     = 2,
        SWARMQ_PRIORITY_CRITICAL = 3,
} swarmq_priority_t;

typedef struct swarmq_producer_s swarmq_producer_t;
typedef struct swarmq_task_s swarmq_task_t;

/** Delivery counters of one producer, since it was created. */
typedef struct swarmq_producer_counts_s {
        uint64_t submitted; /**< accepted by submit() / send_raw() */
        uint64_t delivered; /**< acknowledged by the broker (acks=all) */
        uint64_t failed;    /**< permanently failed delivery */
        uint64_t in_flight; /**< submitted, no delivery report yet */
} swarmq_producer_counts_t;

/** @returns the library version, e.g. "0.1.0" (static string). */
SWARMQ_API const char *swarmq_version(void);

/** @returns a static description of an error code; never NULL. */
SWARMQ_API const char *swarmq_err2str(swarmq_err_t err);

/* ------------------------------------------------------------------ */
/* Tasks                                                              */
/* ------------------------------------------------------------------ */

/**
 * @brief Creates a task with defaults: priority NORMAL, no capabilities,
 *        empty payload, no key, no timeout, 3 attempts, created_at now.
 * @param id the task id (copied); NULL generates a random UUID.
 * @param type the task type (copied), e.g. "sha256"; must not be empty.
 * @returns a task (caller owns, swarmq_task_destroy()), or NULL when
 *          @p id is empty or @p type is NULL or empty.
 */
SWARMQ_API swarmq_task_t *swarmq_task_new(const char *id, const char *type);

/**
 * @brief Parses one JSON task object: the text form of a task, with the
 *        schema's field names ("id", "type", "priority", "capabilities",
 *        "payload" or "payload_base64", "key", "timeout_ms", ...);
 *        created_at defaults to now.
 * @param json borrowed, @p len bytes (no terminator needed).
 * @returns a task (caller owns, swarmq_task_destroy()), or NULL with
 *          @p errstr naming what is wrong.
 */
SWARMQ_API swarmq_task_t *swarmq_task_new_from_json(const char *json,
                                                    size_t len, char *errstr,
                                                    size_t errstr_size);

/** @brief Frees a task; NULL is a no-op. */
SWARMQ_API void swarmq_task_destroy(swarmq_task_t *task);

/** @returns the task id (borrowed from @p task). */
SWARMQ_API const char *swarmq_task_id(const swarmq_task_t *task);

/** @returns the task priority. */
SWARMQ_API swarmq_priority_t swarmq_task_priority(const swarmq_task_t *task);

/**
 * @brief Sets the priority.
 * @returns SWARMQ_OK, or SWARMQ_ERR_INVALID_ARG for an unknown value.
 */
SWARMQ_API swarmq_err_t swarmq_task_set_priority(swarmq_task_t *task,
                                                 swarmq_priority_t prio);

/**
 * @brief Parses "LOW", "NORMAL", "HIGH" or "CRITICAL" (any case).
 * @returns SWARMQ_OK, or SWARMQ_ERR_INVALID_ARG.
 */
SWARMQ_API swarmq_err_t swarmq_priority_parse(const char *str,
                                              swarmq_priority_t *priop);

/** @brief Appends a required capability (copied; must not be empty). */
SWARMQ_API swarmq_err_t swarmq_task_add_capability(swarmq_task_t *task,
                                                   const char *cap);

/** @brief Sets the payload (copied); @p buf may be NULL when @p len is 0. */
SWARMQ_API void swarmq_task_set_payload(swarmq_task_t *task, const void *buf,
                                        size_t len);

/** @brief Sets the ordering/affinity key (copied); NULL clears it. */
SWARMQ_API void swarmq_task_set_key(swarmq_task_t *task, const char *key);

/** @brief Sets the execution timeout; 0 = none, negative is invalid. */
SWARMQ_API swarmq_err_t swarmq_task_set_timeout_ms(swarmq_task_t *task,
                                                   int64_t timeout_ms);

/** @brief Sets how many attempts the consumer makes (>= 1). */
SWARMQ_API swarmq_err_t swarmq_task_set_max_attempts(swarmq_task_t *task,
                                                     int32_t max_attempts);

/**
 * @brief Do not start the task before @p not_before_ms (milliseconds since
 *        the Unix epoch); 0 clears it. A consumer that reads it earlier
 *        parks it in the retry topic until then (docs/delayed-and-cancel.md).
 * @returns SWARMQ_OK, or SWARMQ_ERR_INVALID_ARG when negative.
 */
SWARMQ_API swarmq_err_t swarmq_task_set_not_before(swarmq_task_t *task,
                                                   int64_t not_before_ms);

/**
 * @brief Do not start the task before @p delay_ms from now: sets its
 *        not_before to the wall clock plus @p delay_ms (0 clears it).
 * @returns SWARMQ_OK, or SWARMQ_ERR_INVALID_ARG when negative.
 */
SWARMQ_API swarmq_err_t swarmq_task_set_delay_ms(swarmq_task_t *task,
                                                 int64_t delay_ms);

/** @brief Adds a string header (both copied; @p name must not be empty). */
SWARMQ_API swarmq_err_t swarmq_task_add_header(swarmq_task_t *task,
                                               const char *name,
                                               const char *value);

/* ------------------------------------------------------------------ */
/* Producer                                                           */
/* ------------------------------------------------------------------ */

/**
 * @brief Creates a producer. Nothing connects yet: settings may still be
 *        changed with swarmq_producer_set() until swarmq_producer_connect()
 *        or the first submit.
 * @param bootstrap_servers borrowed, "host:port[,host:port...]"; NULL to
 *        give it later as "kafka.bootstrap.servers".
 * @returns a producer (caller owns, swarmq_producer_destroy()) or NULL with
 *          @p errstr set.
 */
SWARMQ_API swarmq_producer_t *swarmq_producer_new(const char *bootstrap_servers,
                                                  char *errstr,
                                                  size_t errstr_size);

/**
 * @brief Changes a setting before the producer starts. Keys:
 *        "kafka.<property>" passes <property> to librdkafka;
 *        "topic.tasks", "topic.critical" and "topic.control" name the
 *        topics;
 *        "submit.block.ms" is how long submit() waits for room in a full
 *        local queue (default 30000; 0 = do not wait);
 *        "schema.registry.url" (with "schema.registry.basic.auth.user.info",
 *        "schema.registry.ssl.ca.location", "schema.registry.timeout.ms")
 *        frames tasks with the id of the Task schema in that Confluent-
 *        compatible Schema Registry, registered under "<topic>-value" of
 *        both task topics when the producer starts (the consumer must use
 *        the same registry; docs/wire.md). Without it, the embedded
 *        catalog's id 1.
 * @returns SWARMQ_OK; SWARMQ_ERR_INVALID_ARG naming the key or value;
 *          SWARMQ_ERR_STATE after the producer started.
 */
SWARMQ_API swarmq_err_t swarmq_producer_set(swarmq_producer_t *p,
                                            const char *key, const char *value,
                                            char *errstr, size_t errstr_size);

/**
 * @brief Starts the Kafka client (if not started) and, when
 *        @p timeout_ms > 0, waits for a broker to answer a metadata request.
 * @returns SWARMQ_OK; SWARMQ_ERR_KAFKA when the client refuses the
 *          configuration; SWARMQ_ERR_TRANSPORT when no broker (or, with
 *          schema.registry.url, no registry) answered; SWARMQ_ERR_ENCODE
 *          when the registry refused the Task schema.
 */
SWARMQ_API swarmq_err_t swarmq_producer_connect(swarmq_producer_t *p,
                                                int timeout_ms, char *errstr,
                                                size_t errstr_size);

/**
 * @brief Encodes @p task and queues it for asynchronous delivery. Starts
 *        the producer on first use.
 * @param task borrowed; may be destroyed right after the call.
 * @returns SWARMQ_OK when queued (delivery is reported later, see
 *          swarmq_producer_counts()); SWARMQ_ERR_QUEUE_FULL when the local
 *          queue stayed full for submit.block.ms; other errors with
 *          @p errstr set.
 */
SWARMQ_API swarmq_err_t swarmq_producer_submit(swarmq_producer_t *p,
                                               const swarmq_task_t *task,
                                               char *errstr,
                                               size_t errstr_size);

/**
 * @brief Submits a workflow (docs/workflows.md): a chain, group or chord
 *        of tasks declared in the JSON document @p json, as one record on
 *        topic.workflows ("swarmq-workflows"), on the partition its id
 *        hashes to. A swarmq instance with workflows.enable=true that
 *        owns that partition submits its tasks as earlier ones end, and
 *        writes its result (task_id = the workflow id) once it is over.
 *        Delivery is reported like a submit (flush(), counts()).
 * @param json @p len bytes (borrowed).
 * @param workflow_id the workflow's id when the document names none
 *        (borrowed; NULL: the document's "id" is required).
 * @param id_out receives the workflow's id (NUL-terminated), or NULL.
 * @returns SWARMQ_OK when queued for delivery; SWARMQ_ERR_INVALID_ARG for
 *          a bad document, @p errstr naming the bad place; the errors of
 *          submit() otherwise.
 */
SWARMQ_API swarmq_err_t swarmq_producer_submit_workflow(
    swarmq_producer_t *p, const char *json, size_t len, const char *workflow_id,
    char *id_out, size_t id_size, char *errstr, size_t errstr_size);

/**
 * @brief Asks every swarmq instance to cancel the task @p task_id: a
 *        control record (topic.control, default "swarmq-control") that
 *        each instance reads. A task not yet run (queued, delayed, or
 *        submitted within cancel.ttl.ms after this) ends CANCELLED without
 *        running; a running exec or pool task is killed, a builtin stops
 *        at its next check; each gets one CANCELLED result. A task that
 *        already ended, or an unknown id, is not affected. Delivery is
 *        reported like a submit (flush(), counts()).
 * @param task_id borrowed: 1 to 4096 bytes of UTF-8.
 * @returns SWARMQ_OK when queued for delivery; SWARMQ_ERR_INVALID_ARG for
 *          a bad id; the errors of submit() otherwise.
 */
SWARMQ_API swarmq_err_t swarmq_producer_cancel(swarmq_producer_t *p,
                                               const char *task_id,
                                               char *errstr,
                                               size_t errstr_size);

/**
 * @brief Queues one record with a raw value, as-is, to the tasks topic
 *        (for tests and demos of undecodable records).
 * @param key, value borrowed; @p key may be NULL.
 */
SWARMQ_API swarmq_err_t swarmq_producer_send_raw(
    swarmq_producer_t *p, const void *key, size_t key_len, const void *value,
    size_t value_len, char *errstr, size_t errstr_size);

/**
 * @brief Serves delivery reports, waiting up to @p timeout_ms for one.
 * @returns the number of delivery reports served.
 */
SWARMQ_API int swarmq_producer_poll(swarmq_producer_t *p, int timeout_ms);

/**
 * @brief Waits up to @p timeout_ms for every queued task to be delivered.
 * @returns how many submitted tasks were not delivered: those that failed
 *          since the producer was created plus those still in flight;
 *          0 means everything submitted so far is acknowledged.
 */
SWARMQ_API uint64_t swarmq_producer_flush(swarmq_producer_t *p, int timeout_ms);

/** @brief Reads the delivery counters into @p countsp. */
SWARMQ_API void swarmq_producer_counts(const swarmq_producer_t *p,
                                       swarmq_producer_counts_t *countsp);

/**
 * @returns the last delivery or client error as a sentence (borrowed,
 *          valid until the next call on @p p), or NULL when none.
 */
SWARMQ_API const char *swarmq_producer_last_error(const swarmq_producer_t *p);

/**
 * @brief Destroys the producer. Tasks not yet delivered are dropped: call
 *        swarmq_producer_flush() first. NULL is a no-op.
 */
SWARMQ_API void swarmq_producer_destroy(swarmq_producer_t *p);

#ifdef __cplusplus
}
#endif

#endif /* SWARMQ_PRODUCER_H */
