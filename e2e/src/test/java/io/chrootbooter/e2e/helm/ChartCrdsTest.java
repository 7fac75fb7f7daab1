package io.chrootbooter.e2e.helm;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The chart ships the CRDs in {@code helm/chrootbooter/crds/} (Helm installs that folder before the
 * templates); they must be byte-for-byte the generated ones in {@code crds/}. On a failure: {@code
 * cp crds/*.yml helm/chrootbooter/crds/}.
 */
class ChartCrdsTest {
  private static final Path GENERATED = Manifests.REPO.resolve("crds");
  private static final Path SHIPPED = Manifests.CHART.resolve("crds");

  @Test
  void chartShipsExactlyTheGeneratedCrds() throws IOException {
    List<String> generated = yamlFiles(GENERATED);

    assertThat(generated)
        .as("generated CRDs in %s", GENERATED)
        .contains(
            "bootimages.boot.chrootbooter.io-v1.yml", "machineboots.boot.chrootbooter.io-v1.yml");
    assertThat(yamlFiles(SHIPPED))
        .as("CRDs in the chart; fix: cp crds/*.yml helm/chrootbooter/crds/")
        .containsExactlyElementsOf(generated);
    for (String name : generated) {
      assertThat(Files.readString(SHIPPED.resolve(name)))
          .as(
              "helm/chrootbooter/crds/%s differs from crds/%s; fix: cp crds/*.yml helm/chrootbooter/crds/",
              name, name)
          .isEqualTo(Files.readString(GENERATED.resolve(name)));
    }
  }

  private static List<String> yamlFiles(Path dir) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files
          .map(p -> p.getFileName().toString())
          .filter(n -> n.endsWith(".yml") || n.endsWith(".yaml"))
          .sorted()
          .toList();
    }
  }
}
