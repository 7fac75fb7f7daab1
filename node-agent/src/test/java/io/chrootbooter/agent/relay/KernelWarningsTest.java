package io.chrootbooter.agent.relay;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class KernelWarningsTest {
  @Test
  void parsesKmsgRecordsAsDmesgPrintsThem() {
    KernelWarnings.Record r =
        KernelWarnings.parse("4,1234,5012345,-;WARNING: CPU: 1 PID: 7 at mm/x.c:12 f+0x1/0x2")
            .orElseThrow();
    assertThat(r.level()).isEqualTo(4);
    assertThat(r.line()).isEqualTo("[    5.012345] WARNING: CPU: 1 PID: 7 at mm/x.c:12 f+0x1/0x2");
    // Continuation lines (dictionary) and garbage are no records.
    assertThat(KernelWarnings.parse(" SUBSYSTEM=pci")).isEmpty();
    assertThat(KernelWarnings.parse("no semicolon")).isEmpty();
    assertThat(KernelWarnings.parse("x,y,z;text")).isEmpty();
    assertThat(
            KernelWarnings.parse("6,1,2,-;bell\u0007 and escape\u001b[2J").orElseThrow().message())
        .isEqualTo("bell? and escape?[2J");
  }

  @Test
  void warningsAreBugsWarningsOopsesAndHungTasks() {
    assertThat(KernelWarnings.isWarning("BUG: kernel NULL pointer dereference, address: 0"))
        .isTrue();
    assertThat(KernelWarnings.isWarning("WARNING: CPU: 0 PID: 1 at kernel/x.c:1")).isTrue();
    assertThat(KernelWarnings.isWarning("Oops: 0002 [#1] PREEMPT SMP NOPTI")).isTrue();
    assertThat(
            KernelWarnings.isWarning(
                "INFO: task kworker/0:1:42 blocked for more than 120 seconds."))
        .isTrue();
    assertThat(KernelWarnings.isWarning("e1000: eth0 NIC Link is Up 1000 Mbps")).isFalse();
    assertThat(KernelWarnings.isWarning("systemd[1]: DEBUGGING: fine")).isFalse();
    assertThat(KernelWarnings.isWarning("Oopsie daisy")).isFalse();
  }
}
