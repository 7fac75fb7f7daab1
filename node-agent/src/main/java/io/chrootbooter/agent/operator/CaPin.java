package io.chrootbooter.agent.operator;

import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.HexFormat;
import java.util.Locale;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * TLS trust pinned to one CA: {@code cb.ca=sha256:<hex>} on the kernel command line names the
 * SHA-256 of the DER certificate of the CA (or of the server certificate itself) that the operator
 * presents. A chain is trusted when one of its certificates has that fingerprint and every
 * certificate below it is signed by the next one up. No system trust store is needed in the
 * bootstrap, and a machine trusts only its own operator.
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

  /** Each certificate below the pinned one is signed by its successor. */
  private static void verifyBelow(X509Certificate[] chain, int pinned) throws CertificateException {
    for (int i = 0; i < pinned; i++) {
      try {
        chain[i].verify(chain[i + 1].getPublicKey());
      } catch (GeneralSecurityException e) {
        throw new CertificateException(
            "certificate "
                + chain[i].getSubjectX500Principal().getName()
                + " is not signed by "
                + chain[i + 1].getSubjectX500Principal().getName(),
            e);
      }
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
