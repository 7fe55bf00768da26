/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common.c: error strings, allocation wrappers, bounded string helpers,
 * number parsing, base64 (both RFC 4648 alphabets) and clocks shared by
 * every module.
 *
 * DESIGN
 *   No state: every function here is reentrant and thread-safe.
 */
#include "common.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *sq_err2str(sq_err_t err) {
        switch (err) {
        case SQ_OK:
                return "success";
        case SQ_ERR_INVALID_ARG:
                return "invalid argument";
        case SQ_ERR_DECODE:
                return "decode error";
        case SQ_ERR_ENCODE:
                return "encode error";
        case SQ_ERR_CONFIG:
                return "configuration error";
        case SQ_ERR_KAFKA:
                return "Kafka error";
        case SQ_ERR_IO:
                return "I/O error";
        case SQ_ERR_NOT_FOUND:
                return "not found";
        case SQ_ERR_FULL:
                return "full";
        case SQ_ERR_TIMED_OUT:
                return "timed out";
        case SQ_ERR_NO_AGENT:
                return "no capable agent";
        case SQ_ERR_HANDLER:
                return "handler failed";
        case SQ_ERR_UNSUPPORTED:
                return "unsupported";
        case SQ_ERR_HTTP:
                return "HTTP server error";
        case SQ_ERR_UNAVAILABLE:
                return "remote service unavailable";
        }
        return "unknown error";
}

void sq_assert_fail(const char *expr, const char *file, int line,
                    const char *func) {
        SQ_LOG(SQ_LOG_CRIT, "ASSERT", "assertion failed: %s at %s:%d (%s)",
               expr, file, line, func);
        abort();
}

static SQ_ATTR_NORETURN void out_of_memory(size_t size) {
        SQ_LOG(SQ_LOG_CRIT, "MEMORY", "out of memory allocating %zu bytes",
               size);
        abort();
}

void *sq_malloc(size_t size) {
        void *ptr = malloc(size ? size : 1);
        if (!ptr)
                out_of_memory(size);
        return ptr;
}

void *sq_calloc(size_t nmemb, size_t size) {
        void *ptr = calloc(nmemb ? nmemb : 1, size ? size : 1);
        if (!ptr)
                out_of_memory(nmemb * size);
        return ptr;
}

void *sq_realloc(void *ptr, size_t size) {
        void *nptr = realloc(ptr, size ? size : 1);
        if (!nptr)
                out_of_memory(size);
        return nptr;
}

char *sq_strdup(const char *str) {
        return sq_strndup(str, strlen(str));
}

char *sq_strndup(const char *str, size_t len) {
        char *copy = sq_malloc(len + 1);
        memcpy(copy, str, len);
        copy[len] = '\0';
        return copy;
}

void *sq_memdup(const void *ptr, size_t len) {
        void *copy;
        if (!len)
                return NULL;
        copy = sq_malloc(len);
        memcpy(copy, ptr, len);
        return copy;
}

void sq_free(void *ptr) {
        free(ptr);
}

size_t sq_strlcpy(char *dst, const char *src, size_t dst_size) {
        size_t len = strlen(src);
        if (dst_size > 0) {
                size_t n = len < dst_size - 1 ? len : dst_size - 1;
                memcpy(dst, src, n);
                dst[n] = '\0';
        }
        return len;
}

void sq_errstr_set(char *errstr, size_t errstr_size, const char *fmt, ...) {
        va_list ap;
        if (!errstr || !errstr_size)
                return;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
}

sq_err_t sq_parse_int64(const char *str, int64_t min, int64_t max,
                        int64_t *valp) {
        char *end = NULL;
        long long val;

        if (!str || !*str)
                return SQ_ERR_INVALID_ARG;
        errno = 0;
        val   = strtoll(str, &end, 10);
        if (errno || !end || *end != '\0' || val < min || val > max)
                return SQ_ERR_INVALID_ARG;
        *valp = (int64_t)val;
        return SQ_OK;
}

sq_err_t sq_parse_bool(const char *str, bool *valp) {
        static const char *truths[] = {"true", "yes", "on", "1"};
        static const char *lies[]   = {"false", "no", "off", "0"};
        size_t i;

        for (i = 0; i < SQ_ARRAY_SIZE(truths); i++) {
                if (!strcasecmp(str, truths[i])) {
                        *valp = true;
                        return SQ_OK;
                }
                if (!strcasecmp(str, lies[i])) {
                        *valp = false;
                        return SQ_OK;
                }
        }
        return SQ_ERR_INVALID_ARG;
}

int64_t sq_clock_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t sq_clock_coarse_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t sq_wallclock_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * base64 (RFC 4648): the JSON codec's payloads (standard alphabet) and
 * the completed-offset map in commit metadata (URL-safe digits)
 */

char sq_base64_digit(unsigned v, sq_base64_alphabet_t alphabet) {
        static const char digits[2][65] = {
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        };
        sq_assert(v < 64 &&
                  (alphabet == SQ_BASE64_STD || alphabet == SQ_BASE64_URL));
        return digits[alphabet][v];
}

int sq_base64_value(unsigned char c, sq_base64_alphabet_t alphabet) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == (alphabet == SQ_BASE64_URL ? '-' : '+'))
                return 62;
        if (c == (alphabet == SQ_BASE64_URL ? '_' : '/'))
                return 63;
        return -1;
}

sq_err_t sq_base64_decode(const char *in, size_t in_len,
                          sq_base64_alphabet_t alphabet, unsigned char **outp,
                          size_t *out_lenp, char *errstr, size_t errstr_size) {
        unsigned char *out = NULL;
        size_t data_len = in_len, i, o = 0;
        uint32_t acc = 0;
        int bits     = 0;
        sq_err_t err = SQ_ERR_DECODE;

        /* Up to two '=' at the very end; anywhere else they are bad input.
         * Bad characters are reported before bad lengths: more useful. */
        while (data_len > 0 && in_len - data_len < 2 && in[data_len - 1] == '=')
                data_len--;
        out = sq_malloc(data_len / 4 * 3 + 3);
        for (i = 0; i < data_len; i++) {
                int v = sq_base64_value((unsigned char)in[i], alphabet);
                if (v < 0) {
                        unsigned char c = (unsigned char)in[i];
                        if (c >= 0x20 && c < 0x7f)
                                sq_errstr_set(errstr, errstr_size,
                                              "invalid base64 character "
                                              "'%c' at position %zu",
                                              c, i);
                        else
                                sq_errstr_set(errstr, errstr_size,
                                              "invalid base64 character "
                                              "0x%02x at position %zu",
                                              c, i);
                        goto done;
                }
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (unsigned char)(acc >> bits);
                        acc &= (1u << bits) - 1;
                }
        }
        if (data_len % 4 == 1) {
                sq_errstr_set(errstr, errstr_size,
                              "invalid base64: %zu characters of data cannot "
                              "encode whole bytes",
                              data_len);
                goto done;
        }
        if (in_len != data_len && in_len % 4 != 0) {
                sq_errstr_set(errstr, errstr_size,
                              "invalid base64: padded input of %zu "
                              "characters is not a multiple of 4",
                              in_len);
                goto done;
        }
        if (o == 0) {
                sq_free(out);
                out = NULL;
        }
        *outp     = out;
        *out_lenp = o;
        out       = NULL;
        err       = SQ_OK;
done:
        sq_free(out);
        return err;
}

char *sq_base64_encode(const void *buf, size_t len,
                       sq_base64_alphabet_t alphabet) {
        const unsigned char *in = buf;
        char *out               = sq_malloc((len + 2) / 3 * 4 + 1);
        size_t i, o = 0;

        for (i = 0; i + 2 < len; i += 3) {
                uint32_t v = ((uint32_t)in[i] << 16) |
                             ((uint32_t)in[i + 1] << 8) | in[i + 2];
                out[o++] = sq_base64_digit((v >> 18) & 63, alphabet);
                out[o++] = sq_base64_digit((v >> 12) & 63, alphabet);
                out[o++] = sq_base64_digit((v >> 6) & 63, alphabet);
                out[o++] = sq_base64_digit(v & 63, alphabet);
        }
        if (i < len) {
                uint32_t v = (uint32_t)in[i] << 16;
                if (i + 1 < len)
                        v |= (uint32_t)in[i + 1] << 8;
                out[o++] = sq_base64_digit((v >> 18) & 63, alphabet);
                out[o++] = sq_base64_digit((v >> 12) & 63, alphabet);
                out[o++] = i + 1 < len
                               ? sq_base64_digit((v >> 6) & 63, alphabet)
                               : '=';
                out[o++] = '=';
        }
        out[o] = '\0';
        return out;
}
