package io.chrootbooter.pxe;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.URI;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class PxeServerConfigTest {
  @Test
  void parsesTheDocumentedCommandLine() {
    PxeServerConfig c =
        PxeServerConfig.parse(
            "--operator",
            "http://10.0.0.1:8080",
            "--interface",
            "br0",
            "--tftp-root",
            "/srv/ipxe",
            "--default-script",
            "http://10.0.0.1:8080/default.ipxe",
            "--bind",
            "10.0.0.2");
    assertThat(c.operator()).isEqualTo(URI.create("http://10.0.0.1:8080"));
    assertThat(c.interfaceName()).hasValue("br0");
    assertThat(c.tftpRoot()).isEqualTo(Path.of("/srv/ipxe"));
    assertThat(c.defaultScript()).hasValue(URI.create("http://10.0.0.1:8080/default.ipxe"));
    assertThat(c.bind().orElseThrow().getHostAddress()).isEqualTo("10.0.0.2");
    assertThat(c.dhcpPort()).isEqualTo(67);
    assertThat(c.pxePort()).isEqualTo(4011);
    assertThat(c.tftpPort()).isEqualTo(69);
    assertThat(c.efiBootFile()).isEqualTo("snponly.efi");
  }

  @Test
  void saysWhatIsWrong() {
    assertThatThrownBy(() -> PxeServerConfig.parse("--interface", "br0"))
        .hasMessageStartingWith("--operator is required");
    assertThatThrownBy(() -> PxeServerConfig.parse("--operator", "https://op", "--bind", "1.2.3.4"))
        .hasMessageStartingWith("--operator \"https://op\" is not http://HOST[:PORT]");
    assertThatThrownBy(() -> PxeServerConfig.parse("--operator", "http://op"))
        .hasMessageStartingWith("give --interface, --bind, or both");
    assertThatThrownBy(() -> PxeServerConfig.parse("--operator", "http://op", "--bind", "host"))
        .hasMessage("--bind \"host\" is not an IPv4 address");
    assertThatThrownBy(() -> PxeServerConfig.parse("--operator"))
        .hasMessageStartingWith("--operator needs a value");
    assertThatThrownBy(() -> PxeServerConfig.parse("--frobnicate", "x"))
        .hasMessageStartingWith("unknown argument --frobnicate");
  }
}
