package io.chrootbooter.pxe.dhcp;

import io.chrootbooter.pxe.dhcp.Decision.Ignored;
import io.chrootbooter.pxe.dhcp.ProxyDhcpRequest.Service;
import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.DatagramChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * The proxyDHCP socket loops: receive, {@link DhcpPacket#decode}, {@link ProxyDhcpPolicy}, send.
 * One thread per port reads; asking the operator about a MAC happens on a small bounded pool so a
 * slow operator or a flood never stalls the readers (excess requests are dropped: DHCP clients
 * retransmit).
 */
public final class DhcpServer implements AutoCloseable {
  private static final Logger LOG = System.getLogger(DhcpServer.class.getName());
  private static final int RECEIVE_BUFFER = 65536;

  private final ProxyDhcpPolicy policy;
  private final KnownMachines machines;
  private final DatagramChannel proxyChannel;
  private final DatagramChannel pxeChannel;
  private final ThreadPoolExecutor lookups;
  private final List<Thread> readers = new ArrayList<>();

  private DhcpServer(
      ProxyDhcpPolicy policy,
      KnownMachines machines,
      DatagramChannel proxyChannel,
      DatagramChannel pxeChannel) {
    this.policy = policy;
    this.machines = machines;
    this.proxyChannel = proxyChannel;
    this.pxeChannel = pxeChannel;
    this.lookups =
        new ThreadPoolExecutor(
            2,
            2,
            30,
            TimeUnit.SECONDS,
            new ArrayBlockingQueue<>(64),
            (task, pool) ->
                LOG.log(Level.WARNING, "dropped a DHCP request: 64 operator look-ups are queued"));
  }

  /**
   * Opens and starts both ports.
   *
   * @param proxyAddress where port 67 binds: 0.0.0.0:67 to receive broadcasts
   * @param device interface for SO_BINDTODEVICE on port 67, if any
   * @param pxeAddress where port 4011 binds: the interface's own address
   */
  public static DhcpServer start(
      ProxyDhcpPolicy policy,
      KnownMachines machines,
      InetSocketAddress proxyAddress,
      Optional<String> device,
      InetSocketAddress pxeAddress)
      throws IOException {
    DatagramChannel proxy = DatagramChannel.open(StandardProtocolFamily.INET);
    DatagramChannel pxe = null;
    try {
      proxy.setOption(StandardSocketOptions.SO_REUSEADDR, true);
      proxy.setOption(StandardSocketOptions.SO_BROADCAST, true);
      if (device.isPresent()) {
        DeviceBinding.bindToDevice(proxy, device.get());
      }
      proxy.bind(proxyAddress);
      pxe = DatagramChannel.open(StandardProtocolFamily.INET);
      pxe.setOption(StandardSocketOptions.SO_REUSEADDR, true);
      pxe.bind(pxeAddress);
    } catch (IOException | RuntimeException e) {
      proxy.close();
      if (pxe != null) {
        pxe.close();
      }
      throw e;
    }
    DhcpServer server = new DhcpServer(policy, machines, proxy, pxe);
    server.readers.add(server.reader(proxy, Service.PROXY_DHCP));
    server.readers.add(server.reader(pxe, Service.PXE_BOOT));
    server.readers.forEach(Thread::start);
    return server;
  }

  /** Where port 67 (or its stand-in) is bound. */
  public InetSocketAddress proxyAddress() throws IOException {
    return (InetSocketAddress) proxyChannel.getLocalAddress();
  }

  /** Where port 4011 (or its stand-in) is bound. */
  public InetSocketAddress pxeAddress() throws IOException {
    return (InetSocketAddress) pxeChannel.getLocalAddress();
  }

  private Thread reader(DatagramChannel channel, Service service) {
    Thread t =
        new Thread(
            () -> {
              ByteBuffer buffer = ByteBuffer.allocate(RECEIVE_BUFFER);
              while (channel.isOpen()) {
                buffer.clear();
                InetSocketAddress source;
                try {
                  source = (InetSocketAddress) channel.receive(buffer);
                } catch (ClosedChannelException e) {
                  return;
                } catch (IOException e) {
                  LOG.log(Level.WARNING, "receive on " + service + " failed: " + e);
                  continue;
                }
                buffer.flip();
                try {
                  handle(buffer, source, service, channel);
                } catch (RuntimeException e) {
                  // A bug in pure code must not take the port down with it; say so loudly.
                  LOG.log(Level.ERROR, "bug handling a datagram from " + source, e);
                }
              }
            },
            "dhcp-" + service.name().toLowerCase());
    t.setDaemon(true);
    return t;
  }

  private void handle(
      ByteBuffer datagram, InetSocketAddress source, Service service, DatagramChannel channel) {
    int size = datagram.remaining();
    DhcpPacket packet;
    try {
      packet = DhcpPacket.decode(datagram);
    } catch (MalformedDhcpPacketException e) {
      LOG.log(
          Level.DEBUG, () -> "ignored " + size + " bytes from " + source + ": " + e.getMessage());
      return;
    }
    ProxyDhcpRequest request = new ProxyDhcpRequest(packet, service, source);
    Optional<String> rejection = policy.rejection(request);
    if (rejection.isPresent()) {
      LOG.log(
          Level.DEBUG,
          () -> "ignored " + describe(packet, source) + ": " + rejection.orElseThrow());
      return;
    }
    String mac = packet.clientMac().orElseThrow();
    lookups.execute(
        () -> {
          try {
            Decision decision = policy.decide(request, machines.isKnown(mac));
            if (decision instanceof Ignored ignored) {
              LOG.log(
                  Level.DEBUG,
                  () -> "ignored " + describe(packet, source) + ": " + ignored.reason());
            } else if (decision instanceof Reply reply) {
              send(channel, reply, packet, source);
            }
          } catch (RuntimeException e) {
            LOG.log(Level.ERROR, "bug answering " + describe(packet, source), e);
          }
        });
  }

  private void send(
      DatagramChannel channel, Reply reply, DhcpPacket request, InetSocketAddress source) {
    try {
      channel.send(ByteBuffer.wrap(reply.packet().encode()), reply.destination());
      LOG.log(
          Level.INFO,
          () ->
              "answered "
                  + describe(request, source)
                  + " with boot file "
                  + reply.packet().bootFileName().orElse("")
                  + " to "
                  + reply.destination());
    } catch (IOException e) {
      LOG.log(Level.WARNING, "send to " + reply.destination() + " failed: " + e);
    }
  }

  private static String describe(DhcpPacket p, InetSocketAddress source) {
    return "DHCP"
        + p.options().messageType().map(Object::toString).orElse("?")
        + " xid "
        + String.format("0x%08x", p.xid())
        + " from "
        + p.clientMac().orElse("?")
        + " via "
        + source;
  }

  @Override
  public void close() throws IOException {
    lookups.shutdownNow();
    try {
      proxyChannel.close();
    } finally {
      pxeChannel.close();
    }
    for (Thread t : readers) {
      try {
        t.join(TimeUnit.SECONDS.toMillis(2));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }
}
