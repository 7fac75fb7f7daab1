package io.chrootbooter.pxe.tftp;

import io.chrootbooter.pxe.tftp.TftpPacket.Ack;
import io.chrootbooter.pxe.tftp.TftpPacket.Data;
import io.chrootbooter.pxe.tftp.TftpPacket.Error;
import io.chrootbooter.pxe.tftp.TftpPacket.OptionAck;
import io.chrootbooter.pxe.tftp.TftpPacket.ReadRequest;
import io.chrootbooter.pxe.tftp.TftpPacket.WriteRequest;
import io.chrootbooter.pxe.tftp.TftpRoot.Found;
import io.chrootbooter.pxe.tftp.TftpRoot.Refused;
import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.PortUnreachableException;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.LinkOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * The TFTP socket loop (RFC 1350): reads requests on the well-known port, answers each read from a
 * new socket (its own transfer ID, RFC 1350 §4) on a transfer thread, lock-step with retransmission
 * on timeout. Read-only: a WRQ gets an ERROR.
 *
 * <p>No client can hold the server: at most {@link Settings#maxTransfers} transfers run at once and
 * at most {@link Settings#maxPerClient} for one client address (a request beyond either gets an
 * ERROR at once, and a real client retries); a client's {@code timeout} option above {@link
 * Settings#maxTimeoutSeconds} is not granted; and every transfer ends after {@link
 * Settings#maxTransferSeconds}, however slowly its client acknowledges.
 */
public final class TftpServer implements AutoCloseable {
  private static final Logger LOG = System.getLogger(TftpServer.class.getName());

  private final TftpRoot root;
  private final Settings settings;
  private final DatagramSocket socket;
  private final Semaphore transfers;
  private final Map<InetAddress, Integer> perClient = new HashMap<>();
  private final ExecutorService workers;
  private final Thread reader;

  /**
   * @param maxTransfers concurrent transfers
   * @param maxPerClient concurrent transfers to one client address (a PXE client fetches one file
   *     at a time; a few allow for its retries)
   * @param maxBlockSize largest block size granted; 1468 fills a 1500-byte MTU without IP fragments
   *     (1500 − 20 IPv4 − 8 UDP − 4 TFTP)
   * @param timeoutSeconds retransmission timeout when the client sets none (RFC 2349)
   * @param maxTimeoutSeconds the longest {@code timeout} option granted
   * @param retries retransmissions of one packet before the transfer is abandoned
   * @param maxTransferSeconds the longest one transfer may last (an iPXE binary, ~1 MB, takes well
   *     under a second on a LAN)
   */
  public record Settings(
      int maxTransfers,
      int maxPerClient,
      int maxBlockSize,
      int timeoutSeconds,
      int maxTimeoutSeconds,
      int retries,
      int maxTransferSeconds) {
    public static final Settings DEFAULTS = new Settings(32, 4, 1468, 1, 5, 5, 60);

    public Settings {
      if (maxTransfers < 1
          || maxPerClient < 1
          || maxBlockSize < TftpNegotiation.MIN_BLOCK_SIZE
          || maxBlockSize > TftpPacket.MAX_BLOCK_SIZE
          || timeoutSeconds < 1
          || maxTimeoutSeconds < timeoutSeconds
          || retries < 0
          || maxTransferSeconds < 1) {
        throw new IllegalArgumentException("TFTP settings out of range: " + this);
      }
    }

    /** These settings with {@code maxTransfers} concurrent transfers. */
    public Settings withMaxTransfers(int maxTransfers) {
      return new Settings(
          maxTransfers,
          maxPerClient,
          maxBlockSize,
          timeoutSeconds,
          maxTimeoutSeconds,
          retries,
          maxTransferSeconds);
    }
  }

  private TftpServer(TftpRoot root, Settings settings, DatagramSocket socket) {
    this.root = root;
    this.settings = settings;
    this.socket = socket;
    this.transfers = new Semaphore(settings.maxTransfers());
    this.workers =
        Executors.newCachedThreadPool(
            r -> {
              Thread t = new Thread(r, "tftp-transfer");
              t.setDaemon(true);
              return t;
            });
    this.reader = new Thread(this::readLoop, "tftp");
    this.reader.setDaemon(true);
  }

  /** Binds {@code address} (port 69 in production) and starts serving {@code root}. */
  public static TftpServer start(TftpRoot root, InetSocketAddress address, Settings settings)
      throws IOException {
    DatagramSocket socket = new DatagramSocket(null);
    try {
      socket.setReuseAddress(true);
      socket.bind(address);
    } catch (IOException | RuntimeException e) {
      socket.close();
      throw e;
    }
    TftpServer server = new TftpServer(root, settings, socket);
    server.reader.start();
    return server;
  }

  public InetSocketAddress address() {
    return (InetSocketAddress) socket.getLocalSocketAddress();
  }

  private void readLoop() {
    byte[] buffer = new byte[65536];
    while (!socket.isClosed()) {
      DatagramPacket datagram = new DatagramPacket(buffer, buffer.length);
      try {
        socket.receive(datagram);
      } catch (IOException e) {
        if (socket.isClosed()) {
          return;
        }
        LOG.log(Level.WARNING, "TFTP receive failed: " + e);
        continue;
      }
      InetSocketAddress client = (InetSocketAddress) datagram.getSocketAddress();
      try {
        handle(
            ByteBuffer.wrap(datagram.getData(), datagram.getOffset(), datagram.getLength()),
            client);
      } catch (IOException e) {
        LOG.log(Level.WARNING, "TFTP answer to " + client + " failed: " + e);
      } catch (RuntimeException e) {
        // A bug in pure code must not take the port down with it; say so loudly.
        LOG.log(Level.ERROR, "bug handling a TFTP datagram from " + client, e);
      }
    }
  }

  private void handle(ByteBuffer datagram, InetSocketAddress client) throws IOException {
    int size = datagram.remaining();
    TftpPacket packet;
    try {
      packet = TftpPacket.decode(datagram);
    } catch (MalformedTftpPacketException e) {
      LOG.log(
          Level.DEBUG, () -> "ignored " + size + " bytes from " + client + ": " + e.getMessage());
      return;
    }
    if (packet instanceof WriteRequest w) {
      reply(client, new Error(Error.ACCESS_VIOLATION, "read-only server: WRQ refused"));
      LOG.log(Level.DEBUG, () -> "refused WRQ of \"" + w.filename() + "\" from " + client);
      return;
    }
    if (!(packet instanceof ReadRequest rrq)) {
      // Not answered: an ERROR to a stray packet could start a loop between two servers.
      LOG.log(Level.DEBUG, () -> "ignored " + packet + " from " + client + " on the request port");
      return;
    }
    if (!rrq.mode().equals("octet")) {
      reply(
          client,
          new Error(
              Error.ILLEGAL_OPERATION, "mode \"" + rrq.mode() + "\" is not served; only octet"));
      return;
    }
    TftpRoot.Resolution resolution = root.resolve(rrq.filename());
    if (resolution instanceof Refused refused) {
      reply(client, refused.error());
      LOG.log(
          Level.INFO,
          () ->
              "refused \"" + rrq.filename() + "\" to " + client + ": " + refused.error().message());
      return;
    }
    Found found = (Found) resolution;
    InetAddress from = client.getAddress();
    if (!acquireFor(from)) {
      reply(
          client,
          new Error(
              Error.NOT_DEFINED,
              "busy: " + settings.maxPerClient() + " transfers to this address; try again"));
      LOG.log(Level.INFO, () -> "refused \"" + rrq.filename() + "\" to " + client + ": busy");
      return;
    }
    if (!transfers.tryAcquire()) {
      releaseFor(from);
      reply(
          client,
          new Error(
              Error.NOT_DEFINED,
              "busy: " + settings.maxTransfers() + " transfers running; try again"));
      return;
    }
    try {
      workers.execute(
          () -> {
            try {
              transfer(rrq, found, client);
            } finally {
              transfers.release();
              releaseFor(from);
            }
          });
    } catch (RuntimeException e) {
      transfers.release();
      releaseFor(from);
      throw e;
    }
  }

  /** Counts a transfer to {@code client} unless it has {@link Settings#maxPerClient} already. */
  private boolean acquireFor(InetAddress client) {
    synchronized (perClient) {
      int running = perClient.getOrDefault(client, 0);
      if (running >= settings.maxPerClient()) {
        return false;
      }
      perClient.put(client, running + 1);
      return true;
    }
  }

  private void releaseFor(InetAddress client) {
    synchronized (perClient) {
      perClient.computeIfPresent(client, (c, running) -> running > 1 ? running - 1 : null);
    }
  }

  private void reply(InetSocketAddress client, TftpPacket packet) throws IOException {
    byte[] bytes = packet.encode();
    socket.send(new DatagramPacket(bytes, bytes.length, client));
  }

  private void transfer(ReadRequest rrq, Found found, InetSocketAddress client) {
    InetAddress local = socket.getLocalAddress();
    try (DatagramSocket s = new DatagramSocket(new InetSocketAddress(local, 0));
        FileChannel file =
            FileChannel.open(found.file(), StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
      s.connect(client);
      long size = file.size();
      TftpNegotiation n =
          TftpNegotiation.negotiate(
              rrq.options(),
              size,
              settings.maxBlockSize(),
              settings.timeoutSeconds(),
              settings.maxTimeoutSeconds());
      Transfer t =
          new Transfer(
              s,
              n.timeoutSeconds() * 1000,
              System.nanoTime() + TimeUnit.SECONDS.toNanos(settings.maxTransferSeconds()));
      if (!n.acknowledged().isEmpty() && !t.exchange(new OptionAck(n.acknowledged()), 0)) {
        return;
      }
      int blockSize = n.blockSize();
      long blocks = size / blockSize + 1; // the last block is short, possibly empty
      ByteBuffer buffer = ByteBuffer.allocate(blockSize);
      for (long i = 1; i <= blocks; i++) {
        buffer.clear();
        long position = (i - 1) * blockSize;
        while (buffer.hasRemaining() && position + buffer.position() < size) {
          if (file.read(buffer, position + buffer.position()) < 0) {
            break;
          }
        }
        int block = (int) (i & 0xffff);
        if (!t.exchange(new Data(block, Arrays.copyOf(buffer.array(), buffer.position())), block)) {
          return;
        }
      }
      LOG.log(
          Level.INFO,
          () ->
              "sent \""
                  + rrq.filename()
                  + "\" ("
                  + size
                  + " bytes, blksize "
                  + blockSize
                  + ") to "
                  + client);
    } catch (IOException e) {
      LOG.log(Level.WARNING, "TFTP transfer of \"" + rrq.filename() + "\" to " + client + ": " + e);
    }
  }

  /** Lock-step send of one packet until its ACK (RFC 1350 §2; RFC 1123 §4.2.3.2). */
  private final class Transfer {
    private final DatagramSocket socket;
    private final int timeoutMillis;
    private final long endNanos;
    private final byte[] buffer = new byte[65536];

    Transfer(DatagramSocket socket, int timeoutMillis, long endNanos) {
      this.socket = socket;
      this.timeoutMillis = timeoutMillis;
      this.endNanos = endNanos;
    }

    /** Sends {@code packet} until ACK {@code block} arrives; false when the transfer is over. */
    boolean exchange(TftpPacket packet, int block) throws IOException {
      byte[] bytes = packet.encode();
      for (int attempt = 0; attempt <= settings.retries(); attempt++) {
        if (System.nanoTime() - endNanos > 0) {
          LOG.log(
              Level.INFO,
              () ->
                  "transfer to "
                      + socket.getRemoteSocketAddress()
                      + " ended: longer than "
                      + settings.maxTransferSeconds()
                      + " s");
          return false;
        }
        try {
          socket.send(new DatagramPacket(bytes, bytes.length));
        } catch (PortUnreachableException e) {
          return false;
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        if (deadline - endNanos > 0) {
          deadline = endNanos;
        }
        while (true) {
          long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
          if (left <= 0) {
            break;
          }
          socket.setSoTimeout((int) left);
          DatagramPacket in = new DatagramPacket(buffer, buffer.length);
          try {
            socket.receive(in);
          } catch (SocketTimeoutException e) {
            break;
          } catch (PortUnreachableException e) {
            return false;
          } catch (SocketException e) {
            if (socket.isClosed()) {
              return false;
            }
            throw e;
          }
          TftpPacket reply;
          try {
            reply = TftpPacket.decode(ByteBuffer.wrap(in.getData(), 0, in.getLength()));
          } catch (MalformedTftpPacketException e) {
            continue;
          }
          if (reply instanceof Ack ack && ack.block() == block) {
            return true;
          }
          if (reply instanceof Error error) {
            LOG.log(
                Level.INFO,
                () ->
                    "client "
                        + socket.getRemoteSocketAddress()
                        + " ended the transfer: "
                        + error.code()
                        + " "
                        + error.message());
            return false;
          }
          // An older ACK: wait on without resending (the Sorcerer's Apprentice bug, RFC 1123
          // §4.2.3.1).
        }
      }
      LOG.log(
          Level.INFO,
          () ->
              "no ACK of block "
                  + block
                  + " from "
                  + socket.getRemoteSocketAddress()
                  + " after "
                  + (settings.retries() + 1)
                  + " sends; transfer abandoned");
      return false;
    }
  }

  @Override
  public void close() {
    socket.close();
    workers.shutdownNow();
    try {
      reader.join(2000);
      workers.awaitTermination(2, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
