/* SPDX-License-Identifier: Apache-2.0 */
/*
 * swarmq-consumer: the daemon's entry point. Parses arguments into the
 * configuration, wires the instance (consumer/instance/daemon.h) to signals,
 * maps errors to exit codes. Nothing else lives here.
 *
 * DESIGN
 *   Threads: main blocks every signal before any thread starts (threads
 *   inherit the mask), starts the instance, and waits for it to stop. A
 *   signal thread sigwait()s for SIGTERM/SIGINT and asks the instance to
 *   stop (stop intake, drain, commit, close); a second SIGINT/SIGTERM
 *   during the drain exits at once. SIGHUP reloads the configuration from
 *   the same sources as at start (file, SWARMQ_* environment, flags) on
 *   the signal thread: a configuration that does not load is rejected
 *   with its error (naming the key) and the running one stays; one that
 *   loads goes to sq_daemon_reload(), which swaps the agents and flags
 *   without touching running tasks.
 *
 *   Exit codes: 0 clean stop, 1 runtime failure, 2 bad usage or config.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "allocator.h"
#include "config.h"
#include "daemon.h"
#include "log.h"

extern char **environ;

#ifdef SQ_JEMALLOC
/* alloc_jemalloc.c: the process runs on jemalloc (linked in). */
void sq_alloc_jemalloc_use(void);
#endif

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

/* clang-format off: the help text reads best as it prints */
static void usage(FILE *fp) {
        fprintf(
            fp,
            "Usage: swarmq-consumer [OPTIONS]\n"
            "\n"
            "Reads tasks from Kafka, runs them on agents, and writes results "
            "and\n"
            "lifecycle events back to Kafka. Run several instances with the "
            "same\n"
            "group.id to share the work.\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE       properties file (key=value); also "
            "SWARMQ_CONFIG\n"
            "  -b, --brokers LIST      Kafka bootstrap servers "
            "(kafka.bootstrap.servers);\n"
            "                          also SWARMQ_BOOTSTRAP_SERVERS\n"
            "  -X key=value            set any configuration key; kafka.* keys "
            "go to\n"
            "                          librdkafka (repeatable; later wins)\n"
            "  -g, --group ID          consumer group (group.id, default "
            "swarmq)\n"
            "  -i, --instance-id ID    this instance's name (instance.id)\n"
            "  -p, --http-port PORT    HTTP port for /healthz /readyz "
            "/metrics;\n"
            "                          0 = off, auto = a free port (default "
            "8080)\n"
            "      --embedded-broker   start librdkafka's mock cluster "
            "in-process and\n"
            "                          use it (prints bootstrap.servers=... on "
            "stdout)\n"
            "  -l, --log-level LEVEL   debug, info, notice, warning, err "
            "(default info)\n"
            "      --dump-config       print the effective configuration and "
            "exit\n"
            "  -V, --version           print the version and exit\n"
            "  -h, --help              this help\n"
            "\n"
            "Precedence: defaults < config file < SWARMQ_* environment < "
            "flags.\n"
            "SWARMQ_* variables that name no key are ignored with a "
            "warning.\n"
            "Every key is documented in docs/configuration.md.\n"
            "\n"
            "Standard output carries machine-readable lines only:\n"
            "  http.url=http://ADDR:PORT     where /metrics, /healthz, /readyz "
            "are\n"
            "                                (at once: /readyz says what "
            "start-up waits for)\n"
            "  bootstrap.servers=HOST:PORT   the brokers in use, once started\n"
            "\n"
            "Exit status: 0 after a clean stop (SIGTERM/SIGINT), 1 on a "
            "runtime\n"
            "failure, 2 on bad usage or configuration.\n");
}
/* clang-format on */

static void print_kv(void *opaque, const char *key, const char *value) {
        (void)opaque;
        printf("%s=%s\n", key, value);
}

/* Records a flag to apply after the file and the environment. */
typedef struct flag_s {
        const char *key;
        char *value;
} flag_t;

static int add_flag(flag_t **flags, int *cnt, const char *key,
                    const char *value) {
        *flags = realloc(*flags, (size_t)(*cnt + 1) * sizeof(**flags));
        if (!*flags) {
                fprintf(stderr, "swarmq-consumer: out of memory\n");
                exit(EXIT_RUNTIME);
        }
        (*flags)[*cnt].key   = key;
        (*flags)[*cnt].value = strdup(value);
        (*cnt)++;
        return 0;
}

/* Builds a finalized config from defaults < file < environment < flags.
 * @returns the config (caller owns) or NULL with @p errstr. */
static sq_config_t *load_config(const char *config_path, const flag_t *flags,
                                int flags_cnt, char *errstr,
                                size_t errstr_size) {
        sq_config_t *conf = sq_config_new();
        int i;

        if (config_path && sq_config_load_file(conf, config_path, errstr,
                                               errstr_size) != SQ_OK)
                goto fail;
        if (sq_config_load_env(conf, environ, errstr, errstr_size) != SQ_OK)
                goto fail;
        for (i = 0; i < flags_cnt; i++) {
                if (sq_config_set(conf, flags[i].key, flags[i].value,
                                  "command line", errstr, errstr_size) != SQ_OK)
                        goto fail;
        }
        if (sq_config_finalize(conf, errstr, errstr_size) != SQ_OK)
                goto fail;
        return conf;
fail:
        sq_config_destroy(conf);
        return NULL;
}

typedef struct signal_ctx_s {
        sq_daemon_t *daemon;
        sigset_t set;
        const char *config_path; /* borrowed from main */
        const flag_t *flags;
        int flags_cnt;
} signal_ctx_t;

static void reload(signal_ctx_t *ctx) {
        char errstr[1024];
        sq_config_t *conf;

        SQ_LOG(SQ_LOG_NOTICE, "SIGNAL",
               "SIGHUP: reloading the configuration%s%s",
               ctx->config_path ? " from " : "",
               ctx->config_path ? ctx->config_path : "");
        conf = load_config(ctx->config_path, ctx->flags, ctx->flags_cnt, errstr,
                           sizeof(errstr));
        if (!conf) {
                sq_daemon_reload_rejected(ctx->daemon, errstr);
                return;
        }
        /* Takes the config; logs and counts its own failures. */
        sq_daemon_reload(ctx->daemon, conf, errstr, sizeof(errstr));
}

static void *signal_main(void *arg) {
        signal_ctx_t *ctx = arg;
        int stops         = 0;

        for (;;) {
                int sig;
                if (sigwait(&ctx->set, &sig) != 0)
                        continue;
                if (sig == SIGUSR2)
                        return NULL; /* main: the instance has stopped */
                if (sig == SIGHUP) {
                        if (!stops)
                                reload(ctx);
                        continue;
                }
                if (++stops == 1) {
                        SQ_LOG(SQ_LOG_NOTICE, "SIGNAL",
                               "%s: stopping (again to exit at once)",
                               strsignal(sig));
                        sq_daemon_stop(ctx->daemon);
                } else {
                        SQ_LOG(SQ_LOG_WARNING, "SIGNAL",
                               "%s again: exiting without draining",
                               strsignal(sig));
                        _exit(EXIT_RUNTIME);
                }
        }
}

int main(int argc, char **argv) {
        static const struct option long_options[] = {
            {"config", required_argument, NULL, 'c'},
            {"brokers", required_argument, NULL, 'b'},
            {"group", required_argument, NULL, 'g'},
            {"instance-id", required_argument, NULL, 'i'},
            {"http-port", required_argument, NULL, 'p'},
            {"log-level", required_argument, NULL, 'l'},
            {"embedded-broker", no_argument, NULL, 'E'},
            {"dump-config", no_argument, NULL, 'D'},
            {"version", no_argument, NULL, 'V'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        const char *config_path = getenv("SWARMQ_CONFIG");
        sq_config_t *conf       = NULL;
        sq_daemon_t *daemon     = NULL;
        flag_t *flags           = NULL;
        int flags_cnt = 0, opt, i, exit_code = EXIT_USAGE;
        bool dump_config = false;
        signal_ctx_t sigctx;
        pthread_t signal_thread;
        char errstr[1024];
        char http_bind[256];

#ifdef SQ_JEMALLOC
        sq_alloc_jemalloc_use();
#endif
        while ((opt = getopt_long(argc, argv, "c:b:X:g:i:p:l:Vh", long_options,
                                  NULL)) != -1) {
                switch (opt) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'b':
                        add_flag(&flags, &flags_cnt, "kafka.bootstrap.servers",
                                 optarg);
                        break;
                case 'X': {
                        char *eq = strchr(optarg, '=');
                        if (!eq || eq == optarg) {
                                fprintf(stderr,
                                        "swarmq-consumer: -X %s: expected "
                                        "key=value\n",
                                        optarg);
                                goto done;
                        }
                        *eq = '\0';
                        add_flag(&flags, &flags_cnt, optarg, eq + 1);
                        break;
                }
                case 'g':
                        add_flag(&flags, &flags_cnt, "group.id", optarg);
                        break;
                case 'i':
                        add_flag(&flags, &flags_cnt, "instance.id", optarg);
                        break;
                case 'p':
                        add_flag(&flags, &flags_cnt, "http.port", optarg);
                        break;
                case 'l':
                        add_flag(&flags, &flags_cnt, "log.level", optarg);
                        break;
                case 'E':
                        add_flag(&flags, &flags_cnt, "embedded.broker", "true");
                        break;
                case 'D':
                        dump_config = true;
                        break;
                case 'V':
                        printf("swarmq-consumer %s\n", SWARMQ_VERSION);
                        exit_code = 0;
                        goto done;
                case 'h':
                        usage(stdout);
                        exit_code = 0;
                        goto done;
                default:
                        usage(stderr);
                        goto done;
                }
        }
        if (optind < argc) {
                fprintf(stderr,
                        "swarmq-consumer: unexpected argument \"%s\" "
                        "(see --help)\n",
                        argv[optind]);
                goto done;
        }

        /* Defaults < file < environment < flags. */
        conf =
            load_config(config_path, flags, flags_cnt, errstr, sizeof(errstr));
        if (!conf) {
                fprintf(stderr, "swarmq-consumer: %s\n", errstr);
                goto done;
        }
        sq_log_set_level((sq_log_level_t)conf->log_level);
        if (dump_config) {
                sq_config_dump(conf, print_kv, NULL);
                exit_code = 0;
                goto done;
        }

        /* Block signals before any thread starts: all threads inherit it,
         * and only the signal thread takes them, with sigwait(). */
        sigemptyset(&sigctx.set);
        sigaddset(&sigctx.set, SIGTERM);
        sigaddset(&sigctx.set, SIGINT);
        sigaddset(&sigctx.set, SIGHUP);
        sigaddset(&sigctx.set, SIGUSR2);
        pthread_sigmask(SIG_BLOCK, &sigctx.set, NULL);
        signal(SIGPIPE, SIG_IGN);

        sq_strlcpy(http_bind, conf->http_bind, sizeof(http_bind));
        daemon = sq_daemon_new(conf, errstr, sizeof(errstr));
        conf   = NULL; /* the daemon took it */
        if (!daemon) {
                fprintf(stderr, "swarmq-consumer: %s\n", errstr);
                goto done;
        }
        /* Listening before start-up waits for the brokers: the URL is
         * printed, and /healthz, /readyz and /status answer, at once;
         * bootstrap.servers= follows once the instance runs (scripts wait
         * for it as the sign that it started). */
        if (sq_daemon_listen(daemon, errstr, sizeof(errstr)) != SQ_OK) {
                fprintf(stderr, "swarmq-consumer: %s\n", errstr);
                exit_code = EXIT_RUNTIME;
                goto done;
        }
        if (sq_daemon_http_port(daemon))
                printf("http.url=http://%s:%d\n", http_bind,
                       sq_daemon_http_port(daemon));
        fflush(stdout);

        /* The signal thread before start: a SIGTERM while start-up waits
         * for the brokers stops that wait. */
        sigctx.daemon      = daemon;
        sigctx.config_path = config_path;
        sigctx.flags       = flags;
        sigctx.flags_cnt   = flags_cnt;
        if ((errno =
                 pthread_create(&signal_thread, NULL, signal_main, &sigctx))) {
                fprintf(stderr,
                        "swarmq-consumer: cannot start the signal "
                        "thread: %s\n",
                        strerror(errno));
                exit_code = EXIT_RUNTIME;
                goto done;
        }
        if (sq_daemon_start(daemon, errstr, sizeof(errstr)) != SQ_OK) {
                fprintf(stderr, "swarmq-consumer: %s\n", errstr);
                exit_code = EXIT_RUNTIME;
        } else {
                printf("bootstrap.servers=%s\n",
                       sq_daemon_bootstrap_servers(daemon));
                fflush(stdout);
                exit_code = sq_daemon_wait(daemon) == SQ_OK ? 0 : EXIT_RUNTIME;
        }
        pthread_kill(signal_thread, SIGUSR2);
        pthread_join(signal_thread, NULL);

done:
        sq_daemon_destroy(daemon);
        sq_config_destroy(conf);
        for (i = 0; i < flags_cnt; i++)
                free(flags[i].value);
        free(flags);
        return exit_code;
}
