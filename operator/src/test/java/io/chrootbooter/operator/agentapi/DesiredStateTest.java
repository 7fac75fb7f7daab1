package io.chrootbooter.operator.agentapi;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.ReturnTriggers;
import io.chrootbooter.api.v1alpha1.SerialTrigger;
import io.chrootbooter.protocol.Confinement;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.KernelModules;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * The return triggers as the agent receives them: defaults applied, except the serial port of a
 * spec that names none, which the agent takes from its kernel command line ({@code cb.serial=}).
 */
class DesiredStateTest {
  private final ObjectMapper json = new ObjectMapper();

  @Test
  void aSpecWithoutTriggersSendsTheDefaultsAndNoSerialPort() throws Exception {
    assertThat(json.writeValueAsString(DesiredStates.forAgent(null)))
        .isEqualTo(
            "{\"hotkey\":true,\"serial\":{\"enabled\":true,\"magic\":\"RETURN_TO_BOOTSTRAP\"},"
                + "\"helper\":true}");
    assertThat(
            json.writeValueAsString(DesiredStates.forAgent(new ReturnTriggers(null, null, null))))
        .isEqualTo(json.writeValueAsString(DesiredStates.forAgent(null)));
  }

  @Test
  void aSpecThatTurnsSerialOffOrNamesAPortIsSentAsWritten() throws Exception {
    DesiredState.ReturnTriggers off =
        DesiredStates.forAgent(
            new ReturnTriggers(null, new SerialTrigger(false, null, null), false));
    assertThat(off.serial().enabled()).isFalse();
    assertThat(off.serial().device()).isNull();
    assertThat(off.helper()).isFalse();
    DesiredState.ReturnTriggers named =
        DesiredStates.forAgent(
            new ReturnTriggers(null, new SerialTrigger(null, "ttyS2", "GO_BACK_NOW"), null));
    assertThat(named.serial()).isEqualTo(new DesiredState.Serial(true, "ttyS2", "GO_BACK_NOW"));
  }

  @Test
  void aHoldCarriesNoTriggers() throws Exception {
    assertThat(json.writeValueAsString(DesiredStates.hold(3, "BootImage x is not Ready")))
        .isEqualTo(
            "{\"action\":\"Hold\",\"generation\":3,\"reason\":\"BootImage x is not Ready\","
                + "\"kernelArgs\":[]}");
  }

  @Test
  void theImagesKernelModulesGoToTheAgentWithTheDefaultApplied() throws Exception {
    MachineBoot mb =
        json.readValue(
            "{\"metadata\":{\"name\":\"m1\",\"namespace\":\"lab\",\"generation\":2},"
                + "\"spec\":{\"macAddress\":\"52:54:00:12:34:56\",\"imageRef\":\"debian\"}}",
            MachineBoot.class);
    for (String mode : new String[] {null, "Bootstrap", "Image", "None"}) {
      BootImage image =
          json.readValue(
              "{\"metadata\":{\"name\":\"debian\",\"namespace\":\"lab\"},"
                  + "\"spec\":{\"source\":{\"url\":\"http://images/d.sqfs\"},"
                  + "\"sha256\":\""
                  + "a".repeat(64)
                  + "\""
                  + (mode == null ? "" : ",\"kernelModules\":\"" + mode + "\"")
                  + "},\"status\":{\"phase\":\"Ready\",\"format\":\"squashfs\","
                  + "\"sha256\":\""
                  + "a".repeat(64)
                  + "\",\"servedUrl\":\"/images/lab/debian\"}}",
              BootImage.class);

      DesiredState state = DesiredStates.of(mb, Optional.of(image), "http://op:8080");

      KernelModules expected = mode == null ? KernelModules.Bootstrap : KernelModules.valueOf(mode);
      assertThat(state.image().kernelModules()).as(String.valueOf(mode)).isEqualTo(expected);
      assertThat(json.writeValueAsString(state)).contains("\"kernelModules\":\"" + expected + "\"");
    }
  }

  @Test
  void theConfinementIsTheMachineBootsOverTheBootImagesAndDefaultsToMachine() throws Exception {
    String[][] cases = {
      // BootImage, MachineBoot, what the agent gets
      {null, null, "Machine"},
      {"Confined", null, "Confined"},
      {"Machine", "Confined", "Confined"},
      {"Confined", "Machine", "Machine"},
    };
    for (String[] c : cases) {
      MachineBoot mb =
          json.readValue(
              "{\"metadata\":{\"name\":\"m1\",\"namespace\":\"lab\",\"generation\":2},"
                  + "\"spec\":{\"macAddress\":\"52:54:00:12:34:56\",\"imageRef\":\"debian\","
                  + "\"devices\":[\"/dev/vdb\"]"
                  + (c[1] == null ? "" : ",\"confinement\":\"" + c[1] + "\"")
                  + "}}",
              MachineBoot.class);
      BootImage image =
          json.readValue(
              "{\"metadata\":{\"name\":\"debian\",\"namespace\":\"lab\"},"
                  + "\"spec\":{\"source\":{\"url\":\"http://images/d.sqfs\"},"
                  + "\"sha256\":\""
                  + "a".repeat(64)
                  + "\""
                  + (c[0] == null ? "" : ",\"confinement\":\"" + c[0] + "\"")
                  + "},\"status\":{\"phase\":\"Ready\",\"format\":\"squashfs\","
                  + "\"sha256\":\""
                  + "a".repeat(64)
                  + "\",\"servedUrl\":\"/images/lab/debian\"}}",
              BootImage.class);

      DesiredState state = DesiredStates.of(mb, Optional.of(image), "http://op:8080");

      assertThat(state.image().confinement())
          .as("BootImage %s, MachineBoot %s", c[0], c[1])
          .isEqualTo(Confinement.valueOf(c[2]));
      assertThat(state.image().devices()).isEqualTo(List.of("/dev/vdb"));
    }
  }
}
