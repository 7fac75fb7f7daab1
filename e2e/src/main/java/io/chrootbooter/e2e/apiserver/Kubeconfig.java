package io.chrootbooter.e2e.apiserver;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The kubeconfig kubectl and fabric8 use to reach the embedded API: plain HTTP on loopback,
 * namespace {@code default}, and a bearer token made for this run of the server. The API itself
 * serves every request with or without it (it listens on loopback only); the token is what a user
 * presents to the operator's console routes, which ask the API for a TokenReview of it (the lab's
 * user, {@link ApiDispatcher#LAB_USER}, may do everything).
 */
public final class Kubeconfig {

  /** The cluster, context and user name in the file. */
  public static final String NAME = "chrootbooter-lab";

  private Kubeconfig() {}

  /** The kubeconfig text for a server URL such as {@code http://127.0.0.1:6443}, no token. */
  public static String render(String serverUrl) {
    return render(serverUrl, null);
  }

  /** The kubeconfig text with the user's bearer {@code token} (none when null). */
  public static String render(String serverUrl, String token) {
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
          user: %3$s
        """
        .formatted(NAME, serverUrl, token == null ? "{}" : "{token: " + token + "}");
  }

  /** Writes the file atomically (readers never see half of it), mode 0600 where supported. */
  public static void write(Path file, String serverUrl) throws IOException {
    write(file, serverUrl, null);
  }

  /** Writes the file with the user's bearer {@code token}, mode 0600 where supported. */
  public static void write(Path file, String serverUrl, String token) throws IOException {
    Path parent = file.toAbsolutePath().getParent();
    Files.createDirectories(parent);
    Path tmp = Files.createTempFile(parent, ".kubeconfig", ".tmp");
    Files.writeString(tmp, render(serverUrl, token));
    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }
}
