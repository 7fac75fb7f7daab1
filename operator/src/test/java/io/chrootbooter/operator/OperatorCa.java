package io.chrootbooter.operator;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import java.nio.file.Path;
import java.util.Map;

/**
 * The operator-wide CA bundle of the tests: a CA made before the operator starts, whose certificate
 * {@code cb.store.ca-bundle} names. Scenarios sign servers with {@link #ca()}.
 */
public class OperatorCa implements QuarkusTestResourceLifecycleManager {
  static final Path DIR = Path.of("target/test-ca/operator").toAbsolutePath();

  /** The CA made at the operator's start; the test is skipped without it. */
  static TestCa ca() {
    return TestCa.open(DIR);
  }

  @Override
  public Map<String, String> start() {
    if (!TestCa.opensslPresent()) {
      return Map.of();
    }
    TestCa ca = TestCa.create(DIR, "Chroot Booter test operator CA");
    return Map.of("cb.store.ca-bundle", ca.certificate().toString());
  }

  @Override
  public void stop() {}
}
