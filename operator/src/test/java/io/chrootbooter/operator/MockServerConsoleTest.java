package io.chrootbooter.operator;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;

/** The recorded-console scenarios against the fabric8 mock server in CRUD mode. */
@QuarkusTest
@WithKubernetesTestServer(crud = true, setup = MockServerControlPlaneTest.InstallCrds.class)
class MockServerConsoleTest extends ConsoleScenarios {}
