package io.chrootbooter.operator.image;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.operator.image.SourcePolicy.Rule;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.NodeListBuilder;
import io.fabric8.kubernetes.api.model.StatusBuilder;
import io.fabric8.kubernetes.api.model.networking.v1.ServiceCIDRBuilder;
import io.fabric8.kubernetes.api.model.networking.v1.ServiceCIDRListBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import java.io.IOException;
import java.net.InetAddress;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * The cluster's pod and Service networks as the operator reads them from the API server (the
 * fabric8 mock answering the two lists the way an API server does), and what a source in them gets.
 */
@EnableKubernetesMockClient
class ClusterNetworksTest {
  private static final String NODES = "/api/v1/nodes";
  private static final String SERVICE_CIDRS = "/apis/networking.k8s.io/v1/servicecidrs";

  KubernetesMockServer server;
  KubernetesClient client;

  /** A clock the test moves. */
  static final class TestClock extends Clock {
    Instant now = Instant.parse("2026-01-01T00:00:00Z");

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

  private void nodes(int times, String... podCidrs) {
    NodeListBuilder list = new NodeListBuilder();
    for (int i = 0; i < podCidrs.length; i++) {
      list.addToItems(
          new NodeBuilder()
              .withNewMetadata()
              .withName("node-" + i)
              .endMetadata()
              .withNewSpec()
              .withPodCIDR(podCidrs[i].split(",")[0])
              .withPodCIDRs(List.of(podCidrs[i].split(",")))
              .endSpec()
              .build());
    }
    server.expect().get().withPath(NODES).andReturn(200, list.build()).times(times);
  }

  private void serviceCidrs(int times, String... cidrs) {
    server
        .expect()
        .get()
        .withPath(SERVICE_CIDRS)
        .andReturn(
            200,
            new ServiceCIDRListBuilder()
                .addToItems(
                    new ServiceCIDRBuilder()
                        .withNewMetadata()
                        .withName("kubernetes")
                        .endMetadata()
                        .withNewSpec()
                        .withCidrs(cidrs)
                        .endSpec()
                        .build())
                .build())
        .times(times);
  }

  private void refused(String path, int code) {
    server
        .expect()
        .get()
        .withPath(path)
        .andReturn(code, new StatusBuilder().withCode(code).withReason("Forbidden").build())
        .always();
  }

  private static Optional<Rule> judge(ClusterNetworks networks, String address) throws IOException {
    SourcePolicy policy =
        new SourcePolicy(
            List.of(),
            List.of(),
            networks::current,
            host -> new InetAddress[] {InetAddress.getByName(address)});
    return policy.check(address);
  }

  @Test
  void podAndServiceNetworksAreRefused() throws IOException {
    nodes(1, "10.244.0.0/24,fd00:10:244::/64", "10.244.1.0/24");
    serviceCidrs(1, "10.96.0.0/12", "fd00:10:96::/112");
    ClusterNetworks networks = new ClusterNetworks(client, true, new TestClock());

    assertThat(networks.current())
        .extracting(Object::toString)
        .containsExactlyInAnyOrder(
            "10.244.0.0/24",
            "fd00:10:244::/64",
            "10.244.1.0/24",
            "10.96.0.0/12",
            "fd00:10:96::/112");
    assertThat(judge(networks, "10.244.1.17")).contains(Rule.CLUSTER);
    assertThat(judge(networks, "10.96.0.1")).contains(Rule.CLUSTER);
    assertThat(judge(networks, "fd00:10:96::a")).contains(Rule.CLUSTER);
    assertThat(judge(networks, "10.244.2.1")).isEmpty();
    assertThat(judge(networks, "192.168.50.10")).isEmpty();
    assertThat(Rule.CLUSTER).hasToString("the cluster's pod or Service network");
  }

  @Test
  void aNewNodeCountsOnceTheLastReadIsAMinuteOld() {
    nodes(1, "10.244.0.0/24");
    serviceCidrs(2, "10.96.0.0/12");
    nodes(1, "10.244.0.0/24", "10.244.7.0/24");
    TestClock clock = new TestClock();
    ClusterNetworks networks = new ClusterNetworks(client, true, clock);

    assertThat(networks.current()).hasSize(2);
    clock.now = clock.now.plus(Duration.ofSeconds(30));
    assertThat(networks.current()).as("read again before a minute passed").hasSize(2);
    assertThat(server.getRequestCount()).isEqualTo(2);
    clock.now = clock.now.plus(ClusterNetworks.MAX_AGE);
    assertThat(networks.current()).extracting(Object::toString).contains("10.244.7.0/24");
  }

  @Test
  void aFailedReadKeepsWhatWasRefusedBefore() throws IOException {
    nodes(1, "10.244.0.0/24");
    serviceCidrs(1, "10.96.0.0/12");
    refused(NODES, 403);
    refused(SERVICE_CIDRS, 404);
    TestClock clock = new TestClock();
    ClusterNetworks networks = new ClusterNetworks(client, true, clock);
    assertThat(networks.current()).hasSize(2);

    clock.now = clock.now.plus(ClusterNetworks.MAX_AGE);
    assertThat(networks.current())
        .extracting(Object::toString)
        .containsExactly("10.244.0.0/24", "10.96.0.0/12");
    assertThat(judge(networks, "10.244.0.9")).contains(Rule.CLUSTER);
  }

  @Test
  void withoutRbacNothingIsKnownAndTheOtherRulesStillHold() throws IOException {
    refused(NODES, 403);
    refused(SERVICE_CIDRS, 403);
    ClusterNetworks networks = new ClusterNetworks(client, true, new TestClock());
    assertThat(networks.current()).isEmpty();
    assertThat(judge(networks, "127.0.0.1")).contains(Rule.LOOPBACK);
    assertThat(judge(networks, "10.96.0.1")).isEmpty();
  }

  @Test
  void switchedOffItAsksNothing() {
    nodes(1, "10.244.0.0/24");
    ClusterNetworks networks = new ClusterNetworks(client, false, new TestClock());
    assertThat(networks.current()).isEmpty();
    assertThat(server.getRequestCount()).isZero();
  }

  @Test
  void kubernetesCidrsWithHostBitsAreReadAsTheirBlock() {
    assertThat(ClusterNetworks.canonical("10.244.1.5/24")).hasToString("10.244.1.0/24");
    assertThat(ClusterNetworks.canonical("10.244.1.5/24"))
        .isEqualTo(SourcePolicy.Cidr.parse("10.244.1.0/24"));
  }
}
