package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.reflect.Field;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * {@code run} as the bootstrap starts it: options from the kernel command line's {@code CB_*}
 * variables without picocli's command model ({@link RunCommand#fromEnvironment}), the same values
 * picocli gives.
 */
class RunCommandEnvironmentTest {

  @Test
  void everyOptionTakesTheValuePicocliGivesInThisEnvironment() throws Exception {
    RunCommand picocli = new RunCommand();
    new CommandLine(picocli).parseArgs();
    RunCommand ours = RunCommand.fromEnvironment(System.getenv());
    int options = 0;
    for (Field field : RunCommand.class.getDeclaredFields()) {
      if (field.isAnnotationPresent(Option.class)) {
        options++;
        assertThat(field.get(ours)).as("--%s", field.getName()).isEqualTo(field.get(picocli));
      }
    }
    assertThat(options).isGreaterThan(20);
  }

  @Test
  void kernelCommandLineVariablesFeedTheirOptions() throws Exception {
    RunCommand run =
        RunCommand.fromEnvironment(
            Map.of(
                "CB_OPERATOR", "https://10.0.0.1:8443",
                "CB_NONCE", "n0nce",
                "CB_MAC", "52:54:00:12:34:56",
                "CB_CA", "sha256:ab",
                "CB_SERIAL", "ttyS1",
                "CB_SERIAL_BAUD", "9600",
                "CB_PIDS_MAX", "64",
                "CB_MEMORY_MAX", "256M",
                "CB_CACHE", "/dev/sdb"));
    assertThat(run.operator).isEqualTo("https://10.0.0.1:8443");
    assertThat(run.nonce).isEqualTo("n0nce");
    assertThat(run.mac).isEqualTo("52:54:00:12:34:56");
    assertThat(run.ca).isEqualTo("sha256:ab");
    assertThat(run.serial).isEqualTo("ttyS1");
    assertThat(run.serialBaud).isEqualTo(9600);
    assertThat(run.pidsMax).hasValue(64L);
    assertThat(run.memoryMax).hasValue(256L << 20);
    assertThat(run.cache).isEqualTo("/dev/sdb");
    assertThat(run.image).isNull();
  }

  @Test
  void absentVariablesLeaveTheDefaults() throws Exception {
    RunCommand run = RunCommand.fromEnvironment(Map.of());
    assertThat(run.operator).isNull();
    assertThat(run.serialBaud).isEqualTo(115200);
    assertThat(run.workDir).isEqualTo(Path.of("/run/chrootbooter"));
    assertThat(run.cgroup).isEqualTo(Path.of("/sys/fs/cgroup/chrootbooter"));
    assertThat(run.grace).isEqualTo("10s");
    assertThat(run.pidsMax).isNull();
    assertThat(run.memoryMax).isNull();
    assertThat(run.noConsole).isFalse();
  }

  @Test
  void theConsoleLogSizeTakesBytesOrKOrMUpTo64M() throws Exception {
    assertThat(RunCommand.fromEnvironment(Map.of()).consoleLog).isEqualTo(1 << 20);
    assertThat(RunCommand.fromEnvironment(Map.of("CB_CONSOLE_LOG", "256K")).consoleLog)
        .isEqualTo(256 << 10);
    assertThat(RunCommand.fromEnvironment(Map.of("CB_CONSOLE_LOG", "0")).consoleLog).isZero();
    assertThat(RunCommand.fromEnvironment(Map.of("CB_CONSOLE_LOG", "64M")).consoleLog)
        .isEqualTo(64 << 20);
    for (String bad : List.of("65M", "-1", "1G", "lots", "1.5M")) {
      assertThatThrownBy(() -> RunCommand.fromEnvironment(Map.of("CB_CONSOLE_LOG", bad)))
          .isInstanceOf(RunCommand.InvalidOption.class)
          .hasMessageStartingWith("Invalid value for option '--console-log': cb.console-log=\"")
          .hasMessageContaining("is not a size from 0 to 64M");
    }
  }

  @Test
  void aBadValueNamesTheOptionAndTheRuleAsPicocliDoes() {
    assertThatThrownBy(() -> RunCommand.fromEnvironment(Map.of("CB_MEMORY_MAX", "256Q")))
        .isInstanceOf(RunCommand.InvalidOption.class)
        .hasMessageStartingWith("Invalid value for option '--memory-max': ")
        .hasMessageContaining(
            "cb.memory-max: \"256Q\" is not bytes, or a number with K, M, G or T");
    assertThatThrownBy(() -> RunCommand.fromEnvironment(Map.of("CB_SERIAL_BAUD", "fast")))
        .isInstanceOf(RunCommand.InvalidOption.class)
        .hasMessageContaining("--serial-baud")
        .hasMessageContaining("'fast' is not an int");
  }
}
