package io.chrootbooter.cli;

import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpResponse;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code kubectl boot logs m1 [--previous] [-f]}: a machine's recorded console. */
@Command(
    name = "logs",
    mixinStandardHelpOptions = true,
    description = {
      "A machine's recorded console: what its running image (or its bootstrap) wrote to its"
          + " consoles in the current boot, or in the previous one. Needs get on"
          + " machineboots/log.",
      "Example: kubectl boot logs m1 --previous"
    })
final class LogsCommand implements Callable<Integer> {

  @ParentCommand KubectlBoot top;

  @Parameters(index = "0", paramLabel = "MACHINE", description = "The MachineBoot.")
  String machine;

  @Option(
      names = {"-p", "--previous"},
      description = "The boot before the current one.")
  boolean previous;

  @Option(
      names = {"-f", "--follow"},
      description = "Keep printing what the console writes until the boot ends.")
  boolean follow;

  @Override
  public Integer call() throws IOException {
    Json.name(machine, "machine");
    String ns = Json.name(top.cluster().namespace(), "namespace");
    String path =
        "/machines/"
            + ns
            + "/"
            + machine
            + "/console?boot="
            + (previous ? "previous" : "current")
            + (follow ? "&follow=true" : "");
    HttpResponse<InputStream> response = top.operator().get(path, "the console of " + machine);
    try (InputStream in = response.body()) {
      byte[] buf = new byte[8192];
      int n;
      while ((n = in.read(buf)) >= 0) {
        top.out.write(buf, 0, n);
        if (follow) {
          top.out.flush();
        }
      }
    } catch (IOException e) {
      top.out.flush();
      throw new CliException(
          Exit.FAILED,
          "the operator broke off the console of " + machine + ": " + Cluster.describe(e));
    }
    top.out.flush();
    return Exit.OK;
  }
}
