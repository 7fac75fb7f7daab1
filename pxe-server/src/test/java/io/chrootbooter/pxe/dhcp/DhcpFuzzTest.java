package io.chrootbooter.pxe.dhcp;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.chrootbooter.pxe.dhcp.ProxyDhcpRequest.Service;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.ByteBuffer;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Hostile bytes into the codec and the policy. {@code @FuzzTest} runs its seed corpus ({@code
 * DhcpFuzzTestInputs/}) as a unit test, and fuzzes with {@code JAZZER_FUZZ=1}; the seeded random
 * mutation test gives every build a bounded number of fresh inputs as well.
 */
class DhcpFuzzTest {
  private static final ProxyDhcpPolicy POLICY =
      new ProxyDhcpPolicy(
          ProxyDhcpPolicyTest.SERVER,
          URI.create("http://10.77.0.2:8080"),
          Optional.empty(),
          "undionly.kpxe",
          "snponly.efi");

  @FuzzTest(maxDuration = "60s")
  void decodeNeverThrowsAnythingElse(byte[] data) {
    check(data);
  }

  @Test
  void boundedRandomMutationsOfTheCapturedDiscover() {
    byte[] seed = PxeRequests.capturedIpxeDiscover();
    Random random = new Random(20261125L);
    int decoded = 0;
    for (int i = 0; i < 20_000; i++) {
      byte[] data = mutate(seed, random);
      if (check(data)) {
        decoded++;
      }
    }
    // The mutations must reach the policy, not only the header checks.
    assertThat(decoded).isGreaterThan(1000);
  }

  /** Decodes, and if that works, decides; true if the bytes decoded. */
  static boolean check(byte[] data) {
    DhcpPacket packet;
    try {
      packet = DhcpPacket.decode(ByteBuffer.wrap(data));
    } catch (MalformedDhcpPacketException e) {
      assertThat(e.getMessage()).isNotBlank();
      return false;
    }
    for (Service service : Service.values()) {
      ProxyDhcpRequest request =
          new ProxyDhcpRequest(packet, service, new InetSocketAddress("0.0.0.0", 68));
      Decision decision = POLICY.decide(request, true);
      boolean pxeClient =
          packet.options().string(DhcpOptions.VENDOR_CLASS).orElse("").startsWith("PXEClient");
      if (!pxeClient) {
        assertThat(decision).isInstanceOf(Decision.Ignored.class);
      }
      if (decision instanceof Reply reply) {
        assertThat(reply.packet().yiaddr().isAnyLocalAddress()).isTrue();
        assertThat(reply.packet().encode().length).isGreaterThanOrEqualTo(300);
      }
    }
    byte[] again = packet.encode();
    if (again.length <= DhcpPacket.MAX_SIZE) {
      try {
        assertThat(DhcpPacket.decode(ByteBuffer.wrap(again))).isEqualTo(packet);
      } catch (MalformedDhcpPacketException e) {
        throw new AssertionError("re-encoded packet does not decode: " + e.getMessage(), e);
      }
    }
    return true;
  }

  static byte[] mutate(byte[] seed, Random random) {
    byte[] data;
    switch (random.nextInt(4)) {
      case 0 -> data = java.util.Arrays.copyOf(seed, random.nextInt(seed.length + 64));
      case 1 -> {
        data = new byte[random.nextInt(1600)];
        random.nextBytes(data);
      }
      default -> data = seed.clone();
    }
    int flips = 1 + random.nextInt(8);
    for (int f = 0; f < flips && data.length > 0; f++) {
      // Bias towards the options area, where the framing is.
      int at =
          data.length > 240 && random.nextBoolean()
              ? 240 + random.nextInt(data.length - 240)
              : random.nextInt(data.length);
      data[at] = (byte) random.nextInt(256);
    }
    return data;
  }
}
