/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_replay_workflow.c: `swarmq-producer replay --workflow ID`: one
 * workflow's tree (docs/workflows.md) with how each of its tasks ended.
 *
 * DESIGN
 *   Two reads with the shared topic reader (cli_reader.c), no consumer
 *   group, nothing committed:
 *   1. the workflow's partition of topic.workflows (the partition count
 *      comes from a first open, then sq_workflow_partition() picks the
 *      one, as the submitter and the instances do), its records folded
 *      with the instances' own code (sq_workflows_apply()): the
 *      declaration, the owner's state, the endings;
 *   2. the results topic, whole, keeping the results of the workflow's
 *      tasks (workflow_id = ID) and the workflow's own (task_id = ID).
 *   The tree is sq_workflow_tree()'s, each task given its last result
 *   (status, attempts, instance, times, error) and how many it has: once
 *   the topic is compacted the endings are gone (tombstoned when the
 *   workflow ended), the results are not. Printed as indented text, or
 *   as one JSON object with --json.
 */
#include "cli_reader.h"

#include "log.h"
#include "task.h"
#include "topics.h"
#include "workflow.h"

#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

#define CMD "replay"

typedef struct wfread_s {
        const sq_cmd_t *cmd;
        const char *id;
        size_t id_len;
        sq_workflows_t *set;
        json_t *results;  /* task id -> {"last": result, "count": n} */
        uint64_t skipped; /* records of the workflow that did not fold */
        uint64_t undecodable;
        const char *topic;
        sq_reader_t *reader;
} wfread_t;

/* A record of topic.workflows: folded when its key is the workflow's
 * ("ID" or "ID/..."). */
static bool fold_record(void *arg, const rd_kafka_message_t *rkm) {
        wfread_t *st    = arg;
        const char *key = rkm->key;
        sq_workflow_t *wf;
        char errstr[512];

        if (!key || rkm->key_len < st->id_len ||
            memcmp(key, st->id, st->id_len) ||
            (rkm->key_len > st->id_len && key[st->id_len] != '/'))
                return true;
        if (sq_workflows_apply(st->set, rkm->partition, key, rkm->key_len,
                               rkm->payload, rkm->len, &wf, errstr,
                               sizeof(errstr)) != SQ_OK) {
                st->skipped++;
                sq_cmd_warn_undecodable(st->cmd, &st->reader->prog, st->skipped,
                                        st->topic, rkm->partition, rkm->offset,
                                        errstr);
        }
        return true;
}

/* A record of the results topic: kept when it is the workflow's. */
static bool keep_result(void *arg, const rd_kafka_message_t *rkm) {
        wfread_t *st        = arg;
        sq_result_t *result = NULL;
        json_t *entry, *obj;
        char errstr[512], *text;

        if (!rkm->payload ||
            sq_codec_decode_result(st->cmd->codec, rkm->payload, rkm->len,
                                   &result, errstr, sizeof(errstr)) != SQ_OK) {
                sq_cmd_warn_undecodable(st->cmd, &st->reader->prog,
                                        ++st->undecodable, st->topic,
                                        rkm->partition, rkm->offset,
                                        rkm->payload ? errstr : "empty record");
                return true;
        }
        if (strcmp(result->task_id, st->id) &&
            (!result->workflow_id || strcmp(result->workflow_id, st->id))) {
                sq_result_destroy(result);
                return true;
        }
        text = sq_codec_result_to_json(result);
        obj  = json_loads(text, 0, NULL);
        sq_free(text);
        entry = json_object_get(st->results, result->task_id);
        if (!entry) {
                entry = json_object();
                json_object_set_new(st->results, result->task_id, entry);
        }
        json_object_set_new(
            entry, "count",
            json_integer(json_integer_value(json_object_get(entry, "count")) +
                         1));
        if (obj)
                json_object_set_new(entry, "last", obj);
        sq_result_destroy(result);
        return true;
}

/* Reads @p topic (one partition, or -1: all) into @p fn. */
static int read_topic(wfread_t *st, const char *topic, int32_t partition,
                      bool (*fn)(void *, const rd_kafka_message_t *),
                      size_t *parts_cntp) {
        sq_reader_opts_t opts;
        sq_reader_t reader;
        sq_reader_sink_t sink;
        bool enough;
        int ret;

        memset(&opts, 0, sizeof(opts));
        memset(&reader, 0, sizeof(reader));
        opts.topic          = topic;
        opts.only_partition = partition;
        st->topic           = topic;
        st->reader          = &reader;
        ret                 = sq_reader_open(&reader, st->cmd, &opts);
        if (ret == SQ_CLI_EXIT_OK && parts_cntp) {
                *parts_cntp = reader.parts_cnt;
        } else if (ret == SQ_CLI_EXIT_OK) {
                memset(&sink, 0, sizeof(sink));
                sink.record = fn;
                sink.arg    = st;
                ret         = sq_reader_run(&reader, &sink, &enough);
                if (ret == SQ_CLI_EXIT_OK && !sq_reader_done(&reader))
                        ret = SQ_CLI_EXIT_INCOMPLETE; /* SIGINT */
        }
        sq_reader_term(&reader);
        st->reader = NULL;
        return ret;
}

/* Gives each task node of @p node its results (and the state they say
 * when the topic no longer has its ending). */
static void annotate(json_t *node, json_t *results) {
        const char *kind = json_string_value(json_object_get(node, "kind"));
        json_t *kids, *kid, *entry, *last;
        size_t i;

        if (kind && !strcmp(kind, "task")) {
                const char *state =
                    json_string_value(json_object_get(node, "state"));
                entry = json_object_get(
                    results, json_string_value(json_object_get(node, "id")));
                last = json_object_get(entry, "last");
                json_object_set_new(node, "results",
                                    json_integer(json_integer_value(
                                        json_object_get(entry, "count"))));
                if (!last)
                        return;
                json_object_set(node, "result", last);
                if (state &&
                    (!strcmp(state, "started") || !strcmp(state, "waiting")))
                        json_object_set(node, "state",
                                        json_object_get(last, "status"));
                return;
        }
        kids = json_object_get(node, "chain");
        if (!kids)
                kids = json_object_get(node, "group");
        json_array_foreach(kids, i, kid) annotate(kid, results);
        if (json_object_get(node, "join"))
                annotate(json_object_get(node, "join"), results);
}

/* One task's line: id, type, state, and its last result's details. */
static void print_task(const json_t *node, int depth, const char *label) {
        const json_t *r = json_object_get(node, "result");
        json_int_t n    = json_integer_value(json_object_get(node, "results"));

        printf("%*s%stask %s (%s): %s", depth * 2, "", label,
               json_string_value(json_object_get(node, "id")),
               json_string_value(json_object_get(node, "type")),
               json_string_value(json_object_get(node, "state")));
        if (r) {
                json_int_t started =
                    json_integer_value(json_object_get(r, "started_at"));
                json_int_t finished =
                    json_integer_value(json_object_get(r, "finished_at"));
                const char *inst =
                    json_string_value(json_object_get(r, "instance"));
                const char *err =
                    json_string_value(json_object_get(r, "error"));
                printf(", %" JSON_INTEGER_FORMAT " attempt%s on %s",
                       json_integer_value(json_object_get(r, "attempts")),
                       json_integer_value(json_object_get(r, "attempts")) == 1
                           ? ""
                           : "s",
                       inst ? inst : "?");
                if (started > 0 && finished >= started)
                        printf(", %" JSON_INTEGER_FORMAT " ms",
                               finished - started);
                if (err)
                        printf(", error: %s", err);
        }
        if (n > 1)
                printf(" (%" JSON_INTEGER_FORMAT " results)", n);
        putchar('\n');
}

static void print_node(const json_t *node, int depth, const char *label) {
        const char *kind = json_string_value(json_object_get(node, "kind"));
        const json_t *kids, *kid;
        size_t i;

        if (!strcmp(kind, "task")) {
                print_task(node, depth, label);
                return;
        }
        kids = json_object_get(node, strcmp(kind, "chain") ? "group" : "chain");
        printf("%*s%s%s %s (%zu)\n", depth * 2, "", label, kind,
               json_string_value(json_object_get(node, "id")),
               json_array_size(kids));
        json_array_foreach(kids, i, kid) print_node(kid, depth + 1, "");
        if (json_object_get(node, "join"))
                print_node(json_object_get(node, "join"), depth + 1, "join: ");
}

int sq_cli_replay_workflow(const sq_cmd_t *cmd, const char *id, bool as_json) {
        const char *topic = cmd->cli->topic_workflows;
        wfread_t st;
        sq_workflow_t *wf;
        size_t parts_cnt = 0;
        int32_t partition;
        json_t *tree = NULL, *own;
        int ret;

        memset(&st, 0, sizeof(st));
        st.cmd     = cmd;
        st.id      = id;
        st.id_len  = strlen(id);
        st.set     = sq_workflows_new();
        st.results = json_object();

        ret = read_topic(&st, topic, -1, NULL, &parts_cnt);
        if (ret != SQ_CLI_EXIT_OK)
                goto done;
        partition = sq_workflow_partition(id, (int32_t)parts_cnt);
        ret       = read_topic(&st, topic, partition, fold_record, NULL);
        if (ret != SQ_CLI_EXIT_OK)
                goto done;
        wf = sq_workflows_get(st.set, id);
        if (!wf) {
                sq_cmd_say(cmd, NULL,
                           "workflow %s: topic %s (partition %" PRId32
                           " of %zu) has no record of it (submitted to "
                           "another workflows topic? --topic-workflows)",
                           id, topic, partition, parts_cnt);
                ret = SQ_CLI_EXIT_INCOMPLETE;
                goto done;
        }
        ret = read_topic(&st, cmd->cli->topic_results, -1, keep_result, NULL);
        if (ret != SQ_CLI_EXIT_OK)
                goto done;

        tree = sq_workflow_tree(wf);
        annotate(json_object_get(tree, "root"), st.results);
        own = json_object_get(json_object_get(st.results, id), "last");
        if (own) {
                json_object_set(tree, "result", own);
                if (!strcmp(json_string_value(json_object_get(tree, "status")),
                            "RUNNING"))
                        json_object_set(tree, "status",
                                        json_object_get(own, "status"));
        }
        json_object_set_new(tree, "results",
                            json_integer(json_integer_value(json_object_get(
                                json_object_get(st.results, id), "count"))));
        if (as_json) {
                char *text = json_dumps(tree, JSON_COMPACT);
                puts(text);
                free(text); /* jansson's malloc */
        } else {
                const char *err =
                    json_string_value(json_object_get(own, "error"));
                printf("workflow %s: %s, %" JSON_INTEGER_FORMAT
                       " tasks, %" JSON_INTEGER_FORMAT " started",
                       id, json_string_value(json_object_get(tree, "status")),
                       json_integer_value(json_object_get(tree, "tasks")),
                       json_integer_value(json_object_get(tree, "started")));
                if (err)
                        printf(", error: %s", err);
                putchar('\n');
                print_node(json_object_get(tree, "root"), 1, "");
        }
        if (!sq_cmd_flush_stdout(cmd))
                ret = SQ_CLI_EXIT_INCOMPLETE;

done:
        json_decref(tree);
        json_decref(st.results);
        sq_workflows_destroy(st.set);
        return ret;
}
