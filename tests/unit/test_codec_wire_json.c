/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_codec_wire_json.c: output.format=json. A codec set to JSON output
 * writes results and events as one JSON object each, with the schemas'
 * field names, bytes as "<field>_base64" and times as "<field>_ms"; any
 * codec reads them back (and still reads Avro); a malformed JSON result is
 * refused naming the field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "codec.h"

static sq_codec_t *new_codec(bool json) {
        char errstr[256]  = "";
        sq_codec_t *codec = sq_codec_new(errstr, sizeof(errstr));
        if (!codec)
                fail_msg("%s", errstr);
        sq_codec_set_json_output(codec, json);
        return codec;
}

static void test_result_round_trip(void **state) {
        sq_codec_t *writer = new_codec(true), *reader = new_codec(false);
        static const unsigned char out[] = {0x00, 0xff, 'h', 'i'};
        sq_result_t result = {0}, *back = NULL;
        char errstr[256] = "";
        json_t *root;
        const void *buf;
        size_t len;
        (void)state;

        result.task_id          = "t-1";
        result.status           = SQ_STATUS_DEAD_LETTERED;
        result.output           = (unsigned char *)out;
        result.output_len       = sizeof(out);
        result.error            = "boom";
        result.instance         = "i-1";
        result.attempts         = 3;
        result.source.topic     = "swarmq-tasks";
        result.source.partition = 7;
        result.source.offset    = 42;
        result.created_at       = 1700000000000;
        result.started_at       = 1700000000100;
        result.finished_at      = 1700000000200;
        assert_int_equal(sq_codec_encode_result(writer, &result, &buf, &len,
                                                errstr, sizeof(errstr)),
                         SQ_OK);
        /* What a reader without Avro sees. */
        root = json_loadb(buf, len, 0, NULL);
        assert_non_null(root);
        assert_string_equal(json_string_value(json_object_get(root, "status")),
                            "DEAD_LETTERED");
        assert_string_equal(
            json_string_value(json_object_get(root, "output_base64")),
            "AP9oaQ==");
        assert_null(json_object_get(root, "output"));
        assert_int_equal(
            json_integer_value(json_object_get(root, "finished_at_ms")),
            1700000000200);
        assert_true(json_is_null(json_object_get(root, "agent")));
        assert_int_equal(json_integer_value(json_object_get(
                             json_object_get(root, "source"), "offset")),
                         42);
        json_decref(root);

        assert_int_equal(sq_codec_decode_result(reader, buf, len, &back, errstr,
                                                sizeof(errstr)),
                         SQ_OK);
        assert_string_equal(back->task_id, "t-1");
        assert_int_equal(back->status, SQ_STATUS_DEAD_LETTERED);
        assert_int_equal(back->output_len, sizeof(out));
        assert_memory_equal(back->output, out, sizeof(out));
        assert_string_equal(back->error, "boom");
        assert_null(back->agent);
        assert_string_equal(back->source.topic, "swarmq-tasks");
        assert_int_equal(back->source.partition, 7);
        assert_int_equal(back->started_at, 1700000000100);
        sq_result_destroy(back);

        /* The same codec still writes and reads Avro when set back. */
        sq_codec_set_json_output(writer, false);
        assert_int_equal(sq_codec_encode_result(writer, &result, &buf, &len,
                                                errstr, sizeof(errstr)),
                         SQ_OK);
        assert_int_equal(((const unsigned char *)buf)[0], 0);
        assert_int_equal(sq_codec_decode_result(reader, buf, len, &back, errstr,
                                                sizeof(errstr)),
                         SQ_OK);
        assert_string_equal(back->task_id, "t-1");
        sq_result_destroy(back);
        sq_codec_destroy(writer);
        sq_codec_destroy(reader);
}

static void test_event_round_trip(void **state) {
        sq_codec_t *codec = new_codec(true);
        sq_event_t event = {0}, *back = NULL;
        char errstr[256] = "";
        const void *buf;
        size_t len;
        (void)state;

        event.event_id = "e-1";
        event.type     = "instance_paused";
        event.at       = 1700000000300;
        event.instance = "i-1";
        assert_int_equal(sq_codec_encode_event(codec, &event, &buf, &len,
                                               errstr, sizeof(errstr)),
                         SQ_OK);
        assert_non_null(strstr(buf, "\"at_ms\":1700000000300"));
        assert_non_null(strstr(buf, "\"task_id\":null"));
        assert_int_equal(sq_codec_decode_event(codec, buf, len, &back, errstr,
                                               sizeof(errstr)),
                         SQ_OK);
        assert_string_equal(back->type, "instance_paused");
        assert_null(back->task_id);
        assert_int_equal(back->at, 1700000000300);
        sq_event_destroy(back);
        sq_codec_destroy(codec);
}

static void test_bad_json_names_the_field(void **state) {
        static const struct {
                const char *json;
                const char *want;
        } cases[] = {
            {"{\"task_id\": 5}", "JSON Result field \"task_id\": expected a "
                                 "string, got"},
            {"{\"task_id\":\"t\",\"status\":\"DONE\",\"instance\":\"i\","
             "\"attempts\":1,\"source\":{\"topic\":\"\",\"partition\":0,"
             "\"offset\":0},\"created_at_ms\":0,\"started_at_ms\":0,"
             "\"finished_at_ms\":0,\"output_base64\":\"\"}",
             "\"DONE\" is not SUCCEEDED"},
            {"{\"task_id\":\"t\",\"status\":\"FAILED\",\"instance\":\"i\","
             "\"attempts\":1,\"source\":{\"topic\":\"\",\"partition\":0,"
             "\"offset\":0},\"created_at_ms\":0,\"started_at_ms\":0,"
             "\"finished_at_ms\":0}",
             "\"output_base64\": expected a base64 string, got nothing"},
            {"{\"task_id\": \"t\"", "JSON Result: "},
        };
        sq_codec_t *codec = new_codec(false);
        sq_result_t *back = NULL;
        char errstr[256];
        size_t i;
        (void)state;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                errstr[0] = '\0';
                assert_int_equal(sq_codec_decode_result(codec, cases[i].json,
                                                        strlen(cases[i].json),
                                                        &back, errstr,
                                                        sizeof(errstr)),
                                 SQ_ERR_DECODE);
                if (!strstr(errstr, cases[i].want))
                        fail_msg("case %zu: \"%s\" lacks \"%s\"", i, errstr,
                                 cases[i].want);
        }
        sq_codec_destroy(codec);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_result_round_trip),
            cmocka_unit_test(test_event_round_trip),
            cmocka_unit_test(test_bad_json_names_the_field),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
