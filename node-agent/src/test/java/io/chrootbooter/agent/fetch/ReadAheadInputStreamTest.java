package io.chrootbooter.agent.fetch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.SequenceInputStream;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The read-ahead stage between the pipeline's threads: same bytes out, errors passed on. */
class ReadAheadInputStreamTest {

  @Test
  void deliversEveryByteInOrderWhileReusingItsBuffers() throws IOException {
    byte[] data = new byte[1_000_003];
    new Random(7).nextBytes(data);
    // Upstream hands out odd-sized pieces; 4 KiB chunks, 3 deep: each buffer is refilled
    // about 50 times, so a buffer handed back too early would corrupt the output.
    InputStream upstream =
        new ByteArrayInputStream(data) {
          @Override
          public synchronized int read(byte[] b, int off, int len) {
            return super.read(b, off, Math.min(len, 1237));
          }
        };
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (ReadAheadInputStream in = new ReadAheadInputStream(upstream, "test", 4096, 3)) {
      byte[] buffer = new byte[777];
      int n;
      while ((n = in.read(buffer, 0, buffer.length)) >= 0) {
        out.write(buffer, 0, n);
      }
      assertThat(in.read()).isEqualTo(-1);
    }
    assertThat(out.toByteArray()).isEqualTo(data);
  }

  @Test
  void aSocketPollTimeoutIsPassedOnAndReadingGoesOn() throws IOException {
    InputStream upstream =
        new InputStream() {
          private int calls;

          @Override
          public int read() {
            throw new UnsupportedOperationException();
          }

          @Override
          public int read(byte[] b, int off, int len) throws IOException {
            calls++;
            if (calls == 2) {
              throw new java.net.SocketTimeoutException("Read timed out");
            }
            if (calls > 3) {
              return -1;
            }
            b[off] = (byte) calls;
            return 1;
          }
        };
    try (ReadAheadInputStream in = new ReadAheadInputStream(upstream, "test", 4096, 2)) {
      assertThat(in.read()).as("the byte before the timeout").isEqualTo(1);
      assertThatThrownBy(in::read).isInstanceOf(java.net.SocketTimeoutException.class);
      assertThat(in.read()).as("the byte after it").isEqualTo(3);
      assertThat(in.read()).isEqualTo(-1);
    }
  }

  @Test
  void anUpstreamErrorReachesTheReaderAfterTheBytesBeforeIt() throws IOException {
    byte[] data = new byte[10_000];
    InputStream failing =
        new InputStream() {
          @Override
          public int read() throws IOException {
            throw new IOException("connection reset at byte 10000");
          }
        };
    try (ReadAheadInputStream in =
        new ReadAheadInputStream(
            new SequenceInputStream(new ByteArrayInputStream(data), failing), "test", 4096, 2)) {
      assertThat(in.readNBytes(8192)).hasSize(8192);
      assertThatThrownBy(in::readAllBytes).hasMessage("connection reset at byte 10000");
    }
  }
}
