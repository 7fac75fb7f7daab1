package io.chrootbooter.e2e.apiserver;

import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceColumnDefinition;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinitionVersion;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * The kinds the embedded API serves: a fixed set of built-in kinds the lab uses, plus one entry per
 * served version of every CRD currently stored. CRDs are read from the store on each call, so a
 * {@code kubectl apply -f crds/} is visible to the next discovery request, exactly as on a cluster.
 */
public final class ResourceCatalog {

  /** The built-in kinds: what the operator, JOSDK and {@code kubectl describe} touch. */
  static final List<ResourceType> BUILTINS =
      List.of(
          ResourceType.builtin("", "namespaces", "Namespace", false, List.of("ns")),
          ResourceType.builtin(
              "",
              "events",
              "Event",
              true,
              List.of("ev"),
              PrinterColumn.of("Type", ".type"),
              PrinterColumn.of("Reason", ".reason"),
              PrinterColumn.of("Object", ".involvedObject.name"),
              PrinterColumn.of("Message", ".message")),
          ResourceType.builtin(
              "", "secrets", "Secret", true, List.of(), PrinterColumn.of("Type", ".type")),
          ResourceType.builtin("", "configmaps", "ConfigMap", true, List.of("cm")),
          ResourceType.builtin("", "serviceaccounts", "ServiceAccount", true, List.of("sa")),
          ResourceType.builtin(
              "coordination.k8s.io",
              "leases",
              "Lease",
              true,
              List.of(),
              PrinterColumn.of("Holder", ".spec.holderIdentity")),
          ResourceType.builtin(
              "apiextensions.k8s.io",
              "customresourcedefinitions",
              "CustomResourceDefinition",
              false,
              List.of("crd", "crds")),
          ResourceType.builtin("events.k8s.io", "events", "Event", true, List.of("ev")));

  private final Supplier<List<CustomResourceDefinition>> crds;

  /**
   * @param crds reads the CRDs currently stored
   */
  public ResourceCatalog(Supplier<List<CustomResourceDefinition>> crds) {
    this.crds = crds;
  }

  /** Every served kind: built-ins first, then CRD versions in storage order. */
  public List<ResourceType> all() {
    List<ResourceType> all = new ArrayList<>(BUILTINS);
    for (CustomResourceDefinition crd : crds.get()) {
      for (CustomResourceDefinitionVersion v : crd.getSpec().getVersions()) {
        if (Boolean.FALSE.equals(v.getServed())) {
          continue;
        }
        all.add(fromCrd(crd, v));
      }
    }
    return List.copyOf(all);
  }

  /** The kind a request path addresses. */
  public Optional<ResourceType> find(String group, String version, String plural) {
    return all().stream()
        .filter(
            t ->
                t.group().equals(group) && t.version().equals(version) && t.plural().equals(plural))
        .findFirst();
  }

  private static ResourceType fromCrd(
      CustomResourceDefinition crd, CustomResourceDefinitionVersion v) {
    var names = crd.getSpec().getNames();
    List<PrinterColumn> columns = new ArrayList<>();
    if (v.getAdditionalPrinterColumns() == null || v.getAdditionalPrinterColumns().isEmpty()) {
      // The API server's default table for a CRD without printer columns: Name and Age.
      columns.add(PrinterColumn.AGE);
    } else {
      for (CustomResourceColumnDefinition c : v.getAdditionalPrinterColumns()) {
        columns.add(
            new PrinterColumn(
                c.getName(),
                c.getType(),
                c.getJsonPath(),
                c.getPriority() == null ? 0 : c.getPriority(),
                c.getDescription()));
      }
    }
    boolean status = v.getSubresources() != null && v.getSubresources().getStatus() != null;
    String singular =
        names.getSingular() == null
            ? names.getKind().toLowerCase(java.util.Locale.ROOT)
            : names.getSingular();
    return new ResourceType(
        crd.getSpec().getGroup(),
        v.getName(),
        names.getPlural(),
        singular,
        names.getKind(),
        "Namespaced".equals(crd.getSpec().getScope()),
        names.getShortNames() == null ? List.of() : names.getShortNames(),
        columns,
        status);
  }
}
