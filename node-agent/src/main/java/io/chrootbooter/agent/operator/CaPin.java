package io.chrootbooter.agent.operator;

import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * TLS trust pinned to one CA: {@code cb.ca=sha256:<hex>} on the kernel command line names the
 * SHA-256 of the DER certificate of the CA (or of the server certificate itself) that the operator
 * presents. A chain is trusted when one of its certificates has that fingerprint and the
 * certificates below it form a path that the JDK's PKIX validator ({@link CertPathValidator})
 * accepts with the pinned certificate as its only trust anchor: signatures, validity, basic
 * constraints (every certificate that signs another is a CA), key usage and path length. A leaf
 * certificate of the pinned CA therefore cannot sign a certificate of its own. The server's
 * certificate must allow TLS server authentication when it names extended key usages. No system
 * trust store is needed in the bootstrap, and a machine trusts only its own operator.
 */
public final class CaPin implements X509TrustManager {
  private final byte[] fingerprint;

  private CaPin(byte[] fingerprint) {
    this.fingerprint = fingerprint;
  }

  /** Parses {@code sha256:<64 hex digits>} (colons between byte pairs allowed). */
  public static CaPin parse(String value) {
    String v = value.trim();
    if (!v.toLowerCase(Locale.ROOT).startsWith("sha256:")) {
      throw new IllegalArgumentException(
          "cb.ca \"" + v + "\" does not start with sha256: (expected sha256:<64 hex digits>)");
    }
    String hex = v.substring("sha256:".length()).replace(":", "").toLowerCase(Locale.ROOT);
    if (!hex.matches("[0-9a-f]{64}")) {
      throw new IllegalArgumentException(
          "cb.ca \"" + v + "\" is not sha256: followed by 64 hex digits");
    }
    return new CaPin(HexFormat.of().parseHex(hex));
  }

  /** An SSL context trusting exactly this pin. */
  public SSLContext sslContext() {
    try {
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(null, new TrustManager[] {this}, new SecureRandom());
      return context;
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("the JDK cannot make a TLS context", e);
    }
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType)
      throws CertificateException {
    if (chain == null || chain.length == 0) {
      throw new CertificateException("the server sent no certificate");
    }
    for (int i = 0; i < chain.length; i++) {
      if (MessageDigest.isEqual(sha256(chain[i]), fingerprint)) {
        verifyBelow(chain, i);
        chain[0].checkValidity();
        return;
      }
    }
    throw new CertificateException(
        "no certificate of the server's chain has the pinned SHA-256 (cb.ca); the server"
            + " presented "
            + HexFormat.of().formatHex(sha256(chain[0]))
            + " for "
            + chain[0].getSubjectX500Principal().getName());
  }

  /** TLS web server authentication (RFC 5280 §4.2.1.12). */
  private static final String SERVER_AUTH = "1.3.6.1.5.5.7.3.1";

  private static final String ANY_EXTENDED_KEY_USAGE = "2.5.29.37.0";

  /**
   * The certificates below the pinned one validate as a PKIX path with the pinned one as the only
   * trust anchor; a pinned server certificate (nothing below it) stands on its own.
   */
  private static void verifyBelow(X509Certificate[] chain, int pinned) throws CertificateException {
    if (pinned == 0) {
      return;
    }
    try {
      CertPath path =
          CertificateFactory.getInstance("X.509")
              .generateCertPath(Arrays.asList(Arrays.copyOfRange(chain, 0, pinned)));
      PKIXParameters parameters = new PKIXParameters(Set.of(new TrustAnchor(chain[pinned], null)));
      parameters.setRevocationEnabled(false); // no CRL or OCSP reaches the bootstrap
      CertPathValidator.getInstance("PKIX").validate(path, parameters);
    } catch (CertPathValidatorException e) {
      String at =
          e.getIndex() >= 0 && e.getIndex() < pinned
              ? " (certificate " + chain[e.getIndex()].getSubjectX500Principal().getName() + ")"
              : "";
      throw new CertificateException(
          "the operator's certificate chain does not validate under the pinned CA (cb.ca): "
              + e.getMessage()
              + at,
          e);
    } catch (GeneralSecurityException e) {
      throw new CertificateException("cannot validate the operator's certificate chain", e);
    }
    List<String> usages = chain[0].getExtendedKeyUsage();
    if (usages != null
        && !usages.contains(SERVER_AUTH)
        && !usages.contains(ANY_EXTENDED_KEY_USAGE)) {
      throw new CertificateException(
          "the operator's certificate "
              + chain[0].getSubjectX500Principal().getName()
              + " does not allow TLS server authentication (extended key usage "
              + usages
              + ")");
    }
  }

  static byte[] sha256(X509Certificate certificate) throws CertificateException {
    try {
      return MessageDigest.getInstance("SHA-256").digest(certificate.getEncoded());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK has no SHA-256", e);
    }
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType)
      throws CertificateException {
    throw new CertificateException("the agent does not accept client connections");
  }

  @Override
  public X509Certificate[] getAcceptedIssuers() {
    return new X509Certificate[0];
  }
}
