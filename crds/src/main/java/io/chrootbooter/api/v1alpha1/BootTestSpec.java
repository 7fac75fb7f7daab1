package io.chrootbooter.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.chrootbooter.protocol.GoDuration;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;
import java.time.Duration;
import java.util.List;

/** What a {@link BootTest} tests: an image, on which machines, with which checks. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "self == oldSelf",
    message = "a BootTest's spec is fixed once created; delete it and create it again")
public record BootTestSpec(
    @Required
        @Pattern(Patterns.OBJECT_NAME)
        @JsonPropertyDescription("The BootImage under test, in this namespace.")
        String imageRef,
    @Required
        @JsonPropertyDescription(
            "The MachineBoots of this namespace to test on: those the selector matches and those"
                + " named. Chosen once, when the test starts.")
        MachineSelection machines,
    @Min(1)
        @Max(1000)
        @JsonPropertyDescription(
            "How many machines are tested at the same time (1 to 1000). Default: 1.")
        Integer parallelism,
    @Required
        @Size(min = 1, max = 32)
        @JsonPropertyDescription(
            "The checks, run in this order on every machine once it runs the image. A machine"
                + " fails at its first failed check; the rest are skipped.")
        List<BootTestCheck> checks,
    @Pattern(Patterns.DURATION)
        @JsonPropertyDescription(
            "How long the whole test may take, such as 30m; machines still being tested then"
                + " end in Error and are released. Default: 30m.")
        String timeout,
    @JsonPropertyDescription(
            "What a machine does once its test ends: Restore (the default: it runs what its"
                + " MachineBoot's spec says, including edits made during the test), Bootstrap"
                + " (its spec is set to state: Bootstrap) or Keep (its spec's imageRef is set to"
                + " the image under test).")
        AfterTest afterTest,
    @JsonPropertyDescription(
            "A guarded rollout once every tested machine passed: the image goes to the machines of"
                + " promoteTo, maxUnavailable at a time, each checked with the same checks, and"
                + " stops and rolls back at failureThreshold failures.")
        BootTestPromotion promote) {

  /** The timeout of a test that names none. */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(30);

  public BootTestSpec {
    checks = checks == null ? null : List.copyOf(checks);
  }

  /** A test without a promotion. */
  public BootTestSpec(
      String imageRef,
      MachineSelection machines,
      Integer parallelism,
      List<BootTestCheck> checks,
      String timeout,
      AfterTest afterTest) {
    this(imageRef, machines, parallelism, checks, timeout, afterTest, null);
  }

  /** The parallelism, the default applied. */
  public int parallelismOrDefault() {
    return parallelism == null ? 1 : parallelism;
  }

  /** What happens after the test, the default applied. */
  public AfterTest afterTestOrDefault() {
    return afterTest == null ? AfterTest.Restore : afterTest;
  }

  /** The timeout; the default when unset or malformed (a violation the validator names). */
  public Duration timeoutOrDefault() {
    return GoDuration.tryParse(timeout).orElse(DEFAULT_TIMEOUT);
  }

  /** The checks, never null. */
  public List<BootTestCheck> checksOrEmpty() {
    return checks == null ? List.of() : checks;
  }
}
