package io.chrootbooter.e2e.helm;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import com.marcnuri.helm.Helm;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.StreamSupport;

/**
 * The manifests {@code helm template} renders from {@code helm/chrootbooter}, parsed with Jackson
 * YAML, with lookups by kind and name.
 */
record Manifests(List<JsonNode> objects, String yaml) {
  static final Path REPO = Path.of("..").toAbsolutePath().normalize();
  static final Path CHART = REPO.resolve("helm/chrootbooter");
  static final String RELEASE = "chrootbooter";
  static final String NAMESPACE = "chrootbooter";

  /** Duplicate keys fail: the API server's strict decoding refuses them. */
  static final YAMLMapper YAML =
      YAMLMapper.builder().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION).build();

  Manifests {
    objects = List.copyOf(objects);
  }

  /** Renders the chart with its default values. */
  static Manifests render() {
    return parse(new Helm(CHART).template().withName(RELEASE).withNamespace(NAMESPACE).call());
  }

  /** Renders the chart with {@code values} (YAML) over the defaults. */
  static Manifests render(Path dir, String values) {
    try {
      Path file = Files.writeString(dir.resolve("values-" + values.hashCode() + ".yaml"), values);
      return parse(
          new Helm(CHART)
              .template()
              .withName(RELEASE)
              .withNamespace(NAMESPACE)
              .withValuesFile(file)
              .call());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static Manifests parse(String yaml) {
    List<JsonNode> docs = new ArrayList<>();
    try (var parser = YAML.getFactory().createParser(yaml)) {
      for (var it = YAML.readValues(parser, JsonNode.class); it.hasNext(); ) {
        JsonNode doc = it.next();
        if (doc != null && doc.isObject() && doc.has("kind")) {
          docs.add(doc);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("rendered chart is not YAML:\n" + yaml, e);
    }
    return new Manifests(docs, yaml);
  }

  List<JsonNode> all(String kind) {
    return objects.stream().filter(o -> kind.equals(o.path("kind").asText())).toList();
  }

  Optional<JsonNode> find(String kind, String name) {
    return all(kind).stream().filter(o -> name.equals(o.at("/metadata/name").asText())).findFirst();
  }

  JsonNode one(String kind, String name) {
    return find(kind, name)
        .orElseThrow(() -> new AssertionError("no " + kind + " " + name + " in:\n" + yaml));
  }

  /** The only object of {@code kind}. */
  JsonNode one(String kind) {
    List<JsonNode> found = all(kind);
    assertThat(found).as("objects of kind %s", kind).hasSize(1);
    return found.get(0);
  }

  /** The operator's container in the Deployment. */
  JsonNode operatorContainer() {
    return container(one("Deployment", RELEASE), "operator");
  }

  static JsonNode container(JsonNode workload, String name) {
    return stream(workload.at("/spec/template/spec/containers"))
        .filter(c -> name.equals(c.path("name").asText()))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no container " + name + " in " + workload));
  }

  static Optional<String> env(JsonNode container, String name) {
    return stream(container.path("env"))
        .filter(e -> name.equals(e.path("name").asText()))
        .findFirst()
        .map(e -> e.path("value").asText());
  }

  static Optional<JsonNode> volume(JsonNode workload, String name) {
    return stream(workload.at("/spec/template/spec/volumes"))
        .filter(v -> name.equals(v.path("name").asText()))
        .findFirst();
  }

  static Optional<JsonNode> mount(JsonNode container, String volume) {
    return stream(container.path("volumeMounts"))
        .filter(m -> volume.equals(m.path("name").asText()))
        .findFirst();
  }

  /**
   * The permissions of a Role or ClusterRole, one string per verb: {@code
   * group/resource[/resourceName]:verb}, with "core" for the core group.
   */
  static Set<String> permissions(JsonNode role) {
    Set<String> out = new TreeSet<>();
    for (JsonNode rule : role.path("rules")) {
      List<String> names = strings(rule.path("resourceNames"));
      for (String group : strings(rule.path("apiGroups"))) {
        for (String resource : strings(rule.path("resources"))) {
          for (String verb : strings(rule.path("verbs"))) {
            String g = group.isEmpty() ? "core" : group;
            if (names.isEmpty()) {
              out.add(g + "/" + resource + ":" + verb);
            } else {
              names.forEach(n -> out.add(g + "/" + resource + "/" + n + ":" + verb));
            }
          }
        }
      }
    }
    return out;
  }

  static List<String> strings(JsonNode array) {
    return stream(array).map(JsonNode::asText).toList();
  }

  static java.util.stream.Stream<JsonNode> stream(JsonNode array) {
    return StreamSupport.stream(array.spliterator(), false);
  }
}
