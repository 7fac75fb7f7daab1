package io.chrootbooter.agent.lazy;

import io.chrootbooter.agent.relay.KernelWarnings;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jboss.logging.Logger;

/**
 * Tells when dm-verity finds a corrupted block of a Lazy root while its target runs: a thread reads
 * the kernel's log ({@code /dev/kmsg}, one record per read) for dm-verity's {@code <data device>:
 * data block N is corrupted} naming the root's data device, then asks the dm device itself ({@code
 * dmsetup status}: {@code C}) whether it is the one that failed (an earlier device on the same NBD
 * device logged with the same name). The listener hears of the first corruption, once. Closing the
 * channel wakes the blocked read (the JDK signals the reading thread).
 */
public final class VerityWatch implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(VerityWatch.class);
  private static final Pattern CORRUPTED =
      Pattern.compile("verity: (\\d+:\\d+): (data|metadata) block (\\d+) is corrupted");

  private final FileChannel kmsg;
  private final String dataDevice;
  private final Supplier<Boolean> confirm;
  private final Consumer<LazyRoot.Corruption> listener;
  private final String verityDevice;
  private final Thread thread;
  private volatile boolean closed;

  private VerityWatch(
      FileChannel kmsg,
      String dataDevice,
      String verityDevice,
      Supplier<Boolean> confirm,
      Consumer<LazyRoot.Corruption> listener) {
    this.kmsg = kmsg;
    this.dataDevice = dataDevice;
    this.verityDevice = verityDevice;
    this.confirm = confirm;
    this.listener = listener;
    this.thread = new Thread(this::run, "cb-lazy-verity");
    thread.setDaemon(true);
  }

  /**
   * What is watched: the data device as dm-verity names it in its log ({@code major:minor}), the
   * verity device, and whether that device says it found a corrupted block.
   */
  public record Device(String dataDevice, String verityDevice, Supplier<Boolean> corrupted) {
    /** {@code root}'s devices; {@code dmsetup status} tells whether it found a corrupted block. */
    public static Device of(LazyRoot root) {
      return new Device(
          root.dataDevice(),
          root.verityDevice().toString(),
          () -> {
            try {
              return root.corrupted();
            } catch (IOException e) {
              LOG.warnf("dmsetup status of %s: %s", root.verityDevice(), e.getMessage());
              return false;
            }
          });
    }
  }

  /**
   * Watches {@code root}; {@code listener} hears of its first corrupted block. Empty (with a log
   * line) when the kernel's log cannot be read: the read still fails, only the report is missing.
   */
  public static Optional<VerityWatch> start(
      LazyRoot root, Path kmsg, Consumer<LazyRoot.Corruption> listener) {
    return start(Device.of(root), kmsg, listener);
  }

  /** Watches {@code device} in the kernel's log {@code kmsg}. */
  public static Optional<VerityWatch> start(
      Device device, Path kmsg, Consumer<LazyRoot.Corruption> listener) {
    return start(kmsg, device.dataDevice(), device.verityDevice(), device.corrupted(), listener);
  }

  /**
   * Watches {@code kmsg} for corruption of {@code dataDevice} ({@code major:minor}), confirmed by
   * {@code confirm}.
   */
  static Optional<VerityWatch> start(
      Path kmsg,
      String dataDevice,
      String verityDevice,
      Supplier<Boolean> confirm,
      Consumer<LazyRoot.Corruption> listener) {
    FileChannel channel;
    try {
      channel = FileChannel.open(kmsg, StandardOpenOption.READ);
    } catch (IOException | RuntimeException e) {
      LOG.warnf(
          "%s cannot be read (%s): a corrupted block of the Lazy image fails its read, but is not"
              + " reported",
          kmsg, e.getMessage());
      return Optional.empty();
    }
    VerityWatch watch = new VerityWatch(channel, dataDevice, verityDevice, confirm, listener);
    watch.thread.start();
    return Optional.of(watch);
  }

  private void run() {
    ByteBuffer buf = ByteBuffer.allocate(8192);
    while (!closed) {
      buf.clear();
      int n;
      try {
        n = kmsg.read(buf);
      } catch (ClosedChannelException e) {
        return;
      } catch (IOException e) {
        if (closed) {
          return;
        }
        // EPIPE: records were overwritten before they were read; the next read goes on.
        if (String.valueOf(e.getMessage()).contains("Broken pipe")) {
          continue;
        }
        LOG.warnf("reading the kernel's log for dm-verity: %s", e.getMessage());
        return;
      }
      if (n < 0) {
        return; // a regular file in its place (tests) ended
      }
      String record = new String(buf.array(), 0, n, StandardCharsets.UTF_8);
      for (String line : record.split("\n")) {
        Optional<LazyRoot.Corruption> c =
            KernelWarnings.parse(line).flatMap(r -> match(r.message()));
        if (c.isPresent() && confirm.get()) {
          LOG.errorf(
              "dm-verity: %s block %d of %s is corrupted",
              c.get().kind(), c.get().block(), verityDevice);
          listener.accept(c.get());
          return;
        }
      }
    }
  }

  /** The corruption {@code message} reports for this watch's data device, if it does. */
  Optional<LazyRoot.Corruption> match(String message) {
    Matcher m = CORRUPTED.matcher(message);
    if (!m.find() || !m.group(1).equals(dataDevice)) {
      return Optional.empty();
    }
    return Optional.of(
        new LazyRoot.Corruption(verityDevice, m.group(2), Long.parseLong(m.group(3))));
  }

  /** Stops watching: the thread ends before this returns (or within a few seconds). */
  @Override
  public void close() {
    closed = true;
    try {
      kmsg.close();
    } catch (IOException e) {
      LOG.debugf("closing the kernel's log: %s", e.getMessage());
    }
    try {
      thread.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
