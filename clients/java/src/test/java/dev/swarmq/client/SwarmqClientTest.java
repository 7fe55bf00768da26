// SPDX-License-Identifier: Apache-2.0
package dev.swarmq.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The client against a real swarmq-consumer (SWARMQ_BUILD) on the real
 * Kafka broker of the ctest fixture (SQ_KAFKA_STATE, ops/kafka.sh), with
 * the embedded catalog, JSON output, and the Schema Registry of the
 * registry fixture (SQ_TEST_REGISTRY_STATE). Each consumer gets topics and
 * a group of its own, except the README example's, which uses the default
 * topics as the README does. Expectations are computed here (SHA-256, the
 * payloads), never read back from swarmq.
 */
class SwarmqClientTest {
    static final Path SRC = Path.of(System.getenv().getOrDefault("SWARMQ_SRC", "../..")).toAbsolutePath();
    static final Path BUILD = Path.of(System.getenv().getOrDefault("SWARMQ_BUILD", SRC.resolve("build").toString()));

    private final List<Process> consumers = new ArrayList<>();

    @AfterEach
    void stopConsumers() throws Exception {
        for (Process p : consumers) {
            p.destroy(); // SIGTERM: drain, commit, close, exit 0
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "swarmq-consumer did not stop within 60 s");
            assertEquals(0, p.exitValue(), "swarmq-consumer exit status after SIGTERM");
        }
    }

    static String line(String text, String key) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(key) + "=(.+)$").matcher(text);
        return m.find() ? m.group(1).trim() : null;
    }

    static String kafka() throws Exception {
        String state = System.getenv().getOrDefault("SQ_KAFKA_STATE", BUILD.resolve("tests/kafka").toString());
        Process p = new ProcessBuilder("bash", SRC.resolve("ops/kafka.sh").toString(), "env", "--state-dir", state)
                .redirectErrorStream(false).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor();
        String b = line(out, "bootstrap.servers");
        assumeTrue(b != null, "no real Kafka broker (ctest fixture broker.start, or ops/kafka.sh start --state-dir DIR with SQ_KAFKA_STATE=DIR)");
        return b;
    }

    static String registry() throws IOException {
        String state = System.getenv("SQ_TEST_REGISTRY_STATE");
        String url = state == null || !Files.exists(Path.of(state, "url")) ? null
                : line(Files.readString(Path.of(state, "url")), "schema.registry.url");
        assumeTrue(url != null, "no schema registry (ctest fixture registry.start, or ops/registry.sh start --state-dir DIR with SQ_TEST_REGISTRY_STATE=DIR)");
        return url;
    }

    /** Starts swarmq-consumer with these -X settings and waits for /readyz 200. */
    void startConsumer(String bootstrap, String name, List<String> settings) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(BUILD.resolve("consumer/swarmq-consumer").toString(),
                "--http-port", "auto", "-i", name, "-b", bootstrap, "-X", "executor.threads=2",
                "-X", "retry.max.attempts=1"));
        for (String s : settings) {
            cmd.add("-X");
            cmd.add(s);
        }
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().keySet().removeIf(k -> k.startsWith("SWARMQ_")); // the consumer reads SWARMQ_*
        Path log = Files.createTempFile("swarmq-" + name, ".log");
        pb.redirectError(log.toFile());
        Process p = pb.start();
        consumers.add(p);
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String http = null;
        for (String l; http == null && (l = out.readLine()) != null;)
            if (l.startsWith("http.url="))
                http = l.substring("http.url=".length());
        assertNotNull(http, "swarmq-consumer printed no http.url; log: " + Files.readString(log));
        Thread drain = new Thread(() -> {
            try {
                while (out.readLine() != null) {
                }
            } catch (IOException e) {
                // the process ended
            }
        });
        drain.setDaemon(true);
        drain.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            try {
                HttpURLConnection c = (HttpURLConnection) URI.create(http + "/readyz").toURL().openConnection();
                if (c.getResponseCode() == 200)
                    return;
            } catch (IOException e) {
                // not listening yet
            }
            assertTrue(System.nanoTime() < deadline, "swarmq-consumer not ready in 60 s; log: " + Files.readString(log));
            Thread.sleep(100);
        }
    }

    /** A consumer on topics of its own; the client's config for them. */
    SwarmqClient.Config ownTopics(String bootstrap, String name, String... extra) throws Exception {
        String prefix = "javaclient-" + name + "-" + UUID.randomUUID().toString().substring(0, 8);
        List<String> settings = new ArrayList<>(List.of("topic.tasks=" + prefix + "-tasks",
                "topic.critical=" + prefix + "-critical", "topic.results=" + prefix + "-results",
                "topic.events=" + prefix + "-events", "topic.retry=" + prefix + "-retry",
                "topic.dlt=" + prefix + "-dlt", "topic.control=" + prefix + "-control",
                "group.id=" + prefix + "-group"));
        settings.addAll(List.of(extra));
        startConsumer(bootstrap, name, settings);
        return SwarmqClient.config(bootstrap).topics(prefix + "-tasks", prefix + "-critical",
                prefix + "-results", prefix + "-events");
    }

    /**
     * The events of one task, read again until its last one is terminal:
     * the terminal event is written beside the result, not before it, so
     * a reader that has just seen the result may not see it yet
     * (docs/wire.md). Gives what was read after 30 s, so the caller's
     * assert names what is missing.
     */
    static List<Event> taskEvents(SwarmqClient client, String taskId) throws InterruptedException {
        Set<String> terminal = Set.of("succeeded", "dead_lettered", "cancelled", "duplicate_dropped",
                "failed", "timed_out");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            List<Event> evs = client.events(taskId);
            if ((!evs.isEmpty() && terminal.contains(evs.get(evs.size() - 1).type()))
                    || System.nanoTime() > deadline)
                return evs;
            Thread.sleep(100);
        }
    }

    static String sha256(String s) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    }

    static byte[] rawValue(String bootstrap, String topic, int partition, long offset) {
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(
                Map.of("bootstrap.servers", bootstrap), new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            TopicPartition tp = new TopicPartition(topic, partition);
            c.assign(List.of(tp));
            c.seek(tp, offset);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (System.nanoTime() < deadline)
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200)))
                    if (r.offset() == offset)
                        return r.value();
        }
        throw new AssertionError("no record at " + topic + "[" + partition + "]@" + offset);
    }

    @Test
    void submitAndWait() throws Exception {
        String bootstrap = kafka();
        try (SwarmqClient client = new SwarmqClient(ownTopics(bootstrap, "java-catalog"))) {
            Result r = client.run(Task.of("sha256", "hello"), Duration.ofSeconds(60));
            assertEquals(Result.Status.SUCCEEDED, r.status());
            assertEquals(sha256("hello"), new String(r.output(), StandardCharsets.UTF_8));
            assertEquals(null, r.error());
            assertTrue(r.createdAtMs() <= r.startedAtMs() && r.startedAtMs() <= r.finishedAtMs(), r.toString());

            List<Task> tasks = new ArrayList<>();
            for (int i = 0; i < 20; i++)
                tasks.add(Task.of("echo", "java " + i).priority(Task.Priority.values()[i % 3]));
            List<String> ids = client.submitAll(tasks);
            for (int i = 0; i < ids.size(); i++)
                assertArrayEquals(("java " + i).getBytes(StandardCharsets.UTF_8),
                        client.await(ids.get(i), Duration.ofSeconds(60)).output(), ids.get(i));

            List<CompletableFuture<Result>> futs = new ArrayList<>();
            for (int i = 0; i < 5; i++)
                futs.add(client.submitAsync(Task.of("echo", "async " + i)));
            for (int i = 0; i < 5; i++)
                assertEquals("async " + i, new String(futs.get(i).get(60, TimeUnit.SECONDS).output(), StandardCharsets.UTF_8));

            Result bad = client.run(Task.of("fail", "boom").maxAttempts(1), Duration.ofSeconds(60));
            assertEquals(Result.Status.DEAD_LETTERED, bad.status());
            assertTrue(bad.error() != null && !bad.error().isEmpty());

            List<String> types = taskEvents(client, ids.get(0)).stream().map(Event::type).toList();
            assertTrue(types.size() >= 3 && types.get(0).equals("received") && types.get(1).equals("started")
                    && types.get(types.size() - 1).equals("succeeded"), types.toString());

            assertThrows(IllegalArgumentException.class, () -> client.submit(Task.of("", "x")));
            SwarmqException e = assertThrows(SwarmqException.class,
                    () -> client.await("no-such-task", Duration.ofMillis(300)));
            assertTrue(e.getMessage().contains("no-such-task"), e.getMessage());
        }
    }

    @Test
    void jsonOutput() throws Exception {
        String bootstrap = kafka();
        try (SwarmqClient client = new SwarmqClient(ownTopics(bootstrap, "java-json", "output.format=json"))) {
            Result r = client.run(Task.of("echo", "as json"), Duration.ofSeconds(60));
            assertEquals("as json", new String(r.output(), StandardCharsets.UTF_8));
            List<Event> evs = taskEvents(client, r.taskId());
            assertEquals("succeeded", evs.get(evs.size() - 1).type());
        }
    }

    @Test
    void withRegistry() throws Exception {
        String bootstrap = kafka();
        String url = registry();
        SwarmqClient.Config cfg = ownTopics(bootstrap, "java-registry", "schema.registry.url=" + url).registryUrl(url);
        try (SwarmqClient client = new SwarmqClient(cfg)) {
            Result r = client.run(Task.of("sha256", "registry"), Duration.ofSeconds(60));
            assertEquals(Result.Status.SUCCEEDED, r.status());
            assertEquals(sha256("registry"), new String(r.output(), StandardCharsets.UTF_8));
            // Framed with the registry's id of task-v2.avsc under <tasks topic>-value.
            String body = Wire.JSON.writeValueAsString(Map.of("schema",
                    Files.readString(SRC.resolve("schemas/task-v2.avsc"))));
            HttpResponse<String> resp = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                    URI.create(url + "/subjects/" + cfg.tasksTopic + "-value"))
                    .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
            int id = Wire.JSON.readTree(resp.body()).get("id").asInt();
            byte[] value = rawValue(bootstrap, r.source().topic(), r.source().partition(), r.source().offset());
            assertEquals(0, value[0]);
            assertTrue(id > 0);
            assertEquals(id, ByteBuffer.wrap(value, 1, 4).getInt());
        }
    }

    @Test
    void shippedSchemasAreTheRepositorys() throws Exception {
        for (String name : List.of("task.avsc", "task-v2.avsc", "result.avsc", "result-v2.avsc", "event.avsc",
                "result-v3.avsc", "event-v2.avsc"))
            assertArrayEquals(Files.readAllBytes(SRC.resolve("schemas/" + name)),
                    SwarmqClient.class.getResourceAsStream("schemas/" + name).readAllBytes(),
                    "src/main/resources/dev/swarmq/client/schemas/" + name + " differs from schemas/" + name);
    }

    /** The README's Java example ("From your language"), run as written with java's source launcher. */
    @Test
    void readmeExample() throws Exception {
        String bootstrap = kafka();
        String readme = Files.readString(SRC.resolve("README.md"));
        Matcher m = Pattern.compile("(?s)<!-- example: java [^\n]*\n```java\n(.*?)```").matcher(readme);
        assertTrue(m.find(), "README.md has no Java example");
        String code = m.group(1);
        assertTrue(code.contains("\"127.0.0.1:9092\""), "the example does not connect to 127.0.0.1:9092");
        // Its default topics, on the shared broker, with a group of its own.
        startConsumer(bootstrap, "java-readme", List.of("group.id=javaclient-readme-" + UUID.randomUUID()));
        Path dir = Files.createTempDirectory("readme");
        Path src = dir.resolve("Example.java");
        Files.writeString(src, code.replace("\"127.0.0.1:9092\"", "\"" + bootstrap + "\""));
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), src.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.endsWith("SUCCEEDED " + sha256("hello") + "\n"), out);
    }
}
