package io.chrootbooter.operator.boottest;

import io.chrootbooter.operator.console.ConsoleLogs;
import java.util.ArrayList;
import java.util.List;

/**
 * The recorded consoles as the BootTest rules read them: a machine's boots as this replica holds
 * them ({@link ConsoleLogs}: the previous and the current one), or as the replica that records its
 * console does ({@code console.RecordedConsoles}), the earlier first.
 */
@FunctionalInterface
public interface Consoles {
  /** No console at all: every console check waits, and fails at its timeout. */
  Consoles NONE = (namespace, machine) -> List.of();

  /** The machine's recorded boots, the earlier first. */
  List<ConsoleLogs.View> of(String namespace, String machine);

  /** The consoles {@code logs} holds. */
  static Consoles of(ConsoleLogs logs) {
    return (namespace, machine) -> {
      List<ConsoleLogs.View> views = new ArrayList<>(2);
      logs.previous(namespace, machine).ifPresent(views::add);
      logs.current(namespace, machine).ifPresent(views::add);
      return views;
    };
  }
}
