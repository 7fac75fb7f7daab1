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
