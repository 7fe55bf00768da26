/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cancels.c: the set of recently cancelled task ids and the control
 * record's JSON (see cancels.h).
 */
#include "cancels.h"
#include "ttlmap.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/** A task id longer than this is not one (ids are short strings). */
#define CANCEL_ID_MAX 4096

struct sq_cancels_s {
        pthread_mutex_t lock;
        sq_ttlmap_t *map;    /* under lock */
        atomic_size_t count; /* the map's count, read without the lock */
};

sq_cancels_t *sq_cancels_new(size_t max_entries, int64_t ttl_us) {
        sq_cancels_t *cancels = sq_calloc(1, sizeof(*cancels));

        pthread_mutex_init(&cancels->lock, NULL);
        cancels->map = sq_ttlmap_new(max_entries, ttl_us);
        return cancels;
}

void sq_cancels_destroy(sq_cancels_t *cancels) {
        if (!cancels)
                return;
        sq_ttlmap_destroy(cancels->map);
        pthread_mutex_destroy(&cancels->lock);
        sq_free(cancels);
}

bool sq_cancels_add(sq_cancels_t *cancels, const char *task_id,
                    int64_t now_us) {
        bool added;

        pthread_mutex_lock(&cancels->lock);
        added = sq_ttlmap_insert(cancels->map, task_id, now_us);
        atomic_store(&cancels->count, sq_ttlmap_count(cancels->map));
        pthread_mutex_unlock(&cancels->lock);
        return added;
}

bool sq_cancels_contains(sq_cancels_t *cancels, const char *task_id,
                         int64_t now_us) {
        bool found;

        /* The common case, no cancellation within the TTL: no lock. A
         * cancel added concurrently is seen by the next lookup. */
        if (atomic_load_explicit(&cancels->count, memory_order_acquire) == 0)
                return false;
        pthread_mutex_lock(&cancels->lock);
        found = sq_ttlmap_contains(cancels->map, task_id, now_us);
        /* Expired ids are dropped by the lookup: the count may fall to 0. */
        atomic_store(&cancels->count, sq_ttlmap_count(cancels->map));
        pthread_mutex_unlock(&cancels->lock);
        return found;
}

size_t sq_cancels_count(sq_cancels_t *cancels) {
        return atomic_load(&cancels->count);
}

const char *sq_cancels_task(sq_cancels_t *cancels, const sq_task_t *task,
                            int64_t now_us) {
        if (sq_cancels_contains(cancels, task->id, now_us))
                return "by its id";
        if (task->workflow_id &&
            sq_cancels_contains(cancels, task->workflow_id, now_us))
                return "with its workflow";
        return NULL;
}

sq_err_t sq_cancels_parse(const void *buf, size_t len, char **idp, char *errstr,
                          size_t errstr_size) {
        json_t *root = NULL, *id;
        json_error_t jerr;
        sq_err_t err = SQ_ERR_DECODE;

        root = json_loadb(buf, len, 0, &jerr);
        if (!root) {
                sq_errstr_set(errstr, errstr_size,
                              "control record: not JSON (line %d, column "
                              "%d: %s)",
                              jerr.line, jerr.column, jerr.text);
                goto done;
        }
        id = json_object_get(root, "cancel");
        if (!json_is_string(id) || json_string_length(id) == 0 ||
            json_string_length(id) > CANCEL_ID_MAX ||
            memchr(json_string_value(id), '\0', json_string_length(id))) {
                sq_errstr_set(errstr, errstr_size,
                              "control record: expected an object with "
                              "\"cancel\": a non-empty task id string (at "
                              "most %d bytes, no NUL)",
                              CANCEL_ID_MAX);
                goto done;
        }
        *idp = sq_strdup(json_string_value(id));
        err  = SQ_OK;
done:
        json_decref(root);
        return err;
}

char *sq_cancels_record(const char *task_id, const char *by, int64_t at_ms) {
        json_t *obj = json_object();
        char *text, *copy;

        json_object_set_new(obj, "cancel", json_string(task_id));
        json_object_set_new(obj, "at", json_integer(at_ms));
        json_object_set_new(obj, "by", json_string(by));
        text = json_dumps(obj, JSON_COMPACT);
        sq_assert(text);
        copy = sq_strdup(text);
        free(text); /* jansson's allocator */
        json_decref(obj);
        return copy;
}
