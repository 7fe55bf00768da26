// SPDX-License-Identifier: Apache-2.0
package dev.swarmq.client;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * A task to submit (schemas/task-v2.avsc). Only the type is required: the id
 * defaults to a random UUID, the priority to NORMAL, createdAtMs to now and
 * maxAttempts to 3. Setters return this, so tasks read as one expression:
 * {@code Task.of("sha256", "hello").priority(Task.Priority.HIGH)}.
 */
public final class Task {
    /** A task's scheduling priority; CRITICAL goes to the fast lane. */
    public enum Priority { LOW, NORMAL, HIGH, CRITICAL }

    String id = UUID.randomUUID().toString();
    final String type;
    Priority priority = Priority.NORMAL;
    final List<String> capabilities = new ArrayList<>();
    byte[] payload = new byte[0];
    String key;
    long createdAtMs = System.currentTimeMillis();
    long timeoutMs;
    int maxAttempts = 3;
    final Map<String, String> headers = new HashMap<>();
    Long notBeforeMs;

    private Task(String type) {
        this.type = type;
    }

    /** A task of this type with this payload. */
    public static Task of(String type, byte[] payload) {
        return new Task(type).payload(payload);
    }

    /** A task of this type with a UTF-8 text payload. */
    public static Task of(String type, String payload) {
        return of(type, payload.getBytes(StandardCharsets.UTF_8));
    }

    public Task id(String id) { this.id = id; return this; }
    public Task priority(Priority p) { this.priority = p; return this; }
    public Task capability(String c) { this.capabilities.add(c); return this; }
    public Task payload(byte[] p) { this.payload = p.clone(); return this; }
    /** The ordering/affinity key; the record key is this, else the id. */
    public Task key(String k) { this.key = k; return this; }
    public Task createdAtMs(long ms) { this.createdAtMs = ms; return this; }
    /** Per-attempt timeout in milliseconds; 0 = none. */
    public Task timeoutMs(long ms) { this.timeoutMs = ms; return this; }
    public Task maxAttempts(int n) { this.maxAttempts = n; return this; }
    public Task header(String k, String v) { this.headers.put(k, v); return this; }
    /** Do not start before this time (ms since the epoch). */
    public Task notBeforeMs(long ms) { this.notBeforeMs = ms; return this; }

    public String id() { return id; }
    public String type() { return type; }
    public Priority priority() { return priority; }

    /** Throws IllegalArgumentException naming what swarmq would refuse. */
    void validate() {
        if (id == null || id.isEmpty())
            throw new IllegalArgumentException("task id must not be empty");
        if (type == null || type.isEmpty())
            throw new IllegalArgumentException("task " + id + ": type must not be empty");
        if (priority == null)
            throw new IllegalArgumentException("task " + id + ": priority must not be null");
        if (maxAttempts < 1)
            throw new IllegalArgumentException("task " + id + ": maxAttempts must be >= 1");
        if (timeoutMs < 0 || createdAtMs < 0)
            throw new IllegalArgumentException("task " + id + ": timeoutMs and createdAtMs must be >= 0");
    }
}
