/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_codec.h: what the codec harnesses (fuzz_task.c, fuzz_records.c)
 * share: one codec kept across inputs, as the poll thread keeps its own,
 * destroyed at exit (ops/fuzz.sh checks leaks then), and the verdict on
 * the last input that replay_main.c prints with FUZZ_REPLAY_VERDICTS=1.
 */
#ifndef SQ_FUZZ_CODEC_H
#define SQ_FUZZ_CODEC_H

#include "codec.h"

#include <stdbool.h>

/* NULL when the last input parsed, else why not (replay_main.c). */
extern const char *fuzz_last_error;

/** @returns the harness's codec, created on first use (aborts if it cannot
 *           be: nothing could be fuzzed). */
sq_codec_t *fuzz_codec(void);

/** @brief Records the verdict on the input: @p errstr copied, or NULL for
 *         an input that parsed. */
void fuzz_verdict(const char *errstr);

/** @returns whether two optional strings are equal (both NULL too). */
bool fuzz_str_eq(const char *a, const char *b);

#endif /* SQ_FUZZ_CODEC_H */
