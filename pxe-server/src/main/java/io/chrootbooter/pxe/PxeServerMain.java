package io.chrootbooter.pxe;

import java.io.IOException;
import java.util.concurrent.CountDownLatch;
import java.util.logging.ConsoleHandler;
import java.util.logging.Level;
import java.util.logging.Logger;

/** {@code java -jar chrootbooter-pxe-server.jar --operator URL --interface IFACE …}. */
public final class PxeServerMain {
  private PxeServerMain() {}

  public static void main(String[] args) throws InterruptedException {
    PxeServerConfig config;
    try {
      config = PxeServerConfig.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      System.exit(2);
      return;
    }
    configureLogging(config.debug());
    PxeServer server;
    try {
      server = PxeServer.start(config);
    } catch (IOException e) {
      System.err.println("pxe-server: " + e.getMessage());
      System.exit(1);
      return;
    }
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    server.close();
                  } catch (IOException e) {
                    System.err.println("pxe-server: close: " + e.getMessage());
                  } finally {
                    stopped.countDown();
                  }
                }));
    try {
      Logger.getLogger(PxeServerMain.class.getName())
          .info(
              "serving as "
                  + server.serverAddress().getHostAddress()
                  + ": proxyDHCP "
                  + server.dhcpAddress()
                  + config.interfaceName().map(i -> " on " + i).orElse("")
                  + ", PXE "
                  + server.pxeAddress()
                  + ", TFTP "
                  + server.tftpAddress()
                  + " from "
                  + config.tftpRoot()
                  + "; iPXE chains to "
                  + config.operator()
                  + "/boot/MAC.ipxe");
    } catch (IOException e) {
      System.err.println("pxe-server: " + e.getMessage());
    }
    stopped.await();
  }

  private static void configureLogging(boolean debug) {
    System.setProperty(
        "java.util.logging.SimpleFormatter.format", "%1$tFT%1$tT.%1$tL %4$s %3$s: %5$s%6$s%n");
    Logger root = Logger.getLogger("");
    for (var h : root.getHandlers()) {
      root.removeHandler(h);
    }
    ConsoleHandler console = new ConsoleHandler();
    console.setLevel(Level.ALL);
    root.addHandler(console);
    Logger.getLogger("io.chrootbooter.pxe").setLevel(debug ? Level.FINE : Level.INFO);
  }
}
