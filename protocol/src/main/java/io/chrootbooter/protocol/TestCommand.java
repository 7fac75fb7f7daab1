package io.chrootbooter.protocol;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.List;

/**
 * A command a BootTest's {@code command} check has the running target run, in a {@link
 * DesiredState}'s {@code commands}: the agent runs each, in order, as root inside the target once
 * the target reported healthy, and reports each one's {@link Result} in its {@link StatusReport}.
 * The agent checks what it is sent before use (an empty argv, one with a NUL character, a malformed
 * timeout become a {@link Result} with an {@code error}, not a run).
 *
 * @param name the check's name: the result carries it back
 * @param run the argv, run without a shell (give {@code sh -c '…'} for one)
 * @param timeout how long it may run ({@link GoDuration}); null for {@link #DEFAULT_TIMEOUT}
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = true)
public record TestCommand(String name, List<String> run, String timeout) {
  /** The timeout of a command that names none. */
  public static final String DEFAULT_TIMEOUT = "1m";

  /** How many bytes of stdout, and of stderr, a result carries at most. */
  public static final int MAX_OUTPUT_BYTES = 4096;

  /**
   * How many characters of output all results of one report carry together: the results of the
   * first commands whole, the later ones cut (and marked truncated) once this much is used, so a
   * report stays well within what the operator accepts.
   */
  public static final int MAX_REPORTED_OUTPUT = 12_000;

  public TestCommand {
    run = run == null ? List.of() : List.copyOf(run);
  }

  /**
   * What one command did, as the agent reports it.
   *
   * @param name the command's {@link TestCommand#name}
   * @param exitCode its exit status; 128 + n when signal n ended it; null when it did not run or
   *     its timeout killed it
   * @param timedOut whether its timeout killed it
   * @param stdout the first {@link #MAX_OUTPUT_BYTES} bytes of its stdout (UTF-8, malformed bytes
   *     replaced)
   * @param stderr the same of its stderr
   * @param truncated whether either output was longer than the bound
   * @param durationMillis from its start to its exit
   * @param error why it did not run (a refused command, a target gone); null when it ran
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record Result(
      @JsonPropertyDescription("The check's name.") String name,
      @JsonPropertyDescription(
              "Its exit status (128 + n when signal n ended it); absent when it did not run or"
                  + " its timeout killed it.")
          Integer exitCode,
      @JsonPropertyDescription("True when its timeout killed it.") Boolean timedOut,
      @JsonPropertyDescription("The first 4,096 bytes of its stdout.") String stdout,
      @JsonPropertyDescription("The first 4,096 bytes of its stderr.") String stderr,
      @JsonPropertyDescription("True when stdout or stderr was longer than 4,096 bytes.")
          Boolean truncated,
      @JsonPropertyDescription("How long it ran, in milliseconds.") Long durationMillis,
      @JsonPropertyDescription("Why it did not run; absent when it ran.") String error) {}
}
