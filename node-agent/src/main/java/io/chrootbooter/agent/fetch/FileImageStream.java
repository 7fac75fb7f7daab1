package io.chrootbooter.agent.fetch;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/** An image read from a local file (a cache hit, a USB stick, the CLI with a path). */
final class FileImageStream extends ImageStream {
  private final InputStream in;
  private final long size;

  FileImageStream(Path path, FetchOptions options) throws IOException {
    super(path.toString(), options);
    this.size = Files.size(path);
    this.in = Files.newInputStream(path);
  }

  @Override
  public long contentLength() {
    return size;
  }

  @Override
  protected int fill(byte[] b, int off, int len) throws IOException {
    return in.read(b, off, len);
  }

  @Override
  public void close() throws IOException {
    try {
      in.close();
    } finally {
      super.close();
    }
  }
}
