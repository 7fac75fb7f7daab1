package io.chrootbooter.operator.status;

import java.time.Instant;

/**
 * An Event the operator recorded, as a CDI event for those that show recent history (the status
 * page) without listing Events from the API server.
 *
 * @param kind the involved object's kind: {@code MachineBoot} or {@code BootImage}
 * @param type {@code Normal} or {@code Warning}
 */
public record RecordedEvent(
    String kind,
    String namespace,
    String name,
    String type,
    String reason,
    String message,
    Instant time) {}
