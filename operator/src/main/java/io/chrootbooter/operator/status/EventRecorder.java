package io.chrootbooter.operator.status;

import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectReferenceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Event;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.UUID;
import org.jboss.logging.Logger;

/** Writes Kubernetes Events, the record {@code kubectl describe} shows under "Events". */
@ApplicationScoped
public class EventRecorder {
  private static final Logger LOG = Logger.getLogger(EventRecorder.class);
  private static final String COMPONENT = "chrootbooter-operator";

  private final KubernetesClient client;
  private final Event<RecordedEvent> recorded;

  EventRecorder(KubernetesClient client, Event<RecordedEvent> recorded) {
    this.client = client;
    this.recorded = recorded;
  }

  /** Records a transition to {@code health} of {@code resource}. */
  public void transition(HasMetadata resource, Health health) {
    record(
        resource,
        health.state() == Health.State.STALLED ? "Warning" : "Normal",
        health.reason().name(),
        health.message());
  }

  /**
   * Records an event; a failure to write it is logged, never fatal to a reconcile. It is also fired
   * as a {@link RecordedEvent}, written or not: it happened.
   */
  public void record(HasMetadata resource, String type, String reason, String message) {
    write(
        resource,
        type,
        reason,
        message,
        resource.getMetadata().getName() + "." + UUID.randomUUID());
  }

  /**
   * Records an event once per {@code occurrence} (e.g. the time an agent was heard from again): its
   * name is derived from the object, the reason and the occurrence, so a second reconcile that
   * still saw the old status (a stale cache), or another replica, finds the name taken and records
   * nothing.
   */
  public void recordOnce(
      HasMetadata resource, String type, String reason, String message, String occurrence) {
    String key = resource.getMetadata().getUid() + "/" + reason + "/" + occurrence;
    String name =
        resource.getMetadata().getName()
            + "."
            + reason.toLowerCase(java.util.Locale.ROOT)
            + "."
            + UUID.nameUUIDFromBytes(key.getBytes(java.nio.charset.StandardCharsets.UTF_8))
                .toString()
                .substring(0, 13)
                .replace("-", "");
    write(resource, type, reason, message, name);
  }

  private void write(
      HasMetadata resource, String type, String reason, String message, String name) {
    Instant time = Instant.now().truncatedTo(ChronoUnit.SECONDS);
    String now = time.toString();
    var event =
        new EventBuilder()
            .withNewMetadata()
            .withName(name)
            .withNamespace(resource.getMetadata().getNamespace())
            .endMetadata()
            .withInvolvedObject(
                new ObjectReferenceBuilder()
                    .withApiVersion(resource.getApiVersion())
                    .withKind(resource.getKind())
                    .withName(resource.getMetadata().getName())
                    .withNamespace(resource.getMetadata().getNamespace())
                    .withUid(resource.getMetadata().getUid())
                    .withResourceVersion(resource.getMetadata().getResourceVersion())
                    .build())
            .withType(type)
            .withReason(reason)
            .withMessage(message)
            .withFirstTimestamp(now)
            .withLastTimestamp(now)
            .withCount(1)
            .withNewSource()
            .withComponent(COMPONENT)
            .endSource()
            .withReportingComponent(COMPONENT)
            .build();
    try {
      client
          .v1()
          .events()
          .inNamespace(resource.getMetadata().getNamespace())
          .resource(event)
          .create();
    } catch (KubernetesClientException e) {
      if (e.getCode() == java.net.HttpURLConnection.HTTP_CONFLICT) {
        LOG.debugf(
            "event %s on %s/%s recorded already (%s)",
            reason, resource.getKind(), resource.getMetadata().getName(), name);
        return;
      }
      LOG.warnf(
          "Could not record event %s on %s/%s: %s",
          reason, resource.getKind(), resource.getMetadata().getName(), e.getMessage());
    }
    recorded.fire(
        new RecordedEvent(
            resource.getKind(),
            resource.getMetadata().getNamespace(),
            resource.getMetadata().getName(),
            type,
            reason,
            message,
            time));
  }
}
