package io.chrootbooter.operator.token;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.InvalidKeyException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.Base64;
import java.util.HexFormat;
import java.util.Optional;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The two credentials of a machine's boot, both made with the {@link TokenKeys} of the key Secret
 * and both {@code base64url} without padding:
 *
 * <ul>
 *   <li>a <b>boot nonce</b> ({@code cb.nonce=} in the iPXE script): {@code 0x01 ‖ random(16) ‖
 *       issued(8, epoch seconds) ‖ HMAC-SHA256(key, "cb-nonce" ‖ mac ‖ uid ‖ the bytes before)},
 *       where uid is the MachineBoot's {@code metadata.uid}. The HMAC binds it to one MAC, one
 *       MachineBoot object and its issue time; that it is used only once is recorded, as its
 *       SHA-256, when it is exchanged (see {@code Enrolments}), on the agent Lease the MachineBoot
 *       owns: a MachineBoot deleted and created again has a new uid, so the nonces of its
 *       predecessor, whose record went with it, are refused. Issuing one writes nothing, so that a
 *       rack's machines booting at once cost no API writes for their scripts.
 *   <li>a <b>session</b> (the agent's bearer credential): {@code 0x02 ‖ mac(6) ‖ id(16) ‖
 *       expires(8, epoch seconds) ‖ HMAC-SHA256(key, "cb-session" ‖ the bytes before)}. The MAC in
 *       it tells a session of another machine (403) from a forged one (401); the id is revoked by
 *       the machine's next enrolment.
 * </ul>
 *
 * And one credential between operator replicas: a <b>forward</b> ({@code 0x03 ‖ random(16) ‖
 * expires(8, epoch seconds) ‖ HMAC-SHA256(key, "cb-replica" ‖ binding ‖ the bytes before)}), where
 * the binding names the replica it is for, what is asked, the machine and the user another replica
 * has checked (see {@code console.ReplicaForwards}).
 *
 * <p>The prefixes keep a nonce from ever verifying as a session or a forward, and the other way
 * round.
 */
public final class BootCredentials {
  private static final String ALGORITHM = "HmacSHA256";
  private static final byte NONCE = 1;
  private static final byte SESSION = 2;
  private static final byte REPLICA = 3;
  private static final int REPLICA_BODY = 1 + 16 + 8;
  private static final byte[] REPLICA_CONTEXT = "cb-replica".getBytes(StandardCharsets.US_ASCII);
  private static final int NONCE_BODY = 1 + 16 + 8;
  private static final int SESSION_BODY = 1 + 6 + 16 + 8;
  private static final int TAG = 32;
  private static final byte[] NONCE_CONTEXT = "cb-nonce".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] SESSION_CONTEXT = "cb-session".getBytes(StandardCharsets.US_ASCII);

  /** Length of an encoded nonce. */
  public static final int NONCE_CHARS = encodedLength(NONCE_BODY + TAG);

  /** Length of an encoded session. */
  public static final int SESSION_CHARS = encodedLength(SESSION_BODY + TAG);

  private BootCredentials() {}

  /** A session's content once its signature checked out. */
  public record Session(String mac, byte[] id, Instant expires) {
    public Session {
      id = id.clone();
    }

    @Override
    public byte[] id() {
      return id.clone();
    }

    /** The SHA-256 of the id, as it is recorded. */
    public String idHash() {
      return hash(id);
    }

    @Override
    public String toString() {
      return "Session[" + mac + ", expires " + expires + "]";
    }
  }

  /**
   * A fresh nonce for {@code mac} (lower-case colon form) and the MachineBoot {@code uid}, issued
   * at {@code now}.
   */
  public static String nonce(
      TokenKeys keys, String mac, String uid, Instant now, SecureRandom random) {
    ByteBuffer body = ByteBuffer.allocate(NONCE_BODY + TAG);
    body.put(NONCE);
    byte[] r = new byte[16];
    random.nextBytes(r);
    body.put(r);
    body.putLong(now.getEpochSecond());
    byte[] head = java.util.Arrays.copyOf(body.array(), NONCE_BODY);
    body.put(hmac(keys.current(), NONCE_CONTEXT, machine(mac, uid), head));
    return encode(body.array());
  }

  /**
   * When {@code nonce} was issued, if it was issued for {@code mac} and the MachineBoot {@code uid}
   * with the current or the previous key; empty for anything else (another machine's nonce, one of
   * a deleted MachineBoot of the same MAC, a forged or garbled one).
   */
  public static Optional<Instant> nonceIssued(
      TokenKeys keys, String mac, String uid, String nonce) {
    byte[] bytes = decode(nonce, NONCE_BODY + TAG);
    if (bytes == null || bytes[0] != NONCE) {
      return Optional.empty();
    }
    byte[] head = java.util.Arrays.copyOf(bytes, NONCE_BODY);
    byte[] tag = java.util.Arrays.copyOfRange(bytes, NONCE_BODY, bytes.length);
    if (!verify(keys, tag, NONCE_CONTEXT, machine(mac, uid), head)) {
      return Optional.empty();
    }
    return Optional.of(Instant.ofEpochSecond(ByteBuffer.wrap(bytes, 17, 8).getLong()));
  }

  /** The MAC's 6 bytes and the uid's UTF-8 bytes: what a nonce is bound to. */
  private static byte[] machine(String mac, String uid) {
    byte[] m = macBytes(mac);
    byte[] u = (uid == null ? "" : uid).getBytes(StandardCharsets.UTF_8);
    byte[] both = java.util.Arrays.copyOf(m, m.length + u.length);
    System.arraycopy(u, 0, both, m.length, u.length);
    return both;
  }

  /** A session credential for {@code session}, signed with the current key. */
  public static String session(TokenKeys keys, Session session) {
    ByteBuffer body = ByteBuffer.allocate(SESSION_BODY + TAG);
    body.put(SESSION);
    body.put(macBytes(session.mac()));
    byte[] id = session.id();
    if (id.length != 16) {
      throw new IllegalArgumentException("a session id is 16 bytes");
    }
    body.put(id);
    body.putLong(session.expires().getEpochSecond());
    byte[] head = java.util.Arrays.copyOf(body.array(), SESSION_BODY);
    body.put(hmac(keys.current(), SESSION_CONTEXT, new byte[0], head));
    return encode(body.array());
  }

  /**
   * The session {@code credential} holds, when its signature is one of the current or the previous
   * key (expired or not: the caller tells the two apart); empty for anything else.
   */
  public static Optional<Session> parseSession(TokenKeys keys, String credential) {
    byte[] bytes = decode(credential, SESSION_BODY + TAG);
    if (bytes == null || bytes[0] != SESSION) {
      return Optional.empty();
    }
    byte[] head = java.util.Arrays.copyOf(bytes, SESSION_BODY);
    byte[] tag = java.util.Arrays.copyOfRange(bytes, SESSION_BODY, bytes.length);
    if (!verify(keys, tag, SESSION_CONTEXT, new byte[0], head)) {
      return Optional.empty();
    }
    String mac = HexFormat.ofDelimiter(":").formatHex(bytes, 1, 7);
    byte[] id = java.util.Arrays.copyOfRange(bytes, 7, 23);
    Instant expires = Instant.ofEpochSecond(ByteBuffer.wrap(bytes, 23, 8).getLong());
    return Optional.of(new Session(mac, id, expires));
  }

  /**
   * A forward bound to {@code binding}, good until {@code expires}, signed with the current key.
   */
  public static String forward(
      TokenKeys keys, byte[] binding, Instant expires, SecureRandom random) {
    ByteBuffer body = ByteBuffer.allocate(REPLICA_BODY + TAG);
    body.put(REPLICA);
    byte[] r = new byte[16];
    random.nextBytes(r);
    body.put(r);
    body.putLong(expires.getEpochSecond());
    byte[] head = java.util.Arrays.copyOf(body.array(), REPLICA_BODY);
    body.put(hmac(keys.current(), REPLICA_CONTEXT, binding, head));
    return encode(body.array());
  }

  /**
   * When the forward {@code credential} expires, if the current or the previous key signed it for
   * {@code binding}; empty for anything else (another binding, a forged or garbled one).
   */
  public static Optional<Instant> forwardExpires(
      TokenKeys keys, byte[] binding, String credential) {
    byte[] bytes = decode(credential, REPLICA_BODY + TAG);
    if (bytes == null || bytes[0] != REPLICA) {
      return Optional.empty();
    }
    byte[] head = java.util.Arrays.copyOf(bytes, REPLICA_BODY);
    byte[] tag = java.util.Arrays.copyOfRange(bytes, REPLICA_BODY, bytes.length);
    if (!verify(keys, tag, REPLICA_CONTEXT, binding, head)) {
      return Optional.empty();
    }
    return Optional.of(Instant.ofEpochSecond(ByteBuffer.wrap(bytes, 17, 8).getLong()));
  }

  /** {@code base64url(SHA-256(value))}: how nonces and session ids are recorded. */
  public static String hash(String value) {
    return hash(value.getBytes(StandardCharsets.US_ASCII));
  }

  /** {@code base64url(SHA-256(bytes))}. */
  public static String hash(byte[] bytes) {
    try {
      return encode(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
    }
  }

  private static boolean verify(
      TokenKeys keys, byte[] tag, byte[] context, byte[] mac, byte[] head) {
    boolean ok = MessageDigest.isEqual(hmac(keys.current(), context, mac, head), tag);
    // Both keys are always checked, so the time taken does not tell which one matched.
    boolean okPrevious =
        keys.previous()
            .map(key -> MessageDigest.isEqual(hmac(key, context, mac, head), tag))
            .orElse(false);
    return ok | okPrevious;
  }

  private static byte[] macBytes(String mac) {
    if (mac == null || !mac.matches("([0-9a-f]{2}:){5}[0-9a-f]{2}")) {
      throw new IllegalArgumentException("not a lower-case colon-form MAC");
    }
    return HexFormat.ofDelimiter(":").parseHex(mac);
  }

  private static byte[] hmac(byte[] key, byte[] context, byte[] mac, byte[] head) {
    try {
      Mac hmac = Mac.getInstance(ALGORITHM);
      hmac.init(new SecretKeySpec(key, ALGORITHM));
      hmac.update(context);
      hmac.update(mac);
      return hmac.doFinal(head);
    } catch (NoSuchAlgorithmException | InvalidKeyException e) {
      throw new IllegalStateException("HmacSHA256 is part of every Java runtime", e);
    }
  }

  private static byte[] decode(String value, int length) {
    if (value == null || value.length() != encodedLength(length)) {
      return null;
    }
    try {
      byte[] bytes = Base64.getUrlDecoder().decode(value);
      return bytes.length == length ? bytes : null;
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  private static String encode(byte[] bytes) {
    return Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
  }

  private static int encodedLength(int bytes) {
    return (bytes * 4 + 2) / 3;
  }
}
