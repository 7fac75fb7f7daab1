package io.chrootbooter.operator.console;

import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.operator.machine.MachineDirectory;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * A machine's recorded boots wherever they are: this replica's ({@link ConsoleLogs}), and those of
 * the replica its agent sends its console to, when that is another ({@link ReplicaForwards}: read
 * over the admin port with a forward credential, as {@value #USER}). What the BootTest console
 * checks read. A boot both hold is taken from the other replica, which receives it now; when that
 * replica cannot be reached, this replica's own record is all there is. Blocks (at most {@link
 * #TIMEOUT} per read).
 */
@ApplicationScoped
public class RecordedConsoles {
  private static final Logger LOG = Logger.getLogger(RecordedConsoles.class);

  /** The name a BootTest's read is forwarded as. */
  public static final String USER = "system:chrootbooter:boottest";

  /** How long one read of another replica may take. */
  static final Duration TIMEOUT = Duration.ofSeconds(5);

  /** The most bytes of one boot's console taken from another replica. */
  static final int MAX_BYTES = 1024 * 1024;

  private final ConsoleLogs logs;
  private final MachineDirectory directory;
  private final ReplicaForwards forwards;
  private final HttpClient http =
      HttpClient.newBuilder()
          .connectTimeout(TIMEOUT)
          .followRedirects(HttpClient.Redirect.NEVER)
          .build();

  RecordedConsoles(ConsoleLogs logs, MachineDirectory directory, ReplicaForwards forwards) {
    this.logs = logs;
    this.directory = directory;
    this.forwards = forwards;
  }

  /** The machine's recorded boots, the earlier first. */
  public List<ConsoleLogs.View> of(String namespace, String name) {
    Map<String, ConsoleLogs.View> boots = new LinkedHashMap<>();
    logs.previous(namespace, name).ifPresent(v -> boots.put(v.boot(), v));
    logs.current(namespace, name).ifPresent(v -> boots.put(v.boot(), v));
    Optional<MachineBoot> mb = directory.machine(namespace, name);
    Optional<URI> other = mb.flatMap(m -> forwards.elsewhere(m, ReplicaForwards.Held.LOG));
    if (other.isEmpty()) {
      return List.copyOf(boots.values());
    }
    List<ConsoleLogs.View> remote = new ArrayList<>(2);
    for (String boot : List.of("previous", "current")) {
      try {
        read(other.get(), namespace, name, boot).ifPresent(remote::add);
      } catch (IOException e) {
        LOG.debugf(
            "could not read the %s console of %s/%s at %s: %s",
            boot, namespace, name, other.get(), e.toString());
        return List.copyOf(boots.values());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return List.copyOf(boots.values());
      }
    }
    // This replica's boots the other does not hold came first (an agent moves on, not back).
    Map<String, ConsoleLogs.View> merged = new LinkedHashMap<>();
    for (ConsoleLogs.View v : boots.values()) {
      if (remote.stream().noneMatch(r -> r.boot().equals(v.boot()))) {
        merged.put(v.boot(), v);
      }
    }
    remote.forEach(v -> merged.put(v.boot(), v));
    List<ConsoleLogs.View> all = new ArrayList<>(merged.values());
    return List.copyOf(all.subList(Math.max(0, all.size() - 2), all.size()));
  }

  private Optional<ConsoleLogs.View> read(URI to, String namespace, String name, String boot)
      throws IOException, InterruptedException {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(
                URI.create(to + "/machines/" + namespace + "/" + name + "/console?boot=" + boot))
            .timeout(TIMEOUT);
    forwards.headers(to, ConsoleAccess.Want.READ, namespace, name, USER).forEach(request::header);
    HttpResponse<InputStream> response =
        http.send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
    try (InputStream body = response.body()) {
      if (response.statusCode() == 404) {
        return Optional.empty();
      }
      if (response.statusCode() != 200) {
        throw new IOException("HTTP " + response.statusCode());
      }
      byte[] bytes = body.readNBytes(MAX_BYTES);
      String id = response.headers().firstValue("Chrootbooter-Boot").orElse("");
      if (!id.matches("[A-Za-z0-9._-]{1,100}")) {
        throw new IOException("no boot named");
      }
      return Optional.of(
          new ConsoleLogs.View(
              id,
              response.headers().firstValue("Chrootbooter-Image").orElse(null),
              response
                  .headers()
                  .firstValue("Chrootbooter-Started")
                  .filter(s -> !s.isEmpty())
                  .orElse(null),
              response.headers().firstValue("Chrootbooter-Ended").orElse("").equals("true"),
              bytes));
    }
  }
}
