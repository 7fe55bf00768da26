/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_common.c: the shared base64 codec (core/base/common.c) in both RFC 4648
 * alphabets: the standard one of JSON task payloads and the URL-safe one
 * of the completed-offset map. Known vectors, each alphabet refusing the
 * other's characters, bad input named by position or length, and a round
 * trip of every length up to 64 bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

static const char *const alphabet_names[] = {"standard", "url-safe"};

static void test_digits(void **state) {
        int a, c;
        unsigned v;
        (void)state;

        for (a = SQ_BASE64_STD; a <= SQ_BASE64_URL; a++) {
                int valid = 0;
                for (v = 0; v < 64; v++)
                        assert_int_equal(
                            sq_base64_value((unsigned char)sq_base64_digit(
                                                v, (sq_base64_alphabet_t)a),
                                            (sq_base64_alphabet_t)a),
                            v);
                for (c = 0; c < 256; c++)
                        valid += sq_base64_value((unsigned char)c,
                                                 (sq_base64_alphabet_t)a) >= 0;
                assert_int_equal(valid, 64);
        }
        assert_int_equal(sq_base64_digit(62, SQ_BASE64_STD), '+');
        assert_int_equal(sq_base64_digit(63, SQ_BASE64_STD), '/');
        assert_int_equal(sq_base64_digit(62, SQ_BASE64_URL), '-');
        assert_int_equal(sq_base64_digit(63, SQ_BASE64_URL), '_');
        assert_int_equal(sq_base64_value('=', SQ_BASE64_STD), -1);
        assert_int_equal(sq_base64_value('=', SQ_BASE64_URL), -1);
}

static void test_decode(void **state) {
        static const struct {
                sq_base64_alphabet_t alphabet;
                const char *in;
                const char *out; /* NULL: error */
                size_t out_len;
                const char *why;
        } rows[] = {
            {SQ_BASE64_STD, "", "", 0, NULL},
            {SQ_BASE64_STD, "YQ==", "a", 1, NULL},
            {SQ_BASE64_STD, "YQ", "a", 1, NULL},
            {SQ_BASE64_STD, "YWI=", "ab", 2, NULL},
            {SQ_BASE64_STD, "YWI", "ab", 2, NULL},
            {SQ_BASE64_STD, "YWJj", "abc", 3, NULL},
            {SQ_BASE64_STD, "YWJjZA==", "abcd", 4, NULL},
            {SQ_BASE64_STD, "+/8=", "\xfb\xff", 2, NULL},
            {SQ_BASE64_URL, "-_8=", "\xfb\xff", 2, NULL},
            {SQ_BASE64_URL, "-_8", "\xfb\xff", 2, NULL},
            {SQ_BASE64_URL, "YWJjZA==", "abcd", 4, NULL},
            /* each alphabet refuses the other's two digits */
            {SQ_BASE64_STD, "-_8=", NULL, 0,
             "invalid base64 character '-' at position 0"},
            {SQ_BASE64_STD, "ab_8", NULL, 0,
             "invalid base64 character '_' at position 2"},
            {SQ_BASE64_URL, "+/8=", NULL, 0,
             "invalid base64 character '+' at position 0"},
            {SQ_BASE64_URL, "ab/8", NULL, 0,
             "invalid base64 character '/' at position 2"},
            /* bad input, both alphabets */
            {SQ_BASE64_STD, "A", NULL, 0, "cannot encode whole bytes"},
            {SQ_BASE64_URL, "YWJjZ", NULL, 0, "5 characters of data cannot"},
            {SQ_BASE64_STD, "YQ=x", NULL, 0,
             "invalid base64 character '=' at position 2"},
            {SQ_BASE64_URL, "Y===", NULL, 0,
             "invalid base64 character '=' at position 1"},
            {SQ_BASE64_STD, "YWJ=j", NULL, 0,
             "invalid base64 character '=' at position 3"},
            {SQ_BASE64_URL, "YQ=", NULL, 0, "padded input of 3 characters"},
            {SQ_BASE64_STD, "YW\nI=", NULL, 0,
             "invalid base64 character 0x0a at position 2"},
            {SQ_BASE64_URL, "YW\xc3\xa9", NULL, 0,
             "invalid base64 character 0xc3 at position 2"},
        };
        size_t i;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(rows); i++) {
                unsigned char *out = NULL;
                size_t len         = 99;
                char errstr[128]   = "";
                sq_err_t err = sq_base64_decode(rows[i].in, strlen(rows[i].in),
                                                rows[i].alphabet, &out, &len,
                                                errstr, sizeof(errstr));
                if (!rows[i].out) {
                        if (err != SQ_ERR_DECODE ||
                            !strstr(errstr, rows[i].why))
                                fail_msg("%s \"%s\": got %d \"%s\", expected "
                                         "an error with \"%s\"",
                                         alphabet_names[rows[i].alphabet],
                                         rows[i].in, err, errstr, rows[i].why);
                        assert_null(out);
                        assert_int_equal(len, 99); /* untouched */
                        continue;
                }
                if (err != SQ_OK)
                        fail_msg("%s \"%s\": %s",
                                 alphabet_names[rows[i].alphabet], rows[i].in,
                                 errstr);
                assert_int_equal(len, rows[i].out_len);
                if (len)
                        assert_memory_equal(out, rows[i].out, len);
                else
                        assert_null(out);
                sq_free(out);
        }
}

static void test_encode(void **state) {
        static const struct {
                sq_base64_alphabet_t alphabet;
                const char *in;
                size_t in_len;
                const char *out;
        } rows[] = {
            {SQ_BASE64_STD, "", 0, ""},
            {SQ_BASE64_STD, "a", 1, "YQ=="},
            {SQ_BASE64_STD, "ab", 2, "YWI="},
            {SQ_BASE64_STD, "abc", 3, "YWJj"},
            {SQ_BASE64_STD, "\xfb\xff", 2, "+/8="},
            {SQ_BASE64_URL, "\xfb\xff", 2, "-_8="},
            {SQ_BASE64_URL, "\xfb\xff\xbf", 3, "-_-_"},
        };
        size_t i;
        (void)state;

        for (i = 0; i < SQ_ARRAY_SIZE(rows); i++) {
                char *out = sq_base64_encode(rows[i].in, rows[i].in_len,
                                             rows[i].alphabet);
                assert_string_equal(out, rows[i].out);
                sq_free(out);
        }
}

/* Every length 0..64 of bytes covering all 256 values, both alphabets:
 * decode(encode(x)) == x, and the encoding uses only that alphabet. */
static void test_round_trip(void **state) {
        unsigned char buf[64];
        size_t len, i;
        int a;
        (void)state;

        for (a = SQ_BASE64_STD; a <= SQ_BASE64_URL; a++) {
                for (len = 0; len <= sizeof(buf); len++) {
                        unsigned char *back = NULL;
                        size_t back_len     = 0;
                        char errstr[128]    = "";
                        char *enc;
                        for (i = 0; i < len; i++)
                                buf[i] =
                                    (unsigned char)(i * 67 + len * 29 + 251);
                        enc =
                            sq_base64_encode(buf, len, (sq_base64_alphabet_t)a);
                        assert_int_equal(strlen(enc), (len + 2) / 3 * 4);
                        for (i = 0; enc[i]; i++)
                                assert_true(enc[i] == '=' ||
                                            sq_base64_value(
                                                (unsigned char)enc[i],
                                                (sq_base64_alphabet_t)a) >= 0);
                        if (sq_base64_decode(enc, strlen(enc),
                                             (sq_base64_alphabet_t)a, &back,
                                             &back_len, errstr,
                                             sizeof(errstr)) != SQ_OK)
                                fail_msg("%s length %zu: %s", alphabet_names[a],
                                         len, errstr);
                        assert_int_equal(back_len, len);
                        if (len)
                                assert_memory_equal(back, buf, len);
                        sq_free(back);
                        sq_free(enc);
                }
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_digits),
            cmocka_unit_test(test_decode),
            cmocka_unit_test(test_encode),
            cmocka_unit_test(test_round_trip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
