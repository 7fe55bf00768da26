/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schema_registry.c: the Schema Registry client (schema_registry.h) on
 * libcurl and jansson.
 *
 * DESIGN
 *   Requests: one curl easy handle per request, made and freed in the
 *   calling thread, so the client needs no lock for the network and a slow
 *   registry blocks only the caller (a bounded wait: timeout_ms). Bodies
 *   received are kept in a buffer with a hard maximum (REPLY_MAX): a reply
 *   larger than any schema is an error, not an allocation. libcurl's global
 *   state is set up once per process (pthread_once).
 *
 *   Cache: a fixed array of cache_max slots used as a ring: a new id takes
 *   the next slot, dropping the oldest entry when the ring is full. Lookups
 *   are linear; the ring holds the few schemas a deployment has (tens), and
 *   a lookup happens only for an id a codec has not parsed yet.
 */
#include "schema_registry.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/** The largest reply body read: far above any schema. */
#define REPLY_MAX (4 * 1024 * 1024)
/** How much of an error body an error sentence quotes. */
#define BODY_QUOTE   200
#define CONTENT_TYPE "application/vnd.schemaregistry.v1+json"

typedef struct cache_entry_s {
        uint32_t id;
        char *json; /* NULL: free slot */
} cache_entry_t;

struct sq_schema_registry_s {
        char *url; /* without a trailing '/' */
        char *userinfo;
        char *ca_location;
        long timeout_ms;

        pthread_mutex_t lock; /* the cache */
        cache_entry_t *cache;
        size_t cache_max;
        size_t cache_next; /* the slot the next new id takes */

        _Atomic uint32_t writer_ids[SQ_SCHEMA_REGISTRY_KINDS];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void) {
        curl_init_rc = curl_global_init(CURL_GLOBAL_ALL);
}

sq_schema_registry_t *
sq_schema_registry_new(const sq_schema_registry_conf_t *conf, char *errstr,
                       size_t errstr_size) {
        sq_schema_registry_t *reg;
        size_t len;

        if (!conf->url || (strncmp(conf->url, "http://", 7) &&
                           strncmp(conf->url, "https://", 8))) {
                sq_errstr_set(errstr, errstr_size,
                              "schema.registry.url \"%s\" is not an http:// "
                              "or https:// URL",
                              conf->url ? conf->url : "");
                return NULL;
        }
        if (conf->timeout_ms < 1 || conf->cache_max < 1) {
                sq_errstr_set(errstr, errstr_size,
                              "schema registry client: timeout %d ms and "
                              "cache size %d must be positive",
                              conf->timeout_ms, conf->cache_max);
                return NULL;
        }
        pthread_once(&curl_once, curl_init);
        if (curl_init_rc != CURLE_OK) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot initialize libcurl: %s",
                              curl_easy_strerror(curl_init_rc));
                return NULL;
        }
        reg = sq_calloc(1, sizeof(*reg));
        len = strlen(conf->url);
        while (len > 0 && conf->url[len - 1] == '/')
                len--;
        reg->url         = sq_strndup(conf->url, len);
        reg->userinfo    = conf->userinfo && *conf->userinfo
                               ? sq_strdup(conf->userinfo)
                               : NULL;
        reg->ca_location = conf->ca_location && *conf->ca_location
                               ? sq_strdup(conf->ca_location)
                               : NULL;
        reg->timeout_ms  = conf->timeout_ms;
        reg->cache_max   = (size_t)conf->cache_max;
        reg->cache       = sq_calloc(reg->cache_max, sizeof(*reg->cache));
        pthread_mutex_init(&reg->lock, NULL);
        return reg;
}

void sq_schema_registry_destroy(sq_schema_registry_t *reg) {
        size_t i;

        if (!reg)
                return;
        for (i = 0; i < reg->cache_max; i++)
                sq_free(reg->cache[i].json);
        sq_free(reg->cache);
        pthread_mutex_destroy(&reg->lock);
        sq_free(reg->url);
        sq_free(reg->userinfo);
        sq_free(reg->ca_location);
        sq_free(reg);
}

const char *sq_schema_registry_url(const sq_schema_registry_t *reg) {
        return reg->url;
}

void sq_schema_registry_set_writer_id(sq_schema_registry_t *reg, int kind,
                                      uint32_t id) {
        sq_assert(kind >= 0 && kind < SQ_SCHEMA_REGISTRY_KINDS);
        atomic_store(&reg->writer_ids[kind], id);
}

uint32_t sq_schema_registry_writer_id(const sq_schema_registry_t *reg,
                                      int kind) {
        sq_assert(kind >= 0 && kind < SQ_SCHEMA_REGISTRY_KINDS);
        return atomic_load(&((sq_schema_registry_t *)reg)->writer_ids[kind]);
}

/*
 * HTTP
 */

/* A reply body, bounded by REPLY_MAX. */
typedef struct reply_s {
        char *buf;
        size_t len;
        bool too_big;
} reply_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque) {
        reply_t *reply = opaque;
        size_t n       = size * nmemb;

        if (reply->len + n > REPLY_MAX) {
                reply->too_big = true;
                return 0; /* curl stops with CURLE_WRITE_ERROR */
        }
        reply->buf = sq_realloc(reply->buf, reply->len + n + 1);
        memcpy(reply->buf + reply->len, data, n);
        reply->len += n;
        reply->buf[reply->len] = '\0';
        return n;
}

/* Whether an HTTP status means "the registry cannot serve this now", so a
 * record waiting on it must be kept and retried. */
static bool status_transient(long status) {
        return status >= 500 || status == 408 || status == 429 ||
               status == 401 || status == 403;
}

/**
 * Sends one request to reg->url + @p path (a POST of @p body when non-NULL,
 * else a GET). @returns SQ_OK with @p statusp set (any status) and @p reply
 * filled, or SQ_ERR_UNAVAILABLE when no HTTP answer came.
 */
static sq_err_t request(sq_schema_registry_t *reg, const char *path,
                        const char *body, long *statusp, reply_t *reply,
                        char *url, size_t url_size, char *errstr,
                        size_t errstr_size) {
        struct curl_slist *headers     = NULL;
        char curl_err[CURL_ERROR_SIZE] = "";
        CURL *curl;
        CURLcode rc;

        snprintf(url, url_size, "%s%s", reg->url, path);
        if (!(curl = curl_easy_init())) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot create a libcurl handle for %s", url);
                return SQ_ERR_UNAVAILABLE;
        }
        headers = curl_slist_append(headers, "Accept: " CONTENT_TYPE
                                             ", application/json");
        if (body)
                headers =
                    curl_slist_append(headers, "Content-Type: " CONTENT_TYPE);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, reg->timeout_ms);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, reg->timeout_ms);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, reply);
        curl_easy_setopt(curl, CURLOPT_USERAGENT, "swarmq/" SWARMQ_VERSION);
        if (body)
                curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        if (reg->userinfo) {
                curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
                curl_easy_setopt(curl, CURLOPT_USERPWD, reg->userinfo);
        }
        if (reg->ca_location)
                curl_easy_setopt(curl, CURLOPT_CAINFO, reg->ca_location);
        rc = curl_easy_perform(curl);
        if (rc == CURLE_OK)
                curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, statusp);
        curl_easy_cleanup(curl);
        curl_slist_free_all(headers);
        if (rc != CURLE_OK) {
                if (reply->too_big)
                        sq_errstr_set(errstr, errstr_size,
                                      "the schema registry's reply to %s %s "
                                      "is over %d bytes",
                                      body ? "POST" : "GET", url, REPLY_MAX);
                else
                        sq_errstr_set(errstr, errstr_size,
                                      "the schema registry at %s did not "
                                      "answer %s %s: %s",
                                      reg->url, body ? "POST" : "GET", url,
                                      *curl_err ? curl_err
                                                : curl_easy_strerror(rc));
                return SQ_ERR_UNAVAILABLE;
        }
        return SQ_OK;
}

/* "HTTP 404: {...}" with the body cut to BODY_QUOTE bytes. */
static void status_sentence(char *buf, size_t size, long status,
                            const reply_t *reply) {
        snprintf(buf, size, "HTTP %ld%s%.*s%s", status,
                 reply->len ? ": " : " (empty body)",
                 (int)SQ_MIN(reply->len, (size_t)BODY_QUOTE),
                 reply->buf ? reply->buf : "",
                 reply->len > BODY_QUOTE ? "..." : "");
}

/*
 * Register
 */

sq_err_t sq_schema_registry_register(sq_schema_registry_t *reg,
                                     const char *subject,
                                     const char *schema_json, uint32_t *idp,
                                     char *errstr, size_t errstr_size) {
        json_t *req = NULL, *root = NULL, *id;
        char *body = NULL, *escaped = NULL, path[512], url[1024], what[512];
        reply_t reply = {0};
        long status   = 0;
        sq_err_t err;
        CURL *curl;

        if (!(curl = curl_easy_init())) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot create a libcurl handle");
                return SQ_ERR_UNAVAILABLE;
        }
        escaped = curl_easy_escape(curl, subject, 0);
        curl_easy_cleanup(curl);
        snprintf(path, sizeof(path), "/subjects/%s/versions",
                 escaped ? escaped : subject);
        curl_free(escaped);

        req = json_pack("{s:s, s:s}", "schema", schema_json, "schemaType",
                        "AVRO");
        if (!req || !(body = json_dumps(req, JSON_COMPACT))) {
                sq_errstr_set(errstr, errstr_size,
                              "the schema for subject %s is not valid UTF-8",
                              subject);
                err = SQ_ERR_INVALID_ARG;
                goto done;
        }
        err = request(reg, path, body, &status, &reply, url, sizeof(url),
                      errstr, errstr_size);
        if (err != SQ_OK)
                goto done;
        status_sentence(what, sizeof(what), status, &reply);
        if (status != 200) {
                sq_errstr_set(errstr, errstr_size,
                              "the schema registry refused to register the "
                              "schema under subject %s (POST %s): %s",
                              subject, url, what);
                err = status_transient(status) ? SQ_ERR_UNAVAILABLE
                                               : SQ_ERR_CONFIG;
                goto done;
        }
        root = reply.buf ? json_loadb(reply.buf, reply.len, 0, NULL) : NULL;
        id   = json_object_get(root, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 1 ||
            json_integer_value(id) > (json_int_t)UINT32_MAX) {
                sq_errstr_set(errstr, errstr_size,
                              "the schema registry's reply to POST %s has no "
                              "schema id (\"id\", a positive 32-bit "
                              "integer): %s",
                              url, what);
                err = SQ_ERR_CONFIG;
                goto done;
        }
        *idp = (uint32_t)json_integer_value(id);
        err  = SQ_OK;
done:
        json_decref(req);
        json_decref(root);
        free(body); /* jansson's malloc */
        sq_free(reply.buf);
        return err;
}

/*
 * Get by id
 */

static char *cache_get(sq_schema_registry_t *reg, uint32_t id) {
        char *json = NULL;
        size_t i;

        pthread_mutex_lock(&reg->lock);
        for (i = 0; i < reg->cache_max; i++) {
                if (reg->cache[i].json && reg->cache[i].id == id) {
                        json = sq_strdup(reg->cache[i].json);
                        break;
                }
        }
        pthread_mutex_unlock(&reg->lock);
        return json;
}

static void cache_put(sq_schema_registry_t *reg, uint32_t id,
                      const char *json) {
        cache_entry_t *slot;
        size_t i;

        pthread_mutex_lock(&reg->lock);
        for (i = 0; i < reg->cache_max; i++) {
                if (reg->cache[i].json && reg->cache[i].id == id)
                        goto done; /* another thread fetched it too */
        }
        slot            = &reg->cache[reg->cache_next];
        reg->cache_next = (reg->cache_next + 1) % reg->cache_max;
        sq_free(slot->json);
        slot->id   = id;
        slot->json = sq_strdup(json);
done:
        pthread_mutex_unlock(&reg->lock);
}

size_t sq_schema_registry_cached(sq_schema_registry_t *reg) {
        size_t i, n = 0;

        pthread_mutex_lock(&reg->lock);
        for (i = 0; i < reg->cache_max; i++)
                n += reg->cache[i].json != NULL;
        pthread_mutex_unlock(&reg->lock);
        return n;
}

sq_err_t sq_schema_registry_get(sq_schema_registry_t *reg, uint32_t id,
                                char **jsonp, char *errstr,
                                size_t errstr_size) {
        json_t *root = NULL, *schema, *type;
        char path[64], url[1024], what[512];
        reply_t reply = {0};
        long status   = 0;
        sq_err_t err;

        if ((*jsonp = cache_get(reg, id)))
                return SQ_OK;
        snprintf(path, sizeof(path), "/schemas/ids/%" PRIu32, id);
        err = request(reg, path, NULL, &status, &reply, url, sizeof(url),
                      errstr, errstr_size);
        if (err != SQ_OK)
                goto done;
        status_sentence(what, sizeof(what), status, &reply);
        if (status != 200) {
                sq_errstr_set(errstr, errstr_size,
                              "schema id %" PRIu32 " %s the schema registry "
                              "(GET %s): %s",
                              id,
                              status == 404 ? "is unknown to"
                                            : "could not be read from",
                              url, what);
                err = status == 404              ? SQ_ERR_NOT_FOUND
                      : status_transient(status) ? SQ_ERR_UNAVAILABLE
                                                 : SQ_ERR_DECODE;
                goto done;
        }
        root   = reply.buf ? json_loadb(reply.buf, reply.len, 0, NULL) : NULL;
        schema = json_object_get(root, "schema");
        type   = json_object_get(root, "schemaType");
        if (!json_is_string(schema)) {
                sq_errstr_set(errstr, errstr_size,
                              "the schema registry's reply to GET %s has no "
                              "\"schema\" string: %s",
                              url, what);
                err = SQ_ERR_DECODE;
                goto done;
        }
        if (type && (!json_is_string(type) ||
                     strcmp(json_string_value(type), "AVRO"))) {
                sq_errstr_set(errstr, errstr_size,
                              "schema id %" PRIu32 " in the schema registry "
                              "(GET %s) is a %s schema, not Avro",
                              id, url,
                              json_is_string(type) ? json_string_value(type)
                                                   : "non-Avro");
                err = SQ_ERR_DECODE;
                goto done;
        }
        cache_put(reg, id, json_string_value(schema));
        *jsonp = sq_strdup(json_string_value(schema));
        err    = SQ_OK;
done:
        json_decref(root);
        sq_free(reply.buf);
        return err;
}
