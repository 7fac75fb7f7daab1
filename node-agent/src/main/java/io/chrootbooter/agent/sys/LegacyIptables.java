package io.chrootbooter.agent.sys;

import com.sun.jna.LastErrorException;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Empties a legacy iptables table (x_tables: what {@code iptables-legacy} and {@code
 * ip6tables-legacy} make) as {@code iptables-legacy -t TABLE -F; -X; -P … ACCEPT} would: its rules
 * and its chains of its own go, every built-in chain accepts. One {@code IPT_SO_SET_REPLACE} (or
 * {@code IP6T_SO_SET_REPLACE}) with a table holding only the built-in chains' ACCEPT policies and
 * the closing error entry, after {@code IPT_SO_GET_INFO} told which hooks the table has and how
 * many entries it holds now (the kernel hands their counters back).
 *
 * <p>Our own structures rather than iptables-legacy: the bootstrap's busybox has no iptables. The
 * layouts are those of {@code linux/netfilter_ipv4/ip_tables.h}, {@code
 * linux/netfilter_ipv6/ip6_tables.h} and {@code linux/netfilter/x_tables.h} on a 64-bit kernel.
 */
public final class LegacyIptables {

  static final class LibC {
    static {
      Native.register(LibC.class, "c");
    }

    private LibC() {}

    static native int getsockopt(int fd, int level, int name, Pointer value, IntByReference length)
        throws LastErrorException;

    static native int setsockopt(int fd, int level, int name, Pointer value, int length)
        throws LastErrorException;

    static native int close(int fd) throws LastErrorException;
  }

  /** An x_tables family: its socket, option level and entry layout. */
  public enum Family {
    /** {@code ip_tables}: {@code struct ipt_entry} is 112 bytes, target_offset at 88. */
    IPV4("ip", 2, 0, 112, 88),
    /** {@code ip6_tables}: {@code struct ip6t_entry} is 168 bytes, target_offset at 140. */
    IPV6("ip6", 10, 41, 168, 140);

    final String name;
    final int domain;
    final int level;
    final int entrySize;
    final int targetOffsetAt;

    Family(String name, int domain, int level, int entrySize, int targetOffsetAt) {
      this.name = name;
      this.domain = domain;
      this.level = level;
      this.entrySize = entrySize;
      this.targetOffsetAt = targetOffsetAt;
    }

    /** {@code ip} or {@code ip6}, as {@code /proc/net/ip_tables_names} and its v6 twin. */
    public static Optional<Family> named(String name) {
      for (Family f : values()) {
        if (f.name.equals(name)) {
          return Optional.of(f);
        }
      }
      return Optional.empty();
    }
  }

  private static final int SOCK_RAW = 3;
  private static final int IPPROTO_RAW = 255;

  /** IPT_SO_GET_INFO = IPT_SO_SET_REPLACE = IPT_BASE_CTL (64), the same for IPv6. */
  private static final int SO_GET_INFO = 64;

  private static final int SO_SET_REPLACE = 64;

  /** {@code struct ipt_getinfo}: name[32], valid_hooks, hook_entry[5], underflow[5], num, size. */
  private static final int GETINFO_SIZE = 84;

  /** {@code struct ipt_replace} up to its entries (the counters pointer aligned to 8). */
  private static final int REPLACE_HEADER = 96;

  /** {@code struct xt_standard_target}, XT_ALIGNed: 32-byte header and the verdict. */
  private static final int STANDARD_TARGET = 40;

  /** {@code struct xt_error_target}, XT_ALIGNed: 32-byte header and errorname[30]. */
  private static final int ERROR_TARGET = 64;

  private static final int HOOKS = 5;

  /** -NF_ACCEPT - 1: a standard target's verdict "accept". */
  private static final int ACCEPT = -2;

  private LegacyIptables() {}

  /**
   * Empties {@code table} of {@code family} in the namespace of {@code netns} (the agent's own when
   * empty): no rules, no chains of its own, ACCEPT policies.
   *
   * @throws SyscallException naming the call, the table and the errno (ENOENT: no such table)
   */
  public static void empty(Optional<Path> netns, Family family, String table)
      throws SyscallException {
    byte[] name = table.getBytes(StandardCharsets.US_ASCII);
    if (name.length == 0 || name.length > 31) {
      throw new IllegalArgumentException("an x_tables table name has 1 to 31 bytes: " + table);
    }
    int fd = NetnsSockets.socket(netns, family.domain, SOCK_RAW, IPPROTO_RAW);
    try {
      Memory info = new Memory(GETINFO_SIZE);
      info.clear();
      info.write(0, name, 0, name.length);
      try {
        LibC.getsockopt(fd, family.level, SO_GET_INFO, info, new IntByReference(GETINFO_SIZE));
      } catch (LastErrorException e) {
        throw new SyscallException(
            "getsockopt", family.name + " " + table + ", SO_GET_INFO", e.getErrorCode());
      }
      int validHooks = info.getInt(32);
      int current = info.getInt(76);
      int hooks = Integer.bitCount(validHooks & ((1 << HOOKS) - 1));
      int standard = family.entrySize + STANDARD_TARGET;
      int size = hooks * standard + family.entrySize + ERROR_TARGET;

      Memory replace = new Memory(REPLACE_HEADER + size);
      replace.clear();
      replace.write(0, name, 0, name.length);
      replace.setInt(32, validHooks);
      replace.setInt(36, hooks + 1);
      replace.setInt(40, size);
      int offset = 0;
      for (int hook = 0; hook < HOOKS; hook++) {
        if ((validHooks & (1 << hook)) == 0) {
          continue;
        }
        replace.setInt(44 + 4 * hook, offset); // hook_entry
        replace.setInt(64 + 4 * hook, offset); // underflow: the chain's policy
        long e = REPLACE_HEADER + offset;
        replace.setShort(e + family.targetOffsetAt, (short) family.entrySize);
        replace.setShort(e + family.targetOffsetAt + 2, (short) standard);
        long target = e + family.entrySize;
        replace.setShort(target, (short) STANDARD_TARGET); // name "": the standard target
        replace.setInt(target + 32, ACCEPT);
        offset += standard;
      }
      long e = REPLACE_HEADER + offset;
      replace.setShort(e + family.targetOffsetAt, (short) family.entrySize);
      replace.setShort(e + family.targetOffsetAt + 2, (short) (family.entrySize + ERROR_TARGET));
      long target = e + family.entrySize;
      replace.setShort(target, (short) ERROR_TARGET);
      byte[] error = "ERROR".getBytes(StandardCharsets.US_ASCII);
      replace.write(target + 2, error, 0, error.length);
      replace.write(target + 32, error, 0, error.length);
      replace.setInt(84, current); // num_counters: the kernel checks it against the table
      Memory counters = new Memory(16L * Math.max(1, current));
      replace.setPointer(88, counters);
      try {
        LibC.setsockopt(fd, family.level, SO_SET_REPLACE, replace, REPLACE_HEADER + size);
      } catch (LastErrorException e2) {
        throw new SyscallException(
            "setsockopt", family.name + " " + table + ", SO_SET_REPLACE", e2.getErrorCode());
      }
    } finally {
      try {
        LibC.close(fd);
      } catch (LastErrorException ignored) {
        // nothing left to do with a socket that cannot be closed
      }
    }
  }
}
