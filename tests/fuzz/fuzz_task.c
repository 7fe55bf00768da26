/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_task.c: libFuzzer harness for the task decoder, the code that reads
 * every record of the tasks topic: Confluent-framed Avro (any task schema
 * id of the catalog, codec.c) and JSON tasks (codec_json.c).
 *
 * DESIGN
 *   One input = one Kafka record value. Decoding must either fail with a
 *   non-empty errstr and no task, or succeed with a task that holds the
 *   contract (non-empty id and type, a known priority) and survives two
 *   round trips: encode to Avro and decode again, render to JSON and parse
 *   again, each giving back the same id, type, key, payload, capabilities
 *   and headers. Anything else aborts, so libFuzzer reports it like a
 *   crash. The codec is created once (fuzz_codec.c) and reused, as the
 *   poll thread reuses its own, and destroyed at exit. Its avro values
 *   grow their buffers now and then, which libFuzzer's per-input leak
 *   check takes for leaks, so ops/fuzz.sh fuzzes this target with
 *   -detect_leaks=0 and then runs every input once more with leak
 *   detection at exit (after the codec is destroyed): a real leak on any
 *   input shows there. Built with -fsanitize=fuzzer by ops/fuzz.sh, and
 *   with replay_main.c (any compiler) as a ctest that runs the kept corpus
 *   through the same checks (under ASan in ops/test.sh).
 */
#include "fuzz_codec.h"
#include "task.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with @p what when @p a and @p b differ in a wire field. */
static void check_same(const sq_task_t *a, const sq_task_t *b,
                       const char *what) {
        size_t i;
        bool same = fuzz_str_eq(a->id, b->id) &&
                    fuzz_str_eq(a->type, b->type) &&
                    fuzz_str_eq(a->key, b->key) && a->priority == b->priority &&
                    a->payload_len == b->payload_len &&
                    (!a->payload_len ||
                     !memcmp(a->payload, b->payload, a->payload_len)) &&
                    a->capabilities_cnt == b->capabilities_cnt &&
                    a->headers_cnt == b->headers_cnt &&
                    a->timeout_ms == b->timeout_ms &&
                    a->max_attempts == b->max_attempts &&
                    a->attempt == b->attempt && a->created_at == b->created_at;
        for (i = 0; same && i < a->capabilities_cnt; i++)
                same = fuzz_str_eq(a->capabilities[i], b->capabilities[i]);
        for (i = 0; same && i < a->headers_cnt; i++)
                same = fuzz_str_eq(a->headers[i].name, b->headers[i].name) &&
                       fuzz_str_eq(a->headers[i].value, b->headers[i].value);
        if (!same) {
                fprintf(stderr, "fuzz_task: %s changed task id=%s\n", what,
                        a->id);
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        sq_task_t *task = NULL, *again = NULL;
        char errstr[512] = "";
        const void *buf;
        void *copy = NULL;
        char *json = NULL;
        size_t len;

        sq_codec_t *codec = fuzz_codec();

        fuzz_verdict(NULL);
        if (sq_codec_decode_task(codec, data, size, &task, errstr,
                                 sizeof(errstr)) != SQ_OK) {
                /* A refusal must name the problem and build nothing. */
                if (task || !errstr[0]) {
                        fprintf(stderr,
                                "fuzz_task: decode failed with "
                                "task=%p errstr=\"%s\"\n",
                                (void *)task, errstr);
                        abort();
                }
                fuzz_verdict(errstr);
                /* The instance then reads the refused record's id, if it
                 * can: a non-empty string that fits, or nothing. */
                {
                        char id[256];
                        if (sq_codec_peek_task_id(data, size, id, sizeof(id)) &&
                            (!id[0] || strlen(id) >= sizeof(id))) {
                                fprintf(stderr, "fuzz_task: peeked a bad "
                                                "task id\n");
                                abort();
                        }
                }
                return 0;
        }
        if (!task || !task->id || !*task->id || !task->type ||
            task->priority < SQ_PRIO_LOW || task->priority > SQ_PRIO_CRITICAL) {
                fprintf(stderr, "fuzz_task: decoded a task that breaks the "
                                "contract (id, type, priority)\n");
                abort();
        }

        /* Avro round trip (the schema the consumer re-publishes with). */
        if (sq_codec_encode_task(codec, task, &buf, &len, errstr,
                                 sizeof(errstr)) != SQ_OK) {
                fprintf(stderr,
                        "fuzz_task: decoded task id=%s does not "
                        "encode: %s\n",
                        task->id, errstr);
                abort();
        }
        copy = sq_memdup(buf, len);
        if (sq_codec_decode_task(codec, copy, len, &again, errstr,
                                 sizeof(errstr)) != SQ_OK) {
                fprintf(stderr,
                        "fuzz_task: re-encoded task id=%s does not "
                        "decode: %s\n",
                        task->id, errstr);
                abort();
        }
        check_same(task, again, "the Avro round trip");
        sq_task_destroy(again);
        again = NULL;

        /* JSON round trip (replay prints tasks this way). */
        json = sq_codec_task_to_json(task);
        if (sq_codec_task_from_json(json, strlen(json), &again, errstr,
                                    sizeof(errstr)) != SQ_OK) {
                fprintf(stderr,
                        "fuzz_task: task id=%s rendered as %s does "
                        "not parse back: %s\n",
                        task->id, json, errstr);
                abort();
        }
        check_same(task, again, "the JSON round trip");

        sq_task_destroy(again);
        sq_free(json);
        sq_free(copy);
        sq_task_destroy(task);
        return 0;
}
