package io.chrootbooter.protocol;

import java.util.Optional;
import java.util.OptionalLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Parts of an HTTP resource (RFC 9110 §14): the {@code Range} requests the operator's mirror and
 * the agent's downloads send to resume or to read one piece, the {@code If-Range} validator they
 * resume under (§13.1.5), and the {@code Content-Range} answers they accept. Written once for both
 * sides.
 */
public final class HttpRange {
  private static final Pattern CONTENT_RANGE =
      Pattern.compile("bytes (\\d{1,18})-(\\d{1,18})/(\\d{1,18}|\\*)");

  private HttpRange() {}

  /** A {@code Content-Range} answer: bytes {@code first} to {@code last}, both included. */
  public record ContentRange(long first, long last, OptionalLong complete) {
    /** Whether the answer starts at {@code offset}. */
    public boolean startsAt(long offset) {
      return first == offset;
    }

    /** Whether the answer is exactly bytes {@code from} (included) to {@code to} (excluded). */
    public boolean covers(long from, long to) {
      return first == from && last == to - 1;
    }
  }

  /** The {@code Range} header value for everything from {@code offset} on. */
  public static String from(long offset) {
    return "bytes=" + offset + "-";
  }

  /** The {@code Range} header value for bytes {@code from} (included) to {@code to} (excluded). */
  public static String between(long from, long to) {
    return "bytes=" + from + "-" + (to - 1);
  }

  /**
   * A {@code Content-Range} header of a 206 answer; empty when absent or malformed (which is not a
   * range the request asked for).
   */
  public static Optional<ContentRange> parse(String header) {
    if (header == null) {
      return Optional.empty();
    }
    Matcher m = CONTENT_RANGE.matcher(header.strip());
    if (!m.matches()) {
      return Optional.empty();
    }
    long first = Long.parseLong(m.group(1));
    long last = Long.parseLong(m.group(2));
    OptionalLong complete =
        m.group(3).equals("*") ? OptionalLong.empty() : OptionalLong.of(Long.parseLong(m.group(3)));
    if (last < first || (complete.isPresent() && last >= complete.getAsLong())) {
      return Optional.empty();
    }
    return Optional.of(new ContentRange(first, last, complete));
  }

  /**
   * The validator to resume under ({@code If-Range}): a strong {@code ETag}, else {@code
   * Last-Modified}; empty when the answer has neither (a resume could splice two versions, so it
   * starts over instead).
   */
  public static Optional<String> validator(String etag, String lastModified) {
    if (etag != null && !etag.startsWith("W/")) {
      return Optional.of(etag);
    }
    return Optional.ofNullable(lastModified);
  }
}
