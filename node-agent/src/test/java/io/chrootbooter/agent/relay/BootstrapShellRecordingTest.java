package io.chrootbooter.agent.relay;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The bootstrap's own console shell between targets, as the agent's console loop prints and reads
 * it through the recorder: recorded in a log of its own (no image), shown to users attached from
 * the operator, who may type at it as at the machine; each turn of the bootstrap is a boot of its
 * own, and its users are told when it ends.
 */
class BootstrapShellRecordingTest {
  @TempDir Path temp;

  /** What an attached user saw, and whether they were told it ended. */
  private static final class Seen implements ConsoleRecorder.Screen {
    final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    final AtomicBoolean ended = new AtomicBoolean();

    @Override
    public synchronized void output(byte[] b, int off, int len) {
      bytes.write(b, off, len);
    }

    @Override
    public void ended() {
      ended.set(true);
    }

    synchronized String text() {
      return bytes.toString(StandardCharsets.UTF_8);
    }
  }

  @Test
  void theBootstrapsShellIsRecordedAndAttachable() throws Exception {
    ConsoleRecorder recorder =
        new ConsoleRecorder(
            new ConsoleRecorder.Settings(
                "console=ttyS0", temp, temp, Optional.empty(), 4096, "test-boot"),
            Set::of,
            Clock.systemUTC());
    // Before the bootstrap's turn is recorded: nothing to attach to.
    assertThat(recorder.attach(new Seen())).isEmpty();

    ByteArrayOutputStream machine = new ByteArrayOutputStream();
    PipedOutputStream keyboard = new PipedOutputStream();
    PrintStream out = recorder.tee(new PrintStream(machine, true, StandardCharsets.UTF_8));
    InputStream in = recorder.merge(new PipedInputStream(keyboard, 1024), out);
    recorder.bootstrapStarted();

    BootLog first = recorder.current().orElseThrow();
    assertThat(first.id()).isEqualTo("test-boot-1");
    assertThat(first.image()).as("the bootstrap runs no image").isNull();
    out.print("chrootbooter> ");
    out.flush();
    assertThat(machine.toString(StandardCharsets.UTF_8)).isEqualTo("chrootbooter> ");

    Seen user = new Seen();
    var attachment = recorder.attach(user).orElseThrow();
    assertThat(attachment.device()).isEqualTo(Path.of("/dev/console"));

    // The user types: the shell reads it, echoed to the machine's console, the log and the user.
    assertThat(attachment.type("status\r".getBytes(StandardCharsets.UTF_8))).isEqualTo(7);
    assertThat(in.available()).isEqualTo(7);
    assertThat(new String(in.readNBytes(7), StandardCharsets.UTF_8)).isEqualTo("status\r");
    out.print("phase: Bootstrap\r\n");
    out.flush();
    // The person at the machine types (their terminal echoed it): recorded and shown too.
    keyboard.write("help\n".getBytes(StandardCharsets.UTF_8));
    assertThat(in.available()).isEqualTo(5);
    assertThat(new String(in.readNBytes(5), StandardCharsets.UTF_8)).isEqualTo("help\n");

    assertThat(machine.toString(StandardCharsets.UTF_8))
        .isEqualTo("chrootbooter> status\r\nphase: Bootstrap\r\n");
    assertThat(user.text()).isEqualTo("status\r\nphase: Bootstrap\r\nhelp\n");
    assertThat(first.text()).isEqualTo("chrootbooter> status\r\nphase: Bootstrap\r\nhelp\n");

    // What one user may have typed and the shell not read is bounded.
    assertThat(attachment.type(new byte[ConsoleRecorder.MAX_TYPED + 10]))
        .isEqualTo(ConsoleRecorder.MAX_TYPED);
    assertThat(attachment.type(new byte[] {'x'})).isZero();
    in.readNBytes(ConsoleRecorder.MAX_TYPED);

    // The next turn of the bootstrap (after a target): a log of its own; the first one ended,
    // and its users were told.
    recorder.bootstrapStarted();
    assertThat(user.ended).isTrue();
    assertThat(attachment.type(new byte[] {'x'})).isZero();
    assertThat(first.ended()).isTrue();
    assertThat(recorder.previous()).containsSame(first);
    BootLog second = recorder.current().orElseThrow();
    assertThat(second.id()).isEqualTo("test-boot-2");
    out.print("again\r\n");
    out.flush();
    assertThat(second.text()).isEqualTo("again\r\n");
    assertThat(first.text()).doesNotContain("again");
    Seen next = new Seen();
    var again = recorder.attach(next).orElseThrow();
    out.print("more\r\n");
    out.flush();
    assertThat(next.text()).isEqualTo("more\r\n");
    again.close();
    assertThat(next.ended).isTrue();
    out.print("after\r\n");
    out.flush();
    assertThat(next.text()).as("nothing after a detach").isEqualTo("more\r\n");
  }
}
