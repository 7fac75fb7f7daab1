package io.chrootbooter.e2e.lab;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * What a lab needs on this machine, checked before one is started: root, the tools {@code ./lab}
 * runs, QEMU's iPXE option ROM, and the artifacts the reactor builds ({@code mvn verify
 * -Pbootstrap} from the repository root builds them before this module). Each missing piece is
 * named with how to get it, so a skipped test says what to do.
 */
final class LabPrerequisites {
  private static final List<String> TOOLS =
      List.of(
          "ip: iproute2",
          "qemu-system-x86_64: qemu-system-x86",
          "dnsmasq: dnsmasq-base",
          "socat: socat",
          "busybox: busybox-static",
          "kubectl: kubernetes-client",
          "zstd: zstd",
          "curl: curl",
          "setsid: util-linux",
          "flock: util-linux");

  private LabPrerequisites() {}

  /** Why a lab cannot run here, or empty when it can. */
  static Optional<String> missing(Path repository) {
    List<String> missing = new ArrayList<>();
    if (!"0".equals(output("id", "-u"))) {
      return Optional.of("needs root (network namespaces, taps, QEMU)");
    }
    for (String tool : TOOLS) {
      String[] nameAndPackage = tool.split(": ");
      if (!onPath(nameAndPackage[0])) {
        missing.add(nameAndPackage[0] + " (Debian package " + nameAndPackage[1] + ")");
      }
    }
    if (!Files.exists(Path.of("/usr/lib/ipxe/qemu/efi-virtio.rom"))) {
      missing.add("QEMU's virtio-net option ROM (Debian package ipxe-qemu)");
    }
    Path bootstrap = repository.resolve("node-agent/target/bootstrap");
    if (!Files.exists(bootstrap.resolve("vmlinuz"))
        || !Files.exists(bootstrap.resolve("initramfs.img"))) {
      missing.add(
          "the bootstrap in "
              + bootstrap
              + " (mvn -B -pl node-agent -am package -Pbootstrap -DskipTests)");
    }
    if (!Files.exists(repository.resolve("operator/target/quarkus-app/quarkus-run.jar"))) {
      missing.add("the operator (mvn -B -pl operator -am package -DskipTests)");
    }
    if (!hasPxeJar(repository.resolve("pxe-server/target"))) {
      missing.add("the pxe-server jar (mvn -B -pl pxe-server package -DskipTests)");
    }
    if (!missing.isEmpty()) {
      return Optional.of("missing: " + String.join(", ", missing));
    }
    String probe = "cbe2e-probe-" + ProcessHandle.current().pid();
    if (output("ip", "netns", "add", probe) == null) {
      return Optional.of("cannot create network namespaces here (ip netns add failed)");
    }
    output("ip", "netns", "del", probe);
    return Optional.empty();
  }

  private static boolean hasPxeJar(Path target) {
    try (var files = Files.list(target)) {
      return files.anyMatch(
          f -> f.getFileName().toString().matches("chrootbooter-pxe-server-.*\\.jar"));
    } catch (IOException e) {
      return false;
    }
  }

  private static boolean onPath(String tool) {
    List<String> dirs =
        new ArrayList<>(List.of(System.getenv().getOrDefault("PATH", "").split(":")));
    dirs.addAll(List.of("/usr/sbin", "/sbin"));
    return dirs.stream().anyMatch(d -> !d.isEmpty() && Files.isExecutable(Path.of(d, tool)));
  }

  /** The command's trimmed output when it exits 0 within 30 s, else null. */
  private static String output(String... command) {
    try {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0 ? out : null;
    } catch (IOException e) {
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    }
  }
}
