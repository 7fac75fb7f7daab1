package io.chrootbooter.agent.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class SseReaderTest {
  private final List<SseEvent> events = new ArrayList<>();
  private final AtomicInteger lines = new AtomicInteger();

  private void read(String stream) throws IOException {
    new SseReader(events::add, lines::incrementAndGet)
        .read(new ByteArrayInputStream(stream.getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void dispatchesEventsWithNameIdAndData() throws IOException {
    read("event: desired\nid: 3-abc\ndata: {\"action\":\"Run\"}\n\n");
    assertThat(events).containsExactly(new SseEvent("desired", "3-abc", "{\"action\":\"Run\"}"));
  }

  @Test
  void joinsDataLinesAndAcceptsCrlfAndCrLineEnds() throws IOException {
    read("data: one\r\ndata:two\rdata:  three\r\n\r\n");
    assertThat(events).containsExactly(new SseEvent("message", null, "one\ntwo\n three"));
  }

  @Test
  void heartbeatCommentsCountAsActivityButAreNotEvents() throws IOException {
    read(": heartbeat\n\n: heartbeat\n\n");
    assertThat(events).isEmpty();
    assertThat(lines.get()).isEqualTo(4);
  }

  @Test
  void theIdPersistsAcrossEventsAndAnEventCutOffByTheEndIsDropped() throws IOException {
    read("id: 7\ndata: a\n\ndata: b\n\ndata: cut off");
    assertThat(events)
        .containsExactly(new SseEvent("message", "7", "a"), new SseEvent("message", "7", "b"));
  }

  @Test
  void anOversizedLineFailsTheStreamInsteadOfFillingTheHeap() {
    String huge = "data: " + "x".repeat(SseReader.MAX_EVENT + 10) + "\n\n";
    assertThatThrownBy(() -> read(huge))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("longer");
    assertThat(events).isEmpty();
  }

  @Test
  void anEventOfManySmallLinesIsBoundedToo() {
    String many = "data: 0123456789\n".repeat(SseReader.MAX_EVENT / 10) + "\n";
    assertThatThrownBy(() -> read(many))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("larger");
  }
}
