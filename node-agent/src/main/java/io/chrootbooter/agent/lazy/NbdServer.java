package io.chrootbooter.agent.lazy;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import org.jboss.logging.Logger;

/**
 * A read-only NBD server on a unix socket: the fixed newstyle handshake ({@code NBD_OPT_GO}, {@code
 * NBD_OPT_INFO}, {@code NBD_OPT_EXPORT_NAME}, {@code NBD_OPT_LIST}, {@code NBD_OPT_ABORT}; other
 * options are answered {@code NBD_REP_ERR_UNSUP}), then simple replies to {@code NBD_CMD_READ},
 * {@code NBD_CMD_FLUSH} and {@code NBD_CMD_DISC}. Reads run on a small pool, so the kernel's
 * concurrent requests on one connection are answered as their blocks arrive, in any order. A write
 * is refused with {@code EPERM}, a read outside the export or longer than {@link #MAX_READ} with
 * {@code EINVAL}, a read whose blocks cannot be had with {@code EIO}; a client that breaks the
 * protocol (a wrong magic, an option longer than {@link #MAX_OPTION}) is disconnected. See the
 * protocol's specification, {@code doc/proto.md} of the NetworkBlockDevice project.
 */
public final class NbdServer implements Closeable {
  private static final Logger LOG = Logger.getLogger(NbdServer.class);

  /** Where the bytes come from. */
  public interface Blocks {
    /** The export's size in bytes. */
    long size();

    /** Fills {@code dst} (its remaining bytes) from {@code offset}; throws when it cannot. */
    void read(long offset, ByteBuffer dst) throws IOException;
  }

  /** The longest read served: the kernel asks for at most a few hundred KiB. */
  public static final int MAX_READ = 32 * 1024 * 1024;

  /** The longest option data accepted during the handshake. */
  static final int MAX_OPTION = 4096;

  static final long NBDMAGIC = 0x4e42444d41474943L;
  static final long IHAVEOPT = 0x49484156454F5054L;
  static final long REPLY_MAGIC = 0x3e889045565a9L;
  static final int REQUEST_MAGIC = 0x25609513;
  static final int SIMPLE_REPLY_MAGIC = 0x67446698;

  static final int FLAG_FIXED_NEWSTYLE = 1;
  static final int FLAG_NO_ZEROES = 2;
  static final int OPT_EXPORT_NAME = 1;
  static final int OPT_ABORT = 2;
  static final int OPT_LIST = 3;
  static final int OPT_INFO = 6;
  static final int OPT_GO = 7;
  static final int REP_ACK = 1;
  static final int REP_SERVER = 2;
  static final int REP_INFO = 3;
  static final int REP_ERR_UNSUP = 0x80000001;
  static final int REP_ERR_INVALID = 0x80000003;
  static final int REP_ERR_UNKNOWN = 0x80000006;
  static final int INFO_EXPORT = 0;
  static final int INFO_BLOCK_SIZE = 3;
  static final int TFLAG_HAS_FLAGS = 1;
  static final int TFLAG_READ_ONLY = 2;
  static final int TFLAG_SEND_FLUSH = 4;
  static final int TFLAG_CAN_MULTI_CONN = 1 << 8;
  static final int CMD_READ = 0;
  static final int CMD_WRITE = 1;
  static final int CMD_DISC = 2;
  static final int CMD_FLUSH = 3;
  static final int EPERM = 1;
  static final int EIO = 5;
  static final int EINVAL = 22;

  private final Path socket;
  private final String exportName;
  private final Blocks blocks;
  private final ServerSocketChannel server;
  private final ExecutorService readers;
  private final Set<SocketChannel> connections = ConcurrentHashMap.newKeySet();
  private final Thread acceptor;
  private volatile boolean closed;

  private NbdServer(Path socket, String exportName, Blocks blocks, int threads) throws IOException {
    this.socket = socket;
    this.exportName = exportName;
    this.blocks = blocks;
    AtomicInteger n = new AtomicInteger();
    this.readers =
        Executors.newFixedThreadPool(
            threads,
            r -> {
              Thread t = new Thread(r, "cb-nbd-read-" + n.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
    Files.deleteIfExists(socket);
    this.server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    try {
      server.bind(UnixDomainSocketAddress.of(socket));
    } catch (IOException e) {
      server.close();
      readers.shutdownNow();
      throw e;
    }
    this.acceptor = new Thread(this::accept, "cb-nbd-accept");
    acceptor.setDaemon(true);
  }

  /**
   * Serves {@code blocks} as the export {@code exportName} on a unix socket at {@code socket}
   * (replaced if it exists), with {@code threads} reads at a time.
   */
  public static NbdServer start(Path socket, String exportName, Blocks blocks, int threads)
      throws IOException {
    NbdServer s = new NbdServer(socket, exportName, blocks, threads);
    s.acceptor.start();
    return s;
  }

  /** The unix socket clients connect to. */
  public Path socket() {
    return socket;
  }

  private void accept() {
    while (!closed) {
      SocketChannel ch;
      try {
        ch = server.accept();
      } catch (IOException e) {
        if (!closed) {
          LOG.warnf("NBD server on %s stopped accepting: %s", socket, e.getMessage());
        }
        return;
      }
      connections.add(ch);
      Thread t = new Thread(() -> serve(ch), "cb-nbd-conn");
      t.setDaemon(true);
      t.start();
    }
  }

  private void serve(SocketChannel ch) {
    try (ch) {
      if (handshake(ch)) {
        transmission(ch);
      }
    } catch (EOFException | ClosedChannelException e) {
      // The client went away.
    } catch (IOException | RuntimeException e) {
      if (!closed) {
        LOG.warnf("NBD connection on %s ended: %s", socket, e.getMessage());
      }
    } finally {
      connections.remove(ch);
    }
  }

  /** The fixed newstyle handshake; true when the client entered transmission. */
  private boolean handshake(SocketChannel ch) throws IOException {
    ByteBuffer hello = ByteBuffer.allocate(18);
    hello
        .putLong(NBDMAGIC)
        .putLong(IHAVEOPT)
        .putShort((short) (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES));
    write(ch, hello.flip());
    int clientFlags = read(ch, 4).getInt();
    if ((clientFlags & FLAG_FIXED_NEWSTYLE) == 0) {
      throw new IOException("the NBD client does not speak the fixed newstyle handshake");
    }
    boolean noZeroes = (clientFlags & FLAG_NO_ZEROES) != 0;
    while (true) {
      ByteBuffer head = read(ch, 16);
      if (head.getLong() != IHAVEOPT) {
        throw new IOException("an NBD option without its magic");
      }
      int option = head.getInt();
      int length = head.getInt();
      if (length < 0 || length > MAX_OPTION) {
        throw new IOException("an NBD option of " + Integer.toUnsignedString(length) + " bytes");
      }
      ByteBuffer data = read(ch, length);
      switch (option) {
        case OPT_EXPORT_NAME -> {
          if (!exportName.equals(StandardCharsets.UTF_8.decode(data).toString())) {
            return false; // the protocol has no error for it: the server closes
          }
          ByteBuffer reply = ByteBuffer.allocate(10 + (noZeroes ? 0 : 124));
          reply.putLong(blocks.size()).putShort((short) transmissionFlags());
          write(ch, reply.position(reply.capacity()).flip());
          return true;
        }
        case OPT_ABORT -> {
          optionReply(ch, option, REP_ACK, ByteBuffer.allocate(0));
          return false;
        }
        case OPT_LIST -> {
          if (length != 0) {
            optionReply(ch, option, REP_ERR_INVALID, ByteBuffer.allocate(0));
            continue;
          }
          byte[] name = exportName.getBytes(StandardCharsets.UTF_8);
          optionReply(
              ch,
              option,
              REP_SERVER,
              ByteBuffer.allocate(4 + name.length).putInt(name.length).put(name).flip());
          optionReply(ch, option, REP_ACK, ByteBuffer.allocate(0));
        }
        case OPT_INFO, OPT_GO -> {
          if (length < 6) {
            optionReply(ch, option, REP_ERR_INVALID, ByteBuffer.allocate(0));
            continue;
          }
          int nameLength = data.getInt();
          if (nameLength < 0 || nameLength > length - 6) {
            optionReply(ch, option, REP_ERR_INVALID, ByteBuffer.allocate(0));
            continue;
          }
          byte[] name = new byte[nameLength];
          data.get(name);
          int requests = Short.toUnsignedInt(data.getShort());
          if (data.remaining() != 2 * requests) {
            optionReply(ch, option, REP_ERR_INVALID, ByteBuffer.allocate(0));
            continue;
          }
          String asked = new String(name, StandardCharsets.UTF_8);
          if (!asked.isEmpty() && !asked.equals(exportName)) {
            optionReply(ch, option, REP_ERR_UNKNOWN, ByteBuffer.allocate(0));
            continue;
          }
          optionReply(
              ch,
              option,
              REP_INFO,
              ByteBuffer.allocate(12)
                  .putShort((short) INFO_EXPORT)
                  .putLong(blocks.size())
                  .putShort((short) transmissionFlags())
                  .flip());
          optionReply(
              ch,
              option,
              REP_INFO,
              ByteBuffer.allocate(14)
                  .putShort((short) INFO_BLOCK_SIZE)
                  .putInt(512)
                  .putInt(4096)
                  .putInt(MAX_READ)
                  .flip());
          optionReply(ch, option, REP_ACK, ByteBuffer.allocate(0));
          if (option == OPT_GO) {
            return true;
          }
        }
        default -> optionReply(ch, option, REP_ERR_UNSUP, ByteBuffer.allocate(0));
      }
    }
  }

  private static int transmissionFlags() {
    return TFLAG_HAS_FLAGS | TFLAG_READ_ONLY | TFLAG_SEND_FLUSH | TFLAG_CAN_MULTI_CONN;
  }

  private static void optionReply(SocketChannel ch, int option, int type, ByteBuffer data)
      throws IOException {
    ByteBuffer head = ByteBuffer.allocate(20);
    head.putLong(REPLY_MAGIC).putInt(option).putInt(type).putInt(data.remaining());
    write(ch, head.flip());
    write(ch, data);
  }

  private void transmission(SocketChannel ch) throws IOException {
    Object writeLock = new Object();
    while (true) {
      ByteBuffer req = read(ch, 28);
      if (req.getInt() != REQUEST_MAGIC) {
        throw new IOException("an NBD request without its magic");
      }
      req.getShort(); // command flags: none changes a read
      int type = Short.toUnsignedInt(req.getShort());
      long handle = req.getLong();
      long offset = req.getLong();
      long length = Integer.toUnsignedLong(req.getInt());
      switch (type) {
        case CMD_READ -> {
          if (length > MAX_READ || offset < 0 || offset > blocks.size() - length) {
            reply(ch, writeLock, handle, EINVAL, null);
            continue;
          }
          try {
            readers.execute(() -> answerRead(ch, writeLock, handle, offset, (int) length));
          } catch (RejectedExecutionException e) {
            return; // closing
          }
        }
        case CMD_WRITE -> {
          if (length > MAX_READ) {
            throw new IOException("an NBD write of " + length + " bytes");
          }
          read(ch, (int) length); // the payload, dropped
          reply(ch, writeLock, handle, EPERM, null);
        }
        case CMD_FLUSH -> reply(ch, writeLock, handle, 0, null);
        case CMD_DISC -> {
          return;
        }
        default -> reply(ch, writeLock, handle, EINVAL, null);
      }
    }
  }

  private void answerRead(
      SocketChannel ch, Object writeLock, long handle, long offset, int length) {
    ByteBuffer data = ByteBuffer.allocate(length);
    int error = 0;
    try {
      blocks.read(offset, data);
      data.flip();
    } catch (IOException | RuntimeException e) {
      error = EIO;
      LOG.warnf("NBD read of %d bytes at %d failed: %s", length, offset, e.getMessage());
    }
    try {
      reply(ch, writeLock, handle, error, error == 0 ? data : null);
    } catch (IOException e) {
      LOG.debugf("NBD reply not sent: %s", e.getMessage());
    }
  }

  private static void reply(
      SocketChannel ch, Object writeLock, long handle, int error, ByteBuffer data)
      throws IOException {
    ByteBuffer head = ByteBuffer.allocate(16);
    head.putInt(SIMPLE_REPLY_MAGIC).putInt(error).putLong(handle);
    head.flip();
    synchronized (writeLock) {
      write(ch, head);
      if (data != null) {
        write(ch, data);
      }
    }
  }

  private static ByteBuffer read(SocketChannel ch, int n) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(n);
    while (b.hasRemaining()) {
      if (ch.read(b) < 0) {
        throw new EOFException("the NBD client closed the connection");
      }
    }
    return b.flip();
  }

  private static void write(SocketChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }

  /** Stops accepting, ends every connection and removes the socket. */
  @Override
  public void close() throws IOException {
    closed = true;
    try {
      server.close();
      for (SocketChannel ch : connections) {
        try {
          ch.close();
        } catch (IOException e) {
          LOG.debugf("closing an NBD connection: %s", e.getMessage());
        }
      }
      readers.shutdownNow();
      try {
        acceptor.join(2000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    } finally {
      Files.deleteIfExists(socket);
    }
  }
}
