/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flags.c: feature flag names, parsing and rollout buckets (see flags.h).
 *
 * DESIGN
 *   The bucket hash is FNV-1a 64 over "<flag>:<task id>", documented in
 *   docs/configuration.md so any tool can predict which tasks a rollout
 *   takes. No state beyond sq_flags_t's atomics.
 */
#include "flags.h"
#include "hash.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
        const char *name;
        int def;
} flag_defs[SQ_FLAG_CNT] = {
    [SQ_FLAG_RANKED_SELECTION] = {"ranked_selection", SQ_FLAG_ON},
    [SQ_FLAG_WORK_STEALING]    = {"work_stealing", SQ_FLAG_ON},
};

const char *sq_flag_name(sq_flag_t flag) {
        sq_assert((int)flag >= 0 && flag < SQ_FLAG_CNT);
        return flag_defs[flag].name;
}

int sq_flag_default(sq_flag_t flag) {
        sq_assert((int)flag >= 0 && flag < SQ_FLAG_CNT);
        return flag_defs[flag].def;
}

int sq_flag_find(const char *name) {
        int i;
        for (i = 0; i < SQ_FLAG_CNT; i++)
                if (!strcmp(flag_defs[i].name, name))
                        return i;
        return -1;
}

sq_err_t sq_flag_parse(const char *value, int *bpp, char *errstr,
                       size_t errstr_size) {
        const char *p = value;
        int whole = 0, frac = 0, digits = 0, fdigits = 0;

        if (!strcasecmp(value, "on") || !strcasecmp(value, "true")) {
                *bpp = SQ_FLAG_ON;
                return SQ_OK;
        }
        if (!strcasecmp(value, "off") || !strcasecmp(value, "false")) {
                *bpp = 0;
                return SQ_OK;
        }
        while (isdigit((unsigned char)*p) && digits < 4) {
                whole = whole * 10 + (*p++ - '0');
                digits++;
        }
        if (*p == '.') {
                p++;
                while (isdigit((unsigned char)*p) && fdigits < 2) {
                        frac = frac * 10 + (*p++ - '0');
                        fdigits++;
                }
                if (fdigits == 0)
                        digits = 0;
                if (fdigits == 1)
                        frac *= 10;
        }
        if (!digits || strcmp(p, "%") || whole * 100 + frac > SQ_FLAG_ON) {
                sq_errstr_set(errstr, errstr_size,
                              "expected on, off or a rollout percentage from "
                              "0%% to 100%% with at most two decimals "
                              "(e.g. 12.5%%)");
                return SQ_ERR_CONFIG;
        }
        *bpp = whole * 100 + frac;
        return SQ_OK;
}

const char *sq_flag_format(int bp, char *buf, size_t size) {
        if (bp >= SQ_FLAG_ON)
                return "on";
        if (bp <= 0)
                return "off";
        if (bp % 100)
                snprintf(buf, size, "%d.%02d%%", bp / 100, bp % 100);
        else
                snprintf(buf, size, "%d%%", bp / 100);
        return buf;
}

int sq_flag_bucket(sq_flag_t flag, const char *task_id) {
        uint64_t h = SQ_HASH_FNV64_BASIS;

        /* "<flag>:<task id>", hashed piece by piece */
        h = sq_hash_fnv1a64_str(sq_flag_name(flag), h);
        h = sq_hash_fnv1a64(":", 1, h);
        h = sq_hash_fnv1a64_str(task_id, h);
        return (int)(h % SQ_FLAG_ON);
}

void sq_flags_set(sq_flags_t *flags, const int *rollout) {
        int i;
        for (i = 0; i < SQ_FLAG_CNT; i++)
                atomic_store_explicit(&flags->rollout[i], rollout[i],
                                      memory_order_relaxed);
}

int sq_flags_rollout(const sq_flags_t *flags, sq_flag_t flag) {
        return atomic_load_explicit(&flags->rollout[flag],
                                    memory_order_relaxed);
}

bool sq_flags_enabled(const sq_flags_t *flags, sq_flag_t flag,
                      const char *task_id) {
        int bp = sq_flags_rollout(flags, flag);
        if (bp >= SQ_FLAG_ON)
                return true;
        if (bp <= 0)
                return false;
        return sq_flag_bucket(flag, task_id) < bp;
}
