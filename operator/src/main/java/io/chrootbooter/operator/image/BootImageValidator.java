package io.chrootbooter.operator.image;

import static io.chrootbooter.operator.SpecRules.match;

import io.chrootbooter.api.v1alpha1.BootImageSpec;
import io.chrootbooter.api.v1alpha1.CaBundleRef;
import io.chrootbooter.api.v1alpha1.Patterns;
import io.chrootbooter.api.v1alpha1.StopSpec;
import io.chrootbooter.operator.SpecRules;
import io.chrootbooter.protocol.Delivery;
import io.chrootbooter.protocol.ImageFormat;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/** Validates a BootImage spec again, with the rules of the CRD schema. */
public final class BootImageValidator {
  private static final Pattern URL = Pattern.compile(Patterns.HTTP_URL);
  private static final Pattern SHA256 = Pattern.compile(Patterns.SHA256);
  private static final Pattern PATH = Pattern.compile(Patterns.ABSOLUTE_PATH);
  private static final Pattern NAME = Pattern.compile(Patterns.OBJECT_NAME);
  private static final Pattern SECRET_KEY = Pattern.compile(Patterns.SECRET_KEY);
  private static final Pattern STOP_SIGNAL = Pattern.compile(Patterns.STOP_SIGNAL);
  private static final Pattern DURATION = Pattern.compile(Patterns.DURATION);

  private BootImageValidator() {}

  /** Every violation of the spec, empty when it is valid. */
  public static List<String> violations(BootImageSpec spec) {
    List<String> v = new ArrayList<>();
    if (spec == null) {
      v.add("spec: required");
      return v;
    }
    String url = spec.source() == null ? null : spec.source().url();
    if (url == null) {
      v.add("spec.source.url: required");
    } else if (!URL.matcher(url).matches() || !hasHost(url)) {
      v.add(
          "spec.source.url: "
              + SpecRules.quote(url)
              + " is not an http or https URL with a host (no spaces or quotes)");
    } else if (spec.format() == null && ImageFormat.fromUrl(url).isEmpty()) {
      v.add(
          "spec.format: required, since the URL "
              + SpecRules.quote(url)
              + " does not end in one of "
              + ImageFormat.allSuffixes());
    }
    CaBundleRef ca = spec.source() == null ? null : spec.source().caBundle();
    if (ca != null) {
      SpecRules.require(v, "spec.source.caBundle.secretName", ca.secretName());
      match(
          v,
          "spec.source.caBundle.secretName",
          ca.secretName(),
          NAME,
          "is not a Kubernetes object name (lower-case letters, digits, '-' and '.', at most 253"
              + " characters)");
      match(
          v,
          "spec.source.caBundle.key",
          ca.key(),
          SECRET_KEY,
          "is not a Secret key (letters, digits, '-', '_' and '.', at most 253 characters)");
    }
    match(v, "spec.sha256", spec.sha256(), SHA256, "is not 64 lower-case hex digits");
    if (spec.sha256() == null && !spec.skipVerify()) {
      v.add("spec.sha256: required unless insecureSkipVerify is true");
    }
    match(v, "spec.init", spec.init(), PATH, "is not an absolute path of safe characters");
    stopViolations(v, spec.stop());
    if (spec.delivery() == Delivery.Lazy
        && url != null
        && (spec.format() != null || ImageFormat.fromUrl(url).isPresent())
        && effectiveFormat(spec) != ImageFormat.SQUASHFS) {
      v.add(
          "spec.delivery: \"Lazy\" is for squashfs images only; this image is "
              + effectiveFormat(spec).value()
              + " (use Download)");
    }
    return v;
  }

  private static void stopViolations(List<String> v, StopSpec stop) {
    if (stop == null) {
      return;
    }
    match(
        v,
        "spec.stop.signal",
        stop.signal(),
        STOP_SIGNAL,
        "is not a power-off signal: SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGPWR or"
            + " SIGRTMIN+n with n from 0 to 30");
    match(
        v,
        "spec.stop.gracePeriod",
        stop.gracePeriod(),
        DURATION,
        "is not a duration such as 500ms, 30s or 2m");
    stop.gracePeriodDuration()
        .filter(grace -> grace.compareTo(StopSpec.MAX_GRACE_PERIOD) > 0)
        .ifPresent(
            grace ->
                v.add(
                    "spec.stop.gracePeriod: "
                        + SpecRules.quote(stop.gracePeriod())
                        + " is longer than the longest grace period, 10m"));
  }

  /** The effective format: declared, or inferred from the URL. */
  public static ImageFormat effectiveFormat(BootImageSpec spec) {
    if (spec.format() != null) {
      return spec.format();
    }
    return ImageFormat.fromUrl(spec.source().url())
        .orElseThrow(() -> new IllegalStateException("format of a validated spec is unknown"));
  }

  private static boolean hasHost(String url) {
    try {
      URI uri = new URI(url);
      return uri.getHost() != null && !uri.getHost().isEmpty();
    } catch (URISyntaxException e) {
      return false;
    }
  }
}
