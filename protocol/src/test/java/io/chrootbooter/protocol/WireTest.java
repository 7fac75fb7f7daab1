package io.chrootbooter.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Every message, written the way one side writes it and read the way the other side reads it: the
 * operator writes desired states that the agent reads leniently (unknown fields ignored), the agent
 * writes status reports that the operator reads strictly (unknown fields refused). The golden JSON
 * is what agents and operators before this module sent: it must read, and be written, unchanged.
 */
class WireTest {
  /** As the operator reads reports ({@code AgentResource}) and writes desired states. */
  private static final ObjectMapper OPERATOR =
      new ObjectMapper().enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

  /** As the agent reads desired states and writes reports ({@code OperatorClient}). */
  private static final ObjectMapper AGENT =
      new ObjectMapper()
          .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false)
          .enable(DeserializationFeature.READ_UNKNOWN_ENUM_VALUES_AS_NULL);

  private static final String SHA = "ab".repeat(32);

  static final String RUN_JSON =
      "{\"action\":\"Run\",\"generation\":2,\"image\":{\"name\":\"debian-12\","
          + "\"url\":\"http://op:8080/images/"
          + SHA
          + "\",\"sha256\":\""
          + SHA
          + "\",\"format\":\"squashfs\",\"init\":\"/sbin/init\","
          + "\"stop\":{\"signal\":\"SIGTERM\",\"gracePeriod\":\"1s\"}},"
          + "\"overlay\":\"tmpfs\",\"kernelArgs\":[\"quiet\"],\"bootTimeout\":\"5m\","
          + "\"returnTriggers\":{\"hotkey\":true,"
          + "\"serial\":{\"enabled\":true,\"magic\":\"RETURN_TO_BOOTSTRAP\"},\"helper\":true}}";

  static final DesiredState RUN =
      DesiredState.builder()
          .action(Action.Run)
          .generation(2)
          .image(
              DesiredState.Image.builder()
                  .name("debian-12")
                  .url("http://op:8080/images/" + SHA)
                  .sha256(SHA)
                  .format(ImageFormat.SQUASHFS)
                  .init("/sbin/init")
                  .stop(new DesiredState.Stop("SIGTERM", "1s"))
                  .build())
          .overlay("tmpfs")
          .kernelArgs(List.of("quiet"))
          .bootTimeout("5m")
          .returnTriggers(DesiredState.ReturnTriggers.DEFAULTS)
          .build();

  static final String HOLD_JSON =
      "{\"action\":\"Hold\",\"generation\":3,\"reason\":\"BootImage x is not Ready\","
          + "\"kernelArgs\":[]}";

  static final String BOOTSTRAP_JSON =
      "{\"action\":\"Bootstrap\",\"generation\":4,\"kernelArgs\":[],"
          + "\"returnTriggers\":{\"hotkey\":false,"
          + "\"serial\":{\"enabled\":true,\"device\":\"ttyS2\",\"magic\":\"GO_BACK\"},"
          + "\"helper\":true}}";

  static final String REPORT_JSON =
      "{\"phase\":\"Running\",\"progress\":{\"bytes\":4096,\"total\":262144,"
          + "\"bytesPerSecond\":1000000},\"currentImage\":\"debian-12\","
          + "\"lastReturn\":{\"trigger\":\"Hotkey\",\"reason\":\"Ctrl+Alt+F12\","
          + "\"time\":\"2025-01-02T03:04:05.678Z\",\"durationMillis\":159,\"forced\":false},"
          + "\"agent\":{\"version\":\"0.1.0\",\"bootId\":\"b1\",\"ip\":\"10.0.0.2\","
          + "\"kernel\":\"6.1.0\",\"jit\":\"c1 (cb.jit=c1)\"},\"appliedGeneration\":2}";

  static final StatusReport REPORT =
      StatusReport.builder()
          .phase(MachinePhase.Running)
          .progress(new Progress(4096L, 262144L, 1_000_000L))
          .currentImage("debian-12")
          .lastReturn(
              new LastReturn(
                  ReturnTrigger.Hotkey.name(),
                  "Ctrl+Alt+F12",
                  "2025-01-02T03:04:05.678Z",
                  159L,
                  false))
          .agent(new AgentInfo("0.1.0", "b1", "10.0.0.2", "6.1.0", "c1 (cb.jit=c1)"))
          .appliedGeneration(2L)
          .build();

  @Test
  void desiredStatesAreWrittenAsBeforeAndReadBack() throws Exception {
    assertThat(OPERATOR.writeValueAsString(RUN)).isEqualTo(RUN_JSON);
    assertThat(AGENT.readValue(RUN_JSON, DesiredState.class)).isEqualTo(RUN);
    assertThat(AGENT.readValue(RUN_JSON, DesiredState.class).runs()).isTrue();

    DesiredState hold =
        DesiredState.builder()
            .action(Action.Hold)
            .generation(3)
            .reason("BootImage x is not Ready")
            .build();
    assertThat(OPERATOR.writeValueAsString(hold)).isEqualTo(HOLD_JSON);
    assertThat(AGENT.readValue(HOLD_JSON, DesiredState.class)).isEqualTo(hold);

    DesiredState bootstrap =
        DesiredState.builder()
            .action(Action.Bootstrap)
            .generation(4)
            .returnTriggers(
                new DesiredState.ReturnTriggers(
                    false, new DesiredState.Serial(null, "ttyS2", "GO_BACK"), null))
            .build();
    assertThat(OPERATOR.writeValueAsString(bootstrap)).isEqualTo(BOOTSTRAP_JSON);
    assertThat(AGENT.readValue(BOOTSTRAP_JSON, DesiredState.class)).isEqualTo(bootstrap);
  }

  @Test
  void theAgentIgnoresWhatANewerOperatorAddsAndDefaultsWhatAnOlderOneLeftOut() throws Exception {
    DesiredState state =
        AGENT.readValue(
            "{\"action\":\"Run\",\"generation\":1,\"future\":{\"x\":1},"
                + "\"image\":{\"url\":\"http://op/i\",\"format\":\"tar.zst\",\"digest2\":\"\"}}",
            DesiredState.class);
    assertThat(state.kernelArgs()).isEmpty();
    assertThat(state.returnTriggers()).isEqualTo(DesiredState.ReturnTriggers.DEFAULTS);
    assertThat(state.returnTriggers().serial().magic()).isEqualTo("RETURN_TO_BOOTSTRAP");
    assertThat(state.image().identity())
        .isEqualTo(
            new DesiredState.Identity(
                "url:http://op/i",
                ImageFormat.TAR_ZST,
                "/sbin/init",
                KernelModules.Bootstrap,
                Confinement.Machine,
                List.of()));
  }

  @Test
  void aConfinedImageCarriesItsDevicesAndBothArePartOfWhatRuns() throws Exception {
    DesiredState.Image confined =
        DesiredState.Image.builder()
            .name("i")
            .url("http://op/i")
            .sha256(SHA)
            .format(ImageFormat.SQUASHFS)
            .confinement(Confinement.Confined)
            .devices(List.of("/dev/vdb"))
            .build();
    String json = OPERATOR.writeValueAsString(confined);
    assertThat(json).contains("\"confinement\":\"Confined\"", "\"devices\":[\"/dev/vdb\"]");
    assertThat(AGENT.readValue(json, DesiredState.Image.class)).isEqualTo(confined);
    DesiredState.Image machine =
        DesiredState.Image.builder()
            .name("i")
            .url("http://op/i")
            .sha256(SHA)
            .format(ImageFormat.SQUASHFS)
            .build();
    assertThat(OPERATOR.writeValueAsString(machine)).doesNotContain("confinement", "devices");
    assertThat(machine.confinementOrDefault()).isEqualTo(Confinement.Machine);
    assertThat(confined.identity()).isNotEqualTo(machine.identity());
    assertThat(
            DesiredState.Image.builder()
                .name("i")
                .url("http://op/i")
                .sha256(SHA)
                .format(ImageFormat.SQUASHFS)
                .confinement(Confinement.Confined)
                .devices(List.of("/dev/vdc"))
                .build()
                .identity())
        .as("other devices, another target")
        .isNotEqualTo(confined.identity());
    assertThat(
            AGENT
                .readValue(
                    "{\"url\":\"http://op/i\",\"confinement\":\"Jail\"}", DesiredState.Image.class)
                .confinementOrDefault())
        .as("an unknown confinement of a newer operator: the strictest this agent knows")
        .isEqualTo(Confinement.Confined);
  }

  @Test
  void theHeartbeatIsWrittenOnlyWhenSetAndReadBack() throws Exception {
    DesiredState withHeartbeat = RUN.withHeartbeat("15s");
    String json = OPERATOR.writeValueAsString(withHeartbeat);
    assertThat(json).isEqualTo(RUN_JSON.replaceFirst("}$", ",\"heartbeat\":\"15s\"}"));
    assertThat(AGENT.readValue(json, DesiredState.class)).isEqualTo(withHeartbeat);
    assertThat(AGENT.readValue(RUN_JSON, DesiredState.class).heartbeat()).isNull();
    assertThat(withHeartbeat.withHeartbeat(null)).isEqualTo(RUN);
  }

  @Test
  void theAgentReadsAnActionOrFormatOfANewerOperatorAsNone() throws Exception {
    DesiredState unknownAction =
        AGENT.readValue("{\"action\":\"Reboot\",\"generation\":5}", DesiredState.class);
    assertThat(unknownAction.action()).isNull();
    assertThat(unknownAction.runs()).isFalse();

    DesiredState unknownFormat =
        AGENT.readValue(
            "{\"action\":\"Run\",\"generation\":6,"
                + "\"image\":{\"url\":\"http://op/i\",\"format\":\"erofs\"}}",
            DesiredState.class);
    assertThat(unknownFormat.runs()).isTrue();
    assertThat(unknownFormat.image().format()).isNull();
  }

  @Test
  void statusReportsAreWrittenAsBeforeAndReadStrictly() throws Exception {
    assertThat(AGENT.writeValueAsString(REPORT)).isEqualTo(REPORT_JSON);
    assertThat(OPERATOR.readValue(REPORT_JSON, StatusReport.class)).isEqualTo(REPORT);
    assertThatThrownBy(
            () -> OPERATOR.readValue("{\"phase\":\"Running\",\"surprise\":1}", StatusReport.class))
        .isInstanceOf(UnrecognizedPropertyException.class);
    assertThatThrownBy(() -> OPERATOR.readValue("{\"phase\":\"Dancing\"}", StatusReport.class))
        .isInstanceOf(InvalidFormatException.class);
  }

  static final String TIMELINE_JSON =
      "{\"image\":\"debian-12\",\"digest\":\""
          + SHA
          + "\",\"trigger\":\"SpecChange\",\"started\":\"2026-01-02T03:04:05.000Z\","
          + "\"seconds\":2.5,\"result\":\"Succeeded\",\"steps\":["
          + "{\"name\":\"desired-state\",\"at\":\"2026-01-02T03:04:05.000Z\",\"seconds\":0.5},"
          + "{\"name\":\"download\",\"at\":\"2026-01-02T03:04:05.500Z\",\"seconds\":2.0,"
          + "\"detail\":\"256 KiB at 131 kB/s\"}]}";

  static final Timeline TIMELINE =
      new Timeline(
          "debian-12",
          SHA,
          "SpecChange",
          "2026-01-02T03:04:05.000Z",
          2.5,
          Timeline.SUCCEEDED,
          null,
          List.of(
              new Timeline.Step(Timeline.DESIRED_STATE, "2026-01-02T03:04:05.000Z", 0.5, null),
              new Timeline.Step(
                  Timeline.DOWNLOAD, "2026-01-02T03:04:05.500Z", 2.0, "256 KiB at 131 kB/s")));

  @Test
  void timelinesCrossInAReportAndAnOlderReportStaysAsItWas() throws Exception {
    StatusReport withTimelines = REPORT.withTimelines(List.of(TIMELINE));
    String json = AGENT.writeValueAsString(withTimelines);
    assertThat(json)
        .isEqualTo(REPORT_JSON.replaceFirst("}$", ",\"timelines\":[" + TIMELINE_JSON + "]}"));
    StatusReport read = OPERATOR.readValue(json, StatusReport.class);
    assertThat(read).isEqualTo(withTimelines);
    assertThat(read.timelines().get(0).steps())
        .extracting(Timeline.Step::name)
        .containsExactly("desired-state", "download");
    assertThat(read.timelines().get(0).boot()).isFalse();
    assertThat(read.timelines().get(0).done()).isTrue();
    // No timelines: the field is not written, and a report of an older agent reads as before.
    assertThat(AGENT.writeValueAsString(REPORT.withTimelines(List.of()))).isEqualTo(REPORT_JSON);
    assertThat(OPERATOR.readValue(REPORT_JSON, StatusReport.class).timelines()).isNull();
    assertThatThrownBy(
            () ->
                OPERATOR.readValue(
                    "{\"phase\":\"Running\",\"timelines\":[{\"steps\":[{\"when\":1}]}]}",
                    StatusReport.class))
        .as("a step field the operator does not know")
        .isInstanceOf(UnrecognizedPropertyException.class);
  }

  @Test
  void aStepsSizeAndRateReadAsCurlPrintsThem() {
    assertThat(Timeline.sizeAtRate(1L << 30, java.time.Duration.ofMillis(1142)))
        .isEqualTo("1.00 GiB at 940 MB/s");
    assertThat(Timeline.sizeAtRate(262_144, java.time.Duration.ofMillis(2000)))
        .isEqualTo("256 KiB at 131 kB/s");
    assertThat(Timeline.sizeAtRate(512, java.time.Duration.ZERO)).startsWith("512 B at ");
    assertThat(
            Timeline.seconds(
                java.time.Instant.parse("2026-01-01T00:00:01.250Z"),
                java.time.Instant.parse("2026-01-01T00:00:00Z")))
        .as("never negative")
        .isZero();
  }

  @Test
  void stepNamesAreLowerCaseAndDashSeparatedAndUnique() {
    assertThat(Timeline.STEP_NAMES)
        .doesNotHaveDuplicates()
        .allMatch(n -> n.matches("[a-z]+(-[a-z]+)*"));
    assertThat(Timeline.STEP_NAMES).hasSize(17);
  }

  @ParameterizedTest
  @EnumSource(Action.class)
  void everyActionCrosses(Action action) throws Exception {
    DesiredState sent = DesiredState.builder().action(action).generation(1).build();
    String json = OPERATOR.writeValueAsString(sent);
    assertThat(json).contains("\"action\":\"" + action.name() + "\"");
    assertThat(AGENT.readValue(json, DesiredState.class)).isEqualTo(sent);
  }

  @ParameterizedTest
  @EnumSource(ImageFormat.class)
  void everyFormatCrosses(ImageFormat format) throws Exception {
    DesiredState sent =
        DesiredState.builder()
            .action(Action.Run)
            .generation(1)
            .image(DesiredState.Image.builder().name("i").url("http://op/i").format(format).build())
            .build();
    String json = OPERATOR.writeValueAsString(sent);
    assertThat(json).contains("\"format\":\"" + format.value() + "\"");
    assertThat(AGENT.readValue(json, DesiredState.class)).isEqualTo(sent);
  }

  @ParameterizedTest
  @EnumSource(MachinePhase.class)
  void everyPhaseCrosses(MachinePhase phase) throws Exception {
    StatusReport sent = StatusReport.builder().phase(phase).build();
    String json = AGENT.writeValueAsString(sent);
    assertThat(json).isEqualTo("{\"phase\":\"" + phase.name() + "\"}");
    assertThat(OPERATOR.readValue(json, StatusReport.class)).isEqualTo(sent);
  }

  @ParameterizedTest
  @EnumSource(ReturnTrigger.class)
  void everyTriggerCrossesByItsName(ReturnTrigger trigger) throws Exception {
    LastReturn sent = new LastReturn(trigger.name(), null, null, null, null);
    LastReturn read = OPERATOR.readValue(AGENT.writeValueAsString(sent), LastReturn.class);
    assertThat(ReturnTrigger.fromName(read.trigger())).contains(trigger);
  }

  @Test
  void aBootTestsCommandsGoOutInTheDesiredStateAndTheirResultsComeBack() throws Exception {
    DesiredState sent =
        RUN.withCommands(
            List.of(
                new TestCommand("kernel", List.of("uname", "-r"), "30s"),
                new TestCommand(
                    "units", List.of("sh", "-c", "systemctl is-system-running"), null)));
    String json = OPERATOR.writeValueAsString(sent);
    assertThat(json)
        .endsWith(
            ",\"commands\":[{\"name\":\"kernel\",\"run\":[\"uname\",\"-r\"],"
                + "\"timeout\":\"30s\"},{\"name\":\"units\",\"run\":[\"sh\",\"-c\","
                + "\"systemctl is-system-running\"]}]}");
    assertThat(AGENT.readValue(json, DesiredState.class)).isEqualTo(sent);
    // Without commands the field is left out: what older operators sent.
    assertThat(OPERATOR.writeValueAsString(RUN)).isEqualTo(RUN_JSON);

    StatusReport report =
        OPERATOR
            .readValue(REPORT_JSON, StatusReport.class)
            .withCommands(
                List.of(
                    new TestCommand.Result(
                        "kernel", 0, false, "6.1.0-18-amd64\n", "", false, 12L, null),
                    new TestCommand.Result(
                        "units", null, true, "starting\n", "", true, 30_000L, null)));
    String reported = AGENT.writeValueAsString(report);
    assertThat(reported)
        .contains(
            "\"commands\":[{\"name\":\"kernel\",\"exitCode\":0,\"timedOut\":false,"
                + "\"stdout\":\"6.1.0-18-amd64\\n\",\"stderr\":\"\",\"truncated\":false,"
                + "\"durationMillis\":12}");
    assertThat(OPERATOR.readValue(reported, StatusReport.class)).isEqualTo(report);
    assertThat(AGENT.writeValueAsString(report.withCommands(List.of()))).isEqualTo(REPORT_JSON);
  }
}
