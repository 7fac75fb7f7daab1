package io.chrootbooter.e2e.apiserver;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.mockwebserver.dsl.HttpMethod;
import io.fabric8.mockwebserver.http.Buffer;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.util.function.Predicate;

/**
 * Rewrites the PATCH flavours the CRUD dispatcher rejects with 415 into ones it applies.
 *
 * <ul>
 *   <li>{@code application/strategic-merge-patch+json} (kubectl on built-in kinds such as
 *       Namespace) becomes a JSON merge patch. Limitation: lists are replaced, not merged by their
 *       patch merge key, and {@code $patch}/{@code $retainKeys} directives are not understood.
 *   <li>{@code application/apply-patch+yaml} (server-side apply, which JOSDK uses for status in
 *       production) becomes a JSON merge patch of the applied object, or a create when the object
 *       does not exist yet. Limitation: no field ownership ({@code managedFields}), no conflicts,
 *       and lists are replaced rather than merged by key; JOSDK sends the whole status, so status
 *       patches come out right.
 * </ul>
 */
final class PatchNormalizer {

  static final String MERGE_PATCH = "application/merge-patch+json";
  private static final String STRATEGIC = "application/strategic-merge-patch+json";
  private static final String APPLY = "application/apply-patch+yaml";

  private final ObjectMapper json;
  private final YAMLMapper yaml = new YAMLMapper();

  /**
   * @param json the mapper bodies are written with
   */
  PatchNormalizer(ObjectMapper json) {
    this.json = json;
  }

  /**
   * The request to hand to the CRUD dispatcher.
   *
   * @param exists whether the object at a path exists, for apply-as-create
   */
  RecordedRequest normalize(RecordedRequest request, ResourcePath path, Predicate<String> exists) {
    String type = mediaType(request.getHeader("Content-Type"));
    if (type.equals(STRATEGIC)) {
      return withBody(request, HttpMethod.PATCH, request.getPath(), request.getUtf8Body());
    }
    if (!type.equals(APPLY)) {
      return request;
    }
    JsonNode applied = readYaml(request.getUtf8Body());
    String objectPath = request.getPath().replaceFirst("/status(\\?|$)", "$1");
    if (path.subresource() != null || exists.test(objectPath)) {
      return withBody(request, HttpMethod.PATCH, request.getPath(), write(applied));
    }
    if (applied instanceof ObjectNode object) {
      ObjectNode metadata =
          object.has("metadata")
              ? (ObjectNode) object.get("metadata")
              : object.putObject("metadata");
      metadata.put("name", path.name());
      if (path.namespace() != null) {
        metadata.put("namespace", path.namespace());
      }
    }
    String collection = request.getPath().replaceFirst("/" + path.name() + "(\\?.*)?$", "");
    return withBody(request, HttpMethod.POST, collection, write(applied));
  }

  private static String mediaType(String contentType) {
    if (contentType == null) {
      return "";
    }
    int semicolon = contentType.indexOf(';');
    return (semicolon < 0 ? contentType : contentType.substring(0, semicolon)).strip();
  }

  private JsonNode readYaml(String body) {
    try {
      return yaml.readTree(body);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(
          "apply patch body is neither YAML nor JSON: " + e.getOriginalMessage(), e);
    }
  }

  private String write(JsonNode node) {
    try {
      return json.writeValueAsString(node);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot serialise a parsed JSON tree", e);
    }
  }

  private static RecordedRequest withBody(
      RecordedRequest request, HttpMethod method, String path, String body) {
    var headers =
        request
            .getHeaders()
            .newBuilder()
            .set("Content-Type", method == HttpMethod.POST ? "application/json" : MERGE_PATCH)
            .build();
    return new RecordedRequest(
        request.getHttpVersion(),
        method,
        path,
        headers,
        new Buffer(body.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
  }
}
