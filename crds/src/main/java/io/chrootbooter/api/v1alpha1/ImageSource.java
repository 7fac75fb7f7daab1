package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;

/** Where the operator fetches an image from. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record ImageSource(
    @Required
        @Pattern(Patterns.HTTP_URL)
        @JsonPropertyDescription(
            "The http or https URL of the image. The operator mirrors it into its image store;"
                + " machines fetch the mirrored copy, never this URL.")
        String url,
    @JsonPropertyDescription(
            "For an https url signed by a private CA: a Secret key in this namespace holding the"
                + " CA certificates (PEM), trusted in addition to the JVM's CAs and the operator's"
                + " cb.store.ca-bundle. The host name is verified all the same.")
        CaBundleRef caBundle) {}
