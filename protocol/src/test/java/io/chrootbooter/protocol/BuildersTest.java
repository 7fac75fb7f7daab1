package io.chrootbooter.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.lang.reflect.RecordComponent;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The messages' builders: one setter per field, named as the field, that sets that field and no
 * other; {@code toBuilder()} copies every field. A field added to a message without its setter, or
 * left out of {@code toBuilder()}, fails here.
 */
class BuildersTest {

  private static final ObjectMapper MAPPER =
      new ObjectMapper().enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

  @ParameterizedTest
  @ValueSource(classes = {StatusReport.class, DesiredState.class, DesiredState.Image.class})
  void theBuilderSetsEveryFieldAndToBuilderCopiesThemAll(Class<? extends Record> type)
      throws Exception {
    Record full = RecordSamples.sample(type);
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
    assertThat(StatusReport.builder().build())
        .isEqualTo(
            new StatusReport(
                null, null, null, null, null, null, null, null, null, null, null, null));
    DesiredState empty = DesiredState.builder().build();
    assertThat(empty)
        .isEqualTo(new DesiredState(null, 0, null, null, null, null, null, null, null, null));
    assertThat(empty.kernelArgs()).isEmpty();
    assertThat(empty.returnTriggers()).isEqualTo(DesiredState.ReturnTriggers.DEFAULTS);
    assertThat(DesiredState.Image.builder().build().devices()).isEmpty();
  }

  @Test
  void toBuilderLeavesTheOriginalAsItWas() {
    StatusReport running =
        StatusReport.builder().phase(MachinePhase.Running).currentImage("debian-12").build();
    StatusReport healthy = running.toBuilder().healthy(true).build();
    assertThat(running.healthy()).isNull();
    assertThat(healthy.healthy()).isTrue();
    assertThat(healthy.currentImage()).isEqualTo("debian-12");
  }

  private static Object build(Object builder) throws Exception {
    return builder.getClass().getMethod("build").invoke(builder);
  }
}
