package io.chrootbooter.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.KubernetesClientTimeoutException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code kubectl boot test debian-12 --machines m1,m2 --check healthy --wait}. */
@Command(
    name = "test",
    mixinStandardHelpOptions = true,
    description = {
      "Test a BootImage on machines: creates a BootTest that switches each machine to the image,"
          + " runs the checks in order, and puts the machine back. With --wait, prints each"
          + " machine's progress and the result of every check.",
      "Checks (--check, repeatable, in order; default: healthy):",
      "  healthy[=TIMEOUT]        the image reports healthy (default within 5m)",
      "  command=CMD              CMD runs in the image (through /bin/sh -c) once it is"
          + " healthy, and exits 0 (a healthy check is added in front when there is none)",
      "  console-matches=REGEX    the console shows REGEX",
      "  console-never=REGEX      the console never shows REGEX, such as 'Kernel panic|BUG:'",
      "  returns=TRIGGER          a return by SpecChange, Hotkey, Serial or Helper",
      "Example: kubectl boot test debian-12 --machines rack=a --check healthy"
          + " --check command='uname -r' --wait"
    })
final class TestCommand implements Callable<Integer> {

  private static final SecureRandom RANDOM = new SecureRandom();

  @ParentCommand KubectlBoot top;

  @Parameters(index = "0", paramLabel = "BOOTIMAGE", description = "The BootImage to test.")
  String image;

  @Option(
      names = "--machines",
      required = true,
      paramLabel = "NAMES|SELECTOR",
      description = "MachineBoot names (m1,m2) or a label selector (rack=a,env!=prod).")
  String machines;

  @Option(names = "--check", paramLabel = "CHECK", description = "A check; see above.")
  List<String> checks = new ArrayList<>();

  @Option(
      names = "--parallelism",
      paramLabel = "N",
      description = "Machines tested at a time (default 1).")
  Integer parallelism;

  @Option(
      names = "--timeout",
      paramLabel = "DURATION",
      description = "How long the whole test may take (default 30m).")
  String timeout;

  @Option(
      names = "--after",
      paramLabel = "Restore|Bootstrap|Keep",
      description = "What the machines run afterwards (default Restore: what their spec says).")
  String after;

  @Option(
      names = "--name",
      paramLabel = "NAME",
      description = "The BootTest's name (default: IMAGE-xxxxx).")
  String name;

  @Option(names = "--wait", description = "Wait for the result and print it.")
  boolean wait;

  @Override
  public Integer call() {
    Json.name(image, "bootimage");
    Duration testTimeout =
        timeout == null ? Duration.ofMinutes(30) : GoDurations.parse(timeout, "--timeout");
    if (parallelism != null && (parallelism < 1 || parallelism > 1000)) {
      throw new CliException(Exit.USAGE, "--parallelism: 1 to 1000");
    }
    if (after != null && !List.of("Restore", "Bootstrap", "Keep").contains(after)) {
      throw new CliException(
          Exit.USAGE, "--after " + Terminal.printable(after) + ": Restore, Bootstrap or Keep");
    }
    String testName = name != null ? Json.name(name, "--name") : generatedName(image);
    ObjectNode spec = Json.object();
    spec.put("imageRef", image);
    spec.set("machines", selection(machines));
    if (parallelism != null) {
      spec.put("parallelism", parallelism);
    }
    spec.set("checks", Checks.parse(checks));
    if (timeout != null) {
      spec.put("timeout", timeout);
    }
    if (after != null) {
      spec.put("afterTest", after);
    }
    Cluster c = top.cluster();
    SwitchCommand.imageExists(c, image);
    ObjectNode bt = Json.object();
    bt.put("apiVersion", Cluster.GROUP + "/" + Cluster.VERSION);
    bt.put("kind", "BootTest");
    bt.putObject("metadata").put("name", testName).put("namespace", c.namespace());
    bt.set("spec", spec);
    GenericKubernetesResource resource =
        Json.MAPPER.convertValue(bt, GenericKubernetesResource.class);
    try {
      c.in(Cluster.BOOT_TEST).resource(resource).create();
    } catch (KubernetesClientException e) {
      if (e.getCode() == 409) {
        throw new CliException(
            Exit.FAILED, "boottest " + testName + " already exists in namespace " + c.namespace());
      }
      if (e.getCode() == 422 || e.getCode() == 400) {
        throw new CliException(
            Exit.USAGE,
            "the API refused the BootTest: "
                + Cluster.firstLine(
                    e.getStatus() != null ? e.getStatus().getMessage() : e.getMessage()));
      }
      throw c.translate(e, "boottest " + testName);
    }
    top.out.println("boottest.boot.chrootbooter.io/" + testName + " created");
    if (!wait) {
      top.out.println(
          "Follow it with: kubectl get bt "
              + testName
              + " -w; its JUnit report: kubectl boot test-report bt/"
              + testName);
      return Exit.OK;
    }
    JsonNode status = await(c, testName, testTimeout.plusMinutes(2));
    printResults(status);
    String phase = Json.text(status, "phase");
    top.out.printf(
        "boottest/%s: %s (%d passed, %d failed); JUnit: kubectl boot test-report bt/%s%n",
        testName, phase, status.path("passed").asInt(), status.path("failed").asInt(), testName);
    return "Passed".equals(phase) ? Exit.OK : Exit.FAILED;
  }

  static JsonNode selection(String text) {
    ObjectNode machines = Json.object();
    if (text.isBlank()) {
      throw new CliException(Exit.USAGE, "--machines: give names or a selector");
    }
    if (LabelSelectors.isSelector(text)) {
      machines.set("selector", LabelSelectors.parse(text));
    } else {
      ArrayNode names = machines.putArray("names");
      for (String n : text.split(",")) {
        names.add(Json.name(n.strip(), "--machines"));
      }
    }
    return machines;
  }

  /** IMAGE-xxxxx, at most 63 characters (the test's name is a label value on its machines). */
  static String generatedName(String image) {
    String prefix = image.length() > 57 ? image.substring(0, 57) : image;
    prefix = prefix.replaceAll("[-.]+$", "");
    String alphabet = "bcdfghjklmnpqrstvwxz2456789";
    StringBuilder b = new StringBuilder(prefix).append('-');
    for (int i = 0; i < 5; i++) {
      b.append(alphabet.charAt(RANDOM.nextInt(alphabet.length())));
    }
    return b.toString();
  }

  private JsonNode await(Cluster c, String testName, Duration limit) {
    long start = System.nanoTime();
    Map<String, String> shown = new HashMap<>();
    JsonNode[] last = {null};
    try {
      c.in(Cluster.BOOT_TEST)
          .withName(testName)
          .waitUntilCondition(
              r -> {
                if (r == null) {
                  return true;
                }
                JsonNode status = Json.tree(r).path("status");
                last[0] = status;
                for (JsonNode m : status.path("machines")) {
                  String machine = Json.text(m, "name");
                  String phase = Json.text(m, "phase");
                  String message = Json.text(m, "message");
                  String line = phase + (message == null ? "" : "  " + Cluster.firstLine(message));
                  if (machine != null && !Objects.equals(shown.put(machine, line), line)) {
                    top.out.printf(
                        "%6.1fs  %s  %s%n",
                        (System.nanoTime() - start) / 1e9,
                        Terminal.printable(machine),
                        Terminal.printable(line));
                    top.out.flush();
                  }
                }
                String phase = Json.text(status, "phase");
                return "Passed".equals(phase) || "Failed".equals(phase);
              },
              limit.toMillis(),
              TimeUnit.MILLISECONDS);
    } catch (KubernetesClientTimeoutException e) {
      throw new CliException(
          Exit.TIMEOUT,
          "boottest "
              + testName
              + " has not ended after "
              + GoDurations.format(limit)
              + " (phase "
              + (last[0] == null ? "none" : Json.text(last[0], "phase"))
              + ")");
    } catch (KubernetesClientException e) {
      throw c.translate(e, "boottest " + testName);
    }
    if (last[0] == null) {
      throw new CliException(Exit.NOT_FOUND, "boottest " + testName + " was deleted while waiting");
    }
    return last[0];
  }

  private void printResults(JsonNode status) {
    List<String[]> rows = new ArrayList<>();
    rows.add(new String[] {"MACHINE", "CHECK", "RESULT", "SECONDS", "MESSAGE"});
    for (JsonNode m : status.path("machines")) {
      String machine = Terminal.printable(String.valueOf(Json.text(m, "name")));
      if (m.path("checks").isEmpty()) {
        rows.add(
            new String[] {machine, "", p(Json.text(m, "phase")), "", p(Json.text(m, "message"))});
      }
      for (JsonNode check : m.path("checks")) {
        rows.add(
            new String[] {
              machine,
              p(Json.text(check, "name")),
              p(Json.text(check, "result")),
              check.has("durationMillis")
                  ? String.format(
                      Locale.ROOT, "%.1f", check.path("durationMillis").asLong() / 1000.0)
                  : "",
              p(Json.text(check, "message"))
            });
      }
    }
    top.out.println();
    TimelineCommand.table(top.out, rows, 3);
    top.out.println();
  }

  private static String p(String text) {
    if (text == null) {
      return "";
    }
    String line = Cluster.firstLine(Terminal.printable(text));
    return line.length() > 120 ? line.substring(0, 117) + "..." : line;
  }
}
