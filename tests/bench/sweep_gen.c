/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sweep_gen: the records of the parallel-consumer key sweep
 * (tests/bench/keysweep.sh). Creates a topic of one partition and writes
 * COUNT JSON tasks of the builtin `sleep` to it, each sleeping a uniform
 * 0..MAX_MS milliseconds, keyed by one of KEYS keys. swarmq reads them as
 * JSON tasks; the parallel-consumer harness
 * (tests/bench/parallel-consumer/) reads the same records and sleeps for
 * the same payload, so both run exactly the same work.
 *
 *   sweep_gen -b BROKERS -t TOPIC [-n COUNT] [-K KEYS] [-m MAX_MS]
 *             [-S SEED] [-i IDS_FILE] [-p PARTITIONS] [-c KEY=VALUE]... [-N]
 *
 * -N: do not create the topic (it exists, e.g. on the mock cluster).
 * -c: a topic configuration entry for its creation (repeatable), e.g.
 * message.timestamp.type=LogAppendTime (tests/bench/latency.sh).
 * -n 0: only create the topic. -p: its partitions (default 1; the records
 * all go to partition 0). Other tools use it to create topics before a
 * consumer subscribes (see wait_leader()).
 * Prints one line with what a work floor needs:
 *   sweep_gen topic=T count=N keys=K distinct_keys=D sum_ms=S
 *   longest_chain_ms=L seed=X
 * sum_ms is the sum of the sleeps (PARTITION's floor), longest_chain_ms
 * the largest sum of one key's sleeps (KEY's floor, unless
 * sum_ms / concurrency is larger).
 *
 * DESIGN
 *   The records are drawn by sweep_records.h, shared with sweep_floor (the
 *   same sleeps without Kafka). Single thread; exits non-zero with a
 *   sentence on any failure.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "sweep_records.h"

static int64_t failed;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque) {
        (void)rk;
        (void)opaque;
        if (rkm->err) {
                fprintf(stderr, "sweep_gen: delivery failed: %s\n",
                        rd_kafka_err2str(rkm->err));
                failed++;
        }
}

/* Waits until the broker's metadata shows TOPIC with a leader: a consumer
 * subscribing before that sees no such topic and, with librdkafka 2.0.2,
 * waits for the next periodic metadata refresh (5 minutes). */
static int wait_leader(rd_kafka_t *rk, const char *topic) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        int i, ok = 0;

        for (i = 0; i < 300 && !ok; i++) {
                const struct rd_kafka_metadata *md;
                if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR) {
                        ok = md->topic_cnt == 1 && !md->topics[0].err &&
                             md->topics[0].partition_cnt > 0 &&
                             md->topics[0].partitions[0].leader >= 0;
                        rd_kafka_metadata_destroy(md);
                }
                if (!ok)
                        usleep(100000);
        }
        rd_kafka_topic_destroy(rkt);
        if (!ok)
                fprintf(stderr,
                        "sweep_gen: topic %s has no leader after 30 s\n",
                        topic);
        return ok ? 0 : -1;
}

/* Creates TOPIC with PARTITIONS partitions; an existing topic is fine (a
 * rerun). */
#define MAX_CONFIGS 16
static char *configs[MAX_CONFIGS];
static int configs_cnt;

static int create_topic(rd_kafka_t *rk, const char *topic, int partitions) {
        char errstr[256];
        rd_kafka_NewTopic_t *nt;
        rd_kafka_queue_t *q;
        rd_kafka_event_t *ev;
        const rd_kafka_topic_result_t **res;
        size_t n;
        int ret = -1;

        nt = rd_kafka_NewTopic_new(topic, partitions, -1, errstr,
                                   sizeof(errstr));
        if (!nt) {
                fprintf(stderr, "sweep_gen: topic %s: %s\n", topic, errstr);
                return -1;
        }
        for (int c = 0; c < configs_cnt; c++) {
                char *eq = strchr(configs[c], '=');
                *eq      = '\0';
                if (rd_kafka_NewTopic_set_config(nt, configs[c], eq + 1)) {
                        fprintf(stderr, "sweep_gen: topic config %s refused\n",
                                configs[c]);
                        *eq = '=';
                        rd_kafka_NewTopic_destroy(nt);
                        return -1;
                }
                *eq = '=';
        }
        q = rd_kafka_queue_new(rk);
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        ev = rd_kafka_queue_poll(q, 30000);
        if (!ev) {
                fprintf(stderr,
                        "sweep_gen: no answer to CreateTopics %s in 30 s\n",
                        topic);
                goto done;
        }
        if (rd_kafka_event_error(ev)) {
                fprintf(stderr, "sweep_gen: CreateTopics %s: %s\n", topic,
                        rd_kafka_event_error_string(ev));
                goto done;
        }
        res = rd_kafka_CreateTopics_result_topics(
            rd_kafka_event_CreateTopics_result(ev), &n);
        if (n == 1 && rd_kafka_topic_result_error(res[0]) &&
            rd_kafka_topic_result_error(res[0]) !=
                RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                fprintf(stderr, "sweep_gen: CreateTopics %s: %s\n", topic,
                        rd_kafka_topic_result_error_string(res[0]));
                goto done;
        }
        ret = wait_leader(rk, topic);
done:
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        rd_kafka_NewTopic_destroy(nt);
        return ret;
}

int main(int argc, char **argv) {
        const char *brokers = NULL, *topic = NULL, *ids_path = NULL;
        int64_t count = 10000, keys = 10, max_ms = 5, seed = 42, partitions = 1,
                i;
        int64_t sum_ms = 0, longest = 0, distinct = 0, *chain;
        unsigned char *seen;
        sweep_records_t records;
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        FILE *ids = NULL;
        char errstr[256];
        int opt, create = 1;

        while ((opt = getopt(argc, argv, "b:t:n:K:m:S:i:p:c:Nh")) != -1) {
                switch (opt) {
                case 'b':
                        brokers = optarg;
                        break;
                case 't':
                        topic = optarg;
                        break;
                case 'n':
                        if (sq_parse_int64(optarg, 0, 10000000, &count))
                                goto usage;
                        break;
                case 'K':
                        if (sq_parse_int64(optarg, 1, 10000000, &keys))
                                goto usage;
                        break;
                case 'm':
                        if (sq_parse_int64(optarg, 0, 86400000, &max_ms))
                                goto usage;
                        break;
                case 'S':
                        if (sq_parse_int64(optarg, 1, INT64_MAX, &seed))
                                goto usage;
                        break;
                case 'i':
                        ids_path = optarg;
                        break;
                case 'p':
                        if (sq_parse_int64(optarg, 1, 100000, &partitions))
                                goto usage;
                        break;
                case 'c':
                        if (!strchr(optarg, '=') || configs_cnt == MAX_CONFIGS)
                                goto usage;
                        configs[configs_cnt++] = optarg;
                        break;
                case 'N':
                        create = 0;
                        break;
                default:
                        goto usage;
                }
        }
        if (!brokers || !topic || optind != argc)
                goto usage;

        conf = rd_kafka_conf_new();
        if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr))) {
                fprintf(stderr, "sweep_gen: %s\n", errstr);
                return 1;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "sweep_gen: %s\n", errstr);
                return 1;
        }
        if (create && create_topic(rk, topic, (int)partitions))
                return 1;
        if (ids_path && !(ids = fopen(ids_path, "w"))) {
                perror(ids_path);
                return 1;
        }

        chain = sq_calloc((size_t)keys, sizeof(*chain));
        seen  = sq_calloc((size_t)keys, 1);
        sweep_records_init(&records, seed, keys, max_ms);
        for (i = 0; i < count; i++) {
                int64_t ms, k;
                char key[32], value[128];
                int key_len, value_len;
                rd_kafka_resp_err_t err;

                sweep_records_next(&records, &ms, &k);
                key_len   = snprintf(key, sizeof(key), "k%lld", (long long)k);
                value_len = snprintf(value, sizeof(value),
                                     "{\"id\":\"s-%06lld\",\"type\":\"sleep\","
                                     "\"payload\":\"%lld\"}",
                                     (long long)i, (long long)ms);
                if (ids)
                        fprintf(ids, "s-%06lld\n", (long long)i);
                if (!seen[k]) {
                        seen[k] = 1;
                        distinct++;
                }
                chain[k] += ms;
                sum_ms += ms;
                longest = SQ_MAX(longest, chain[k]);
                while (
                    (err = rd_kafka_producev(
                         rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                         RD_KAFKA_V_KEY(key, (size_t)key_len),
                         RD_KAFKA_V_VALUE(value, (size_t)value_len),
                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                         RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(rk, 10);
                if (err) {
                        fprintf(stderr, "sweep_gen: produce to %s: %s\n", topic,
                                rd_kafka_err2str(err));
                        return 1;
                }
                rd_kafka_poll(rk, 0);
        }
        if (rd_kafka_flush(rk, 60000) || failed) {
                fprintf(stderr, "sweep_gen: %lld records not delivered\n",
                        (long long)(failed + rd_kafka_outq_len(rk)));
                return 1;
        }
        if (ids && fclose(ids)) {
                perror(ids_path);
                return 1;
        }
        printf("sweep_gen topic=%s count=%lld keys=%lld distinct_keys=%lld "
               "sum_ms=%lld longest_chain_ms=%lld seed=%lld\n",
               topic, (long long)count, (long long)keys, (long long)distinct,
               (long long)sum_ms, (long long)longest, (long long)seed);
        sq_free(chain);
        sq_free(seen);
        rd_kafka_destroy(rk);
        return 0;

usage:
        fprintf(stderr, "Usage: sweep_gen -b BROKERS -t TOPIC [-n COUNT] "
                        "[-K KEYS] [-m MAX_MS] [-S SEED] [-i IDS_FILE] "
                        "[-p PARTITIONS] [-c KEY=VALUE]... [-N]\n");
        return 2;
}
