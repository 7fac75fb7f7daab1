package io.chrootbooter.operator.boottest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.chrootbooter.api.v1alpha1.BootTest;
import io.chrootbooter.api.v1alpha1.BootTestCheck;
import io.chrootbooter.api.v1alpha1.BootTestSpec;
import io.chrootbooter.api.v1alpha1.BootTestStatus;
import io.chrootbooter.api.v1alpha1.MachineSelection;
import io.chrootbooter.api.v1alpha1.MachineTestResult;
import io.chrootbooter.api.v1alpha1.MachineTestResult.CheckOutcome;
import io.chrootbooter.api.v1alpha1.MachineTestResult.CheckResult;
import io.chrootbooter.api.v1alpha1.MachineTestResult.MachineTestPhase;
import io.chrootbooter.api.v1alpha1.MachineTestResult.TimelineEntry;
import io.chrootbooter.api.v1alpha1.PromotionStatus;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.io.StringReader;
import java.net.URL;
import java.util.List;
import javax.xml.XMLConstants;
import javax.xml.transform.stream.StreamSource;
import javax.xml.validation.Schema;
import javax.xml.validation.SchemaFactory;
import javax.xml.validation.Validator;
import org.junit.jupiter.api.Test;
import org.xml.sax.SAXParseException;

/**
 * BootTest reports against the JUnit schema most CI systems accept: Jenkins' xUnit plugin's {@code
 * junit-10.xsd}, kept unchanged with its licence in {@code src/test/resources/junit}. Validated
 * with the JDK's own {@code javax.xml.validation}, external entities and schema locations off.
 */
class JunitSchemaTest {
  private static final String HOSTILE =
      "not healthy: <script>&\"'\u0000\u001b[31m]]> \uD83D\uDE00 \uD800 </system-out>";

  private static Schema schema() throws Exception {
    URL xsd = JunitSchemaTest.class.getResource("/junit/junit-10.xsd");
    assertThat(xsd).as("the vendored schema on the test class path").isNotNull();
    SchemaFactory factory = SchemaFactory.newInstance(XMLConstants.W3C_XML_SCHEMA_NS_URI);
    factory.setProperty(XMLConstants.ACCESS_EXTERNAL_DTD, "");
    factory.setProperty(XMLConstants.ACCESS_EXTERNAL_SCHEMA, "file");
    return factory.newSchema(xsd);
  }

  private static void validate(String xml) throws Exception {
    Validator validator = schema().newValidator();
    validator.setProperty(XMLConstants.ACCESS_EXTERNAL_DTD, "");
    validator.setProperty(XMLConstants.ACCESS_EXTERNAL_SCHEMA, "");
    validator.validate(new StreamSource(new StringReader(xml)));
  }

  private static MachineTestResult machine(
      String name, MachineTestPhase phase, List<CheckResult> checks, String startTime) {
    return new MachineTestResult(
        name,
        phase,
        phase == MachineTestPhase.Failed ? HOSTILE : null,
        startTime,
        null,
        "debian-12",
        checks,
        List.of(new TimelineEntry("2026-01-01T10:00:05Z", "held; " + HOSTILE)),
        null,
        null,
        null,
        true);
  }

  /** A test with every outcome a check can have, hostile text in every field, and a promotion. */
  private static BootTest everything() {
    BootTest bt = new BootTest();
    bt.setMetadata(new ObjectMetaBuilder().withName("smoke").withNamespace("lab").build());
    bt.setSpec(
        new BootTestSpec(
            "busybox",
            new MachineSelection(null, List.of("m1", "m2")),
            1,
            List.of(new BootTestCheck(null, new BootTestCheck.Healthy("1s"), null)),
            null,
            null));
    MachineTestResult passed =
        machine(
            "m1",
            MachineTestPhase.Passed,
            List.of(
                new CheckResult("healthy", "healthy", CheckOutcome.Passed, "t", 1500L, null),
                new CheckResult(
                    "uname", "command", CheckOutcome.Passed, "t", 250L, null, 0, HOSTILE),
                new CheckResult(
                    "returns-Hotkey", "returns", CheckOutcome.Skipped, null, null, HOSTILE),
                new CheckResult("later", "returns", CheckOutcome.Pending, null, null, null)),
            "2026-01-01T10:00:00.123Z");
    MachineTestResult failed =
        machine(
            "m2",
            MachineTestPhase.Failed,
            List.of(
                new CheckResult(
                    HOSTILE, "healthy", CheckOutcome.Failed, "t", 2000L, HOSTILE, 1, HOSTILE),
                new CheckResult("panic", null, CheckOutcome.Error, null, 12_345_678L, null)),
            "not a time");
    MachineTestResult promoted =
        machine(
            "m3",
            MachineTestPhase.Checking,
            List.of(new CheckResult("healthy", "healthy", null, null, null, null)),
            null);
    bt.setStatus(
        new BootTestStatus(
            BootTestStatus.TestPhase.Failed,
            1L,
            null,
            null,
            1,
            1,
            List.of(passed, failed),
            List.of(),
            new PromotionStatus(
                null,
                "1/3 promoted",
                3,
                0,
                0,
                1,
                List.of("m3"),
                null,
                null,
                null,
                null,
                List.of(promoted),
                List.of())));
    return bt;
  }

  @Test
  void aReportWithEveryOutcomeAndHostileTextIsValidJunitXml() throws Exception {
    String xml = JunitReport.of(everything());
    validate(xml);
    assertThat(xml).contains("<failure ", "<error ", "<skipped ", "<system-out>", "<properties>");
  }

  @Test
  void aTestWithoutStatusOrMachinesIsValidToo() throws Exception {
    BootTest bt = everything();
    bt.setStatus(null);
    validate(JunitReport.of(bt));
    bt.setStatus(
        new BootTestStatus(
            BootTestStatus.TestPhase.Pending, 1L, null, null, 0, 0, List.of(), null));
    validate(JunitReport.of(bt));
  }

  @Test
  void theSchemaRefusesWhatACiSystemWouldNotRead() throws Exception {
    // The validation can fail: a testsuite without its counts, and an element the format lacks.
    assertThatThrownBy(
            () ->
                validate(
                    "<testsuites><testsuite name=\"x\"><testcase name=\"a\"/></testsuite></testsuites>"))
        .isInstanceOf(SAXParseException.class)
        .hasMessageContaining("tests");
    assertThatThrownBy(
            () ->
                validate(
                    "<testsuites><testsuite name=\"x\" tests=\"1\" failures=\"0\" errors=\"0\">"
                        + "<testcase name=\"a\"><passed/></testcase></testsuite></testsuites>"))
        .isInstanceOf(SAXParseException.class)
        .hasMessageContaining("passed");
  }
}
