package io.chrootbooter.operator;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.nio.file.Path;
import java.util.Optional;

/** The operator's settings, under the prefix {@code cb}. */
@ConfigMapping(prefix = "cb")
public interface OperatorConfig {

  /**
   * The base URL machines use to reach the operator, such as {@code http://10.0.0.1:8080}. When
   * absent, each iPXE script is rendered with the host the machine asked (the request's Host
   * header, accepted only when it is a plain host name or address with an optional port).
   */
  Optional<String> publicUrl();

  /** iPXE rendering. */
  Ipxe ipxe();

  /** Machine tokens. */
  Tokens tokens();

  /** The image store. */
  Store store();

  /** Leader election between replicas. */
  LeaderElection leaderElection();

  /**
   * Leader election: with a lease name, replicas elect one leader through a Lease and only it
   * reconciles; every replica serves HTTP. Active in the prod profile.
   */
  interface LeaderElection {
    /** The Lease's name; absent: no leader election. */
    Optional<String> leaseName();

    /** The Lease's namespace. Default: the client's namespace. */
    Optional<String> namespace();
  }

  /** The bootstrap kernel and initramfs served to machines. */
  Bootstrap bootstrap();

  /** The image store: mirrored BootImages, one file per SHA-256. */
  interface Store {
    /** Where mirrored images are kept (a PVC in the Helm chart). */
    @WithDefault("/var/lib/chrootbooter/images")
    Path path();

    /** The most the store may hold, in bytes. Absent: as much as the filesystem has. */
    java.util.OptionalLong maxBytes();

    /** Attempts per download before the BootImage is marked Failed. */
    @WithDefault("6")
    int attempts();

    /** The first retry delay; each next one doubles, with jitter. */
    @WithDefault("1S")
    java.time.Duration retryDelay();
  }

  /** The bootstrap kernel and initramfs. */
  interface Bootstrap {
    /** The folder holding {@code vmlinuz} and {@code initramfs}. */
    @WithDefault("/var/lib/chrootbooter/bootstrap")
    Path dir();
  }

  /** iPXE rendering. */
  interface Ipxe {
    /** Console arguments for the bootstrap kernel. */
    @WithDefault("console=tty0 console=ttyS0,115200n8")
    String console();

    /**
     * A file holding the iPXE script served to machines no MachineBoot names. Absent: such machines
     * get a 404 with a script that exits, so the firmware tries its next boot device.
     */
    Optional<Path> unknownMachineScript();
  }

  /** Machine tokens. */
  interface Tokens {
    /** The Secret that holds the HMAC key; created when absent. */
    @WithDefault("chrootbooter-machine-token")
    String secretName();

    /** The namespace of that Secret. Default: the client's namespace. */
    Optional<String> namespace();
  }
}
