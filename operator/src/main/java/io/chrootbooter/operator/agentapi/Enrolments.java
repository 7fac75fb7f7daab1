package io.chrootbooter.operator.agentapi;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.operator.OperatorConfig;
import io.chrootbooter.operator.liveness.AgentLeases;
import io.chrootbooter.operator.liveness.LivenessRules;
import io.chrootbooter.operator.machine.MachineDirectory;
import io.chrootbooter.operator.status.EventRecorder;
import io.chrootbooter.operator.status.Reason;
import io.chrootbooter.operator.token.BootCredentials;
import io.chrootbooter.operator.token.MachineTokens;
import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import java.net.HttpURLConnection;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import org.jboss.logging.Logger;

/**
 * Machine enrolment: exchanges the one-time boot nonce of an iPXE script for a session credential
 * of that boot, and checks sessions.
 *
 * <p><b>Where single use is recorded.</b> Replicas share nothing but the Kubernetes API, so the
 * record lives there: as the annotation {@value #ANNOTATION} of the machine's agent Lease (one per
 * MachineBoot, in its namespace, owned by it, see {@link AgentLeases}). That object already exists
 * for every machine that was heard from, goes with its MachineBoot, needs no RBAC beyond what the
 * liveness already has (get, create, patch), and is not the MachineBoot itself, whose spec belongs
 * to people and whose status to the reconciler and the status reports. The annotation holds, as
 * JSON: the SHA-256 of the current session's id, its boot id and source address, and the SHA-256 of
 * every nonce used within {@code cb.agent.nonce-ttl} (older nonces are refused by their issue time,
 * which their HMAC covers). An enrolment reads the Lease and writes the annotation with a merge
 * patch naming the resourceVersion it read (409 when anyone wrote in between), and then reads
 * again: two replicas exchanging the same nonce at once cannot both succeed, and a replica that
 * never saw a nonce used finds it in the record. Nonces themselves are not stored when issued: an
 * iPXE script costs no API write.
 *
 * <p><b>Revocation.</b> Every replica watches the agent Leases, so a session whose id is no longer
 * the record's (the machine enrolled again) is refused everywhere within the watch's delay. A
 * session the cache does not know yet (issued a moment ago by another replica) is looked up once.
 */
@ApplicationScoped
public class Enrolments {
  /** The Lease annotation holding a machine's enrolment record. */
  public static final String ANNOTATION = "boot.chrootbooter.io/enrolment";

  /** How long an agent may repeat the very enrolment whose answer it lost. */
  static final Duration REPEAT_WINDOW = Duration.ofSeconds(60);

  private static final Logger LOG = Logger.getLogger(Enrolments.class);
  private static final Pattern BEARER = Pattern.compile("^Bearer ([A-Za-z0-9_-]{16,128})$");
  private static final Pattern LEGACY_TOKEN = Pattern.compile("^[A-Za-z0-9_-]{43}$");
  private static final Pattern BOOT_ID = Pattern.compile("^[0-9A-Za-z-]{1,64}$");
  private static final int MAX_NONCES = 64;
  private static final int ATTEMPTS = 8;
  private static final Duration LOOKUP_INTERVAL = Duration.ofSeconds(1);
  private static final ObjectMapper JSON =
      new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

  private final KubernetesClient client;
  private final MachineTokens tokens;
  private final MachineDirectory directory;
  private final AgentLeases leases;
  private final EventRecorder events;
  private final Duration nonceTtl;
  private final Duration sessionTtl;
  private final Clock clock;
  private volatile SharedIndexInformer<Lease> informer;

  /**
   * Records this replica wrote, by Lease key, until its watch delivers the Lease: what a session it
   * just issued is checked against in the meantime.
   */
  private final Map<String, Record> written = new ConcurrentHashMap<>();

  /** When each Lease was last read directly for a session the cache did not know. */
  private final Map<String, Instant> lookedUp = new ConcurrentHashMap<>();

  @Inject
  Enrolments(
      KubernetesClient client,
      MachineTokens tokens,
      MachineDirectory directory,
      AgentLeases leases,
      EventRecorder events,
      OperatorConfig config) {
    this(
        client,
        tokens,
        directory,
        leases,
        events,
        config.agent().nonceTtl(),
        config.agent().sessionTtl(),
        Clock.systemUTC());
  }

  /** For tests: a second replica's view, with its own memory and cache. */
  public Enrolments(
      KubernetesClient client,
      MachineTokens tokens,
      MachineDirectory directory,
      AgentLeases leases,
      EventRecorder events,
      Duration nonceTtl,
      Duration sessionTtl,
      Clock clock) {
    this.client = client;
    this.tokens = tokens;
    this.directory = directory;
    this.leases = leases;
    this.events = events;
    this.nonceTtl = nonceTtl;
    this.sessionTtl = sessionTtl;
    this.clock = clock;
  }

  /** Starts the watch of the agent Leases. */
  public void start(@Observes StartupEvent event) {
    SharedIndexInformer<Lease> inf =
        directory.watched(client.leases()).withLabel(AgentLeases.LABEL, "true").runnableInformer(0);
    inf.addEventHandler(
        new ResourceEventHandler<>() {
          @Override
          public void onAdd(Lease lease) {
            written.remove(key(lease));
          }

          @Override
          public void onUpdate(Lease oldLease, Lease lease) {
            written.remove(key(lease));
          }

          @Override
          public void onDelete(Lease lease, boolean deletedFinalStateUnknown) {
            written.remove(key(lease));
          }
        });
    inf.start();
    informer = inf;
  }

  /** Stops the watch. */
  public void stop(@Observes ShutdownEvent event) {
    if (informer != null) {
      informer.stop();
    }
  }

  /** One used nonce, as recorded: its hash, until when it would have been valid, who used it. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  record UsedNonce(String hash, String until, String from, String bootId, String at) {}

  /** A machine's enrolment record: its current session and the nonces used recently. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  record Record(String session, String bootId, String from, String at, List<UsedNonce> nonces) {
    static final Record EMPTY = new Record(null, null, null, null, List.of());

    Record {
      nonces = nonces == null ? List.of() : List.copyOf(nonces);
    }
  }

  /** The outcome of an enrolment or a check: a refusal has an HTTP status and a message. */
  public record Verdict(
      int status, String message, String credential, Instant expires, String mac, String session) {
    static Verdict refused(int status, String message) {
      return new Verdict(status, message, null, null, null, null);
    }

    public boolean ok() {
      return status == 200;
    }

    @Override
    public String toString() {
      return "Verdict[" + status + ", " + message + "]";
    }
  }

  /**
   * Exchanges {@code nonce} for a session of this boot of the machine. Blocks on the API.
   *
   * @param from the source address of the request, for the record and the Events
   */
  public Verdict enrol(String mac, String nonce, String bootId, String from) {
    if (bootId == null || !BOOT_ID.matcher(bootId).matches()) {
      return Verdict.refused(400, "bootId must be 1 to 64 letters, digits or dashes");
    }
    Optional<MachineBoot> found = directory.byMac(mac);
    if (found.isEmpty()) {
      return Verdict.refused(404, "no MachineBoot names " + mac);
    }
    MachineBoot mb = found.get();
    Optional<Instant> issued =
        nonce == null
            ? Optional.empty()
            : tokens.nonceIssued(mac, mb.getMetadata().getUid(), nonce);
    if (issued.isEmpty()) {
      return Verdict.refused(
          401,
          "this is not a boot nonce the operator issued to "
              + mac
              + "; re-enrol: boot the machine again");
    }
    Instant now = clock.instant();
    Instant until = issued.get().plus(nonceTtl);
    if (!now.isBefore(until)) {
      return Verdict.refused(
          401,
          "the boot nonce expired at "
              + until.truncatedTo(ChronoUnit.SECONDS)
              + " (cb.agent.nonce-ttl "
              + nonceTtl
              + " after the iPXE script was served); re-enrol: boot the machine again");
    }
    String hash = BootCredentials.hash(nonce);
    for (int attempt = 1; ; attempt++) {
      Lease lease = leases.readOrCreate(mb);
      Record record = read(lease);
      List<UsedNonce> kept = new ArrayList<>();
      UsedNonce used = null;
      for (UsedNonce n : record.nonces()) {
        if (n.hash().equals(hash)) {
          used = n;
        }
        if (parse(n.until()).map(now::isBefore).orElse(false)) {
          kept.add(n);
        }
      }
      if (used != null && !isRepeat(used, bootId, from, now)) {
        return replayed(mb, used, bootId, from);
      }
      if (used == null) {
        kept.add(new UsedNonce(hash, until.toString(), from, bootId, now.toString()));
      }
      kept.sort(Comparator.comparing(UsedNonce::at));
      while (kept.size() > MAX_NONCES) {
        kept.remove(0);
      }
      BootCredentials.Session session = tokens.newSession(mac, now.plus(sessionTtl));
      Record next = new Record(session.idHash(), bootId, from, now.toString(), kept);
      try {
        write(lease, next);
      } catch (KubernetesClientException e) {
        if (e.getCode() == HttpURLConnection.HTTP_CONFLICT && attempt < ATTEMPTS) {
          continue; // someone wrote in between: read again, the nonce may be used now
        }
        throw e;
      }
      written.put(key(lease), next);
      LOG.infof(
          "%s/%s enrolled from %s (boot %s)",
          mb.getMetadata().getNamespace(), mb.getMetadata().getName(), from, bootId);
      return new Verdict(
          200, null, tokens.credential(session), session.expires(), mac, session.idHash());
    }
  }

  /**
   * The agent that enrolled from this address for this boot a moment ago asks again: it lost the
   * answer (a connection that broke), so it gets a new session, which replaces the first.
   */
  private static boolean isRepeat(UsedNonce used, String bootId, String from, Instant now) {
    return bootId.equals(used.bootId())
        && from.equals(used.from())
        && parse(used.at()).map(at -> now.isBefore(at.plus(REPEAT_WINDOW))).orElse(false);
  }

  private Verdict replayed(MachineBoot mb, UsedNonce used, String bootId, String from) {
    String message =
        "the boot nonce of "
            + mb.getSpec().macAddress()
            + " was presented again from "
            + from
            + " (boot "
            + bootId
            + "); it had been exchanged from "
            + used.from()
            + " (boot "
            + used.bootId()
            + ") at "
            + used.at()
            + ". Whoever enrolled first holds the session: if the machine itself was refused, it"
            + " lost the race to a bystander";
    events.record(mb, "Warning", Reason.EnrolmentReplayed.name(), message);
    LOG.warnf("%s/%s: %s", mb.getMetadata().getNamespace(), mb.getMetadata().getName(), message);
    return Verdict.refused(
        409,
        "enrolment refused: this boot nonce was used already, from "
            + used.from()
            + " at "
            + used.at()
            + "; if this machine did not enrol before, someone else did as it (see the"
            + " MachineBoot's events); boot the machine again");
  }

  /**
   * Renews a session: a credential with the same id and a new expiry. {@code authorization} must be
   * a valid session of {@code mac}. May block on the API.
   */
  public Verdict renew(String mac, String authorization) {
    Verdict checked = check(mac, authorization, true);
    if (!checked.ok()) {
      return checked;
    }
    BootCredentials.Session current =
        tokens.parseSession(bearer(authorization).orElseThrow()).orElseThrow();
    var renewed = new BootCredentials.Session(mac, current.id(), clock.instant().plus(sessionTtl));
    return new Verdict(
        200, null, tokens.credential(renewed), renewed.expires(), mac, renewed.idHash());
  }

  /**
   * Checks {@code Authorization: Bearer <session>}: 401 when missing, garbled, forged, expired or
   * revoked (a legacy {@code cb.token} among them), 403 when it is a valid session of another
   * machine than {@code mac} (null: any machine). When the session is newer than what this
   * replica's cache knows, the Lease is read once; with {@code mayBlock} false, null is returned
   * instead, and the caller asks again where it may block.
   */
  public Verdict check(String mac, String authorization, boolean mayBlock) {
    Optional<String> credential = bearer(authorization);
    if (credential.isEmpty()) {
      return Verdict.refused(401, "missing or malformed bearer credential");
    }
    Optional<BootCredentials.Session> parsed = tokens.parseSession(credential.get());
    if (parsed.isEmpty()) {
      if (LEGACY_TOKEN.matcher(credential.get()).matches()) {
        return Verdict.refused(
            401,
            "machine tokens (cb.token) are no longer accepted; re-enrol: boot the machine again");
      }
      return Verdict.refused(401, "invalid session; re-enrol: boot the machine again");
    }
    BootCredentials.Session session = parsed.get();
    if (!clock.instant().isBefore(session.expires())) {
      return Verdict.refused(
          401,
          "the session expired at " + session.expires() + "; re-enrol: boot the machine again");
    }
    if (mac != null && !mac.equals(session.mac())) {
      return Verdict.refused(403, "this credential belongs to another machine");
    }
    Optional<MachineBoot> mb = directory.byMac(session.mac());
    if (mb.isEmpty()) {
      return Verdict.refused(401, "no MachineBoot names " + session.mac() + " any more");
    }
    String key = key(mb.get());
    String hash = session.idHash();
    if (hash.equals(current(key).session())) {
      return new Verdict(200, null, null, session.expires(), session.mac(), hash);
    }
    Instant now = clock.instant();
    Instant last = lookedUp.get(key);
    if (last == null || !now.isBefore(last.plus(LOOKUP_INTERVAL))) {
      if (!mayBlock) {
        return null;
      }
      lookedUp.put(key, now);
      Lease lease =
          client
              .leases()
              .inNamespace(mb.get().getMetadata().getNamespace())
              .withName(LivenessRules.leaseName(mb.get().getMetadata().getName()))
              .get();
      Record record = read(lease);
      if (hash.equals(record.session())) {
        written.put(key, record);
        return new Verdict(200, null, null, session.expires(), session.mac(), hash);
      }
    }
    return Verdict.refused(
        401,
        "the session was revoked: the machine enrolled again (a new boot); re-enrol: boot the"
            + " machine again");
  }

  /**
   * Whether this replica knows that the session whose id has the hash {@code session} is no longer
   * the current one of {@code mac} (it enrolled again). Never blocks; false while it knows no
   * record (a session issued a moment ago by another replica is not revoked).
   */
  public boolean revoked(String mac, String session) {
    Optional<MachineBoot> mb = directory.byMac(mac);
    if (mb.isEmpty()) {
      return true;
    }
    String current = current(key(mb.get())).session();
    return current != null && !current.equals(session);
  }

  /**
   * The agent Lease of {@code mb} as this replica's watch holds it; empty when the watch has none
   * (yet). Never blocks.
   */
  public Optional<Lease> watchedLease(MachineBoot mb) {
    SharedIndexInformer<Lease> inf = informer;
    return inf == null
        ? Optional.empty()
        : Optional.ofNullable(
            inf.getStore()
                .getByKey(
                    mb.getMetadata().getNamespace()
                        + "/"
                        + LivenessRules.leaseName(mb.getMetadata().getName())));
  }

  /** The record this replica knows for a Lease: what it wrote itself, or what its watch holds. */
  private Record current(String key) {
    Record mine = written.get(key);
    if (mine != null) {
      return mine;
    }
    SharedIndexInformer<Lease> inf = informer;
    return inf == null ? Record.EMPTY : read(inf.getStore().getByKey(key));
  }

  private void write(Lease lease, Record record) {
    String patch;
    try {
      // A merge patch that names the resourceVersion read is conditional on it: 409 when the
      // Lease changed since (a renewal, or another replica's enrolment). Patch is a verb the
      // operator holds on Leases already; the rest of the Lease is left as it is.
      patch =
          JSON.writeValueAsString(
              Map.of(
                  "metadata",
                  Map.of(
                      "resourceVersion",
                      lease.getMetadata().getResourceVersion(),
                      "annotations",
                      Map.of(ANNOTATION, JSON.writeValueAsString(record)))));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("an enrolment record is plain JSON", e);
    }
    client
        .leases()
        .inNamespace(lease.getMetadata().getNamespace())
        .withName(lease.getMetadata().getName())
        .patch(PatchContext.of(PatchType.JSON_MERGE), patch);
  }

  private static Record read(Lease lease) {
    if (lease == null || lease.getMetadata().getAnnotations() == null) {
      return Record.EMPTY;
    }
    String json = lease.getMetadata().getAnnotations().get(ANNOTATION);
    if (json == null) {
      return Record.EMPTY;
    }
    try {
      Record record = JSON.readValue(json, Record.class);
      return record == null ? Record.EMPTY : record;
    } catch (JsonProcessingException e) {
      // Someone edited it by hand: no session is current, and no nonce counts as used, which
      // only a person with write access to the Lease can bring about.
      LOG.warnf(
          "the %s annotation of Lease %s/%s is not an enrolment record; ignored",
          ANNOTATION, lease.getMetadata().getNamespace(), lease.getMetadata().getName());
      return Record.EMPTY;
    }
  }

  private static Optional<String> bearer(String authorization) {
    var m = authorization == null ? null : BEARER.matcher(authorization);
    return m != null && m.matches() ? Optional.of(m.group(1)) : Optional.empty();
  }

  private static Optional<Instant> parse(String instant) {
    try {
      return instant == null ? Optional.empty() : Optional.of(Instant.parse(instant));
    } catch (java.time.format.DateTimeParseException e) {
      return Optional.empty();
    }
  }

  private static String key(Lease lease) {
    return lease.getMetadata().getNamespace() + "/" + lease.getMetadata().getName();
  }

  private static String key(MachineBoot mb) {
    return mb.getMetadata().getNamespace()
        + "/"
        + LivenessRules.leaseName(mb.getMetadata().getName());
  }
}
