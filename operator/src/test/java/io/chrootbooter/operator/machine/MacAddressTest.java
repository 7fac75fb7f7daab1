package io.chrootbooter.operator.machine;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class MacAddressTest {

  @ParameterizedTest
  @ValueSource(
      strings = {
        "52:54:00:ab:cd:ef",
        "52:54:00:AB:CD:EF",
        "52-54-00-ab-cd-ef",
        "52-54-00-AB-CD-EF",
        "5254.00ab.cdef",
        "525400abcdef",
        "525400ABCDEF"
      })
  void commonNotationsNormaliseToLowerCaseColons(String notation) {
    assertThat(MacAddress.normalize(notation)).contains("52:54:00:ab:cd:ef");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        "52:54:00:ab:cd",
        "52:54:00:ab:cd:ef:01",
        "52:54-00:ab:cd:ef",
        "52:54:00:ab:cd:eg",
        "52:54:00:ab:cd:ef\n",
        "５２:54:00:ab:cd:ef",
        "${net0/mac}",
        "52::54:00:ab:cd:ef",
        "5254:00ab:cdef",
        "52.54.00.ab.cd.ef",
        "5254.00ab-cdef",
        "525400abcdeF0",
        "525400abcde ",
        "52:54:00:ab:cd:\u0665f"
      })
  void anythingElseIsRejected(String text) {
    assertThat(MacAddress.normalize(text)).isEmpty();
  }
}
