package io.chrootbooter.operator;

import io.fabric8.kubernetes.client.extended.leaderelection.LeaderCallbacks;
import io.javaoperatorsdk.operator.api.config.LeaderElectionConfiguration;
import io.javaoperatorsdk.operator.api.config.LeaderElectionConfigurationBuilder;
import jakarta.enterprise.context.Dependent;
import jakarta.enterprise.inject.Produces;
import java.util.Optional;
import java.util.UUID;

/**
 * Hands the Operator SDK its leader election settings when {@code cb.leader-election.lease-name} is
 * set; the SDK looks this bean up in the profiles of {@code
 * quarkus.operator-sdk.activate-leader-election-for-profiles} (prod).
 *
 * <p>Every replica starts its informers and serves HTTP; only the holder of the Lease processes
 * events (reconciles). A leader that cannot renew within the renew deadline exits, and its pod is
 * restarted as a standby.
 */
@Dependent
public class LeaderElectionProducer {

  @Produces
  @Dependent
  LeaderElectionConfiguration leaderElection(OperatorConfig config, Leadership leadership) {
    OperatorConfig.LeaderElection election = config.leaderElection();
    return election
        .leaseName()
        .map(
            name -> {
              leadership.electing();
              var builder =
                  LeaderElectionConfigurationBuilder.aLeaderElectionConfiguration(name)
                      .withIdentity(election.identity().orElseGet(() -> defaultIdentity()))
                      .withLeaseDuration(election.leaseDuration())
                      .withRenewDeadline(election.renewDeadline())
                      .withRetryPeriod(election.retryPeriod())
                      .withLeaderCallbacks(
                          new LeaderCallbacks(
                              leadership::started, leadership::stopped, identity -> {}));
              election.namespace().ifPresent(builder::withLeaseNamespace);
              return builder.build();
            })
        .orElse(null);
  }

  /**
   * The pod's name (POD_NAME, else HOSTNAME) with a random suffix, as kube-controller-manager names
   * itself: two replicas with one identity would both believe they hold the Lease.
   */
  public static String defaultIdentity() {
    String host =
        Optional.ofNullable(System.getenv("POD_NAME"))
            .or(() -> Optional.ofNullable(System.getenv("HOSTNAME")))
            .filter(h -> !h.isBlank())
            .orElse("operator");
    return host + "_" + UUID.randomUUID();
  }
}
