package io.chrootbooter.e2e.apiserver;

import io.fabric8.kubernetes.api.model.APIGroup;
import io.fabric8.kubernetes.api.model.APIGroupBuilder;
import io.fabric8.kubernetes.api.model.APIGroupListBuilder;
import io.fabric8.kubernetes.api.model.APIResourceBuilder;
import io.fabric8.kubernetes.api.model.APIResourceListBuilder;
import io.fabric8.kubernetes.api.model.APIVersionsBuilder;
import io.fabric8.kubernetes.api.model.GroupVersionForDiscovery;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The discovery documents kubectl reads before anything else ({@code /api}, {@code /apis}, {@code
 * /api/v1}, {@code /apis/<group>/<version>}), built from the {@link ResourceCatalog}. kubectl maps
 * {@code kind}, {@code plural}, {@code singular} and short names to URLs only through these.
 */
final class Discovery {

  private final ResourceCatalog catalog;
  private final java.util.function.Supplier<String> serverAddress;

  /**
   * @param serverAddress host:port clients reach us on, for {@code serverAddressByClientCIDRs}
   */
  Discovery(ResourceCatalog catalog, java.util.function.Supplier<String> serverAddress) {
    this.catalog = catalog;
    this.serverAddress = serverAddress;
  }

  /** The JSON body for a discovery path, or empty when the path is not one. */
  Optional<String> document(String path) {
    String p = path.replaceAll("/+$", "");
    if (p.equals("/api")) {
      return Optional.of(
          Serialization.asJson(
              new APIVersionsBuilder()
                  .withVersions("v1")
                  .addNewServerAddressByClientCIDR("0.0.0.0/0", serverAddress.get())
                  .build()));
    }
    if (p.equals("/apis")) {
      return Optional.of(
          Serialization.asJson(new APIGroupListBuilder().withGroups(groups()).build()));
    }
    String[] s = p.replaceAll("^/+", "").split("/");
    if (s.length == 2 && s[0].equals("api")) {
      return resourceList("", s[1]);
    }
    if (s.length == 3 && s[0].equals("apis")) {
      return resourceList(s[1], s[2]);
    }
    if (s.length == 2 && s[0].equals("apis")) {
      return groups().stream()
          .filter(g -> g.getName().equals(s[1]))
          .findFirst()
          .map(Serialization::asJson);
    }
    return Optional.empty();
  }

  private List<APIGroup> groups() {
    Map<String, List<String>> versions = new LinkedHashMap<>();
    for (ResourceType t : catalog.all()) {
      if (!t.group().isEmpty()) {
        List<String> vs = versions.computeIfAbsent(t.group(), g -> new ArrayList<>());
        if (!vs.contains(t.version())) {
          vs.add(t.version());
        }
      }
    }
    List<APIGroup> groups = new ArrayList<>();
    versions.forEach(
        (group, vs) -> {
          List<GroupVersionForDiscovery> gvs =
              vs.stream().map(v -> new GroupVersionForDiscovery(group + "/" + v, v)).toList();
          groups.add(
              new APIGroupBuilder()
                  .withName(group)
                  .withVersions(gvs)
                  .withPreferredVersion(gvs.get(0))
                  .build());
        });
    return groups;
  }

  private Optional<String> resourceList(String group, String version) {
    List<ResourceType> types =
        catalog.all().stream()
            .filter(t -> t.group().equals(group) && t.version().equals(version))
            .toList();
    if (types.isEmpty()) {
      return Optional.empty();
    }
    var list = new APIResourceListBuilder().withGroupVersion(types.get(0).groupVersion());
    for (ResourceType t : types) {
      list.addToResources(
          new APIResourceBuilder()
              .withName(t.plural())
              .withSingularName(t.singular())
              .withKind(t.kind())
              .withNamespaced(t.namespaced())
              .withShortNames(t.shortNames())
              .withVerbs(ResourceType.VERBS)
              .build());
      if (t.statusSubresource()) {
        list.addToResources(
            new APIResourceBuilder()
                .withName(t.plural() + "/status")
                .withSingularName("")
                .withKind(t.kind())
                .withNamespaced(t.namespaced())
                .withVerbs("get", "patch", "update")
                .build());
      }
    }
    return Optional.of(Serialization.asJson(list.build()));
  }
}
