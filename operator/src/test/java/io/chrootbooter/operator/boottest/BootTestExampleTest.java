package io.chrootbooter.operator.boottest;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.api.v1alpha1.AfterTest;
import io.chrootbooter.api.v1alpha1.BootTest;
import io.chrootbooter.operator.Repo;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;

/** The BootTest example is one the operator accepts, on the lab's machine and image. */
class BootTestExampleTest {

  @Test
  void theExampleIsValidAndTestsDebianOnM1() throws Exception {
    String yaml = Files.readString(Repo.ROOT.resolve("examples/boottest/debian-smoke.yaml"));
    BootTest bt = new KubernetesSerialization().unmarshal(yaml, BootTest.class);
    assertThat(BootTestValidator.violations(bt.getSpec())).isEmpty();
    assertThat(bt.getMetadata().getName()).isEqualTo("debian-smoke");
    assertThat(bt.getSpec().imageRef()).isEqualTo("debian-12");
    assertThat(bt.getSpec().machines().names()).containsExactly("m1");
    assertThat(bt.getSpec().afterTestOrDefault()).isEqualTo(AfterTest.Restore);
    assertThat(bt.getSpec().checks())
        .extracting(c -> c.nameOrDefault())
        .containsExactly("boots", "no-panic", "kernel", "returns-SpecChange");
    assertThat(bt.getSpec().checks().get(1).consoleNever().pattern())
        .isEqualTo("Kernel panic|BUG:");
    assertThat(bt.getSpec().checks().get(2).command().run()).containsExactly("uname", "-r");
  }

  @Test
  void theLabsExamplesAreValidAndEachEndsWithAHotkeyReturn() throws Exception {
    for (String[] lab :
        new String[][] {{"debian", "debian-12", "m1"}, {"busybox", "busybox-b", "m2"}}) {
      String yaml =
          Files.readString(Repo.ROOT.resolve("examples/boottest/lab/" + lab[0] + ".yaml"));
      BootTest bt = new KubernetesSerialization().unmarshal(yaml, BootTest.class);
      assertThat(BootTestValidator.violations(bt.getSpec())).as(lab[0]).isEmpty();
      assertThat(bt.getMetadata().getName()).isEqualTo("lab-" + lab[0]);
      assertThat(bt.getSpec().imageRef()).isEqualTo(lab[1]);
      assertThat(bt.getSpec().machines().names()).containsExactly(lab[2]);
      assertThat(bt.getSpec().checks())
          .extracting(c -> c.kind())
          .containsExactly("healthy", "consoleNever", "command", "returns");
      assertThat(bt.getSpec().checks().get(3).returns().trigger())
          .isEqualTo(io.chrootbooter.api.v1alpha1.BootTestCheck.TestedTrigger.Hotkey);
    }
  }

  @Test
  void theRolloutExampleIsValidAndPromotesToTheWebFleetTwoAtATime() throws Exception {
    String yaml = Files.readString(Repo.ROOT.resolve("examples/boottest/busybox-rollout.yaml"));
    BootTest bt = new KubernetesSerialization().unmarshal(yaml, BootTest.class);
    assertThat(BootTestValidator.violations(bt.getSpec())).isEmpty();
    assertThat(bt.getSpec().imageRef()).isEqualTo("busybox");
    assertThat(bt.getSpec().machines().names()).containsExactly("m1");
    var promote = bt.getSpec().promote();
    assertThat(promote.promoteTo().selector().getMatchLabels()).containsEntry("fleet", "web");
    assertThat(promote.maxUnavailableOrDefault()).isEqualTo(2);
    assertThat(promote.failureThresholdOrDefault()).isEqualTo(1);
  }
}
