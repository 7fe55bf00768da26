/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flags.h: feature flags: `flag.<name>=on|off|N%` in the config, a stable
 * per-task rollout bucket, and the table of the flags swarmq knows.
 *
 * DESIGN
 *   A flag's value is a rollout in basis points (0 = off, 10000 = on,
 *   1250 = "12.5%"). A task takes the flagged path when its bucket,
 *   fnv1a64("<flag name>:<task id>") mod 10000, is below the rollout, so
 *   one task takes the same path on every instance and every attempt, and
 *   raising a rollout only adds tasks to the flagged path (it never flips
 *   a task back). Each flag hashes with its own name, so the tasks in two
 *   flags' first 10 % are independent.
 *
 *   The daemon keeps the current rollouts in atomics (sq_flags_t) and
 *   swaps them on a SIGHUP reload: a read is one relaxed load, no lock.
 *   Unknown flag names are configuration errors, like unknown keys.
 */
#ifndef SQ_FLAGS_H
#define SQ_FLAGS_H

#include <stdatomic.h>

#include "common.h"

typedef enum {
        SQ_FLAG_RANKED_SELECTION = 0, /**< rank by capacity, health, key */
        SQ_FLAG_WORK_STEALING    = 1, /**< idle agents take parked jobs */
} sq_flag_t;
#define SQ_FLAG_CNT 2

#define SQ_FLAG_ON 10000 /* basis points */

/** The current rollouts; readable from any thread. */
typedef struct sq_flags_s {
        atomic_int rollout[SQ_FLAG_CNT]; /* basis points */
} sq_flags_t;

/** @returns the flag's name ("ranked_selection"), static. */
const char *sq_flag_name(sq_flag_t flag);
/** @returns the flag's default rollout in basis points. */
int sq_flag_default(sq_flag_t flag);
/** @returns the flag called @p name, or -1. */
int sq_flag_find(const char *name);

/**
 * @brief Parses "on", "off", "true", "false", "N%" (0 to 100, up to two
 *        decimals) into basis points.
 * @returns SQ_OK or SQ_ERR_CONFIG with @p errstr saying what is expected.
 */
sq_err_t sq_flag_parse(const char *value, int *bpp, char *errstr,
                       size_t errstr_size);

/**
 * @brief Formats basis points as "on", "off" or "N%".
 * @returns a static string or @p buf.
 */
const char *sq_flag_format(int bp, char *buf, size_t size);

/** @returns the task's bucket for @p flag, 0 to 9999 (stable). */
int sq_flag_bucket(sq_flag_t flag, const char *task_id);

/** @brief Sets every rollout from @p rollout[SQ_FLAG_CNT] (basis points). */
void sq_flags_set(sq_flags_t *flags, const int *rollout);

/** @returns the flag's rollout now, in basis points. */
int sq_flags_rollout(const sq_flags_t *flags, sq_flag_t flag);

/** @returns true when @p task_id takes the flagged path. */
bool sq_flags_enabled(const sq_flags_t *flags, sq_flag_t flag,
                      const char *task_id);

#endif /* SQ_FLAGS_H */
