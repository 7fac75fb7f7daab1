package io.chrootbooter.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;

/** Resources as JSON trees: the CLI reads and writes the API's JSON names, not Java classes. */
final class Json {

  static final ObjectMapper MAPPER = new ObjectMapper();

  /** Kubernetes object names (DNS subdomain): checked before they go into a request. */
  static final String NAME = "[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?";

  private Json() {}

  static JsonNode tree(GenericKubernetesResource r) {
    return r == null ? MAPPER.nullNode() : MAPPER.valueToTree(r);
  }

  static ObjectNode object() {
    return MAPPER.createObjectNode();
  }

  static String write(JsonNode node) {
    try {
      return MAPPER.writeValueAsString(node);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** A text field, or null when absent. */
  static String text(JsonNode node, String... path) {
    JsonNode n = at(node, path);
    return n.isMissingNode() || n.isNull() ? null : n.asText();
  }

  static JsonNode at(JsonNode node, String... path) {
    JsonNode n = node;
    for (String p : path) {
      n = n.path(p);
    }
    return n;
  }

  /** Checks a name from the command line; {@code what} names it in the error. */
  static String name(String value, String what) {
    if (value == null || !value.matches(NAME)) {
      throw new CliException(
          Exit.USAGE,
          what
              + " \""
              + Terminal.printable(String.valueOf(value))
              + "\" is not a Kubernetes name (lower-case letters, digits, '-' and '.')");
    }
    return value;
  }
}
