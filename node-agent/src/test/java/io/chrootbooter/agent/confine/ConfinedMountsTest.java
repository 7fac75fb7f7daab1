package io.chrootbooter.agent.confine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The devices a desired state lists for a Confined target, checked by the agent itself before
 * anything is fetched or mounted: paths that would name something outside {@code /dev}, or that a
 * shell would read otherwise, are refused with a message naming them.
 */
class ConfinedMountsTest {

  @ParameterizedTest
  @ValueSource(
      strings = {
        "/dev/../etc/shadow",
        "/dev/./sda",
        "/dev//sda",
        "/dev/",
        "/dev",
        "/etc/passwd",
        "/dev/sda\n",
        "/dev/sd a",
        "/dev/$(reboot)",
        "/dev/`x`",
        "/dev/.hidden",
        "dev/sda",
        "/dev/a/b/c/d/e"
      })
  void aHostileDevicePathIsRefusedByName(String hostile) {
    assertThatThrownBy(() -> ConfinedMounts.checkDevices(List.of("/dev/vdb", hostile)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("image.devices: ")
        .hasMessageContaining("is not a device path below /dev/")
        .hasMessageNotContaining("\n");
  }

  @Test
  void ordinaryDevicesPassAndTheListIsBounded() {
    assertThat(
            ConfinedMounts.checkDevices(
                List.of("/dev/vdb", "/dev/mapper/data-x", "/dev/nvme0n1p2")))
        .containsExactly("/dev/vdb", "/dev/mapper/data-x", "/dev/nvme0n1p2");
    assertThat(ConfinedMounts.checkDevices(null)).isEmpty();
    List<String> many = new ArrayList<>();
    for (int i = 0; i < 33; i++) {
      many.add("/dev/vd" + i);
    }
    assertThatThrownBy(() -> ConfinedMounts.checkDevices(many))
        .hasMessage("image.devices: 33 devices; at most 32");
    assertThatThrownBy(() -> ConfinedMounts.checkDevices(List.of("/dev/vdb", "/dev/vdb")))
        .hasMessage("image.devices: a device is listed twice");
  }
}
