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
 * Empties a legacy iptables table (x_tables: what {@code iptables-legacy}, {@code ip6tables-legacy}
 * and {@code arptables-legacy} make) as {@code iptables-legacy -t TABLE -F; -X; -P … ACCEPT} would:
 * its rules and its chains of its own go, every built-in chain accepts. One {@code
 * IPT_SO_SET_REPLACE} (or {@code IP6T_SO_SET_REPLACE}, {@code ARPT_SO_SET_REPLACE}) with a table
 * holding only the built-in chains' ACCEPT policies and the closing error entry, after {@code
 * IPT_SO_GET_INFO} told which hooks the table has and how many entries it holds now (the kernel
 * hands their counters back).
 *
 * <p>Our own structures rather than iptables-legacy: the bootstrap's busybox has no iptables. The
 * layouts are those of {@code linux/netfilter_ipv4/ip_tables.h}, {@code
 * linux/netfilter_ipv6/ip6_tables.h}, {@code linux/netfilter_arp/arp_tables.h} and {@code
 * linux/netfilter/x_tables.h} on a 64-bit kernel. ebtables (the bridge family) has a format of its
 * own and is not emptied here.
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

  /**
   * An x_tables family: its socket, option level and number, hooks, and the layouts of its entry,
   * of {@code *_getinfo} and of {@code *_replace} (their fields after the name and {@code
   * valid_hooks} move with the number of hooks).
   */
  public enum Family {
    /** {@code ip_tables}: {@code struct ipt_entry} is 112 bytes, target_offset at 88. */
    IPV4("ip", 2, 0, 64, 5, 112, 88),
    /** {@code ip6_tables}: {@code struct ip6t_entry} is 168 bytes, target_offset at 140. */
    IPV6("ip6", 10, 41, 64, 5, 168, 140),
    /**
     * {@code arp_tables} (arptables-legacy): an {@code AF_INET} socket at {@code SOL_IP}, {@code
     * ARPT_SO_SET_REPLACE} (96), three hooks; {@code struct arpt_entry} is 192 bytes, target_offset
     * at 164.
     */
    ARP("arp", 2, 0, 96, 3, 192, 164);

    final String name;
    final int domain;
    final int level;
    final int option;
    final int hooks;
    final int entrySize;
    final int targetOffsetAt;

    Family(
        String name,
        int domain,
        int level,
        int option,
        int hooks,
        int entrySize,
        int targetOffsetAt) {
      this.name = name;
      this.domain = domain;
      this.level = level;
      this.option = option;
      this.hooks = hooks;
      this.entrySize = entrySize;
      this.targetOffsetAt = targetOffsetAt;
    }

    /**
     * {@code ip}, {@code ip6} or {@code arp}, as {@code /proc/net/ip_tables_names} and its v6 and
     * ARP twins.
     */
    public static Optional<Family> named(String name) {
      for (Family f : values()) {
        if (f.name.equals(name)) {
          return Optional.of(f);
        }
      }
      return Optional.empty();
    }

    /** {@code *_getinfo}: name[32], valid_hooks, hook_entry[H], underflow[H], num_entries, size. */
    int getinfoSize() {
      return 32 + 4 + 8 * hooks + 8;
    }

    int getinfoNumEntries() {
      return 36 + 8 * hooks;
    }

    /** {@code *_replace}: hook_entry[H] at 44, then underflow[H]. */
    int replaceUnderflow() {
      return 44 + 4 * hooks;
    }

    int replaceNumCounters() {
      return 44 + 8 * hooks;
    }

    /** The counters pointer, aligned to 8. */
    int replaceCounters() {
      return (replaceNumCounters() + 4 + 7) & ~7;
    }

    /** Where the entries start: after the counters pointer. */
    int replaceHeader() {
      return replaceCounters() + 8;
    }
  }

  private static final int SOCK_RAW = 3;
  private static final int IPPROTO_RAW = 255;

  /** {@code struct xt_standard_target}, XT_ALIGNed: 32-byte header and the verdict. */
  private static final int STANDARD_TARGET = 40;

  /** {@code struct xt_error_target}, XT_ALIGNed: 32-byte header and errorname[30]. */
  private static final int ERROR_TARGET = 64;

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
      Memory info = new Memory(family.getinfoSize());
      info.clear();
      info.write(0, name, 0, name.length);
      try {
        LibC.getsockopt(
            fd, family.level, family.option, info, new IntByReference(family.getinfoSize()));
      } catch (LastErrorException e) {
        throw new SyscallException(
            "getsockopt", family.name + " " + table + ", SO_GET_INFO", e.getErrorCode());
      }
      int validHooks = info.getInt(32);
      int current = info.getInt(family.getinfoNumEntries());
      int hooks = Integer.bitCount(validHooks & ((1 << family.hooks) - 1));
      int standard = family.entrySize + STANDARD_TARGET;
      int size = hooks * standard + family.entrySize + ERROR_TARGET;

      int header = family.replaceHeader();
      Memory replace = new Memory(header + size);
      replace.clear();
      replace.write(0, name, 0, name.length);
      replace.setInt(32, validHooks);
      replace.setInt(36, hooks + 1);
      replace.setInt(40, size);
      int offset = 0;
      for (int hook = 0; hook < family.hooks; hook++) {
        if ((validHooks & (1 << hook)) == 0) {
          continue;
        }
        replace.setInt(44 + 4 * hook, offset); // hook_entry
        replace.setInt(family.replaceUnderflow() + 4 * hook, offset); // underflow: the policy
        long e = header + offset;
        replace.setShort(e + family.targetOffsetAt, (short) family.entrySize);
        replace.setShort(e + family.targetOffsetAt + 2, (short) standard);
        long target = e + family.entrySize;
        replace.setShort(target, (short) STANDARD_TARGET); // name "": the standard target
        replace.setInt(target + 32, ACCEPT);
        offset += standard;
      }
      long e = header + offset;
      replace.setShort(e + family.targetOffsetAt, (short) family.entrySize);
      replace.setShort(e + family.targetOffsetAt + 2, (short) (family.entrySize + ERROR_TARGET));
      long target = e + family.entrySize;
      replace.setShort(target, (short) ERROR_TARGET);
      byte[] error = "ERROR".getBytes(StandardCharsets.US_ASCII);
      replace.write(target + 2, error, 0, error.length);
      replace.write(target + 32, error, 0, error.length);
      // num_counters: the kernel checks it against the table
      replace.setInt(family.replaceNumCounters(), current);
      Memory counters = new Memory(16L * Math.max(1, current));
      replace.setPointer(family.replaceCounters(), counters);
      try {
        LibC.setsockopt(fd, family.level, family.option, replace, header + size);
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
