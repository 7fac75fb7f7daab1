package io.chrootbooter.operator;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.Startup;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.logging.Logger;

/**
 * Whether this replica reconciles: always without leader election, while it holds the Lease with
 * it. Exported as {@code chrootbooter_leader} (1 or 0), so a dashboard shows which replica leads.
 */
@ApplicationScoped
@Startup
public class Leadership {
  private static final Logger LOG = Logger.getLogger(Leadership.class);

  private final AtomicBoolean electing = new AtomicBoolean();
  private final AtomicBoolean leading = new AtomicBoolean();

  Leadership(MeterRegistry registry) {
    Gauge.builder("chrootbooter.leader", this, l -> l.reconciles() ? 1 : 0)
        .description("1 on the replica that reconciles (holds the Lease), 0 on standbys")
        .register(registry);
  }

  /** Leader election is configured: this replica reconciles only once it holds the Lease. */
  void electing() {
    electing.set(true);
  }

  void started() {
    leading.set(true);
    LOG.info("this replica holds the Lease and reconciles");
  }

  void stopped() {
    leading.set(false);
  }

  /** Whether this replica processes events. */
  public boolean reconciles() {
    return !electing.get() || leading.get();
  }
}
