package io.chrootbooter.operator.console;

import io.chrootbooter.protocol.ConsoleChunk;
import jakarta.enterprise.context.ApplicationScoped;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.eclipse.microprofile.config.inject.ConfigProperty;

/**
 * The recorded consoles the agents send ({@link ConsoleChunk}): per machine the log of its current
 * boot and of the one before, each bounded to {@code cb.console.log-bytes} (default 256 KiB; the
 * oldest bytes go first), in this replica's memory. Offsets make a resent chunk harmless; bytes the
 * agent's ring lost before they were sent show as a line saying how many.
 */
@ApplicationScoped
public class ConsoleLogs {
  /** Warnings taken per boot: the agent sends no more, and a replay is not believed. */
  public static final int MAX_WARNINGS = 32;

  /** What a chunk brought that needs telling: kernel warnings not seen before, with numbers. */
  public record Accepted(List<Warning> warnings) {}

  /** A kernel warning: the boot, its number in that boot, its first line. */
  public record Warning(String boot, int number, String line) {}

  /** A log as read: its boot, image, start, whether the target is gone, and its text. */
  public record View(String boot, String image, String started, boolean ended, byte[] bytes) {
    public String text() {
      return new String(bytes, StandardCharsets.UTF_8);
    }
  }

  private final int maxBytes;
  private final Map<String, Machine> machines = new ConcurrentHashMap<>();

  ConsoleLogs(
      @ConfigProperty(name = "cb.console.log-bytes", defaultValue = "262144") int maxBytes) {
    if (maxBytes <= 0) {
      throw new IllegalArgumentException("cb.console.log-bytes must be positive, not " + maxBytes);
    }
    this.maxBytes = maxBytes;
  }

  /** Takes a chunk of the machine {@code namespace/name}; {@code data} is its decoded bytes. */
  public Accepted append(String namespace, String name, ConsoleChunk chunk, byte[] data) {
    Machine m = machines.computeIfAbsent(namespace + "/" + name, k -> new Machine());
    synchronized (m) {
      Log log;
      if (m.current != null && m.current.boot.equals(chunk.boot())) {
        log = m.current;
      } else if (m.previous != null && m.previous.boot.equals(chunk.boot())) {
        log = m.previous; // a late piece of the boot before
      } else {
        m.previous = m.current;
        m.current = new Log(chunk.boot(), chunk.image(), chunk.started());
        log = m.current;
      }
      log.append(chunk.offset(), data, maxBytes);
      log.ended |= chunk.ended();
      List<Warning> fresh = new ArrayList<>();
      for (int i = 0; i < chunk.warnings().size(); i++) {
        int number = chunk.firstWarning() + i;
        if (number >= log.warnings && number < MAX_WARNINGS) {
          fresh.add(new Warning(chunk.boot(), number, chunk.warnings().get(i)));
          log.warnings = number + 1;
        }
      }
      return new Accepted(List.copyOf(fresh));
    }
  }

  /** The log of the machine's current (or last) boot. */
  public Optional<View> current(String namespace, String name) {
    return view(namespace, name, true);
  }

  /** The log of the boot before. */
  public Optional<View> previous(String namespace, String name) {
    return view(namespace, name, false);
  }

  /** Drops the logs of a machine that is gone. */
  public void forget(String namespace, String name) {
    machines.remove(namespace + "/" + name);
  }

  private Optional<View> view(String namespace, String name, boolean current) {
    Machine m = machines.get(namespace + "/" + name);
    if (m == null) {
      return Optional.empty();
    }
    synchronized (m) {
      Log log = current ? m.current : m.previous;
      return Optional.ofNullable(log).map(Log::view);
    }
  }

  private static final class Machine {
    Log current;
    Log previous;
  }

  private static final class Log {
    final String boot;
    final String image;
    final String started;
    final Deque<byte[]> pieces = new ArrayDeque<>();
    long size;
    long end;
    int warnings;
    boolean ended;

    Log(String boot, String image, String started) {
      this.boot = boot;
      this.image = image;
      this.started = started;
    }

    void append(long offset, byte[] data, int max) {
      int skip = 0;
      if (offset > end) {
        add(
            ("\r\n[chrootbooter: " + (offset - end) + " bytes of this console were lost]\r\n")
                .getBytes(StandardCharsets.UTF_8),
            max);
      } else if (offset < end) {
        skip = (int) Math.min(data.length, end - offset); // sent before
      }
      if (skip < data.length) {
        byte[] rest = skip == 0 ? data : java.util.Arrays.copyOfRange(data, skip, data.length);
        add(rest, max);
      }
      end = Math.max(end, offset + data.length);
    }

    private void add(byte[] bytes, int max) {
      if (bytes.length == 0) {
        return;
      }
      pieces.addLast(bytes);
      size += bytes.length;
      while (size > max) {
        byte[] first = pieces.pollFirst();
        long over = size - max;
        if (first.length <= over) {
          size -= first.length;
        } else {
          pieces.addFirst(java.util.Arrays.copyOfRange(first, (int) over, first.length));
          size -= over;
        }
      }
    }

    View view() {
      byte[] all = new byte[(int) size];
      int at = 0;
      for (byte[] p : pieces) {
        System.arraycopy(p, 0, all, at, p.length);
        at += p.length;
      }
      return new View(boot, image, started, ended, all);
    }
  }
}
