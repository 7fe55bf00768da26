/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schema_registry.h: a client of a Confluent-compatible Schema Registry
 * (the REST API that Confluent Schema Registry, Apicurio Registry's
 * /apis/ccompat/v7 and Redpanda serve): register a schema under a subject,
 * fetch a schema by id.
 *
 * DESIGN
 *   One client is shared by every thread of a process (the instance's
 *   codecs, libswarmq's producer): its id -> schema cache is behind a mutex,
 *   and each request runs on an easy handle of its own, so no lock is held
 *   across the network. The cache is bounded (schema.registry.cache.max
 *   entries, oldest dropped first); a schema of an id never changes, so
 *   entries never go stale. Errors are split so callers can tell what to do
 *   with a record: SQ_ERR_UNAVAILABLE is transient (no answer, a timeout,
 *   HTTP 5xx, 408, 429, 401, 403: the registry or its credentials must be
 *   fixed; retry, keep the record), anything else is final (404: no such
 *   id; another 4xx; a reply that is not a schema). Every error sentence
 *   names the URL and the HTTP status and body.
 *
 *   It also holds the ids this process frames its own records with, per
 *   record kind (index 0..SQ_SCHEMA_REGISTRY_KINDS-1, the codec's order
 *   Task, Result, Event), set once they are registered and read by every
 *   codec that writes through this registry.
 */
#ifndef SQ_SCHEMA_REGISTRY_H
#define SQ_SCHEMA_REGISTRY_H

#include "common.h"

#define SQ_SCHEMA_REGISTRY_KINDS 3

typedef struct sq_schema_registry_s sq_schema_registry_t;

/** What a client connects with (all strings borrowed for the call). */
typedef struct sq_schema_registry_conf_s {
        const char *url;         /**< base URL, e.g. http://h:8081 */
        const char *userinfo;    /**< "user:password" for basic auth, NULL */
        const char *ca_location; /**< PEM CA file for https, NULL: system */
        int timeout_ms;          /**< per request (connect + transfer) */
        int cache_max;           /**< schemas kept by id */
} sq_schema_registry_conf_t;

/**
 * @brief Creates a client (no request is sent).
 * @returns a client (free with sq_schema_registry_destroy()) or NULL with
 *          @p errstr naming the bad setting.
 */
sq_schema_registry_t *
sq_schema_registry_new(const sq_schema_registry_conf_t *conf, char *errstr,
                       size_t errstr_size);
/** @brief Frees a client; NULL is a no-op. */
void sq_schema_registry_destroy(sq_schema_registry_t *reg);

/** @brief The base URL (borrowed, valid for the client's life). */
const char *sq_schema_registry_url(const sq_schema_registry_t *reg);

/**
 * @brief Registers an Avro schema under @p subject (POST
 *        /subjects/{subject}/versions); a schema registered before gets its
 *        existing id.
 * @param schema_json borrowed: the schema's JSON text.
 * @param idp set to the registry's id of the schema.
 * @returns SQ_OK, SQ_ERR_UNAVAILABLE (try again), or SQ_ERR_CONFIG (the
 *          registry refused it, e.g. 409 incompatible) with @p errstr set.
 * @locality any thread.
 */
sq_err_t sq_schema_registry_register(sq_schema_registry_t *reg,
                                     const char *subject,
                                     const char *schema_json, uint32_t *idp,
                                     char *errstr, size_t errstr_size);

/**
 * @brief The schema of @p id (GET /schemas/ids/{id}), from the cache or
 *        the registry.
 * @param jsonp set to the schema's JSON text (caller owns, sq_free()).
 * @returns SQ_OK; SQ_ERR_NOT_FOUND (the registry has no such id),
 *          SQ_ERR_DECODE (not an Avro schema, a reply that is not one) or
 *          SQ_ERR_UNAVAILABLE (try again), with @p errstr set.
 * @locality any thread.
 */
sq_err_t sq_schema_registry_get(sq_schema_registry_t *reg, uint32_t id,
                                char **jsonp, char *errstr, size_t errstr_size);

/** @brief Records the id @p kind's records are written with (atomic). */
void sq_schema_registry_set_writer_id(sq_schema_registry_t *reg, int kind,
                                      uint32_t id);
/** @brief The id set for @p kind, 0 while it is not registered. */
uint32_t sq_schema_registry_writer_id(const sq_schema_registry_t *reg,
                                      int kind);

/** @brief How many schemas the cache holds (for tests and /status). */
size_t sq_schema_registry_cached(sq_schema_registry_t *reg);

#endif /* SQ_SCHEMA_REGISTRY_H */
