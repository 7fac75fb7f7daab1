package io.chrootbooter.agent.operator;

import static org.assertj.core.api.Assertions.assertThat;

import io.chrootbooter.agent.relay.BootLog;
import io.chrootbooter.protocol.ConsoleChunk;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class ConsoleUploaderTest {
  private final List<ConsoleChunk> sent = new ArrayList<>();
  private final AtomicBoolean accept = new AtomicBoolean(true);
  private final AtomicReference<BootLog> current = new AtomicReference<>();

  private ConsoleUploader uploader() {
    ConsoleUploader u =
        new ConsoleUploader(
            chunk -> {
              if (accept.get()) {
                sent.add(chunk);
              }
              return accept.get();
            },
            () -> Optional.ofNullable(current.get()));
    u.close(); // the test drives sendOnce itself
    return u;
  }

  private static String text(ConsoleChunk c) {
    return new String(Base64.getDecoder().decode(c.data()), StandardCharsets.UTF_8);
  }

  @Test
  void sendsWhatIsNewResendsWhatWasRefusedAndFinishesABootBeforeTheNext() throws Exception {
    ConsoleUploader u = uploader();
    assertThat(u.sendOnce()).isFalse();
    BootLog first = new BootLog("b-1", "http://i/a", Instant.EPOCH, 1024);
    current.set(first);
    first.append("hello ");
    assertThat(u.sendOnce()).isTrue();
    assertThat(u.sendOnce()).as("nothing new").isFalse();
    first.append("world");
    first.warning("BUG: x");
    accept.set(false);
    assertThat(u.sendOnce()).isFalse();
    accept.set(true);
    assertThat(u.sendOnce()).isTrue();
    first.end();
    BootLog second = new BootLog("b-2", "http://i/b", Instant.EPOCH, 1024);
    second.append("next");
    current.set(second);
    assertThat(u.sendOnce()).as("the end of the first boot").isTrue();
    assertThat(u.sendOnce()).isTrue();
    assertThat(u.sendOnce()).isFalse();

    assertThat(sent).extracting(ConsoleChunk::boot).containsExactly("b-1", "b-1", "b-1", "b-2");
    assertThat(sent)
        .extracting(ConsoleUploaderTest::text)
        .containsExactly("hello ", "world", "", "next");
    assertThat(sent).extracting(ConsoleChunk::offset).containsExactly(0L, 6L, 11L, 0L);
    assertThat(sent.get(1).warnings()).containsExactly("BUG: x");
    assertThat(sent.get(1).firstWarning()).isZero();
    assertThat(sent).extracting(ConsoleChunk::ended).containsExactly(false, false, true, false);
  }

  @Test
  void aLogThatOverranItsRingIsSentFromItsOldestByte() throws Exception {
    ConsoleUploader u = uploader();
    BootLog log = new BootLog("b-1", "x", Instant.EPOCH, 8);
    current.set(log);
    log.append("0123456789abcdef");
    assertThat(u.sendOnce()).isTrue();
    assertThat(sent.get(0).offset()).isEqualTo(8);
    assertThat(text(sent.get(0))).isEqualTo("89abcdef");
  }
}
