/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h: the one log sink. One line per event to stderr:
 *   2026-11-28T02:40:00.123Z INFO  POLL  assigned partitions count=12
 *
 * DESIGN
 *   Levels are syslog's. The level is a process-wide atomic set once by
 *   main (the only mutable global allowed in core/, because every thread
 *   must see it without a handle). SQ_LOG tests the level before any
 *   formatting so debug lines cost one load when off. Each line is written
 *   with a single write(2) so lines from different threads never interleave;
 *   no lock is held while writing. librdkafka's own log is routed here by
 *   sq_log_rdkafka_cb().
 */
#ifndef SQ_LOG_H
#define SQ_LOG_H

#include "common.h"

typedef enum {
        SQ_LOG_EMERG   = 0,
        SQ_LOG_ALERT   = 1,
        SQ_LOG_CRIT    = 2,
        SQ_LOG_ERR     = 3,
        SQ_LOG_WARNING = 4,
        SQ_LOG_NOTICE  = 5,
        SQ_LOG_INFO    = 6,
        SQ_LOG_DEBUG   = 7,
} sq_log_level_t;

/** @brief Sets the process-wide log level (lines above it are dropped). */
void sq_log_set_level(sq_log_level_t level);
/** @returns the current process-wide log level. */
sq_log_level_t sq_log_get_level(void);
/**
 * @brief Parses "debug", "info", "notice", "warning", "err"/"error",
 *        "crit", or a number 0..7.
 * @returns SQ_OK or SQ_ERR_INVALID_ARG.
 */
sq_err_t sq_log_level_parse(const char *str, sq_log_level_t *levelp);

/** @brief Formats and writes one line; use SQ_LOG() instead. */
void sq_log_write(sq_log_level_t level, const char *fac, const char *fmt, ...)
    SQ_ATTR_PRINTF(3, 4);

#define SQ_LOG(level, fac, ...)                                                \
        do {                                                                   \
                if ((level) <= sq_log_get_level())                             \
                        sq_log_write(level, fac, __VA_ARGS__);                 \
        } while (0)

/**
 * @brief A librdkafka log_cb that routes its lines through this sink
 *        (set with rd_kafka_conf_set_log_cb()). @p rk is unused (void *
 *        to keep librdkafka types out of this header).
 */
void sq_log_rdkafka_cb(const void *rk, int level, const char *fac,
                       const char *buf);

#endif /* SQ_LOG_H */
