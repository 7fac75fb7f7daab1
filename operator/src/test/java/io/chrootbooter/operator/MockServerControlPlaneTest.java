package io.chrootbooter.operator;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;

/**
 * The control-plane scenarios against the fabric8 mock server in CRUD mode. It applies no schema,
 * so every invalid spec reaches the reconcilers: the scenarios then check their validation.
 */
@QuarkusTest
@WithKubernetesTestServer(crud = true, setup = MockServerControlPlaneTest.InstallCrds.class)
class MockServerControlPlaneTest extends ConsoleScenarios {

  /** Installs the CRDs before the operator starts, as {@code kubectl apply -f crds/} would. */
  public static class InstallCrds
      implements java.util.function.Consumer<io.quarkus.test.kubernetes.client.KubernetesServer> {
    @Override
    public void accept(io.quarkus.test.kubernetes.client.KubernetesServer server) {
      Repo.installCrds(server.getClient());
    }
  }
}
