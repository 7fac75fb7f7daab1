package io.chrootbooter.protocol;

import java.lang.reflect.ParameterizedType;
import java.lang.reflect.RecordComponent;
import java.lang.reflect.Type;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Records with every field set, for the builder tests of this module and of the API records (crds,
 * through this module's test jar): a string is its field's name with {@code -sample}, a number or
 * boolean is not its default, an enum is its last constant, a list or map has one element, a record
 * is a sample too.
 */
public final class RecordSamples {
  private RecordSamples() {}

  /** A value of {@code type} with every field set, different from its default. */
  public static <T extends Record> T sample(Class<T> type) throws Exception {
    return sample(type, Map.of());
  }

  /**
   * A value of {@code type} with every field set; a field of a class in {@code others} (no record,
   * such as fabric8's {@code Condition}) gets what its function makes of the field's name.
   */
  public static <T extends Record> T sample(
      Class<T> type, Map<Class<?>, Function<String, Object>> others) throws Exception {
    RecordComponent[] components = type.getRecordComponents();
    Class<?>[] types = new Class<?>[components.length];
    Object[] values = new Object[components.length];
    for (int i = 0; i < components.length; i++) {
      types[i] = components[i].getType();
      values[i] = value(components[i].getGenericType(), components[i].getName(), others);
    }
    return type.getDeclaredConstructor(types).newInstance(values);
  }

  @SuppressWarnings({"unchecked", "rawtypes"})
  private static Object value(
      Type type, String name, Map<Class<?>, Function<String, Object>> others) throws Exception {
    if (type instanceof ParameterizedType p) {
      Type[] args = p.getActualTypeArguments();
      if (p.getRawType() == List.class) {
        return new ArrayList<>(List.of(value(args[0], name, others)));
      }
      if (p.getRawType() == Map.class) {
        return Map.of(value(args[0], name, others), value(args[1], name, others));
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
    if (others.containsKey(c)) {
      return others.get(c).apply(name);
    }
    if (c.isRecord()) {
      return sample((Class<? extends Record>) c, others);
    }
    throw new IllegalArgumentException("no sample for " + type);
  }
}
