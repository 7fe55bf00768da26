/* SPDX-License-Identifier: Apache-2.0 */
/*
 * workflow.c: workflow documents, their records in topic.workflows, and
 * the step function (see workflow.h for the formats).
 *
 * DESIGN
 *   A parsed workflow is a tree of nodes built once from its document;
 *   its progress is two JSON objects keyed by task id: "started" (the
 *   ids the owner submitted) and "ended" (the first ended record of each
 *   task: status, output, error). sq_workflow_step() walks the tree from
 *   the root with that progress and nothing else: a chain waits on its
 *   first step that has not ended and stops at the first that did not
 *   succeed; a group runs every child at once; a join waits for every
 *   child of its group. Every leaf it reaches that neither started nor
 *   ended is a task to submit now, its payload its own or its input (the
 *   previous step's output, or the children's results for a join). So
 *   the state a rebuild reads back from the topic is all the owner ever
 *   needs, and evaluating it twice submits nothing twice.
 *
 *   A leaf's task is built by the JSON task parser (codec.h) from its
 *   fields merged over its ancestors' defaults, so a task in a workflow
 *   means exactly what the same JSON task means on its own, and a bad
 *   field is refused at parse time with the JSON task parser's sentence
 *   prefixed by the node's place in the document.
 */
#include "workflow.h"
#include "codec.h"
#include "hash.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef enum { NODE_TASK, NODE_CHAIN, NODE_GROUP } node_kind_t;

typedef struct node_s {
        node_kind_t kind;
        char *id; /* "<wf>.0.1", the task id of a leaf */
        struct node_s **kids;
        size_t kids_cnt;
        struct node_s *join; /* a group's, or NULL */
        json_t *task;        /* a leaf: its JSON task fields, merged */
        const char *follows; /* a leaf: its parent_id (borrowed), or NULL */
        bool takes_input;    /* a leaf: payload = its input */
} node_t;

struct sq_workflow_s {
        char *id;
        json_t *doc; /* the document as parsed */
        node_t *root;
        size_t nodes_cnt, tasks_cnt;
        json_t *started; /* task id -> true */
        json_t *ended;   /* task id -> {"status", "output_base64", "error"} */
        int status;      /* sq_status_t, or -1 while it runs */
        int64_t submitted_at, finished_at;
        int32_t partition;
        struct sq_workflow_s *next; /* the set's bucket chain */
};

/* Fields a chain, group or chord may set for the tasks below it. */
static const char *const default_keys[] = {
    "priority", "timeout_ms", "max_attempts", "capabilities", "headers"};
/* JSON task fields a workflow's task may not set: the workflow does. */
static const char *const forbidden_task_keys[] = {
    "id", "attempt", "created_at", "not_before", "workflow_id", "parent_id"};

static bool in_list(const char *const *list, size_t cnt, const char *name) {
        size_t i;
        for (i = 0; i < cnt; i++)
                if (!strcmp(list[i], name))
                        return true;
        return false;
}

static SQ_ATTR_PRINTF(1, 2) char *strfmt(const char *fmt, ...) {
        va_list ap;
        char *str;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        sq_assert(n >= 0);
        str = sq_malloc((size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(str, (size_t)n + 1, fmt, ap);
        va_end(ap);
        return str;
}

static void node_destroy(node_t *node) {
        size_t i;
        if (!node)
                return;
        for (i = 0; i < node->kids_cnt; i++)
                node_destroy(node->kids[i]);
        sq_free(node->kids);
        node_destroy(node->join);
        json_decref(node->task);
        sq_free(node->id);
        sq_free(node);
}

/*
 * Parsing
 */

typedef struct parse_s {
        sq_workflow_t *wf;
        char *errstr;
        size_t errstr_size;
} parse_t;

static SQ_ATTR_PRINTF(3, 4) node_t *parse_fail(parse_t *p, const char *path,
                                               const char *fmt, ...) {
        char why[400];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        sq_errstr_set(p->errstr, p->errstr_size, "workflow %s: %s: %s",
                      p->wf->id, path, why);
        return NULL;
}

/* @returns @p inherited with this node's defaults over it (a new
 * reference); headers are merged, the others replaced. */
static json_t *merge_defaults(const json_t *inherited, json_t *obj) {
        json_t *out = json_deep_copy(inherited);
        size_t i;

        for (i = 0; i < SQ_ARRAY_SIZE(default_keys); i++) {
                json_t *val = json_object_get(obj, default_keys[i]);
                json_t *have;
                if (!val)
                        continue;
                have = json_object_get(out, default_keys[i]);
                if (!strcmp(default_keys[i], "headers") &&
                    json_is_object(have) && json_is_object(val))
                        json_object_update(have, val);
                else
                        json_object_set(out, default_keys[i], val);
        }
        return out;
}

static node_t *parse_node(parse_t *p, json_t *val, const char *path,
                          const char *id, const json_t *defaults, int depth,
                          bool takes_input, const char *follows);

/* The kids of a chain or group: @p arr's nodes, "<id>.<i>". */
static bool parse_kids(parse_t *p, node_t *node, json_t *arr, const char *path,
                       const json_t *defaults, int depth, bool takes_input,
                       const char *follows) {
        size_t i;

        node->kids_cnt = json_array_size(arr);
        node->kids     = sq_calloc(node->kids_cnt, sizeof(*node->kids));
        for (i = 0; i < node->kids_cnt; i++) {
                char *kpath = strfmt("%s[%zu]", path, i);
                char *kid   = strfmt("%s.%zu", node->id, i);
                bool chain  = node->kind == NODE_CHAIN;
                /* A chain's later steps take the previous step's output
                 * and follow it; a group's children all take the group's
                 * input and follow what the group follows. */
                node->kids[i] = parse_node(
                    p, json_array_get(arr, i), kpath, kid, defaults, depth + 1,
                    chain && i > 0 ? true : takes_input,
                    chain && i > 0 ? node->kids[i - 1]->id : follows);
                sq_free(kpath);
                sq_free(kid);
                if (!node->kids[i])
                        return false;
        }
        return true;
}

static node_t *parse_node(parse_t *p, json_t *val, const char *path,
                          const char *id, const json_t *defaults, int depth,
                          bool takes_input, const char *follows) {
        json_t *chain, *group, *type, *mine = NULL, *field;
        const char *name;
        node_t *node = NULL;
        char *sub    = NULL;
        int kinds;

        if (depth > SQ_WORKFLOW_DEPTH_MAX)
                return parse_fail(p, path,
                                  "nested deeper than %d chains and groups",
                                  SQ_WORKFLOW_DEPTH_MAX);
        if (++p->wf->nodes_cnt > SQ_WORKFLOW_NODES_MAX)
                return parse_fail(p, path, "more than %d nodes in all",
                                  SQ_WORKFLOW_NODES_MAX);
        if (!json_is_object(val))
                return parse_fail(p, path,
                                  "expected an object (a task, a chain, a "
                                  "group or a chord), got %s",
                                  json_is_array(val)    ? "an array"
                                  : json_is_string(val) ? "a string"
                                                        : "another value");
        chain = json_object_get(val, "chain");
        group = json_object_get(val, "group");
        type  = json_object_get(val, "type");
        kinds = !!chain + !!group + !!type;
        if (kinds != 1)
                return parse_fail(
                    p, path,
                    "%s: a node is a task (\"type\"), a chain (\"chain\") "
                    "or a group (\"group\", with \"join\" a chord)",
                    kinds ? "it has more than one of type, chain and group"
                          : "it has none of type, chain and group");
        node     = sq_calloc(1, sizeof(*node));
        node->id = sq_strdup(id);
        if (type) {
                json_t *task;
                sq_task_t *scratch = NULL;
                char why[400];
                char *text;

                node->kind = NODE_TASK;
                p->wf->tasks_cnt++;
                json_object_foreach(val, name, field) {
                        if (in_list(forbidden_task_keys,
                                    SQ_ARRAY_SIZE(forbidden_task_keys), name)) {
                                parse_fail(p, path,
                                           "field \"%s\" is set by the "
                                           "workflow, not in its file",
                                           name);
                                goto fail;
                        }
                        if (!strcmp(name, "join")) {
                                parse_fail(p, path,
                                           "a task has no \"join\" (a chord "
                                           "is a \"group\" with a "
                                           "\"join\")");
                                goto fail;
                        }
                }
                if (takes_input && (json_object_get(val, "payload") ||
                                    json_object_get(val, "payload_base64"))) {
                        parse_fail(p, path,
                                   "it sets a payload, but its payload is "
                                   "its input (the previous step's output, "
                                   "or the children's results for a "
                                   "join)");
                        goto fail;
                }
                /* Its ancestors' defaults, its own fields over them
                 * (headers merged, its own winning). */
                task = json_deep_copy(defaults);
                json_object_foreach(val, name, field) {
                        json_t *have = json_object_get(task, name);
                        if (!strcmp(name, "headers") && json_is_object(have) &&
                            json_is_object(field))
                                json_object_update(have, field);
                        else
                                json_object_set(task, name, field);
                }
                node->task        = task;
                node->follows     = follows;
                node->takes_input = takes_input;
                /* Checked as the task it becomes. */
                json_object_set_new(task, "id", json_string(id));
                text = json_dumps(task, JSON_COMPACT);
                json_object_del(task, "id");
                if (sq_codec_task_from_json(text, strlen(text), &scratch, why,
                                            sizeof(why)) != SQ_OK) {
                        char *known = strstr(why, " (known: ");
                        free(text); /* jansson's malloc */
                        /* "JSON task: ..." -> "task: ...", and the fields
                         * a workflow's task may set. */
                        if (known)
                                *known = '\0';
                        parse_fail(p, path, "%s%s",
                                   strncmp(why, "JSON ", 5) ? why : why + 5,
                                   known ? " (a workflow's task has: type, "
                                           "priority, capabilities, payload, "
                                           "payload_base64, key, timeout_ms, "
                                           "max_attempts, headers)"
                                         : "");
                        goto fail;
                }
                free(text);
                sq_task_destroy(scratch);
                return node;
        }
        json_object_foreach(val, name, field) {
                if (!strcmp(name, "chain") || !strcmp(name, "group") ||
                    (group && !strcmp(name, "join")) ||
                    in_list(default_keys, SQ_ARRAY_SIZE(default_keys), name))
                        continue;
                parse_fail(p, path,
                           "unknown field \"%s\" (a %s has: %s, priority, "
                           "timeout_ms, max_attempts, capabilities, "
                           "headers)",
                           name, chain ? "chain" : "group",
                           chain ? "chain" : "group, join");
                goto fail;
        }
        field = chain ? chain : group;
        if (!json_is_array(field) || !json_array_size(field)) {
                parse_fail(p, path, "\"%s\" must be a non-empty array of nodes",
                           chain ? "chain" : "group");
                goto fail;
        }
        node->kind = chain ? NODE_CHAIN : NODE_GROUP;
        mine       = merge_defaults(defaults, val);
        sub        = strfmt("%s.%s", path, chain ? "chain" : "group");
        if (!parse_kids(p, node, field, sub, mine, depth, takes_input, follows))
                goto fail;
        if (group && json_object_get(val, "join")) {
                char *jpath = strfmt("%s.join", path);
                char *jid   = strfmt("%s.join", node->id);
                node->join  = parse_node(p, json_object_get(val, "join"), jpath,
                                         jid, mine, depth + 1, true, NULL);
                sq_free(jpath);
                sq_free(jid);
                if (!node->join)
                        goto fail;
        }
        sq_free(sub);
        json_decref(mine);
        return node;
fail:
        sq_free(sub);
        json_decref(mine);
        node_destroy(node);
        return NULL;
}

static bool id_valid(const char *id, char *errstr, size_t errstr_size) {
        size_t len = strlen(id);
        if (!len || len > SQ_WORKFLOW_ID_MAX || strchr(id, '/')) {
                sq_errstr_set(errstr, errstr_size,
                              "workflow id \"%.*s\": it must be 1 to %d bytes "
                              "without '/'",
                              (int)SQ_MIN(len, 64), id, SQ_WORKFLOW_ID_MAX);
                return false;
        }
        return true;
}

/* Builds a workflow from its parsed document (a reference is taken). */
static sq_workflow_t *parse_doc(json_t *doc, const char *id, char *errstr,
                                size_t errstr_size) {
        sq_workflow_t *wf = NULL;
        json_t *docid, *root, *defaults = NULL, *field;
        const char *name;
        parse_t p;

        if (!json_is_object(doc)) {
                sq_errstr_set(errstr, errstr_size,
                              "workflow: expected an object at the top level "
                              "({\"workflow\": ...}), got %s",
                              json_is_array(doc) ? "an array"
                                                 : "another value");
                return NULL;
        }
        docid = json_object_get(doc, "id");
        if (docid && !json_is_string(docid)) {
                sq_errstr_set(errstr, errstr_size,
                              "workflow: field \"id\" must be a string");
                return NULL;
        }
        if (docid)
                id = json_string_value(docid);
        if (!id) {
                sq_errstr_set(errstr, errstr_size,
                              "workflow: field \"id\" is missing");
                return NULL;
        }
        if (!id_valid(id, errstr, errstr_size))
                return NULL;
        json_object_foreach(doc, name, field) {
                if (!strcmp(name, "id") || !strcmp(name, "workflow") ||
                    in_list(default_keys, SQ_ARRAY_SIZE(default_keys), name))
                        continue;
                sq_errstr_set(errstr, errstr_size,
                              "workflow %s: unknown top-level field \"%s\" "
                              "(known: id, workflow, priority, timeout_ms, "
                              "max_attempts, capabilities, headers)",
                              id, name);
                return NULL;
        }
        root = json_object_get(doc, "workflow");
        if (!root) {
                sq_errstr_set(errstr, errstr_size,
                              "workflow %s: field \"workflow\" (its chain, "
                              "group or chord) is missing",
                              id);
                return NULL;
        }
        wf            = sq_calloc(1, sizeof(*wf));
        wf->id        = sq_strdup(id);
        wf->doc       = json_deep_copy(doc);
        wf->started   = json_object();
        wf->ended     = json_object();
        wf->status    = -1;
        wf->partition = -1;
        json_object_set_new(wf->doc, "id", json_string(id));
        if (json_object_get(root, "type")) {
                sq_errstr_set(errstr, errstr_size,
                              "workflow %s: \"workflow\" is a single task; a "
                              "workflow is a chain, a group or a chord (a "
                              "single task needs none)",
                              id);
                goto fail;
        }
        p.wf          = wf;
        p.errstr      = errstr;
        p.errstr_size = errstr_size;
        field         = json_object();
        defaults      = merge_defaults(field, doc);
        json_decref(field);
        wf->root =
            parse_node(&p, root, "workflow", id, defaults, 0, false, NULL);
        if (!wf->root)
                goto fail;
        json_decref(defaults);
        return wf;
fail:
        json_decref(defaults);
        sq_workflow_destroy(wf);
        return NULL;
}

sq_err_t sq_workflow_spawn(const sq_task_t *task, const void *output,
                           size_t len, sq_workflow_t **wfp, char **keptp,
                           size_t *kept_lenp, char *errstr,
                           size_t errstr_size) {
        const unsigned char *p = output;
        json_t *env, *spawn, *kept, *doc, *headers;
        char id[SQ_WORKFLOW_ID_MAX + 1];
        char why[512];
        sq_err_t err = SQ_ERR_DECODE;
        size_t i;

        *wfp       = NULL;
        *keptp     = NULL;
        *kept_lenp = 0;
        /* Only an object can spawn: skip the rest without parsing. */
        for (i = 0; i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' ||
                                p[i] == '\r');
             i++)
                ;
        if (i == len || p[i] != '{')
                return SQ_OK;
        env   = json_loadb(output, len, JSON_REJECT_DUPLICATES, NULL);
        spawn = json_object_get(env, "spawn");
        if (!spawn) {
                json_decref(env);
                return SQ_OK; /* an output that happens to be JSON */
        }
        kept = json_object_get(env, "output");
        if (kept && !json_is_string(kept)) {
                sq_errstr_set(errstr, errstr_size,
                              "spawn: the output's \"output\" must be a "
                              "string (what the task's own result keeps)");
                json_decref(env);
                return SQ_ERR_DECODE;
        }
        if (strlen(task->id) + strlen(".spawn") > SQ_WORKFLOW_ID_MAX) {
                sq_errstr_set(errstr, errstr_size,
                              "spawn: task id of %zu bytes is too long to "
                              "name its children's workflow (%s.spawn: at "
                              "most %d bytes)",
                              strlen(task->id), "<id>", SQ_WORKFLOW_ID_MAX);
                json_decref(env);
                return SQ_ERR_DECODE;
        }
        snprintf(id, sizeof(id), "%s.spawn", task->id);
        /* The parent's priority, deadline and trace, as the defaults a
         * document's top level gives every task under it. */
        doc = json_object();
        json_object_set_new(doc, "id", json_string(id));
        json_object_set_new(doc, "priority",
                            json_string(sq_priority_name(task->priority)));
        if (task->timeout_ms > 0)
                json_object_set_new(doc, "timeout_ms",
                                    json_integer(task->timeout_ms));
        if (task->headers_cnt) {
                headers = json_object();
                for (i = 0; i < task->headers_cnt; i++)
                        json_object_set_new(
                            headers, task->headers[i].name,
                            json_string(task->headers[i].value));
                json_object_set_new(doc, "headers", headers);
        }
        json_object_set(doc, "workflow", spawn);
        *wfp = parse_doc(doc, id, why, sizeof(why));
        if (!*wfp) {
                sq_errstr_set(errstr, errstr_size, "spawn: %s", why);
        } else {
                if (kept && json_string_length(kept)) {
                        *kept_lenp = json_string_length(kept);
                        *keptp =
                            sq_memdup(json_string_value(kept), *kept_lenp + 1);
                }
                err = SQ_OK;
        }
        json_decref(doc);
        json_decref(env);
        return err;
}

sq_workflow_t *sq_workflow_parse(const char *json, size_t len, const char *id,
                                 char *errstr, size_t errstr_size) {
        json_error_t jerr;
        json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
        sq_workflow_t *wf;

        if (!doc) {
                sq_errstr_set(errstr, errstr_size,
                              "workflow: not valid JSON at line %d, column %d: "
                              "%s",
                              jerr.line, jerr.column, jerr.text);
                return NULL;
        }
        wf = parse_doc(doc, id, errstr, errstr_size);
        json_decref(doc);
        return wf;
}

void sq_workflow_destroy(sq_workflow_t *wf) {
        if (!wf)
                return;
        node_destroy(wf->root);
        json_decref(wf->doc);
        json_decref(wf->started);
        json_decref(wf->ended);
        sq_free(wf->id);
        sq_free(wf);
}

const char *sq_workflow_id(const sq_workflow_t *wf) {
        return wf->id;
}

size_t sq_workflow_task_cnt(const sq_workflow_t *wf) {
        return wf->tasks_cnt;
}

int sq_workflow_status(const sq_workflow_t *wf) {
        return wf->status;
}

int64_t sq_workflow_submitted_at(const sq_workflow_t *wf) {
        return wf->submitted_at;
}

size_t sq_workflow_ended_cnt(const sq_workflow_t *wf) {
        return json_object_size(wf->ended);
}

size_t sq_workflow_started_cnt(const sq_workflow_t *wf) {
        return json_object_size(wf->started);
}

int32_t sq_workflow_partition(const char *workflow_id, int32_t partition_cnt) {
        if (partition_cnt <= 1)
                return 0;
        return (int32_t)(sq_hash_fnv1a32_str(workflow_id, SQ_HASH_FNV32_BASIS) %
                         (uint32_t)partition_cnt);
}

/*
 * Records
 */

static char *dump(json_t *obj) {
        char *text = json_dumps(obj, JSON_COMPACT);
        char *copy;
        sq_assert(text);
        copy = sq_strdup(text);
        free(text); /* jansson's malloc */
        json_decref(obj);
        return copy;
}

char *sq_workflow_declaration(const sq_workflow_t *wf, int64_t now_ms) {
        json_t *obj = json_object();
        json_object_set_new(obj, "workflow", json_string(wf->id));
        json_object_set(obj, "spec", wf->doc);
        json_object_set_new(obj, "submitted_at", json_integer(now_ms));
        return dump(obj);
}

char *sq_workflow_state_record(const sq_workflow_t *wf) {
        json_t *obj = json_object(), *started = json_array();
        const char *id;
        json_t *val;

        json_object_set_new(obj, "workflow", json_string(wf->id));
        json_object_set(obj, "spec", wf->doc);
        json_object_set_new(obj, "submitted_at",
                            json_integer(wf->submitted_at));
        json_object_foreach(wf->started, id, val)
            json_array_append_new(started, json_string(id));
        json_object_set_new(obj, "started", started);
        json_object_set_new(obj, "status",
                            wf->status < 0 ? json_null()
                                           : json_string(sq_status_name(
                                                 (sq_status_t)wf->status)));
        json_object_set_new(obj, "finished_at", json_integer(wf->finished_at));
        return dump(obj);
}

char *sq_workflow_ended_record(const sq_result_t *result) {
        json_t *obj = json_object();
        char *b64;

        sq_assert(result->workflow_id);
        json_object_set_new(obj, "workflow", json_string(result->workflow_id));
        json_object_set_new(obj, "ended", json_string(result->task_id));
        json_object_set_new(obj, "status",
                            json_string(sq_status_name(result->status)));
        b64 = sq_base64_encode(result->output_len ? (const void *)result->output
                                                  : "",
                               result->output_len, SQ_BASE64_STD);
        json_object_set_new(obj, "output_base64", json_string(b64));
        sq_free(b64);
        json_object_set_new(obj, "error",
                            result->error ? json_string(result->error)
                                          : json_null());
        json_object_set_new(obj, "at", json_integer(result->finished_at));
        json_object_set_new(obj, "by", json_string(result->instance));
        return dump(obj);
}

size_t sq_workflow_key(const char *workflow_id, const char *task_id, char *buf,
                       size_t size) {
        int n = !task_id   ? snprintf(buf, size, "%s", workflow_id)
                : *task_id ? snprintf(buf, size, "%s/%s", workflow_id, task_id)
                           : snprintf(buf, size, "%s/declared", workflow_id);
        return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/*
 * The set
 */

#define SET_BUCKETS 4096

struct sq_workflows_s {
        sq_workflow_t *buckets[SET_BUCKETS];
};

sq_workflows_t *sq_workflows_new(void) {
        return sq_calloc(1, sizeof(sq_workflows_t));
}

void sq_workflows_destroy(sq_workflows_t *set) {
        size_t b;
        if (!set)
                return;
        for (b = 0; b < SET_BUCKETS; b++) {
                while (set->buckets[b]) {
                        sq_workflow_t *wf = set->buckets[b];
                        set->buckets[b]   = wf->next;
                        sq_workflow_destroy(wf);
                }
        }
        sq_free(set);
}

static sq_workflow_t **bucket_of(sq_workflows_t *set, const char *id) {
        return &set->buckets[sq_hash_fnv1a64_str(id, SQ_HASH_FNV64_BASIS) %
                             SET_BUCKETS];
}

sq_workflow_t *sq_workflows_get(sq_workflows_t *set, const char *id) {
        sq_workflow_t *wf;
        for (wf = *bucket_of(set, id); wf; wf = wf->next)
                if (!strcmp(wf->id, id))
                        return wf;
        return NULL;
}

static void set_remove(sq_workflows_t *set, const char *id) {
        sq_workflow_t **pp = bucket_of(set, id);
        for (; *pp; pp = &(*pp)->next) {
                if (!strcmp((*pp)->id, id)) {
                        sq_workflow_t *wf = *pp;
                        *pp               = wf->next;
                        sq_workflow_destroy(wf);
                        return;
                }
        }
}

void sq_workflows_drop_partition(sq_workflows_t *set, int32_t partition) {
        size_t b;
        for (b = 0; b < SET_BUCKETS; b++) {
                sq_workflow_t **pp = &set->buckets[b];
                while (*pp) {
                        sq_workflow_t *wf = *pp;
                        if (wf->partition == partition) {
                                *pp = wf->next;
                                sq_workflow_destroy(wf);
                        } else {
                                pp = &wf->next;
                        }
                }
        }
}

void sq_workflows_foreach(sq_workflows_t *set, int32_t partition,
                          void (*fn)(sq_workflow_t *wf, void *arg), void *arg) {
        size_t b;
        for (b = 0; b < SET_BUCKETS; b++) {
                sq_workflow_t *wf, *next;
                for (wf = set->buckets[b]; wf; wf = next) {
                        next = wf->next;
                        if (partition < 0 || wf->partition == partition)
                                fn(wf, arg);
                }
        }
}

size_t sq_workflows_count(const sq_workflows_t *set, bool running_only) {
        size_t b, cnt = 0;
        for (b = 0; b < SET_BUCKETS; b++) {
                const sq_workflow_t *wf;
                for (wf = set->buckets[b]; wf; wf = wf->next)
                        if (!running_only || wf->status < 0)
                                cnt++;
        }
        return cnt;
}

/* A workflow that is over keeps how each task ended, not its output. */
static void forget_outputs(sq_workflow_t *wf) {
        const char *id;
        json_t *e;
        json_object_foreach(wf->ended, id, e)
            json_object_del(e, "output_base64");
}

/* True when @p id is a task of @p node's subtree. */
static bool has_task(const node_t *node, const char *id) {
        size_t i;
        if (node->kind == NODE_TASK)
                return !strcmp(node->id, id);
        for (i = 0; i < node->kids_cnt; i++)
                if (has_task(node->kids[i], id))
                        return true;
        return node->join && has_task(node->join, id);
}

sq_err_t sq_workflows_apply(sq_workflows_t *set, int32_t partition,
                            const char *key, size_t key_len, const void *value,
                            size_t len, sq_workflow_t **wfp, char *errstr,
                            size_t errstr_size) {
        char wfid[SQ_WORKFLOW_ID_MAX + 1];
        const char *slash = key ? memchr(key, '/', key_len) : NULL;
        size_t idlen      = slash ? (size_t)(slash - key) : key_len;
        const char *rest  = slash ? slash + 1 : NULL;
        size_t rest_len   = slash ? key_len - idlen - 1 : 0;
        json_t *obj       = NULL, *spec, *status, *started, *val;
        sq_workflow_t *wf;
        json_error_t jerr;
        sq_err_t err = SQ_ERR_DECODE;
        size_t i;

        *wfp = NULL;
        if (!key || !idlen || idlen > SQ_WORKFLOW_ID_MAX) {
                sq_errstr_set(errstr, errstr_size,
                              "a record without a workflow id as its key");
                return SQ_ERR_DECODE;
        }
        memcpy(wfid, key, idlen);
        wfid[idlen] = '\0';
        wf          = sq_workflows_get(set, wfid);
        if (!value) { /* a tombstone: only the state's forgets it */
                if (!slash)
                        set_remove(set, wfid);
                return SQ_OK;
        }
        obj = json_loadb(value, len, 0, &jerr);
        if (!json_is_object(obj) ||
            !json_is_string(json_object_get(obj, "workflow")) ||
            strcmp(json_string_value(json_object_get(obj, "workflow")), wfid)) {
                sq_errstr_set(errstr, errstr_size,
                              "workflow %s: a record that is not a JSON "
                              "object naming it as \"workflow\"",
                              wfid);
                goto done;
        }
        if (slash && !(rest_len == 8 && !memcmp(rest, "declared", 8))) {
                /* A task of it ended. */
                const char *task_id =
                    json_string_value(json_object_get(obj, "ended"));
                sq_status_t st;
                if (!task_id || strlen(task_id) != rest_len ||
                    memcmp(task_id, rest, rest_len) ||
                    sq_status_parse(
                        json_string_value(json_object_get(obj, "status")),
                        &st) != SQ_OK ||
                    !json_is_string(json_object_get(obj, "output_base64"))) {
                        sq_errstr_set(errstr, errstr_size,
                                      "workflow %s: an ended record without "
                                      "its task id, status or output",
                                      wfid);
                        goto done;
                }
                err = SQ_OK;
                if (!wf || wf->status >= 0 ||
                    json_object_get(wf->ended, task_id))
                        goto done; /* over, or not the first: ignored */
                if (!has_task(wf->root, task_id)) {
                        sq_errstr_set(errstr, errstr_size,
                                      "workflow %s has no task %s", wfid,
                                      task_id);
                        err = SQ_ERR_DECODE;
                        goto done;
                }
                val = json_object();
                json_object_set(val, "status", json_object_get(obj, "status"));
                json_object_set(val, "output_base64",
                                json_object_get(obj, "output_base64"));
                if (json_is_string(json_object_get(obj, "error")))
                        json_object_set(val, "error",
                                        json_object_get(obj, "error"));
                json_object_set_new(wf->ended, task_id, val);
                *wfp = wf;
                goto done;
        }
        /* The declaration, or the owner's state. */
        spec = json_object_get(obj, "spec");
        if (!wf) {
                sq_workflow_t **bucket;
                wf = parse_doc(spec, wfid, errstr, errstr_size);
                if (!wf)
                        goto done;
                if (strcmp(wf->id, wfid)) {
                        sq_errstr_set(errstr, errstr_size,
                                      "workflow %s: its spec names it %s", wfid,
                                      wf->id);
                        sq_workflow_destroy(wf);
                        goto done;
                }
                wf->partition = partition;
                wf->submitted_at =
                    json_integer_value(json_object_get(obj, "submitted_at"));
                bucket   = bucket_of(set, wfid);
                wf->next = *bucket;
                *bucket  = wf;
        }
        started = json_object_get(obj, "started");
        json_array_foreach(started, i, val) {
                if (json_is_string(val))
                        json_object_set_new(wf->started, json_string_value(val),
                                            json_true());
        }
        status = json_object_get(obj, "status");
        if (wf->status < 0 && json_is_string(status)) {
                sq_status_t st;
                if (sq_status_parse(json_string_value(status), &st) == SQ_OK) {
                        wf->status      = (int)st;
                        wf->finished_at = json_integer_value(
                            json_object_get(obj, "finished_at"));
                        forget_outputs(wf);
                }
        }
        *wfp = wf;
        err  = SQ_OK;
done:
        json_decref(obj);
        return err;
}

/*
 * The step function
 */

typedef struct res_s {
        bool pending;
        sq_status_t status;
        unsigned char *out; /* owned */
        size_t out_len;
        char *error; /* owned */
} res_t;

static void res_term(res_t *r) {
        sq_free(r->out);
        sq_free(r->error);
        memset(r, 0, sizeof(*r));
}

static void step_add(sq_workflow_step_t *step, sq_task_t *task) {
        step->ready                    = sq_realloc(step->ready,
                                                    (step->ready_cnt + 1) * sizeof(*step->ready));
        step->ready[step->ready_cnt++] = task;
}

/* The task of leaf @p node with @p in as its payload (when it takes its
 * input). */
static sq_task_t *leaf_task(const sq_workflow_t *wf, const node_t *node,
                            const res_t *in, int64_t now_ms) {
        json_t *obj     = json_deep_copy(node->task);
        sq_task_t *task = NULL;
        char why[400];
        char *text;

        json_object_set_new(obj, "id", json_string(node->id));
        json_object_set_new(obj, "workflow_id", json_string(wf->id));
        if (node->follows)
                json_object_set_new(obj, "parent_id",
                                    json_string(node->follows));
        json_object_set_new(obj, "created_at", json_integer(now_ms));
        if (node->takes_input) {
                char *b64 =
                    sq_base64_encode(in->out_len ? (const void *)in->out : "",
                                     in->out_len, SQ_BASE64_STD);
                json_object_set_new(obj, "payload_base64", json_string(b64));
                sq_free(b64);
        }
        text = json_dumps(obj, JSON_COMPACT);
        json_decref(obj);
        /* Checked when parsed; only the input is new, and it is bytes. */
        sq_assert(sq_codec_task_from_json(text, strlen(text), &task, why,
                                          sizeof(why)) == SQ_OK);
        free(text); /* jansson's malloc */
        return task;
}

/* One child's entry in a group's output: id, status, output (as a
 * string when it is UTF-8 text, else output_base64), error. */
static json_t *child_entry(const node_t *kid, const res_t *r) {
        json_t *obj = json_object();
        json_t *str = r->out_len
                          ? json_stringn((const char *)r->out, r->out_len)
                          : json_string("");

        json_object_set_new(obj, "id", json_string(kid->id));
        json_object_set_new(obj, "status",
                            json_string(sq_status_name(r->status)));
        if (str && !(r->out_len && memchr(r->out, 0, r->out_len))) {
                json_object_set_new(obj, "output", str);
        } else {
                char *b64 =
                    sq_base64_encode(r->out_len ? (const void *)r->out : "",
                                     r->out_len, SQ_BASE64_STD);
                json_decref(str);
                json_object_set_new(obj, "output_base64", json_string(b64));
                sq_free(b64);
        }
        json_object_set_new(obj, "error",
                            r->error ? json_string(r->error) : json_null());
        return obj;
}

static void eval(const sq_workflow_t *wf, const node_t *node, const res_t *in,
                 int64_t now_ms, sq_workflow_step_t *step, res_t *res) {
        size_t i;

        memset(res, 0, sizeof(*res));
        if (node->kind == NODE_TASK) {
                json_t *e = json_object_get(wf->ended, node->id);
                const char *b64, *error;
                char why[128];
                if (!e) {
                        res->pending = true;
                        if (!json_object_get(wf->started, node->id))
                                step_add(step, leaf_task(wf, node, in, now_ms));
                        return;
                }
                sq_assert(sq_status_parse(
                              json_string_value(json_object_get(e, "status")),
                              &res->status) == SQ_OK);
                b64 = json_string_value(json_object_get(e, "output_base64"));
                if (!b64 || sq_base64_decode(b64, strlen(b64), SQ_BASE64_STD,
                                             &res->out, &res->out_len, why,
                                             sizeof(why)) != SQ_OK) {
                        res->out     = NULL;
                        res->out_len = 0;
                }
                error = json_string_value(json_object_get(e, "error"));
                if (error)
                        res->error = sq_strdup(error);
                return;
        }
        if (node->kind == NODE_CHAIN) {
                res_t cur = {0}, next;
                if (in) {
                        cur.out_len = in->out_len;
                        cur.out = in->out_len ? sq_memdup(in->out, in->out_len)
                                              : NULL;
                }
                for (i = 0; i < node->kids_cnt; i++) {
                        eval(wf, node->kids[i], &cur, now_ms, step, &next);
                        res_term(&cur);
                        if (next.pending) {
                                res_term(&next);
                                res->pending = true;
                                return;
                        }
                        if (next.status != SQ_STATUS_SUCCEEDED) {
                                /* The chain stops here: FAILED (or
                                 * CANCELLED), naming the step and how it
                                 * ended. */
                                res->status = next.status == SQ_STATUS_CANCELLED
                                                  ? SQ_STATUS_CANCELLED
                                                  : SQ_STATUS_FAILED;
                                res->out    = next.out;
                                res->out_len = next.out_len;
                                res->error   = strfmt(
                                      "step %s ended %s%s%s", node->kids[i]->id,
                                      sq_status_name(next.status),
                                    next.error ? ": " : "",
                                    next.error ? next.error : "");
                                sq_free(next.error);
                                return;
                        }
                        cur = next;
                }
                *res = cur;
                return;
        }
        /* A group: every child at once; then the join, or the group's
         * own ending. */
        {
                res_t *kids   = sq_calloc(node->kids_cnt, sizeof(*kids));
                json_t *arr   = NULL;
                size_t failed = 0, cancelled = 0;
                bool pending = false;
                char *text;

                for (i = 0; i < node->kids_cnt; i++) {
                        eval(wf, node->kids[i], in, now_ms, step, &kids[i]);
                        pending |= kids[i].pending;
                }
                if (pending) {
                        res->pending = true;
                        goto group_done;
                }
                arr = json_array();
                for (i = 0; i < node->kids_cnt; i++) {
                        json_array_append_new(
                            arr, child_entry(node->kids[i], &kids[i]));
                        failed += kids[i].status != SQ_STATUS_SUCCEEDED;
                        cancelled += kids[i].status == SQ_STATUS_CANCELLED;
                }
                text = json_dumps(arr, JSON_COMPACT);
                sq_assert(text);
                if (node->join) {
                        res_t joined   = {0};
                        joined.out     = (unsigned char *)sq_strdup(text);
                        joined.out_len = strlen(text);
                        eval(wf, node->join, &joined, now_ms, step, res);
                        res_term(&joined);
                } else {
                        /* CANCELLED when what did not succeed was
                         * cancelled (the workflow, say). */
                        res->status  = !failed ? SQ_STATUS_SUCCEEDED
                                       : cancelled == failed
                                           ? SQ_STATUS_CANCELLED
                                           : SQ_STATUS_FAILED;
                        res->out     = (unsigned char *)sq_strdup(text);
                        res->out_len = strlen(text);
                        if (failed)
                                res->error = strfmt(
                                    "%zu of the %zu tasks of group %s did "
                                    "not succeed",
                                    failed, node->kids_cnt, node->id);
                }
                free(text); /* jansson's malloc */
                json_decref(arr);
        group_done:
                for (i = 0; i < node->kids_cnt; i++)
                        res_term(&kids[i]);
                sq_free(kids);
        }
}

void sq_workflow_step(const sq_workflow_t *wf, int64_t now_ms,
                      sq_workflow_step_t *step) {
        res_t res;

        memset(step, 0, sizeof(*step));
        if (wf->status >= 0)
                return; /* over */
        eval(wf, wf->root, NULL, now_ms, step, &res);
        if (res.pending)
                return;
        step->done       = true;
        step->status     = res.status;
        step->output     = res.out;
        step->output_len = res.out_len;
        step->error      = res.error;
}

void sq_workflow_step_term(sq_workflow_step_t *step) {
        size_t i;
        for (i = 0; i < step->ready_cnt; i++)
                sq_task_destroy(step->ready[i]);
        sq_free(step->ready);
        sq_free(step->output);
        sq_free(step->error);
        memset(step, 0, sizeof(*step));
}

void sq_workflow_mark(sq_workflow_t *wf, const sq_workflow_step_t *step,
                      int64_t now_ms) {
        size_t i;
        for (i = 0; i < step->ready_cnt; i++)
                json_object_set_new(wf->started, step->ready[i]->id,
                                    json_true());
        if (step->done && wf->status < 0) {
                wf->status      = (int)step->status;
                wf->finished_at = now_ms;
                forget_outputs(wf);
        }
}

static void collect_ids(const node_t *node, json_t *arr) {
        size_t i;
        if (node->kind == NODE_TASK) {
                json_array_append_new(arr, json_string(node->id));
                return;
        }
        for (i = 0; i < node->kids_cnt; i++)
                collect_ids(node->kids[i], arr);
        if (node->join)
                collect_ids(node->join, arr);
}

json_t *sq_workflow_task_ids(const sq_workflow_t *wf) {
        json_t *arr = json_array();
        collect_ids(wf->root, arr);
        return arr;
}

/*
 * The tree
 */

static json_t *tree_node(const sq_workflow_t *wf, const node_t *node) {
        json_t *obj = json_object();
        size_t i;

        json_object_set_new(obj, "id", json_string(node->id));
        if (node->kind == NODE_TASK) {
                json_t *e = json_object_get(wf->ended, node->id);
                json_object_set_new(obj, "kind", json_string("task"));
                json_object_set(obj, "type",
                                json_object_get(node->task, "type"));
                json_object_set_new(
                    obj, "state",
                    e ? json_incref(json_object_get(e, "status"))
                    : json_object_get(wf->started, node->id)
                        ? json_string("started")
                        : json_string("waiting"));
                return obj;
        }
        json_object_set_new(obj, "kind",
                            json_string(node->kind == NODE_CHAIN ? "chain"
                                        : node->join             ? "chord"
                                                                 : "group"));
        {
                json_t *kids = json_array();
                for (i = 0; i < node->kids_cnt; i++)
                        json_array_append_new(kids,
                                              tree_node(wf, node->kids[i]));
                json_object_set_new(
                    obj, node->kind == NODE_CHAIN ? "chain" : "group", kids);
        }
        if (node->join)
                json_object_set_new(obj, "join", tree_node(wf, node->join));
        return obj;
}

json_t *sq_workflow_tree(const sq_workflow_t *wf) {
        json_t *obj = json_object();
        json_object_set_new(obj, "workflow_id", json_string(wf->id));
        json_object_set_new(obj, "status",
                            wf->status < 0 ? json_string("RUNNING")
                                           : json_string(sq_status_name(
                                                 (sq_status_t)wf->status)));
        json_object_set_new(obj, "tasks",
                            json_integer((json_int_t)wf->tasks_cnt));
        json_object_set_new(
            obj, "started",
            json_integer((json_int_t)json_object_size(wf->started)));
        json_object_set_new(obj, "root", tree_node(wf, wf->root));
        return obj;
}
