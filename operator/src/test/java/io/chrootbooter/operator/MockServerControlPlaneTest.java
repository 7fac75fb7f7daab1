package io.chrootbooter.operator;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;

/**
 * The control-plane scenarios against the fabric8 mock server in CRUD mode. It applies no schema,
 * so every invalid spec reaches the reconcilers: the scenarios then check their validation. It has
 * no authenticator or authorizer either: {@link MockAuthorizer} answers the console's reviews.
 */
@QuarkusTest
@WithKubernetesTestServer(crud = true, setup = MockServerControlPlaneTest.InstallCrds.class)
class MockServerControlPlaneTest extends ConsoleScenarios {

  @Override
  void granted(String user, java.util.List<io.fabric8.kubernetes.api.model.rbac.PolicyRule> rules) {
    MockAuthorizer.grant(ns, user, rules);
  }

  @Override
  String tokenOf(String name, String user) {
    return MockAuthorizer.issue(user);
  }

  /** Installs the CRDs before the operator starts, as {@code kubectl apply -f crds/} would. */
  public static class InstallCrds
      implements java.util.function.Consumer<io.quarkus.test.kubernetes.client.KubernetesServer> {
    @Override
    public void accept(io.quarkus.test.kubernetes.client.KubernetesServer server) {
      Repo.installCrds(server.getClient());
      MockAuthorizer.install(server);
    }
  }
}
