package io.chrootbooter.agent.trigger;

/**
 * Ctrl+Alt+F12 from a stream of {@link EvdevEvent}s of one keyboard: fires on the press (not the
 * autorepeat, not the release) of F12 while a Ctrl (left or right) and an Alt (left or right) are
 * held. Pure; one instance per device, since modifiers held on one keyboard do not combine with
 * another's.
 */
public final class HotkeyDetector {
  private boolean leftCtrl;
  private boolean rightCtrl;
  private boolean leftAlt;
  private boolean rightAlt;

  /** Feeds one event; true when it completes the hotkey. */
  public boolean accept(EvdevEvent event) {
    if (event.type() != EvdevEvent.EV_KEY) {
      return false;
    }
    boolean down = event.value() != 0;
    switch (event.code()) {
      case EvdevEvent.KEY_LEFTCTRL -> leftCtrl = down;
      case EvdevEvent.KEY_RIGHTCTRL -> rightCtrl = down;
      case EvdevEvent.KEY_LEFTALT -> leftAlt = down;
      case EvdevEvent.KEY_RIGHTALT -> rightAlt = down;
      case EvdevEvent.KEY_F12 -> {
        return event.value() == 1 && (leftCtrl || rightCtrl) && (leftAlt || rightAlt);
      }
      default -> {
        return false;
      }
    }
    return false;
  }
}
