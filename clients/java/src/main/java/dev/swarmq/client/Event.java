// SPDX-License-Identifier: Apache-2.0
package dev.swarmq.client;

/**
 * One lifecycle event (schemas/event.avsc); taskId is null for instance
 * events, agent and detail may be null. The types are listed in
 * docs/wire.md ("Event types").
 */
public record Event(String eventId, String taskId, String type, long atMs, String instance,
        String agent, String detail) {}
