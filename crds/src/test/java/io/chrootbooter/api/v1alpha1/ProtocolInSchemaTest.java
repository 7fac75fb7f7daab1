package io.chrootbooter.api.v1alpha1;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.chrootbooter.protocol.ImageFormat;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The committed CRD YAML (what an API server enforces and {@code kubectl explain} prints) names
 * exactly the phases, formats and triggers of the protocol: one that exists on one side only fails
 * here.
 */
class ProtocolInSchemaTest {

  private static JsonNode schema(String file) throws IOException {
    return new ObjectMapper(new YAMLFactory())
        .readTree(CrdYamlTest.CRDS_DIR.resolve(file).toFile())
        .at("/spec/versions/0/schema/openAPIV3Schema/properties");
  }

  private static List<String> enumOf(JsonNode property) {
    List<String> values = new ArrayList<>();
    property.path("enum").forEach(v -> values.add(v.asText()));
    return values;
  }

  @Test
  void machinePhasesAreTheProtocols() throws IOException {
    JsonNode phase =
        schema("machineboots.boot.chrootbooter.io-v1.yml").at("/status/properties/phase");
    List<String> names = Arrays.stream(MachinePhase.values()).map(Enum::name).toList();
    assertThat(enumOf(phase)).containsExactlyInAnyOrderElementsOf(names);
    assertThat(phase.path("description").asText()).contains(names);
  }

  @Test
  void imageFormatsAreTheProtocols() throws IOException {
    JsonNode image = schema("bootimages.boot.chrootbooter.io-v1.yml");
    List<String> values = Arrays.stream(ImageFormat.values()).map(ImageFormat::value).toList();
    assertThat(enumOf(image.at("/spec/properties/format")))
        .containsExactlyInAnyOrderElementsOf(values);
    assertThat(enumOf(image.at("/status/properties/format")))
        .containsExactlyInAnyOrderElementsOf(values);
    assertThat(image.at("/spec/properties/format/description").asText()).contains(values);
  }

  @Test
  void returnTriggersAreTheProtocols() throws IOException {
    String described =
        schema("machineboots.boot.chrootbooter.io-v1.yml")
            .at("/status/properties/lastReturn/properties/trigger/description")
            .asText();
    List<String> named =
        Arrays.stream(described.replaceAll("^.*: ", "").replaceAll("[.]$", "").split(", | or "))
            .toList();
    assertThat(named)
        .containsExactlyInAnyOrderElementsOf(
            Arrays.stream(ReturnTrigger.values()).map(Enum::name).toList());
  }
}
