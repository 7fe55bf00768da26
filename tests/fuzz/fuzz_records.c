/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_records.c: libFuzzer harness for the parsers of every other record
 * swarmq reads from Kafka (fuzz_task.c has the tasks): results and events
 * (Avro or the JSON wire form; `swarmq-producer wait`, `replay`, `dlt`
 * and the client libraries' contract), control records (the cancel
 * thread of every instance) and schedule tick records (the owner of
 * topic.schedules).
 *
 * DESIGN
 *   One input = one parser's choice (the first byte, modulo 4) and one
 *   record value (the rest). A parser must either fail with a non-empty
 *   errstr and build nothing, or succeed with a value that holds its
 *   contract: a result has a task id (a schema-valid empty string is
 *   read as it is) and a known status and encodes and decodes again to the
 *   same id, status and output; an event has a type and encodes and
 *   decodes again to the same type and task id; a control
 *   record names a non-empty task id; a tick record a non-empty schedule
 *   name and a tick >= 0. Anything else aborts, so libFuzzer reports it
 *   like a crash. Built as fuzz-records by ops/fuzz.sh, and with
 *   replay_main.c as the ctest unit.fuzz_replay_records over the kept
 *   corpus (tests/fuzz/corpus/records/, seeded with real records of each
 *   kind).
 */
#include "cancels.h"
#include "common.h"
#include "fuzz_codec.h"
#include "schedule.h"
#include "task.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *what, const char *errstr) {
        fprintf(stderr, "fuzz_records: %s%s%s\n", what, errstr ? ": " : "",
                errstr ? errstr : "");
        abort();
}

/* A refusal names the problem and builds nothing. */
static void refused(bool built, const char *errstr) {
        if (built || !errstr[0])
                broken("a parser failed without a reason or built a value",
                       errstr);
        fuzz_verdict(errstr);
}

static void check_result(sq_codec_t *codec, const sq_result_t *result) {
        sq_result_t *again = NULL;
        char errstr[512]   = "";
        const void *buf;
        size_t len;

        /* Schema-valid is readable: an empty id is the writer's business,
         * a missing one or an unknown status is the decoder's. */
        if (!result->task_id || (int)result->status < 0 ||
            (int)result->status >= SQ_STATUS_CNT)
                broken("a result without a task id or a known status", NULL);
        if (sq_codec_encode_result(codec, result, &buf, &len, errstr,
                                   sizeof(errstr)) != SQ_OK)
                broken("a decoded result does not encode", errstr);
        /* buf is the codec's own buffer: copy it before decoding again. */
        {
                void *copy = sq_malloc(len ? len : 1);
                memcpy(copy, buf, len);
                if (sq_codec_decode_result(codec, copy, len, &again, errstr,
                                           sizeof(errstr)) != SQ_OK)
                        broken("a re-encoded result does not decode", errstr);
                sq_free(copy);
        }
        if (!fuzz_str_eq(again->task_id, result->task_id) ||
            again->status != result->status ||
            again->output_len != result->output_len ||
            (result->output_len &&
             memcmp(again->output, result->output, result->output_len)))
                broken("a result changed through encode and decode", NULL);
        sq_result_destroy(again);
}

static void check_event(sq_codec_t *codec, const sq_event_t *event) {
        sq_event_t *again = NULL;
        char errstr[512]  = "";
        const void *buf;
        size_t len;

        if (!event->type)
                broken("an event without a type", NULL);
        if (sq_codec_encode_event(codec, event, &buf, &len, errstr,
                                  sizeof(errstr)) != SQ_OK)
                broken("a decoded event does not encode", errstr);
        {
                void *copy = sq_malloc(len ? len : 1);
                memcpy(copy, buf, len);
                if (sq_codec_decode_event(codec, copy, len, &again, errstr,
                                          sizeof(errstr)) != SQ_OK)
                        broken("a re-encoded event does not decode", errstr);
                sq_free(copy);
        }
        if (!fuzz_str_eq(again->type, event->type) ||
            !fuzz_str_eq(again->task_id, event->task_id))
                broken("an event changed through encode and decode", NULL);
        sq_event_destroy(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char errstr[512] = "";
        const uint8_t *value;
        size_t len;

        sq_codec_t *codec = fuzz_codec();

        fuzz_verdict(NULL);
        if (size < 1)
                return 0;
        value = data + 1;
        len   = size - 1;
        switch (data[0] % 4) {
        case 0: {
                sq_result_t *result = NULL;
                if (sq_codec_decode_result(codec, value, len, &result, errstr,
                                           sizeof(errstr)) != SQ_OK) {
                        refused(result != NULL, errstr);
                        return 0;
                }
                check_result(codec, result);
                sq_result_destroy(result);
                break;
        }
        case 1: {
                sq_event_t *event = NULL;
                if (sq_codec_decode_event(codec, value, len, &event, errstr,
                                          sizeof(errstr)) != SQ_OK) {
                        refused(event != NULL, errstr);
                        return 0;
                }
                check_event(codec, event);
                sq_event_destroy(event);
                break;
        }
        case 2: {
                char *id = NULL;
                if (sq_cancels_parse(value, len, &id, errstr, sizeof(errstr)) !=
                    SQ_OK) {
                        refused(id != NULL, errstr);
                        return 0;
                }
                if (!id || !*id)
                        broken("a control record without a task id", NULL);
                sq_free(id);
                break;
        }
        case 3: {
                char *name   = NULL;
                int64_t tick = -1;
                if (sq_schedule_record_parse(value, len, &name, &tick, errstr,
                                             sizeof(errstr)) != SQ_OK) {
                        refused(name != NULL, errstr);
                        return 0;
                }
                if (!name || !*name || tick < 0)
                        broken("a tick record without a name or a tick", NULL);
                sq_free(name);
                break;
        }
        }
        return 0;
}
