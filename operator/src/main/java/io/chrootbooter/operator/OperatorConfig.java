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
