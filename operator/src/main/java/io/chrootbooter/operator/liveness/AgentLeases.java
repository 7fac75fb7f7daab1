package io.chrootbooter.operator.liveness;

import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.operator.LeaderElectionProducer;
import io.chrootbooter.operator.OperatorConfig;
import io.chrootbooter.operator.machine.MachineDirectory;
import io.chrootbooter.operator.status.Conditions;
import io.chrootbooter.operator.status.Reason;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.api.model.coordination.v1.LeaseBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.net.HttpURLConnection;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * The per-machine agent Leases ({@code coordination.k8s.io/v1}): one per MachineBoot, named {@link
 * LivenessRules#leaseName}, in its namespace, owned by it (so it goes with it), labelled {@value
 * #LABEL}. Any replica that hears from an agent renews its Lease, with itself as holderIdentity,
 * but only once the renewal it knows of is older than a third of {@code cb.agent.lost-after}
 * ({@link LivenessRules#needsRenewal}): a quiet fleet costs one Lease write per machine every other
 * heartbeat, whichever replicas its agents reach. A replica that has not renewed a Lease itself
 * reads it once first, so that a fail-over costs no burst of writes (and creates it when there is
 * none). Renewals are written by {@value #WRITERS} threads, each one API call, so that a slow call
 * holds up no other; the meters {@code chrootbooter.liveness.lease.write}, {@code .wait}, {@code
 * .pending} and {@code .late} show whether they keep up with the agents.
 *
 * <p>The MachineBoot reconciler watches these Leases and decides lost or not from their renewTime.
 * The iPXE route records each script fetch in the Lease's {@value #IPXE_ANNOTATION} annotation, so
 * that whichever replica sees the next boot's first report can tell whether the machine booted from
 * the network in between.
 */
@ApplicationScoped
public class AgentLeases {
  private static final Logger LOG = Logger.getLogger(AgentLeases.class);

  /** The label that marks agent Leases, for the reconciler's informer. */
  public static final String LABEL = "boot.chrootbooter.io/agent-lease";

  /** When this machine's iPXE script was last served (RFC 3339, UTC). */
  public static final String IPXE_ANNOTATION = "boot.chrootbooter.io/ipxe-fetched";

  private static final com.fasterxml.jackson.databind.ObjectMapper JSON =
      new com.fasterxml.jackson.databind.ObjectMapper();

  private static final DateTimeFormatter MICRO_TIME =
      DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'").withZone(ZoneOffset.UTC);

  private final KubernetesClient client;
  private final Duration lostAfter;
  private final long heartbeatNanos;
  private final String identity;
  private final Clock clock = Clock.systemUTC();

  /**
   * How many Lease writes are in flight at once. Each is one blocking API call of a few
   * milliseconds; at 10,000 machines a quiet fleet needs about 330 renewals a second, and a
   * fail-over a burst of one per machine.
   */
  static final int WRITERS = 8;

  private final ExecutorService writer =
      Executors.newFixedThreadPool(
          WRITERS,
          r -> {
            Thread t = new Thread(r, "cb-agent-leases");
            t.setDaemon(true);
            return t;
          });

  /** The latest renewal this replica knows of, by {@code namespace/name} of the MachineBoot. */
  private final Map<String, Instant> renewed = new ConcurrentHashMap<>();

  /** Machines whose renewal is queued or being written: at most one each. */
  private final Set<String> inFlight = ConcurrentHashMap.newKeySet();

  private final Counter writes;
  private final Counter late;
  private final Timer writeTime;
  private final Timer waitTime;

  AgentLeases(
      KubernetesClient client,
      OperatorConfig config,
      MachineDirectory directory,
      MeterRegistry registry) {
    this.client = client;
    Gauge.builder("chrootbooter.machines.lost", directory, AgentLeases::countLost)
        .description("MachineBoots whose agent is lost (Ready=False, reason AgentLost)")
        .register(registry);
    this.lostAfter = config.agent().lostAfter();
    this.heartbeatNanos = LivenessRules.heartbeat(lostAfter).toNanos();
    this.identity =
        config.leaderElection().identity().orElseGet(LeaderElectionProducer::defaultIdentity);
    this.writes =
        Counter.builder("chrootbooter.liveness.lease.writes")
            .description("Agent Lease creations and renewals written by this replica")
            .register(registry);
    this.late =
        Counter.builder("chrootbooter.liveness.lease.late")
            .description(
                "Agent Lease renewals written more than a heartbeat after the agent asked for"
                    + " them: the writes fall behind the agents")
            .register(registry);
    this.writeTime =
        Timer.builder("chrootbooter.liveness.lease.write")
            .description("The API calls of one Lease renewal (a read first, on first sight)")
            .register(registry);
    this.waitTime =
        Timer.builder("chrootbooter.liveness.lease.wait")
            .description("From hearing from an agent whose Lease is due to its renewal starting")
            .register(registry);
    Gauge.builder("chrootbooter.liveness.lease.pending", inFlight, Set::size)
        .description("Agent Lease renewals queued or being written")
        .register(registry);
  }

  void stop(@Observes ShutdownEvent event) {
    writer.shutdown();
  }

  /** {@code cb.agent.lost-after}. */
  public Duration lostAfter() {
    return lostAfter;
  }

  /**
   * The agent of {@code mb} was heard from now: its Lease is renewed in the background when due.
   * Never blocks.
   */
  public void heard(MachineBoot mb) {
    String key = key(mb);
    Instant now = clock.instant();
    Instant last = renewed.get(key);
    if (last != null && !LivenessRules.needsRenewal(last, now, lostAfter)) {
      return;
    }
    if (!inFlight.add(key)) {
      return;
    }
    long queued = System.nanoTime();
    try {
      writer.execute(
          () -> {
            long started = System.nanoTime();
            waitTime.record(started - queued, TimeUnit.NANOSECONDS);
            try {
              renew(mb, key, last == null);
            } catch (KubernetesClientException e) {
              LOG.warnf(
                  "Could not renew the agent Lease of %s (HTTP %d): %s",
                  key, e.getCode(), e.getMessage());
            } finally {
              long done = System.nanoTime();
              writeTime.record(done - started, TimeUnit.NANOSECONDS);
              if (done - queued > heartbeatNanos) {
                late.increment();
              }
              inFlight.remove(key);
            }
          });
    } catch (RejectedExecutionException e) {
      inFlight.remove(key); // shutting down
    }
  }

  private void renew(MachineBoot mb, String key, boolean firstSight) {
    String ns = mb.getMetadata().getNamespace();
    String name = LivenessRules.leaseName(mb.getMetadata().getName());
    var resource = client.leases().inNamespace(ns).withName(name);
    Instant now = clock.instant();
    if (firstSight) {
      Lease lease = resource.get();
      if (lease == null) {
        // A machine heard from for the first time: one write, the creation.
        create(mb, name, now);
        writes.increment();
        renewed.put(key, now);
        return;
      }
      Optional<Instant> known = renewTime(lease);
      if (known.isPresent()) {
        renewed.merge(key, known.get(), (a, b) -> a.isAfter(b) ? a : b);
        if (!LivenessRules.needsRenewal(known.get(), now, lostAfter)) {
          return;
        }
      }
    }
    String stamp = MICRO_TIME.format(now);
    String patch =
        "{\"spec\":{\"holderIdentity\":\""
            + identity.replace("\\", "\\\\").replace("\"", "\\\"")
            + "\",\"renewTime\":\""
            + stamp
            + "\",\"leaseDurationSeconds\":"
            + Math.max(1, lostAfter.toSeconds())
            + "}}";
    try {
      resource.patch(PatchContext.of(PatchType.JSON_MERGE), patch);
    } catch (KubernetesClientException e) {
      if (e.getCode() != HttpURLConnection.HTTP_NOT_FOUND) {
        throw e;
      }
      create(mb, name, now);
    }
    writes.increment();
    renewed.put(key, now);
  }

  /**
   * The agent Lease of {@code mb} as the API holds it, created (renewed now, as {@link #heard}
   * would) when it has none. Blocks on the API.
   */
  public Lease readOrCreate(MachineBoot mb) {
    String name = LivenessRules.leaseName(mb.getMetadata().getName());
    var resource = client.leases().inNamespace(mb.getMetadata().getNamespace()).withName(name);
    Lease lease = resource.get();
    if (lease != null) {
      return lease;
    }
    create(mb, name, clock.instant());
    writes.increment();
    return resource.require();
  }

  private void create(MachineBoot mb, String name, Instant now) {
    ZonedDateTime at = now.truncatedTo(ChronoUnit.MICROS).atZone(ZoneOffset.UTC);
    LeaseBuilder lease =
        new LeaseBuilder()
            .withNewMetadata()
            .withName(name)
            .withNamespace(mb.getMetadata().getNamespace())
            .addToLabels(LABEL, "true")
            .addToLabels("app.kubernetes.io/managed-by", "chrootbooter-operator")
            .endMetadata()
            .withNewSpec()
            .withHolderIdentity(identity)
            .withLeaseDurationSeconds((int) Math.max(1, lostAfter.toSeconds()))
            .withAcquireTime(at)
            .withRenewTime(at)
            .endSpec();
    if (mb.getMetadata().getUid() != null) {
      lease
          .editMetadata()
          .addToOwnerReferences(
              new OwnerReferenceBuilder()
                  .withApiVersion(mb.getApiVersion())
                  .withKind(mb.getKind())
                  .withName(mb.getMetadata().getName())
                  .withUid(mb.getMetadata().getUid())
                  .build())
          .endMetadata();
    }
    try {
      client.leases().inNamespace(mb.getMetadata().getNamespace()).resource(lease.build()).create();
    } catch (KubernetesClientException e) {
      if (e.getCode() != HttpURLConnection.HTTP_CONFLICT) {
        throw e;
      }
      // Another replica created it in between: renew that one.
      client
          .leases()
          .inNamespace(mb.getMetadata().getNamespace())
          .withName(name)
          .patch(
              PatchContext.of(PatchType.JSON_MERGE),
              "{\"spec\":{\"renewTime\":\"" + MICRO_TIME.format(now) + "\"}}");
    }
  }

  /**
   * The iPXE script of {@code mb} was served now: recorded on its Lease, when it has one (a machine
   * whose agent was never heard from has no boot to compare with). Never blocks.
   */
  public void ipxeFetched(MachineBoot mb) {
    annotate(mb, IPXE_ANNOTATION, clock.instant().truncatedTo(ChronoUnit.MILLIS).toString());
  }

  /**
   * Sets the annotation {@code key} of the agent Lease of {@code mb} to {@code value} (a merge
   * patch of that annotation only), when it has a Lease. Never blocks: written by the renewal
   * threads.
   */
  public void annotate(MachineBoot mb, String key, String value) {
    String ns = mb.getMetadata().getNamespace();
    String name = LivenessRules.leaseName(mb.getMetadata().getName());
    String patch;
    try {
      patch =
          JSON.writeValueAsString(Map.of("metadata", Map.of("annotations", Map.of(key, value))));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException("an annotation is plain JSON", e);
    }
    try {
      writer.execute(
          () -> {
            try {
              client
                  .leases()
                  .inNamespace(ns)
                  .withName(name)
                  .patch(PatchContext.of(PatchType.JSON_MERGE), patch);
            } catch (KubernetesClientException e) {
              if (e.getCode() != HttpURLConnection.HTTP_NOT_FOUND) {
                LOG.warnf("Could not write %s on %s/%s: %s", key, ns, name, e.getMessage());
              }
            }
          });
    } catch (RejectedExecutionException e) {
      // shutting down
    }
  }

  /** The agent Lease of {@code mb}, read from the API; empty when it has none. */
  public Optional<Lease> read(MachineBoot mb) {
    return Optional.ofNullable(
        client
            .leases()
            .inNamespace(mb.getMetadata().getNamespace())
            .withName(LivenessRules.leaseName(mb.getMetadata().getName()))
            .get());
  }

  /** A Lease's renewTime. */
  public static Optional<Instant> renewTime(Lease lease) {
    return lease == null || lease.getSpec() == null || lease.getSpec().getRenewTime() == null
        ? Optional.empty()
        : Optional.of(lease.getSpec().getRenewTime().toInstant());
  }

  /** When the Lease says the machine's iPXE script was last served. */
  public static Optional<Instant> ipxeFetchedAt(Lease lease) {
    return lease == null || lease.getMetadata().getAnnotations() == null
        ? Optional.empty()
        : LivenessRules.parse(lease.getMetadata().getAnnotations().get(IPXE_ANNOTATION));
  }

  private static double countLost(MachineDirectory directory) {
    return directory.machines().stream()
        .filter(
            mb ->
                mb.getStatus() != null
                    && Conditions.find(mb.getStatus().conditions(), "Ready")
                        .map(c -> Reason.AgentLost.name().equals(c.getReason()))
                        .orElse(false))
        .count();
  }

  private static String key(MachineBoot mb) {
    return mb.getMetadata().getNamespace() + "/" + mb.getMetadata().getName();
  }
}
