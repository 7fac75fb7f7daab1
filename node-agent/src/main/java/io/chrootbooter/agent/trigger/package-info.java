/**
 * What asks the agent to return to the bootstrap, besides a spec change: Ctrl+Alt+F12 on an evdev
 * keyboard ({@link EvdevEvent}, {@link HotkeyDetector}), a magic line on a serial port ({@link
 * MagicLineMatcher}), the in-target helper over its FIFO ({@link HelperMessage}) and the boot
 * timeout. Decoders and decisions are pure; {@link DeviceWatcher} is the thin reading loop.
 */
package io.chrootbooter.agent.trigger;
