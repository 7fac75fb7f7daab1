package io.chrootbooter.operator.machine;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.BootImageStatus;
import io.chrootbooter.api.v1alpha1.Patterns;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Renders iPXE scripts. Every value is checked again here, at the last step, against a pattern that
 * admits nothing iPXE would interpret ({@code ${…}} expansion, whitespace, newlines, quotes) and
 * nothing that would split one kernel argument into two: no spec value can add a line, an iPXE
 * command or a kernel argument it did not declare.
 */
public final class IpxeScript {
  private static final Pattern ARG = Pattern.compile(Patterns.KERNEL_ARG);
  private static final Pattern MAC = Pattern.compile(Patterns.MAC);
  private static final Pattern CA_PIN = Pattern.compile("^sha256:[0-9a-f]{64}$");
  private static final Pattern NONCE = Pattern.compile("^[A-Za-z0-9_-]{16,128}$");
  private static final Pattern BASE_URL =
      Pattern.compile(
          "^https?://([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$");
  private static final Pattern NAME = Pattern.compile(Patterns.OBJECT_NAME);

  private IpxeScript() {}

  /** What a machine's boot script passes on. */
  public record Boot(
      String namespace,
      String name,
      String baseUrl,
      String mac,
      String nonce,
      List<String> imageArgs,
      List<String> consoleArgs,
      List<String> kernelArgs,
      String agentUrl,
      String caPin) {
    public Boot {
      check(NAME, namespace, "namespace");
      check(NAME, name, "name");
      check(BASE_URL, baseUrl, "base URL");
      check(MAC, mac, "MAC");
      check(NONCE, nonce, "nonce");
      imageArgs = List.copyOf(imageArgs);
      imageArgs.forEach(a -> check(ARG, a, "image argument"));
      consoleArgs = List.copyOf(consoleArgs);
      kernelArgs = List.copyOf(kernelArgs);
      consoleArgs.forEach(a -> check(ARG, a, "console argument"));
      kernelArgs.forEach(a -> check(ARG, a, "kernel argument"));
      kernelArgs.forEach(
          a ->
              MachineBootValidator.reserved(a)
                  .ifPresent(
                      why -> {
                        throw new IllegalArgumentException(
                            "refusing to render an iPXE script: kernel argument " + a + " " + why);
                      }));
      if (agentUrl != null) {
        check(BASE_URL, agentUrl, "agent URL");
      }
      if (caPin != null) {
        check(CA_PIN, caPin, "CA pin");
      }
    }

    /** Agents use the iPXE base URL, no pinned CA. */
    public Boot(
        String namespace,
        String name,
        String baseUrl,
        String mac,
        String nonce,
        List<String> imageArgs,
        List<String> consoleArgs,
        List<String> kernelArgs) {
      this(namespace, name, baseUrl, mac, nonce, imageArgs, consoleArgs, kernelArgs, null, null);
    }
  }

  /**
   * The script that loads the bootstrap with the machine's identity, its one-time boot nonce (the
   * agent exchanges it for a session, see the agent API) and arguments: the kernel, the initramfs
   * and, when the operator has one, the agent's class archive ({@code agent-cache}, a second initrd
   * the kernel unpacks on top of the first). A missing {@code agent-cache} is no error: the agent
   * then starts without its archive.
   */
  public static String boot(Boot b) {
    String base = b.baseUrl().replaceAll("/+$", "");
    List<String> args = new ArrayList<>();
    args.add("initrd=initramfs");
    args.add("cb.operator=" + (b.agentUrl() == null ? base : b.agentUrl().replaceAll("/+$", "")));
    if (b.caPin() != null) {
      args.add("cb.ca=" + b.caPin());
    }
    args.add("cb.mac=" + b.mac());
    args.add("cb.nonce=" + b.nonce());
    args.add("BOOTIF=01-" + b.mac().replace(':', '-'));
    args.addAll(b.imageArgs());
    args.addAll(b.consoleArgs());
    args.addAll(b.kernelArgs());
    return "#!ipxe\n"
        + "# Chroot Booter: MachineBoot "
        + b.namespace()
        + "/"
        + b.name()
        + "\n"
        + "kernel "
        + base
        + "/bootstrap/vmlinuz?mac="
        + b.mac()
        + " "
        + String.join(" ", args)
        + "\n"
        + "initrd --name initramfs "
        + base
        + "/bootstrap/initramfs?mac="
        + b.mac()
        + "\n"
        + "initrd --name agent-cache "
        + base
        + "/bootstrap/agent-cache || echo Chroot Booter: no agent-cache, the agent starts"
        + " without its class archive\n"
        + "boot\n";
  }

  /**
   * The arguments that let the agent start fetching the image before its desired-state stream is
   * connected: {@code cb.image}, {@code cb.sha256}, {@code cb.format}, {@code cb.init}. Empty when
   * the image is not Ready or its URL holds a character that is not safe on a kernel command line;
   * the agent then learns the image from the stream alone.
   */
  public static List<String> imageArgs(BootImage image, String baseUrl) {
    BootImageStatus status = image.getStatus();
    if (status == null
        || status.phase() != BootImagePhase.Ready
        || status.servedUrl() == null
        || status.format() == null) {
      return List.of();
    }
    List<String> args = new ArrayList<>();
    String sha = status.sha256() != null ? status.sha256() : image.getSpec().sha256();
    args.add("cb.image=" + served(baseUrl, status.servedUrl(), sha));
    if (sha != null) {
      args.add("cb.sha256=" + sha);
    }
    args.add("cb.format=" + status.format().value());
    args.add("cb.init=" + image.getSpec().initOrDefault());
    return args.stream().allMatch(a -> ARG.matcher(a).matches()) ? List.copyOf(args) : List.of();
  }

  /**
   * Where the agent fetches an image the operator serves: at the agent's own operator URL ({@code
   * baseUrl}, the origin it sends its session to), whatever {@code cb.public-url} the status names,
   * so that an agent API on another origin (HTTPS, {@code cb.agent.url}) serves its images too.
   */
  public static String served(String baseUrl, String servedUrl, String sha256) {
    return sha256 == null
        ? resolve(baseUrl, servedUrl)
        : baseUrl.replaceAll("/+$", "") + "/images/" + sha256;
  }

  /** A served URL made absolute: the store's URLs are paths when no public URL is set. */
  public static String resolve(String baseUrl, String servedUrl) {
    return servedUrl.startsWith("/") ? baseUrl.replaceAll("/+$", "") + servedUrl : servedUrl;
  }

  /** The script for a machine whose MachineBoot cannot be acted on: it says so and exits. */
  public static String invalid(String namespace, String name) {
    check(NAME, namespace, "namespace");
    check(NAME, name, "name");
    return "#!ipxe\n"
        + "echo Chroot Booter: MachineBoot "
        + namespace
        + "/"
        + name
        + " has an invalid spec; see kubectl describe\n"
        + "exit 1\n";
  }

  /** The script for a MAC no MachineBoot names: exit, so the firmware tries its next device. */
  public static String unknown(String mac) {
    check(MAC, mac, "MAC");
    return "#!ipxe\necho Chroot Booter: no MachineBoot for " + mac + "\nexit 1\n";
  }

  private static void check(Pattern pattern, String value, String what) {
    if (value == null || !pattern.matcher(value).matches()) {
      throw new IllegalArgumentException(
          "refusing to render an iPXE script with an unsafe " + what);
    }
  }
}
