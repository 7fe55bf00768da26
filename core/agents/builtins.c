/* SPDX-License-Identifier: Apache-2.0 */
/*
 * builtins.c: the builtin task handlers (see builtins.h).
 *
 *   noop    succeeds with empty output.
 *   echo    output = payload.
 *   sleep   sleeps the number of milliseconds in the payload (decimal text,
 *           default 100), honouring the task timeout and shutdown.
 *   sha256  output = lowercase hex SHA-256 of the payload (OpenSSL EVP).
 *   fail    fails, with the payload (if any) as the error message; with
 *           the task header succeed_on_attempt=N it succeeds from
 *           attempt N on (a flaky task, for retry tests and demos).
 *   cpu     hashes the payload repeatedly, N rounds from the "rounds"
 *           header (default 1000): CPU-bound work that honours the timeout.
 */
#include "builtins.h"
#include "config.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void set_output(sq_run_t *run, const void *buf, size_t len) {
        if (len > SQ_BUILTIN_MAX_OUTPUT)
                len = SQ_BUILTIN_MAX_OUTPUT;
        run->output     = len ? sq_memdup(buf, len) : NULL;
        run->output_len = len;
}

static bool past_deadline(const sq_run_t *run) {
        return run->deadline_us && sq_clock_us() >= run->deadline_us;
}

/* The task was cancelled by its id (checked where a handler looks at its
 * deadline: O(1), no lock while nothing is cancelled). */
static bool task_cancelled(sq_run_t *run, const char *handler) {
        const char *by = run->cancels ? sq_cancels_task(run->cancels, run->task,
                                                        sq_clock_us())
                                      : NULL;

        if (!by)
                return false;
        snprintf(run->error, sizeof(run->error), "%s: cancelled %s", handler,
                 by);
        return true;
}

static sq_status_t handle_noop(sq_run_t *run) {
        (void)run;
        return SQ_STATUS_SUCCEEDED;
}

static sq_status_t handle_echo(sq_run_t *run) {
        set_output(run, run->task->payload, run->task->payload_len);
        return SQ_STATUS_SUCCEEDED;
}

/* Parses a small decimal payload such as "250"; @p dflt when empty. */
static bool payload_int(const sq_task_t *task, int64_t dflt, int64_t max,
                        int64_t *valp) {
        char buf[32];
        if (!task->payload_len) {
                *valp = dflt;
                return true;
        }
        if (task->payload_len >= sizeof(buf))
                return false;
        memcpy(buf, task->payload, task->payload_len);
        buf[task->payload_len] = '\0';
        return sq_parse_int64(buf, 0, max, valp) == SQ_OK;
}

static sq_status_t handle_sleep(sq_run_t *run) {
        int64_t ms, until_us;

        if (!payload_int(run->task, 100, 86400000, &ms)) {
                snprintf(run->error, sizeof(run->error),
                         "sleep: payload must be a number of milliseconds "
                         "from 0 to 86400000");
                return SQ_STATUS_FAILED;
        }
        until_us = sq_clock_us() + ms * 1000;
        /* Sleep in slices so a timeout or shutdown ends the task early. */
        for (;;) {
                int64_t now = sq_clock_us(), slice_us;
                struct timespec ts;
                if (now >= until_us)
                        break;
                if (past_deadline(run)) {
                        snprintf(run->error, sizeof(run->error),
                                 "sleep: timed out after %lld ms of %lld ms",
                                 (long long)(ms - (until_us - now) / 1000),
                                 (long long)ms);
                        return SQ_STATUS_TIMED_OUT;
                }
                if (task_cancelled(run, "sleep"))
                        return SQ_STATUS_CANCELLED;
                if (run->cancel && atomic_load(run->cancel)) {
                        snprintf(run->error, sizeof(run->error),
                                 "sleep: cancelled by instance shutdown");
                        return SQ_STATUS_FAILED;
                }
                slice_us = SQ_MIN(until_us - now, 20000);
                if (run->deadline_us)
                        slice_us =
                            SQ_MIN(slice_us, SQ_MAX(run->deadline_us - now, 1));
                ts.tv_sec  = (time_t)(slice_us / 1000000);
                ts.tv_nsec = (long)(slice_us % 1000000) * 1000;
                nanosleep(&ts, NULL);
        }
        return SQ_STATUS_SUCCEEDED;
}

static void hex_encode(const unsigned char *in, size_t len, char *out) {
        static const char digits[] = "0123456789abcdef";
        size_t i;
        for (i = 0; i < len; i++) {
                out[2 * i]     = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * len] = '\0';
}

static bool sha256(const void *buf, size_t len, unsigned char *md) {
        unsigned int md_len = 0;
        return EVP_Digest(buf, len, md, &md_len, EVP_sha256(), NULL) == 1 &&
               md_len == 32;
}

static sq_status_t handle_sha256(sq_run_t *run) {
        unsigned char md[32];
        char hex[65];

        if (!sha256(run->task->payload ? (const void *)run->task->payload
                                       : (const void *)"",
                    run->task->payload_len, md)) {
                snprintf(run->error, sizeof(run->error),
                         "sha256: OpenSSL digest failed");
                return SQ_STATUS_FAILED;
        }
        hex_encode(md, sizeof(md), hex);
        set_output(run, hex, 64);
        return SQ_STATUS_SUCCEEDED;
}

static sq_status_t handle_fail(sq_run_t *run) {
        const char *from = sq_task_header(run->task, "succeed_on_attempt");
        int64_t n;

        if (from) {
                if (sq_parse_int64(from, 1, INT32_MAX, &n) != SQ_OK) {
                        snprintf(run->error, sizeof(run->error),
                                 "fail: header succeed_on_attempt=\"%.64s\" "
                                 "must be a number from 1 to 2147483647",
                                 from);
                        return SQ_STATUS_FAILED;
                }
                if (run->task->attempt >= n) {
                        char out[64];
                        int len = snprintf(out, sizeof(out),
                                           "succeeded on attempt %d",
                                           (int)run->task->attempt);
                        set_output(run, out, (size_t)len);
                        return SQ_STATUS_SUCCEEDED;
                }
        }
        if (run->task->payload_len)
                snprintf(
                    run->error, sizeof(run->error), "%.*s",
                    (int)SQ_MIN(run->task->payload_len, sizeof(run->error) - 1),
                    (const char *)run->task->payload);
        else
                snprintf(run->error, sizeof(run->error),
                         "task failed on purpose (builtin fail handler)");
        return SQ_STATUS_FAILED;
}

static sq_status_t handle_cpu(sq_run_t *run) {
        const char *rounds_str = sq_task_header(run->task, "rounds");
        unsigned char md[32]   = {0};
        char hex[65];
        int64_t rounds = 1000, i;

        if (rounds_str &&
            sq_parse_int64(rounds_str, 1, 1000000000, &rounds) != SQ_OK) {
                snprintf(run->error, sizeof(run->error),
                         "cpu: header rounds=\"%.64s\" must be a number "
                         "from 1 to 1000000000",
                         rounds_str);
                return SQ_STATUS_FAILED;
        }
        if (!sha256(run->task->payload ? (const void *)run->task->payload
                                       : (const void *)"",
                    run->task->payload_len, md))
                goto digest_failed;
        for (i = 1; i < rounds; i++) {
                if ((i & 1023) == 0 && past_deadline(run)) {
                        snprintf(run->error, sizeof(run->error),
                                 "cpu: timed out after %lld of %lld rounds",
                                 (long long)i, (long long)rounds);
                        return SQ_STATUS_TIMED_OUT;
                }
                if ((i & 1023) == 0 && task_cancelled(run, "cpu"))
                        return SQ_STATUS_CANCELLED;
                if (!sha256(md, sizeof(md), md))
                        goto digest_failed;
        }
        hex_encode(md, sizeof(md), hex);
        set_output(run, hex, 64);
        return SQ_STATUS_SUCCEEDED;

digest_failed:
        snprintf(run->error, sizeof(run->error), "cpu: OpenSSL digest failed");
        return SQ_STATUS_FAILED;
}

/* One row per name of SQ_CONFIG_BUILTINS: a name without its
 * handle_<name> function does not compile. */
#define BUILTIN_ROW(name) {#name, handle_##name},
static const struct {
        const char *name;
        sq_builtin_fn_t *fn;
} builtins[] = {SQ_CONFIG_BUILTINS(BUILTIN_ROW)};

sq_builtin_fn_t *sq_builtin_lookup(const char *name) {
        size_t i;
        for (i = 0; i < SQ_ARRAY_SIZE(builtins); i++)
                if (!strcmp(builtins[i].name, name))
                        return builtins[i].fn;
        return NULL;
}
