package io.chrootbooter.operator;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/** Files of the repository the tests use as a user would: the CRDs and the examples. */
public final class Repo {
  public static final Path ROOT = Path.of(System.getProperty("cb.repo.dir", "..")).toAbsolutePath();

  private Repo() {}

  /** Every YAML file in a top-level folder, sorted by name. */
  public static List<Path> yamlFiles(String folder) {
    try (Stream<Path> files = Files.list(ROOT.resolve(folder))) {
      return files
          .filter(f -> f.toString().endsWith(".yml") || f.toString().endsWith(".yaml"))
          .sorted()
          .toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The objects in one YAML file. */
  public static List<HasMetadata> load(KubernetesClient client, Path file) {
    try (InputStream in = Files.newInputStream(file)) {
      return client.load(in).items();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The CRDs of {@code crds/}, as {@code kubectl apply -f crds/} installs them. */
  public static List<CustomResourceDefinition> crds(KubernetesClient client) {
    return yamlFiles("crds").stream()
        .flatMap(f -> load(client, f).stream())
        .map(CustomResourceDefinition.class::cast)
        .toList();
  }

  /** Installs or updates the CRDs. */
  public static void installCrds(KubernetesClient client) {
    for (CustomResourceDefinition crd : crds(client)) {
      crd.getMetadata().setResourceVersion(null);
      client.resource(crd).createOr(existing -> existing.update());
    }
  }
}
