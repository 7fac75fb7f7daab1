package io.chrootbooter.operator.image;

import io.chrootbooter.operator.OperatorConfig;
import io.chrootbooter.operator.image.SourcePolicy.Cidr;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.networking.v1.ServiceCIDR;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.jboss.logging.Logger;

/**
 * The cluster's own networks, which image sources may never be fetched from: the pod CIDRs of every
 * Node ({@code spec.podCIDRs}, the blocks the node IPAM hands out) and the Service CIDRs ({@code
 * networking.k8s.io/v1} ServiceCIDR objects, the cluster IP ranges). A BootImage whose source
 * resolves into one of them would have the operator fetch from a pod or a Service inside the
 * cluster — the API server's Service, a metrics endpoint — and serve the answer to machines.
 *
 * <p>Read from the API server when a source is judged and the last read is older than {@link
 * #MAX_AGE}: mirrors are rare, and a list of Nodes once a minute at most costs less than an
 * informer holding every Node. A kind that cannot be read (no RBAC, or a cluster older than the
 * ServiceCIDR API) is logged once, naming what to put in {@code cb.store.denied-sources} instead;
 * the blocks read before stay in force. Pod networks that a CNI plugin manages without {@code
 * podCIDRs} (Calico's or Cilium's own IPAM) are not visible here either: that is what {@code
 * cb.store.denied-sources} is for.
 */
@ApplicationScoped
public class ClusterNetworks {
  private static final Logger LOG = Logger.getLogger(ClusterNetworks.class);

  /** How long a read stays in force. */
  static final Duration MAX_AGE = Duration.ofMinutes(1);

  private final KubernetesClient client;
  private final boolean enabled;
  private final Clock clock;
  private final Set<String> warned = ConcurrentHashMap.newKeySet();
  private List<Cidr> blocks = List.of();
  private Instant readAt = Instant.MIN;

  @Inject
  ClusterNetworks(KubernetesClient client, OperatorConfig config) {
    this(client, config.store().denyClusterNetworks(), Clock.systemUTC());
  }

  ClusterNetworks(KubernetesClient client, boolean enabled, Clock clock) {
    this.client = client;
    this.enabled = enabled;
    this.clock = clock;
  }

  /** The pod and Service CIDRs of the cluster, read again when older than {@link #MAX_AGE}. */
  public synchronized List<Cidr> current() {
    if (!enabled) {
      return List.of();
    }
    Instant now = clock.instant();
    if (Duration.between(readAt, now).compareTo(MAX_AGE) >= 0) {
      blocks = read(blocks);
      readAt = now;
    }
    return blocks;
  }

  private List<Cidr> read(List<Cidr> before) {
    Set<Cidr> found = new LinkedHashSet<>();
    boolean complete = true;
    try {
      for (Node node : client.nodes().list().getItems()) {
        if (node.getSpec() == null) {
          continue;
        }
        List<String> cidrs = new ArrayList<>();
        if (node.getSpec().getPodCIDRs() != null) {
          cidrs.addAll(node.getSpec().getPodCIDRs());
        }
        if (node.getSpec().getPodCIDR() != null) {
          cidrs.add(node.getSpec().getPodCIDR());
        }
        add(found, cidrs, "Node " + node.getMetadata().getName());
      }
    } catch (KubernetesClientException e) {
      complete = false;
      warnOnce("nodes", "the pod CIDRs of the cluster's Nodes", e);
    }
    try {
      for (ServiceCIDR s : client.network().v1().serviceCIDRs().list().getItems()) {
        if (s.getSpec() != null && s.getSpec().getCidrs() != null) {
          add(found, s.getSpec().getCidrs(), "ServiceCIDR " + s.getMetadata().getName());
        }
      }
    } catch (KubernetesClientException e) {
      complete = false;
      warnOnce("servicecidrs", "the cluster's ServiceCIDRs (the Service network)", e);
    }
    if (!complete) {
      // Keep what was known: a failed read must not open a network that was refused.
      found.addAll(before);
    }
    List<Cidr> now = List.copyOf(found);
    if (!now.equals(blocks)) {
      LOG.infof("Image sources in the cluster's pod and Service networks are refused: %s", now);
    }
    return now;
  }

  private void add(Set<Cidr> found, List<String> cidrs, String owner) {
    for (String c : cidrs) {
      try {
        found.add(canonical(c));
      } catch (IllegalArgumentException e) {
        if (warned.add(owner + " " + c)) {
          LOG.warnf("%s has a CIDR the operator cannot read (%s): %s", owner, c, e.getMessage());
        }
      }
    }
  }

  /** A CIDR as Kubernetes writes it; host bits set (allowed there) are cleared. */
  static Cidr canonical(String text) {
    String t = text.strip();
    int slash = t.indexOf('/');
    if (slash < 0) {
      return Cidr.parse(t);
    }
    Cidr address = Cidr.parse(t.substring(0, slash));
    int prefix;
    try {
      prefix = Integer.parseInt(t.substring(slash + 1));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("\"" + text + "\": the prefix length is not a number", e);
    }
    byte[] network = address.network().clone();
    if (prefix < 0 || prefix > network.length * 8) {
      throw new IllegalArgumentException(
          "\"" + text + "\": the prefix length is more than " + network.length * 8);
    }
    boolean hostBits = false;
    for (int i = prefix; i < network.length * 8; i++) {
      hostBits |= (network[i / 8] & (0x80 >>> (i % 8))) != 0;
      network[i / 8] &= (byte) ~(0x80 >>> (i % 8));
    }
    if (!hostBits) {
      return Cidr.parse(t);
    }
    try {
      return new Cidr(
          network, prefix, InetAddress.getByAddress(network).getHostAddress() + "/" + prefix);
    } catch (UnknownHostException e) {
      throw new IllegalStateException("4 or 16 bytes are an address", e);
    }
  }

  private void warnOnce(String kind, String what, KubernetesClientException e) {
    if (warned.add(kind)) {
      LOG.warnf(
          "Cannot read %s (HTTP %d: %s): sources there are refused only when read before or"
              + " named in cb.store.denied-sources (the chart's RBAC grants list on nodes and"
              + " servicecidrs)",
          what, e.getCode(), e.getStatus() == null ? e.getMessage() : e.getStatus().getReason());
    }
  }
}
