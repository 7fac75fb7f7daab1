package io.chrootbooter.e2e.apiserver;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@code fieldSelector} query parameter, such as the one {@code kubectl describe} sends to find
 * an object's events ({@code involvedObject.name=m1,involvedObject.kind=MachineBoot,...}). The CRUD
 * dispatcher understands only {@code metadata.name} and {@code metadata.namespace} and ignores the
 * rest, so without this filter {@code describe} would list every event of the namespace.
 *
 * @param requirements all must hold
 */
public record FieldSelector(List<Requirement> requirements) {

  /**
   * {@code path=value}, {@code path==value} or {@code path!=value}.
   *
   * @param path the field, as a JSONPath without the leading dot
   * @param value the compared text; a missing field compares as the empty string, as in Kubernetes
   * @param equal {@code true} for {@code =}/{@code ==}
   */
  public record Requirement(SimpleJsonPath path, String value, boolean equal) {}

  public FieldSelector {
    requirements = List.copyOf(requirements);
  }

  /** Parses an already URL-decoded selector; an empty one matches everything. */
  public static FieldSelector parse(String selector) {
    List<Requirement> requirements = new ArrayList<>();
    for (String term : selector.split(",")) {
      String t = term.strip();
      if (t.isEmpty()) {
        continue;
      }
      int ne = t.indexOf("!=");
      if (ne > 0) {
        requirements.add(
            new Requirement(SimpleJsonPath.parse(t.substring(0, ne)), t.substring(ne + 2), false));
        continue;
      }
      int eq = t.indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException(
            "fieldSelector term \"" + t + "\" is not field=value, field==value or field!=value");
      }
      String value = t.substring(t.startsWith("==", eq) ? eq + 2 : eq + 1);
      requirements.add(new Requirement(SimpleJsonPath.parse(t.substring(0, eq)), value, true));
    }
    return new FieldSelector(requirements);
  }

  /** Whether the object satisfies every requirement. */
  public boolean matches(JsonNode object) {
    for (Requirement r : requirements) {
      String actual = r.path().find(object).map(JsonNode::asText).orElse("");
      if (actual.equals(r.value()) != r.equal()) {
        return false;
      }
    }
    return true;
  }
}
