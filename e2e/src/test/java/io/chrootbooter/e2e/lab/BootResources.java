package io.chrootbooter.e2e.lab;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceBuilder;
import io.fabric8.kubernetes.api.model.ListOptionsBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.Watch;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The lab's BootImages and MachineBoots, read and changed with the fabric8 client against the lab's
 * kubeconfig, as a user's tooling would. Untyped ({@link GenericKubernetesResource}): this module
 * talks to the API as any client does, without the operator's model classes.
 */
final class BootResources implements AutoCloseable {
  private static final String GROUP = "boot.chrootbooter.io";
  private static final String VERSION = "v1alpha1";
  static final ResourceDefinitionContext MACHINE_BOOT = context("MachineBoot", "machineboots");
  static final ResourceDefinitionContext BOOT_IMAGE = context("BootImage", "bootimages");
  static final ResourceDefinitionContext BOOT_TEST = context("BootTest", "boottests");

  private final KubernetesClient client;
  private final String namespace;

  BootResources(Path kubeconfig, String namespace) throws IOException {
    this.client =
        new KubernetesClientBuilder()
            .withConfig(Config.fromKubeconfig(Files.readString(kubeconfig)))
            .build();
    this.namespace = namespace;
  }

  private static ResourceDefinitionContext context(String kind, String plural) {
    return new ResourceDefinitionContext.Builder()
        .withGroup(GROUP)
        .withVersion(VERSION)
        .withKind(kind)
        .withPlural(plural)
        .withNamespaced(true)
        .build();
  }

  Optional<GenericKubernetesResource> get(ResourceDefinitionContext kind, String name) {
    return Optional.ofNullable(
        client.genericKubernetesResources(kind).inNamespace(namespace).withName(name).get());
  }

  /** A string field of a resource, such as {@code status.phase}; empty when absent. */
  Optional<String> field(ResourceDefinitionContext kind, String name, String... path) {
    return get(kind, name).map(r -> r.get((Object[]) path)).map(Object::toString);
  }

  /**
   * A value at PATH in a resource, map keys and list indexes ({@code "status", "machines", 0,
   * "phase"}); empty when any step is absent.
   */
  Optional<Object> at(ResourceDefinitionContext kind, String name, Object... path) {
    Optional<GenericKubernetesResource> resource = get(kind, name);
    if (resource.isEmpty()) {
      return Optional.empty();
    }
    Object node = resource.get().getAdditionalProperties();
    for (Object step : path) {
      if (step instanceof Integer i && node instanceof List<?> list && i < list.size()) {
        node = list.get(i);
      } else if (step instanceof String key && node instanceof Map<?, ?> map) {
        node = map.get(key);
      } else {
        return Optional.empty();
      }
      if (node == null) {
        return Optional.empty();
      }
    }
    return Optional.of(node);
  }

  /** Creates the resource a YAML manifest describes, in the lab's namespace. */
  void create(ResourceDefinitionContext kind, String yaml) {
    GenericKubernetesResource resource =
        Serialization.unmarshal(yaml, GenericKubernetesResource.class);
    resource.getMetadata().setNamespace(namespace);
    client.genericKubernetesResources(kind).inNamespace(namespace).resource(resource).create();
  }

  String machinePhase(String name) {
    return field(MACHINE_BOOT, name, "status", "phase").orElse("");
  }

  /** {@code status.lastReturn} of a MachineBoot: trigger, reason, time, durationMillis. */
  Map<String, Object> lastReturn(String name) {
    return get(MACHINE_BOOT, name)
        .<Map<String, Object>>map(r -> r.get("status", "lastReturn"))
        .orElse(Map.of());
  }

  /** The condition of TYPE, as a map (type, status, reason, message), if the resource has it. */
  Optional<Map<String, Object>> condition(
      ResourceDefinitionContext kind, String name, String type) {
    return get(kind, name)
        .<List<Map<String, Object>>>map(r -> r.get("status", "conditions"))
        .flatMap(cs -> cs.stream().filter(c -> type.equals(c.get("type"))).findFirst());
  }

  /**
   * Records every {@code status.phase} of a MachineBoot that a watch delivers, from now until
   * closed: the phases a user sees in {@code kubectl get mb -w}, including short ones that polling
   * would miss.
   */
  PhaseWatch watchPhases(String name) {
    List<String> phases = new CopyOnWriteArrayList<>();
    Watch watch =
        client
            .genericKubernetesResources(MACHINE_BOOT)
            .inNamespace(namespace)
            .withName(name)
            .watch(
                new Watcher<>() {
                  @Override
                  public void eventReceived(Action action, GenericKubernetesResource resource) {
                    Object phase = resource.get("status", "phase");
                    if (phase != null
                        && (phases.isEmpty() || !phases.get(phases.size() - 1).equals(phase))) {
                      phases.add(phase.toString());
                    }
                  }

                  @Override
                  public void onClose(WatcherException cause) {
                    if (cause != null) {
                      phases.add("(watch closed: " + cause.getMessage() + ")");
                    }
                  }
                });
    return new PhaseWatch(watch, phases);
  }

  /** The phases a {@link #watchPhases} watch saw so far, in order, without repeats. */
  static final class PhaseWatch implements AutoCloseable {
    private final Watch watch;
    private final List<String> phases;

    private PhaseWatch(Watch watch, List<String> phases) {
      this.watch = watch;
      this.phases = phases;
    }

    List<String> phases() {
      return List.copyOf(phases);
    }

    @Override
    public void close() {
      watch.close();
    }
  }

  /** A JSON merge patch of the resource (RFC 7386): {@code null} removes a field. */
  /** The reasons of the Events recorded on the object NAME, oldest first ("AgentLost", ...). */
  java.util.List<String> eventReasons(String name) {
    return client.v1().events().inNamespace(namespace).list().getItems().stream()
        .filter(e -> e.getInvolvedObject() != null && name.equals(e.getInvolvedObject().getName()))
        .map(io.fabric8.kubernetes.api.model.Event::getReason)
        .toList();
  }

  void mergePatch(ResourceDefinitionContext kind, String name, String json) {
    client
        .genericKubernetesResources(kind)
        .inNamespace(namespace)
        .withName(name)
        .patch(PatchContext.of(PatchType.JSON_MERGE), json);
  }

  void createBootImage(String name, String url, String sha256, String format) {
    GenericKubernetesResource image =
        new GenericKubernetesResourceBuilder()
            .withApiVersion(GROUP + "/" + VERSION)
            .withKind("BootImage")
            .withNewMetadata()
            .withName(name)
            .withNamespace(namespace)
            .endMetadata()
            .withAdditionalProperties(
                Map.of(
                    "spec",
                    Map.of(
                        "source",
                        Map.of("url", url),
                        "sha256",
                        sha256,
                        "format",
                        format,
                        "init",
                        "/sbin/init")))
            .build();
    client.genericKubernetesResources(BOOT_IMAGE).inNamespace(namespace).resource(image).create();
  }

  /** The lab's resources and events as YAML, for a failure report. */
  String dump() {
    StringBuilder sb = new StringBuilder();
    for (ResourceDefinitionContext kind : List.of(MACHINE_BOOT, BOOT_IMAGE, BOOT_TEST)) {
      client.genericKubernetesResources(kind).inNamespace(namespace).list().getItems().stream()
          .sorted(Comparator.comparing(r -> r.getMetadata().getName()))
          .forEach(r -> sb.append(Serialization.asYaml(r)));
    }
    sb.append("--- events\n");
    client
        .v1()
        .events()
        .inNamespace(namespace)
        .list(new ListOptionsBuilder().build())
        .getItems()
        .stream()
        .sorted(
            Comparator.comparing(
                e -> Objects.toString(e.getLastTimestamp(), ""), Comparator.naturalOrder()))
        .forEach(
            e ->
                sb.append(e.getLastTimestamp())
                    .append(' ')
                    .append(e.getType())
                    .append(' ')
                    .append(e.getInvolvedObject().getKind())
                    .append('/')
                    .append(e.getInvolvedObject().getName())
                    .append(' ')
                    .append(e.getReason())
                    .append(": ")
                    .append(e.getMessage())
                    .append('\n'));
    return sb.toString();
  }

  @Override
  public void close() {
    client.close();
  }
}
