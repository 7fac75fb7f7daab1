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

  /** Where agents reach the agent API, and the certificate they pin. */
  AgentApi agent();

  /**
   * The agent API's address for agents. iPXE fetches the bootstrap over plain HTTP (the iPXE of
   * most firmware and of Debian's ipxe package has no HTTPS), while the agent can use HTTPS: set
   * {@code url} to the HTTPS address (Quarkus: {@code quarkus.http.ssl.certificate.files}, {@code
   * quarkus.http.ssl-port}) and {@code ca-file} to the CA that signed the certificate.
   */
  interface AgentApi {
    /** The base URL agents use ({@code cb.operator=}); absent: the URL iPXE used. */
    Optional<String> url();

    /**
     * A PEM certificate (the CA, or a self-signed server certificate): its SHA-256 goes on the
     * kernel command line as {@code cb.ca=sha256:<hex>}, and the agent trusts only chains holding
     * it.
     */
    Optional<Path> caFile();

    /**
     * How long a machine's agent may be silent before the machine is marked {@code Ready=False},
     * reason {@code AgentLost}. Agents are asked to send their full report every quarter of it.
     */
    @WithDefault("60S")
    java.time.Duration lostAfter();

    /**
     * How long the one-time boot nonce of an iPXE script ({@code cb.nonce=}) may be exchanged for a
     * session: from the script's rendering to the agent's enrolment.
     */
    @WithDefault("10M")
    java.time.Duration nonceTtl();

    /**
     * How long a session credential is valid; agents renew it when half of it is left. A machine
     * that enrols again (a new boot) revokes its previous session at once.
     */
    @WithDefault("1H")
    java.time.Duration sessionTtl();

    /**
     * How many ended boots, switches and returns each MachineBoot's {@code status.history} keeps
     * (the flight recorder), newest first.
     */
    @WithDefault("10")
    int timelineHistory();
  }

  /**
   * Leader election: with a lease name, replicas elect one leader through a Lease and only it
   * reconciles; every replica serves HTTP. Active in the prod profile.
   */
  interface LeaderElection {
    /** The Lease's name; absent: no leader election. */
    Optional<String> leaseName();

    /** The Lease's namespace. Default: the client's namespace. */
    Optional<String> namespace();

    /**
     * This replica's name in the Lease's {@code holderIdentity}. Default: {@code $HOSTNAME} (the
     * pod's name) and a random suffix, so that two processes on one host never share a name.
     */
    Optional<String> identity();

    /** How long a Lease is valid after its holder last renewed it; a standby waits this long. */
    @WithDefault("15S")
    java.time.Duration leaseDuration();

    /** How long the leader keeps trying to renew before it gives up leading (and exits). */
    @WithDefault("10S")
    java.time.Duration renewDeadline();

    /** How often a replica tries to acquire or renew the Lease. */
    @WithDefault("2S")
    java.time.Duration retryPeriod();
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

    /**
     * The first retry delay; each next one doubles up to 64 times this, each wait drawn from the
     * upper half of its delay (the agent's schedule, io.chrootbooter.protocol.Backoff).
     */
    @WithDefault("1S")
    java.time.Duration retryDelay();

    /**
     * How long a download may receive nothing before its connection is closed and it is retried
     * from where it stopped.
     */
    @WithDefault("60S")
    java.time.Duration stallTimeout();

    /**
     * A PEM file of CA certificates that https sources may be signed by, trusted in addition to the
     * JVM's default CAs (never instead of them). Read at start. Absent: the JVM's CAs only.
     */
    Optional<Path> caBundle();

    /**
     * CIDRs image sources may be fetched from whatever the other rules say, such as the private
     * address of a site's image server on the operator's own host. Absent: none.
     */
    Optional<java.util.List<String>> allowedSources();

    /**
     * CIDRs image sources may not be fetched from, besides loopback, link-local, unspecified and
     * multicast addresses, the operator's own and the cluster's pod and Service networks: sites add
     * the networks a CNI plugin manages outside the Nodes' podCIDRs, and any other internal
     * network, here. Absent: none.
     */
    Optional<java.util.List<String>> deniedSources();

    /**
     * Whether image sources in the cluster's pod networks (every Node's {@code spec.podCIDRs}) and
     * Service networks (the ServiceCIDR objects) are refused. Needs {@code list} on Nodes and on
     * {@code servicecidrs.networking.k8s.io}; without it the operator logs what it could not read.
     */
    @WithDefault("true")
    boolean denyClusterNetworks();
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
