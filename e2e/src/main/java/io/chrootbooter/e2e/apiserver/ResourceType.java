package io.chrootbooter.e2e.apiserver;

import java.util.List;

/**
 * One kind the embedded API serves, as discovery and the {@code Table} printer need to know it.
 *
 * @param group API group, empty for the core group
 * @param version API version
 * @param plural resource name in URLs
 * @param singular singular name ({@code kubectl get machineboot})
 * @param kind object kind
 * @param namespaced whether objects live in a namespace
 * @param shortNames short names ({@code mb})
 * @param columns printer columns after Name, as a CRD's {@code additionalPrinterColumns}
 * @param statusSubresource whether {@code <plural>/status} exists
 */
public record ResourceType(
    String group,
    String version,
    String plural,
    String singular,
    String kind,
    boolean namespaced,
    List<String> shortNames,
    List<PrinterColumn> columns,
    boolean statusSubresource) {

  /** What the real API server grants on every resource the lab uses. */
  static final List<String> VERBS =
      List.of("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch");

  public ResourceType {
    group = group == null ? "" : group;
    shortNames = List.copyOf(shortNames);
    columns = List.copyOf(columns);
  }

  /** {@code v1} for the core group, {@code group/version} otherwise. */
  public String groupVersion() {
    return group.isEmpty() ? version : group + "/" + version;
  }

  /** A core or built-in kind whose table shows Name, the given columns, and Age. */
  static ResourceType builtin(
      String group,
      String plural,
      String kind,
      boolean namespaced,
      List<String> shortNames,
      PrinterColumn... columns) {
    String version = "v1";
    var all = new java.util.ArrayList<>(List.of(columns));
    all.add(PrinterColumn.AGE);
    return new ResourceType(
        group,
        version,
        plural,
        kind.toLowerCase(java.util.Locale.ROOT),
        kind,
        namespaced,
        shortNames,
        all,
        false);
  }
}
