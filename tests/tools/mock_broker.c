/* SPDX-License-Identifier: Apache-2.0 */
/*
 * swarmq-mock-broker: librdkafka's mock cluster as a process of its own, so
 * tests and benchmarks can stop, kill and restart swarmq-consumer
 * instances while the broker and its data live on.
 *
 *   swarmq-mock-broker [--brokers N] [--partitions N] [--topic NAME]...
 *
 * Prints "bootstrap.servers=HOST:PORT,..." on stdout, then serves until
 * SIGTERM/SIGINT. Topics named with --topic (default: swarmq's six) are
 * created with --partitions partitions (default 12); others are created
 * on first use by the mock's auto-creation.
 *
 * DESIGN
 *   main blocks the signals and sigwait()s for them; the mock cluster runs
 *   on librdkafka's threads. Test-only: never part of a deployment.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static const char *default_topics[] = {
    "swarmq-tasks",     "swarmq-tasks-critical", "swarmq-tasks-retry",
    "swarmq-tasks-dlt", "swarmq-results",        "swarmq-events"};

static int usage(FILE *fp, int code) {
        fprintf(fp, "Usage: swarmq-mock-broker [--brokers N] "
                    "[--partitions N] [--topic NAME]...\n"
                    "Starts librdkafka's mock cluster, prints "
                    "bootstrap.servers=... and serves until SIGTERM.\n");
        return code;
}

int main(int argc, char **argv) {
        const char *topics[64];
        int64_t brokers = 1, partitions = 12;
        size_t topics_cnt = 0, t;
        rd_kafka_mock_cluster_t *mcluster;
        rd_kafka_conf_t *conf;
        char errstr[256];
        rd_kafka_t *rk;
        sigset_t set;
        int i, sig;

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
                } else {
                        return usage(stderr, 2);
                }
                i++;
        }
        if (!topics_cnt)
                for (t = 0; t < SQ_ARRAY_SIZE(default_topics); t++)
                        topics[topics_cnt++] = default_topics[t];

        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, NULL);

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
        printf("bootstrap.servers=%s\n",
               rd_kafka_mock_cluster_bootstraps(mcluster));
        fflush(stdout);
        sigwait(&set, &sig);
        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(rk);
        return 0;
}
