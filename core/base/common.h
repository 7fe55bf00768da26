/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common.h: what every swarmq module needs: the one error enum, allocation
 * wrappers that abort with a log line on out-of-memory, an assertion that
 * is always on, bounded string helpers, base64 and clocks.
 *
 * DESIGN
 *   Environment errors (network, broker, bad input) travel as sq_err_t
 *   return codes plus an errstr sentence written by the callee. Programmer
 *   errors trip sq_assert(), which is never compiled out. Out of memory is
 *   not recoverable for a daemon with bounded memory by configuration, so
 *   the sq_*alloc() wrappers log and abort, like librdkafka's rd_malloc().
 */
#ifndef SQ_COMMON_H
#define SQ_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The one error enum: SQ_OK is 0, every error is negative. */
typedef enum {
        SQ_OK              = 0,
        SQ_ERR_INVALID_ARG = -1,  /**< a caller passed a bad value */
        SQ_ERR_DECODE      = -2,  /**< bytes could not be decoded */
        SQ_ERR_ENCODE      = -3,  /**< a value could not be encoded */
        SQ_ERR_CONFIG      = -4,  /**< bad configuration key or value */
        SQ_ERR_KAFKA       = -5,  /**< librdkafka reported an error */
        SQ_ERR_IO          = -6,  /**< a system call failed (errno) */
        SQ_ERR_NOT_FOUND   = -7,  /**< no such item */
        SQ_ERR_FULL        = -8,  /**< a bounded container is full */
        SQ_ERR_TIMED_OUT   = -9,  /**< a deadline passed */
        SQ_ERR_NO_AGENT    = -10, /**< no agent has the capabilities */
        SQ_ERR_HANDLER     = -11, /**< a task handler failed */
        SQ_ERR_UNSUPPORTED = -12, /**< not supported (yet) */
        SQ_ERR_HTTP        = -13, /**< the HTTP server failed */
        SQ_ERR_UNAVAILABLE = -14, /**< a remote service did not answer:
                                   *   try again later */
} sq_err_t;

/**
 * @brief A short, static, human description of an error code.
 * @returns a string constant; never NULL.
 */
const char *sq_err2str(sq_err_t err);

#define SQ_ATTR_PRINTF(fmtidx, argidx)                                         \
        __attribute__((format(printf, fmtidx, argidx)))
#define SQ_ATTR_NORETURN __attribute__((noreturn))
#define SQ_UNUSED        __attribute__((unused))

/** @brief Logs the failed expression and aborts. Use via sq_assert(). */
SQ_ATTR_NORETURN void sq_assert_fail(const char *expr, const char *file,
                                     int line, const char *func);

/** Always-on assertion for programmer errors (never for bad input). */
#define sq_assert(expr)                                                        \
        ((expr) ? (void)0 : sq_assert_fail(#expr, __FILE__, __LINE__, __func__))

/* Allocation wrappers: never return NULL, abort with a log line instead. */
void *sq_malloc(size_t size);
void *sq_calloc(size_t nmemb, size_t size);
void *sq_realloc(void *ptr, size_t size);
char *sq_strdup(const char *str);
/** @brief Duplicates @p len bytes of @p str and NUL-terminates the copy. */
char *sq_strndup(const char *str, size_t len);
/** @brief Duplicates @p len bytes (no terminator added); NULL for len 0. */
void *sq_memdup(const void *ptr, size_t len);
/** @brief free() under a name that pairs with sq_malloc(). */
void sq_free(void *ptr);

/**
 * @brief Bounded copy (like strlcpy): always NUL-terminates when
 *        @p dst_size > 0.
 * @returns the length of @p src (truncation if >= @p dst_size).
 */
size_t sq_strlcpy(char *dst, const char *src, size_t dst_size);

/**
 * @brief snprintf() into an errstr buffer; a no-op when @p errstr is NULL.
 */
void sq_errstr_set(char *errstr, size_t errstr_size, const char *fmt, ...)
    SQ_ATTR_PRINTF(3, 4);

/**
 * @brief Parses a whole string as a signed 64-bit integer in
 *        [@p min, @p max]; no trailing garbage allowed.
 * @returns SQ_OK or SQ_ERR_INVALID_ARG.
 */
sq_err_t sq_parse_int64(const char *str, int64_t min, int64_t max,
                        int64_t *valp);

/**
 * @brief Parses a boolean: true/false, yes/no, on/off, 1/0.
 * @returns SQ_OK or SQ_ERR_INVALID_ARG.
 */
sq_err_t sq_parse_bool(const char *str, bool *valp);

/** The two base64 alphabets of RFC 4648. */
typedef enum {
        SQ_BASE64_STD = 0, /**< A-Z a-z 0-9 + / (section 4) */
        SQ_BASE64_URL = 1, /**< A-Z a-z 0-9 - _ (section 5, URL-safe) */
} sq_base64_alphabet_t;

/** @returns the character for the 6-bit value @p v (0..63). */
char sq_base64_digit(unsigned v, sq_base64_alphabet_t alphabet);

/** @returns the 6-bit value of character @p c, or -1 if @p c is not in
 *           @p alphabet ('=' is not). */
int sq_base64_value(unsigned char c, sq_base64_alphabet_t alphabet);

/**
 * @brief Decodes base64 in @p alphabet ('=' padding optional, but only
 *        at the end, and then to a multiple of 4 characters).
 * @param outp on success, a new buffer (caller owns, sq_free()), NULL when
 *             the decoded length is 0.
 * @returns SQ_OK, or SQ_ERR_DECODE with @p errstr naming the first bad
 *          character and its position, or the bad length.
 */
sq_err_t sq_base64_decode(const char *in, size_t in_len,
                          sq_base64_alphabet_t alphabet, unsigned char **outp,
                          size_t *out_lenp, char *errstr, size_t errstr_size);

/**
 * @brief Encodes @p len bytes as padded base64 in @p alphabet.
 * @returns a new NUL-terminated string (caller owns, sq_free()).
 */
char *sq_base64_encode(const void *buf, size_t len,
                       sq_base64_alphabet_t alphabet);

/** @returns monotonic clock in microseconds. */
int64_t sq_clock_us(void);
/**
 * @returns the monotonic clock in microseconds as of the last timer tick
 *          (CLOCK_MONOTONIC_COARSE: a few milliseconds behind at most, and
 *          cheaper): for liveness stamps, never for durations.
 */
int64_t sq_clock_coarse_us(void);
/** @returns wall clock in milliseconds since the Unix epoch. */
int64_t sq_wallclock_ms(void);

#define SQ_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SQ_MIN(a, b)     ((a) < (b) ? (a) : (b))
#define SQ_MAX(a, b)     ((a) > (b) ? (a) : (b))

#endif /* SQ_COMMON_H */
