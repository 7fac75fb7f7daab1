package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.chrootbooter.protocol.Timeline;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A {@link Timeline} in MachineBoot {@code status.history}: its fields without the steps, and each
 * step's seconds by the step's name.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record TimelineSummary(
    @JsonPropertyDescription(
            "The BootImage booted; absent for a return to the bootstrap and for an image typed at"
                + " the console.")
        String image,
    @JsonPropertyDescription("The image's SHA-256 (hex).") String digest,
    @JsonPropertyDescription(
            "The return trigger that ended the previous target; absent for a first boot.")
        String trigger,
    @JsonPropertyDescription("When the first step began (RFC 3339).") String started,
    @JsonPropertyDescription("Seconds from the first step's beginning to the last step's end.")
        Double seconds,
    @JsonPropertyDescription("Succeeded or Failed.") String result,
    @JsonPropertyDescription("Why it failed, or what else to know.") String message,
    @JsonPropertyDescription(
            "Seconds by step name (see lastSwitch.steps); a step that happened twice counts"
                + " once, with both durations added.")
        Map<String, Double> stepSeconds) {

  public TimelineSummary {
    stepSeconds =
        stepSeconds == null
            ? Map.of()
            : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(stepSeconds));
  }

  /** The summary of {@code t}. */
  public static TimelineSummary of(Timeline t) {
    Map<String, Double> seconds = new LinkedHashMap<>();
    for (Timeline.Step s : t.steps()) {
      double d = s.seconds() == null ? 0 : s.seconds();
      seconds.merge(s.name(), d, (a, b) -> Math.round((a + b) * 1000) / 1000.0);
    }
    return new TimelineSummary(
        t.image(),
        t.digest(),
        t.trigger(),
        t.started(),
        t.seconds(),
        t.result(),
        t.message(),
        seconds);
  }
}
