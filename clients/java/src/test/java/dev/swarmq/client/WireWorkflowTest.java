// SPDX-License-Identifier: Apache-2.0
package dev.swarmq.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.junit.jupiter.api.Test;

/**
 * A workflow's tasks' results and events (schemas/result-v3.avsc and
 * event-v2.avsc, catalog ids 8 and 9, no registry) read like the others,
 * with their workflow fields; the older ids and JSON output without them
 * read as null. Written here with Apache Avro from the repository's schema
 * files; no broker needed.
 */
class WireWorkflowTest {
    static final Path SRC = SwarmqClientTest.SRC;

    private static byte[] framed(String file, int id, java.util.function.Consumer<GenericRecord> fill)
            throws Exception {
        Schema schema = new Schema.Parser().parse(Files.readString(SRC.resolve("schemas/" + file)));
        GenericRecord rec = new GenericData.Record(schema);
        fill.accept(rec);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(0);
        out.write(ByteBuffer.allocate(4).putInt(id).array());
        BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
        new GenericDatumWriter<GenericRecord>(schema).write(rec, enc);
        enc.flush();
        return out.toByteArray();
    }

    @Test
    void workflowResultsAndEventsDecode() throws Exception {
        Wire wire = new Wire(null, null);
        byte[] value = framed("result-v3.avsc", 8, r -> {
            Schema src = r.getSchema().getField("source").schema();
            GenericRecord s = new GenericData.Record(src);
            s.put("topic", "swarmq-tasks");
            s.put("partition", 2);
            s.put("offset", 7L);
            r.put("task_id", "wf-1.0");
            r.put("status", new GenericData.EnumSymbol(r.getSchema().getField("status").schema(), "SUCCEEDED"));
            r.put("output", ByteBuffer.wrap("out".getBytes(StandardCharsets.UTF_8)));
            r.put("agent", "echo");
            r.put("instance", "c1");
            r.put("attempts", 1);
            r.put("source", s);
            r.put("created_at", 1000L);
            r.put("started_at", 1001L);
            r.put("finished_at", 1002L);
            r.put("workflow_id", "wf-1");
            r.put("parent_id", "wf-1.prev");
        });
        Result res = wire.decodeResult(value);
        assertEquals("wf-1.0", res.taskId());
        assertEquals(Result.Status.SUCCEEDED, res.status());
        assertArrayEquals("out".getBytes(StandardCharsets.UTF_8), res.output());
        assertEquals(7L, res.source().offset());
        assertEquals("wf-1", res.workflowId());
        assertEquals("wf-1.prev", res.parentId());

        Event ev = wire.decodeEvent(framed("event-v2.avsc", 9, e -> {
            e.put("event_id", "e1");
            e.put("task_id", "wf-1.0");
            e.put("type", "succeeded");
            e.put("at", 1002L);
            e.put("instance", "c1");
            e.put("workflow_id", "wf-1");
        }));
        assertEquals("e1", ev.eventId());
        assertEquals("wf-1.0", ev.taskId());
        assertEquals("succeeded", ev.type());
        assertEquals("wf-1", ev.workflowId());
        assertNull(ev.parentId());

        // Records of the older ids have none.
        Result old = wire.decodeResult(framed("result-v2.avsc", 6, r -> {
            Schema src = r.getSchema().getField("source").schema();
            GenericRecord s = new GenericData.Record(src);
            s.put("topic", "swarmq-tasks");
            s.put("partition", 0);
            s.put("offset", 1L);
            r.put("task_id", "t-1");
            r.put("status", new GenericData.EnumSymbol(r.getSchema().getField("status").schema(), "SUCCEEDED"));
            r.put("output", ByteBuffer.wrap(new byte[0]));
            r.put("instance", "c1");
            r.put("attempts", 1);
            r.put("source", s);
            r.put("created_at", 1L);
            r.put("started_at", 2L);
            r.put("finished_at", 3L);
        }));
        assertEquals("t-1", old.taskId());
        assertNull(old.workflowId());
        assertNull(old.parentId());
        Event oldEv = wire.decodeEvent(framed("event.avsc", 3, e -> {
            e.put("event_id", "e0");
            e.put("type", "x");
            e.put("at", 1L);
            e.put("instance", "c1");
        }));
        assertEquals("e0", oldEv.eventId());
        assertNull(oldEv.workflowId());

        // swarmq's JSON output: the fields where set, absent elsewhere.
        Result js = wire.decodeResult(("{\"task_id\":\"wf-1.1\",\"status\":\"SUCCEEDED\","
                + "\"output_base64\":\"\",\"error\":null,\"agent\":null,\"instance\":\"c1\","
                + "\"attempts\":1,\"source\":{\"topic\":\"t\",\"partition\":0,\"offset\":0},"
                + "\"created_at_ms\":1,\"started_at_ms\":2,\"finished_at_ms\":3,"
                + "\"workflow_id\":\"wf-1\",\"parent_id\":\"wf-1.0\"}").getBytes(StandardCharsets.UTF_8));
        assertEquals("wf-1", js.workflowId());
        assertEquals("wf-1.0", js.parentId());
        Event jsEv = wire.decodeEvent(("{\"event_id\":\"e2\",\"task_id\":\"t\",\"type\":\"x\","
                + "\"at_ms\":1,\"instance\":\"c1\",\"agent\":null,\"detail\":null}")
                .getBytes(StandardCharsets.UTF_8));
        assertNull(jsEv.workflowId());
        assertNull(jsEv.parentId());

        // An id of no result schema is still refused.
        byte[] bad = value.clone();
        bad[4] = 4;
        assertThrows(SwarmqException.class, () -> wire.decodeResult(bad));
    }
}
