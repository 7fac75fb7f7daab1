package io.chrootbooter.operator.statuspage;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImageSpec;
import io.chrootbooter.api.v1alpha1.ImageSource;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.MachineBootSpec;
import io.chrootbooter.api.v1alpha1.MachineBootStatus;
import io.chrootbooter.operator.status.RecordedEvent;
import io.chrootbooter.protocol.AgentInfo;
import io.chrootbooter.protocol.LastReturn;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.Progress;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The page's markup from objects, without a server: escaping, redaction, numbers. */
class StatusPageRenderingTest {
  private static final Instant NOW = Instant.parse("2026-12-03T10:00:00Z");
  private static final String HOSTILE = "\"><script>alert(1)</script><img src=x onerror=alert(2)>";
  private final StatusPage page = new StatusPage();

  static MachineBoot machine(String ns, String name, MachineBootStatus status) {
    MachineBoot mb = new MachineBoot();
    mb.setMetadata(new ObjectMetaBuilder().withNamespace(ns).withName(name).build());
    mb.setSpec(
        new MachineBootSpec("52:54:00:12:34:56", null, "debian-12", null, null, null, null, null));
    mb.setStatus(status);
    return mb;
  }

  static MachineBootStatus status(MachinePhase phase, Progress progress, String error) {
    return MachineBootStatus.builder()
        .phase(phase)
        .currentImage("debian-12")
        .observedGeneration(1L)
        .progress(progress)
        .lastReturn(new LastReturn("Serial", HOSTILE, "2026-12-03T09:58:00Z", 4200L, true))
        .agent(new AgentInfo("0.1.0", "b", "10.0.0.5", "6.1", "tiered"))
        .error(error)
        .conditions(
            List.of(
                new ConditionBuilder()
                    .withType("Stalled")
                    .withStatus("True")
                    .withReason("AgentFailed")
                    .withMessage("the agent reported: " + error)
                    .build()))
        .build();
  }

  @Test
  void everyUserValueIsEscapedInRowsAndInThePage() {
    MachineBoot mb = machine(HOSTILE, HOSTILE, status(MachinePhase.Failed, null, HOSTILE));
    RecordedEvent event =
        new RecordedEvent("MachineBoot", HOSTILE, HOSTILE, "Warning", HOSTILE, HOSTILE, NOW);
    String row = page.machine(StatusView.machine(mb, List.of(event), NOW));
    assertThat(row).doesNotContain("<script>", "<img", "onerror=alert(2)>");
    assertThat(row).contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x");
    assertThat(row).contains("&quot;&gt;");

    String html =
        page.page(StatusView.page(List.of(mb), List.of(), m -> List.of(event), NOW), "x-1", "n0");
    assertThat(html.split("<script", -1)).as("only the page's own script").hasSize(2);
    assertThat(html).contains("<script nonce=\"n0\">").contains("data-seq=\"x-1\"");
  }

  @Test
  void theLastLinesOfAConsoleShowEscapedRedactedAndWithoutTerminalCodes() {
    MachineBoot mb = machine("ns", "m1", status(MachinePhase.Running, null, null));
    String console =
        "m1 login: root\r\n"
            + "\u001b[1;32mroot@m1\u001b[0m:~# curl -H 'Authorization: Bearer eyJ.s3cret' x\r\n"
            + HOSTILE
            + "\u0007\r\n"
            + "y".repeat(400);
    StatusView.MachineRow row = StatusView.machine(mb, List.of(), console, NOW);
    assertThat(row.console())
        .startsWith("m1 login: root\nroot@m1:~# curl -H 'Authorization: Bearer [redacted]")
        .doesNotContain("s3cret")
        .doesNotContain("\u001b")
        .doesNotContain("\u0007")
        .endsWith("y".repeat(StatusView.MAX_CONSOLE_LINE) + "…");
    String html = page.machine(row);
    assertThat(html)
        .contains("<pre class=\"console\"")
        .contains("&lt;script&gt;alert(1)&lt;/script&gt;")
        .doesNotContain("<script>")
        .doesNotContain("s3cret")
        // The link to the full console of the current and of the previous boot.
        .contains("href=\"machines/ns/m1/console\"")
        .contains("href=\"machines/ns/m1/console?boot=previous\"");
    // No console recorded: no block.
    assertThat(page.machine(StatusView.machine(mb, List.of(), null, NOW)))
        .doesNotContain("class=\"console\"");
  }

  @Test
  void theLastBootAndSwitchShowTheirStepsEscapedAndTheFirstBootOnce() {
    io.chrootbooter.protocol.Timeline boot =
        new io.chrootbooter.protocol.Timeline(
            HOSTILE,
            null,
            null,
            "2026-12-03T09:50:00Z",
            null,
            null,
            "token=s3cret " + HOSTILE,
            List.of(
                new io.chrootbooter.protocol.Timeline.Step(
                    "agent-up", "2026-12-03T09:50:00Z", 1.25, null),
                new io.chrootbooter.protocol.Timeline.Step(
                    HOSTILE, "2026-12-03T09:50:01Z", 0.75, "Bearer abc.def " + HOSTILE),
                new io.chrootbooter.protocol.Timeline.Step(
                    "healthy", "2026-12-03T09:50:02Z", null, null)));
    MachineBootStatus status =
        status(MachinePhase.Running, null, null).withTimelines(boot, boot, List.of());
    StatusView.MachineRow row = StatusView.machine(machine("ns", "m1", status), List.of(), NOW);
    assertThat(row.timelines()).as("a first boot is the last switch too: shown once").hasSize(1);
    StatusView.TimelineView t = row.timelines().get(0);
    assertThat(t.kind()).isEqualTo("last boot");
    assertThat(t.result()).isEqualTo("in progress");
    assertThat(t.css()).isEqualTo("running");
    assertThat(t.took()).as("the steps that ended, without a total yet").isEqualTo("2.0 s");
    assertThat(t.when()).isEqualTo("09:50:00 UTC");
    assertThat(t.steps())
        .extracting(StatusView.StepLine::took)
        .containsExactly("1.3 s", "750 ms", null);
    assertThat(t.message()).isEqualTo("token=[redacted] " + HOSTILE);
    assertThat(t.steps().get(1).detail()).startsWith("Bearer [redacted] ");

    String html = page.machine(row);
    assertThat(html).doesNotContain("<script>", "<img", "s3cret", "abc.def");
    assertThat(html)
        .contains("<b>last boot</b> &quot;&gt;&lt;script&gt;")
        .contains("<span class=\"result-running\">in progress</span>")
        .contains("<meter min=\"0\" max=\"2000\" value=\"1250\"></meter> agent-up")
        .contains("healthy <span class=\"took\">…</span>");

    // A later switch shows beside it; a machine without any shows a dash.
    io.chrootbooter.protocol.Timeline change =
        new io.chrootbooter.protocol.Timeline(
            "debian-12",
            null,
            "SpecChange",
            "2026-12-02T09:00:00Z",
            62.0,
            io.chrootbooter.protocol.Timeline.FAILED,
            "BootTimeout",
            List.of(
                new io.chrootbooter.protocol.Timeline.Step(
                    "download", "2026-12-02T09:00:00Z", 62.0, null)));
    row =
        StatusView.machine(
            machine("ns", "m1", status.withTimelines(boot, change, List.of())), List.of(), NOW);
    assertThat(row.timelines())
        .extracting(StatusView.TimelineView::kind)
        .containsExactly("last boot", "last switch");
    assertThat(row.timelines().get(1).took()).isEqualTo("1 min 02 s");
    assertThat(row.timelines().get(1).css()).isEqualTo("failed");
    assertThat(row.timelines().get(1).when()).isEqualTo("2026-12-02 09:00 UTC");
    assertThat(
            page.machine(
                StatusView.machine(
                    machine("ns", "m2", status(MachinePhase.Running, null, null)), List.of(), NOW)))
        .doesNotContain("<ol class=\"steps\">");
  }

  @Test
  void aLostMachineIsMarkedAndShowsWhenItWasLastSeen() {
    MachineBootStatus lost =
        MachineBootStatus.builder()
            .phase(MachinePhase.Running)
            .currentImage("debian-12")
            .observedGeneration(1L)
            .conditions(
                List.of(
                    new io.fabric8.kubernetes.api.model.ConditionBuilder()
                        .withType("Ready")
                        .withStatus("False")
                        .withReason("AgentLost")
                        .withMessage("the agent was last heard from at " + NOW.minusSeconds(90))
                        .build(),
                    new io.fabric8.kubernetes.api.model.ConditionBuilder()
                        .withType("Stalled")
                        .withStatus("True")
                        .withReason("AgentLost")
                        .withMessage("the agent was last heard from at " + NOW.minusSeconds(90))
                        .build()))
            .lastSeen(NOW.minusSeconds(90).toString())
            .build();
    StatusView.MachineRow row = StatusView.machine(machine("ns", "m", lost), List.of(), NOW);
    assertThat(row.lost()).isTrue();
    assertThat(row.seenExact()).isEqualTo(NOW.minusSeconds(90).toString());
    assertThat(page.machine(row)).contains("agent lost").contains("seen <time");
    StatusView.MachineRow live =
        StatusView.machine(
            machine("ns", "m", status(MachinePhase.Running, null, null)), List.of(), NOW);
    assertThat(live.lost()).isFalse();
    assertThat(page.machine(live)).doesNotContain("agent lost");
  }

  @Test
  void credentialsInMessagesAreRedacted() {
    assertThat(StatusView.text("boot with cb.token=abc123 quiet"))
        .isEqualTo("boot with cb.token=[redacted] quiet");
    assertThat(StatusView.text("boot with cb.nonce=abc123 quiet"))
        .isEqualTo("boot with cb.nonce=[redacted] quiet");
    assertThat(StatusView.text("401: Authorization: Bearer eyJhbGciOi.x.y"))
        .doesNotContain("eyJhbGciOi");
    assertThat(StatusView.text("password=hunter2; secret: s3cr3t"))
        .isEqualTo("password=[redacted]; secret: [redacted]");
    assertThat(StatusView.text("downloading https://bob:pa55@mirror.example/a.squashfs?token=t0k"))
        .isEqualTo("downloading https://[redacted]@mirror.example/a.squashfs?token=[redacted]");
    assertThat(StatusView.text("x".repeat(1000))).hasSize(StatusView.MAX_TEXT + 1).endsWith("…");
  }

  @Test
  void downloadsAreClampedAndIndeterminateWithoutATotal() {
    assertThat(StatusView.download(new Progress(400L, 1000L, 50L)))
        .isEqualTo(new StatusView.Download(400, 1000L, "40% · 400 B of 1000 B · 50 B/s"));
    assertThat(StatusView.download(new Progress(5000L, 1000L, null)).value()).isEqualTo(1000);
    assertThat(StatusView.download(new Progress(-5L, 1000L, null)).value()).isZero();
    StatusView.Download unknown = StatusView.download(new Progress(3L * 1024 * 1024, null, null));
    assertThat(unknown.max()).isNull();
    assertThat(unknown.text()).isEqualTo("3.0 MiB");

    MachineBoot mb =
        machine("ns", "m", status(MachinePhase.Downloading, new Progress(40L, 100L, 0L), null));
    assertThat(page.machine(StatusView.machine(mb, List.of(), NOW)))
        .contains("<progress value=\"40\" max=\"100\"></progress>");
    MachineBoot running =
        machine("ns", "m", status(MachinePhase.Running, new Progress(40L, 100L, 0L), null));
    assertThat(page.machine(StatusView.machine(running, List.of(), NOW)))
        .as("no bar once the download is over")
        .doesNotContain("<progress");
  }

  @Test
  void numbersAndTimesReadLikeAPersonWouldWriteThem() {
    assertThat(StatusView.bytes(512)).isEqualTo("512 B");
    assertThat(StatusView.bytes(256 * 1024)).isEqualTo("256.0 KiB");
    assertThat(StatusView.bytes(1536L * 1024 * 1024)).isEqualTo("1.5 GiB");
    assertThat(StatusView.duration(850)).isEqualTo("850 ms");
    assertThat(StatusView.duration(4200)).isEqualTo("4.2 s");
    assertThat(StatusView.duration(184_000)).isEqualTo("3 min 04 s");
    assertThat(StatusView.duration(3_720_000)).isEqualTo("1 h 02 min");
    assertThat(StatusView.when(Instant.parse("2026-12-03T09:58:00Z"), NOW))
        .isEqualTo("09:58:00 UTC");
    assertThat(StatusView.when(Instant.parse("2026-12-01T09:58:00Z"), NOW))
        .isEqualTo("2026-12-01 09:58 UTC");
    assertThat(
            StatusView.lastReturn(new LastReturn("Hotkey", null, "yesterday", 10L, null), NOW)
                .when())
        .isEqualTo("yesterday");
  }

  @Test
  void imageRowShowsDigestSizeAndItsOwnDownload() {
    BootImage image = new BootImage();
    image.setMetadata(new ObjectMetaBuilder().withNamespace("ns").withName("debian-12").build());
    String sha = "a".repeat(64);
    image.setSpec(
        BootImageSpec.builder()
            .source(new ImageSource("http://h/debian.squashfs", null))
            .sha256(sha)
            .build());
    image.setStatus(
        new io.chrootbooter.api.v1alpha1.BootImageStatus(
            io.chrootbooter.api.v1alpha1.BootImagePhase.Downloading,
            io.chrootbooter.protocol.ImageFormat.SQUASHFS,
            null,
            null,
            null,
            new Progress(512L, 1024L, null),
            List.of(),
            1L));
    String row = page.image(StatusView.image(image, List.of(), NOW));
    assertThat(row)
        .contains("title=\"" + sha + "\"")
        .contains("aaaaaaaaaaaa…")
        .contains("squashfs")
        .contains("<progress value=\"512\" max=\"1024\">")
        .doesNotContain("http://h/debian.squashfs");
  }

  @Test
  void rowIdsSortLikeNamespaceThenName() {
    List<String[]> objects =
        List.of(
            new String[] {"a", "x"},
            new String[] {"a-b", "a"},
            new String[] {"a", "x-1"},
            new String[] {"ab", "a"},
            new String[] {"a", "x.1"});
    List<String[]> byTuple = new ArrayList<>(objects);
    byTuple.sort(Comparator.<String[], String>comparing(o -> o[0]).thenComparing(o -> o[1]));
    List<String[]> byId = new ArrayList<>(objects);
    byId.sort(Comparator.comparing(o -> StatusView.rowId("m", o[0], o[1])));
    assertThat(byId).containsExactlyElementsOf(byTuple);
    assertThat(StatusView.rowId("m", HOSTILE, HOSTILE)).matches("m-[0-9a-f]+-[0-9a-f]+");
  }

  @Test
  void noValueCanEndAnEventEarlyOrAddAField() {
    String event = StatusRoutes.event("row", "<tr>a\n\nevent: reset\r\ndata: x\rid: 9</tr>", "k-3");
    assertThat(event)
        .isEqualTo(
            "event: row\ndata: <tr>a\ndata: \ndata: event: reset\ndata: data: x\ndata: id: 9</tr>\n"
                + "id: k-3\n\n");
  }
}
