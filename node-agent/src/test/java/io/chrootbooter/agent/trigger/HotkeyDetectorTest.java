package io.chrootbooter.agent.trigger;

import static io.chrootbooter.agent.trigger.EvdevEvent.KEY_F12;
import static io.chrootbooter.agent.trigger.EvdevEvent.KEY_LEFTALT;
import static io.chrootbooter.agent.trigger.EvdevEvent.KEY_LEFTCTRL;
import static io.chrootbooter.agent.trigger.EvdevEvent.KEY_RIGHTALT;
import static io.chrootbooter.agent.trigger.EvdevEvent.KEY_RIGHTCTRL;
import static io.chrootbooter.agent.trigger.EvdevEvent.press;
import static io.chrootbooter.agent.trigger.EvdevEvent.release;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The evdev record decoder and the Ctrl+Alt+F12 decision, on recorded bytes. */
class HotkeyDetectorTest {
  /**
   * Ctrl+Alt+F12 as QEMU's {@code sendkey ctrl-alt-f12} delivers it to {@code /dev/input/event0}
   * (docs/architecture.md §7): MSC_SCAN + EV_KEY + SYN_REPORT per key; here the EV_KEY press of
   * F12, 24 bytes.
   */
  private static final String F12_PRESS =
      "e8a1256700000000" + "a086010000000000" + "0100" + "5800" + "01000000";

  @Test
  void decodesARecordedInputEvent() {
    EvdevEvent e = EvdevEvent.decode(ByteBuffer.wrap(HexFormat.of().parseHex(F12_PRESS)));
    assertThat(e).isEqualTo(new EvdevEvent(0x6725a1e8L, 100000, EvdevEvent.EV_KEY, KEY_F12, 1));
    assertThat(HexFormat.of().formatHex(e.encode())).isEqualTo(F12_PRESS);
  }

  @Test
  void rejectsAShortRecordNamingItsSize() {
    assertThatThrownBy(() -> EvdevEvent.decode(ByteBuffer.allocate(16)))
        .hasMessage("input_event is 16 bytes; it takes 24");
  }

  record Case(String name, List<EvdevEvent> events, boolean fires) {
    @Override
    public String toString() {
      return name;
    }
  }

  static List<Case> cases() {
    EvdevEvent syn = new EvdevEvent(0, 0, 0, 0, 0);
    EvdevEvent msc = new EvdevEvent(0, 0, 4, 4, 0x58);
    return List.of(
        new Case(
            "left ctrl + left alt + F12",
            List.of(press(KEY_LEFTCTRL), syn, press(KEY_LEFTALT), msc, press(KEY_F12)),
            true),
        new Case(
            "right ctrl + right alt + F12",
            List.of(press(KEY_RIGHTCTRL), press(KEY_RIGHTALT), press(KEY_F12)),
            true),
        new Case(
            "left ctrl + right alt + F12",
            List.of(press(KEY_LEFTCTRL), press(KEY_RIGHTALT), press(KEY_F12)),
            true),
        new Case("F12 alone", List.of(press(KEY_F12)), false),
        new Case("ctrl + F12", List.of(press(KEY_LEFTCTRL), press(KEY_F12)), false),
        new Case(
            "alt released before F12",
            List.of(press(KEY_LEFTCTRL), press(KEY_LEFTALT), release(KEY_LEFTALT), press(KEY_F12)),
            false),
        new Case(
            "F12 before the modifiers",
            List.of(press(KEY_F12), press(KEY_LEFTCTRL), press(KEY_LEFTALT)),
            false),
        new Case(
            "autorepeat of F12 does not fire",
            List.of(press(KEY_LEFTCTRL), press(KEY_LEFTALT), new EvdevEvent(0, 0, 1, KEY_F12, 2)),
            false),
        new Case(
            "release of F12 does not fire",
            List.of(press(KEY_LEFTCTRL), press(KEY_LEFTALT), release(KEY_F12)),
            false),
        new Case(
            "non-key event with F12's code",
            List.of(press(KEY_LEFTCTRL), press(KEY_LEFTALT), new EvdevEvent(0, 0, 4, KEY_F12, 1)),
            false));
  }

  @ParameterizedTest
  @MethodSource("cases")
  void firesOnlyOnCtrlAltF12(Case c) {
    HotkeyDetector detector = new HotkeyDetector();
    boolean fired = false;
    for (EvdevEvent e : c.events()) {
      fired = detector.accept(e);
    }
    assertThat(fired).isEqualTo(c.fires());
  }

  @Test
  void firesOncePerPress() {
    HotkeyDetector detector = new HotkeyDetector();
    detector.accept(press(KEY_LEFTCTRL));
    detector.accept(press(KEY_LEFTALT));
    assertThat(detector.accept(press(KEY_F12))).isTrue();
    assertThat(detector.accept(release(KEY_F12))).isFalse();
    assertThat(detector.accept(press(KEY_F12))).isTrue();
  }
}
