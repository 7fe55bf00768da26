// SPDX-License-Identifier: Apache-2.0
package dev.swarmq.client;

/** A task Kafka did not take, a record that does not decode, a registry error. */
public class SwarmqException extends RuntimeException {
    public SwarmqException(String message) {
        super(message);
    }

    public SwarmqException(String message, Throwable cause) {
        super(message, cause);
    }
}
