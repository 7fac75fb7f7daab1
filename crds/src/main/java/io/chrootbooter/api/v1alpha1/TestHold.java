package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.chrootbooter.protocol.TestCommand;
import java.util.List;
import java.util.Optional;

/**
 * A {@link BootTest}'s hold on a MachineBoot: what the machine runs while tested, kept in the
 * MachineBoot's annotation {@link #ANNOTATION} (and its label {@link #LABEL}, the test's name) by
 * the operator. While it is there the machine's desired state comes from it, not from the spec:
 * edits of the spec wait until the test removes it.
 *
 * @param test the BootTest's name, in the MachineBoot's namespace
 * @param generation the generation the agent is sent: a new one for every switch, never one of the
 *     MachineBoot's own (a switch then ends a console override, and the release is a new generation
 *     again)
 * @param imageRef the image the machine runs; null: it waits in the bootstrap
 * @param bootTimeout the bootTimeout of this boot (the test's healthy check); null for none
 * @param spec the MachineBoot's spec when the test took it: everything but the image and the
 *     bootTimeout is kept from it
 * @param commands the commands of the test's command checks the agent runs in this boot, once the
 *     target reported healthy; empty for none
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record TestHold(
    String test,
    long generation,
    String imageRef,
    String bootTimeout,
    MachineBootSpec spec,
    @JsonInclude(JsonInclude.Include.NON_EMPTY) List<TestCommand> commands) {

  public TestHold {
    commands = commands == null ? List.of() : List.copyOf(commands);
  }

  /** A hold whose boot runs no commands. */
  public TestHold(
      String test, long generation, String imageRef, String bootTimeout, MachineBootSpec spec) {
    this(test, generation, imageRef, bootTimeout, spec, List.of());
  }

  /** The annotation that holds a hold, as JSON. */
  public static final String ANNOTATION = BootImage.GROUP + "/test-hold";

  /** The label that names the holding test, so that its machines can be listed. */
  public static final String LABEL = BootImage.GROUP + "/held-by";

  private static final ObjectMapper JSON = new ObjectMapper();

  /** The hold on {@code mb}; empty when there is none or it does not parse. */
  public static Optional<TestHold> of(MachineBoot mb) {
    if (mb == null || mb.getMetadata() == null || mb.getMetadata().getAnnotations() == null) {
      return Optional.empty();
    }
    String json = mb.getMetadata().getAnnotations().get(ANNOTATION);
    if (json == null) {
      return Optional.empty();
    }
    try {
      TestHold hold = JSON.readValue(json, TestHold.class);
      return hold.test() == null || hold.spec() == null ? Optional.empty() : Optional.of(hold);
    } catch (java.io.IOException e) {
      return Optional.empty();
    }
  }

  /** This hold as the annotation's value. */
  public String toJson() {
    try {
      return JSON.writeValueAsString(this);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException("a hold does not serialise", e);
    }
  }

  /** The spec the machine follows while held: the kept spec, with this hold's image. */
  public MachineBootSpec effectiveSpec() {
    return new MachineBootSpec(
        spec.macAddress(),
        spec.uuid(),
        imageRef,
        imageRef == null ? MachineState.Bootstrap : null,
        spec.kernelArgs(),
        spec.overlay(),
        spec.returnTriggers(),
        bootTimeout,
        spec.confinement(),
        spec.devices());
  }

  /** The spec {@code mb} follows: its hold's, or its own. */
  public static MachineBootSpec effectiveSpec(MachineBoot mb) {
    return of(mb).map(TestHold::effectiveSpec).orElse(mb.getSpec());
  }

  /**
   * {@code mb} without a hold, its spec as {@code after} says: unchanged ({@link
   * AfterTest#Restore}), {@code state: Bootstrap}, or {@code imageRef} (Keep). Changes {@code mb}.
   */
  public static MachineBoot released(MachineBoot mb, AfterTest after, String imageRef) {
    if (mb.getMetadata().getAnnotations() != null) {
      mb.getMetadata().getAnnotations().remove(ANNOTATION);
    }
    if (mb.getMetadata().getLabels() != null) {
      mb.getMetadata().getLabels().remove(LABEL);
    }
    MachineBootSpec s = mb.getSpec();
    if (s != null && after != AfterTest.Restore) {
      boolean keep = after == AfterTest.Keep;
      mb.setSpec(
          new MachineBootSpec(
              s.macAddress(),
              s.uuid(),
              keep ? imageRef : null,
              keep ? null : MachineState.Bootstrap,
              s.kernelArgs(),
              s.overlay(),
              s.returnTriggers(),
              s.bootTimeout(),
              s.confinement(),
              s.devices()));
    }
    return mb;
  }

  /** The generation {@code mb}'s agent is sent: its hold's, or the MachineBoot's. */
  public static long effectiveGeneration(MachineBoot mb) {
    return of(mb)
        .map(TestHold::generation)
        .orElseGet(
            () -> mb.getMetadata().getGeneration() == null ? 0 : mb.getMetadata().getGeneration());
  }
}
