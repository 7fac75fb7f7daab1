package io.chrootbooter.operator;

import io.javaoperatorsdk.operator.api.config.LeaderElectionConfiguration;
import io.javaoperatorsdk.operator.api.config.LeaderElectionConfigurationBuilder;
import jakarta.enterprise.context.Dependent;
import jakarta.enterprise.inject.Produces;

/**
 * Hands the Operator SDK its leader election settings when {@code cb.leader-election.lease-name} is
 * set; the SDK looks this bean up in the profiles of {@code
 * quarkus.operator-sdk.activate-leader-election-for-profiles} (prod).
 */
@Dependent
public class LeaderElectionProducer {

  @Produces
  @Dependent
  LeaderElectionConfiguration leaderElection(OperatorConfig config) {
    return config
        .leaderElection()
        .leaseName()
        .map(
            name -> {
              var builder = LeaderElectionConfigurationBuilder.aLeaderElectionConfiguration(name);
              config.leaderElection().namespace().ifPresent(builder::withLeaseNamespace);
              return builder.build();
            })
        .orElse(null);
  }
}
