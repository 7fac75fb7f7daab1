package io.chrootbooter.operator.image;

import io.chrootbooter.operator.OperatorConfig;
import io.quarkus.runtime.Startup;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.http.HttpClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;
import org.jboss.logging.Logger;

/**
 * Whom the downloads trust over https: the JVM's CAs (its default trust store), plus the PEM bundle
 * of {@code cb.store.ca-bundle}, plus a BootImage's own {@code spec.source.caBundle}. Extra CAs are
 * added to the default ones, never in their place, and host names are verified whatever the CAs:
 * {@link HttpClient} identifies the endpoint as HTTPS (RFC 2818 §3.1) unless a system property
 * turns that off, which the operator never sets.
 *
 * <p>Read once at start: a bundle that cannot be read or holds no certificate stops the operator
 * with a message naming the setting and the file, rather than letting every download fail later.
 */
@Startup
@ApplicationScoped
public class SourceTrust {
  private static final Logger LOG = Logger.getLogger(SourceTrust.class);

  private final List<X509Certificate> operatorCas;
  private final HttpClient shared;

  SourceTrust(OperatorConfig config) {
    this.operatorCas = config.store().caBundle().map(SourceTrust::load).orElse(List.of());
    this.shared = newClient(operatorCas);
  }

  /**
   * The client for a download whose BootImage adds {@code imageCas}; the shared one when it adds
   * none. A client with image CAs is built per download: downloads are rare, and Java 17's client
   * releases its selector thread when it is no longer referenced.
   */
  HttpClient client(List<X509Certificate> imageCas) {
    if (imageCas.isEmpty()) {
      return shared;
    }
    List<X509Certificate> all = new ArrayList<>(operatorCas);
    all.addAll(imageCas);
    return newClient(all);
  }

  /** The certificates of a PEM (or DER) bundle; none at all is an error too. */
  static List<X509Certificate> parse(byte[] bundle) throws CertificateException {
    var certificates =
        CertificateFactory.getInstance("X.509")
            .generateCertificates(new ByteArrayInputStream(bundle));
    if (certificates.isEmpty()) {
      throw new CertificateException("it holds no certificate (-----BEGIN CERTIFICATE-----)");
    }
    return certificates.stream().map(X509Certificate.class::cast).toList();
  }

  private static List<X509Certificate> load(Path file) {
    try {
      List<X509Certificate> cas = parse(Files.readAllBytes(file));
      LOG.infof(
          "Trusting %d CA certificate(s) of %s (cb.store.ca-bundle) besides the JVM's",
          cas.size(), file);
      return cas;
    } catch (IOException e) {
      throw new IllegalArgumentException(
          "cb.store.ca-bundle: cannot read " + file + ": " + e.getClass().getSimpleName(), e);
    } catch (CertificateException e) {
      throw new IllegalArgumentException(
          "cb.store.ca-bundle: " + file + " is not a PEM certificate bundle: " + e.getMessage(), e);
    }
  }

  private static HttpClient newClient(List<X509Certificate> extraCas) {
    HttpClient.Builder builder =
        HttpClient.newBuilder()
            .connectTimeout(Duration.ofSeconds(10))
            // Mirror follows redirects itself, so that SourcePolicy judges every hop's host.
            .followRedirects(HttpClient.Redirect.NEVER);
    if (!extraCas.isEmpty()) {
      builder.sslContext(sslContext(extraCas));
    }
    return builder.build();
  }

  /** A TLS context trusting the JVM's default CAs and {@code extraCas}. */
  static SSLContext sslContext(List<X509Certificate> extraCas) {
    try {
      TrustManagerFactory defaults =
          TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      defaults.init((KeyStore) null);
      KeyStore anchors = KeyStore.getInstance(KeyStore.getDefaultType());
      anchors.load(null, null);
      int i = 0;
      for (var tm : defaults.getTrustManagers()) {
        if (tm instanceof X509TrustManager x509) {
          for (X509Certificate ca : x509.getAcceptedIssuers()) {
            anchors.setCertificateEntry("default-" + i++, ca);
          }
        }
      }
      for (X509Certificate ca : extraCas) {
        anchors.setCertificateEntry("extra-" + i++, ca);
      }
      TrustManagerFactory all =
          TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      all.init(anchors);
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(null, all.getTrustManagers(), null);
      return context;
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalStateException("every Java runtime builds a PKIX trust store", e);
    }
  }
}
