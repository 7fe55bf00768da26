/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay_main.c: runs a fuzz harness over files, without libFuzzer, so the
 * kept corpus (tests/fuzz/corpus/) is a regression test with any compiler
 * and under the ASan+UBSan build of ops/test.sh.
 *
 *   fuzz-replay-<target> PATH...   (files, or directories of files)
 *
 * With FUZZ_REPLAY_VERDICTS=1 in the environment it prints, per input,
 * "ok<TAB>PATH" or "error<TAB>PATH<TAB>REASON" when the harness reports
 * the parser's verdict (fuzz_last_error, defined by fuzz_task.c): the
 * dead-letter test uses it to know which corpus inputs are undecodable.
 *
 * DESIGN
 *   Each file is read whole into a buffer of exactly its size (so a read
 *   past the end is an ASan error, as under libFuzzer) and handed to
 *   LLVMFuzzerTestOneInput(). The harness aborts on a broken property.
 *   Prints how many inputs ran; exit 0, or 2 when a path cannot be read
 *   or no input was found (an empty corpus proves nothing).
 */
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
/* Set by a harness that reports verdicts: NULL when the last input
 * parsed, else why it did not. */
extern const char *fuzz_last_error __attribute__((weak));

static bool verdicts;

static int run_file(const char *path, long *cnt) {
        FILE *fp     = fopen(path, "rb");
        uint8_t *buf = NULL;
        long size;
        int ret = 2;

        if (!fp) {
                fprintf(stderr, "fuzz-replay: cannot open %s: %s\n", path,
                        strerror(errno));
                return 2;
        }
        if (fseek(fp, 0, SEEK_END) || (size = ftell(fp)) < 0 ||
            fseek(fp, 0, SEEK_SET))
                goto done;
        buf = malloc(size ? (size_t)size : 1);
        if (!buf || (size && fread(buf, 1, (size_t)size, fp) != (size_t)size))
                goto done;
        LLVMFuzzerTestOneInput(buf, (size_t)size);
        (*cnt)++;
        if (verdicts && &fuzz_last_error) {
                if (fuzz_last_error)
                        printf("error\t%s\t%s\n", path, fuzz_last_error);
                else
                        printf("ok\t%s\n", path);
        }
        ret = 0;
done:
        if (ret)
                fprintf(stderr, "fuzz-replay: cannot read %s\n", path);
        free(buf);
        fclose(fp);
        return ret;
}

static int run_path(const char *path, long *cnt) {
        struct dirent *de;
        struct stat st;
        char sub[4096];
        DIR *dir;
        int ret = 0;

        if (stat(path, &st)) {
                fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
                return 2;
        }
        if (!S_ISDIR(st.st_mode))
                return run_file(path, cnt);
        if (!(dir = opendir(path))) {
                fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
                return 2;
        }
        while ((de = readdir(dir))) {
                if (de->d_name[0] == '.')
                        continue;
                snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
                ret |= run_path(sub, cnt);
        }
        closedir(dir);
        return ret;
}

int main(int argc, char **argv) {
        long cnt = 0;
        int i, ret = 0;

        if (argc < 2) {
                fprintf(stderr, "Usage: %s PATH...\n", argv[0]);
                return 2;
        }
        verdicts = getenv("FUZZ_REPLAY_VERDICTS") &&
                   !strcmp(getenv("FUZZ_REPLAY_VERDICTS"), "1");
        if (LLVMFuzzerInitialize)
                LLVMFuzzerInitialize(&argc, &argv);
        for (i = 1; i < argc; i++)
                ret |= run_path(argv[i], &cnt);
        fprintf(verdicts ? stderr : stdout,
                "fuzz-replay: %ld inputs ran without a failure\n", cnt);
        if (!cnt) {
                fprintf(stderr, "fuzz-replay: no input found\n");
                return 2;
        }
        return ret;
}
