package io.chrootbooter.cli;

import java.io.PrintStream;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/** {@code kubectl boot}: the top command, its global options, and the exit codes. */
@Command(
    name = "kubectl boot",
    mixinStandardHelpOptions = true,
    versionProvider = KubectlBoot.Version.class,
    description =
        "Chroot Booter's machines from kubectl: switch, return, timelines, tests, consoles.",
    subcommands = {
      ConsoleCommand.class,
      LogsCommand.class,
      TimelineCommand.class,
      SwitchCommand.class,
      ReturnCommand.class,
      TestCommand.class,
      TestReportCommand.class
    },
    footerHeading = "%nExit codes:%n",
    footer = {
      "  0  done (the machine runs the image, the test passed, the console detached)",
      "  1  it ran and failed (machine or test Failed, the console broke off)",
      "  2  the command line is wrong",
      "  3  the API server or the operator cannot be reached, or refused (401, 403)",
      "  4  the machine, image, test or recorded console does not exist",
      "  5  --wait ran out of time"
    })
public final class KubectlBoot implements Runnable {

  @Option(
      names = "--kubeconfig",
      scope = ScopeType.INHERIT,
      paramLabel = "FILE",
      description = "The kubeconfig (default: $KUBECONFIG, else ~/.kube/config).")
  String kubeconfig;

  @Option(
      names = "--context",
      scope = ScopeType.INHERIT,
      paramLabel = "NAME",
      description = "The kubeconfig context (default: its current context).")
  String context;

  @Option(
      names = {"-n", "--namespace"},
      scope = ScopeType.INHERIT,
      paramLabel = "NAMESPACE",
      description = "The namespace (default: the context's, else default).")
  String namespace;

  @Option(
      names = "--operator",
      scope = ScopeType.INHERIT,
      paramLabel = "URL",
      description =
          "The operator's admin port, such as http://127.0.0.1:9000 (default: $"
              + Operator.ENV
              + ", else its admin Service, port-forwarded from outside the cluster).")
  String operator;

  @Option(
      names = "--operator-service",
      scope = ScopeType.INHERIT,
      paramLabel = "[NAMESPACE/]NAME",
      description = "The operator's admin Service, when several are found.")
  String operatorService;

  PrintStream out = System.out;
  PrintStream err = System.err;
  Map<String, String> env = System.getenv();
  private Cluster cluster;
  private Operator op;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(
        spec.commandLine(),
        "give a command: console, logs, timeline, switch, return, test or test-report");
  }

  Cluster cluster() {
    if (cluster == null) {
      cluster = new Cluster(kubeconfig, context, namespace);
    }
    return cluster;
  }

  Operator operator() {
    if (op == null) {
      op = new Operator(cluster(), operator, operatorService, env);
    }
    return op;
  }

  void close() {
    if (op != null) {
      op.close();
    }
    if (cluster != null) {
      cluster.close();
    }
  }

  /** Runs the command line; returns the exit code. */
  static int run(String... args) {
    KubectlBoot top = new KubectlBoot();
    CommandLine cl = new CommandLine(top);
    cl.setParameterExceptionHandler(
        (e, a) -> {
          CommandLine c = e.getCommandLine();
          top.err.println("kubectl-boot: " + e.getMessage());
          top.err.println("Try '" + c.getCommandSpec().qualifiedName() + " --help'.");
          return Exit.USAGE;
        });
    cl.setExecutionExceptionHandler(
        (e, c, p) -> {
          if (e instanceof CliException ce) {
            top.err.println("kubectl-boot: " + ce.getMessage());
            return ce.exitCode();
          }
          top.err.println(
              "kubectl-boot: "
                  + e.getClass().getSimpleName()
                  + ": "
                  + Cluster.firstLine(e.getMessage()));
          return Exit.FAILED;
        });
    try {
      return cl.execute(args);
    } finally {
      top.close();
    }
  }

  public static void main(String[] args) {
    int code = run(args);
    System.out.flush();
    System.exit(code);
  }

  /** The version from the jar's manifest. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = KubectlBoot.class.getPackage().getImplementationVersion();
      return new String[] {"kubectl-boot " + (v == null ? "(development build)" : v)};
    }
  }
}
