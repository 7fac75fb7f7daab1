package io.chrootbooter.e2e.apiserver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.List;
import java.util.Optional;

/**
 * Turns objects into the {@code meta.k8s.io/v1 Table} that {@code kubectl get} asks for with {@code
 * Accept: application/json;as=Table;v=v1;g=meta.k8s.io}. kubectl prints a CRD's printer columns
 * only from such a server-side table; given plain JSON it falls back to NAME and AGE.
 *
 * <p>Cells follow the API server's CRD table convertor: Name first, then the columns in order;
 * {@code date} cells become an age such as {@code 3m12s}; a missing value is {@code null}, which
 * kubectl prints as {@code <none>}. Each row carries the object's metadata as {@code
 * PartialObjectMetadata} (or the whole object with {@code includeObject=Object}), from which
 * kubectl takes namespace and labels.
 */
final class TableConverter {

  static final String TABLE_MEDIA_PARAMETER = "as=Table";

  private final ObjectMapper mapper;
  private final Clock clock;

  TableConverter(ObjectMapper mapper, Clock clock) {
    this.mapper = mapper;
    this.clock = clock;
  }

  /** Whether an {@code Accept} header asks for a table. */
  static boolean wantsTable(String accept) {
    return accept != null && accept.replace(" ", "").contains(TABLE_MEDIA_PARAMETER);
  }

  /**
   * A table for a list ({@code items}) or for one object.
   *
   * @param includeObject the {@code includeObject} query parameter: None, Object or (default)
   *     Metadata
   */
  ObjectNode table(ResourceType type, JsonNode listOrObject, String includeObject) {
    ObjectNode table = mapper.createObjectNode();
    table.put("kind", "Table");
    table.put("apiVersion", "meta.k8s.io/v1");
    ObjectNode metadata = table.putObject("metadata");
    Optional.ofNullable(listOrObject.path("metadata").get("resourceVersion"))
        .ifPresent(rv -> metadata.set("resourceVersion", rv));
    ArrayNode definitions = table.putArray("columnDefinitions");
    ObjectNode name = definitions.addObject();
    name.put("name", "Name").put("type", "string").put("format", "name");
    name.put("description", "Name must be unique within a namespace.").put("priority", 0);
    for (PrinterColumn c : type.columns()) {
      definitions
          .addObject()
          .put("name", c.name())
          .put("type", c.type())
          .put("format", "")
          .put("description", c.description())
          .put("priority", c.priority());
    }
    ArrayNode rows = table.putArray("rows");
    List<JsonNode> objects =
        listOrObject.has("items") ? iterate(listOrObject.get("items")) : List.of(listOrObject);
    for (JsonNode object : objects) {
      rows.add(row(type, object, includeObject));
    }
    return table;
  }

  private static List<JsonNode> iterate(JsonNode array) {
    List<JsonNode> nodes = new java.util.ArrayList<>();
    array.forEach(nodes::add);
    return nodes;
  }

  private ObjectNode row(ResourceType type, JsonNode object, String includeObject) {
    ObjectNode row = mapper.createObjectNode();
    ArrayNode cells = row.putArray("cells");
    cells.add(object.path("metadata").path("name").asText());
    for (PrinterColumn c : type.columns()) {
      cells.add(cell(c, SimpleJsonPath.parse(c.jsonPath()).find(object)));
    }
    if ("Object".equals(includeObject)) {
      row.set("object", object);
    } else if (!"None".equals(includeObject)) {
      ObjectNode partial = row.putObject("object");
      partial.put("kind", "PartialObjectMetadata").put("apiVersion", "meta.k8s.io/v1");
      partial.set("metadata", object.path("metadata"));
    }
    return row;
  }

  private JsonNode cell(PrinterColumn column, Optional<JsonNode> value) {
    if (value.isEmpty()) {
      return mapper.nullNode();
    }
    JsonNode v = value.get();
    return switch (column.type()) {
      case "integer" -> v.canConvertToLong() ? mapper.getNodeFactory().numberNode(v.asLong()) : v;
      case "number", "boolean" -> v;
      case "date" -> mapper.getNodeFactory().textNode(age(v.asText()));
      default ->
          v.isValueNode()
              ? mapper.getNodeFactory().textNode(v.asText())
              : mapper.getNodeFactory().textNode(v.toString());
    };
  }

  private String age(String timestamp) {
    try {
      return HumanDuration.format(Duration.between(Instant.parse(timestamp), clock.instant()));
    } catch (DateTimeParseException e) {
      return "<invalid>";
    }
  }
}
