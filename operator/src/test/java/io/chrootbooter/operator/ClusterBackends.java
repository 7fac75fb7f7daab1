package io.chrootbooter.operator;

import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import java.util.HashMap;
import java.util.Map;
import org.testcontainers.k3s.K3sContainer;
import org.testcontainers.utility.DockerImageName;

/**
 * The Kubernetes API servers the control-plane scenarios run against besides the fabric8 mock
 * server: K3s in a container, and the cluster of {@code KUBECONFIG}. Each installs the CRDs before
 * the operator starts, as {@code kubectl apply -f crds/} would.
 */
public final class ClusterBackends {
  private ClusterBackends() {}

  /** K3s through Testcontainers; needs a Docker engine. */
  public static class K3s implements QuarkusTestResourceLifecycleManager {
    private K3sContainer k3s;

    @Override
    public Map<String, String> start() {
      k3s = new K3sContainer(DockerImageName.parse("rancher/k3s:v1.31.4-k3s1"));
      k3s.start();
      Config config = Config.fromKubeconfig(k3s.getKubeConfigYaml());
      try (KubernetesClient client = new KubernetesClientBuilder().withConfig(config).build()) {
        Repo.installCrds(client);
      }
      Map<String, String> props = new HashMap<>();
      props.put("quarkus.kubernetes-client.api-server-url", config.getMasterUrl());
      props.put("quarkus.kubernetes-client.ca-cert-data", config.getCaCertData());
      props.put("quarkus.kubernetes-client.client-cert-data", config.getClientCertData());
      props.put("quarkus.kubernetes-client.client-key-data", config.getClientKeyData());
      props.put("quarkus.kubernetes-client.namespace", "default");
      return props;
    }

    @Override
    public void stop() {
      if (k3s != null) {
        k3s.stop();
      }
    }
  }

  /** The cluster of {@code KUBECONFIG} (or the in-cluster config). */
  public static class RealCluster implements QuarkusTestResourceLifecycleManager {
    @Override
    public Map<String, String> start() {
      try (KubernetesClient client = new KubernetesClientBuilder().build()) {
        Repo.installCrds(client);
      }
      return Map.of();
    }

    @Override
    public void stop() {}
  }
}
