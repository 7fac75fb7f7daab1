package io.chrootbooter.operator.machine;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.informers.cache.Cache;
import io.fabric8.kubernetes.client.informers.impl.cache.CacheImpl;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * A machine asks for its iPXE script while the informer stores an edit of its MachineBoot: the
 * lookup by MAC must still find it, on fabric8's real informer cache.
 */
class MachineDirectoryIndexTest {
  private static final String MAC = "52:54:00:12:34:56";

  private static MachineBoot machine(int version) {
    MachineBoot mb = new MachineBoot();
    mb.setMetadata(
        new ObjectMetaBuilder()
            .withNamespace("lab")
            .withName("m1")
            .withResourceVersion(Integer.toString(version))
            .build());
    return mb;
  }

  @Test
  void aMachineBeingUpdatedIsNeverMissingFromItsMac() throws Exception {
    CacheImpl<MachineBoot> cache =
        new CacheImpl<>(
            Cache.NAMESPACE_INDEX, Cache::metaNamespaceIndexFunc, Cache::metaNamespaceKeyFunc);
    cache.addIndexers(Map.of(MachineIndexes.BY_MAC, mb -> List.of(MAC)));
    cache.put(machine(1));
    AtomicBoolean done = new AtomicBoolean();
    Thread informer =
        new Thread(
            () -> {
              for (int v = 2; v < 200_000; v++) {
                cache.put(machine(v));
              }
              done.set(true);
            });
    informer.start();
    long lookups = 0;
    long missing = 0;
    while (!done.get()) {
      List<MachineBoot> found = MachineDirectory.byIndex(cache, MachineIndexes.BY_MAC, MAC);
      lookups++;
      if (found.size() != 1) {
        missing++;
      }
    }
    informer.join();
    assertThat(lookups).isGreaterThan(1000);
    assertThat(missing).as("lookups of %d that found no single MachineBoot", lookups).isZero();
  }
}
