package io.chrootbooter.operator.boottest;

import static org.assertj.core.api.Assertions.assertThat;

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
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;

/** The JUnit XML a CI system reads: well-formed whatever the messages hold, counts that add up. */
class JunitReportTest {

  private static BootTest finished() {
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
    String hostile = "not healthy: <script>&\"'\u0000\u001b[31m]]> \uD83D\uDE00 \uD800";
    MachineTestResult passed =
        new MachineTestResult(
            "m1",
            MachineTestPhase.Passed,
            null,
            "2026-01-01T10:00:00.123Z",
            null,
            "debian-12",
            List.of(
                new CheckResult("healthy", "healthy", CheckOutcome.Passed, "t", 1500L, "ok"),
                new CheckResult(
                    "returns-Hotkey", "returns", CheckOutcome.Skipped, null, null, null)),
            List.of(),
            null,
            null,
            null,
            true);
    MachineTestResult failed =
        new MachineTestResult(
            "m2",
            MachineTestPhase.Failed,
            hostile,
            "2026-01-01T10:00:05Z",
            null,
            null,
            List.of(
                new CheckResult("healthy", "healthy", CheckOutcome.Failed, "t", 2000L, hostile),
                new CheckResult("later", "returns", CheckOutcome.Error, null, null, "x")),
            List.of(new TimelineEntry("2026-01-01T10:00:05Z", "held; " + hostile)),
            null,
            null,
            null,
            true);
    bt.setStatus(
        new BootTestStatus(
            BootTestStatus.TestPhase.Failed, 1L, null, null, 1, 1, List.of(passed, failed), null));
    return bt;
  }

  private static Document parse(String xml) throws Exception {
    var factory = DocumentBuilderFactory.newInstance();
    factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
    return factory
        .newDocumentBuilder()
        .parse(new ByteArrayInputStream(xml.getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void oneTestcasePerMachineAndCheckWithFailuresAndTheTimeline() throws Exception {
    String xml = JunitReport.of(finished());
    Document doc = parse(xml);
    Element root = doc.getDocumentElement();
    assertThat(root.getTagName()).isEqualTo("testsuites");
    assertThat(root.getAttribute("tests")).isEqualTo("4");
    assertThat(root.getAttribute("failures")).isEqualTo("1");
    assertThat(root.getAttribute("errors")).isEqualTo("1");
    assertThat(root.hasAttribute("skipped")).as("not in the JUnit schema's testsuites").isFalse();
    assertThat(root.getAttribute("time")).isEqualTo("3.500");
    var suites = doc.getElementsByTagName("testsuite");
    assertThat(suites.getLength()).isEqualTo(2);
    Element m1 = (Element) suites.item(0);
    assertThat(m1.getAttribute("skipped")).isEqualTo("1");
    assertThat(m1.getAttribute("name")).isEqualTo("lab/smoke/m1");
    assertThat(m1.getAttribute("timestamp")).isEqualTo("2026-01-01T10:00:00");
    var cases = doc.getElementsByTagName("testcase");
    assertThat(cases.getLength()).isEqualTo(4);
    Element first = (Element) cases.item(0);
    assertThat(first.getAttribute("classname")).isEqualTo("smoke.m1");
    assertThat(first.getAttribute("time")).isEqualTo("1.500");
    assertThat(first.getChildNodes().getLength()).isZero();
    Element failure = (Element) doc.getElementsByTagName("failure").item(0);
    assertThat(failure.getAttribute("message"))
        .startsWith("not healthy: <script>&\"'\uFFFD\uFFFD[31m]]> \uD83D\uDE00 \uFFFD");
    assertThat(doc.getElementsByTagName("system-out").item(0).getTextContent())
        .contains("2026-01-01T10:00:05Z held; not healthy: <script>");
    assertThat(doc.getElementsByTagName("error").getLength()).isEqualTo(1);
    assertThat(doc.getElementsByTagName("skipped").getLength()).isEqualTo(1);
  }

  @Test
  void aTestWithoutStatusIsAnEmptyReport() throws Exception {
    BootTest bt = finished();
    bt.setStatus(null);
    Element root = parse(JunitReport.of(bt)).getDocumentElement();
    assertThat(root.getAttribute("tests")).isEqualTo("0");
    assertThat(root.getAttribute("name")).isEqualTo("BootTest lab/smoke");
  }
}
