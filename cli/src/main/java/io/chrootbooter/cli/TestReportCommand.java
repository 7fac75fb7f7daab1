package io.chrootbooter.cli;

import java.io.IOException;
import java.io.InputStream;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code kubectl boot test-report bt/x > report.xml}: a BootTest's JUnit XML. */
@Command(
    name = "test-report",
    mixinStandardHelpOptions = true,
    description = {
      "A BootTest's results as JUnit XML, to standard output: one testcase per machine and"
          + " check, the console excerpt of a failure in <system-out>.",
      "Example: kubectl boot test-report bt/debian-smoke > report.xml"
    })
final class TestReportCommand implements Callable<Integer> {

  @ParentCommand KubectlBoot top;

  @Parameters(
      index = "0",
      paramLabel = "bt/NAME",
      description = "The BootTest: bt/NAME, boottest/NAME or NAME.")
  String test;

  @Override
  public Integer call() throws IOException {
    String name = Json.name(testName(test), "boottest");
    String ns = Json.name(top.cluster().namespace(), "namespace");
    try (InputStream in =
        top.operator()
            .get("/tests/" + ns + "/" + name + "/junit.xml", "the report of " + name)
            .body()) {
      in.transferTo(top.out);
    }
    top.out.flush();
    return Exit.OK;
  }

  /**
   * The name in {@code bt/x}, {@code boottest/x}, {@code boottests.boot.chrootbooter.io/x}, {@code
   * x}.
   */
  static String testName(String ref) {
    int slash = ref.indexOf('/');
    if (slash < 0) {
      return ref;
    }
    String kind = ref.substring(0, slash);
    if (!kind.matches("bt|boottests?(\\.boot\\.chrootbooter\\.io)?")) {
      throw new CliException(Exit.USAGE, Terminal.printable(ref) + ": give a BootTest as bt/NAME");
    }
    return ref.substring(slash + 1);
  }
}
