package io.chrootbooter.agent.operator;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.jboss.logging.Logger;

/**
 * The session of this boot, kept in a root-only file ({@code /run/bootstrap/agent-session}, mode
 * 0600) for an agent that init restarts (after running out of memory, say): its boot nonce is
 * spent, so without the file it could not reach the operator again until the machine reboots.
 * {@code /run/bootstrap} is the bootstrap's tmpfs: it is not in a target's mount namespace, and it
 * is gone at the next boot. A file that is not a regular file owned by this user with no permission
 * for anyone else, or that belongs to another boot, machine or operator, is ignored.
 *
 * <p>The format is {@code key=value} lines: {@code operator}, {@code mac}, {@code bootId}, {@code
 * session}, {@code expiresAt}.
 */
public final class SessionFile {
  private static final Logger LOG = Logger.getLogger(SessionFile.class);
  private static final Set<PosixFilePermission> OWNER_ONLY =
      PosixFilePermissions.fromString("rw-------");

  private final Path file;

  public SessionFile(Path file) {
    this.file = file;
  }

  /** What the file holds. */
  public record Stored(
      String operator, String mac, String bootId, String session, Instant expires) {
    @Override
    public String toString() {
      return "Stored[" + operator + ", " + mac + ", boot " + bootId + ", expires " + expires + "]";
    }
  }

  /** The path, for messages. */
  public Path path() {
    return file;
  }

  /** The stored session, when the file exists and is safe to believe. */
  public Optional<Stored> read() {
    try {
      if (!Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
        return Optional.empty();
      }
      PosixFileAttributes attributes =
          Files.readAttributes(file, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
      String me = System.getProperty("user.name");
      if (!attributes.isRegularFile()
          || !attributes.permissions().equals(OWNER_ONLY)
          || !attributes.owner().getName().equals(me)) {
        LOG.warnf(
            "%s is not a regular file of %s with mode 0600; ignored (the agent enrols anew)",
            file, me);
        return Optional.empty();
      }
      Map<String, String> values = new HashMap<>();
      for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
        int eq = line.indexOf('=');
        if (eq > 0) {
          values.put(line.substring(0, eq), line.substring(eq + 1));
        }
      }
      return Optional.of(
          new Stored(
              values.get("operator"),
              values.get("mac"),
              values.get("bootId"),
              values.get("session"),
              Instant.parse(values.getOrDefault("expiresAt", ""))));
    } catch (IOException | DateTimeParseException | UnsupportedOperationException e) {
      LOG.warnf("cannot read %s; ignored: %s", file, e.getMessage());
      return Optional.empty();
    }
  }

  /** Writes {@code stored}: a new file, mode 0600 from its creation, moved over the old one. */
  public void write(Stored stored) throws IOException {
    Path dir = file.toAbsolutePath().getParent();
    Files.createDirectories(dir);
    Path temp =
        Files.createTempFile(
            dir, ".agent-session", ".tmp", PosixFilePermissions.asFileAttribute(OWNER_ONLY));
    try {
      String text =
          "operator="
              + stored.operator()
              + "\nmac="
              + stored.mac()
              + "\nbootId="
              + stored.bootId()
              + "\nsession="
              + stored.session()
              + "\nexpiresAt="
              + stored.expires()
              + "\n";
      Files.writeString(temp, text, StandardCharsets.UTF_8);
      Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(temp);
    }
  }
}
