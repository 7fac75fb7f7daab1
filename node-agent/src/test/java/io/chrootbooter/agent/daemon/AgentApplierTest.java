package io.chrootbooter.agent.daemon;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.agent.console.ConsoleCommand;
import io.chrootbooter.agent.fetch.DownloadProgress;
import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.fetch.OperatorCredential;
import io.chrootbooter.agent.lazy.HttpBlocks;
import io.chrootbooter.agent.lazy.LazyImage;
import io.chrootbooter.agent.lazy.RangeServer;
import io.chrootbooter.agent.lazy.VerityWatch;
import io.chrootbooter.agent.pivot.LastReturn;
import io.chrootbooter.agent.pivot.TargetControl;
import io.chrootbooter.agent.pivot.TargetSession;
import io.chrootbooter.agent.pivot.TargetSpec;
import io.chrootbooter.agent.pivot.Teardown;
import io.chrootbooter.agent.unpack.ImageCache;
import io.chrootbooter.protocol.AgentInfo;
import io.chrootbooter.protocol.DesiredState;
import io.chrootbooter.protocol.ImageFormat;
import io.chrootbooter.protocol.MachinePhase;
import io.chrootbooter.protocol.ReturnTrigger;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@link Agent} carrying out its policy, without root: a controller that records what it is
 * told to enter, and an image pipeline that hands out a directory or fails as a test says.
 */
class AgentApplierTest {
  /** Records boots; no target really runs, so no session exists and nothing returns. */
  static final class RecordingControl implements TargetControl {
    final List<TargetSpec> boots = new CopyOnWriteArrayList<>();
    final List<Duration> timeouts = new CopyOnWriteArrayList<>();
    final List<ReturnTrigger> triggers = new CopyOnWriteArrayList<>();
    volatile MachinePhase phase = MachinePhase.Bootstrap;
    volatile Runnable listener = () -> {};

    @Override
    public void onChange(Runnable listener) {
      this.listener = listener;
    }

    @Override
    public void boot(TargetSpec spec, Teardown.Step image, Duration healthyWithin) {
      boots.add(spec);
      timeouts.add(healthyWithin);
      phase = MachinePhase.Running;
      listener.run();
    }

    @Override
    public Optional<LastReturn> trigger(ReturnTrigger trigger, String reason) {
      triggers.add(trigger);
      if (trigger == ReturnTrigger.VerityMismatch && phase == MachinePhase.Running) {
        phase = MachinePhase.Bootstrap; // the target returned
        listener.run();
      }
      return Optional.empty();
    }

    @Override
    public boolean specChanged(long generation, boolean namesImage) {
      return namesImage;
    }

    @Override
    public boolean resume() {
      return true;
    }

    @Override
    public MachinePhase phase() {
      return phase;
    }

    @Override
    public Optional<LastReturn> lastReturn() {
      return Optional.empty();
    }

    @Override
    public Optional<TargetSession> session() {
      return Optional.empty();
    }

    @Override
    public void close() {}
  }

  /** Hands out {@code root} after one progress event, or throws {@link #failure}. */
  final class Pipeline implements Images {
    volatile Throwable failure;
    final AtomicInteger prepares = new AtomicInteger();
    final AtomicInteger releases = new AtomicInteger();
    volatile LazyImage lazy;

    @Override
    public ImageLoader.Prepared prepare(
        ImageLoader.Request request, FetchOptions options, Consumer<MachinePhase> phases)
        throws IOException {
      prepares.incrementAndGet();
      phases.accept(MachinePhase.Downloading);
      options.progress().accept(new DownloadProgress(100, 100, 50, Optional.empty()));
      Throwable t = failure;
      if (t instanceof IOException io) {
        throw io;
      }
      if (t instanceof Error e) {
        throw e;
      }
      phases.accept(MachinePhase.Mounting);
      LazyImage l = lazy;
      if (l != null) {
        return new ImageLoader.Prepared(
            root,
            () -> {
              l.close();
              releases.incrementAndGet();
            },
            "a".repeat(64),
            false,
            Optional.empty(),
            Optional.of(l));
      }
      return new ImageLoader.Prepared(
          root, releases::incrementAndGet, "a".repeat(64), false, Optional.empty());
    }

    @Override
    public ImageCache cache() {
      return cache;
    }
  }

  @TempDir Path root;
  ImageCache cache;
  final RecordingControl control = new RecordingControl();
  Pipeline images;
  final ByteArrayOutputStream consoleBytes = new ByteArrayOutputStream();
  Agent agent;

  @BeforeEach
  void start() throws IOException {
    cache = new ImageCache(root.resolve("cache"), () -> 0);
    images = new Pipeline();
    agent =
        new Agent(
            control,
            images,
            new Agent.Settings(
                Path.of("/dev/null"),
                Duration.ofSeconds(3),
                Optional.empty(),
                () -> new AgentInfo("test", null, null, null, null)),
            new PrintStream(consoleBytes, true, StandardCharsets.UTF_8));
  }

  @AfterEach
  void stop() throws IOException {
    agent.close();
  }

  String console() {
    return consoleBytes.toString(StandardCharsets.UTF_8);
  }

  static DesiredState run(long generation, String bootTimeout) {
    return DesiredState.builder()
        .action(io.chrootbooter.protocol.Action.Run)
        .generation(generation)
        .reason("Ready")
        .image(
            DesiredState.Image.builder()
                .name("debian")
                .url("http://images/a.squashfs")
                .sha256("a".repeat(64))
                .format(ImageFormat.SQUASHFS)
                .stop(new DesiredState.Stop("SIGINT", "7s"))
                .build())
        .overlay("tmpfs")
        .bootTimeout(bootTimeout)
        .build();
  }

  @Test
  void aDesiredStateIsEnteredOnceWithItsStopSettingsAndTimeout() {
    agent.desired(run(3, "90s"));
    await().atMost(Duration.ofSeconds(10)).until(() -> control.boots.size() == 1);
    TargetSpec spec = control.boots.get(0);
    assertThat(spec.root()).isEqualTo(root);
    assertThat(spec.imageUrl()).isEqualTo("http://images/a.squashfs");
    assertThat(spec.gracefulSignal()).isEqualTo(2); // SIGINT
    assertThat(spec.grace()).isEqualTo(Duration.ofSeconds(7));
    assertThat(control.timeouts).containsExactly(Duration.ofSeconds(90));
    await().atMost(Duration.ofSeconds(10)).until(() -> agent.state().load() == null);
    assertThat(agent.status().phase()).isEqualTo(MachinePhase.Running);
    assertThat(agent.status().appliedGeneration()).isEqualTo(3);
    assertThat(console())
        .contains("chrootbooter: loading debian <http://images/a.squashfs>\n")
        .contains("chrootbooter: entering debian <http://images/a.squashfs> (sha256 aaaa");

    // A replay (a stream reconnect) boots nothing again.
    agent.desired(run(3, "90s"));
    agent.desired(run(3, "90s"));
    await()
        .during(Duration.ofMillis(300))
        .atMost(Duration.ofSeconds(5))
        .until(() -> control.boots.size() == 1);
    assertThat(images.prepares).hasValue(1);
  }

  /** A Lazy image of 1 MiB served on 127.0.0.1, whose dm-verity watch reads {@code kmsg}. */
  LazyImage lazyImage(RangeServer http, Optional<Path> kmsg) throws IOException {
    OperatorCredential.use(URI.create(http.url()), () -> "Bearer applier");
    HttpBlocks blocks =
        new HttpBlocks(
            URI.create(http.url()),
            "a".repeat(64),
            1 << 20,
            1 << 20,
            root.resolve("blocks"),
            new FetchOptions(
                new io.chrootbooter.protocol.Backoff(
                    2, Duration.ofMillis(10), Duration.ofMillis(10)),
                Duration.ofSeconds(2),
                new io.chrootbooter.agent.fetch.CancelSignal(),
                p -> {},
                1000),
            Long.MAX_VALUE);
    return LazyImage.start(
        "a".repeat(64),
        blocks,
        Optional.of(new VerityWatch.Device("43:0", "/dev/dm-7", () -> true)),
        Optional.empty(),
        kmsg);
  }

  @Test
  void aRunningLazyImagesPrefetchIsInTheStatusUntilItReturns() throws Exception {
    try (RangeServer http = new RangeServer(new byte[1 << 20], "a".repeat(64), "Bearer applier")) {
      images.lazy = lazyImage(http, Optional.empty());
      AtomicInteger changes = new AtomicInteger();
      agent.onChange(changes::incrementAndGet);
      agent.desired(run(6, null));
      await().atMost(Duration.ofSeconds(10)).until(() -> agent.state().load() == null);
      await()
          .atMost(Duration.ofSeconds(10))
          .until(
              () ->
                  agent.status().prefetch() != null
                      && Boolean.TRUE.equals(agent.status().prefetch().fullyLocal()));
      assertThat(agent.status().phase()).isEqualTo(MachinePhase.Running);
      assertThat(agent.status().prefetch())
          .isEqualTo(new io.chrootbooter.protocol.Prefetch(1L << 20, 1L << 20, true, null));
      assertThat(changes.get()).isPositive();
    } finally {
      OperatorCredential.clear();
    }
  }

  @Test
  void aCorruptedBlockOfTheRunningLazyImageReturnsItAndFailsNamingTheBlock() throws Exception {
    Path kmsg = root.resolve("kmsg");
    java.nio.file.Files.writeString(
        kmsg, "3,13,4000,-;device-mapper: verity: 43:0: data block 4242 is corrupted\n");
    try (RangeServer http = new RangeServer(new byte[1 << 20], "a".repeat(64), "Bearer applier")) {
      images.lazy = lazyImage(http, Optional.of(kmsg));
      agent.desired(run(7, null));
      await()
          .atMost(Duration.ofSeconds(10))
          .until(() -> control.triggers.contains(ReturnTrigger.VerityMismatch));
      await()
          .atMost(Duration.ofSeconds(10))
          .until(() -> agent.status().phase() == MachinePhase.Failed);
      assertThat(agent.status().error())
          .startsWith(
              "VerityMismatch: data block 4242 of the running image failed its dm-verity"
                  + " check (/dev/dm-7)");
      assertThat(agent.status().prefetch()).as("no image runs").isNull();
      assertThat(console()).contains("chrootbooter: failed: VerityMismatch: data block 4242");
      assertThat(control.boots).hasSize(1);
    } finally {
      OperatorCredential.clear();
    }
  }

  @Test
  void aFailedLoadIsReportedUntilTheNextGeneration() {
    images.failure = new IOException("HTTP 404 for http://images/a.squashfs");
    agent.desired(run(4, null));
    await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> agent.status().phase() == MachinePhase.Failed);
    assertThat(agent.status().error()).isEqualTo("HTTP 404 for http://images/a.squashfs");
    assertThat(console()).contains("chrootbooter: failed: HTTP 404 for http://images/a.squashfs\n");
    assertThat(agent.statusLines()).contains("error: HTTP 404 for http://images/a.squashfs");
    assertThat(control.boots).isEmpty();

    images.failure = null;
    agent.desired(run(5, null));
    await().atMost(Duration.ofSeconds(10)).until(() -> control.boots.size() == 1);
    await().atMost(Duration.ofSeconds(10)).until(() -> agent.state().load() == null);
    assertThat(agent.status().error()).isNull();
    assertThat(agent.status().phase()).isEqualTo(MachinePhase.Running);
  }

  @Test
  void anErrorALoadLetsOutFailsItAndTheWorkerGoesOn() {
    images.failure = new UnsatisfiedLinkError("libcrypto.so.3: cannot open shared object file");
    agent.desired(run(4, null));
    await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> agent.status().phase() == MachinePhase.Failed);
    assertThat(agent.status().error()).contains("libcrypto.so.3");

    images.failure = null;
    agent.desired(run(5, null));
    await().atMost(Duration.ofSeconds(10)).until(() -> control.boots.size() == 1);
  }

  @Test
  void theConsoleLoadAnswersWithWhatHappened() throws IOException {
    assertThatThrownBy(
            () ->
                agent.consoleLoad(
                    new ConsoleCommand.Load("http://x/image", Optional.empty(), Optional.empty())))
        .isInstanceOf(IOException.class)
        .hasMessageStartingWith("cannot tell the format from the URL; add --format ");

    images.failure = new IOException("connection refused");
    assertThatThrownBy(
            () ->
                agent.consoleLoad(
                    new ConsoleCommand.Load(
                        "http://x/image.tar.zst", Optional.empty(), Optional.empty())))
        .isInstanceOf(IOException.class)
        .hasMessage("connection refused");

    images.failure = null;
    assertThat(
            agent.consoleLoad(
                new ConsoleCommand.Load(
                    "http://x/image.tar.zst", Optional.empty(), Optional.empty())))
        .containsExactly("running <http://x/image.tar.zst>");
    assertThat(control.boots).hasSize(1);
    // The console's load names no image in the status.
    assertThat(agent.status().currentImage()).isNull();
  }

  @Test
  void aBadStopSettingOrBootTimeoutFailsBeforeAnythingIsFetched() {
    DesiredState good = run(6, null);
    DesiredState badStop =
        DesiredState.builder()
            .action(io.chrootbooter.protocol.Action.Run)
            .generation(6)
            .reason("Ready")
            .image(
                DesiredState.Image.builder()
                    .name("debian")
                    .url(good.image().url())
                    .sha256(good.image().sha256())
                    .format(ImageFormat.SQUASHFS)
                    .stop(new DesiredState.Stop("SIGNOPE", null))
                    .build())
            .overlay("tmpfs")
            .build();
    agent.desired(badStop);
    await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> agent.status().phase() == MachinePhase.Failed);
    agent.desired(run(7, "soon"));
    await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> agent.status().appliedGeneration() == 7 && agent.state().load() == null);
    assertThat(agent.status().phase()).isEqualTo(MachinePhase.Failed);
    assertThat(agent.status().error()).contains("soon");
    assertThat(images.prepares).hasValue(0);
    assertThat(control.boots).isEmpty();
  }
}
