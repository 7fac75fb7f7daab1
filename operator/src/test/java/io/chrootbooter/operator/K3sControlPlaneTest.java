package io.chrootbooter.operator;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import org.testcontainers.junit.jupiter.Testcontainers;

/** The control-plane scenarios against K3s; skipped where no Docker engine answers. */
@QuarkusTest
@Testcontainers(disabledWithoutDocker = true)
@QuarkusTestResource(value = ClusterBackends.K3s.class, restrictToAnnotatedClass = true)
class K3sControlPlaneTest extends ConsoleScenarios {}
