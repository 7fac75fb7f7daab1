/**
 * Getting image bytes: streamed HTTP(S) with the JDK client, SHA-256 while streaming, resume with
 * Range/If-Range, retries with jittered exponential backoff, stall detection, cancellation,
 * progress events, and the room-to-fit check. Nothing here parses images.
 */
package io.chrootbooter.agent.fetch;
