package io.chrootbooter.api.v1alpha1;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.chrootbooter.protocol.ImageFormat;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import io.chrootbooter.protocol.Timeline;
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

  /**
   * What {@code kubectl explain machineboot.status.lastSwitch} (and its {@code --recursive} fields)
   * prints: every field says something, the steps' names are the protocol's, and lastBoot reads the
   * same.
   */
  @Test
  void theFlightRecordersTimelinesExplainThemselves() throws IOException {
    JsonNode status = schema("machineboots.boot.chrootbooter.io-v1.yml").at("/status/properties");
    JsonNode lastSwitch = status.path("lastSwitch");
    assertThat(lastSwitch.path("description").asText())
        .contains("download", "healthy", "add up to seconds");
    assertThat(lastSwitch.path("properties")).isEqualTo(status.at("/lastBoot/properties"));
    assertDescribed("lastSwitch", lastSwitch);
    JsonNode step = lastSwitch.at("/properties/steps/items");
    assertDescribed("lastSwitch.steps", step);
    String named = step.at("/properties/name/description").asText();
    assertThat(Arrays.stream(named.replaceAll("[.]$", "").split(", | or ")).toList())
        .containsExactlyElementsOf(Timeline.STEP_NAMES);
    assertThat(lastSwitch.at("/properties/steps/description").asText())
        .contains(Timeline.STEP_NAMES);
    JsonNode history = status.path("history");
    assertThat(history.path("description").asText()).contains("newest first", "10");
    assertDescribed("history", history.path("items"));
    assertThat(history.at("/items/properties/stepSeconds/additionalProperties/type").asText())
        .isEqualTo("number");
  }

  private static void assertDescribed(String where, JsonNode object) {
    object
        .path("properties")
        .fields()
        .forEachRemaining(
            f ->
                assertThat(f.getValue().path("description").asText())
                    .as("the description of %s.%s", where, f.getKey())
                    .hasSizeGreaterThan(10));
  }
}
