/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schedule.c: cron expressions, a schedule's ticks, the missed-tick
 * policies and the tick record (schedule.h).
 *
 * DESIGN
 *   No state: every function computes from its arguments. Cron times are
 *   UTC (timegm, gmtime_r): a schedule means the same instant on every
 *   instance whatever its TZ. Counting ticks over a long outage walks
 *   them one by one for cron (every.ms is arithmetic); the walk is
 *   bounded (SCAN_MAX ticks), past which the oldest are treated as
 *   skipped, so a schedule that was down for years costs a bounded scan.
 */
#include "schedule.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MINUTE_MS 60000
/* Longest a cron search looks ahead, and most ticks one plan walks. */
#define SEARCH_YEARS 5
#define SCAN_MAX     2000000
#define NAME_MAX_LEN 255
/* A cron field's longest text (with its NUL), and room for the longest
 * reason parse_field() gives: it quotes an item of the field and the
 * item's unexpected tail, each up to FIELD_MAX - 1 bytes. */
#define FIELD_MAX 128
#define WHY_MAX   (2 * FIELD_MAX + 64)

/* One cron field's name and range. */
typedef struct field_s {
        const char *name;
        int min;
        int max;
} field_t;

static const field_t fields[5] = {
    {"minute", 0, 59}, {"hour", 0, 23},       {"day of month", 1, 31},
    {"month", 1, 12},  {"day of week", 0, 7},
};

static bool parse_int(const char **sp, int *out) {
        const char *s = *sp;
        long v        = 0;

        if (!isdigit((unsigned char)*s))
                return false;
        while (isdigit((unsigned char)*s)) {
                v = v * 10 + (*s++ - '0');
                if (v > 1000)
                        return false;
        }
        *sp  = s;
        *out = (int)v;
        return true;
}

/* Parses one field (@p text, @p len bytes) into the bits of @p maskp. */
static bool parse_field(const char *text, size_t len, const field_t *f,
                        uint64_t *maskp, bool *anyp, char *why,
                        size_t why_size) {
        char buf[FIELD_MAX];
        char *item, *comma;
        uint64_t mask = 0;

        if (len >= sizeof(buf)) {
                snprintf(why, why_size, "too long");
                return false;
        }
        memcpy(buf, text, len);
        buf[len] = '\0';
        *anyp    = !strcmp(buf, "*");
        for (item = buf; item; item = comma ? comma + 1 : NULL) {
                const char *s;
                int lo, hi, step = 1, v;

                if ((comma = strchr(item, ',')))
                        *comma = '\0';
                s = item;

                if (*s == '*') {
                        lo = f->min;
                        hi = f->max;
                        s++;
                } else {
                        if (!parse_int(&s, &lo)) {
                                snprintf(why, why_size,
                                         "\"%s\" is not a number, a range "
                                         "or *",
                                         item);
                                return false;
                        }
                        hi = lo;
                        if (*s == '-') {
                                s++;
                                if (!parse_int(&s, &hi)) {
                                        snprintf(why, why_size,
                                                 "\"%s\": a range is a-b",
                                                 item);
                                        return false;
                                }
                        }
                }
                if (*s == '/') {
                        s++;
                        if (!parse_int(&s, &step) || step < 1) {
                                snprintf(why, why_size,
                                         "\"%s\": a step is /N with N >= 1",
                                         item);
                                return false;
                        }
                        if (lo == hi && item[0] != '*')
                                hi = f->max; /* "5/15": from 5 on */
                }
                if (*s) {
                        snprintf(why, why_size, "\"%s\": unexpected \"%s\"",
                                 item, s);
                        return false;
                }
                if (lo < f->min || hi > f->max || lo > hi) {
                        snprintf(why, why_size, "\"%s\" is outside %d-%d", item,
                                 f->min, f->max);
                        return false;
                }
                for (v = lo; v <= hi; v += step)
                        mask |= UINT64_C(1) << v;
        }
        if (!mask) {
                snprintf(why, why_size, "empty");
                return false;
        }
        *maskp = mask;
        return true;
}

sq_err_t sq_cron_parse(const char *expr, sq_cron_t *cron, char *errstr,
                       size_t errstr_size) {
        static const struct {
                const char *name, *expr;
        } macros[] = {
            {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
            {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
            {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
            {"@hourly", "0 * * * *"},
        };
        const char *s = expr, *start;
        uint64_t masks[5];
        bool any[5];
        char why[WHY_MAX];
        size_t i, n = 0;

        memset(cron, 0, sizeof(*cron));
        for (i = 0; i < SQ_ARRAY_SIZE(macros); i++)
                if (!strcmp(expr, macros[i].name))
                        return sq_cron_parse(macros[i].expr, cron, errstr,
                                             errstr_size);
        for (;;) {
                while (isspace((unsigned char)*s))
                        s++;
                if (!*s)
                        break;
                start = s;
                while (*s && !isspace((unsigned char)*s))
                        s++;
                if (n == 5) {
                        sq_errstr_set(errstr, errstr_size,
                                      "cron \"%s\": more than five fields "
                                      "(minute hour day-of-month month "
                                      "day-of-week)",
                                      expr);
                        return SQ_ERR_CONFIG;
                }
                if (!parse_field(start, (size_t)(s - start), &fields[n],
                                 &masks[n], &any[n], why, sizeof(why))) {
                        sq_errstr_set(errstr, errstr_size,
                                      "cron \"%s\": %s field: %s", expr,
                                      fields[n].name, why);
                        return SQ_ERR_CONFIG;
                }
                n++;
        }
        if (n != 5) {
                sq_errstr_set(errstr, errstr_size,
                              "cron \"%s\": %zu fields, expected five (minute "
                              "hour day-of-month month day-of-week) or "
                              "@hourly, @daily, @weekly, @monthly, @yearly",
                              expr, n);
                return SQ_ERR_CONFIG;
        }
        cron->minutes = masks[0];
        cron->hours   = (uint32_t)masks[1];
        cron->mdays   = (uint32_t)masks[2];
        cron->months  = (uint32_t)masks[3];
        cron->wdays   = (uint32_t)(masks[4] & 0x7f);
        if (masks[4] & (UINT64_C(1) << 7)) /* 7 is Sunday too */
                cron->wdays |= 1;
        cron->mdays_any = any[2];
        cron->wdays_any = any[4];
        if (sq_cron_next(cron, 0) < 0) {
                sq_errstr_set(errstr, errstr_size,
                              "cron \"%s\": never matches (no such day)", expr);
                return SQ_ERR_CONFIG;
        }
        return SQ_OK;
}

static bool day_matches(const sq_cron_t *cron, const struct tm *tm) {
        bool md = (cron->mdays >> tm->tm_mday) & 1;
        bool wd = (cron->wdays >> tm->tm_wday) & 1;

        /* Vixie cron: with both fields restricted, either one matches. */
        if (!cron->mdays_any && !cron->wdays_any)
                return md || wd;
        return md && wd;
}

int64_t sq_cron_next(const sq_cron_t *cron, int64_t after_ms) {
        time_t t = (time_t)(after_ms / MINUTE_MS + 1) * 60;
        time_t limit;
        struct tm tm;

        if (after_ms < 0)
                t = 0;
        limit = t + (time_t)SEARCH_YEARS * 366 * 86400;
        while (t < limit) {
                gmtime_r(&t, &tm);
                if (!((cron->months >> (tm.tm_mon + 1)) & 1)) {
                        tm.tm_mon++;
                        tm.tm_mday = 1;
                        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
                } else if (!day_matches(cron, &tm)) {
                        tm.tm_mday++;
                        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
                } else if (!((cron->hours >> tm.tm_hour) & 1)) {
                        tm.tm_hour++;
                        tm.tm_min = tm.tm_sec = 0;
                } else if (!((cron->minutes >> tm.tm_min) & 1)) {
                        tm.tm_min++;
                        tm.tm_sec = 0;
                } else {
                        return (int64_t)t * 1000;
                }
                t = timegm(&tm); /* normalizes the overflowed field */
        }
        return -1;
}

int64_t sq_schedule_next(const sq_schedule_spec_t *spec, int64_t after_ms) {
        if (spec->every_ms > 0) {
                if (after_ms < 0)
                        return 0;
                return (after_ms / spec->every_ms + 1) * spec->every_ms;
        }
        return sq_cron_next(&spec->cron, after_ms);
}

/* The newest tick <= @p now_ms, searching from @p first (a tick <= now);
 * *@p cntp the ticks in [first, newest], *@p prevp the one before the
 * newest (or @p before when newest == first). The scan stops after
 * SCAN_MAX ticks: what lies past it is counted as one step. */
static int64_t newest_due(const sq_schedule_spec_t *spec, int64_t first,
                          int64_t before, int64_t now_ms, int64_t *cntp,
                          int64_t *prevp) {
        int64_t t = first, prev = before, cnt = 1, next;

        if (spec->every_ms > 0) {
                int64_t newest = now_ms / spec->every_ms * spec->every_ms;
                *cntp          = (newest - first) / spec->every_ms + 1;
                *prevp = newest == first ? before : newest - spec->every_ms;
                return newest;
        }
        while ((next = sq_cron_next(&spec->cron, t)) >= 0 && next <= now_ms &&
               cnt < SCAN_MAX) {
                prev = t;
                t    = next;
                cnt++;
        }
        *cntp  = cnt;
        *prevp = prev;
        return t;
}

/* The @p n-th tick after tick @p t (n >= 1). */
static int64_t advance(const sq_schedule_spec_t *spec, int64_t t, int64_t n) {
        if (spec->every_ms > 0)
                return t + n * spec->every_ms;
        while (n-- > 0 && t >= 0)
                t = sq_cron_next(&spec->cron, t);
        return t;
}

sq_schedule_plan_t sq_schedule_plan(const sq_schedule_spec_t *spec,
                                    sq_missed_t missed, int64_t cursor,
                                    int64_t now_ms, int64_t late_ms,
                                    int64_t catchup_max) {
        sq_schedule_plan_t plan = {0, cursor, 0};
        int64_t first           = sq_schedule_next(spec, cursor);
        int64_t newest, prev, cnt, t;

        if (first < 0 || first > now_ms)
                return plan; /* nothing due */
        if (now_ms - first <= late_ms) {
                plan.fire = first; /* on time */
                return plan;
        }
        newest = newest_due(spec, first, cursor, now_ms, &cnt, &prev);
        switch (missed) {
        case SQ_MISSED_ALL:
                if (cnt > catchup_max) {
                        /* Skip the oldest: keep the newest catchup_max. */
                        plan.skipped = cnt - catchup_max;
                        plan.cursor =
                            plan.skipped == 1
                                ? first
                                : advance(spec, first, plan.skipped - 1);
                        plan.fire = catchup_max > 0
                                        ? sq_schedule_next(spec, plan.cursor)
                                        : 0;
                } else {
                        plan.fire = first;
                }
                break;
        case SQ_MISSED_ONCE:
                plan.skipped = cnt - 1;
                plan.cursor  = prev;
                plan.fire    = newest;
                break;
        case SQ_MISSED_SKIP:
                /* Skip every late tick; fire the newest only if it is on
                 * time. */
                t            = now_ms - newest <= late_ms ? prev : newest;
                plan.skipped = t == newest ? cnt : cnt - 1;
                plan.cursor  = t;
                plan.fire    = t == newest ? 0 : newest;
                break;
        }
        return plan;
}

void sq_schedule_task_id(const char *name, int64_t tick, char *buf,
                         size_t size) {
        snprintf(buf, size, "schedule-%s-%lld", name, (long long)tick);
}

char *sq_schedule_record(const char *name, int64_t tick, const char *task_id,
                         int64_t at_ms, const char *by) {
        json_t *obj = json_object();
        char *text, *copy;

        json_object_set_new(obj, "schedule", json_string(name));
        json_object_set_new(obj, "tick", json_integer(tick));
        json_object_set_new(obj, "task_id", json_string(task_id));
        json_object_set_new(obj, "at", json_integer(at_ms));
        json_object_set_new(obj, "by", json_string(by));
        text = json_dumps(obj, JSON_COMPACT);
        sq_assert(text);
        copy = sq_strdup(text);
        free(text); /* jansson's allocator */
        json_decref(obj);
        return copy;
}

sq_err_t sq_schedule_record_parse(const void *buf, size_t len, char **namep,
                                  int64_t *tickp, char *errstr,
                                  size_t errstr_size) {
        json_t *root = NULL, *name, *tick;
        json_error_t jerr;
        sq_err_t err = SQ_ERR_DECODE;

        root = json_loadb(buf, len, 0, &jerr);
        if (!root) {
                sq_errstr_set(errstr, errstr_size,
                              "tick record: not JSON (line %d, column %d: %s)",
                              jerr.line, jerr.column, jerr.text);
                goto done;
        }
        name = json_object_get(root, "schedule");
        tick = json_object_get(root, "tick");
        if (!json_is_string(name) || json_string_length(name) == 0 ||
            json_string_length(name) > NAME_MAX_LEN ||
            memchr(json_string_value(name), '\0', json_string_length(name)) ||
            !json_is_integer(tick) || json_integer_value(tick) < 0) {
                sq_errstr_set(errstr, errstr_size,
                              "tick record: expected an object with "
                              "\"schedule\": a name and \"tick\": a time in "
                              "ms since 1970");
                goto done;
        }
        *namep = sq_strdup(json_string_value(name));
        *tickp = (int64_t)json_integer_value(tick);
        err    = SQ_OK;
done:
        json_decref(root);
        return err;
}
