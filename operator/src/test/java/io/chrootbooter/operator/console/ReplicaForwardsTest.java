package io.chrootbooter.operator.console;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.URI;
import org.junit.jupiter.api.Test;

/** The admin addresses a replica names itself with, and takes from an agent Lease. */
class ReplicaForwardsTest {

  @Test
  void anAdminAddressIsSchemeHostAndPortOnly() {
    assertThat(ReplicaForwards.address("http://10.42.0.7:9000"))
        .contains(URI.create("http://10.42.0.7:9000"));
    assertThat(ReplicaForwards.address("http://10.42.0.7:9000/"))
        .as("a trailing slash")
        .contains(URI.create("http://10.42.0.7:9000"));
    assertThat(ReplicaForwards.address("https://operator-0.ops.svc:9443"))
        .contains(URI.create("https://operator-0.ops.svc:9443"));
    // An IPv6 pod address as the chart's $(POD_IP) puts it in: bracketed.
    assertThat(ReplicaForwards.address("http://fd00:10:244::5:9000"))
        .contains(URI.create("http://[fd00:10:244::5]:9000"));
    assertThat(ReplicaForwards.address("http://[fd00::5]:9000"))
        .contains(URI.create("http://[fd00::5]:9000"));
  }

  @Test
  void anythingElseInALeaseIsNoAddress() {
    for (String value :
        new String[] {
          null,
          "",
          "10.42.0.7:9000",
          "ftp://10.42.0.7:9000",
          "file:///etc/passwd",
          "http://user:secret@10.42.0.7:9000",
          "http://10.42.0.7:9000/machines",
          "http://10.42.0.7:9000?x=1",
          "http://10.42.0.7:9000#x",
          "http://",
          "http://" + "a".repeat(300) + ":9000",
          "http://10.42.0.7:9000\r\nHost: evil"
        }) {
      assertThat(ReplicaForwards.address(value)).as("%s", value).isEmpty();
    }
  }
}
