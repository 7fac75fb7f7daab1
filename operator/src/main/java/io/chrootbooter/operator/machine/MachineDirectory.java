package io.chrootbooter.operator.machine;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootTest;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.TestHold;
import io.chrootbooter.protocol.MachinePhase;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import io.fabric8.kubernetes.client.informers.cache.Indexer;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * All MachineBoots, from an informer cache indexed by MAC: what the HTTP endpoints read on every
 * request, without a call to the API server. It is separate from the reconciler's cache because
 * every replica serves HTTP while only the leader reconciles. BootImages are cached beside them for
 * the image a script names.
 */
@ApplicationScoped
public class MachineDirectory {

  private final KubernetesClient client;
  private final MeterRegistry registry;
  private volatile SharedIndexInformer<MachineBoot> informer;
  private volatile SharedIndexInformer<BootImage> images;
  private volatile SharedIndexInformer<BootTest> tests;
  private final List<Consumer<String>> listeners = new CopyOnWriteArrayList<>();
  private final List<Consumer<HasMetadata>> resourceListeners = new CopyOnWriteArrayList<>();

  MachineDirectory(KubernetesClient client, MeterRegistry registry) {
    this.client = client;
    this.registry = registry;
  }

  void start(@Observes StartupEvent event) {
    SharedIndexInformer<MachineBoot> inf =
        watched(client.resources(MachineBoot.class)).runnableInformer(0);
    inf.addIndexers(MachineIndexes.all());
    inf.addEventHandler(handler(this::machineChanged));
    inf.addEventHandler(handler(this::notifyResourceListeners));
    SharedIndexInformer<BootImage> imageInformer =
        watched(client.resources(BootImage.class)).runnableInformer(0);
    imageInformer.addEventHandler(handler(this::imageChanged));
    imageInformer.addEventHandler(handler(this::notifyResourceListeners));
    // BootTests for the status page only: the BootTest reconciler has the leader's own cache.
    SharedIndexInformer<BootTest> testInformer =
        watched(client.resources(BootTest.class)).runnableInformer(0);
    testInformer.addEventHandler(handler(this::notifyResourceListeners));
    inf.start();
    imageInformer.start();
    testInformer.start();
    informer = inf;
    images = imageInformer;
    tests = testInformer;
    for (MachinePhase phase : MachinePhase.values()) {
      Gauge.builder("chrootbooter.machines", () -> count(phase))
          .description("MachineBoots by phase")
          .tag("phase", phase.name())
          .register(registry);
    }
  }

  /**
   * The namespaces the operator watches, as the Operator SDK is told them ({@code
   * quarkus.operator-sdk.namespaces}): all of them, or exactly one — with more, a Role per
   * namespace would not allow a cluster-wide watch, so several are refused at start.
   */
  public <T extends io.fabric8.kubernetes.api.model.HasMetadata>
      io.fabric8.kubernetes.client.dsl.FilterWatchListDeletable<T, ?, ?> watched(
          io.fabric8.kubernetes.client.dsl.MixedOperation<T, ?, ?> resources) {
    String namespaces =
        org.eclipse.microprofile.config.ConfigProvider.getConfig()
            .getOptionalValue("quarkus.operator-sdk.namespaces", String.class)
            .orElse("JOSDK_ALL_NAMESPACES")
            .trim();
    if (namespaces.equals("JOSDK_ALL_NAMESPACES") || namespaces.isEmpty()) {
      return resources.inAnyNamespace();
    }
    if (namespaces.equals("JOSDK_WATCH_CURRENT")) {
      return resources.inNamespace(client.getNamespace());
    }
    if (namespaces.contains(",")) {
      throw new IllegalStateException(
          "quarkus.operator-sdk.namespaces=" + namespaces + ": watch all namespaces or one");
    }
    return resources.inNamespace(namespaces);
  }

  void stop(@Observes ShutdownEvent event) {
    if (informer != null) {
      informer.stop();
    }
    if (images != null) {
      images.stop();
    }
    if (tests != null) {
      tests.stop();
    }
  }

  /** Whether the cache holds a complete first listing. */
  public boolean synced() {
    return informer != null && informer.hasSynced() && images.hasSynced();
  }

  /**
   * The BootImage a machine follows: the one its spec names, or the image under test while a
   * BootTest holds it ({@link TestHold}); empty for the bootstrap.
   */
  public static Optional<String> imageRef(MachineBoot mb) {
    if (mb.getSpec() == null) {
      return Optional.empty();
    }
    return Optional.ofNullable(TestHold.effectiveSpec(mb).imageRef());
  }

  /** The BootImage with this namespace and name, if any. */
  public Optional<BootImage> image(String namespace, String name) {
    return images == null
        ? Optional.empty()
        : Optional.ofNullable(images.getStore().getByKey(namespace + "/" + name));
  }

  /** The MachineBoot with this namespace and name, if any. */
  public Optional<MachineBoot> machine(String namespace, String name) {
    return informer == null
        ? Optional.empty()
        : Optional.ofNullable(informer.getStore().getByKey(namespace + "/" + name));
  }

  /** Every cached MachineBoot. */
  public List<MachineBoot> machines() {
    return informer == null ? List.of() : List.copyOf(informer.getStore().list());
  }

  /** Every cached BootTest. */
  public List<BootTest> tests() {
    return tests == null ? List.of() : List.copyOf(tests.getStore().list());
  }

  /** The BootTest with this namespace and name, if any. */
  public Optional<BootTest> test(String namespace, String name) {
    return tests == null
        ? Optional.empty()
        : Optional.ofNullable(tests.getStore().getByKey(namespace + "/" + name));
  }

  /** Every cached BootImage. */
  public List<BootImage> images() {
    return images == null ? List.of() : List.copyOf(images.getStore().list());
  }

  /** The MachineBoot that owns this MAC (lower-case colon form), if any. */
  public Optional<MachineBoot> byMac(String mac) {
    if (informer == null) {
      return Optional.empty();
    }
    List<MachineBoot> claimants = byIndex(informer.getIndexer(), MachineIndexes.BY_MAC, mac);
    // One claimant is the rule; the iPXE endpoint asks on every request.
    return claimants.size() == 1 ? Optional.of(claimants.get(0)) : MacOwners.owner(claimants);
  }

  /**
   * {@code indexer.byIndex}, read under the cache's own lock. fabric8's informer cache ({@code
   * CacheImpl}, 7.5) changes an object's index entries in two steps, the old ones out and then the
   * new ones in, inside its synchronized {@code put}, while {@code byIndex} takes no lock: a
   * machine that asked for its iPXE script while its MachineBoot was being updated found no
   * MachineBoot.
   */
  static <T> List<T> byIndex(Indexer<T> indexer, String index, String key) {
    synchronized (indexer) {
      return indexer.byIndex(index, key);
    }
  }

  /**
   * Calls {@code listener} with the MAC (lower-case colon form) of every machine whose MachineBoot,
   * or whose BootImage, was added, changed or deleted.
   */
  public void onChange(Consumer<String> listener) {
    listeners.add(listener);
  }

  /**
   * Calls {@code listener} with every MachineBoot, BootImage and BootTest that was added, changed
   * or deleted, after the cache holds the change.
   */
  public void onResourceChange(Consumer<HasMetadata> listener) {
    resourceListeners.add(listener);
  }

  private void notifyResourceListeners(HasMetadata resource) {
    resourceListeners.forEach(l -> l.accept(resource));
  }

  private void machineChanged(MachineBoot mb) {
    if (mb.getSpec() != null) {
      MacAddress.normalize(mb.getSpec().macAddress()).ifPresent(this::notifyListeners);
    }
  }

  private void imageChanged(BootImage image) {
    String key =
        MachineIndexes.imageKey(image.getMetadata().getNamespace(), image.getMetadata().getName());
    for (MachineBoot mb : byIndex(informer.getIndexer(), MachineIndexes.BY_IMAGE, key)) {
      machineChanged(mb);
    }
  }

  private void notifyListeners(String mac) {
    listeners.forEach(l -> l.accept(mac));
  }

  private static <T> ResourceEventHandler<T> handler(Consumer<T> changed) {
    return new ResourceEventHandler<>() {
      @Override
      public void onAdd(T obj) {
        changed.accept(obj);
      }

      @Override
      public void onUpdate(T oldObj, T newObj) {
        changed.accept(newObj);
      }

      @Override
      public void onDelete(T obj, boolean deletedFinalStateUnknown) {
        changed.accept(obj);
      }
    };
  }

  private long count(MachinePhase phase) {
    if (informer == null) {
      return 0;
    }
    return informer.getStore().list().stream()
        .filter(
            mb ->
                (mb.getStatus() == null || mb.getStatus().phase() == null
                        ? MachinePhase.Pending
                        : mb.getStatus().phase())
                    == phase)
        .count();
  }
}
