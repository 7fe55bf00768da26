// SPDX-License-Identifier: Apache-2.0
package dev.swarmq.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;

/**
 * The wire contract (docs/wire.md): framing, schema ids and JSON output.
 *
 * <p>DESIGN: ids come from swarmq's embedded catalog (task 1 or 5, result 2,
 * 6 or 8, event 3 or 9) unless a Schema Registry URL is given; then the Task
 * schema is registered under {@code <topic>-value} (Confluent's
 * TopicNameStrategy, as swarmq does) and results and events are read with
 * the writer schema fetched by the id in their framing (cached: an id's
 * schema never changes), resolved against this package's current schema by
 * Avro's rules. Generic records without logical-type conversions keep
 * times as longs (milliseconds). A value starting with '{' is swarmq's JSON
 * output (output.format=json). The registry is two calls of the Confluent
 * REST API over java.net.http: POST /subjects/{subject}/versions and GET
 * /schemas/ids/{id}.
 */
final class Wire {
    static final ObjectMapper JSON = new ObjectMapper();

    private final String registryUrl;
    private final String registryAuth;
    private final HttpClient http;
    private final Schema taskV1 = load("task.avsc");
    private final Schema taskV2 = load("task-v2.avsc");
    private final String taskV2Text = text("task-v2.avsc");
    private final Schema resultV1 = load("result.avsc");
    private final Schema resultV2 = load("result-v2.avsc");
    private final Schema event = load("event.avsc");
    // The readers: the current schemas, so a workflow's tasks' results and
    // events (catalog ids 8 and 9) give their workflow_id and parent_id,
    // and older records read them as null (their default).
    private final Schema resultV3 = load("result-v3.avsc");
    private final Schema eventV2 = load("event-v2.avsc");
    private final Map<Integer, Schema> writers = new ConcurrentHashMap<>();
    private final Map<String, Integer> taskIds = new ConcurrentHashMap<>();

    Wire(String registryUrl, String registryBasicAuth) {
        this.registryUrl = registryUrl == null ? null : registryUrl.replaceAll("/+$", "");
        this.registryAuth = registryBasicAuth;
        this.http = registryUrl == null ? null
                : HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    }

    private static String text(String name) {
        try (InputStream in = Wire.class.getResourceAsStream("schemas/" + name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException | NullPointerException e) {
            throw new IllegalStateException("schema " + name + " is missing from the jar", e);
        }
    }

    private static Schema load(String name) {
        return new Schema.Parser().parse(text(name));
    }

    // --- the registry -------------------------------------------------

    private JsonNode call(String method, String path, String body) {
        HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(registryUrl + path))
                .timeout(Duration.ofSeconds(10))
                .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                .header("Accept", "application/vnd.schemaregistry.v1+json, application/json")
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(body));
        if (registryAuth != null)
            req.header("Authorization", "Basic " + Base64.getEncoder()
                    .encodeToString(registryAuth.getBytes(StandardCharsets.UTF_8)));
        try {
            HttpResponse<String> resp = http.send(req.build(), HttpResponse.BodyHandlers.ofString());
            if (resp.statusCode() / 100 != 2) {
                String detail = resp.body();
                throw new SwarmqException("schema registry " + registryUrl + ": " + method + " "
                        + path + " answered HTTP " + resp.statusCode() + ": "
                        + detail.substring(0, Math.min(300, detail.length())));
            }
            return JSON.readTree(resp.body());
        } catch (IOException e) {
            throw new SwarmqException("schema registry " + registryUrl + ": " + method + " "
                    + path + " failed: " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SwarmqException("interrupted", e);
        }
    }

    private int taskSchemaId(String topic) {
        return taskIds.computeIfAbsent(topic, t -> {
            try {
                String body = JSON.writeValueAsString(Map.of("schema", taskV2Text));
                return call("POST", "/subjects/" + URLEncoder.encode(t + "-value",
                        StandardCharsets.UTF_8) + "/versions", body).get("id").asInt();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    private Schema writer(int id) {
        return writers.computeIfAbsent(id, i -> new Schema.Parser().parse(
                call("GET", "/schemas/ids/" + i, null).get("schema").asText()));
    }

    // --- tasks --------------------------------------------------------

    byte[] encodeTask(Task task, String topic) {
        task.validate();
        int id;
        Schema schema;
        if (registryUrl != null) {
            id = taskSchemaId(topic);
            schema = taskV2;
        } else if (task.notBeforeMs == null) {
            // Catalog id 1 (task.avsc): what swarmq's own tools write when
            // not_before is unused, readable by swarmq a version back.
            id = 1;
            schema = taskV1;
        } else {
            id = 5;
            schema = taskV2;
        }
        GenericRecord rec = new GenericData.Record(schema);
        rec.put("id", task.id);
        rec.put("type", task.type);
        rec.put("priority", new GenericData.EnumSymbol(
                schema.getField("priority").schema(), task.priority.name()));
        rec.put("capabilities", task.capabilities);
        rec.put("payload", ByteBuffer.wrap(task.payload));
        rec.put("key", task.key);
        rec.put("created_at", task.createdAtMs);
        rec.put("timeout_ms", task.timeoutMs);
        rec.put("max_attempts", task.maxAttempts);
        rec.put("attempt", 1);
        rec.put("headers", task.headers);
        if (schema == taskV2)
            rec.put("not_before", task.notBeforeMs);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(0);
        out.writeBytes(ByteBuffer.allocate(4).putInt(id).array());
        try {
            BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
            new GenericDatumWriter<GenericRecord>(schema).write(rec, enc);
            enc.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    // --- results and events -------------------------------------------

    private GenericRecord decodeAvro(byte[] value, String kind, Schema reader, int... catalogIds) {
        if (value == null || value.length < 5 || value[0] != 0)
            throw new SwarmqException("not a swarmq " + kind + ": byte 0 is "
                    + (value == null || value.length == 0 ? "missing"
                            : String.format("%02x", value[0]))
                    + ", expected 00 (Avro framing) or '{' (JSON)");
        int id = ByteBuffer.wrap(value, 1, 4).getInt();
        Schema writer = null;
        if (registryUrl != null) {
            writer = writer(id);
        } else {
            for (int c : catalogIds)
                if (c == id)
                    writer = id == 2 ? resultV1
                            : id == 6 ? resultV2
                            : id == 8 ? resultV3
                            : id == 9 ? eventV2
                            : event;
            if (writer == null)
                throw new SwarmqException("schema id " + id + " is not a catalog " + kind
                        + " id; was it written with a schema registry (registryUrl)?");
        }
        try {
            BinaryDecoder dec = DecoderFactory.get().binaryDecoder(value, 5, value.length - 5, null);
            GenericRecord rec = new GenericDatumReader<GenericRecord>(writer, reader).read(null, dec);
            if (!dec.isEnd())
                throw new SwarmqException(kind + " with schema id " + id + ": bytes left after the record");
            return rec;
        } catch (IOException | RuntimeException e) {
            if (e instanceof SwarmqException s)
                throw s;
            throw new SwarmqException(kind + " with schema id " + id + " does not decode: " + e, e);
        }
    }

    private static String str(Object o) {
        return o == null ? null : o.toString();
    }

    private static String str(JsonNode n) {
        return n == null || n.isNull() ? null : n.asText();
    }

    Result decodeResult(byte[] value) {
        if (value != null && value.length > 0 && value[0] == '{') {
            try {
                JsonNode j = JSON.readTree(value);
                JsonNode s = j.get("source");
                return new Result(j.get("task_id").asText(),
                        Result.Status.valueOf(j.get("status").asText()),
                        Base64.getDecoder().decode(j.get("output_base64").asText()),
                        str(j.get("error")), str(j.get("agent")), j.get("instance").asText(),
                        j.get("attempts").asInt(), new Result.Source(s.get("topic").asText(),
                                s.get("partition").asInt(), s.get("offset").asLong()),
                        j.get("created_at_ms").asLong(), j.get("started_at_ms").asLong(),
                        j.get("finished_at_ms").asLong(), str(j.get("workflow_id")),
                        str(j.get("parent_id")));
            } catch (IOException | RuntimeException e) {
                throw new SwarmqException("JSON result does not read: " + e, e);
            }
        }
        GenericRecord r = decodeAvro(value, "result", resultV3, 2, 6, 8);
        GenericRecord s = (GenericRecord) r.get("source");
        ByteBuffer out = (ByteBuffer) r.get("output");
        byte[] bytes = new byte[out.remaining()];
        out.get(bytes);
        return new Result(str(r.get("task_id")), Result.Status.valueOf(str(r.get("status"))),
                bytes, str(r.get("error")), str(r.get("agent")), str(r.get("instance")),
                (Integer) r.get("attempts"), new Result.Source(str(s.get("topic")),
                        (Integer) s.get("partition"), (Long) s.get("offset")),
                (Long) r.get("created_at"), (Long) r.get("started_at"), (Long) r.get("finished_at"),
                str(r.get("workflow_id")), str(r.get("parent_id")));
    }

    Event decodeEvent(byte[] value) {
        if (value != null && value.length > 0 && value[0] == '{') {
            try {
                JsonNode j = JSON.readTree(value);
                return new Event(j.get("event_id").asText(), str(j.get("task_id")),
                        j.get("type").asText(), j.get("at_ms").asLong(), j.get("instance").asText(),
                        str(j.get("agent")), str(j.get("detail")), str(j.get("workflow_id")),
                        str(j.get("parent_id")));
            } catch (IOException | RuntimeException e) {
                throw new SwarmqException("JSON event does not read: " + e, e);
            }
        }
        GenericRecord e = decodeAvro(value, "event", eventV2, 3, 9);
        return new Event(str(e.get("event_id")), str(e.get("task_id")), str(e.get("type")),
                (Long) e.get("at"), str(e.get("instance")), str(e.get("agent")), str(e.get("detail")),
                str(e.get("workflow_id")), str(e.get("parent_id")));
    }
}
