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

  /** A reader of a log as it grows ({@code ?follow=true}). */
  public interface Follower {
    /**
     * Bytes added to the log of {@code boot} (possibly none), and whether that boot's target is
     * gone, or a later boot started. Called on the thread that appended, with the machine's logs
     * locked: it must only hand the bytes on, never block.
     */
    void appended(String boot, byte[] data, boolean ended);
  }

  private final int maxBytes;
  private final Map<String, Machine> machines = new ConcurrentHashMap<>();
  private final List<java.util.function.BiConsumer<String, String>> listeners =
      new java.util.concurrent.CopyOnWriteArrayList<>();

  /** Called with the namespace and name of each machine whose log grew. */
  public void onAppend(java.util.function.BiConsumer<String, String> listener) {
    listeners.add(listener);
  }

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
    Accepted accepted;
    List<Follower> told;
    byte[] added;
    String boot;
    boolean over;
    synchronized (m) {
      Log log;
      if (m.current != null && m.current.boot.equals(chunk.boot())) {
        log = m.current;
      } else if (m.previous != null && m.previous.boot.equals(chunk.boot())) {
        log = m.previous; // a late piece of the boot before
      } else {
        if (m.current != null) {
          m.current.ended = true; // a later boot: the one before is over
          tell(List.copyOf(m.followers), m.current.boot, new byte[0], true);
          m.followers.clear();
        }
        // The bootstrap's turn between two targets (its console shell, no image) does not push
        // the target that returned out: the boot before a target is the target before it.
        boolean shellBetweenTargets =
            m.current != null
                && m.current.image == null
                && chunk.image() != null
                && m.previous != null
                && m.previous.image != null;
        if (!shellBetweenTargets) {
          m.previous = m.current;
        }
        m.current = new Log(chunk.boot(), chunk.image(), chunk.started());
        log = m.current;
      }
      added = log.append(chunk.offset(), data, maxBytes);
      log.ended |= chunk.ended();
      boot = log.boot;
      over = log.ended;
      told = log == m.current ? List.copyOf(m.followers) : List.of();
      if (over && log == m.current) {
        m.followers.clear();
      }
      List<Warning> fresh = new ArrayList<>();
      for (int i = 0; i < chunk.warnings().size(); i++) {
        int number = chunk.firstWarning() + i;
        if (number >= log.warnings && number < MAX_WARNINGS) {
          fresh.add(new Warning(chunk.boot(), number, chunk.warnings().get(i)));
          log.warnings = number + 1;
        }
      }
      accepted = new Accepted(List.copyOf(fresh));
      // Under the lock, so that readers get the pieces in order; a follower only queues them.
      tell(told, boot, added, over);
    }
    if (added.length > 0) {
      listeners.forEach(l -> l.accept(namespace, name));
    }
    return accepted;
  }

  private static void tell(List<Follower> followers, String boot, byte[] added, boolean over) {
    for (Follower f : followers) {
      try {
        f.appended(boot, added, over);
      } catch (RuntimeException e) {
        // one reader's failure is its own
      }
    }
  }

  /**
   * The log of the current boot as it is now, and {@code follower} told of every byte added to it
   * from then on, until that boot ends or a later one starts; empty (nobody registered) when no log
   * was recorded. {@link Following#close} stops the telling.
   */
  public Optional<Following> follow(String namespace, String name, Follower follower) {
    Machine m = machines.get(namespace + "/" + name);
    if (m == null) {
      return Optional.empty();
    }
    synchronized (m) {
      if (m.current == null) {
        return Optional.empty();
      }
      View view = m.current.view();
      if (!view.ended()) {
        m.followers.add(follower);
      }
      return Optional.of(
          new Following(
              view,
              () -> {
                synchronized (m) {
                  m.followers.remove(follower);
                }
              }));
    }
  }

  /** A log being followed: where it stood, and how to stop. */
  public record Following(View view, Runnable stop) {
    public void close() {
      stop.run();
    }
  }

  /** The last {@code lines} lines of the current boot's log (at most 4 KiB of them). */
  public Optional<String> tail(String namespace, String name, int lines) {
    Machine m = machines.get(namespace + "/" + name);
    if (m == null || lines <= 0) {
      return Optional.empty();
    }
    byte[] last;
    synchronized (m) {
      if (m.current == null) {
        return Optional.empty();
      }
      last = m.current.last(4096);
    }
    String text = new String(last, StandardCharsets.UTF_8).replace("\r", "");
    String[] all = text.split("\n", -1);
    int end = all.length;
    while (end > 0 && all[end - 1].isBlank()) {
      end--;
    }
    int start = Math.max(0, end - lines);
    return Optional.of(String.join("\n", java.util.Arrays.asList(all).subList(start, end)));
  }

  /** The log of the machine's current (or last) boot. */
  public Optional<View> current(String namespace, String name) {
    return view(namespace, name, true);
  }

  /**
   * The log of the boot before: after a return, while the bootstrap's console shell has the
   * console, the target that returned; once the next target runs, still the target before it (the
   * bootstrap's turn between them is not kept).
   */
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
    final List<Follower> followers = new ArrayList<>();
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

    /** Returns the bytes added (a note of lost bytes included). */
    byte[] append(long offset, byte[] data, int max) {
      int skip = 0;
      byte[] lost = new byte[0];
      if (offset > end) {
        lost =
            ("\r\n[chrootbooter: " + (offset - end) + " bytes of this console were lost]\r\n")
                .getBytes(StandardCharsets.UTF_8);
        add(lost, max);
      } else if (offset < end) {
        skip = (int) Math.min(data.length, end - offset); // sent before
      }
      byte[] rest = new byte[0];
      if (skip < data.length) {
        rest = skip == 0 ? data : java.util.Arrays.copyOfRange(data, skip, data.length);
        add(rest, max);
      }
      end = Math.max(end, offset + data.length);
      if (lost.length == 0) {
        return rest;
      }
      byte[] both = java.util.Arrays.copyOf(lost, lost.length + rest.length);
      System.arraycopy(rest, 0, both, lost.length, rest.length);
      return both;
    }

    /** The last {@code n} bytes kept, copied from the newest pieces only. */
    byte[] last(int n) {
      int want = (int) Math.min(n, size);
      byte[] out = new byte[want];
      int at = want;
      java.util.Iterator<byte[]> newestFirst = pieces.descendingIterator();
      while (at > 0 && newestFirst.hasNext()) {
        byte[] p = newestFirst.next();
        int take = Math.min(at, p.length);
        System.arraycopy(p, p.length - take, out, at - take, take);
        at -= take;
      }
      return out;
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
