package io.chrootbooter.e2e.apiserver;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The kubeconfig kubectl and fabric8 use to reach the embedded API: plain HTTP on loopback, no
 * credentials (kubectl's {@code insecure-skip-tls-verify} only matters for https), namespace {@code
 * default}.
 */
public final class Kubeconfig {

  /** The cluster, context and user name in the file. */
  public static final String NAME = "chrootbooter-lab";

  private Kubeconfig() {}

  /** The kubeconfig text for a server URL such as {@code http://127.0.0.1:6443}. */
  public static String render(String serverUrl) {
    return """
        apiVersion: v1
        kind: Config
        clusters:
        - name: %1$s
          cluster:
            server: %2$s
        contexts:
        - name: %1$s
          context:
            cluster: %1$s
            namespace: default
            user: %1$s
        current-context: %1$s
        users:
        - name: %1$s
          user: {}
        """
        .formatted(NAME, serverUrl);
  }

  /** Writes the file atomically (readers never see half of it), mode 0600 where supported. */
  public static void write(Path file, String serverUrl) throws IOException {
    Path parent = file.toAbsolutePath().getParent();
    Files.createDirectories(parent);
    Path tmp = Files.createTempFile(parent, ".kubeconfig", ".tmp");
    Files.writeString(tmp, render(serverUrl));
    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }
}
