package io.chrootbooter.agent.operator;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.protocol.Action;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.ImageFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * How this agent reads the data of a {@code desired} event: every action and format of the
 * protocol, and what a newer operator may add (fields, actions, formats) without breaking it.
 */
class DesiredStateEventTest {

  @ParameterizedTest
  @EnumSource(Action.class)
  void everyActionIsRead(Action action) {
    assertThat(
            OperatorClient.desiredState(
                "{\"action\":\"" + action.name() + "\",\"generation\":1,\"reason\":\"r\"}"))
        .hasValueSatisfying(state -> assertThat(state.action()).isEqualTo(action));
  }

  @ParameterizedTest
  @EnumSource(ImageFormat.class)
  void everyFormatIsRead(ImageFormat format) {
    assertThat(OperatorClient.desiredState(run(format.value())))
        .hasValueSatisfying(state -> assertThat(state.image().format()).isEqualTo(format));
  }

  @Test
  void anUnknownActionSkipsTheEvent() {
    assertThat(OperatorClient.desiredState("{\"action\":\"Reboot\",\"generation\":2}")).isEmpty();
    assertThat(OperatorClient.desiredState("{\"generation\":2}")).isEmpty();
    assertThat(OperatorClient.desiredState("not json")).isEmpty();
  }

  @Test
  void anUnknownFormatIsReadAsNoneSoThatTheLoadFailsWithAReason() {
    assertThat(OperatorClient.desiredState(run("erofs")))
        .hasValueSatisfying(
            state -> {
              assertThat(state.runs()).isTrue();
              assertThat(state.image().format()).isNull();
            });
  }

  @Test
  void unknownFieldsAreIgnored() {
    assertThat(
            OperatorClient.desiredState(
                "{\"action\":\"Bootstrap\",\"generation\":3,\"future\":[1],"
                    + "\"returnTriggers\":{\"hotkey\":false,\"keyboard\":\"us\"}}"))
        .hasValueSatisfying(
            state ->
                assertThat(state.returnTriggers())
                    .isEqualTo(new DesiredState.ReturnTriggers(false, null, null)));
  }

  private static String run(String format) {
    return "{\"action\":\"Run\",\"generation\":1,\"image\":{\"url\":\"http://op/i\",\"format\":\""
        + format
        + "\"}}";
  }

  @Test
  void aConsoleEventCarriesATicketAndNothingElseIsOne() {
    assertThat(OperatorClient.consoleTicket("{\"ticket\":\"AbCdEfGh0123456789_-xyz\"}"))
        .hasValue("AbCdEfGh0123456789_-xyz");
    assertThat(OperatorClient.consoleTicket("{\"ticket\":\"short\"}")).isEmpty();
    assertThat(OperatorClient.consoleTicket("{\"ticket\":\"../../etc/passwd?x=0123456789\"}"))
        .isEmpty();
    assertThat(OperatorClient.consoleTicket("{\"ticket\":42}")).isEmpty();
    assertThat(OperatorClient.consoleTicket("{}")).isEmpty();
    assertThat(OperatorClient.consoleTicket("not json")).isEmpty();
  }

  @Test
  void theConsoleConnectionGoesToTheOperatorsOriginOverWsOrWss(
      @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
    for (String[] c :
        new String[][] {
          {"http://10.0.0.1:8080/", "ws://10.0.0.1:8080"},
          {"https://op.lab:8443", "wss://op.lab:8443"}
        }) {
      OperatorClient client =
          new OperatorClient(
              java.net.URI.create(c[0]),
              "52:54:00:12:34:56",
              null,
              "boot-1",
              new SessionFile(dir.resolve("agent-session")),
              java.util.Optional.empty());
      assertThat(client.consoleUri("AbCdEfGh0123456789"))
          .hasToString(
              c[1] + "/agent/v1/machines/52:54:00:12:34:56/console/live?ticket=AbCdEfGh0123456789");
      client.close();
    }
  }
}
