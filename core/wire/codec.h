/* SPDX-License-Identifier: Apache-2.0 */
/*
 * codec.h: Task, Result and Event to and from bytes.
 *
 * Wire format (DESIGN.md): Avro binary in the Confluent framing: byte 0x00,
 * a 4-byte big-endian schema id, then the Avro body. Schema ids come from
 * the local catalog (schemas/, embedded at build time), or, when a codec
 * is given a Schema Registry client (sq_codec_use_registry()), from that
 * registry (docs/wire.md has both). A task value whose
 * first non-blank byte is '{' is a JSON task with the same field names
 * ("payload" a UTF-8 string, or "payload_base64").
 *
 * DESIGN
 *   A codec handle (sq_codec_t) owns parsed schemas, avro value interfaces
 *   and reusable values and writers. It is NOT thread-safe: each thread
 *   that encodes or decodes owns its own handle (they are cheap). Readers
 *   resolve older writer schemas of the catalog to the current reader
 *   schema, so upstream producers may lag a schema version.
 */
#ifndef SQ_CODEC_H
#define SQ_CODEC_H

#include "common.h"
#include "task.h"

/** The Confluent framing: magic byte + 4-byte schema id. */
#define SQ_CODEC_MAGIC      0x00
#define SQ_CODEC_HEADER_LEN 5

/** Stable catalog ids of the current schemas (never reused). */
#define SQ_SCHEMA_ID_TASK   7 /* task-v3.avsc */
#define SQ_SCHEMA_ID_RESULT 8 /* result-v3.avsc */
#define SQ_SCHEMA_ID_EVENT  9 /* event-v2.avsc */
/**
 * The previous versions, which the encoders still write whenever a record
 * does not use what later versions added (a task with no not_before and
 * no workflow, a result outside a workflow that is not CANCELLED, an
 * event outside a workflow): the oldest id whose fields hold the record,
 * same bytes, so readers a version or two behind keep reading them
 * (schemas/README.md, "Compact ids").
 */
#define SQ_SCHEMA_ID_TASK_V1   1 /* task.avsc */
#define SQ_SCHEMA_ID_RESULT_V1 2 /* result.avsc */
#define SQ_SCHEMA_ID_EVENT_V1  3 /* event.avsc */
#define SQ_SCHEMA_ID_TASK_V2   5 /* task-v2.avsc: adds not_before */
#define SQ_SCHEMA_ID_RESULT_V2 6 /* result-v2.avsc: adds CANCELLED */

typedef struct sq_codec_s sq_codec_t;
typedef struct sq_schema_registry_s sq_schema_registry_t;

/** The record kinds, indexes of the registry's writer ids. */
typedef enum {
        SQ_CODEC_KIND_TASK,
        SQ_CODEC_KIND_RESULT,
        SQ_CODEC_KIND_EVENT,
} sq_codec_kind_t;

/**
 * @brief Creates a codec: parses the embedded schema catalog.
 * @returns a handle (free with sq_codec_destroy()) or NULL with @p errstr
 *          set.
 */
sq_codec_t *sq_codec_new(char *errstr, size_t errstr_size);
/** @brief Frees a codec; NULL is a no-op. */
void sq_codec_destroy(sq_codec_t *codec);

/**
 * @brief Schema Registry mode: from now on a schema id in a record is the
 *        registry's (never the catalog's), a writer schema not seen yet is
 *        fetched from @p reg and resolved to the current schema, and what
 *        the codec writes is framed with the ids sq_codec_register_schema()
 *        recorded in @p reg.
 * @param reg borrowed; outlives the codec.
 */
void sq_codec_use_registry(sq_codec_t *codec, sq_schema_registry_t *reg);

/**
 * @brief output.format=json: sq_codec_encode_result() and
 *        sq_codec_encode_event() write the JSON wire form (docs/wire.md)
 *        instead of framed Avro. Decoding reads both forms always.
 */
void sq_codec_set_json_output(sq_codec_t *codec, bool json);

/**
 * @brief Registers the current schema of @p kind under the subject
 *        "<topic>-value" (TopicNameStrategy) and, the first time for this
 *        kind, records its id in @p reg as the id records of that kind are
 *        written with.
 * @param idp optional: set to the id.
 * @returns SQ_OK, SQ_ERR_UNAVAILABLE (try again) or SQ_ERR_CONFIG (the
 *          registry refused it), with @p errstr naming the URL and status.
 */
sq_err_t sq_codec_register_schema(sq_schema_registry_t *reg,
                                  sq_codec_kind_t kind, const char *topic,
                                  uint32_t *idp, char *errstr,
                                  size_t errstr_size);

/**
 * @brief Registry mode: makes sure the writer schema of a framed record is
 *        known (fetched and resolved, or refused with its reason) before the
 *        record is decoded, so a registry that does not answer delays the
 *        record instead of refusing it. Without a registry, a no-op.
 * @returns SQ_ERR_UNAVAILABLE (keep the record, try again later) with
 *          @p errstr set, else SQ_OK (the decode reports any other
 *          problem).
 */
sq_err_t sq_codec_prepare(sq_codec_t *codec, const void *buf, size_t len,
                          char *errstr, size_t errstr_size);

/**
 * @brief Registry mode: whether decoding this record would ask the
 *        registry (a framed record of an id the codec has not seen), so a
 *        caller that knows the registry is failing can hold it without a
 *        request. Without a registry, false.
 */
bool sq_codec_needs_registry(const sq_codec_t *codec, const void *buf,
                             size_t len);

/**
 * @brief Decodes a task from a Kafka record value: Confluent-framed Avro
 *        (any task schema id of the catalog) or JSON.
 * @param buf borrowed, @p len bytes.
 * @param taskp on success, a new task (caller owns, sq_task_destroy()).
 * @returns SQ_OK, or SQ_ERR_DECODE with @p errstr a sentence naming what is
 *          wrong (the field, the byte offset, the schema id); in registry
 *          mode also SQ_ERR_UNAVAILABLE when the writer schema could not be
 *          fetched (a transient failure: the record is not at fault).
 */
sq_err_t sq_codec_decode_task(sq_codec_t *codec, const void *buf, size_t len,
                              sq_task_t **taskp, char *errstr,
                              size_t errstr_size);

/**
 * @brief The id of a task record that sq_codec_decode_task() refused, when
 *        it can be read: the "id" string of a JSON object, or the first
 *        field (every task schema's `id`) of a Confluent-framed record
 *        whose schema id is a task schema of the catalog.
 * @param buf borrowed, @p len bytes.
 * @param out set to the id, NUL-terminated, when it fits in @p size.
 * @returns true with @p out set to a non-empty UTF-8 id, else false.
 */
bool sq_codec_peek_task_id(const void *buf, size_t len, char *out, size_t size);

/**
 * @brief Encodes a value into the codec's output buffer, Confluent-framed.
 * @param bufp set to a buffer owned by the codec, valid until the next
 *             encode call on the same codec (copy it, or produce with
 *             RD_KAFKA_MSG_F_COPY).
 * @returns SQ_OK or SQ_ERR_ENCODE with @p errstr set.
 */
sq_err_t sq_codec_encode_task(sq_codec_t *codec, const sq_task_t *task,
                              const void **bufp, size_t *lenp, char *errstr,
                              size_t errstr_size);
sq_err_t sq_codec_encode_result(sq_codec_t *codec, const sq_result_t *result,
                                const void **bufp, size_t *lenp, char *errstr,
                                size_t errstr_size);
sq_err_t sq_codec_encode_event(sq_codec_t *codec, const sq_event_t *event,
                               const void **bufp, size_t *lenp, char *errstr,
                               size_t errstr_size);

/**
 * @brief Decodes a Result / Event (caller owns the new value): Confluent-
 *        framed Avro, or the JSON wire form when the value's first
 *        non-blank byte is '{'. Used by the producer CLI (wait, replay)
 *        and the tests.
 */
sq_err_t sq_codec_decode_result(sq_codec_t *codec, const void *buf, size_t len,
                                sq_result_t **resultp, char *errstr,
                                size_t errstr_size);
sq_err_t sq_codec_decode_event(sq_codec_t *codec, const void *buf, size_t len,
                               sq_event_t **eventp, char *errstr,
                               size_t errstr_size);

/**
 * @brief Parses one JSON task object (the text form) without the framing
 *        checks. Same rules as the JSON branch of sq_codec_decode_task().
 */
sq_err_t sq_codec_task_from_json(const char *json, size_t len,
                                 sq_task_t **taskp, char *errstr,
                                 size_t errstr_size);

/**
 * @brief Renders a result / event / task as one line of JSON (no newline),
 *        for `swarmq-producer replay` and the status page. Bytes fields
 *        are rendered as UTF-8 strings when valid UTF-8, else base64 under
 *        "<field>_base64".
 * @returns a new string (caller owns, sq_free()).
 */
char *sq_codec_result_to_json(const sq_result_t *result);
char *sq_codec_event_to_json(const sq_event_t *event);
char *sq_codec_task_to_json(const sq_task_t *task);

#endif /* SQ_CODEC_H */
