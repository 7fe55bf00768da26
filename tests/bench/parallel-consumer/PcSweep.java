// SPDX-License-Identifier: Apache-2.0
//
// PcSweep: Confluent parallel-consumer 0.5.3.3 running the key sweep's
// records (tests/bench/sweep_gen.c writes them, tests/bench/keysweep.sh
// runs this). Each record is a swarmq JSON task of the builtin `sleep`;
// the user function sleeps its payload's milliseconds and produces one
// result record (pollAndProduce), as swarmq produces one result per task.
// parallel-consumer waits for that record's acknowledgement before it
// counts the input done, so the next record of a key (or of the partition)
// starts after the result is on the broker: the same hand-off swarmq's
// ordering gate makes.
//
//   java -cp 'classes:lib/*' PcSweep --bootstrap B --topic T --group G
//        --out-topic O --ordering PARTITION|KEY|UNORDERED --concurrency C
//        --commit-ms MS --count N [--timeout-s S]
//
// Prints one line:
//   pc ordering=.. concurrency=.. count=.. seconds=.. cpu_seconds=..
// seconds: from the first record handed to the user function to the
// acknowledgement of the last result; cpu_seconds: this JVM's CPU time
// over the same span. Exit 1 when not every record got a result in time.

import io.confluent.parallelconsumer.ParallelConsumerOptions;
import io.confluent.parallelconsumer.ParallelConsumerOptions.CommitMode;
import io.confluent.parallelconsumer.ParallelConsumerOptions.ProcessingOrder;
import io.confluent.parallelconsumer.ParallelStreamProcessor;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class PcSweep {
    private static final com.sun.management.OperatingSystemMXBean OS =
            (com.sun.management.OperatingSystemMXBean)
                    ManagementFactory.getOperatingSystemMXBean();

    private PcSweep() {}

    private static void usage(String why) {
        System.err.println("PcSweep: " + why);
        System.err.println("Usage: PcSweep --bootstrap B --topic T --group G"
                + " --out-topic O --ordering PARTITION|KEY|UNORDERED"
                + " --concurrency C --commit-ms MS --count N [--timeout-s S]");
        System.exit(2);
    }

    /** The sleep of a swarmq JSON task: its "payload" string, in ms. */
    static long sleepMs(String value) {
        int at = value.indexOf("\"payload\":\"");
        if (at < 0) {
            return 0;
        }
        long ms = 0;
        for (int i = at + 11; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c < '0' || c > '9') {
                break;
            }
            ms = ms * 10 + (c - '0');
        }
        return ms;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> opt = new HashMap<>();
        for (int i = 0; i < args.length; i += 2) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                usage("bad argument " + args[i]);
            }
            opt.put(args[i].substring(2), args[i + 1]);
        }
        for (String k : List.of("bootstrap", "topic", "group", "out-topic",
                "ordering", "concurrency", "commit-ms", "count")) {
            if (!opt.containsKey(k)) {
                usage("--" + k + " is required");
            }
        }
        final long count = Long.parseLong(opt.get("count"));
        final String outTopic = opt.get("out-topic");
        final long timeoutS = Long.parseLong(opt.getOrDefault("timeout-s", "900"));

        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, opt.get("bootstrap"));
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, opt.get("group"));
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        // The client's defaults otherwise (acks=all and idempotence are the
        // 3.x defaults; linger.ms 0), as a parallel-consumer user gets them.
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, opt.get("bootstrap"));
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");

        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp);
        KafkaProducer<String, String> producer = new KafkaProducer<>(pp);
        ParallelConsumerOptions<String, String> options =
                ParallelConsumerOptions.<String, String>builder()
                        .ordering(ProcessingOrder.valueOf(opt.get("ordering")))
                        .maxConcurrency(Integer.parseInt(opt.get("concurrency")))
                        .commitMode(CommitMode.PERIODIC_CONSUMER_ASYNCHRONOUS)
                        .commitInterval(Duration.ofMillis(Long.parseLong(opt.get("commit-ms"))))
                        .consumer(consumer)
                        .producer(producer)
                        .build();
        ParallelStreamProcessor<String, String> pc =
                ParallelStreamProcessor.createEosStreamProcessor(options);

        final AtomicLong firstNs = new AtomicLong();
        final AtomicLong firstCpu = new AtomicLong();
        final AtomicLong lastNs = new AtomicLong();
        final AtomicLong lastCpu = new AtomicLong();
        final AtomicLong done = new AtomicLong();
        final CountDownLatch all = new CountDownLatch(1);

        pc.subscribe(List.of(opt.get("topic")));
        pc.pollAndProduce(ctx -> {
            if (firstNs.get() == 0 && firstNs.compareAndSet(0, System.nanoTime())) {
                firstCpu.set(OS.getProcessCpuTime());
            }
            String value = ctx.value();
            try {
                Thread.sleep(sleepMs(value));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return new ProducerRecord<>(outTopic, ctx.key(), value);
        }, result -> {
            // Runs once the result is acknowledged by the broker.
            if (done.incrementAndGet() == count) {
                lastNs.set(System.nanoTime());
                lastCpu.set(OS.getProcessCpuTime());
                all.countDown();
            }
        });

        boolean finished = all.await(timeoutS, TimeUnit.SECONDS);
        pc.close();
        if (!finished) {
            System.err.println("PcSweep: " + done.get() + " of " + count
                    + " results in " + timeoutS + " s");
            System.exit(1);
        }
        System.out.printf("pc ordering=%s concurrency=%s count=%d seconds=%.3f"
                        + " cpu_seconds=%.2f%n",
                opt.get("ordering"), opt.get("concurrency"), count,
                (lastNs.get() - firstNs.get()) / 1e9,
                (lastCpu.get() - firstCpu.get()) / 1e9);
        System.exit(0);
    }
}
