/* SPDX-License-Identifier: Apache-2.0 */
/*
 * swarmq-mock-broker: librdkafka's mock cluster as a process of its own, so
 * tests and benchmarks can stop, kill and restart swarmq-consumer
 * instances while the broker and its data live on, and inject faults into
 * the running cluster from a shell script.
 *
 *   swarmq-mock-broker [--brokers N] [--partitions N] [--topic NAME]...
 *                      [--control PATH|-]
 *
 * Prints "bootstrap.servers=HOST:PORT,..." on stdout, then serves until
 * SIGTERM/SIGINT. Topics named with --topic (default: swarmq's eight,
 * topic.workflows included) are created with --partitions partitions (default
 * 12); others are created on first use by the mock's auto-creation. Without
 * --topic, swarmq-schedules is created too, with one partition.
 *
 * Fault injection: with --control, fault commands are read one per line
 * from PATH (a FIFO, created when missing; any number of writers, one
 * after the other: `echo "down 1" > PATH`) or from stdin ("-"). Each
 * command is answered on stdout with "ok N: COMMAND" or "error N: REASON"
 * (N counts commands from 1), so a script can wait for its command to
 * have taken effect. See usage() for the commands; they map one to one
 * onto rd_kafka_mock_* (librdkafka/rdkafka_mock.h).
 *
 * DESIGN
 *   One thread (main) blocks SIGTERM/SIGINT and poll(2)s a signalfd and
 *   the control file descriptor; commands run on main and call the
 *   rd_kafka_mock_* setters, which hand them to the mock cluster's own
 *   thread (they are thread-safe by design). The FIFO is opened read-write
 *   so the last writer closing it is not an end of file. A control line
 *   longer than the buffer is refused, not split. Test-only: never part of
 *   a deployment.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "topics.h"

static const char *default_topics[] = {
    SQ_TOPIC_DEFAULT_TASKS,   SQ_TOPIC_DEFAULT_CRITICAL,
    SQ_TOPIC_DEFAULT_RETRY,   SQ_TOPIC_DEFAULT_DLT,
    SQ_TOPIC_DEFAULT_RESULTS, SQ_TOPIC_DEFAULT_EVENTS,
    SQ_TOPIC_DEFAULT_CONTROL, SQ_TOPIC_DEFAULT_WORKFLOWS};

/* Kafka protocol request types, by the names the Kafka docs use. */
static const struct {
        const char *name;
        int16_t key;
} apis[] = {
    {"Produce", 0},          {"Fetch", 1},
    {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8},     {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},       {"LeaveGroup", 13},
    {"SyncGroup", 14},       {"DescribeGroups", 15},
    {"ApiVersions", 18},     {"CreateTopics", 19},
    {"InitProducerId", 22},  {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25}, {"EndTxn", 26},
    {"TxnOffsetCommit", 28},
};

typedef struct ctl_s {
        rd_kafka_mock_cluster_t *mcluster;
        int partitions; /* of the topics created at start-up */
        long seq;       /* commands seen */
} ctl_t;

static int usage(FILE *fp, int code) {
        fprintf(fp,
                "Usage: swarmq-mock-broker [--brokers N] [--partitions N] "
                "[--topic NAME]... [--control PATH|-]\n"
                "Starts librdkafka's mock cluster, prints "
                "bootstrap.servers=... and serves until SIGTERM.\n"
                "\n"
                "--control PATH reads fault commands, one per line, from the "
                "FIFO PATH\n"
                "(created when missing) or from stdin (-), and answers each "
                "on stdout\n"
                "with \"ok N: COMMAND\" or \"error N: REASON\":\n"
                "  down BROKER                 broker stops answering "
                "(connections closed)\n"
                "  up BROKER                   broker answers again\n"
                "  rtt BROKER MS               delay every response of "
                "BROKER by MS\n"
                "  leader TOPIC PART|all BROKER  move partition "
                "leadership (-1: leaderless)\n"
                "  coordinator group|transaction KEY BROKER  move a "
                "coordinator\n"
                "  errors API ERR [CNT]        the next CNT (1) API "
                "requests fail with ERR\n"
                "  broker-errors BROKER API ERR RTT_MS [CNT]  same, on "
                "one broker, each\n"
                "                              answered after RTT_MS "
                "(ERR may be NO_ERROR:\n"
                "                              a slow answer, i.e. a "
                "request timeout)\n"
                "  clear API                   drop pending errors of API\n"
                "API is a request name (Produce, Fetch, Metadata, "
                "OffsetCommit, JoinGroup,\n"
                "Heartbeat, SyncGroup, FindCoordinator, ...) or its number; "
                "ERR a librdkafka\n"
                "error name (_TRANSPORT, NOT_COORDINATOR, "
                "NOT_LEADER_FOR_PARTITION, ...).\n");
        return code;
}

static bool parse_api(const char *str, int16_t *keyp) {
        int64_t v;
        size_t i;
        for (i = 0; i < SQ_ARRAY_SIZE(apis); i++)
                if (!strcasecmp(str, apis[i].name)) {
                        *keyp = apis[i].key;
                        return true;
                }
        if (sq_parse_int64(str, 0, 100, &v) == SQ_OK) {
                *keyp = (int16_t)v;
                return true;
        }
        return false;
}

static bool parse_err(const char *str, rd_kafka_resp_err_t *errp) {
        static const char prefix[] = "RD_KAFKA_RESP_ERR_";
        const struct rd_kafka_err_desc *descs;
        size_t cnt, i;
        int64_t v;

        if (!strncmp(str, prefix, sizeof(prefix) - 1))
                str += sizeof(prefix) - 1;
        if (!strcasecmp(str, "NO_ERROR")) {
                *errp = RD_KAFKA_RESP_ERR_NO_ERROR;
                return true;
        }
        rd_kafka_get_err_descs(&descs, &cnt);
        for (i = 0; i < cnt; i++)
                if (descs[i].name && !strcasecmp(str, descs[i].name)) {
                        *errp = descs[i].code;
                        return true;
                }
        if (sq_parse_int64(str, -200, 200, &v) == SQ_OK) {
                *errp = (rd_kafka_resp_err_t)v;
                return true;
        }
        return false;
}

static bool parse_id(const char *str, int32_t *idp) {
        int64_t v;
        if (sq_parse_int64(str, -1, 1000, &v) != SQ_OK)
                return false;
        *idp = (int32_t)v;
        return true;
}

/* Runs one command line (modified in place); @returns NULL on success or
 * the reason it failed, written into @p why. */
static const char *run_command(ctl_t *ctl, char *line, char *why,
                               size_t why_size) {
        char *argv[8], *tok;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR, kerr;
        int64_t cnt             = 1, ms;
        int32_t broker, part;
        int16_t api;
        int argc = 0, i;

        /* Split on blanks, in place. */
        for (tok = line; *tok && argc < 8;) {
                size_t n = strcspn(tok, " \t\r");
                if (n)
                        argv[argc++] = tok;
                if (!tok[n])
                        break;
                tok[n] = '\0';
                tok += n + 1;
        }
        if (!argc)
                return NULL;
#define NEED(n, form)                                                          \
        do {                                                                   \
                if (argc < (n)) {                                              \
                        snprintf(why, why_size, "usage: %s", form);            \
                        return why;                                            \
                }                                                              \
        } while (0)
#define BAD(fmt, ...)                                                          \
        do {                                                                   \
                snprintf(why, why_size, fmt, __VA_ARGS__);                     \
                return why;                                                    \
        } while (0)

        if (!strcmp(argv[0], "down") || !strcmp(argv[0], "up")) {
                NEED(2, "down|up BROKER");
                if (!parse_id(argv[1], &broker))
                        BAD("bad broker id \"%s\"", argv[1]);
                err = !strcmp(argv[0], "down")
                          ? rd_kafka_mock_broker_set_down(ctl->mcluster, broker)
                          : rd_kafka_mock_broker_set_up(ctl->mcluster, broker);
        } else if (!strcmp(argv[0], "rtt")) {
                NEED(3, "rtt BROKER MS");
                if (!parse_id(argv[1], &broker))
                        BAD("bad broker id \"%s\"", argv[1]);
                if (sq_parse_int64(argv[2], 0, 600000, &ms) != SQ_OK)
                        BAD("bad milliseconds \"%s\"", argv[2]);
                err = rd_kafka_mock_broker_set_rtt(ctl->mcluster, broker,
                                                   (int)ms);
        } else if (!strcmp(argv[0], "leader")) {
                NEED(4, "leader TOPIC PARTITION|all BROKER");
                if (!parse_id(argv[3], &broker))
                        BAD("bad broker id \"%s\"", argv[3]);
                if (!strcmp(argv[2], "all")) {
                        for (i = 0; i < ctl->partitions && !err; i++)
                                err = rd_kafka_mock_partition_set_leader(
                                    ctl->mcluster, argv[1], i, broker);
                } else {
                        if (!parse_id(argv[2], &part) || part < 0)
                                BAD("bad partition \"%s\"", argv[2]);
                        err = rd_kafka_mock_partition_set_leader(
                            ctl->mcluster, argv[1], part, broker);
                }
        } else if (!strcmp(argv[0], "coordinator")) {
                NEED(4, "coordinator group|transaction KEY BROKER");
                if (strcmp(argv[1], "group") && strcmp(argv[1], "transaction"))
                        BAD("coordinator type \"%s\": expected group or "
                            "transaction",
                            argv[1]);
                if (!parse_id(argv[3], &broker))
                        BAD("bad broker id \"%s\"", argv[3]);
                err = rd_kafka_mock_coordinator_set(ctl->mcluster, argv[1],
                                                    argv[2], broker);
        } else if (!strcmp(argv[0], "errors")) {
                rd_kafka_resp_err_t errs[1000];
                NEED(3, "errors API ERR [CNT]");
                if (!parse_api(argv[1], &api))
                        BAD("unknown API \"%s\"", argv[1]);
                if (!parse_err(argv[2], &kerr))
                        BAD("unknown error \"%s\"", argv[2]);
                if (argc > 3 && sq_parse_int64(argv[3], 1, 1000, &cnt) != SQ_OK)
                        BAD("count \"%s\": expected 1 to 1000", argv[3]);
                for (i = 0; i < cnt; i++)
                        errs[i] = kerr;
                rd_kafka_mock_push_request_errors_array(ctl->mcluster, api,
                                                        (size_t)cnt, errs);
        } else if (!strcmp(argv[0], "broker-errors")) {
                NEED(5, "broker-errors BROKER API ERR RTT_MS [CNT]");
                if (!parse_id(argv[1], &broker))
                        BAD("bad broker id \"%s\"", argv[1]);
                if (!parse_api(argv[2], &api))
                        BAD("unknown API \"%s\"", argv[2]);
                if (!parse_err(argv[3], &kerr))
                        BAD("unknown error \"%s\"", argv[3]);
                if (sq_parse_int64(argv[4], 0, 600000, &ms) != SQ_OK)
                        BAD("bad milliseconds \"%s\"", argv[4]);
                if (argc > 5 && sq_parse_int64(argv[5], 1, 1000, &cnt) != SQ_OK)
                        BAD("count \"%s\": expected 1 to 1000", argv[5]);
                for (i = 0; i < cnt && !err; i++)
                        err = rd_kafka_mock_broker_push_request_error_rtts(
                            ctl->mcluster, broker, api, 1, kerr, (int)ms);
        } else if (!strcmp(argv[0], "clear")) {
                NEED(2, "clear API");
                if (!parse_api(argv[1], &api))
                        BAD("unknown API \"%s\"", argv[1]);
                rd_kafka_mock_clear_request_errors(ctl->mcluster, api);
        } else {
                BAD("unknown command \"%s\" (see --help)", argv[0]);
        }
        if (err)
                BAD("%s: %s", argv[0], rd_kafka_err2str(err));
        return NULL;
#undef NEED
#undef BAD
}

/* Serves every complete line in @p buf; keeps a partial last line. */
static void serve_lines(ctl_t *ctl, char *buf, size_t *lenp) {
        char *start = buf, *nl, copy[1024], why[512];
        const char *fail;

        while ((nl = memchr(start, '\n', *lenp - (size_t)(start - buf)))) {
                *nl = '\0';
                if (*start && *start != '#') {
                        ctl->seq++;
                        sq_strlcpy(copy, start, sizeof(copy));
                        fail = run_command(ctl, start, why, sizeof(why));
                        if (fail)
                                printf("error %ld: %s\n", ctl->seq, fail);
                        else
                                printf("ok %ld: %s\n", ctl->seq, copy);
                        fprintf(stderr, "swarmq-mock-broker: %s: %s\n", copy,
                                fail ? fail : "ok");
                        fflush(stdout);
                }
                start = nl + 1;
        }
        *lenp -= (size_t)(start - buf);
        memmove(buf, start, *lenp);
}

static int open_control(const char *path) {
        int fd;
        if (!strcmp(path, "-"))
                return STDIN_FILENO;
        if (mkfifo(path, 0600) < 0 && errno != EEXIST) {
                fprintf(stderr,
                        "swarmq-mock-broker: cannot create FIFO %s: %s\n", path,
                        strerror(errno));
                return -1;
        }
        /* Read-write: a writer closing it is never an end of file. */
        if ((fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0)
                fprintf(stderr, "swarmq-mock-broker: cannot open %s: %s\n",
                        path, strerror(errno));
        return fd;
}

int main(int argc, char **argv) {
        const char *topics[64], *control = NULL;
        int64_t brokers = 1, partitions = 12;
        size_t topics_cnt = 0, t, len = 0;
        bool explicit_topics;
        rd_kafka_mock_cluster_t *mcluster;
        rd_kafka_conf_t *conf;
        struct pollfd fds[2];
        char errstr[256], buf[2048];
        ctl_t ctl = {0};
        rd_kafka_t *rk;
        sigset_t set;
        int i, sfd, cfd = -1, nfds = 1;
        bool running = true;

        for (i = 1; i < argc; i++) {
                const char *arg = argv[i];
                const char *val = i + 1 < argc ? argv[i + 1] : NULL;
                if (!strcmp(arg, "-h") || !strcmp(arg, "--help"))
                        return usage(stdout, 0);
                if (!val)
                        return usage(stderr, 2);
                if (!strcmp(arg, "--brokers")) {
                        if (sq_parse_int64(val, 1, 16, &brokers)) {
                                fprintf(stderr,
                                        "--brokers %s: expected 1 to "
                                        "16\n",
                                        val);
                                return 2;
                        }
                } else if (!strcmp(arg, "--partitions")) {
                        if (sq_parse_int64(val, 1, 1000, &partitions)) {
                                fprintf(stderr,
                                        "--partitions %s: expected 1 "
                                        "to 1000\n",
                                        val);
                                return 2;
                        }
                } else if (!strcmp(arg, "--topic") &&
                           topics_cnt < SQ_ARRAY_SIZE(topics)) {
                        topics[topics_cnt++] = val;
                } else if (!strcmp(arg, "--control")) {
                        control = val;
                } else {
                        return usage(stderr, 2);
                }
                i++;
        }
        explicit_topics = topics_cnt > 0;
        if (!topics_cnt)
                for (t = 0; t < SQ_ARRAY_SIZE(default_topics); t++)
                        topics[topics_cnt++] = default_topics[t];

        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        if ((sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
                perror("swarmq-mock-broker: signalfd");
                return 1;
        }
        if (control && (cfd = open_control(control)) < 0)
                return 1;

        conf = rd_kafka_conf_new();
        rk   = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "swarmq-mock-broker: %s\n", errstr);
                rd_kafka_conf_destroy(conf);
                return 1;
        }
        mcluster = rd_kafka_mock_cluster_new(rk, (int)brokers);
        if (!mcluster) {
                fprintf(stderr, "swarmq-mock-broker: cannot start the mock "
                                "cluster\n");
                rd_kafka_destroy(rk);
                return 1;
        }
        for (t = 0; t < topics_cnt; t++)
                rd_kafka_mock_topic_create(mcluster, topics[t], (int)partitions,
                                           1);
        /* The schedules topic has one partition: its one owner fires the
         * periodic schedules (docs/schedules.md). */
        if (!explicit_topics)
                rd_kafka_mock_topic_create(mcluster, SQ_TOPIC_DEFAULT_SCHEDULES,
                                           1, 1);
        ctl.mcluster   = mcluster;
        ctl.partitions = (int)partitions;
        printf("bootstrap.servers=%s\n",
               rd_kafka_mock_cluster_bootstraps(mcluster));
        fflush(stdout);

        fds[0].fd     = sfd;
        fds[0].events = POLLIN;
        if (cfd >= 0) {
                fds[1].fd     = cfd;
                fds[1].events = POLLIN;
                nfds          = 2;
        }
        while (running) {
                if (poll(fds, (nfds_t)nfds, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("swarmq-mock-broker: poll");
                        break;
                }
                if (fds[0].revents)
                        running = false;
                if (nfds == 2 && fds[1].revents) {
                        ssize_t r = read(cfd, buf + len, sizeof(buf) - 1 - len);
                        if (r > 0) {
                                len += (size_t)r;
                                serve_lines(&ctl, buf, &len);
                                if (len == sizeof(buf) - 1) {
                                        printf("error %ld: control line "
                                               "longer than %zu bytes\n",
                                               ++ctl.seq, sizeof(buf) - 2);
                                        fflush(stdout);
                                        len = 0;
                                }
                        } else if (r == 0 ||
                                   (errno != EAGAIN && errno != EINTR)) {
                                nfds = 1; /* stdin closed: serve on */
                        }
                }
        }
        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(rk);
        if (cfd > STDIN_FILENO)
                close(cfd);
        close(sfd);
        return 0;
}
