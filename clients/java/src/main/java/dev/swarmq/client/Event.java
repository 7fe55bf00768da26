// SPDX-License-Identifier: Apache-2.0
package dev.swarmq.client;

/**
 * One lifecycle event (schemas/event-v2.avsc); taskId is null for instance
 * events, agent and detail may be null. The types are listed in
 * docs/wire.md ("Event types"). workflowId and parentId are the task's, as
 * in {@link Result}; null outside a workflow.
 */
public record Event(String eventId, String taskId, String type, long atMs, String instance,
        String agent, String detail, String workflowId, String parentId) {

    /** An event outside a workflow (workflowId and parentId null). */
    public Event(String eventId, String taskId, String type, long atMs, String instance,
            String agent, String detail) {
        this(eventId, taskId, type, atMs, instance, agent, detail, null, null);
    }
}
