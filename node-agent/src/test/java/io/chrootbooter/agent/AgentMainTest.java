package io.chrootbooter.agent;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Which command lines skip picocli: only the bootstrap's own {@code run}. */
class AgentMainTest {

  @Test
  void onlyABareRunIsTheBootPath() {
    assertThat(AgentMain.bootPath("run")).isTrue();
    assertThat(AgentMain.bootPath()).isFalse();
    assertThat(AgentMain.bootPath("run", "--help")).isFalse();
    assertThat(AgentMain.bootPath("run", "--no-console")).isFalse();
    assertThat(AgentMain.bootPath("--help")).isFalse();
    assertThat(AgentMain.bootPath("fetch", "run")).isFalse();
  }
}
