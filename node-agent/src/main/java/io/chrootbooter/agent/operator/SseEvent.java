package io.chrootbooter.agent.operator;

/**
 * One Server-Sent Event.
 *
 * @param name the {@code event:} field, {@code message} when absent
 * @param id the {@code id:} field, null when absent
 * @param data the {@code data:} lines joined by newlines
 */
public record SseEvent(String name, String id, String data) {}
