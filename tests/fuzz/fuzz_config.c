/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_config.c: libFuzzer harness for the configuration parser
 * (config.c): one input is the text of a properties file.
 *
 * DESIGN
 *   The text goes to sq_config_load_file() through a memfd (the parser
 *   reads a path, as swarmq-consumer -c does), then sq_config_finalize()
 *   and sq_config_dump() run on what loaded. Every "SWARMQ_..." line of the
 *   same text is also applied as an environment variable to a second
 *   config (sq_config_load_env()). A refusal must come with an errstr; a
 *   crash, a leak or undefined behaviour is a bug. Built with
 *   -fsanitize=fuzzer by ops/fuzz.sh, and with replay_main.c as a ctest.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_refusal(sq_err_t err, const char *errstr, const char *what) {
        if (err != SQ_OK && !errstr[0]) {
                fprintf(stderr,
                        "fuzz_config: %s failed (%s) with an empty errstr\n",
                        what, sq_err2str(err));
                abort();
        }
}

static void count_key(void *opaque, const char *key, const char *value) {
        size_t *cnt = opaque;
        if (!key || !*key || !value) {
                fprintf(stderr,
                        "fuzz_config: dump emitted an empty key or value\n");
                abort();
        }
        (*cnt)++;
}

static void load_text(const uint8_t *data, size_t size) {
        sq_config_t *conf = sq_config_new();
        char errstr[512]  = "", path[64];
        size_t keys       = 0;
        sq_err_t err;
        int fd;

        if ((fd = memfd_create("fuzz-config", MFD_CLOEXEC)) < 0) {
                perror("fuzz_config: memfd_create");
                abort();
        }
        if (size && write(fd, data, size) != (ssize_t)size) {
                perror("fuzz_config: write");
                abort();
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        err = sq_config_load_file(conf, path, errstr, sizeof(errstr));
        check_refusal(err, errstr, "sq_config_load_file");
        if (err == SQ_OK) {
                errstr[0] = '\0';
                err       = sq_config_finalize(conf, errstr, sizeof(errstr));
                check_refusal(err, errstr, "sq_config_finalize");
                if (err == SQ_OK)
                        sq_config_dump(conf, count_key, &keys);
        }
        close(fd);
        sq_config_destroy(conf);
}

/* Every line starting with SWARMQ_ becomes one environment entry. */
static void load_env(const uint8_t *data, size_t size) {
        sq_config_t *conf = sq_config_new();
        char *text        = sq_malloc(size + 1), *line, *end;
        char *envp[65];
        char errstr[512] = "";
        size_t n         = 0;
        sq_err_t err;

        memcpy(text, data, size);
        text[size] = '\0';
        for (line = text; line && n < 64; line = end ? end + 1 : NULL) {
                if ((end = strchr(line, '\n')))
                        *end = '\0';
                if (!strncmp(line, "SWARMQ_", 7))
                        envp[n++] = line;
        }
        envp[n] = NULL;
        if (n) {
                err = sq_config_load_env(conf, envp, errstr, sizeof(errstr));
                check_refusal(err, errstr, "sq_config_load_env");
        }
        sq_free(text);
        sq_config_destroy(conf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        load_text(data, size);
        load_env(data, size);
        return 0;
}
