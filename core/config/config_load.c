/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_load.c: the configuration's sources besides the defaults: a
 * librdkafka-style properties file, and SWARMQ_* environment variables.
 * (Command-line flags are parsed by consumer/main.c and set key by key.)
 *
 * DESIGN
 *   A loader only splits its source into key and value and names the
 *   origin ("file:12", "env SWARMQ_HTTP_PORT"); every pair goes through
 *   sq_config_set(), so validation and error sentences are the same for
 *   every source. The file is read line by line into one bounded buffer
 *   (LINE_MAX_LEN; a longer line is an error, never cut); the first error
 *   stops the load, leaving the keys set before it. One thread, before
 *   sq_config_finalize().
 */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define LINE_MAX_LEN 65536 /* longest properties-file line, bytes */

/* Trims leading and trailing whitespace in place; returns the start. */
static char *trim(char *str) {
        char *end;

        while (isspace((unsigned char)*str))
                str++;
        end = str + strlen(str);
        while (end > str && isspace((unsigned char)end[-1]))
                end--;
        *end = '\0';
        return str;
}

sq_err_t sq_config_load_file(sq_config_t *conf, const char *path, char *errstr,
                             size_t errstr_size) {
        char *line   = NULL;
        char *origin = NULL;
        FILE *fp     = NULL;
        size_t origin_size, len;
        char *key, *value, *eq;
        char errbuf[128];
        int lineno   = 0;
        sq_err_t err = SQ_ERR_CONFIG;

        fp = fopen(path, "r");
        if (!fp) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot open configuration file \"%s\": %s", path,
                              strerror_r(errno, errbuf, sizeof(errbuf)));
                err = SQ_ERR_IO;
                goto done;
        }
        line        = sq_malloc(LINE_MAX_LEN + 2);
        origin_size = strlen(path) + 16;
        origin      = sq_malloc(origin_size);

        while (fgets(line, LINE_MAX_LEN + 2, fp)) {
                lineno++;
                snprintf(origin, origin_size, "%s:%d", path, lineno);
                len = strlen(line);
                if (len > LINE_MAX_LEN && line[len - 1] != '\n') {
                        sq_config_error(errstr, errstr_size, origin,
                                        "line longer than %d bytes",
                                        LINE_MAX_LEN);
                        goto done;
                }
                key = trim(line);
                if (!*key || *key == '#' || *key == '!')
                        continue;
                eq = strchr(key, '=');
                if (!eq) {
                        sq_config_error(errstr, errstr_size, origin,
                                        "expected key=value, got \"%.100s\"",
                                        key);
                        goto done;
                }
                *eq   = '\0';
                value = trim(eq + 1);
                key   = trim(key);
                if (!*key) {
                        sq_config_error(errstr, errstr_size, origin,
                                        "expected key=value, got no key before "
                                        "'='");
                        goto done;
                }
                err = sq_config_set(conf, key, value, origin, errstr,
                                    errstr_size);
                if (err != SQ_OK)
                        goto done;
                err = SQ_ERR_CONFIG;
        }
        if (ferror(fp)) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot read configuration file \"%s\": %s", path,
                              strerror_r(errno, errbuf, sizeof(errbuf)));
                err = SQ_ERR_IO;
                goto done;
        }
        err = SQ_OK;
done:
        if (fp)
                fclose(fp);
        sq_free(origin);
        sq_free(line);
        return err;
}

sq_err_t sq_config_load_env(sq_config_t *conf, char *const *envp, char *errstr,
                            size_t errstr_size) {
        static const char prefix[] = "SWARMQ_";
        const size_t plen          = sizeof(prefix) - 1;
        char *key                  = NULL;
        char *origin               = NULL;
        const char *var, *eq, *p;
        size_t namelen, k;
        sq_err_t err = SQ_OK;

        for (; envp && *envp; envp++) {
                var = *envp;
                eq  = strchr(var, '=');
                if (!eq || strncmp(var, prefix, plen) ||
                    (size_t)(eq - var) < plen)
                        continue;
                namelen = (size_t)(eq - var);
                if (namelen == strlen("SWARMQ_CONFIG") &&
                    !strncmp(var, "SWARMQ_CONFIG", namelen))
                        continue;

                /* SWARMQ_A_B__C -> a.b_c */
                key = sq_malloc(namelen - plen + 1);
                k   = 0;
                for (p = var + plen; p < eq; p++) {
                        if (*p == '_' && p + 1 < eq && p[1] == '_') {
                                key[k++] = '_';
                                p++;
                        } else if (*p == '_') {
                                key[k++] = '.';
                        } else {
                                key[k++] = (char)tolower((unsigned char)*p);
                        }
                }
                key[k] = '\0';
                origin = sq_malloc(namelen + 5);
                snprintf(origin, namelen + 5, "env %.*s", (int)namelen, var);

                err = sq_config_set(conf, key, eq + 1, origin, errstr,
                                    errstr_size);
                sq_free(key);
                sq_free(origin);
                key    = NULL;
                origin = NULL;
                if (err != SQ_OK)
                        break;
        }
        return err;
}
