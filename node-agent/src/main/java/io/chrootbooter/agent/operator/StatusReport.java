package io.chrootbooter.agent.operator;

import com.fasterxml.jackson.annotation.JsonInclude;

/**
 * The body of {@code POST /agent/v1/machines/{mac}/status}: what the operator writes into {@code
 * MachineBoot.status}. Field names match the operator's report schema.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record StatusReport(
    String phase,
    Progress progress,
    String currentImage,
    String error,
    LastReturn lastReturn,
    AgentInfo agent,
    Long appliedGeneration) {

  /** Download progress. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record Progress(Long bytes, Long total, Long bytesPerSecond) {}

  /** The last return to the bootstrap. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record LastReturn(
      String trigger, String reason, String time, Long durationMillis, Boolean forced) {}

  /** Who is reporting; {@code jit} is the JIT mode its JVM runs ({@code c1 (reason)}, ...). */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record AgentInfo(String version, String bootId, String ip, String kernel, String jit) {}
}
