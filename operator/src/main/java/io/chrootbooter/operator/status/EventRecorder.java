package io.chrootbooter.operator.status;

import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectReferenceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import jakarta.enterprise.context.ApplicationScoped;
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

  EventRecorder(KubernetesClient client) {
    this.client = client;
  }

  /** Records a transition to {@code health} of {@code resource}. */
  public void transition(HasMetadata resource, Health health) {
    record(
        resource,
        health.state() == Health.State.STALLED ? "Warning" : "Normal",
        health.reason().name(),
        health.message());
  }

  /** Records an event; a failure to write it is logged, never fatal to a reconcile. */
  public void record(HasMetadata resource, String type, String reason, String message) {
    String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
    var event =
        new EventBuilder()
            .withNewMetadata()
            .withName(resource.getMetadata().getName() + "." + UUID.randomUUID())
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
      LOG.warnf(
          "Could not record event %s on %s/%s: %s",
          reason, resource.getKind(), resource.getMetadata().getName(), e.getMessage());
    }
  }
}
