package io.chrootbooter.agent.sys;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The nftables ruleset of a network namespace, spoken to over netlink ({@code NETLINK_NETFILTER},
 * subsystem {@code NFNL_SUBSYS_NFTABLES}) as nft(8) does: lists the tables, and deletes all of them
 * ({@code nft flush ruleset}: {@code NFT_MSG_DELTABLE} of family {@code NFPROTO_UNSPEC} without a
 * name, in one batch). Tables of iptables-nft (the default iptables on Debian and most
 * distributions) are nftables tables and go with them.
 *
 * <p>Our own few messages rather than nft: the bootstrap ships busybox, which has no nft, and nft
 * with libnftables, libnftnl, libmnl, libjansson and libgmp would add megabytes to every machine's
 * initramfs for the two requests used here. The message layouts are those of {@code
 * linux/netlink.h}, {@code linux/netfilter/nfnetlink.h} and {@code linux/netfilter/nf_tables.h}.
 *
 * <p>A kernel without nftables (no {@code nfnetlink} or {@code nf_tables} module loaded, and none
 * loadable) has no ruleset: {@link #tables} answers an empty list and {@link #flush} does nothing.
 */
public final class Nftables implements AutoCloseable {

  static final class LibC {
    static {
      Native.register(LibC.class, "c");
    }

    private LibC() {}

    static native int setsockopt(int fd, int level, int name, long[] value, int length)
        throws LastErrorException;

    static native long write(int fd, byte[] buffer, long count) throws LastErrorException;

    static native long read(int fd, byte[] buffer, long count) throws LastErrorException;

    static native int close(int fd) throws LastErrorException;
  }

  private static final int AF_NETLINK = 16;
  private static final int SOCK_RAW = 3;
  private static final int NETLINK_NETFILTER = 12;
  private static final int SOL_SOCKET = 1;
  private static final int SO_RCVTIMEO = 20;

  private static final int NLM_F_REQUEST = 0x1;
  private static final int NLM_F_ACK = 0x4;
  private static final int NLM_F_DUMP = 0x300;
  private static final int NLMSG_ERROR = 2;
  private static final int NLMSG_DONE = 3;
  private static final int NFNL_MSG_BATCH_BEGIN = 0x10;
  private static final int NFNL_MSG_BATCH_END = 0x11;
  private static final int NFNL_SUBSYS_NFTABLES = 10;
  private static final int NFT_MSG_NEWTABLE = 0;
  private static final int NFT_MSG_GETTABLE = 1;
  private static final int NFT_MSG_DELTABLE = 2;
  private static final int NFTA_TABLE_NAME = 1;

  /** errno values meaning "this kernel has no nftables (now)". */
  private static final int ENOENT = 2;

  private static final int EPROTONOSUPPORT = 93;
  private static final int EOPNOTSUPP = 95;

  private final int fd;
  private int seq = (int) (System.nanoTime() & 0x3fffffff);

  private Nftables(int fd) {
    this.fd = fd;
  }

  /**
   * A netlink socket in the namespace of {@code netns} (a {@code /proc/PID/ns/net} file), or in the
   * agent's own namespace when empty. The socket stays in the namespace it was made in; only a
   * short-lived thread of its own joins the other namespace to make it.
   *
   * @return empty when the kernel has no netfilter netlink (no nftables)
   */
  public static Optional<Nftables> open(Optional<Path> netns) throws SyscallException {
    int fd;
    try {
      fd = NetnsSockets.socket(netns, AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
    } catch (SyscallException e) {
      if (e.call().equals("socket") && e.errno() == EPROTONOSUPPORT) {
        return Optional.empty();
      }
      throw e;
    }
    try {
      // struct timeval {5 s, 0}: a kernel that never answers fails the request, not the agent.
      LibC.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, new long[] {5, 0}, 16);
    } catch (LastErrorException e) {
      LibC.close(fd);
      throw new SyscallException("setsockopt", "SO_RCVTIMEO", e.getErrorCode());
    }
    return Optional.of(new Nftables(fd));
  }

  /**
   * The tables, as nft names them: {@code ip nat}, {@code inet filter}, {@code bridge t}. Empty
   * when the kernel has no nf_tables.
   */
  public List<String> tables() throws SyscallException {
    ByteBuffer request = message(1);
    header(request, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE, NLM_F_REQUEST | NLM_F_DUMP, 0, 0);
    send(request, "NFT_MSG_GETTABLE");
    List<String> tables = new ArrayList<>();
    byte[] buffer = new byte[65536];
    while (true) {
      ByteBuffer in = receive(buffer, "NFT_MSG_GETTABLE");
      while (in.remaining() >= 16) {
        int start = in.position();
        int len = in.getInt();
        int type = in.getShort() & 0xffff;
        in.position(start + 16);
        if (len < 16 || start + len > in.limit()) {
          throw new SyscallException("recv", "NFT_MSG_GETTABLE: a truncated message", 5);
        }
        if (type == NLMSG_DONE) {
          return List.copyOf(tables);
        }
        if (type == NLMSG_ERROR) {
          int error = -in.getInt();
          if (error == 0) {
            in.position(align(start + len));
            continue;
          }
          if (error == ENOENT || error == EOPNOTSUPP) {
            return List.of(); // no nf_tables in this kernel
          }
          throw new SyscallException("recv", "NFT_MSG_GETTABLE", error);
        }
        if (type == (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE)) {
          int family = in.get() & 0xff;
          in.position(start + 20);
          String name = "?";
          while (in.position() + 4 <= start + len) {
            int at = in.position();
            int alen = in.getShort() & 0xffff;
            int atype = in.getShort() & 0x3fff;
            if (alen < 4 || at + alen > start + len) {
              break;
            }
            if (atype == NFTA_TABLE_NAME) {
              byte[] s = new byte[alen - 4];
              in.get(s);
              int end = 0;
              while (end < s.length && s[end] != 0) {
                end++;
              }
              name = new String(s, 0, end, StandardCharsets.UTF_8);
            }
            in.position(align(at + alen));
          }
          tables.add(family(family) + " " + name);
        }
        in.position(Math.min(in.limit(), align(start + len)));
      }
    }
  }

  /**
   * Deletes every table, with its chains, sets and rules, in one transaction ({@code nft flush
   * ruleset}). Nothing to do when the kernel has no nf_tables.
   */
  public void flush() throws SyscallException {
    ByteBuffer batch = message(3);
    int first = seq;
    header(batch, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
    header(batch, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELTABLE, NLM_F_REQUEST | NLM_F_ACK, 0, 0);
    header(batch, NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
    send(batch, "NFT_MSG_DELTABLE");
    byte[] buffer = new byte[8192];
    while (true) {
      ByteBuffer in = receive(buffer, "NFT_MSG_DELTABLE");
      while (in.remaining() >= 20) {
        int start = in.position();
        int len = in.getInt();
        int type = in.getShort() & 0xffff;
        in.getShort();
        int s = in.getInt();
        in.position(start + 16);
        if (type == NLMSG_ERROR) {
          int error = -in.getInt();
          if (s == first && (error == EOPNOTSUPP || error == ENOENT)) {
            return; // the batch's subsystem, nf_tables, is not in this kernel
          }
          if (error != 0) {
            throw new SyscallException("sendmsg", "NFT_MSG_DELTABLE (flush ruleset)", error);
          }
          if (s == first + 1) {
            return; // the deletion's acknowledgement
          }
        }
        in.position(Math.min(in.limit(), align(start + Math.max(len, 16))));
      }
    }
  }

  private ByteBuffer message(int count) {
    return ByteBuffer.allocate(20 * count).order(ByteOrder.nativeOrder());
  }

  /** An nlmsghdr and an nfgenmsg without attributes (20 bytes). */
  private void header(ByteBuffer b, int type, int flags, int family, int resId) {
    b.putInt(20).putShort((short) type).putShort((short) flags).putInt(seq++).putInt(0);
    b.put((byte) family).put((byte) 0); // NFNETLINK_V0
    b.put((byte) (resId >> 8)).put((byte) resId); // res_id is big-endian
  }

  private void send(ByteBuffer b, String what) throws SyscallException {
    byte[] bytes = b.array();
    try {
      LibC.write(fd, bytes, bytes.length);
    } catch (LastErrorException e) {
      throw new SyscallException("sendmsg", what, e.getErrorCode());
    }
  }

  private ByteBuffer receive(byte[] buffer, String what) throws SyscallException {
    long n;
    try {
      n = LibC.read(fd, buffer, buffer.length);
    } catch (LastErrorException e) {
      throw new SyscallException("recvmsg", what, e.getErrorCode());
    }
    return ByteBuffer.wrap(buffer, 0, (int) n).order(ByteOrder.nativeOrder());
  }

  private static int align(int n) {
    return (n + 3) & ~3;
  }

  /** nft's family names (linux/netfilter.h NFPROTO_*). */
  private static String family(int f) {
    return switch (f) {
      case 1 -> "inet";
      case 2 -> "ip";
      case 3 -> "arp";
      case 5 -> "netdev";
      case 7 -> "bridge";
      case 10 -> "ip6";
      default -> "family" + f;
    };
  }

  @Override
  public void close() {
    try {
      LibC.close(fd);
    } catch (LastErrorException e) {
      // nothing left to do with a socket that cannot be closed
    }
  }
}
