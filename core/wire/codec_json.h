/* SPDX-License-Identifier: Apache-2.0 */
/*
 * codec_json.h: private interface between codec.c (Avro) and codec_json.c
 * (the JSON task form, JSON renderings, UTF-8). Not for other modules:
 * codec.h is the public contract.
 *
 * DESIGN
 *   The JSON task parser is field-table driven; codec.c reuses the same
 *   per-field setter to apply Avro schema defaults (which are JSON values)
 *   to fields an older writer schema lacks, so "what a default means" is
 *   defined once. Everything here is stateless and thread-safe.
 */
#ifndef SQ_CODEC_JSON_H
#define SQ_CODEC_JSON_H

#include <jansson.h>

#include "common.h"
#include "task.h"

/**
 * @brief Sets one task field from a JSON value, with the JSON task rules
 *        (priority as a name, payload a UTF-8 string, ...).
 * @param task borrowed; the field is replaced.
 * @param name the field name, e.g. "capabilities" (borrowed).
 * @param val borrowed.
 * @returns SQ_OK, SQ_ERR_NOT_FOUND for an unknown field name, or
 *          SQ_ERR_DECODE with @p errstr naming the field and the expected
 *          type.
 */
sq_err_t sq_codec_json_task_set(sq_task_t *task, const char *name,
                                const json_t *val, char *errstr,
                                size_t errstr_size);

/**
 * @brief The JSON wire form of a result / event (output.format=json): the
 *        schema's fields, bytes as "<field>_base64", times as "<field>_ms".
 * @returns a new string (caller owns, sq_free()).
 */
char *sq_codec_result_to_wire_json(const sq_result_t *result);
char *sq_codec_event_to_wire_json(const sq_event_t *event);

/**
 * @brief Parses the JSON wire form of a result / event.
 * @returns SQ_OK (caller owns the new value), or SQ_ERR_DECODE with
 *          @p errstr naming the field and what it expected.
 */
sq_err_t sq_codec_result_from_wire_json(const void *buf, size_t len,
                                        sq_result_t **resultp, char *errstr,
                                        size_t errstr_size);
sq_err_t sq_codec_event_from_wire_json(const void *buf, size_t len,
                                       sq_event_t **eventp, char *errstr,
                                       size_t errstr_size);

/** @returns true if @p len bytes at @p buf are valid UTF-8 without NULs. */
bool sq_codec_utf8_valid(const void *buf, size_t len);

#endif /* SQ_CODEC_JSON_H */
