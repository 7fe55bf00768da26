/* SPDX-License-Identifier: Apache-2.0 */
/*
 * codec_json.c: the JSON side of the codec: the JSON task form (what kcat
 * or a shell script writes to the tasks topic), one-line JSON renderings of
 * tasks, results and events, and the UTF-8 check they need (base64 is
 * common.c's, shared with the offset map).
 *
 * DESIGN
 *   A JSON task has the Avro field names. Parsing is driven by one field
 *   table (task_fields[]); an unknown field is an error so a typo such as
 *   "paylod" is reported instead of silently dropped. The same setters
 *   apply Avro schema defaults for codec.c (sq_codec_json_task_set()).
 *   No state: every function is reentrant. jansson allocates with malloc;
 *   strings handed to callers are copied into sq_malloc() memory so they
 *   pair with sq_free().
 */
#include "codec.h"
#include "codec_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * UTF-8
 */

bool sq_codec_utf8_valid(const void *buf, size_t len) {
        const unsigned char *s = buf;
        size_t i               = 0;

        while (i < len) {
                unsigned char c = s[i];
                uint32_t cp;
                size_t n, k;

                if (c == 0)
                        return false;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if ((c & 0xe0) == 0xc0) {
                        n  = 1;
                        cp = c & 0x1f;
                } else if ((c & 0xf0) == 0xe0) {
                        n  = 2;
                        cp = c & 0x0f;
                } else if ((c & 0xf8) == 0xf0) {
                        n  = 3;
                        cp = c & 0x07;
                } else {
                        return false;
                }
                if (len - i <= n)
                        return false;
                for (k = 1; k <= n; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                /* Overlong forms, surrogates, beyond U+10FFFF. */
                if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
                    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += n + 1;
        }
        return true;
}

/*
 * JSON task parsing
 */

static const char *json_type_name(const json_t *val) {
        switch (json_typeof(val)) {
        case JSON_OBJECT:
                return "an object";
        case JSON_ARRAY:
                return "an array";
        case JSON_STRING:
                return "a string";
        case JSON_INTEGER:
                return "an integer";
        case JSON_REAL:
                return "a real number";
        case JSON_TRUE:
        case JSON_FALSE:
                return "a boolean";
        case JSON_NULL:
                return "null";
        }
        return "an unknown JSON type";
}

static sq_err_t type_error(const char *name, const char *expected,
                           const json_t *val, char *errstr,
                           size_t errstr_size) {
        sq_errstr_set(errstr, errstr_size, "field \"%s\": expected %s, got %s",
                      name, expected, json_type_name(val));
        return SQ_ERR_DECODE;
}

/* A required string: non-empty. */
static sq_err_t set_id_or_type(char **dstp, const char *name, const json_t *val,
                               char *errstr, size_t errstr_size) {
        if (!json_is_string(val))
                return type_error(name, "a string", val, errstr, errstr_size);
        if (json_string_length(val) == 0) {
                sq_errstr_set(errstr, errstr_size,
                              "field \"%s\": must not be empty", name);
                return SQ_ERR_DECODE;
        }
        sq_free(*dstp);
        *dstp = sq_strdup(json_string_value(val));
        return SQ_OK;
}

static sq_err_t set_int(const char *name, const json_t *val, int64_t min,
                        int64_t max, int64_t *valp, char *errstr,
                        size_t errstr_size) {
        json_int_t v;

        if (!json_is_integer(val))
                return type_error(name, "an integer", val, errstr, errstr_size);
        v = json_integer_value(val);
        if (v < min || v > max) {
                sq_errstr_set(errstr, errstr_size,
                              "field \"%s\": %" PRId64
                              " is out of range (%" PRId64 "..%" PRId64 ")",
                              name, (int64_t)v, min, max);
                return SQ_ERR_DECODE;
        }
        *valp = (int64_t)v;
        return SQ_OK;
}

static sq_err_t f_id(sq_task_t *task, const char *name, const json_t *val,
                     char *errstr, size_t errstr_size) {
        return set_id_or_type(&task->id, name, val, errstr, errstr_size);
}

static sq_err_t f_type(sq_task_t *task, const char *name, const json_t *val,
                       char *errstr, size_t errstr_size) {
        return set_id_or_type(&task->type, name, val, errstr, errstr_size);
}

static sq_err_t f_priority(sq_task_t *task, const char *name, const json_t *val,
                           char *errstr, size_t errstr_size) {
        if (!json_is_string(val))
                return type_error(name, "a priority name string", val, errstr,
                                  errstr_size);
        if (sq_priority_parse(json_string_value(val), &task->priority) !=
            SQ_OK) {
                sq_errstr_set(errstr, errstr_size,
                              "field \"%s\": unknown priority \"%s\" "
                              "(expected LOW, NORMAL, HIGH or CRITICAL)",
                              name, json_string_value(val));
                return SQ_ERR_DECODE;
        }
        return SQ_OK;
}

static void clear_capabilities(sq_task_t *task) {
        size_t i;
        for (i = 0; i < task->capabilities_cnt; i++)
                sq_free(task->capabilities[i]);
        sq_free(task->capabilities);
        task->capabilities     = NULL;
        task->capabilities_cnt = 0;
}

static sq_err_t f_capabilities(sq_task_t *task, const char *name,
                               const json_t *val, char *errstr,
                               size_t errstr_size) {
        size_t i;
        json_t *item;

        if (!json_is_array(val))
                return type_error(name, "an array of strings", val, errstr,
                                  errstr_size);
        json_array_foreach(val, i, item) {
                if (!json_is_string(item)) {
                        sq_errstr_set(errstr, errstr_size,
                                      "field \"%s\": item %zu: expected a "
                                      "string, got %s",
                                      name, i, json_type_name(item));
                        return SQ_ERR_DECODE;
                }
        }
        clear_capabilities(task);
        json_array_foreach(val, i, item)
            sq_task_add_capability(task, json_string_value(item));
        return SQ_OK;
}

static sq_err_t f_payload(sq_task_t *task, const char *name, const json_t *val,
                          char *errstr, size_t errstr_size) {
        if (!json_is_string(val))
                return type_error(name, "a UTF-8 string", val, errstr,
                                  errstr_size);
        sq_free(task->payload);
        task->payload_len = json_string_length(val);
        task->payload = sq_memdup(json_string_value(val), task->payload_len);
        return SQ_OK;
}

static sq_err_t f_payload_base64(sq_task_t *task, const char *name,
                                 const json_t *val, char *errstr,
                                 size_t errstr_size) {
        unsigned char *buf = NULL;
        size_t len         = 0;
        char why[128];

        if (!json_is_string(val))
                return type_error(name, "a base64 string", val, errstr,
                                  errstr_size);
        if (sq_base64_decode(json_string_value(val), json_string_length(val),
                             SQ_BASE64_STD, &buf, &len, why,
                             sizeof(why)) != SQ_OK) {
                sq_errstr_set(errstr, errstr_size, "field \"%s\": %s", name,
                              why);
                return SQ_ERR_DECODE;
        }
        sq_free(task->payload);
        task->payload     = buf;
        task->payload_len = len;
        return SQ_OK;
}

static sq_err_t f_key(sq_task_t *task, const char *name, const json_t *val,
                      char *errstr, size_t errstr_size) {
        if (json_is_null(val)) {
                sq_free(task->key);
                task->key = NULL;
                return SQ_OK;
        }
        if (!json_is_string(val))
                return type_error(name, "a string or null", val, errstr,
                                  errstr_size);
        sq_free(task->key);
        task->key = sq_strdup(json_string_value(val));
        return SQ_OK;
}

static sq_err_t f_created_at(sq_task_t *task, const char *name,
                             const json_t *val, char *errstr,
                             size_t errstr_size) {
        return set_int(name, val, 0, INT64_MAX, &task->created_at, errstr,
                       errstr_size);
}

static sq_err_t f_timeout_ms(sq_task_t *task, const char *name,
                             const json_t *val, char *errstr,
                             size_t errstr_size) {
        return set_int(name, val, 0, INT64_MAX, &task->timeout_ms, errstr,
                       errstr_size);
}

static sq_err_t f_max_attempts(sq_task_t *task, const char *name,
                               const json_t *val, char *errstr,
                               size_t errstr_size) {
        int64_t v;
        sq_err_t err =
            set_int(name, val, 1, INT32_MAX, &v, errstr, errstr_size);
        if (err == SQ_OK)
                task->max_attempts = (int32_t)v;
        return err;
}

static sq_err_t f_attempt(sq_task_t *task, const char *name, const json_t *val,
                          char *errstr, size_t errstr_size) {
        int64_t v;
        sq_err_t err =
            set_int(name, val, 1, INT32_MAX, &v, errstr, errstr_size);
        if (err == SQ_OK)
                task->attempt = (int32_t)v;
        return err;
}

static sq_err_t f_headers(sq_task_t *task, const char *name, const json_t *val,
                          char *errstr, size_t errstr_size) {
        const char *hname;
        json_t *hval;
        size_t i;

        if (!json_is_object(val))
                return type_error(name, "an object of strings", val, errstr,
                                  errstr_size);
        json_object_foreach((json_t *)val, hname, hval) {
                if (!json_is_string(hval)) {
                        sq_errstr_set(errstr, errstr_size,
                                      "field \"%s\": header \"%s\": expected "
                                      "a string, got %s",
                                      name, hname, json_type_name(hval));
                        return SQ_ERR_DECODE;
                }
        }
        for (i = 0; i < task->headers_cnt; i++) {
                sq_free(task->headers[i].name);
                sq_free(task->headers[i].value);
        }
        sq_free(task->headers);
        task->headers     = NULL;
        task->headers_cnt = 0;
        json_object_foreach((json_t *)val, hname, hval)
            sq_task_add_header(task, hname, json_string_value(hval));
        return SQ_OK;
}

/* Milliseconds since 1970, or null (none). */
static sq_err_t f_not_before(sq_task_t *task, const char *name,
                             const json_t *val, char *errstr,
                             size_t errstr_size) {
        if (json_is_null(val)) {
                task->not_before = 0;
                return SQ_OK;
        }
        return set_int(name, val, 0, INT64_MAX, &task->not_before, errstr,
                       errstr_size);
}

/* A string or null; @p dst is the task's field. */
static sq_err_t set_optstr(char **dst, const char *name, const json_t *val,
                           char *errstr, size_t errstr_size) {
        if (!json_is_null(val) &&
            (!json_is_string(val) || !json_string_length(val)))
                return type_error(name, "a non-empty string or null", val,
                                  errstr, errstr_size);
        sq_free(*dst);
        *dst = json_is_null(val) ? NULL : sq_strdup(json_string_value(val));
        return SQ_OK;
}

static sq_err_t f_workflow_id(sq_task_t *task, const char *name,
                              const json_t *val, char *errstr,
                              size_t errstr_size) {
        return set_optstr(&task->workflow_id, name, val, errstr, errstr_size);
}

static sq_err_t f_parent_id(sq_task_t *task, const char *name,
                            const json_t *val, char *errstr,
                            size_t errstr_size) {
        return set_optstr(&task->parent_id, name, val, errstr, errstr_size);
}

typedef sq_err_t(field_setter_t)(sq_task_t *task, const char *name,
                                 const json_t *val, char *errstr,
                                 size_t errstr_size);

static const struct {
        const char *name;
        field_setter_t *set;
} task_fields[] = {
    {"id", f_id},
    {"type", f_type},
    {"priority", f_priority},
    {"capabilities", f_capabilities},
    {"payload", f_payload},
    {"payload_base64", f_payload_base64},
    {"key", f_key},
    {"created_at", f_created_at},
    {"timeout_ms", f_timeout_ms},
    {"max_attempts", f_max_attempts},
    {"attempt", f_attempt},
    {"headers", f_headers},
    {"not_before", f_not_before},
    {"workflow_id", f_workflow_id},
    {"parent_id", f_parent_id},
};

sq_err_t sq_codec_json_task_set(sq_task_t *task, const char *name,
                                const json_t *val, char *errstr,
                                size_t errstr_size) {
        size_t i;
        for (i = 0; i < SQ_ARRAY_SIZE(task_fields); i++) {
                if (!strcmp(task_fields[i].name, name))
                        return task_fields[i].set(task, name, val, errstr,
                                                  errstr_size);
        }
        return SQ_ERR_NOT_FOUND;
}

sq_err_t sq_codec_task_from_json(const char *json, size_t len,
                                 sq_task_t **taskp, char *errstr,
                                 size_t errstr_size) {
        json_t *root    = NULL;
        sq_task_t *task = NULL;
        json_error_t jerr;
        const char *name;
        json_t *val;
        char why[256];
        sq_err_t err = SQ_ERR_DECODE;

        sq_assert(json && taskp);
        root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                sq_errstr_set(errstr, errstr_size,
                              "JSON task: syntax error at line %d, column %d "
                              "(byte offset %d): %s",
                              jerr.line, jerr.column, jerr.position, jerr.text);
                goto done;
        }
        if (!json_is_object(root)) {
                sq_errstr_set(errstr, errstr_size,
                              "JSON task: expected an object at the top "
                              "level, got %s",
                              json_type_name(root));
                goto done;
        }
        if (json_object_get(root, "payload") &&
            json_object_get(root, "payload_base64")) {
                sq_errstr_set(errstr, errstr_size,
                              "JSON task: fields \"payload\" and "
                              "\"payload_base64\" are mutually exclusive");
                goto done;
        }

        task = sq_task_new();
        json_object_foreach(root, name, val) {
                sq_err_t ferr =
                    sq_codec_json_task_set(task, name, val, why, sizeof(why));
                if (ferr == SQ_ERR_NOT_FOUND) {
                        sq_errstr_set(errstr, errstr_size,
                                      "JSON task: unknown field \"%s\" "
                                      "(known: id, type, priority, "
                                      "capabilities, payload, "
                                      "payload_base64, key, created_at, "
                                      "timeout_ms, max_attempts, attempt, "
                                      "headers, not_before, workflow_id, "
                                      "parent_id)",
                                      name);
                        goto done;
                }
                if (ferr != SQ_OK) {
                        sq_errstr_set(errstr, errstr_size, "JSON task: %s",
                                      why);
                        goto done;
                }
        }
        if (!task->id || !task->type) {
                sq_errstr_set(errstr, errstr_size,
                              "JSON task: required field \"%s\" is missing",
                              !task->id ? "id" : "type");
                goto done;
        }
        if (!json_object_get(root, "created_at"))
                task->created_at = sq_wallclock_ms();

        *taskp = task;
        task   = NULL;
        err    = SQ_OK;
done:
        sq_task_destroy(task);
        json_decref(root);
        return err;
}

/*
 * JSON renderings
 */

/* A JSON string for a C string: null for NULL; invalid UTF-8 bytes (which
 * jansson refuses) become '?', so a rendering never fails. */
static json_t *jstr(const char *str) {
        json_t *val;
        size_t len, i;
        char *copy;

        if (!str)
                return json_null();
        len = strlen(str);
        if (sq_codec_utf8_valid(str, len))
                return json_stringn(str, len);
        copy = sq_strndup(str, len);
        for (i = 0; i < len; i++) {
                if ((unsigned char)copy[i] >= 0x80)
                        copy[i] = '?';
        }
        val = json_stringn(copy, len);
        sq_free(copy);
        return val;
}

static void set_new(json_t *obj, const char *name, json_t *val) {
        sq_assert(val); /* jansson returns NULL only on out of memory */
        json_object_set_new(obj, name, val);
}

/* Bytes as "<name>" (valid UTF-8) or "<name>_base64". */
static void set_bytes(json_t *obj, const char *name, const void *buf,
                      size_t len) {
        char b64name[64];
        char *b64;

        if (sq_codec_utf8_valid(buf, len)) {
                set_new(obj, name, json_stringn(len ? buf : "", len));
                return;
        }
        snprintf(b64name, sizeof(b64name), "%s_base64", name);
        b64 = sq_base64_encode(buf, len, SQ_BASE64_STD);
        set_new(obj, b64name, json_string(b64));
        sq_free(b64);
}

/* Dumps and frees @p obj; the string is sq_malloc() memory. */
static char *dump(json_t *obj) {
        char *text = json_dumps(obj, JSON_COMPACT);
        char *copy;

        sq_assert(text);
        copy = sq_strdup(text);
        free(text);
        json_decref(obj);
        return copy;
}

/* The workflow fields, only when set (absent reads as null), so records
 * outside a workflow look as before. */
static void set_workflow(json_t *obj, const char *workflow_id,
                         const char *parent_id) {
        if (workflow_id)
                set_new(obj, "workflow_id", jstr(workflow_id));
        if (parent_id)
                set_new(obj, "parent_id", jstr(parent_id));
}

char *sq_codec_task_to_json(const sq_task_t *task) {
        json_t *obj = json_object();
        json_t *caps, *hdrs;
        size_t i;

        sq_assert(task && obj);
        set_new(obj, "id", jstr(task->id));
        set_new(obj, "type", jstr(task->type));
        set_new(obj, "priority", json_string(sq_priority_name(task->priority)));
        caps = json_array();
        for (i = 0; i < task->capabilities_cnt; i++)
                json_array_append_new(caps, jstr(task->capabilities[i]));
        set_new(obj, "capabilities", caps);
        set_bytes(obj, "payload", task->payload, task->payload_len);
        set_new(obj, "key", jstr(task->key));
        set_new(obj, "created_at", json_integer(task->created_at));
        set_new(obj, "timeout_ms", json_integer(task->timeout_ms));
        set_new(obj, "max_attempts", json_integer(task->max_attempts));
        set_new(obj, "attempt", json_integer(task->attempt));
        hdrs = json_object();
        for (i = 0; i < task->headers_cnt; i++)
                set_new(hdrs, task->headers[i].name,
                        jstr(task->headers[i].value));
        set_new(obj, "headers", hdrs);
        set_new(obj, "not_before",
                task->not_before ? json_integer(task->not_before)
                                 : json_null());
        set_workflow(obj, task->workflow_id, task->parent_id);
        return dump(obj);
}

char *sq_codec_result_to_json(const sq_result_t *result) {
        json_t *obj = json_object();
        json_t *src = json_object();

        sq_assert(result && obj && src);
        set_new(obj, "task_id", jstr(result->task_id));
        set_new(obj, "status", json_string(sq_status_name(result->status)));
        set_bytes(obj, "output", result->output, result->output_len);
        set_new(obj, "error", jstr(result->error));
        set_new(obj, "agent", jstr(result->agent));
        set_new(obj, "instance", jstr(result->instance));
        set_new(obj, "attempts", json_integer(result->attempts));
        set_new(src, "topic", jstr(result->source.topic));
        set_new(src, "partition", json_integer(result->source.partition));
        set_new(src, "offset", json_integer(result->source.offset));
        set_new(obj, "source", src);
        set_new(obj, "created_at", json_integer(result->created_at));
        set_new(obj, "started_at", json_integer(result->started_at));
        set_new(obj, "finished_at", json_integer(result->finished_at));
        set_workflow(obj, result->workflow_id, result->parent_id);
        return dump(obj);
}

char *sq_codec_event_to_json(const sq_event_t *event) {
        json_t *obj = json_object();

        sq_assert(event && obj);
        set_new(obj, "event_id", jstr(event->event_id));
        set_new(obj, "task_id", jstr(event->task_id));
        set_new(obj, "type", jstr(event->type));
        set_new(obj, "at", json_integer(event->at));
        set_new(obj, "instance", jstr(event->instance));
        set_new(obj, "agent", jstr(event->agent));
        set_new(obj, "detail", jstr(event->detail));
        set_workflow(obj, event->workflow_id, event->parent_id);
        return dump(obj);
}

/*
 * The JSON wire form of results and events (output.format=json)
 *
 * One object per record, the Avro schemas' fields by the same names,
 * except: bytes are always base64 under "<field>_base64" (the encoding
 * named, whatever the bytes), and times are integers under "<field>_ms"
 * (milliseconds since the Unix epoch, the unit named). docs/wire.md.
 */

static void set_base64(json_t *obj, const char *name, const void *buf,
                       size_t len) {
        char b64name[64];
        char *b64 = sq_base64_encode(len ? buf : "", len, SQ_BASE64_STD);

        snprintf(b64name, sizeof(b64name), "%s_base64", name);
        set_new(obj, b64name, json_string(b64));
        sq_free(b64);
}

char *sq_codec_result_to_wire_json(const sq_result_t *result) {
        json_t *obj = json_object();
        json_t *src = json_object();

        sq_assert(result && obj && src);
        set_new(obj, "task_id", jstr(result->task_id));
        set_new(obj, "status", json_string(sq_status_name(result->status)));
        set_base64(obj, "output", result->output, result->output_len);
        set_new(obj, "error", jstr(result->error));
        set_new(obj, "agent", jstr(result->agent));
        set_new(obj, "instance", jstr(result->instance));
        set_new(obj, "attempts", json_integer(result->attempts));
        set_new(src, "topic",
                jstr(result->source.topic ? result->source.topic : ""));
        set_new(src, "partition", json_integer(result->source.partition));
        set_new(src, "offset", json_integer(result->source.offset));
        set_new(obj, "source", src);
        set_new(obj, "created_at_ms", json_integer(result->created_at));
        set_new(obj, "started_at_ms", json_integer(result->started_at));
        set_new(obj, "finished_at_ms", json_integer(result->finished_at));
        set_workflow(obj, result->workflow_id, result->parent_id);
        return dump(obj);
}

char *sq_codec_event_to_wire_json(const sq_event_t *event) {
        json_t *obj = json_object();

        sq_assert(event && obj);
        set_new(obj, "event_id", jstr(event->event_id));
        set_new(obj, "task_id", jstr(event->task_id));
        set_new(obj, "type", jstr(event->type));
        set_new(obj, "at_ms", json_integer(event->at));
        set_new(obj, "instance", jstr(event->instance));
        set_new(obj, "agent", jstr(event->agent));
        set_new(obj, "detail", jstr(event->detail));
        set_workflow(obj, event->workflow_id, event->parent_id);
        return dump(obj);
}

/* Field readers of the wire form: each names the record kind, the field
 * and what it expected. */
typedef struct wire_read_s {
        const char *kind; /* "Result" */
        json_t *obj;
        char *errstr;
        size_t errstr_size;
        bool failed;
} wire_read_t;

static json_t *wire_field(wire_read_t *r, const char *name, bool nullable,
                          json_type type, const char *expected) {
        json_t *val = json_object_get(r->obj, name);

        if (r->failed)
                return NULL;
        if (nullable && (!val || json_is_null(val)))
                return NULL;
        if (!val || json_typeof(val) != type) {
                sq_errstr_set(r->errstr, r->errstr_size,
                              "JSON %s field \"%s\": expected %s, got %s",
                              r->kind, name, expected,
                              val ? json_type_name(val) : "nothing");
                r->failed = true;
                return NULL;
        }
        return val;
}

static char *wire_str(wire_read_t *r, const char *name, bool nullable) {
        json_t *val = wire_field(r, name, nullable, JSON_STRING, "a string");
        return val ? sq_strndup(json_string_value(val), json_string_length(val))
                   : NULL;
}

static int64_t wire_int(wire_read_t *r, json_t *obj, const char *name) {
        json_t *saved = r->obj, *val;
        r->obj        = obj;
        val           = wire_field(r, name, false, JSON_INTEGER, "an integer");
        r->obj        = saved;
        return val ? (int64_t)json_integer_value(val) : 0;
}

/* Parses @p buf as one JSON object of the wire form; NULL on error. */
static json_t *wire_parse(const char *kind, const void *buf, size_t len,
                          char *errstr, size_t errstr_size) {
        json_error_t jerr;
        json_t *root = json_loadb(buf, len, 0, &jerr);

        if (!root || !json_is_object(root)) {
                sq_errstr_set(errstr, errstr_size,
                              "JSON %s: %s at byte offset %d", kind,
                              root ? "not an object" : jerr.text,
                              root ? 0 : jerr.position);
                json_decref(root);
                return NULL;
        }
        return root;
}

sq_err_t sq_codec_result_from_wire_json(const void *buf, size_t len,
                                        sq_result_t **resultp, char *errstr,
                                        size_t errstr_size) {
        wire_read_t r = {"Result", NULL, errstr, errstr_size, false};
        sq_result_t *result;
        json_t *src;
        char *status;

        if (!(r.obj = wire_parse("Result", buf, len, errstr, errstr_size)))
                return SQ_ERR_DECODE;
        result           = sq_result_new();
        result->task_id  = wire_str(&r, "task_id", false);
        status           = wire_str(&r, "status", false);
        result->error    = wire_str(&r, "error", true);
        result->agent    = wire_str(&r, "agent", true);
        result->instance = wire_str(&r, "instance", false);
        result->attempts = (int32_t)wire_int(&r, r.obj, "attempts");
        src = wire_field(&r, "source", false, JSON_OBJECT, "an object");
        if (src) {
                json_t *topic = json_object_get(src, "topic");
                result->source.topic =
                    json_is_string(topic) && json_string_length(topic)
                        ? sq_strdup(json_string_value(topic))
                        : NULL;
                result->source.partition =
                    (int32_t)wire_int(&r, src, "partition");
                result->source.offset = wire_int(&r, src, "offset");
        }
        result->created_at  = wire_int(&r, r.obj, "created_at_ms");
        result->started_at  = wire_int(&r, r.obj, "started_at_ms");
        result->finished_at = wire_int(&r, r.obj, "finished_at_ms");
        result->workflow_id = wire_str(&r, "workflow_id", true);
        result->parent_id   = wire_str(&r, "parent_id", true);
        if (!r.failed) {
                json_t *b64 = wire_field(&r, "output_base64", false,
                                         JSON_STRING, "a base64 string");
                if (b64 &&
                    sq_base64_decode(json_string_value(b64),
                                     json_string_length(b64), SQ_BASE64_STD,
                                     &result->output, &result->output_len,
                                     errstr, errstr_size) != SQ_OK)
                        r.failed = true;
        }
        if (!r.failed && sq_status_parse(status, &result->status) != SQ_OK) {
                sq_errstr_set(errstr, errstr_size,
                              "JSON Result field \"status\": \"%s\" is not "
                              "SUCCEEDED, FAILED, TIMED_OUT or DEAD_LETTERED",
                              status);
                r.failed = true;
        }
        sq_free(status);
        json_decref(r.obj);
        if (r.failed) {
                sq_result_destroy(result);
                return SQ_ERR_DECODE;
        }
        *resultp = result;
        return SQ_OK;
}

sq_err_t sq_codec_event_from_wire_json(const void *buf, size_t len,
                                       sq_event_t **eventp, char *errstr,
                                       size_t errstr_size) {
        wire_read_t r = {"Event", NULL, errstr, errstr_size, false};
        sq_event_t *event;

        if (!(r.obj = wire_parse("Event", buf, len, errstr, errstr_size)))
                return SQ_ERR_DECODE;
        event              = sq_event_new();
        event->event_id    = wire_str(&r, "event_id", false);
        event->task_id     = wire_str(&r, "task_id", true);
        event->type        = wire_str(&r, "type", false);
        event->at          = wire_int(&r, r.obj, "at_ms");
        event->instance    = wire_str(&r, "instance", false);
        event->agent       = wire_str(&r, "agent", true);
        event->detail      = wire_str(&r, "detail", true);
        event->workflow_id = wire_str(&r, "workflow_id", true);
        event->parent_id   = wire_str(&r, "parent_id", true);
        json_decref(r.obj);
        if (r.failed) {
                sq_event_destroy(event);
                return SQ_ERR_DECODE;
        }
        *eventp = event;
        return SQ_OK;
}
