package io.chrootbooter.api.v1alpha1;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.crdv2.generator.CRDGenerator;
import io.fabric8.crdv2.generator.CRDPostProcessor;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceColumnDefinition;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CRD YAML in {@code crds/} is generated from the model classes. This test generates it afresh
 * and fails when the committed files differ. Regenerate with {@code mvn -pl crds -am test
 * -Dcb.crds.update=true}.
 */
class CrdYamlTest {

  /** The order in which kubectl shows the printer columns: what users search by first. */
  private static final List<String> COLUMN_ORDER =
      List.of(
          "Phase", "Image", "Format", "Size", "IP", "Seen", "Passed", "Failed", "Promoted", "Age");

  static final Path CRDS_DIR = Path.of(System.getProperty("cb.crds.dir", "."));

  /** Generates the CRDs into {@code dir}. */
  static void generate(Path dir) {
    CRDPostProcessor orderColumns =
        new CRDPostProcessor() {
          @Override
          public HasMetadata process(HasMetadata crd, String version) {
            ((CustomResourceDefinition) crd)
                .getSpec()
                .getVersions()
                .forEach(
                    v -> {
                      List<CustomResourceColumnDefinition> columns =
                          new ArrayList<>(v.getAdditionalPrinterColumns());
                      columns.sort(
                          Comparator.comparing(CustomResourceColumnDefinition::getPriority)
                              .thenComparing(c -> rank(c.getName())));
                      v.setAdditionalPrinterColumns(columns);
                    });
            return crd;
          }
        };
    int generated =
        new CRDGenerator()
            .inOutputDir(dir.toFile())
            .forCRDVersions("v1")
            .withPostProcessor(orderColumns)
            .customResourceClasses(BootImage.class, MachineBoot.class, BootTest.class)
            .generate();
    assertThat(generated).isEqualTo(3);
  }

  private static int rank(String column) {
    int i = COLUMN_ORDER.indexOf(column);
    return i < 0 ? COLUMN_ORDER.size() : i;
  }

  @Test
  void committedCrdYamlMatchesTheModel(@TempDir Path fresh) throws IOException {
    generate(fresh);
    if (Boolean.getBoolean("cb.crds.update")) {
      generate(CRDS_DIR);
    }
    try (Stream<Path> files = Files.list(fresh)) {
      for (Path generated : files.toList()) {
        Path committed = CRDS_DIR.resolve(generated.getFileName());
        assertThat(committed)
            .as(
                "%s is missing or differs from the model; regenerate with"
                    + " `mvn -pl crds -am test -Dcb.crds.update=true`",
                committed)
            .exists();
        assertThat(Files.readString(committed))
            .as(
                "%s differs from the model; regenerate with"
                    + " `mvn -pl crds -am test -Dcb.crds.update=true`",
                committed)
            .isEqualTo(Files.readString(generated));
      }
    }
  }
}
