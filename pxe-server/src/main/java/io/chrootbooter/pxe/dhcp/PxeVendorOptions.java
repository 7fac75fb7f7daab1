package io.chrootbooter.pxe.dhcp;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.TreeMap;

/**
 * The PXE sub-options carried in option 43 of a message whose option 60 is "PXEClient" (PXE
 * specification 2.1, "DHCP options used by PXE"). Only the ones a proxy needs:
 *
 * <pre>
 * code  name                   layout
 *    6  PXE_DISCOVERY_CONTROL  1 byte: bit 0 no broadcast discovery, bit 1 no multicast
 *                              discovery, bit 2 only listed servers, bit 3 boot the file
 *                              name of this offer without menu or discovery
 *    9  PXE_BOOT_MENU          repeated: type (2), description length (1), description
 *   10  PXE_MENU_PROMPT        timeout seconds (1), prompt text
 *   71  PXE_BOOT_ITEM          type (2), layer (2)
 * </pre>
 *
 * <p>A proxy offer must carry a boot menu (docs/architecture.md §7): iPXE ({@code
 * dhcp_has_pxeopts}, {@code have_pxe_menu} in src/net/udp/dhcp.c and src/usr/autoboot.c of the 2019
 * Debian build) ignores a proxy answer without one and prints "Nothing to boot"; with discovery
 * control bit 3 and a file name it boots the file name directly.
 *
 * @param discoveryControl sub-option 6, if present
 * @param bootMenu sub-option 9, in order
 * @param menuPrompt sub-option 10, if present
 * @param bootItem sub-option 71, if present (a client's boot server discovery request)
 */
public record PxeVendorOptions(
    OptionalInt discoveryControl,
    List<BootMenuItem> bootMenu,
    Optional<MenuPrompt> menuPrompt,
    Optional<BootItem> bootItem) {

  public static final int DISCOVERY_CONTROL = 6;
  public static final int BOOT_MENU = 9;
  public static final int MENU_PROMPT = 10;
  public static final int BOOT_ITEM = 71;

  /** Bits 0, 1 and 3 of sub-option 6: no discovery, boot the offered file name. */
  public static final int BOOT_FILE_NAME_WITHOUT_DISCOVERY = 0b1011;

  public PxeVendorOptions {
    bootMenu = List.copyOf(bootMenu);
    discoveryControl.ifPresent(v -> checkRange("discovery control", v, 0xff));
  }

  /** One entry of sub-option 9. */
  public record BootMenuItem(int type, String description) {
    public BootMenuItem {
      checkRange("boot menu type", type, 0xffff);
      if (description.getBytes(StandardCharsets.ISO_8859_1).length > 255) {
        throw new IllegalArgumentException("boot menu description is over 255 bytes");
      }
    }
  }

  /** Sub-option 10: seconds to show the prompt (0 = boot at once) and its text. */
  public record MenuPrompt(int timeoutSeconds, String prompt) {
    public MenuPrompt {
      checkRange("menu prompt timeout", timeoutSeconds, 0xff);
    }
  }

  /** Sub-option 71: the boot server type and layer a client asks for, or a server answers. */
  public record BootItem(int type, int layer) {
    public BootItem {
      checkRange("boot item type", type, 0xffff);
      checkRange("boot item layer", layer, 0xffff);
    }
  }

  /** Encodes as an option 43 value: sub-options in ascending code order, then END. */
  public byte[] encode() {
    Map<Integer, byte[]> sub = new TreeMap<>();
    discoveryControl.ifPresent(v -> sub.put(DISCOVERY_CONTROL, new byte[] {(byte) v}));
    if (!bootMenu.isEmpty()) {
      ByteArrayOutputStream menu = new ByteArrayOutputStream();
      for (BootMenuItem item : bootMenu) {
        byte[] d = item.description().getBytes(StandardCharsets.ISO_8859_1);
        menu.write(item.type() >> 8);
        menu.write(item.type());
        menu.write(d.length);
        menu.write(d, 0, d.length);
      }
      sub.put(BOOT_MENU, menu.toByteArray());
    }
    menuPrompt.ifPresent(
        p -> {
          byte[] t = p.prompt().getBytes(StandardCharsets.ISO_8859_1);
          byte[] v = new byte[1 + t.length];
          v[0] = (byte) p.timeoutSeconds();
          System.arraycopy(t, 0, v, 1, t.length);
          sub.put(MENU_PROMPT, v);
        });
    bootItem.ifPresent(
        i ->
            sub.put(
                BOOT_ITEM,
                new byte[] {
                  (byte) (i.type() >> 8), (byte) i.type(), (byte) (i.layer() >> 8), (byte) i.layer()
                }));
    return DhcpOptions.encodeEncapsulated(sub);
  }

  /**
   * Decodes an option 43 value. Unknown sub-options are skipped.
   *
   * @throws MalformedDhcpPacketException if the TLV framing or a known sub-option's layout is
   *     broken
   */
  public static PxeVendorOptions decode(byte[] value) throws MalformedDhcpPacketException {
    Map<Integer, byte[]> sub = DhcpOptions.decodeEncapsulated(value, "option 43");
    OptionalInt control = OptionalInt.empty();
    byte[] c = sub.get(DISCOVERY_CONTROL);
    if (c != null) {
      if (c.length != 1) {
        throw new MalformedDhcpPacketException(
            "option 43 sub-option 6 is " + c.length + " bytes; expected 1");
      }
      control = OptionalInt.of(c[0] & 0xff);
    }
    List<BootMenuItem> menu = new ArrayList<>();
    byte[] m = sub.get(BOOT_MENU);
    if (m != null) {
      int i = 0;
      while (i < m.length) {
        if (i + 3 > m.length || i + 3 + (m[i + 2] & 0xff) > m.length) {
          throw new MalformedDhcpPacketException(
              "option 43 sub-option 9 entry at offset "
                  + i
                  + " overruns its "
                  + m.length
                  + " bytes");
        }
        int len = m[i + 2] & 0xff;
        menu.add(
            new BootMenuItem(
                ((m[i] & 0xff) << 8) | (m[i + 1] & 0xff),
                new String(m, i + 3, len, StandardCharsets.ISO_8859_1)));
        i += 3 + len;
      }
    }
    Optional<MenuPrompt> prompt = Optional.empty();
    byte[] p = sub.get(MENU_PROMPT);
    if (p != null) {
      if (p.length < 1) {
        throw new MalformedDhcpPacketException("option 43 sub-option 10 is empty; minimum is 1");
      }
      prompt =
          Optional.of(
              new MenuPrompt(
                  p[0] & 0xff, new String(p, 1, p.length - 1, StandardCharsets.ISO_8859_1)));
    }
    Optional<BootItem> item = Optional.empty();
    byte[] b = sub.get(BOOT_ITEM);
    if (b != null) {
      if (b.length != 4) {
        throw new MalformedDhcpPacketException(
            "option 43 sub-option 71 is " + b.length + " bytes; expected 4");
      }
      item =
          Optional.of(
              new BootItem(
                  ((b[0] & 0xff) << 8) | (b[1] & 0xff), ((b[2] & 0xff) << 8) | (b[3] & 0xff)));
    }
    return new PxeVendorOptions(control, menu, prompt, item);
  }

  private static void checkRange(String what, int value, int max) {
    if (value < 0 || value > max) {
      throw new IllegalArgumentException(what + " is " + value + "; accepted 0.." + max);
    }
  }
}
