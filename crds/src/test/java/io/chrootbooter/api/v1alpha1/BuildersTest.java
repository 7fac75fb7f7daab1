package io.chrootbooter.api.v1alpha1;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.chrootbooter.protocol.RecordSamples;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import java.lang.reflect.RecordComponent;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The builders of the spec and status records: one setter per field, named as the field, that sets
 * that field and no other; {@code toBuilder()} copies every field. A field added without its
 * setter, or left out of {@code toBuilder()}, fails here.
 */
class BuildersTest {

  private static final ObjectMapper MAPPER =
      new ObjectMapper().enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

  @ParameterizedTest
  @ValueSource(classes = {MachineBootStatus.class, BootImageSpec.class})
  void theBuilderSetsEveryFieldAndToBuilderCopiesThemAll(Class<? extends Record> type)
      throws Exception {
    Record full =
        RecordSamples.sample(
            type,
            Map.of(
                Condition.class,
                name -> new ConditionBuilder().withType(name).withStatus("True").build()));
    for (RecordComponent c : type.getRecordComponents()) {
      assertThat(c.getAccessor().invoke(full)).as(c.getName()).isNotNull();
    }

    Object builder = type.getMethod("builder").invoke(null);
    for (RecordComponent c : type.getRecordComponents()) {
      builder
          .getClass()
          .getMethod(c.getName(), c.getType())
          .invoke(builder, c.getAccessor().invoke(full));
    }
    assertThat(build(builder)).isEqualTo(full);
    assertThat(build(type.getMethod("toBuilder").invoke(full))).isEqualTo(full);
    // Every field crosses the wire and reads back as sent.
    assertThat(MAPPER.readValue(MAPPER.writeValueAsString(full), type)).isEqualTo(full);
  }

  @Test
  void anEmptyBuilderGivesWhatTheConstructorGivesForNothing() {
    MachineBootStatus empty = MachineBootStatus.builder().build();
    assertThat(empty.conditions()).isEmpty();
    assertThat(empty.phase()).isNull();
    assertThat(BootImageSpec.builder().build())
        .isEqualTo(new BootImageSpec(null, null, null, null, null, null, null, null, null, null));
  }

  @Test
  void toBuilderLeavesTheOriginalAsItWas() {
    BootImageSpec spec =
        BootImageSpec.builder().source(new ImageSource("http://h/i.squashfs", null)).build();
    BootImageSpec stopped = spec.toBuilder().stop(new StopSpec("SIGTERM", "1s")).build();
    assertThat(spec.stop()).isNull();
    assertThat(stopped.stop()).isEqualTo(new StopSpec("SIGTERM", "1s"));
    assertThat(stopped.source()).isEqualTo(spec.source());
  }

  private static Object build(Object builder) throws Exception {
    return builder.getClass().getMethod("build").invoke(builder);
  }
}
