/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c: the stderr log sink (see log.h for the design).
 */
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = SQ_LOG_INFO;

static const char *level_names[] = {"EMERG", "ALERT",  "CRIT", "ERR",
                                    "WARN",  "NOTICE", "INFO", "DEBUG"};

void sq_log_set_level(sq_log_level_t level) {
        atomic_store(&log_level, (int)level);
}

sq_log_level_t sq_log_get_level(void) {
        return (sq_log_level_t)atomic_load_explicit(&log_level,
                                                    memory_order_relaxed);
}

sq_err_t sq_log_level_parse(const char *str, sq_log_level_t *levelp) {
        static const struct {
                const char *name;
                sq_log_level_t level;
        } names[] = {
            {"emerg", SQ_LOG_EMERG},  {"alert", SQ_LOG_ALERT},
            {"crit", SQ_LOG_CRIT},    {"err", SQ_LOG_ERR},
            {"error", SQ_LOG_ERR},    {"warning", SQ_LOG_WARNING},
            {"warn", SQ_LOG_WARNING}, {"notice", SQ_LOG_NOTICE},
            {"info", SQ_LOG_INFO},    {"debug", SQ_LOG_DEBUG},
        };
        int64_t num;
        size_t i;

        for (i = 0; i < SQ_ARRAY_SIZE(names); i++) {
                if (!strcasecmp(str, names[i].name)) {
                        *levelp = names[i].level;
                        return SQ_OK;
                }
        }
        if (sq_parse_int64(str, 0, 7, &num) == SQ_OK) {
                *levelp = (sq_log_level_t)num;
                return SQ_OK;
        }
        return SQ_ERR_INVALID_ARG;
}

void sq_log_write(sq_log_level_t level, const char *fac, const char *fmt, ...) {
        char line[4096];
        struct timespec ts;
        struct tm tm;
        va_list ap;
        int n, m;

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-6s %-6s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     level_names[(int)level & 7], fac);
        if (n < 0)
                return;
        va_start(ap, fmt);
        m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
        va_end(ap);
        if (m < 0)
                m = 0;
        n += m;
        if (n > (int)sizeof(line) - 2)
                n = (int)sizeof(line) - 2;
        line[n++] = '\n';
        /* One write(2) per line keeps threads' lines whole. */
        if (write(STDERR_FILENO, line, (size_t)n) < 0) {
                /* Nowhere left to report it. */
        }
}

void sq_log_rdkafka_cb(const void *rk, int level, const char *fac,
                       const char *buf) {
        char facility[32];
        (void)rk;
        if (level > (int)sq_log_get_level())
                return;
        snprintf(facility, sizeof(facility), "RDK:%s", fac);
        sq_log_write((sq_log_level_t)(level & 7), facility, "%s", buf);
}
