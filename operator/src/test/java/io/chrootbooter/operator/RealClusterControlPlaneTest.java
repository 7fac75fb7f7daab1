package io.chrootbooter.operator;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * The control-plane scenarios against the cluster of {@code KUBECONFIG}: run with {@code
 * -Dcb.it.cluster=true}. The scenarios create and delete namespaces of their own there.
 */
@QuarkusTest
@EnabledIfSystemProperty(
    named = "cb.it.cluster",
    matches = "true",
    disabledReason = "runs against the cluster of KUBECONFIG only with -Dcb.it.cluster=true")
@QuarkusTestResource(value = ClusterBackends.RealCluster.class, restrictToAnnotatedClass = true)
class RealClusterControlPlaneTest extends ConsoleScenarios {}
