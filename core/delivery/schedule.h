/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schedule.h: periodic schedules' arithmetic: cron expressions, the ticks
 * of a schedule, what to fire when ticks were missed, and the tick record
 * the owner of the schedules topic writes for each tick it fired.
 *
 * A schedule ticks either on a cron expression (five fields, minute hour
 * day-of-month month day-of-week, in UTC) or every N milliseconds, the
 * ticks then being the multiples of N since 1970 (so every instance
 * agrees on them whenever it started). A tick is named by its time in
 * milliseconds since 1970.
 *
 * The tick record (topic.schedules, keyed by the schedule's name) is a
 * JSON object:
 *
 *   {"schedule": "<name>", "tick": <ms>, "task_id": "<id>",
 *    "at": <ms fired>, "by": "<instance>"}
 *
 * DESIGN
 *   Pure functions of their arguments (time is passed in), no state, no
 *   threads, no I/O: the instance's schedules thread
 *   (consumer/instance/schedules.c) owns the Kafka side and the tests
 *   need no clock. Cron matching walks forward month, day, hour, minute
 *   at a time with timegm()/gmtime_r(), so the next tick of any
 *   expression takes at most a few thousand steps; an expression that
 *   never matches (30 2 31 2 *) is refused when parsed.
 */
#ifndef SQ_SCHEDULE_H
#define SQ_SCHEDULE_H

#include "common.h"

/** A parsed cron expression: one bit per allowed value of each field. */
typedef struct sq_cron_s {
        uint64_t minutes; /**< bit m: minute m (0-59) */
        uint32_t hours;   /**< bit h: hour h (0-23) */
        uint32_t mdays;   /**< bit d: day of month d (1-31) */
        uint32_t months;  /**< bit m: month m (1-12) */
        uint32_t wdays;   /**< bit d: day of week d (0-6, 0 = Sunday) */
        bool mdays_any;   /**< the day-of-month field was "*" */
        bool wdays_any;   /**< the day-of-week field was "*" */
} sq_cron_t;

/** What the owner does with ticks it could not fire on time. */
typedef enum {
        SQ_MISSED_ALL  = 0, /**< fire each (the newest catchup.max) */
        SQ_MISSED_ONCE = 1, /**< fire the newest one, skip the others */
        SQ_MISSED_SKIP = 2, /**< fire none; wait for the next tick */
} sq_missed_t;

/** When a schedule ticks: a cron expression, or every every_ms. */
typedef struct sq_schedule_spec_s {
        sq_cron_t cron;   /**< used when every_ms is 0 */
        int64_t every_ms; /**< > 0: ticks are its multiples since 1970 */
} sq_schedule_spec_t;

/**
 * @brief Parses a cron expression: five whitespace-separated fields
 *        (minute 0-59, hour 0-23, day of month 1-31, month 1-12, day of
 *        week 0-7 with 0 and 7 Sunday), each "*", a number, a range
 *        "a-b", a step "* /n" or "a-b/n" (written without the space), or
 *        a comma-separated list of those; or one of @yearly, @monthly,
 *        @weekly, @daily, @hourly. When both day fields are restricted a
 *        day matching either runs (as in Vixie cron).
 * @param expr borrowed.
 * @returns SQ_OK, or SQ_ERR_CONFIG with @p errstr naming the bad field.
 */
sq_err_t sq_cron_parse(const char *expr, sq_cron_t *cron, char *errstr,
                       size_t errstr_size);

/**
 * @returns the first minute matching @p cron strictly after @p after_ms
 *          (ms since 1970, UTC), or -1 when none within 5 years.
 */
int64_t sq_cron_next(const sq_cron_t *cron, int64_t after_ms);

/** @returns the first tick of @p spec strictly after @p after_ms, or -1. */
int64_t sq_schedule_next(const sq_schedule_spec_t *spec, int64_t after_ms);

/** What sq_schedule_plan() decided. */
typedef struct sq_schedule_plan_s {
        int64_t fire;    /**< the tick to fire now, or 0: none due */
        int64_t cursor;  /**< the newest tick handled before @c fire: the
                          *   caller's cursor from now on */
        int64_t skipped; /**< ticks the missed policy skipped */
} sq_schedule_plan_t;

/**
 * @brief Decides what one schedule does at @p now_ms.
 *
 * @p cursor is the newest tick already handled (fired, or skipped by the
 * policy). A due tick at most @p late_ms old is on time and always fires.
 * Older ones are missed (the owner was down, or was being chosen): under
 * SQ_MISSED_ALL each fires, oldest first, but only the newest
 * @p catchup_max of them (the older are skipped); under SQ_MISSED_ONCE
 * only the newest due tick fires; under SQ_MISSED_SKIP none does.
 * Call again after firing (with cursor = the tick fired) until
 * plan.fire is 0.
 * @returns the plan.
 */
sq_schedule_plan_t sq_schedule_plan(const sq_schedule_spec_t *spec,
                                    sq_missed_t missed, int64_t cursor,
                                    int64_t now_ms, int64_t late_ms,
                                    int64_t catchup_max);

/**
 * @brief The id of the task fired for @p tick of schedule @p name:
 *        "schedule-<name>-<tick>", the same whoever fires it, so a tick
 *        fired twice (at least once, across a crash) is one task id that
 *        the consumers' dedup drops.
 */
void sq_schedule_task_id(const char *name, int64_t tick, char *buf,
                         size_t size);

/**
 * @brief The tick record's value (see the top of this file).
 * @returns a NUL-terminated JSON object (caller owns, sq_free()).
 */
char *sq_schedule_record(const char *name, int64_t tick, const char *task_id,
                         int64_t at_ms, const char *by);

/**
 * @brief Reads a tick record's value.
 * @param buf borrowed, @p len bytes.
 * @param namep set to the schedule's name (caller owns, sq_free()).
 * @returns SQ_OK, or SQ_ERR_DECODE with @p errstr naming what is wrong.
 */
sq_err_t sq_schedule_record_parse(const void *buf, size_t len, char **namep,
                                  int64_t *tickp, char *errstr,
                                  size_t errstr_size);

#endif /* SQ_SCHEDULE_H */
