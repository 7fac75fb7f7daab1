package io.chrootbooter.agent.daemon;

import com.fasterxml.jackson.databind.JsonNode;
import io.chrootbooter.agent.pivot.TestTarget;
import io.chrootbooter.agent.unpack.Mounts;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.function.Predicate;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * One whole agent daemon per test, against a {@link StandInOperator} on loopback, as root on this
 * host: an instance {@code @RegisterExtension} field. Before each test it makes a temp directory,
 * starts the stand-in operator and makes a fresh cgroup {@code PREFIX-<pid>-<n>}; the test starts
 * the daemon with {@link #start}. After each test, whatever happened, everything is released in
 * reverse: the daemon (its target ended), what the test handed to {@link #own}, the operator, the
 * cgroup (every process left in it killed), the mounts below the temp directory, and the directory.
 */
final class AgentFixture implements BeforeEachCallback, AfterEachCallback {
  private final String cgroupPrefix;
  private final Deque<AutoCloseable> teardown = new ArrayDeque<>();
  private final ByteArrayOutputStream consoleBytes = new ByteArrayOutputStream();
  private Path temp;
  private StandInOperator operator;
  private Path cgroup;
  private Daemon daemon;
  private Path targetConsole;

  /** A fixture whose per-test cgroups are named {@code cgroupPrefix-<jvm pid>-<n>}. */
  AgentFixture(String cgroupPrefix) {
    this.cgroupPrefix = cgroupPrefix;
  }

  @Override
  public void beforeEach(ExtensionContext context) throws Exception {
    temp = Files.createTempDirectory(cgroupPrefix + "-test");
    Path dir = temp;
    teardown.push(
        () -> {
          TestTarget.umountAllBelow(dir);
          TestTarget.deleteTree(dir); // only once nothing is mounted below it
        });
    cgroup = TestTarget.newCgroup(cgroupPrefix);
    Path group = cgroup;
    teardown.push(() -> TestTarget.removeCgroup(group));
    operator = own(new StandInOperator());
  }

  /**
   * Releases everything in reverse order of acquisition; a step that fails does not keep the others
   * from running, and the first failure is thrown with the later ones suppressed. The temp
   * directory is deleted only once nothing is mounted below it any more.
   */
  @Override
  public void afterEach(ExtensionContext context) throws Exception {
    Exception failure = null;
    while (!teardown.isEmpty()) {
      try {
        teardown.pop().close();
      } catch (Exception e) {
        if (failure == null) {
          failure = e;
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    daemon = null;
    if (failure != null) {
      throw failure;
    }
  }

  /**
   * Starts the daemon: a tmpfs as its work directory, state in {@code state/}, devices looked up in
   * {@code dev/}, the target's console in {@code target-console.log}, {@code pids.max} 512, reports
   * every 200 ms; its own console output is {@link #console}.
   *
   * @param mac the MAC the agent names itself by
   * @param serial {@code cb.serial}, or null
   * @param grace the agent's {@code --grace}
   * @param console what is typed at the agent's console, or null
   */
  Daemon start(String mac, String serial, Duration grace, InputStream console) throws IOException {
    Path work = Files.createDirectories(temp.resolve("work"));
    Mounts.mount("tmpfs", "mode=0755", "cb-test-work", work);
    Path targetConsole = this.targetConsole;
    if (targetConsole == null) {
      targetConsole = temp.resolve("target-console.log");
      Files.writeString(targetConsole, "");
    }
    daemon =
        own(
            Daemon.start(
                new Daemon.Options(
                    operator.url(),
                    StandInOperator.NONCE,
                    mac,
                    null,
                    null,
                    null,
                    null,
                    null,
                    serial,
                    115200,
                    null,
                    null,
                    temp.resolve("modules.sha256"),
                    work,
                    temp.resolve("state"),
                    cgroup,
                    TestTarget.BUSYBOX,
                    temp.resolve("dev"),
                    targetConsole,
                    grace,
                    OptionalLong.of(512),
                    OptionalLong.empty(),
                    Duration.ofMillis(200),
                    Map.of(),
                    1 << 20,
                    OptionalLong.empty()),
                console,
                new PrintStream(consoleBytes, true, StandardCharsets.UTF_8)));
    return daemon;
  }

  /** The targets' console for the next {@link #start} (a terminal: the relay takes it). */
  void targetConsole(Path console) {
    this.targetConsole = console;
  }

  /** Closes {@code resource} after the test, before the operator, cgroup and mounts go. */
  <T extends AutoCloseable> T own(T resource) {
    teardown.push(resource);
    return resource;
  }

  /** This test's own temp directory. */
  Path temp() {
    return temp;
  }

  StandInOperator operator() {
    return operator;
  }

  /** Serves {@code file} at the operator's {@code /images/NAME}; returns its URL. */
  String serve(String name, Path file) {
    return operator.serve(name, file);
  }

  /** Pushes a desired state (JSON) of {@code generation} down the operator's stream. */
  void push(String json, long generation) throws IOException {
    operator.push(json, generation);
  }

  /** The daemon {@link #start} started. */
  Daemon daemon() {
    return daemon;
  }

  /** What the agent printed on its console so far. */
  String console() {
    return consoleBytes.toString(StandardCharsets.UTF_8);
  }

  /** The first last-report that meets {@code condition}; on timeout, says what came instead. */
  JsonNode awaitReport(Predicate<JsonNode> condition) {
    return operator.awaitReport(condition, this::console);
  }

  /** The PID (in this namespace) of the running target's init, as the agent's state says. */
  long initPid() throws IOException {
    return Long.parseLong(Files.readString(temp.resolve("state/pid_in_target")).strip());
  }

  /** The mounts below the daemon's work directory, the work tmpfs itself included. */
  List<Path> mountsBelowWork() throws IOException {
    return Mounts.mountsBelow(temp.resolve("work"));
  }
}
