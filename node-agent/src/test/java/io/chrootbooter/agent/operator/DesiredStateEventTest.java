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
}
