package io.chrootbooter.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.RecordComponent;
import java.lang.reflect.Type;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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
    Record full = sample(type);
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

  /** A value of {@code type} with every field set, different from its default. */
  static <T extends Record> T sample(Class<T> type) throws Exception {
    RecordComponent[] components = type.getRecordComponents();
    Class<?>[] types = new Class<?>[components.length];
    Object[] values = new Object[components.length];
    for (int i = 0; i < components.length; i++) {
      types[i] = components[i].getType();
      values[i] = value(components[i].getGenericType(), components[i].getName());
    }
    return type.getDeclaredConstructor(types).newInstance(values);
  }

  @SuppressWarnings({"unchecked", "rawtypes"})
  private static Object value(Type type, String name) throws Exception {
    if (type instanceof ParameterizedType p) {
      Type[] args = p.getActualTypeArguments();
      if (p.getRawType() == List.class) {
        return new ArrayList<>(List.of(value(args[0], name)));
      }
      if (p.getRawType() == Map.class) {
        return Map.of(value(args[0], name), value(args[1], name));
      }
      throw new IllegalArgumentException("no sample for " + type);
    }
    Class<?> c = (Class<?>) type;
    if (c == String.class) {
      return name + "-sample";
    }
    if (c == Long.class || c == long.class) {
      return 7L;
    }
    if (c == Integer.class || c == int.class) {
      return 3;
    }
    if (c == Double.class || c == double.class) {
      return 1.5;
    }
    if (c == Boolean.class || c == boolean.class) {
      return true;
    }
    if (c.isEnum()) {
      Object[] constants = c.getEnumConstants();
      return constants[constants.length - 1];
    }
    if (c.isRecord()) {
      return sample((Class<? extends Record>) c);
    }
    throw new IllegalArgumentException("no sample for " + type);
  }
}
