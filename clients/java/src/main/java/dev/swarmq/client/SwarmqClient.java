// SPDX-License-Identifier: Apache-2.0
package dev.swarmq.client;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Submits tasks to swarmq and waits for their results (docs/wire.md).
 *
 * <pre>{@code
 * try (SwarmqClient client = new SwarmqClient(SwarmqClient.config("127.0.0.1:9092"))) {
 *     Result r = client.run(Task.of("sha256", "hello"), Duration.ofSeconds(30));
 * }
 * }</pre>
 *
 * <p>DESIGN: one KafkaProducer for tasks and, from the first submit or wait
 * on, one watcher thread with its own KafkaConsumer that is assigned (no
 * group, nothing committed) every partition of the results topic. The
 * watcher's start offsets, each partition's end, are fixed before the first
 * task is produced, so the result of a task this client submitted is never
 * missed; partitions that appear later (or the topic's first appearance)
 * are read from their beginning. Each result completes the futures of its
 * task id and is kept (the last {@link Config#resultsKept}) so a wait after
 * it arrived still finds it. A record that does not decode is skipped.
 * Thread-safe.
 */
public final class SwarmqClient implements AutoCloseable {

    /** Settings; start from {@link SwarmqClient#config(String)}. */
    public static final class Config {
        final String bootstrapServers;
        String tasksTopic = "swarmq-tasks";
        String criticalTopic = "swarmq-tasks-critical";
        String resultsTopic = "swarmq-results";
        String eventsTopic = "swarmq-events";
        String registryUrl;
        String registryBasicAuth;
        int resultsKept = 100_000;
        final Map<String, Object> kafka = new HashMap<>();

        Config(String bootstrapServers) {
            this.bootstrapServers = bootstrapServers;
        }

        /** Topic names; they must be the consumer's (topic.* keys). */
        public Config topics(String tasks, String critical, String results, String events) {
            this.tasksTopic = tasks;
            this.criticalTopic = critical;
            this.resultsTopic = results;
            this.eventsTopic = events;
            return this;
        }

        /** The consumer's schema.registry.url (its ids are then used); unset: the embedded catalog. */
        public Config registryUrl(String url) { this.registryUrl = url; return this; }
        /** "user:password" for the registry. */
        public Config registryBasicAuth(String userInfo) { this.registryBasicAuth = userInfo; return this; }
        /** Any kafka-clients property (security.protocol, sasl.*, ...). */
        public Config kafka(String key, Object value) { this.kafka.put(key, value); return this; }
        /** How many recent results a wait still finds after they arrived. */
        public Config resultsKept(int n) { this.resultsKept = n; return this; }
    }

    /** Settings for a cluster (bootstrap.servers). */
    public static Config config(String bootstrapServers) {
        return new Config(bootstrapServers);
    }

    private final Config cfg;
    private final Wire wire;
    private final KafkaProducer<String, byte[]> producer;
    private final Object lock = new Object();
    private final Map<String, List<CompletableFuture<Result>>> waiters = new HashMap<>();
    private final LinkedHashMap<String, Result> seen;
    private Thread watcher;
    private volatile boolean closed;
    private KafkaConsumer<String, byte[]> watchConsumer;

    public SwarmqClient(Config cfg) {
        this.cfg = cfg;
        this.wire = new Wire(cfg.registryUrl, cfg.registryBasicAuth);
        Map<String, Object> p = new HashMap<>(cfg.kafka);
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cfg.bootstrapServers);
        p.putIfAbsent(ProducerConfig.LINGER_MS_CONFIG, 5);
        this.producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer());
        this.seen = new LinkedHashMap<>(16, 0.75f, false) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, Result> eldest) {
                return size() > cfg.resultsKept;
            }
        };
    }

    private KafkaConsumer<String, byte[]> consumer() {
        Map<String, Object> c = new HashMap<>(cfg.kafka);
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cfg.bootstrapServers);
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        c.putIfAbsent(ConsumerConfig.CLIENT_ID_CONFIG, "swarmq-java-" + UUID.randomUUID());
        return new KafkaConsumer<>(c, new StringDeserializer(), new ByteArrayDeserializer());
    }

    private static List<TopicPartition> partitions(KafkaConsumer<?, ?> consumer, String topic) {
        List<TopicPartition> out = new ArrayList<>();
        List<PartitionInfo> infos;
        try {
            infos = consumer.partitionsFor(topic, Duration.ofSeconds(10));
        } catch (org.apache.kafka.common.errors.TimeoutException e) {
            return out; // no such topic (yet)
        }
        if (infos != null)
            for (PartitionInfo pi : infos)
                out.add(new TopicPartition(topic, pi.partition()));
        return out;
    }

    /** Starts reading results now (submit and wait do it themselves). */
    public void watch() {
        synchronized (lock) {
            if (closed)
                throw new IllegalStateException("swarmq client closed");
            if (watcher != null)
                return;
            KafkaConsumer<String, byte[]> consumer = consumer();
            List<TopicPartition> parts = partitions(consumer, cfg.resultsTopic);
            Map<TopicPartition, Long> ends = consumer.endOffsets(parts, Duration.ofSeconds(10));
            consumer.assign(parts);
            ends.forEach(consumer::seek);
            watchConsumer = consumer;
            watcher = new Thread(() -> runWatch(consumer), "swarmq-results-watcher");
            watcher.setDaemon(true);
            watcher.start();
        }
    }

    private void runWatch(KafkaConsumer<String, byte[]> consumer) {
        long nextRefresh = 0;
        try {
            while (!closed) {
                if (System.nanoTime() >= nextRefresh) {
                    // New partitions, or the topic's first appearance: read
                    // from their beginning, nothing there is older than us.
                    List<TopicPartition> now = partitions(consumer, cfg.resultsTopic);
                    if (!consumer.assignment().containsAll(now)) {
                        List<TopicPartition> fresh = new ArrayList<>(now);
                        fresh.removeAll(consumer.assignment());
                        List<TopicPartition> all = new ArrayList<>(consumer.assignment());
                        all.addAll(fresh);
                        consumer.assign(all);
                        consumer.seekToBeginning(fresh);
                    }
                    nextRefresh = System.nanoTime()
                            + TimeUnit.SECONDS.toNanos(consumer.assignment().isEmpty() ? 1 : 5);
                }
                for (ConsumerRecord<String, byte[]> rec : consumer.poll(Duration.ofMillis(200))) {
                    Result r;
                    try {
                        r = wire.decodeResult(rec.value());
                    } catch (SwarmqException e) {
                        continue; // not ours to judge: skipped
                    }
                    deliver(r);
                }
            }
        } catch (WakeupException e) {
            // close()
        } finally {
            consumer.close(Duration.ofSeconds(5));
        }
    }

    private void deliver(Result r) {
        List<CompletableFuture<Result>> futs;
        synchronized (lock) {
            seen.putIfAbsent(r.taskId(), r);
            futs = waiters.remove(r.taskId());
        }
        if (futs != null)
            for (CompletableFuture<Result> f : futs)
                f.complete(r);
    }

    private Future<RecordMetadata> send(Task task) {
        String topic = task.priority == Task.Priority.CRITICAL ? cfg.criticalTopic : cfg.tasksTopic;
        byte[] value = wire.encodeTask(task, topic);
        return producer.send(new ProducerRecord<>(topic, task.key != null ? task.key : task.id, value));
    }

    /** Submits a task; returns its id once Kafka acknowledged it. */
    public String submit(Task task) {
        return submitAll(List.of(task)).get(0);
    }

    /** Submits tasks in one batch; their ids, in order, once all are acknowledged. */
    public List<String> submitAll(List<Task> tasks) {
        watch();
        tasks.forEach(Task::validate);
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (Task t : tasks)
            sent.add(send(t));
        producer.flush();
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < tasks.size(); i++) {
            try {
                sent.get(i).get();
            } catch (ExecutionException e) {
                throw new SwarmqException("task " + tasks.get(i).id + " not delivered: " + e.getCause(), e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new SwarmqException("interrupted", e);
            }
            ids.add(tasks.get(i).id);
        }
        return ids;
    }

    /** A future of the task's first result read after this client started watching. */
    public CompletableFuture<Result> resultFuture(String taskId) {
        watch();
        CompletableFuture<Result> f = new CompletableFuture<>();
        synchronized (lock) {
            Result hit = seen.get(taskId);
            if (hit != null) {
                f.complete(hit);
                return f;
            }
            waiters.computeIfAbsent(taskId, k -> new ArrayList<>()).add(f);
        }
        return f;
    }

    /** Submits a task and returns a future of its result. */
    public CompletableFuture<Result> submitAsync(Task task) {
        task.validate();
        CompletableFuture<Result> f = resultFuture(task.id);
        String topic = task.priority == Task.Priority.CRITICAL ? cfg.criticalTopic : cfg.tasksTopic;
        producer.send(new ProducerRecord<>(topic, task.key != null ? task.key : task.id,
                wire.encodeTask(task, topic)), (md, err) -> {
                    if (err != null)
                        f.completeExceptionally(new SwarmqException("task " + task.id + " not delivered: " + err, err));
                });
        return f;
    }

    /** Blocks until the task's result; SwarmqException after the timeout. */
    public Result await(String taskId, Duration timeout) {
        CompletableFuture<Result> f = resultFuture(taskId);
        try {
            return f.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            synchronized (lock) {
                List<CompletableFuture<Result>> l = waiters.get(taskId);
                if (l != null && l.remove(f) && l.isEmpty())
                    waiters.remove(taskId);
            }
            throw new SwarmqException("no result for task " + taskId + " within " + timeout);
        } catch (ExecutionException e) {
            throw new SwarmqException("waiting for task " + taskId + ": " + e.getCause(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SwarmqException("interrupted", e);
        }
    }

    /** Submits a task and blocks until its result. */
    public Result run(Task task, Duration timeout) {
        return await(submit(task), timeout);
    }

    /**
     * The events of one task id (null: all), from the beginning of the
     * events topic to its end when called, in the order written.
     */
    public List<Event> events(String taskId) {
        List<Event> out = new ArrayList<>();
        try (KafkaConsumer<String, byte[]> consumer = consumer()) {
            List<TopicPartition> parts = partitions(consumer, cfg.eventsTopic);
            Map<TopicPartition, Long> ends = new HashMap<>(consumer.endOffsets(parts, Duration.ofSeconds(10)));
            ends.values().removeIf(end -> end == 0);
            consumer.assign(ends.keySet());
            consumer.seekToBeginning(ends.keySet());
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!ends.isEmpty()) {
                if (System.nanoTime() > deadline)
                    throw new SwarmqException("events of " + cfg.eventsTopic + " not read within 60 s");
                for (ConsumerRecord<String, byte[]> rec : consumer.poll(Duration.ofMillis(200))) {
                    TopicPartition tp = new TopicPartition(rec.topic(), rec.partition());
                    Long end = ends.get(tp);
                    if (end == null || rec.offset() >= end)
                        continue;
                    if (rec.offset() + 1 >= end)
                        ends.remove(tp);
                    Event e = wire.decodeEvent(rec.value());
                    if (taskId == null || taskId.equals(e.taskId()))
                        out.add(e);
                }
            }
        }
        return out;
    }

    /** Flushes the producer and stops the watcher; pending futures fail. */
    @Override
    public void close() {
        Thread w;
        synchronized (lock) {
            if (closed)
                return;
            closed = true;
            w = watcher;
        }
        producer.close(Duration.ofSeconds(30));
        if (w != null) {
            watchConsumer.wakeup();
            try {
                w.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        List<CompletableFuture<Result>> pending = new ArrayList<>();
        synchronized (lock) {
            waiters.values().forEach(pending::addAll);
            waiters.clear();
        }
        pending.forEach(f -> f.completeExceptionally(new IllegalStateException("swarmq client closed")));
    }
}
