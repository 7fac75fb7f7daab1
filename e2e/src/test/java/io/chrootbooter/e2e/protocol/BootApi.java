package io.chrootbooter.e2e.protocol;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.MixedOperation;
import io.fabric8.kubernetes.client.dsl.Resource;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * BootImages and MachineBoots in one namespace, through the fabric8 client as {@code kubectl} would
 * use them (the e2e module does not depend on the API classes: the resources are generic), and what
 * {@code kubectl get} prints for them.
 */
final class BootApi {
  static final ResourceDefinitionContext MACHINE_BOOT = context("MachineBoot", "machineboots");
  static final ResourceDefinitionContext BOOT_IMAGE = context("BootImage", "bootimages");
  private static final ObjectMapper JSON = new ObjectMapper();

  private final KubernetesClient client;
  private final String apiServer;
  private final String namespace;

  BootApi(KubernetesClient client, String apiServer, String namespace) {
    this.client = client;
    this.apiServer = apiServer;
    this.namespace = namespace;
    client
        .namespaces()
        .resource(
            new NamespaceBuilder().withNewMetadata().withName(namespace).endMetadata().build())
        .create();
  }

  private static ResourceDefinitionContext context(String kind, String plural) {
    return new ResourceDefinitionContext.Builder()
        .withGroup("boot.chrootbooter.io")
        .withVersion("v1alpha1")
        .withKind(kind)
        .withPlural(plural)
        .withNamespaced(true)
        .build();
  }

  MixedOperation<GenericKubernetesResource, ?, Resource<GenericKubernetesResource>> machines() {
    return client.genericKubernetesResources(MACHINE_BOOT);
  }

  MixedOperation<GenericKubernetesResource, ?, Resource<GenericKubernetesResource>> images() {
    return client.genericKubernetesResources(BOOT_IMAGE);
  }

  String namespace() {
    return namespace;
  }

  /** Creates a BootImage of a squashfs image with this source URL and digest. */
  void createImage(String name, String url, String sha256) {
    images()
        .inNamespace(namespace)
        .resource(
            resource(
                "BootImage",
                name,
                Map.of("source", Map.of("url", url), "sha256", sha256, "init", "/sbin/init")))
        .create();
  }

  /** Creates a MachineBoot with this spec. */
  void createMachine(String name, Map<String, Object> spec) {
    machines().inNamespace(namespace).resource(resource("MachineBoot", name, spec)).create();
  }

  /**
   * Edits a MachineBoot's spec as {@code kubectl edit} does: a patch of the difference from what
   * was read, sent with its resourceVersion, and read and edited again when the operator wrote the
   * status in between (409 Conflict).
   */
  GenericKubernetesResource editSpec(String name, UnaryOperator<Map<String, Object>> edit) {
    for (int attempt = 1; ; attempt++) {
      try {
        return machines()
            .inNamespace(namespace)
            .withName(name)
            .edit(
                mb -> {
                  @SuppressWarnings("unchecked")
                  Map<String, Object> spec =
                      new LinkedHashMap<>(
                          (Map<String, Object>) mb.getAdditionalProperties().get("spec"));
                  mb.getAdditionalProperties().put("spec", edit.apply(spec));
                  return mb;
                });
      } catch (KubernetesClientException e) {
        if (e.getCode() != HttpURLConnection.HTTP_CONFLICT || attempt == 5) {
          throw e;
        }
      }
    }
  }

  GenericKubernetesResource machine(String name) {
    return machines().inNamespace(namespace).withName(name).require();
  }

  GenericKubernetesResource image(String name) {
    return images().inNamespace(namespace).withName(name).require();
  }

  /** A resource as JSON, for paths such as {@code status.agent.ip}. */
  static JsonNode json(GenericKubernetesResource resource) {
    return JSON.valueToTree(resource);
  }

  /**
   * The columns {@code kubectl get mb NAME} prints, by column name: the API server's {@code Table}
   * of the MachineBoot.
   */
  Map<String, String> columns(String machine) throws IOException, InterruptedException {
    HttpResponse<String> response =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(
                        URI.create(
                            apiServer
                                + "/apis/boot.chrootbooter.io/v1alpha1/namespaces/"
                                + namespace
                                + "/machineboots/"
                                + machine))
                    .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
                    .build(),
                HttpResponse.BodyHandlers.ofString());
    JsonNode table = JSON.readTree(response.body());
    List<JsonNode> definitions = List.copyOf(toList(table.path("columnDefinitions")));
    JsonNode cells = table.path("rows").path(0).path("cells");
    Map<String, String> columns = new LinkedHashMap<>();
    for (int i = 0; i < definitions.size(); i++) {
      columns.put(definitions.get(i).path("name").asText(), cells.path(i).asText());
    }
    return columns;
  }

  /**
   * The namespace's BootImages, MachineBoots and Events, as YAML: what a person debugging reads.
   */
  String dump() {
    StringBuilder out = new StringBuilder();
    for (ResourceDefinitionContext type : List.of(BOOT_IMAGE, MACHINE_BOOT)) {
      for (GenericKubernetesResource r :
          client.genericKubernetesResources(type).inNamespace(namespace).list().getItems()) {
        out.append(Serialization.asYaml(r));
      }
    }
    client
        .v1()
        .events()
        .inNamespace(namespace)
        .list()
        .getItems()
        .forEach(
            e ->
                out.append(
                    String.format(
                        "event %s %s %s: %s%n",
                        e.getType(),
                        e.getInvolvedObject().getName(),
                        e.getReason(),
                        e.getMessage())));
    return out.toString();
  }

  private static List<JsonNode> toList(JsonNode array) {
    List<JsonNode> nodes = new java.util.ArrayList<>();
    array.forEach(nodes::add);
    return nodes;
  }

  private GenericKubernetesResource resource(String kind, String name, Map<String, Object> spec) {
    GenericKubernetesResource r = new GenericKubernetesResource();
    r.setApiVersion("boot.chrootbooter.io/v1alpha1");
    r.setKind(kind);
    r.setMetadata(
        new io.fabric8.kubernetes.api.model.ObjectMetaBuilder()
            .withName(name)
            .withNamespace(namespace)
            .build());
    r.setAdditionalProperty("spec", spec);
    return r;
  }
}
