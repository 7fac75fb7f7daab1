package io.chrootbooter.pxe;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.ServerSocket;
import java.net.URI;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import org.junit.jupiter.api.Test;

class OperatorMachinesTest {
  static final String KNOWN = "52:54:00:12:34:56";
  static final String UNKNOWN = "52:54:00:00:00:01";

  /** A clock the test moves by hand. */
  static final class ManualClock extends Clock {
    Instant now = Instant.parse("2026-11-25T00:00:00Z");

    @Override
    public Instant instant() {
      return now;
    }

    @Override
    public java.time.ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(java.time.ZoneId zone) {
      return this;
    }
  }

  @Test
  void twoHundredIsKnownFourOhFourIsNotAndAnswersAreCachedForTheTtl() throws Exception {
    ManualClock clock = new ManualClock();
    try (StandInOperator operator = new StandInOperator(KNOWN)) {
      OperatorMachines machines =
          new OperatorMachines(operator.url(), Duration.ofSeconds(5), clock);

      assertThat(machines.isKnown(KNOWN)).isTrue();
      assertThat(machines.isKnown(UNKNOWN)).isFalse();
      assertThat(machines.isKnown(KNOWN)).isTrue();
      assertThat(machines.isKnown(UNKNOWN)).isFalse();
      assertThat(operator.requests)
          .containsExactly("/boot/" + KNOWN + ".ipxe", "/boot/" + UNKNOWN + ".ipxe");

      operator.known.add(UNKNOWN);
      clock.now = clock.now.plusSeconds(6);
      assertThat(machines.isKnown(UNKNOWN)).isTrue();
      assertThat(operator.requests).hasSize(3);
    }
  }

  @Test
  void anUnreachableOperatorMeansUnknownAndIsNotCached() throws Exception {
    int port;
    try (ServerSocket free = new ServerSocket(0)) {
      port = free.getLocalPort();
    }
    OperatorMachines machines =
        new OperatorMachines(
            URI.create("http://127.0.0.1:" + port), Duration.ofSeconds(5), Clock.systemUTC());
    assertThat(machines.isKnown(KNOWN)).isFalse();
  }
}
