package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.console.ConsoleShell;
import io.chrootbooter.agent.pivot.TargetControl;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.jboss.logging.Logger;

/**
 * The bootstrap console: reads command lines from the agent's stdin (the kernel console) and runs
 * them through the {@link ConsoleShell}, but only while no target runs: while one does, the console
 * is the target's and not a byte is read from it. Input is taken only when whole lines are waiting
 * ({@code available()}, which a tty in canonical mode reports per line), so a read never blocks
 * across the boot of a target.
 */
final class ConsoleLoop implements Runnable {
  private static final Logger LOG = Logger.getLogger(ConsoleLoop.class);
  private static final long IDLE_MILLIS = 100;
  private static final int MAX_LINE = 4096;

  private final ConsoleShell shell;
  private final TargetControl controller;
  private final InputStream in;
  private final PrintStream out;

  ConsoleLoop(ConsoleShell shell, TargetControl controller, InputStream in, PrintStream out) {
    this.shell = shell;
    this.controller = controller;
    this.in = in;
    this.out = out;
  }

  @Override
  public void run() {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    boolean prompted = false;
    try {
      while (!Thread.currentThread().isInterrupted()) {
        if (controller.session().isPresent()) {
          prompted = false;
          Thread.sleep(IDLE_MILLIS);
          continue;
        }
        if (!prompted) {
          out.print(ConsoleShell.PROMPT);
          out.flush();
          prompted = true;
        }
        int available = in.available();
        if (available <= 0) {
          Thread.sleep(IDLE_MILLIS);
          continue;
        }
        byte[] bytes = in.readNBytes(Math.min(available, 8192));
        for (byte b : bytes) {
          if (b == '\n' || b == '\r') {
            String text = line.toString(StandardCharsets.UTF_8);
            line.reset();
            if (b == '\r' && text.isEmpty()) {
              continue;
            }
            for (String reply : shell.execute(text)) {
              out.print(reply + "\r\n");
            }
            out.flush();
            prompted = false;
          } else if (line.size() < MAX_LINE) {
            line.write(b);
          }
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (IOException e) {
      LOG.warnf("console: %s; the console shell stops", e.getMessage());
    }
  }
}
