/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_suggest.c: "did you mean" for unknown configuration keys, agent
 * fields and feature flags: the closest known name by edit distance, or
 * the "kafka." prefix a librdkafka property is missing.
 *
 * DESIGN
 *   Levenshtein distance over one row of at most SUGGEST_MAX_LEN + 1
 *   counters on the stack (no allocation; longer names get no suggestion).
 *   A name is suggested only within a threshold that grows with its length
 *   (1 edit below 6 characters, 2 below 12, else 3), so a short typo is
 *   not matched to an unrelated short key. The candidates are read in
 *   place from any table whose rows start with (or hold) a name pointer,
 *   through a stride. Pure functions of constant tables: any thread.
 */
#include "config_int.h"

#include <stdint.h>
#include <string.h>

#define SUGGEST_MAX_LEN 64 /* no suggestions for longer keys */

/* First words of librdkafka properties people forget to prefix. */
static const char *const kafka_first_words[] = {
    "bootstrap", "security", "sasl",    "ssl",     "client",      "socket",
    "enable",    "auto",     "session", "fetch",   "compression", "statistics",
    "metadata",  "broker",   "request", "message", "queued",      "partition",
};

/* Levenshtein distance, or SIZE_MAX for strings too long to bother. */
static size_t edit_distance(const char *a, const char *b) {
        size_t row[SUGGEST_MAX_LEN + 1];
        size_t alen = strlen(a), blen = strlen(b);
        size_t i, j, diag, up;

        if (alen > SUGGEST_MAX_LEN || blen > SUGGEST_MAX_LEN)
                return SIZE_MAX;
        for (j = 0; j <= blen; j++)
                row[j] = j;
        for (i = 1; i <= alen; i++) {
                diag   = row[0];
                row[0] = i;
                for (j = 1; j <= blen; j++) {
                        up     = row[j];
                        row[j] = SQ_MIN(SQ_MIN(row[j] + 1, row[j - 1] + 1),
                                        diag + (a[i - 1] != b[j - 1]));
                        diag   = up;
                }
        }
        return row[blen];
}

/* How far a typo may be from the real name and still be suggested. */
static size_t suggest_threshold(const char *name) {
        size_t len = strlen(name);
        return len >= 12 ? 3 : len >= 6 ? 2 : 1;
}

/* The closest of @p names to @p name, or NULL when none is close. */
const char *sq_config_suggest(const char *name, const char *const *names,
                              size_t cnt, size_t stride) {
        const char *best = NULL;
        size_t best_dist = suggest_threshold(name) + 1;
        size_t i, dist;

        for (i = 0; i < cnt; i++) {
                const char *cand =
                    *(const char *const *)((const char *)names + i * stride);
                dist = edit_distance(name, cand);
                if (dist < best_dist) {
                        best_dist = dist;
                        best      = cand;
                }
        }
        return best;
}

sq_err_t sq_config_unknown_key(const char *key, const char *origin,
                               char *errstr, size_t errstr_size) {
        const char *best;
        size_t i, len;

        best = sq_config_suggest(key, &sq_config_keys[0].name,
                                 sq_config_keys_cnt, sizeof(sq_config_keys[0]));
        if (best) {
                sq_config_error(errstr, errstr_size, origin,
                                "unknown configuration key \"%s\"; "
                                "did you mean %s?",
                                key, best);
                return SQ_ERR_CONFIG;
        }
        for (i = 0; i < SQ_ARRAY_SIZE(kafka_first_words); i++) {
                len = strlen(kafka_first_words[i]);
                if (!strncmp(key, kafka_first_words[i], len) &&
                    key[len] == '.') {
                        sq_config_error(errstr, errstr_size, origin,
                                        "unknown configuration key \"%s\"; "
                                        "did you mean kafka.%s? (librdkafka "
                                        "properties take the \"kafka.\" "
                                        "prefix)",
                                        key, key);
                        return SQ_ERR_CONFIG;
                }
        }
        sq_config_error(errstr, errstr_size, origin,
                        "unknown configuration key \"%s\"", key);
        return SQ_ERR_CONFIG;
}
