/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_codec.c: the codec and the verdict the codec harnesses share (see
 * fuzz_codec.h).
 */
#include "fuzz_codec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);

const char *fuzz_last_error;
static char last_error[512];
static sq_codec_t *codec;

static void codec_destroy(void) {
        sq_codec_destroy(codec);
        codec = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char errstr[512];
        (void)argc;
        (void)argv;
        if (codec)
                return 0;
        if (!(codec = sq_codec_new(errstr, sizeof(errstr)))) {
                fprintf(stderr, "fuzz: cannot create the codec: %s\n", errstr);
                abort();
        }
        atexit(codec_destroy);
        return 0;
}

sq_codec_t *fuzz_codec(void) {
        if (!codec)
                LLVMFuzzerInitialize(NULL, NULL);
        return codec;
}

void fuzz_verdict(const char *errstr) {
        if (!errstr) {
                fuzz_last_error = NULL;
                return;
        }
        snprintf(last_error, sizeof(last_error), "%s", errstr);
        fuzz_last_error = last_error;
}

bool fuzz_str_eq(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return !strcmp(a, b);
}
