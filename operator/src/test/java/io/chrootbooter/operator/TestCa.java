package io.chrootbooter.operator;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.Assumptions;

/**
 * A certificate authority made for a test with the openssl CLI, as an admin makes a private
 * mirror's CA: an EC P-256 root, and server certificates it signs for the names a test chooses.
 */
public final class TestCa {
  private static final char[] PASSWORD = "test".toCharArray();

  private final Path dir;
  private final AtomicInteger servers = new AtomicInteger();

  private TestCa(Path dir) {
    this.dir = dir;
  }

  /** Whether the openssl CLI is installed. */
  public static boolean opensslPresent() {
    try {
      return new ProcessBuilder("openssl", "version").start().waitFor() == 0;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  /** A new CA in {@code dir} named {@code name}; skips the test without openssl. */
  public static TestCa create(Path dir, String name) {
    Assumptions.assumeTrue(opensslPresent(), "openssl is not installed (Debian: openssl)");
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    TestCa ca = new TestCa(dir);
    ca.openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=" + name,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign");
    return ca;
  }

  /** The CA that {@link #create} made in {@code dir} earlier; skips the test when there is none. */
  public static TestCa open(Path dir) {
    Assumptions.assumeTrue(
        Files.exists(dir.resolve("ca.key")), "no CA in " + dir + " (is openssl installed?)");
    return new TestCa(dir);
  }

  /** The CA certificate file. */
  public Path certificate() {
    return dir.resolve("ca.crt");
  }

  /** The CA certificate, PEM. */
  public String pem() {
    try {
      return Files.readString(certificate(), StandardCharsets.US_ASCII);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /**
   * A server's TLS context with a certificate this CA signed for {@code subjectAltName}, such as
   * {@code IP:127.0.0.1} or {@code DNS:mirror.example}.
   */
  public SSLContext serverContext(String subjectAltName) {
    String base = "server-" + System.nanoTime() + "-" + servers.incrementAndGet();
    try {
      Files.writeString(
          dir.resolve(base + ".ext"),
          "subjectAltName=" + subjectAltName + "\nextendedKeyUsage=serverAuth\n");
      openssl(
          "req",
          "-new",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-keyout",
          base + ".key",
          "-out",
          base + ".csr",
          "-subj",
          "/CN=image server");
      openssl(
          "x509",
          "-req",
          "-in",
          base + ".csr",
          "-CA",
          "ca.crt",
          "-CAkey",
          "ca.key",
          "-CAcreateserial",
          "-days",
          "2",
          "-extfile",
          base + ".ext",
          "-out",
          base + ".crt");
      openssl(
          "pkcs12",
          "-export",
          "-inkey",
          base + ".key",
          "-in",
          base + ".crt",
          "-certfile",
          "ca.crt",
          "-name",
          "server",
          "-passout",
          "pass:" + new String(PASSWORD),
          "-out",
          base + ".p12");
      KeyStore keys = KeyStore.getInstance("PKCS12");
      try (InputStream in = Files.newInputStream(dir.resolve(base + ".p12"))) {
        keys.load(in, PASSWORD);
      }
      KeyManagerFactory kmf =
          KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(keys, PASSWORD);
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(kmf.getKeyManagers(), null, null);
      return context;
    } catch (IOException | GeneralSecurityException e) {
      throw new IllegalStateException("cannot build the server certificate " + base, e);
    }
  }

  private void openssl(String... args) {
    List<String> command = new java.util.ArrayList<>(List.of("openssl"));
    command.addAll(List.of(args));
    try {
      Process p =
          new ProcessBuilder(command)
              .directory(dir.toFile())
              .redirectErrorStream(true)
              .redirectOutput(dir.resolve("openssl.log").toFile())
              .start();
      assertThat(p.waitFor(60, TimeUnit.SECONDS)).as(String.join(" ", command)).isTrue();
      assertThat(p.exitValue())
          .as("%s: %s", String.join(" ", command), Files.readString(dir.resolve("openssl.log")))
          .isZero();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
