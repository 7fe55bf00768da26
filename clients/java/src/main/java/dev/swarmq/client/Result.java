// SPDX-License-Identifier: Apache-2.0
package dev.swarmq.client;

/**
 * The outcome of one task (schemas/result-v3.avsc). Times are milliseconds
 * since the Unix epoch; startedAtMs is 0 when the task never started.
 * error and agent may be null. workflowId is the task's workflow and
 * parentId the step before it there (docs/workflows.md), both null outside
 * a workflow; a workflow's own result has workflowId equal to taskId.
 */
public record Result(String taskId, Status status, byte[] output, String error, String agent,
        String instance, int attempts, Source source, long createdAtMs, long startedAtMs,
        long finishedAtMs, String workflowId, String parentId) {

    /** A result outside a workflow (workflowId and parentId null). */
    public Result(String taskId, Status status, byte[] output, String error, String agent,
            String instance, int attempts, Source source, long createdAtMs, long startedAtMs,
            long finishedAtMs) {
        this(taskId, status, output, error, agent, instance, attempts, source, createdAtMs,
                startedAtMs, finishedAtMs, null, null);
    }

    /** How a task ended (docs/wire.md, "Statuses"). */
    public enum Status { SUCCEEDED, FAILED, TIMED_OUT, DEAD_LETTERED, CANCELLED }

    /** Where the task record was. */
    public record Source(String topic, int partition, long offset) {}

    public boolean ok() {
        return status == Status.SUCCEEDED;
    }
}
