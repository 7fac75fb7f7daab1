package io.chrootbooter.e2e.helm;

import static org.assertj.core.api.Assertions.assertThat;

import com.marcnuri.helm.Helm;
import com.marcnuri.helm.Release;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReview;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReviewBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.testcontainers.junit.jupiter.Container;
import org.testcontainers.junit.jupiter.Testcontainers;
import org.testcontainers.k3s.K3sContainer;
import org.testcontainers.utility.DockerImageName;

/**
 * {@code helm install} of the chart on a real API server (K3s), where a Docker engine answers; the
 * chart's RBAC is then asked, through SubjectAccessReviews, what the operator's ServiceAccount may
 * do. The pods are not waited for: the operator image is not in the K3s node's registry.
 */
@Testcontainers(disabledWithoutDocker = true)
class HelmK3sInstallTest {
  @Container
  static final K3sContainer K3S =
      new K3sContainer(DockerImageName.parse("rancher/k3s:v1.31.4-k3s1"));

  @Test
  void installsWithTheCrdsAndExactlyThePermissionsTheOperatorNeeds(@TempDir Path dir)
      throws Exception {
    Path kubeconfig = Files.writeString(dir.resolve("kubeconfig"), K3S.getKubeConfigYaml());
    Release release =
        new Helm(Manifests.CHART)
            .install()
            .withName(Manifests.RELEASE)
            .withNamespace(Manifests.NAMESPACE)
            .createNamespace()
            .withKubeConfig(kubeconfig)
            .call();
    assertThat(release.getStatus()).isEqualTo("deployed");

    String serviceAccount =
        Manifests.render().all("ServiceAccount").get(0).at("/metadata/name").asText();
    String user = "system:serviceaccount:" + Manifests.NAMESPACE + ":" + serviceAccount;
    try (KubernetesClient client =
        new KubernetesClientBuilder()
            .withConfig(Config.fromKubeconfig(K3S.getKubeConfigYaml()))
            .build()) {
      assertThat(
              client
                  .apiextensions()
                  .v1()
                  .customResourceDefinitions()
                  .withName("machineboots.boot.chrootbooter.io")
                  .get())
          .isNotNull();
      assertThat(
              client
                  .apiextensions()
                  .v1()
                  .customResourceDefinitions()
                  .withName("bootimages.boot.chrootbooter.io")
                  .get())
          .isNotNull();
      assertThat(client.apps().deployments().inNamespace(Manifests.NAMESPACE).list().getItems())
          .isNotEmpty();

      assertThat(allowed(client, user, "boot.chrootbooter.io", "machineboots", "", "watch", "lab"))
          .isTrue();
      assertThat(
              allowed(
                  client, user, "boot.chrootbooter.io", "machineboots", "status", "patch", "lab"))
          .isTrue();
      assertThat(allowed(client, user, "", "events", "", "create", "lab")).isTrue();
      assertThat(allowed(client, user, "boot.chrootbooter.io", "machineboots", "", "delete", "lab"))
          .as("the operator never deletes a MachineBoot")
          .isFalse();
      assertThat(allowed(client, user, "", "secrets", "", "list", "lab"))
          .as("no Secret reads beyond the token Secret unless caBundle Secrets are granted")
          .isFalse();
      assertThat(allowed(client, user, "", "pods", "", "list", "lab")).isFalse();
    }
  }

  private static boolean allowed(
      KubernetesClient client,
      String user,
      String group,
      String resource,
      String subresource,
      String verb,
      String namespace) {
    SubjectAccessReview review =
        new SubjectAccessReviewBuilder()
            .withNewSpec()
            .withUser(user)
            .withNewResourceAttributes()
            .withGroup(group)
            .withResource(resource)
            .withSubresource(subresource)
            .withVerb(verb)
            .withNamespace(namespace)
            .endResourceAttributes()
            .endSpec()
            .build();
    return client
        .authorization()
        .v1()
        .subjectAccessReview()
        .create(review)
        .getStatus()
        .getAllowed();
  }
}
