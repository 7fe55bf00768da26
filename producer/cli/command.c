/* SPDX-License-Identifier: Apache-2.0 */
/*
 * command.c: the command layer of swarmq-producer (see command.h): the
 * option loop, argument checks, the broker check, the codec, the Kafka
 * clients and the shared output.
 *
 * DESIGN
 *   Single-threaded (the command's main thread). The option loop is
 *   getopt_long() restarted for each command (optind = 0 re-initializes
 *   glibc's getopt), with opterr off and a leading ':' so that a missing
 *   value and an unknown option come back to us and are reported in the
 *   CLI's words. Clients: the configuration comes from
 *   core/kafka/kafka_conf.c (profile, the command's settings, then -b and
 *   -X, which may override them); a rejected property is a usage error
 *   naming it. A consumer must see a broker answer within
 *   --connect-timeout-ms before the command goes on, else exit code 3.
 */
#include "command.h"

#include "kafka_conf.h"
#include "schema_registry.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WARNINGS 20 /* undecodable-record warnings printed */

void sq_cmd_init(sq_cmd_t *cmd, const sq_cli_t *cli, const char *name,
                 void (*usage)(FILE *fp)) {
        memset(cmd, 0, sizeof(*cmd));
        cmd->cli   = cli;
        cmd->name  = name;
        cmd->usage = usage;
}

void sq_cmd_term(sq_cmd_t *cmd) {
        sq_codec_destroy(cmd->codec);
        cmd->codec = NULL;
        sq_schema_registry_destroy(cmd->registry);
        cmd->registry = NULL;
}

/* Whether @p word (as written, "--brokers=x" or "-b") or short option
 * @p letter is one of the global options. */
static bool is_global_option(const char *word, int letter) {
        const struct option *o;
        size_t len;

        if (!strncmp(word, "--", 2)) {
                word += 2;
                len = strcspn(word, "=");
                for (o = sq_cli_global_options; o->name; o++) {
                        if (strlen(o->name) == len &&
                            !strncmp(o->name, word, len))
                                return true;
                }
                return false;
        }
        for (o = sq_cli_global_options; o->name; o++) {
                if (letter && o->val == letter)
                        return true;
        }
        return false;
}

/* An option the command does not have: a global option given after the
 * command is told where it goes, a near miss gets a did-you-mean. */
static int unknown_option(const sq_cmd_t *cmd, const char *word, int letter,
                          const struct option *longopts) {
        char hint[160], shown[8];

        if (strncmp(word, "--", 2) && letter) {
                snprintf(shown, sizeof(shown), "-%c", letter);
                word = shown; /* "-qn" names -q, not the cluster */
        }
        if (is_global_option(word, letter))
                return sq_cli_usage_error(
                    cmd->name,
                    "%s is a global option: give it before the command, as "
                    "in '" SQ_CLI_PROG " %s ... %s ...'",
                    word, word, cmd->name);
        return sq_cli_usage_error(
            cmd->name, "unknown option %s%s", word,
            sq_cli_option_hint(word, longopts, hint, sizeof(hint)));
}

int sq_cmd_parse(const sq_cmd_t *cmd, int argc, char **argv,
                 const char *shortopts, const struct option *longopts,
                 sq_cmd_opt_cb_t *cb, void *opts) {
        int opt, ret, longindex;
        char word[64];

        optind = 0; /* glibc: 0 re-initializes getopt for this argv */
        opterr = 0;
        while ((longindex = -1, opt = getopt_long(argc, argv, shortopts,
                                                  longopts, &longindex)) !=
               -1) {
                switch (opt) {
                case 'h':
                        cmd->usage(stdout);
                        return SQ_CLI_EXIT_OK;
                case ':':
                        return sq_cli_usage_error(cmd->name,
                                                  "option %s needs a value",
                                                  argv[optind - 1]);
                case '?':
                        return unknown_option(cmd, argv[optind - 1], optopt,
                                              longopts);
                default:
                        /* The option as a message names it (argv[optind -
                         * 1] is its value when given apart). */
                        if (longindex >= 0)
                                snprintf(word, sizeof(word), "--%s",
                                         longopts[longindex].name);
                        else
                                snprintf(word, sizeof(word), "-%c", opt);
                        ret = cb(cmd, opts, opt, optarg, word);
                        if (ret != SQ_CMD_CONTINUE)
                                return ret;
                }
        }
        if (cmd->args_indexp) {
                *cmd->args_indexp = optind;
                return SQ_CMD_CONTINUE;
        }
        if (optind < argc)
                return sq_cli_usage_error(
                    cmd->name, "unexpected argument \"%s\"", argv[optind]);
        return SQ_CMD_CONTINUE;
}

bool sq_cmd_int_arg(const sq_cmd_t *cmd, const char *opt, const char *arg,
                    int64_t min, int64_t max, const char *what, int64_t *valp) {
        if (sq_parse_int64(arg, min, max, valp) == SQ_OK)
                return true;
        if (what)
                sq_cli_usage_error(cmd->name, "%s expects %s, got \"%s\"", opt,
                                   what, arg);
        else
                sq_cli_usage_error(cmd->name,
                                   "%s expects a number in %" PRId64
                                   "..%" PRId64 ", got \"%s\"",
                                   opt, min, max, arg);
        return false;
}

bool sq_cmd_word_arg(const sq_cmd_t *cmd, const char *opt, const char *arg) {
        if (*arg)
                return true;
        sq_cli_usage_error(cmd->name, "%s must not be empty", opt);
        return false;
}

/* -X schema.registry.*: the registry client of the command's codec. */
static int registry_new(sq_cmd_t *cmd) {
        const sq_cli_t *cli             = cmd->cli;
        sq_schema_registry_conf_t rconf = {.timeout_ms = 10000,
                                           .cache_max  = 1000};
        char errstr[512];
        int64_t ms;
        size_t i;

        for (i = 0; i < cli->sr_props_cnt; i++) {
                const char *name = cli->sr_props[i].name;
                const char *val  = cli->sr_props[i].value;
                if (!strcmp(name, "schema.registry.url"))
                        rconf.url = *val ? val : NULL;
                else if (!strcmp(name, "schema.registry.basic.auth.user.info"))
                        rconf.userinfo = val;
                else if (!strcmp(name, "schema.registry.ssl.ca.location"))
                        rconf.ca_location = val;
                else if (!strcmp(name, "schema.registry.timeout.ms") &&
                         sq_parse_int64(val, 100, 600000, &ms) == SQ_OK)
                        rconf.timeout_ms = (int)ms;
                else
                        return sq_cli_usage_error(
                            cmd->name,
                            "-X %s=%s: not a schema registry setting (url, "
                            "basic.auth.user.info, ssl.ca.location, "
                            "timeout.ms 100..600000)",
                            name, val);
        }
        if (!rconf.url)
                return SQ_CLI_EXIT_OK;
        cmd->registry = sq_schema_registry_new(&rconf, errstr, sizeof(errstr));
        if (!cmd->registry)
                return sq_cli_usage_error(cmd->name, "%s", errstr);
        sq_codec_use_registry(cmd->codec, cmd->registry);
        return SQ_CLI_EXIT_OK;
}

int sq_cmd_ready(sq_cmd_t *cmd, bool want_codec) {
        char errstr[512];

        if (!cmd->cli->have_brokers)
                return sq_cli_usage_error(NULL,
                                          "no brokers: give -b BROKERS or set "
                                          "SWARMQ_BOOTSTRAP_SERVERS");
        if (!want_codec)
                return SQ_CLI_EXIT_OK;
        cmd->codec = sq_codec_new(errstr, sizeof(errstr));
        if (!cmd->codec) {
                sq_cmd_say(cmd, NULL, "%s", errstr);
                return SQ_CLI_EXIT_INCOMPLETE;
        }
        return registry_new(cmd);
}

sq_err_t sq_cmd_register_task_schema(const sq_cmd_t *cmd, const char *topic,
                                     char *errstr, size_t errstr_size) {
        /* Once: the registry gives one schema one id in any subject. */
        if (!cmd->registry ||
            sq_schema_registry_writer_id(cmd->registry, SQ_CODEC_KIND_TASK))
                return SQ_OK;
        return sq_codec_register_schema(cmd->registry, SQ_CODEC_KIND_TASK,
                                        topic, NULL, errstr, errstr_size);
}

/* -b and -X on top of what the caller set. */
static sq_err_t conf_user(const sq_cli_t *cli, rd_kafka_conf_t *conf,
                          char *errstr, size_t errstr_size) {
        if (cli->brokers &&
            sq_kafka_conf_set(conf, "bootstrap.servers", cli->brokers, errstr,
                              errstr_size) != SQ_OK)
                return SQ_ERR_CONFIG;
        return sq_kafka_conf_apply(conf, cli->props, cli->props_cnt, errstr,
                                   errstr_size);
}

/* Creates the client with the signals blocked: librdkafka's threads are
 * created now and inherit the mask. Takes @p conf. */
static int client_new(const sq_cmd_t *cmd, rd_kafka_type_t type,
                      rd_kafka_conf_t *conf, rd_kafka_t **rkp) {
        char errstr[512];

        sq_cli_signals_block(true);
        *rkp = sq_kafka_conf_new_client(type, conf, errstr, sizeof(errstr));
        sq_cli_signals_block(false);
        if (!*rkp) {
                sq_cmd_say(cmd, NULL, "%s", errstr);
                return SQ_CLI_EXIT_USAGE;
        }
        return SQ_CLI_EXIT_OK;
}

int sq_cmd_consumer_new(const sq_cmd_t *cmd, const char *const *settings,
                        rd_kafka_t **rkp) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_conf_t *conf              = sq_kafka_conf_new();
        rd_kafka_t *rk                     = NULL;
        rd_kafka_resp_err_t err;
        char errstr[1024], group[96], client_id[64], hex[17];
        int ret;

        /* A throwaway group: wait subscribes without committing, replay
         * assigns (which librdkafka 2.0 refuses without a group.id). */
        snprintf(group, sizeof(group), "%s-%s-%s", SQ_CLI_PROG, cmd->name,
                 sq_cli_random_hex(hex, 8));
        snprintf(client_id, sizeof(client_id), "%s-%s", SQ_CLI_PROG, cmd->name);
        if (sq_kafka_conf_set(conf, "group.id", group, errstr,
                              sizeof(errstr)) != SQ_OK ||
            sq_kafka_conf_set(conf, "client.id", client_id, errstr,
                              sizeof(errstr)) != SQ_OK ||
            sq_kafka_conf_profile(conf, SQ_KAFKA_PROFILE_MANUAL_COMMIT_CONSUMER,
                                  errstr, sizeof(errstr)) != SQ_OK ||
            sq_kafka_conf_set_pairs(conf, settings, errstr, sizeof(errstr)) !=
                SQ_OK ||
            conf_user(cmd->cli, conf, errstr, sizeof(errstr)) != SQ_OK) {
                rd_kafka_conf_destroy(conf);
                return sq_cli_usage_error(cmd->name, "%s", errstr);
        }
        ret = client_new(cmd, RD_KAFKA_CONSUMER, conf, &rk);
        if (ret != SQ_CLI_EXIT_OK)
                return ret;
        rd_kafka_poll_set_consumer(rk);

        err = rd_kafka_metadata(rk, 0, NULL, &md, cmd->cli->connect_timeout_ms);
        if (err) {
                rd_kafka_queue_t *rkqu = rd_kafka_queue_get_consumer(rk);
                /* A login the brokers refused is the cause to name. */
                if (sq_kafka_login_failed(rkqu, errstr, sizeof(errstr)))
                        sq_cmd_say(cmd, NULL, "%s", errstr);
                else
                        sq_cmd_say(cmd, NULL,
                                   "no broker answered within %d ms: %s",
                                   cmd->cli->connect_timeout_ms,
                                   rd_kafka_err2str(err));
                rd_kafka_queue_destroy(rkqu);
                rd_kafka_destroy(rk);
                return SQ_CLI_EXIT_BROKER;
        }
        rd_kafka_metadata_destroy(md);
        *rkp = rk;
        return SQ_CLI_EXIT_OK;
}

int sq_cmd_producer_new(const sq_cmd_t *cmd, const char *client_id,
                        void (*dr_msg_cb)(rd_kafka_t *rk,
                                          const rd_kafka_message_t *rkm,
                                          void *opaque),
                        rd_kafka_t **rkp) {
        rd_kafka_conf_t *conf = sq_kafka_conf_new();
        char errstr[512];

        if (sq_kafka_conf_profile(conf, SQ_KAFKA_PROFILE_IDEMPOTENT_PRODUCER,
                                  errstr, sizeof(errstr)) != SQ_OK ||
            sq_kafka_conf_set(conf, "client.id", client_id, errstr,
                              sizeof(errstr)) != SQ_OK ||
            conf_user(cmd->cli, conf, errstr, sizeof(errstr)) != SQ_OK) {
                rd_kafka_conf_destroy(conf);
                return sq_cli_usage_error(cmd->name, "%s", errstr);
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
        return client_new(cmd, RD_KAFKA_PRODUCER, conf, rkp);
}

void sq_cmd_say(const sq_cmd_t *cmd, sq_progress_t *prog, const char *fmt,
                ...) {
        va_list ap;

        if (prog)
                sq_progress_clear(prog);
        fprintf(stderr, "%s %s: ", SQ_CLI_PROG, cmd->name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

void sq_cmd_warn_undecodable(const sq_cmd_t *cmd, sq_progress_t *prog,
                             uint64_t nth, const char *topic, int32_t partition,
                             int64_t offset, const char *reason) {
        if (nth > MAX_WARNINGS)
                return;
        sq_cmd_say(cmd, prog,
                   "warning: undecodable record topic=%s partition=%" PRId32
                   " offset=%" PRId64 ": %s%s",
                   topic, partition, offset, reason,
                   nth == MAX_WARNINGS ? " (further ones only counted)" : "");
}

void sq_cmd_print_json(json_t *obj, size_t flags) {
        char *text = json_dumps(obj, flags);

        sq_assert(text);
        puts(text);
        free(text); /* jansson allocates with malloc by default */
        json_decref(obj);
}

bool sq_cmd_flush_stdout(const sq_cmd_t *cmd) {
        if (fflush(stdout) == 0 && !ferror(stdout))
                return true;
        sq_cmd_say(cmd, NULL, "cannot write to stdout");
        return false;
}

int sq_cmd_libswarmq_new(const sq_cmd_t *cmd, const char *key,
                         const char *value, swarmq_producer_t **pp) {
        const sq_cli_t *cli = cmd->cli;
        char errstr[1024], name[512];
        swarmq_err_t err;
        size_t i;

        *pp = swarmq_producer_new(cli->brokers, errstr, sizeof(errstr));
        if (!*pp) {
                sq_cmd_say(cmd, NULL, "%s", errstr);
                return SQ_CLI_EXIT_USAGE;
        }
        for (i = 0; i < cli->props_cnt; i++) {
                snprintf(name, sizeof(name), "kafka.%s", cli->props[i].name);
                if (swarmq_producer_set(*pp, name, cli->props[i].value, errstr,
                                        sizeof(errstr)) != SWARMQ_OK)
                        return sq_cli_usage_error(cmd->name, "-X: %s", errstr);
        }
        if (swarmq_producer_set(*pp, key, value, errstr, sizeof(errstr)) !=
            SWARMQ_OK)
                return sq_cli_usage_error(cmd->name, "%s", errstr);
        /* librdkafka's threads are created now and inherit the mask. */
        sq_cli_signals_block(true);
        err = swarmq_producer_connect(*pp, cli->connect_timeout_ms, errstr,
                                      sizeof(errstr));
        sq_cli_signals_block(false);
        if (err != SWARMQ_OK) {
                sq_cmd_say(cmd, NULL, "%s", errstr);
                return err == SWARMQ_ERR_TRANSPORT ? SQ_CLI_EXIT_BROKER
                                                   : SQ_CLI_EXIT_USAGE;
        }
        return SQ_CLI_EXIT_OK;
}
