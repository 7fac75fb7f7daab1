package io.chrootbooter.e2e.apiserver;

/**
 * A column of a server-side {@code Table}: the same fields as a CRD's {@code
 * additionalPrinterColumns} entry.
 *
 * @param name header, such as {@code Phase}
 * @param type {@code string}, {@code integer}, {@code number}, {@code boolean} or {@code date}
 * @param jsonPath where the cell's value is, such as {@code .status.phase}
 * @param priority 0 for {@code kubectl get}, higher only for {@code -o wide}
 * @param description what {@code kubectl explain}-style tools show for the column
 */
public record PrinterColumn(
    String name, String type, String jsonPath, int priority, String description) {

  /** Age from the creation timestamp, as every built-in table has it. */
  static final PrinterColumn AGE =
      new PrinterColumn("Age", "date", ".metadata.creationTimestamp", 0, "Time since creation");

  public PrinterColumn {
    type = type == null ? "string" : type;
    description = description == null ? "" : description;
  }

  /** A string column at priority 0. */
  static PrinterColumn of(String name, String jsonPath) {
    return new PrinterColumn(name, "string", jsonPath, 0, "");
  }
}
