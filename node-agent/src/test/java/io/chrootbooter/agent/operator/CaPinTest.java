package io.chrootbooter.agent.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import io.chrootbooter.agent.fetch.CancelSignal;
import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.ImageSources;
import io.chrootbooter.agent.fetch.ImageStream;
import io.chrootbooter.protocol.Backoff;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.StatusReport;
import java.io.FileInputStream;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS pinning for real: a CA and a server certificate made by openssl, an HTTPS server on loopback,
 * and the agent's client reporting to it with the right and with a wrong pin.
 */
class CaPinTest {
  @TempDir Path dir;
  private HttpsServer server;
  private String caPin;
  private int reports;

  @BeforeEach
  void start() throws Exception {
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem");
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr");
    java.nio.file.Files.writeString(dir.resolve("ext"), "subjectAltName=IP:127.0.0.1\n");
    sign("server.csr", "ca.pem", "ca.key", "ext", "server.pem");
    openssl(
        "pkcs12",
        "-export",
        "-inkey",
        "server.key",
        "-in",
        "server.pem",
        "-certfile",
        "ca.pem",
        "-passout",
        "pass:test",
        "-out",
        "server.p12");

    KeyStore store = KeyStore.getInstance("PKCS12");
    try (InputStream in = new FileInputStream(dir.resolve("server.p12").toFile())) {
      store.load(in, "test".toCharArray());
    }
    KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    kmf.init(store, "test".toCharArray());
    SSLContext serverTls = SSLContext.getInstance("TLS");
    serverTls.init(kmf.getKeyManagers(), null, null);
    server = HttpsServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.setHttpsConfigurator(new HttpsConfigurator(serverTls));
    server.createContext(
        "/agent/v1/machines/52:54:00:00:00:01/status",
        exchange -> {
          reports++;
          exchange.getRequestBody().readAllBytes();
          exchange.sendResponseHeaders(202, -1);
          exchange.close();
        });
    server.createContext(
        "/images/a.squashfs",
        exchange -> {
          byte[] image = "pinned image bytes".getBytes(StandardCharsets.UTF_8);
          exchange.sendResponseHeaders(200, image.length);
          exchange.getResponseBody().write(image);
          exchange.close();
        });
    server.start();

    X509Certificate ca;
    try (InputStream in = new FileInputStream(dir.resolve("ca.pem").toFile())) {
      ca = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
    caPin =
        "sha256:"
            + HexFormat.of()
                .formatHex(MessageDigest.getInstance("SHA-256").digest(ca.getEncoded()));
  }

  @AfterEach
  void stop() {
    if (server != null) {
      server.stop(0);
    }
  }

  /** A client holding a session of this boot (as a restarted agent does), so it need not enrol. */
  private OperatorClient client(String pin) throws Exception {
    String base = "https://127.0.0.1:" + server.getAddress().getPort();
    SessionFile session = new SessionFile(dir.resolve("agent-session"));
    session.write(
        new SessionFile.Stored(
            base, "52:54:00:00:00:01", "b1", "session", java.time.Instant.now().plusSeconds(3600)));
    OperatorClient client =
        new OperatorClient(
            URI.create(base),
            "52:54:00:00:00:01",
            null,
            "b1",
            session,
            Optional.of(CaPin.parse(pin).sslContext()));
    assertThat(client.enrol()).isTrue();
    return client;
  }

  private static StatusReport report() {
    return StatusReport.builder().phase(MachinePhase.Bootstrap).build();
  }

  @Test
  void theOperatorsCaPinnedOnTheCommandLineIsTrusted() throws Exception {
    try (OperatorClient c = client(caPin)) {
      assertThat(c.report(report())).isTrue();
    }
    assertThat(reports).isEqualTo(1);
  }

  @Test
  void imageDownloadsTrustThePinnedCaAndOnlyThroughTheirOptions() throws Exception {
    String url = "https://127.0.0.1:" + server.getAddress().getPort() + "/images/a.squashfs";
    Backoff once = new Backoff(1, Duration.ofMillis(10), Duration.ofMillis(10));
    FetchOptions options =
        new FetchOptions(once, Duration.ofSeconds(10), new CancelSignal(), p -> {}, 0);
    try (ImageStream in =
        ImageSources.open(
            url,
            options.withTls(Optional.of(CaPin.parse(caPin).sslContext().getSocketFactory())))) {
      assertThat(new String(in.readAllBytes(), StandardCharsets.UTF_8))
          .isEqualTo("pinned image bytes");
    }
    // Without the pin in its options a download trusts the JDK's CAs only, whatever another
    // client of this JVM was given.
    assertThatThrownBy(
            () -> {
              try (ImageStream in = ImageSources.open(url, options)) {
                in.readAllBytes();
              }
            })
        .isInstanceOf(java.io.IOException.class)
        .hasStackTraceContaining("PKIX path building failed");
  }

  @Test
  void anyOtherCertificateIsRefusedAndNothingIsSent() throws Exception {
    try (OperatorClient c = client("sha256:" + "ab".repeat(32))) {
      assertThat(c.report(report())).as("not sent; to be retried").isFalse();
    }
    assertThat(reports).isZero();
  }

  @Test
  void malformedPinsAreRejectedWithTheExpectedForm() {
    for (String bad : List.of("md5:abcd", "sha256:xyz", "sha256:" + "a".repeat(63), "")) {
      assertThatThrownBy(() -> CaPin.parse(bad))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("sha256:");
    }
    assertThat(CaPin.parse(caPin.toUpperCase().replace("SHA256:", "sha256:"))).isNotNull();
  }

  /**
   * The review's attack: the holder of a leaf key of the pinned CA (here the operator's own) signs
   * a certificate for itself. The signatures chain up to the pin, but the leaf is no CA.
   */
  @Test
  void aChainThroughALeafOfThePinnedCaIsRefusedAndSaysWhy() throws Exception {
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=impostor",
        "-keyout",
        "impostor.key",
        "-out",
        "impostor.csr");
    sign("impostor.csr", "server.pem", "server.key", "ext", "impostor.pem");
    X509Certificate impostor = certificate("impostor.pem");
    X509Certificate leaf = certificate("server.pem");
    X509Certificate ca = certificate("ca.pem");
    impostor.verify(leaf.getPublicKey()); // the signature itself is good

    assertThatThrownBy(
            () ->
                CaPin.parse(caPin)
                    .checkServerTrusted(new X509Certificate[] {impostor, leaf, ca}, "RSA"))
        .isInstanceOf(java.security.cert.CertificateException.class)
        .hasMessageStartingWith(
            "the operator's certificate chain does not validate under the pinned CA (cb.ca):")
        .hasMessageContaining("CN=127.0.0.1");
    // The operator's own chain still validates, and a pinned server certificate stands alone.
    CaPin.parse(caPin).checkServerTrusted(new X509Certificate[] {leaf, ca}, "RSA");
    String leafPin =
        "sha256:"
            + HexFormat.of()
                .formatHex(MessageDigest.getInstance("SHA-256").digest(leaf.getEncoded()));
    CaPin.parse(leafPin).checkServerTrusted(new X509Certificate[] {leaf, ca}, "RSA");
  }

  @Test
  void aServerCertificateForClientsOnlyIsRefused() throws Exception {
    java.nio.file.Files.writeString(
        dir.resolve("client-ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=clientAuth\n");
    sign("server.csr", "ca.pem", "ca.key", "client-ext", "client.pem");
    assertThatThrownBy(
            () ->
                CaPin.parse(caPin)
                    .checkServerTrusted(
                        new X509Certificate[] {certificate("client.pem"), certificate("ca.pem")},
                        "RSA"))
        .hasMessageContaining("does not allow TLS server authentication");
  }

  /** Signs the request {@code csr} with {@code ca} and its key, for two days, with extensions. */
  private void sign(String csr, String ca, String caKey, String extensions, String out)
      throws Exception {
    openssl(
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca,
        "-CAkey",
        caKey,
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        extensions,
        "-out",
        out);
  }

  private X509Certificate certificate(String file) throws Exception {
    try (InputStream in = new FileInputStream(dir.resolve(file).toFile())) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
  }

  private void openssl(String... args) throws Exception {
    List<String> command = new java.util.ArrayList<>(List.of("openssl"));
    command.addAll(List.of(args));
    Process p;
    try {
      p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
    } catch (java.io.IOException e) {
      Assumptions.abort("openssl is not installed (Debian package openssl)");
      return;
    }
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as("openssl %s: %s", args[0], out).isZero();
  }
}
