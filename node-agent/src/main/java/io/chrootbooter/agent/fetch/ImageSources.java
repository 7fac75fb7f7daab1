package io.chrootbooter.agent.fetch;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;

/** Opens an image source: an {@code http(s)://} URL or a local file path. */
public final class ImageSources {
  static {
    // One image per connection: without keep-alive, HttpURLConnection.disconnect() closes the
    // socket at once (unblocking a read in another thread) instead of draining the rest of the
    // body to return the connection to the keep-alive cache, which blocks a cancel.
    System.setProperty("http.keepAlive", "false");
  }

  private ImageSources() {}

  /**
   * Opens {@code source}; for a URL this sends the first request and fails when the server cannot
   * be reached after the retries of {@code options}.
   */
  public static ImageStream open(String source, FetchOptions options) throws IOException {
    if (source.startsWith("http://") || source.startsWith("https://")) {
      return HttpImageStream.open(URI.create(source), options);
    }
    if (source.contains("://")) {
      throw new IllegalArgumentException(
          "source \"" + source + "\" is neither an http(s):// URL nor a file path");
    }
    return new FileImageStream(Path.of(source), options);
  }
}
