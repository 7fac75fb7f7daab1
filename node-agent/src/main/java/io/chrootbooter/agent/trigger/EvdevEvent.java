package io.chrootbooter.agent.trigger;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One evdev {@code struct input_event} (linux/input.h) as read from {@code /dev/input/event*} on a
 * 64-bit machine: 24 bytes, native (little-endian) order.
 *
 * <pre>
 * offset size field
 *      0    8 struct timeval.tv_sec
 *      8    8 struct timeval.tv_usec
 *     16    2 __u16 type   (EV_KEY = 1)
 *     18    2 __u16 code   (KEY_*, linux/input-event-codes.h)
 *     20    4 __s32 value  (key: 0 release, 1 press, 2 autorepeat)
 * </pre>
 */
public record EvdevEvent(long seconds, long micros, int type, int code, int value) {
  /** Size of one record on x86-64 and aarch64. */
  public static final int SIZE = 24;

  public static final int EV_KEY = 1;
  public static final int KEY_LEFTCTRL = 29;
  public static final int KEY_LEFTALT = 56;
  public static final int KEY_F12 = 88;
  public static final int KEY_RIGHTCTRL = 97;
  public static final int KEY_RIGHTALT = 100;

  /**
   * Decodes the record at {@code buffer}'s position, advancing it by {@link #SIZE}.
   *
   * @throws IllegalArgumentException when fewer than 24 bytes remain, naming the count
   */
  public static EvdevEvent decode(ByteBuffer buffer) {
    if (buffer.remaining() < SIZE) {
      throw new IllegalArgumentException(
          "input_event is " + buffer.remaining() + " bytes; it takes " + SIZE);
    }
    ByteBuffer b = buffer.slice(buffer.position(), SIZE).order(ByteOrder.LITTLE_ENDIAN);
    buffer.position(buffer.position() + SIZE);
    return new EvdevEvent(
        b.getLong(0), b.getLong(8), b.getShort(16) & 0xffff, b.getShort(18) & 0xffff, b.getInt(20));
  }

  /** The 24 bytes of this record. */
  public byte[] encode() {
    return ByteBuffer.allocate(SIZE)
        .order(ByteOrder.LITTLE_ENDIAN)
        .putLong(seconds)
        .putLong(micros)
        .putShort((short) type)
        .putShort((short) code)
        .putInt(value)
        .array();
  }

  /** A key press ({@code value} 1) of {@code code}. */
  public static EvdevEvent press(int code) {
    return new EvdevEvent(0, 0, EV_KEY, code, 1);
  }

  /** A key release ({@code value} 0) of {@code code}. */
  public static EvdevEvent release(int code) {
    return new EvdevEvent(0, 0, EV_KEY, code, 0);
  }
}
