package io.chrootbooter.operator.image;

import io.chrootbooter.api.v1alpha1.CaBundleRef;
import io.chrootbooter.operator.OperatorConfig;
import io.chrootbooter.operator.SpecRules;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import io.fabric8.kubernetes.client.informers.cache.Cache;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * The {@code spec.source.caBundle} Secrets, read through one informer per named Secret (a watch
 * with {@code fieldSelector=metadata.name=…}): the operator caches only the Secrets BootImages
 * name, never every Secret of a namespace, and RBAC may restrict it to those names ({@code
 * resourceNames} covers a list/watch by name). A BootImage only ever reads a Secret of its own
 * namespace, never the operator's machine-token Secret, and no byte of a Secret reaches a status,
 * an event or a log: messages name the Secret, the key and the rule.
 *
 * <p>Any change of a named Secret — created, edited, deleted — is announced for every BootImage
 * naming it, so one that waits for it or failed on a certificate looks again.
 */
@ApplicationScoped
public class CaBundleSecrets {
  private static final Logger LOG = Logger.getLogger(CaBundleSecrets.class);
  private static final long START_TIMEOUT_SECONDS = 30;

  /** A Secret by namespace and name. */
  record SecretId(String namespace, String name) {
    @Override
    public String toString() {
      return "Secret " + namespace + "/" + name;
    }
  }

  /** What the Secret of a caBundle offers. */
  sealed interface Lookup permits Found, Waiting, Invalid {}

  /** The CA certificates of the Secret's key. */
  record Found(List<X509Certificate> certificates) implements Lookup {
    Found {
      certificates = List.copyOf(certificates);
    }
  }

  /** The Secret cannot be read yet: it does not exist, or the operator may not read it. */
  record Waiting(String message) implements Lookup {}

  /** The Secret exists but its key is missing or holds no certificate. */
  record Invalid(String message) implements Lookup {}

  private final KubernetesClient client;
  private final SecretId tokenSecret;
  private final Map<SecretId, SharedIndexInformer<Secret>> informers = new ConcurrentHashMap<>();
  private final Map<ResourceID, SecretId> users = new ConcurrentHashMap<>();
  private volatile Consumer<ResourceID> listener = id -> {};

  CaBundleSecrets(KubernetesClient client, OperatorConfig config) {
    this.client = client;
    this.tokenSecret =
        new SecretId(
            config.tokens().namespace().orElse(client.getNamespace()),
            config.tokens().secretName());
  }

  void stop(@Observes ShutdownEvent event) {
    informers.values().forEach(SharedIndexInformer::stop);
    informers.clear();
  }

  /** Called with each BootImage whose caBundle Secret changed. */
  public void onChange(Consumer<ResourceID> listener) {
    this.listener = listener;
  }

  /**
   * The spec violation of naming the operator's machine-token Secret, if {@code ref} does: that
   * Secret holds the key every boot nonce and session is signed with, and is nobody's CA bundle.
   */
  Optional<String> reserved(String namespace, CaBundleRef ref) {
    if (ref == null || !tokenSecret.equals(new SecretId(namespace, ref.secretName()))) {
      return Optional.empty();
    }
    return Optional.of(
        "spec.source.caBundle.secretName: "
            + SpecRules.quote(ref.secretName())
            + " is the operator's machine-token Secret, never a CA bundle");
  }

  /** The CA certificates {@code ref} names for the BootImage {@code image}, watched from now on. */
  synchronized Lookup lookup(ResourceID image, CaBundleRef ref) {
    SecretId id = new SecretId(image.getNamespace().orElseThrow(), ref.secretName());
    SecretId before = users.put(image, id);
    if (before != null && !before.equals(id)) {
      stopUnused(before);
    }
    SharedIndexInformer<Secret> informer = informers.get(id);
    if (informer == null) {
      try {
        informer = start(id);
      } catch (StartFailure e) {
        return new Waiting(e.getMessage());
      }
      informers.put(id, informer);
    }
    Secret secret = informer.getStore().getByKey(Cache.namespaceKeyFunc(id.namespace(), id.name()));
    String what = id + " (spec.source.caBundle)";
    if (secret == null) {
      return new Waiting("waiting for " + what + ": it does not exist");
    }
    String key = ref.keyOrDefault();
    Map<String, String> data = secret.getData() == null ? Map.of() : secret.getData();
    String value = data.get(key);
    if (value == null) {
      return new Invalid(
          id
              + " has no key "
              + SpecRules.quote(key)
              + " (spec.source.caBundle.key); its keys: "
              + (data.isEmpty() ? "none" : String.join(", ", new TreeSet<>(data.keySet()))));
    }
    byte[] bundle;
    try {
      bundle = Base64.getDecoder().decode(value);
    } catch (IllegalArgumentException e) {
      return new Invalid(id + " key " + SpecRules.quote(key) + " is not base64");
    }
    try {
      return new Found(SourceTrust.parse(bundle));
    } catch (CertificateException e) {
      return new Invalid(
          id
              + " key "
              + SpecRules.quote(key)
              + " is not a PEM certificate bundle: "
              + SpecRules.quote(String.valueOf(e.getMessage())));
    }
  }

  /** Stops watching for {@code image}: it names no Secret, has its image, or is gone. */
  synchronized void release(ResourceID image) {
    SecretId before = users.remove(image);
    if (before != null) {
      stopUnused(before);
    }
  }

  private void stopUnused(SecretId id) {
    if (!users.containsValue(id)) {
      Optional.ofNullable(informers.remove(id)).ifPresent(SharedIndexInformer::stop);
    }
  }

  private static final class StartFailure extends Exception {
    StartFailure(String message, Throwable cause) {
      super(message, cause);
    }
  }

  private SharedIndexInformer<Secret> start(SecretId id) throws StartFailure {
    SharedIndexInformer<Secret> informer =
        client.secrets().inNamespace(id.namespace()).withName(id.name()).runnableInformer(0);
    // Before the first list succeeds, give up (the caller reports why); afterwards keep watching
    // through API server restarts, as every informer does.
    informer.exceptionHandler((started, t) -> started);
    informer.addEventHandler(
        new ResourceEventHandler<Secret>() {
          @Override
          public void onAdd(Secret s) {
            changed(id);
          }

          @Override
          public void onUpdate(Secret before, Secret after) {
            changed(id);
          }

          @Override
          public void onDelete(Secret s, boolean finalStateUnknown) {
            changed(id);
          }
        });
    try {
      informer.start().toCompletableFuture().get(START_TIMEOUT_SECONDS, TimeUnit.SECONDS);
      LOG.debugf("Watching %s for spec.source.caBundle", id);
      return informer;
    } catch (ExecutionException e) {
      informer.stop();
      Throwable cause = e.getCause() == null ? e : e.getCause();
      throw new StartFailure("cannot read " + id + ": " + cause.getMessage(), cause);
    } catch (TimeoutException e) {
      informer.stop();
      throw new StartFailure(
          "cannot read " + id + ": no answer within " + START_TIMEOUT_SECONDS + " s", e);
    } catch (InterruptedException e) {
      informer.stop();
      Thread.currentThread().interrupt();
      throw new StartFailure("interrupted while starting to watch " + id, e);
    }
  }

  private void changed(SecretId id) {
    users.forEach(
        (image, secret) -> {
          if (secret.equals(id)) {
            listener.accept(image);
          }
        });
  }
}
