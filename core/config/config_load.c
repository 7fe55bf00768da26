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
#include "log.h"

#include <librdkafka/rdkafka.h>

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

/* The canonical bootstrap variable, shared with swarmq-producer, and the
 * older consumer-only spelling it replaces. */
#define ENV_BOOTSTRAP            "SWARMQ_BOOTSTRAP_SERVERS"
#define ENV_BOOTSTRAP_DEPRECATED "SWARMQ_KAFKA_BOOTSTRAP_SERVERS"

/* SWARMQ_A_B__C -> a.b_c; @p name is the variable's name without
 * "SWARMQ_", @p len its length. @returns the key (caller frees). */
static char *env_to_key(const char *name, size_t len) {
        char *key = sq_malloc(len + 1);
        size_t i, k = 0;

        for (i = 0; i < len; i++) {
                if (name[i] == '_' && i + 1 < len && name[i + 1] == '_') {
                        key[k++] = '_';
                        i++;
                } else if (name[i] == '_') {
                        key[k++] = '.';
                } else {
                        key[k++] = (char)tolower((unsigned char)name[i]);
                }
        }
        key[k] = '\0';
        return key;
}

/* a.b_c -> SWARMQ_A_B__C, into @p buf. */
static void key_to_env(const char *key, char *buf, size_t size) {
        size_t k = sq_strlcpy(buf, "SWARMQ_", size);

        for (; *key && k + 2 < size; key++) {
                if (*key == '_') {
                        buf[k++] = '_';
                        buf[k++] = '_';
                } else if (*key == '.') {
                        buf[k++] = '_';
                } else {
                        buf[k++] = (char)toupper((unsigned char)*key);
                }
        }
        buf[k] = '\0';
}

/* Whether librdkafka knows property @p name (a bad value still counts:
 * it is reported when the client is built, like a file's). */
static bool kafka_property_known(rd_kafka_conf_t **probe, const char *name,
                                 const char *value) {
        char errstr[256];

        if (!*probe)
                *probe = rd_kafka_conf_new();
        return rd_kafka_conf_set(*probe, name, value, errstr, sizeof(errstr)) !=
               RD_KAFKA_CONF_UNKNOWN;
}

/* Whether the environment variable's key is one swarmq takes: a row of
 * the key table, an agent.*, schedule.* or flag.* key (families nothing
 * else uses;
 * their setters report a bad field), or kafka.<a librdkafka property>.
 * Anything else (SWARMQ_KAFKA_CACHE of ops/kafka.sh, a build option,
 * a typo) is not ours to refuse. */
static bool env_key_taken(rd_kafka_conf_t **probe, const char *key,
                          const char *value) {
        if (!strncmp(key, "agent.", 6) || !strncmp(key, "flag.", 5) ||
            !strncmp(key, "schedule.", 9) || !strncmp(key, "ratelimit.", 10))
                return true;
        if (!strncmp(key, "kafka.", 6))
                return !key[6] /* "kafka." alone: the setter explains */ ||
                       kafka_property_known(probe, key + 6, value);
        return sq_config_key_find(key) != NULL;
}

/* Appends " NAME" (and a suggestion) to the ignored list. */
static void ignored_add(char *list, size_t size, size_t *cntp, const char *var,
                        size_t namelen, const char *key) {
        const char *best;
        char suggestion[160] = "";
        size_t len           = strlen(list);

        best = sq_config_suggest(key, &sq_config_keys[0].name,
                                 sq_config_keys_cnt, sizeof(sq_config_keys[0]));
        if (best) {
                char env[128];
                key_to_env(best, env, sizeof(env));
                snprintf(suggestion, sizeof(suggestion), " (did you mean %s?)",
                         env);
        }
        if (len < size)
                snprintf(list + len, size - len, "%s%.*s%s", *cntp ? ", " : "",
                         (int)namelen, var, suggestion);
        (*cntp)++;
}

sq_err_t sq_config_load_env(sq_config_t *conf, char *const *envp, char *errstr,
                            size_t errstr_size) {
        static const char prefix[] = "SWARMQ_";
        const size_t plen          = sizeof(prefix) - 1;
        rd_kafka_conf_t *probe     = NULL;
        const char *canonical = NULL, *deprecated = NULL;
        char ignored[1024] = "";
        size_t ignored_cnt = 0;
        char *key, *origin;
        const char *var, *eq;
        size_t namelen;
        sq_err_t err = SQ_OK;

        for (; envp && *envp; envp++) {
                var = *envp;
                eq  = strchr(var, '=');
                if (!eq || strncmp(var, prefix, plen) ||
                    (size_t)(eq - var) <= plen)
                        continue;
                namelen = (size_t)(eq - var);
                if (namelen == strlen("SWARMQ_CONFIG") &&
                    !strncmp(var, "SWARMQ_CONFIG", namelen))
                        continue;
                /* The bootstrap servers: applied after the loop, so the
                 * canonical name wins whatever the order. */
                if (namelen == strlen(ENV_BOOTSTRAP) &&
                    !strncmp(var, ENV_BOOTSTRAP, namelen)) {
                        canonical = eq + 1;
                        continue;
                }
                if (namelen == strlen(ENV_BOOTSTRAP_DEPRECATED) &&
                    !strncmp(var, ENV_BOOTSTRAP_DEPRECATED, namelen)) {
                        deprecated = eq + 1;
                        continue;
                }

                key = env_to_key(var + plen, namelen - plen);
                if (!env_key_taken(&probe, key, eq + 1)) {
                        ignored_add(ignored, sizeof(ignored), &ignored_cnt, var,
                                    namelen, key);
                        sq_free(key);
                        continue;
                }
                origin = sq_malloc(namelen + 5);
                snprintf(origin, namelen + 5, "env %.*s", (int)namelen, var);
                err = sq_config_set(conf, key, eq + 1, origin, errstr,
                                    errstr_size);
                sq_free(key);
                sq_free(origin);
                if (err != SQ_OK)
                        goto done;
        }

        if (deprecated)
                SQ_LOG(SQ_LOG_WARNING, "CONFIG",
                       "%s is deprecated: use %s, which swarmq-producer "
                       "reads too%s",
                       ENV_BOOTSTRAP_DEPRECATED, ENV_BOOTSTRAP,
                       canonical ? " (both are set: " ENV_BOOTSTRAP " wins)"
                                 : "");
        if (canonical || deprecated)
                err = sq_config_set(conf, "kafka.bootstrap.servers",
                                    canonical ? canonical : deprecated,
                                    canonical ? "env " ENV_BOOTSTRAP
                                              : "env " ENV_BOOTSTRAP_DEPRECATED,
                                    errstr, errstr_size);
        if (ignored_cnt)
                SQ_LOG(SQ_LOG_WARNING, "CONFIG",
                       "ignoring %zu SWARMQ_* environment variable%s that "
                       "name%s no configuration key: %s",
                       ignored_cnt, ignored_cnt == 1 ? "" : "s",
                       ignored_cnt == 1 ? "s" : "", ignored);
done:
        if (probe)
                rd_kafka_conf_destroy(probe);
        return err;
}
