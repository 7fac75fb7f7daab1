package io.chrootbooter.e2e.apiserver;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The subset of Kubernetes JSONPath that printer columns and field selectors use: dotted fields
 * ({@code .status.agent.ip}), list indexes ({@code .items[0]}) and equality filters ({@code
 * .status.conditions[?(@.type=="Ready")].status}). A full JSONPath engine would be a dependency for
 * three syntaxes; anything else is rejected when the path is parsed, so an unsupported CRD column
 * fails loudly instead of printing blanks.
 *
 * @param source the expression as written
 * @param steps the parsed steps
 */
public record SimpleJsonPath(String source, List<Step> steps) {

  private static final Pattern STEP =
      Pattern.compile(
          "\\.(?<field>[A-Za-z0-9_$-]+)"
              + "|\\[(?<index>[0-9]+)]"
              + "|\\[\\?\\(@\\.(?<key>[A-Za-z0-9_.-]+)\\s*==\\s*[\"'](?<value>[^\"']*)[\"']\\)]");

  /** One step of the path. */
  public sealed interface Step {}

  /** {@code .name}. */
  public record Field(String name) implements Step {}

  /** {@code [n]}. */
  public record Index(int index) implements Step {}

  /** {@code [?(@.key=="value")]}: the first list element whose {@code key} equals {@code value}. */
  public record Filter(String key, String value) implements Step {}

  public SimpleJsonPath {
    steps = List.copyOf(steps);
  }

  /**
   * Parses {@code .a.b[0]}, {@code {.a.b}} or {@code a.b} (field selectors omit the leading dot).
   *
   * @throws IllegalArgumentException naming the expression and the offset that cannot be parsed
   */
  public static SimpleJsonPath parse(String expression) {
    String path = expression.strip();
    if (path.startsWith("{") && path.endsWith("}")) {
      path = path.substring(1, path.length() - 1);
    }
    if (!path.startsWith(".") && !path.startsWith("[")) {
      path = "." + path;
    }
    List<Step> steps = new ArrayList<>();
    Matcher m = STEP.matcher(path);
    int at = 0;
    while (at < path.length()) {
      if (!m.find(at) || m.start() != at) {
        throw new IllegalArgumentException(
            "JSONPath \""
                + expression
                + "\": cannot parse at \""
                + path.substring(at)
                + "\"; supported are .field, [index] and [?(@.key==\"value\")]");
      }
      if (m.group("field") != null) {
        steps.add(new Field(m.group("field")));
      } else if (m.group("index") != null) {
        steps.add(new Index(Integer.parseInt(m.group("index"))));
      } else {
        steps.add(new Filter(m.group("key"), m.group("value")));
      }
      at = m.end();
    }
    return new SimpleJsonPath(expression, steps);
  }

  /** The value at this path, or empty when any step is missing or null. */
  public Optional<JsonNode> find(JsonNode root) {
    JsonNode node = root;
    for (Step step : steps) {
      node = apply(step, node);
      if (node == null || node.isMissingNode() || node.isNull()) {
        return Optional.empty();
      }
    }
    return Optional.of(node);
  }

  private static JsonNode apply(Step step, JsonNode node) {
    if (step instanceof Field f) {
      return node.get(f.name());
    }
    if (step instanceof Index i) {
      return node.isArray() ? node.get(i.index()) : null;
    }
    Filter filter = (Filter) step;
    if (!node.isArray()) {
      return null;
    }
    SimpleJsonPath key = parse(filter.key());
    for (JsonNode element : node) {
      Optional<JsonNode> value = key.find(element);
      if (value.isPresent() && value.get().asText().equals(filter.value())) {
        return element;
      }
    }
    return null;
  }
}
