package io.chrootbooter.operator.boottest;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.api.v1alpha1.BootImageStatus;
import io.chrootbooter.api.v1alpha1.BootTestCheck;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootSpec;
import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.api.v1alpha1.MachineState;
import io.chrootbooter.api.v1alpha1.TestHold;
import io.chrootbooter.operator.boottest.BootTestRules.Hold;
import io.chrootbooter.operator.boottest.BootTestRules.Release;
import io.chrootbooter.operator.boottest.BootTestRules.Write;
import io.chrootbooter.protocol.LastReturn;
import io.chrootbooter.protocol.MachinePhase;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What the tests of the BootTest rules build alike: the machines of namespace {@code lab} (each at
 * generation 3, as their agents report them), the BootImage {@code busybox} Ready, and a plan's
 * writes applied to the machines the way the reconciler applies them.
 */
final class Fixtures {
  /** The namespace of every object here. */
  static final String NAMESPACE = "lab";

  /** The MachineBoot generation every machine here is at. */
  static final long GENERATION = 3L;

  private Fixtures() {}

  /** MachineBoot {@code name} with {@code labels}, its labels and annotations editable. */
  static MachineBoot machine(
      String name, Map<String, String> labels, MachineBootSpec spec, MachineBootStatus status) {
    MachineBoot mb = new MachineBoot();
    mb.setMetadata(
        new ObjectMetaBuilder()
            .withName(name)
            .withNamespace(NAMESPACE)
            .withGeneration(GENERATION)
            .withLabels(new HashMap<>(labels))
            .withAnnotations(new HashMap<>())
            .build());
    mb.setSpec(spec);
    mb.setStatus(status);
    return mb;
  }

  /** The spec of a machine that runs {@code image}, or waits in the bootstrap when it is null. */
  static MachineBootSpec machineSpec(String image) {
    return new MachineBootSpec(
        "52:54:00:12:34:56",
        null,
        image,
        image == null ? MachineState.Bootstrap : null,
        List.of("quiet"),
        null,
        null,
        null);
  }

  /** The status an agent's reports write: {@code phase}, running {@code image}, last return. */
  static MachineBootStatus status(MachinePhase phase, String image, LastReturn lastReturn) {
    return MachineBootStatus.builder()
        .phase(phase)
        .currentImage(image)
        .observedGeneration(GENERATION)
        .lastReturn(lastReturn)
        .build();
  }

  /** A check that the image reports healthy within {@code timeout}. */
  static BootTestCheck healthy(String timeout) {
    return new BootTestCheck(null, new BootTestCheck.Healthy(timeout), null);
  }

  /** The BootImage {@code busybox}, mirrored and Ready. */
  static Optional<BootImage> ready() {
    BootImage bi = new BootImage();
    bi.setMetadata(new ObjectMetaBuilder().withName("busybox").withNamespace(NAMESPACE).build());
    bi.setStatus(
        new BootImageStatus(
            BootImagePhase.Ready, null, null, null, "/images/abc", null, List.of(), null));
    return Optional.of(bi);
  }

  /**
   * Applies a plan's writes to {@code machines} as the reconciler does: a hold annotates and labels
   * its machine, a release gives it back its own spec.
   */
  static void apply(List<Write> writes, Map<String, MachineBoot> machines) {
    for (Write w : writes) {
      MachineBoot mb = machines.get(w.machine());
      if (w instanceof Hold h) {
        mb.getMetadata().getAnnotations().put(TestHold.ANNOTATION, h.hold().toJson());
        mb.getMetadata().getLabels().put(TestHold.LABEL, h.hold().test());
      } else if (w instanceof Release r) {
        BootTestReconciler.released(mb, r);
      }
    }
  }
}
