package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;

/**
 * CA certificates, PEM, in a key of a Secret in the BootImage's own namespace: the trust anchors of
 * a private mirror, added to (never replacing) the operator's.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record CaBundleRef(
    @Required
        @Pattern(Patterns.OBJECT_NAME)
        @JsonPropertyDescription(
            "The name of a Secret in this BootImage's namespace. Until it exists the BootImage"
                + " waits (Pending); a change of it retries a download that failed on its"
                + " certificate.")
        String secretName,
    @Pattern(Patterns.SECRET_KEY)
        @JsonPropertyDescription(
            "The key of the Secret holding one or more PEM certificates (-----BEGIN"
                + " CERTIFICATE-----). Default: ca.crt.")
        String key) {

  /** The key, with the default applied. */
  public String keyOrDefault() {
    return key == null ? "ca.crt" : key;
  }
}
