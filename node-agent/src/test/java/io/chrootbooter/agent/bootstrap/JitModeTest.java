package io.chrootbooter.agent.bootstrap;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The bootstrap's JIT-mode decision ({@code src/bootstrap/jit-mode}) on recorded CPUID leaves: each
 * case is a sparse file laid out like {@code /dev/cpu/0/cpuid} (cpuid(4): the 16 bytes EAX EBX ECX
 * EDX of leaf N at offset N) holding leaf 1 and leaf 0x40000000. Run by busybox's sh, dd, od and
 * tr, as in the initramfs, where busybox is installed; by the host's otherwise.
 */
class JitModeTest {
  private static final Path SCRIPT = Path.of("src/bootstrap/jit-mode");
  private static final Path BUSYBOX = Path.of("/bin/busybox");
  private static final long HYPERVISOR_LEAF = 0x40000000L;

  /**
   * Leaf 1 of an AMD EPYC build host, a KVM guest: ECX bit 31 ("hypervisor", the top bit of byte
   * 11) set. Recorded from its {@code /dev/cpu/0/cpuid}.
   */
  private static final String EPYC_KVM_LEAF1 = "110fa100000802000332faffff fb8b17".replace(" ", "");

  /** Its leaf 0x40000000: "KVMKVMKVM\0\0\0". */
  private static final String KVM_LEAF = "010000404b564d4b564d4b564d000000";

  /** The same CPU's leaf 1 with ECX bit 31 clear: the CPU without a hypervisor. */
  private static final String EPYC_BARE_LEAF1 =
      "110fa100000802000332fa7fff fb8b17".replace(" ", "");

  /**
   * Leaf 1 in a guest of QEMU 7.2 with {@code -accel tcg -cpu qemu64}, recorded from the guest's
   * {@code /dev/cpu/0/cpuid} (Debian's 6.1 kernel, busybox); {@code -cpu max} gives another leaf 1
   * and the same leaf 0x40000000, "TCGTCGTCGTCG" (QEMU's {@code tcg-cpuid}, on by default).
   */
  private static final String TCG_QEMU64_LEAF1 = "b10f06000008020001200080fdfb8b17";

  private static final String TCG_MAX_LEAF1 = "b10f0600000802000b32d8fefdfbcb1f";
  private static final String TCG_LEAF = "01000040544347544347544347544347";

  @TempDir static Path dir;
  private static Path applets;

  @BeforeAll
  static void applets() throws IOException {
    if (Files.isExecutable(BUSYBOX)) {
      applets = Files.createDirectories(dir.resolve("bin"));
      for (String applet : List.of("sh", "dd", "od", "tr")) {
        Files.createSymbolicLink(applets.resolve(applet), BUSYBOX);
      }
    }
  }

  static Stream<Arguments> recordedMachines() {
    return Stream.of(
        // case, leaf 1, leaf 0x40000000 (EAX, then the vendor in EBX ECX EDX), expected line
        Arguments.of(
            "bare metal",
            EPYC_BARE_LEAF1,
            "00000000000000000000000000000000",
            "tiered no hypervisor"),
        Arguments.of("KVM", EPYC_KVM_LEAF1, KVM_LEAF, "tiered hypervisor KVMKVMKVM"),
        Arguments.of(
            "QEMU TCG qemu64", TCG_QEMU64_LEAF1, TCG_LEAF, "c1 hypervisor TCGTCGTCGTCG: QEMU TCG"),
        Arguments.of(
            "QEMU TCG max", TCG_MAX_LEAF1, TCG_LEAF, "c1 hypervisor TCGTCGTCGTCG: QEMU TCG"),
        Arguments.of(
            "Hyper-V",
            EPYC_KVM_LEAF1,
            "050000404d6963726f736f6674204876",
            "tiered hypervisor Microsoft Hv"),
        Arguments.of(
            "VMware",
            EPYC_KVM_LEAF1,
            "10000040564d77617265564d77617265",
            "tiered hypervisor VMwareVMware"),
        Arguments.of(
            "unnamed hypervisor",
            EPYC_KVM_LEAF1,
            "00000000000000000000000000000000",
            "tiered hypervisor unnamed"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("recordedMachines")
  void decidesFromTheRecordedLeaves(String name, String leaf1, String hypervisor, String expected)
      throws Exception {
    Path cpuid = recorded(name, leaf1, hypervisor);
    assertThat(run(cpuid, Map.of())).as(name).isEqualTo(expected);
  }

  @Test
  void theKernelArgumentWinsAndAnUnknownValueIsTheSafeMode() throws Exception {
    Path tcg = recorded("tcg", TCG_QEMU64_LEAF1, TCG_LEAF);
    Path kvm = recorded("kvm", EPYC_KVM_LEAF1, KVM_LEAF);
    assertThat(run(tcg, Map.of("CB_JIT", "tiered"))).isEqualTo("tiered cb.jit=tiered");
    assertThat(run(kvm, Map.of("CB_JIT", "c1"))).isEqualTo("c1 cb.jit=c1");
    assertThat(run(kvm, Map.of("CB_JIT", "auto"))).isEqualTo("tiered hypervisor KVMKVMKVM");
    assertThat(run(tcg, Map.of("CB_JIT", "auto")))
        .isEqualTo("c1 hypervisor TCGTCGTCGTCG: QEMU TCG");
    assertThat(run(kvm, Map.of("CB_JIT", "fast")))
        .isEqualTo("c1 cb.jit=fast is not c1, tiered or auto");
  }

  @Test
  void withoutTheCpuidDeviceTheAgentRunsC1() throws Exception {
    Path missing = dir.resolve("no-such-device");
    assertThat(run(missing, Map.of())).isEqualTo("c1 CPUID unreadable at " + missing);
  }

  private static Path recorded(String name, String leaf1, String hypervisor) throws IOException {
    Path file = dir.resolve(name.replace(' ', '-') + ".cpuid");
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
      f.setLength(0);
      f.seek(1);
      f.write(HexFormat.of().parseHex(leaf1));
      f.seek(HYPERVISOR_LEAF);
      f.write(HexFormat.of().parseHex(hypervisor));
    }
    return file;
  }

  private static String run(Path cpuid, Map<String, String> env) throws Exception {
    ProcessBuilder pb =
        new ProcessBuilder(
                applets != null ? applets.resolve("sh").toString() : "sh",
                SCRIPT.toString(),
                cpuid.toString())
            .redirectErrorStream(true);
    pb.environment().remove("CB_JIT");
    pb.environment().putAll(env);
    if (applets != null) {
      pb.environment().put("PATH", applets.toString());
    }
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    assertThat(p.waitFor(10, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as(out).isZero();
    return out;
  }
}
