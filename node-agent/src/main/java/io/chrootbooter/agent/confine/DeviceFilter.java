package io.chrootbooter.agent.confine;

import com.sun.jna.LastErrorException;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import io.chrootbooter.agent.sys.Errno;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The device filter of a {@link io.chrootbooter.protocol.Confinement#Confined} target's cgroup: a
 * {@code BPF_PROG_TYPE_CGROUP_DEVICE} program, attached to the cgroup before anything runs in it,
 * that lets its processes open (and make) only the devices of the private {@code /dev}: {@code null
 * zero full random urandom tty ptmx}, the pseudo-terminals, the target's console and the devices
 * the MachineBoot lists. Any other device is refused with {@code EPERM}, whichever node it is
 * opened through: the target keeps {@code CAP_SYS_ADMIN} and could mount a devtmpfs of its own,
 * with nodes for every disk of the machine.
 *
 * <p>It is what systemd's {@code DevicePolicy=closed} and the container runtimes attach on cgroup
 * v2; the program is the same few instructions for every rule (type, major, minor), written here
 * and loaded with bpf(2) through JNA, as the agent's other system calls are. The kernel runs every
 * device program of the cgroup and its ancestors and allows an access only when all of them do; the
 * target's seccomp filter refuses it bpf(2), so it cannot attach or detach one. The program goes
 * with the cgroup when the agent removes it.
 */
public final class DeviceFilter {

  /** An allowed device: {@code 'c'} or {@code 'b'}, its major, its minor or -1 for any. */
  public record Device(char type, int major, int minor) {
    public Device {
      if (type != 'c' && type != 'b') {
        throw new IllegalArgumentException("type " + type);
      }
    }
  }

  /** The devices every Confined target may use. */
  public static final List<Device> BASIC =
      List.of(
          new Device('c', 1, 3), // null
          new Device('c', 1, 5), // zero
          new Device('c', 1, 7), // full
          new Device('c', 1, 8), // random
          new Device('c', 1, 9), // urandom
          new Device('c', 5, 0), // tty
          new Device('c', 5, 2)); // ptmx

  /** Majors of the Unix 98 pseudo-terminal slaves ({@code /dev/pts/N}): 136 to 143. */
  private static final int PTS_FIRST = 136;

  private static final int PTS_LAST = 143;

  private static final int BPF_PROG_LOAD = 5;
  private static final int BPF_PROG_ATTACH = 8;
  private static final int BPF_PROG_TYPE_CGROUP_DEVICE = 15;
  private static final int BPF_CGROUP_DEVICE = 6;
  private static final int BPF_F_ALLOW_MULTI = 2;
  private static final int O_RDONLY = 0;
  private static final int O_DIRECTORY = 0200000;
  private static final int O_CLOEXEC = 02000000;

  static final class LibC {
    static {
      Native.register(LibC.class, "c");
    }

    private LibC() {}

    static native long syscall(long number, long cmd, Pointer attr, long size)
        throws LastErrorException;

    static native int open(String path, int flags) throws LastErrorException;

    static native int close(int fd);
  }

  private DeviceFilter() {}

  /**
   * What a target with {@code console} and {@code listed} devices may use: {@link #BASIC}, the
   * console when it is a device, and each listed device that is a device node of the bootstrap (one
   * that is not is refused by the enter step, which names it).
   */
  public static List<Device> allowed(Path console, List<String> listed) {
    List<Device> devices = new ArrayList<>(BASIC);
    deviceOf(console).ifPresent(devices::add);
    for (String path : listed) {
      deviceOf(Path.of(path)).ifPresent(devices::add);
    }
    return List.copyOf(devices);
  }

  private static Optional<Device> deviceOf(Path path) {
    try {
      int mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
      long rdev = (Long) Files.getAttribute(path, "unix:rdev", LinkOption.NOFOLLOW_LINKS);
      int type = mode & 0170000;
      if (type != 0020000 && type != 0060000) {
        return Optional.empty();
      }
      // glibc's major(3) and minor(3)
      int major = (int) (((rdev >>> 32) & 0xfffff000L) | ((rdev >>> 8) & 0xfffL));
      int minor = (int) (((rdev >>> 12) & 0xffffff00L) | (rdev & 0xffL));
      return Optional.of(new Device(type == 0020000 ? 'c' : 'b', major, minor));
    } catch (IOException | UnsupportedOperationException e) {
      return Optional.empty();
    }
  }

  /**
   * Loads the program for {@code allowed} and attaches it to {@code cgroup}, a cgroup2 directory
   * that no process is in yet.
   *
   * @throws IOException when the kernel refuses (no {@code CONFIG_CGROUP_BPF}, no cgroup2): the
   *     target is then not booted
   */
  public static void attach(Path cgroup, List<Device> allowed) throws IOException {
    long bpf = bpfNumber();
    byte[] program = program(allowed);
    Memory insns = new Memory(program.length);
    insns.write(0, program, 0, program.length);
    Memory license = new Memory(16);
    license.clear();
    license.setString(0, "Apache-2.0", StandardCharsets.US_ASCII.name());
    Memory load = new Memory(128);
    load.clear();
    load.setInt(0, BPF_PROG_TYPE_CGROUP_DEVICE);
    load.setInt(4, program.length / 8);
    load.setLong(8, Pointer.nativeValue(insns));
    load.setLong(16, Pointer.nativeValue(license));
    byte[] name = "cb_confined_dev".getBytes(StandardCharsets.US_ASCII);
    load.write(48, name, 0, name.length);
    int prog;
    try {
      prog = (int) LibC.syscall(bpf, BPF_PROG_LOAD, load, 128);
    } catch (LastErrorException e) {
      throw new IOException(
          "cannot confine the target: loading its device filter (bpf BPF_PROG_LOAD): "
              + Errno.name(e.getErrorCode()),
          e);
    }
    try {
      int dir;
      try {
        dir = LibC.open(cgroup.toString(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      } catch (LastErrorException e) {
        throw new IOException("open " + cgroup + ": " + Errno.name(e.getErrorCode()), e);
      }
      try {
        Memory attach = new Memory(32);
        attach.clear();
        attach.setInt(0, dir);
        attach.setInt(4, prog);
        attach.setInt(8, BPF_CGROUP_DEVICE);
        attach.setInt(12, BPF_F_ALLOW_MULTI);
        LibC.syscall(bpf, BPF_PROG_ATTACH, attach, 32);
      } catch (LastErrorException e) {
        throw new IOException(
            "cannot confine the target: attaching its device filter to "
                + cgroup
                + " (bpf BPF_PROG_ATTACH): "
                + Errno.name(e.getErrorCode()),
            e);
      } finally {
        LibC.close(dir);
      }
    } finally {
      // The cgroup holds the program from now on.
      LibC.close(prog);
    }
  }

  /** bpf(2)'s number: x86-64 has its own, aarch64 and riscv64 asm-generic's. */
  private static long bpfNumber() throws IOException {
    return switch (System.getProperty("os.arch")) {
      case "amd64", "x86_64" -> 321;
      case "aarch64", "riscv64" -> 280;
      default ->
          throw new IOException(
              "cannot confine the target: no bpf(2) number known for "
                  + System.getProperty("os.arch"));
    };
  }

  /**
   * The program: {@code r2} = device type, {@code r3} = major, {@code r4} = minor of the access;
   * one block per allowed device that returns 1 on a match, the pseudo-terminals' major range, then
   * return 0.
   */
  static byte[] program(List<Device> allowed) {
    Asm a = new Asm();
    a.ldxw(2, 1, 0); // access_type
    a.and(2, 0xffff); // its low half: BPF_DEVCG_DEV_BLOCK 1, BPF_DEVCG_DEV_CHAR 2
    a.ldxw(3, 1, 4); // major
    a.ldxw(4, 1, 8); // minor
    for (Device d : allowed) {
      int type = d.type() == 'b' ? 1 : 2;
      boolean anyMinor = d.minor() < 0;
      a.jne(2, type, anyMinor ? 3 : 4);
      a.jne(3, d.major(), anyMinor ? 2 : 3);
      if (!anyMinor) {
        a.jne(4, d.minor(), 2);
      }
      a.mov(0, 1);
      a.exit();
    }
    a.jne(2, 2, 4);
    a.jlt(3, PTS_FIRST, 3);
    a.jgt(3, PTS_LAST, 2);
    a.mov(0, 1);
    a.exit();
    a.mov(0, 0);
    a.exit();
    return a.bytes();
  }

  /** struct bpf_insn: code, dst_reg (low nibble) and src_reg (high nibble), off, imm. */
  private static final class Asm {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    private void insn(int code, int dst, int src, int off, int imm) {
      ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.nativeOrder());
      b.put((byte) code);
      b.put((byte) ((src << 4) | dst));
      b.putShort((short) off);
      b.putInt(imm);
      out.writeBytes(b.array());
    }

    void ldxw(int dst, int src, int off) {
      insn(0x61, dst, src, off, 0); // BPF_LDX | BPF_MEM | BPF_W
    }

    void and(int dst, int imm) {
      insn(0x57, dst, 0, 0, imm); // BPF_ALU64 | BPF_AND | BPF_K
    }

    void mov(int dst, int imm) {
      insn(0xb7, dst, 0, 0, imm); // BPF_ALU64 | BPF_MOV | BPF_K
    }

    void jne(int dst, int imm, int off) {
      insn(0x55, dst, 0, off, imm); // BPF_JMP | BPF_JNE | BPF_K
    }

    void jlt(int dst, int imm, int off) {
      insn(0xa5, dst, 0, off, imm); // BPF_JMP | BPF_JLT | BPF_K
    }

    void jgt(int dst, int imm, int off) {
      insn(0x25, dst, 0, off, imm); // BPF_JMP | BPF_JGT | BPF_K
    }

    void exit() {
      insn(0x95, 0, 0, 0, 0); // BPF_JMP | BPF_EXIT
    }

    byte[] bytes() {
      return out.toByteArray();
    }
  }
}
