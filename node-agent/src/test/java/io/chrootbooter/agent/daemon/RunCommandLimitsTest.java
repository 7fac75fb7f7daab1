package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * {@code --pids-max} and {@code --memory-max} ({@code cb.pids-max=}, {@code cb.memory-max=}) as the
 * agent parses them: what a target's cgroup gets, and the error a bad value stops the agent with.
 * The limits themselves are exercised in the bootstrap's QEMU test (BootstrapTriggersIT).
 */
class RunCommandLimitsTest {

  private static RunCommand parse(String... args) {
    RunCommand run = new RunCommand();
    new CommandLine(run).parseArgs(args);
    return run;
  }

  @Test
  void memoryTakesBytesOrABinarySuffix() {
    assertThat(parse("--memory-max", "268435456").memoryMax).hasValue(268435456L);
    assertThat(parse("--memory-max", "256M").memoryMax).hasValue(256L << 20);
    assertThat(parse("--memory-max", "1536k").memoryMax).hasValue(1536L << 10);
    assertThat(parse("--memory-max", "2G").memoryMax).hasValue(2L << 30);
    assertThat(parse("--memory-max", "1T").memoryMax).hasValue(1L << 40);
    assertThat(parse("--memory-max", "max").memoryMax).isEqualTo(OptionalLong.empty());
  }

  @Test
  void pidsTakeACountOrMax() {
    assertThat(parse("--pids-max", "64").pidsMax).hasValue(64L);
    assertThat(parse("--pids-max", "max").pidsMax).isEqualTo(OptionalLong.empty());
  }

  @Test
  void noValueMeansNoLimit() {
    // CB_PIDS_MAX and CB_MEMORY_MAX are not set where the tests run.
    RunCommand run = parse();
    assertThat(run.pidsMax).isNull();
    assertThat(run.memoryMax).isNull();
  }

  @Test
  void aBadValueNamesTheKernelArgumentTheValueAndTheRule() {
    assertThatThrownBy(() -> parse("--memory-max", "256Q"))
        .isInstanceOf(CommandLine.ParameterException.class)
        .hasMessageContaining("--memory-max")
        .hasMessageContaining(
            "cb.memory-max: \"256Q\" is not bytes, or a number with K, M, G or T");
    assertThatThrownBy(() -> parse("--memory-max", "512"))
        .hasMessageContaining("\"512\" is below 1M");
    assertThatThrownBy(() -> parse("--memory-max", "99999999999T"))
        .hasMessageContaining("\"99999999999T\" is too large");
    assertThatThrownBy(() -> parse("--memory-max", "-1M")).hasMessageContaining("\"-1M\" is not");
    assertThatThrownBy(() -> parse("--pids-max", "0"))
        .hasMessageContaining("cb.pids-max: \"0\" is not a number of processes from 1 to 4194304");
    assertThatThrownBy(() -> parse("--pids-max", "lots"))
        .hasMessageContaining("cb.pids-max: \"lots\" is not a number of processes");
  }
}
