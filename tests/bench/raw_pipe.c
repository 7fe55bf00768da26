/* SPDX-License-Identifier: Apache-2.0 */
/*
 * raw_pipe: the ceiling swarmq is measured against. Plain librdkafka, no
 * swarmq code: fill an input topic with N records, then a consumer in a
 * fresh group reads each record and produces K records for it (acks=all,
 * idempotent, linger.ms=5, as swarmq; swarmq-consumer also keeps one
 * request in flight, which -X max.in.flight.requests.per.connection=1
 * gives the pipe), committing every second. Reports records in per second from
 * the first record consumed to the last output acknowledged (the 3 s group join
 * is excluded, as it is for swarmq's figure).
 *
 *   raw_pipe -b BROKERS [-n COUNT] [-k OUT_PER_IN] [-s VALUE_SIZE]
 *            [-t INPUT_TOPIC] [-X PROPERTY=VALUE]...
 *
 * -X sets a librdkafka property on both clients after the settings above
 * (repeatable): the pipe with another configuration, e.g. the producer's
 * max.in.flight.requests.per.connection=1 that swarmq-consumer uses.
 *
 * Prints one line: raw_pipe count=N out_per_in=K seconds=S in_per_sec=R
 *   cpu_seconds=C delivered=D
 * cpu_seconds is this process's user + system time over the same span
 * (getrusage), librdkafka's threads included.
 *
 * DESIGN
 *   Single thread; the consumer and producer share it, as a minimal
 *   consume-transform-produce service would. Delivery reports are served
 *   by rd_kafka_poll(producer, 0) after each consumed batch.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common.h"

static int64_t delivered;

/* -X PROPERTY=VALUE pairs, applied to both clients. */
#define MAX_PROPS 16
static const char *prop_names[MAX_PROPS], *prop_values[MAX_PROPS];
static int prop_cnt;

/* User + system CPU time of the whole process, in microseconds. */
static int64_t cpu_us(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
               ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque) {
        (void)rk;
        (void)opaque;
        if (rkm->err) {
                fprintf(stderr, "raw_pipe: delivery failed: %s\n",
                        rd_kafka_err2str(rkm->err));
                exit(1);
        }
        delivered++;
}

static rd_kafka_t *new_client(rd_kafka_type_t type, const char *brokers,
                              const char *group) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[256];
        rd_kafka_t *rk;

        rd_kafka_conf_set(conf, "bootstrap.servers", brokers, NULL, 0);
        if (type == RD_KAFKA_PRODUCER) {
                rd_kafka_conf_set(conf, "enable.idempotence", "true", NULL, 0);
                rd_kafka_conf_set(conf, "acks", "all", NULL, 0);
                rd_kafka_conf_set(conf, "linger.ms", "5", NULL, 0);
                rd_kafka_conf_set(conf, "queue.buffering.max.messages",
                                  "1000000", NULL, 0);
                rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        } else {
                rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
                rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", NULL,
                                  0);
                rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
                rd_kafka_conf_set(conf, "queued.max.messages.kbytes", "16384",
                                  NULL, 0);
        }
        for (int i = 0; i < prop_cnt; i++) {
                if (rd_kafka_conf_set(conf, prop_names[i], prop_values[i],
                                      errstr,
                                      sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                        fprintf(stderr, "raw_pipe: -X %s=%s: %s\n",
                                prop_names[i], prop_values[i], errstr);
                        exit(2);
                }
        }
        rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "raw_pipe: %s\n", errstr);
                exit(1);
        }
        return rk;
}

/* Keyed like swarmq's records (a task id per record), which also spreads
 * records evenly over the partitions. */
static void produce(rd_kafka_t *rk, const char *topic, const void *key,
                    size_t key_len, const void *buf, size_t len) {
        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                 RD_KAFKA_V_KEY((void *)key, key_len),
                                 RD_KAFKA_V_VALUE((void *)buf, len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(rk, 10);
}

int main(int argc, char **argv) {
        const char *brokers = NULL, *in_topic = "raw-pipe-in";
        int64_t count = 200000, out_per_in = 1, value_size = 100;
        int64_t consumed = 0, t_first = 0, t_last_commit, t_progress, t_end, i;
        int64_t cpu_first = 0, cpu_end;
        char out_topic[128], group[64], *value;
        rd_kafka_topic_partition_list_t *topics;
        rd_kafka_t *producer, *consumer;
        int opt;

        while ((opt = getopt(argc, argv, "b:n:k:s:t:X:h")) != -1) {
                switch (opt) {
                case 'b':
                        brokers = optarg;
                        break;
                case 'n':
                        sq_parse_int64(optarg, 1, INT32_MAX, &count);
                        break;
                case 'k':
                        sq_parse_int64(optarg, 1, 16, &out_per_in);
                        break;
                case 's':
                        sq_parse_int64(optarg, 1, 1 << 20, &value_size);
                        break;
                case 't':
                        in_topic = optarg;
                        break;
                case 'X': {
                        char *eq = strchr(optarg, '=');
                        if (!eq || eq == optarg || prop_cnt == MAX_PROPS) {
                                fprintf(stderr,
                                        "raw_pipe: -X needs PROPERTY=VALUE "
                                        "(at most %d), not '%s'\n",
                                        MAX_PROPS, optarg);
                                return 2;
                        }
                        *eq                     = '\0';
                        prop_names[prop_cnt]    = optarg;
                        prop_values[prop_cnt++] = eq + 1;
                        break;
                }
                default:
                        fprintf(stderr,
                                "Usage: raw_pipe -b BROKERS [-n COUNT] "
                                "[-k OUT_PER_IN] [-s VALUE_SIZE] "
                                "[-t INPUT_TOPIC] [-X PROPERTY=VALUE]...\n");
                        return 2;
                }
        }
        if (!brokers) {
                fprintf(stderr, "raw_pipe: -b BROKERS is required\n");
                return 2;
        }
        snprintf(out_topic, sizeof(out_topic), "%s-out", in_topic);
        snprintf(group, sizeof(group), "raw-pipe-%lld",
                 (long long)sq_clock_us());
        value = sq_malloc((size_t)value_size);
        memset(value, 'x', (size_t)value_size);

        /* Fill the input topic first, as the swarmq run does. */
        producer = new_client(RD_KAFKA_PRODUCER, brokers, NULL);
        for (i = 0; i < count; i++) {
                char key[32];
                int key_len =
                    snprintf(key, sizeof(key), "task-%08lld", (long long)i);
                produce(producer, in_topic, key, (size_t)key_len, value,
                        (size_t)value_size);
                if ((i & 1023) == 0)
                        rd_kafka_poll(producer, 0);
        }
        rd_kafka_flush(producer, 60000);
        delivered = 0;

        consumer = new_client(RD_KAFKA_CONSUMER, brokers, group);
        rd_kafka_poll_set_consumer(consumer);
        topics = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(topics, in_topic,
                                          RD_KAFKA_PARTITION_UA);
        rd_kafka_subscribe(consumer, topics);
        rd_kafka_topic_partition_list_destroy(topics);

        t_last_commit = sq_clock_us();
        t_progress    = t_last_commit;
        while (consumed < count) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(consumer, 100);
                if (sq_clock_us() - t_progress > 60 * 1000000) {
                        fprintf(stderr,
                                "raw_pipe: no record for 60 s after %lld of "
                                "%lld (records lost by the broker?)\n",
                                (long long)consumed, (long long)count);
                        return 1;
                }
                if (rkm) {
                        t_progress = sq_clock_us();
                        if (!rkm->err) {
                                if (!t_first) {
                                        t_first   = sq_clock_us();
                                        cpu_first = cpu_us();
                                }
                                for (i = 0; i < out_per_in; i++)
                                        produce(producer, out_topic, rkm->key,
                                                rkm->key_len, rkm->payload,
                                                rkm->len);
                                consumed++;
                        }
                        rd_kafka_message_destroy(rkm);
                }
                rd_kafka_poll(producer, 0);
                if (sq_clock_us() - t_last_commit > 1000000) {
                        rd_kafka_commit(consumer, NULL, 1);
                        t_last_commit = sq_clock_us();
                }
        }
        rd_kafka_flush(producer, 60000);
        t_end   = sq_clock_us();
        cpu_end = cpu_us();
        rd_kafka_commit(consumer, NULL, 0);
        printf("raw_pipe count=%lld out_per_in=%lld seconds=%.3f "
               "in_per_sec=%.0f cpu_seconds=%.2f delivered=%lld\n",
               (long long)count, (long long)out_per_in,
               (double)(t_end - t_first) / 1e6,
               (double)count / ((double)(t_end - t_first) / 1e6),
               (double)(cpu_end - cpu_first) / 1e6, (long long)delivered);
        rd_kafka_consumer_close(consumer);
        rd_kafka_destroy(consumer);
        rd_kafka_destroy(producer);
        sq_free(value);
        return delivered == count * out_per_in ? 0 : 1;
}
