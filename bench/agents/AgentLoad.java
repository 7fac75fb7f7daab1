import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The load generator of {@code bench/agents.sh}: N simulated agents, each holding the desired-state
 * stream of its MachineBoot open as the node agent does — one Server-Sent Events connection per
 * machine, authenticated with the session it enrolled for with the nonce of its iPXE script, resumed with {@code
 * Last-Event-ID} when it drops.
 *
 * <p>{@code create} makes a BootImage and N MachineBoots before the operator starts. {@code
 * streams}, with the operator running, waits until it has reconciled them, enrols them,
 * opens the streams, waits until the operator is idle again and prints its live heap (after a full
 * GC, {@code jcmd GC.heap_info}) and RSS; then it changes K MachineBoots one after another and
 * measures, for each, the time from sending the change to the API server to the agent receiving the
 * event of the new generation.
 *
 * <p>The streams are plain sockets on one NIO selector thread, so that ten thousand of them cost
 * the generator one thread and a few kilobytes each, spread over several loopback source addresses
 * (127.0.0.2…) so that no source address runs out of ephemeral ports. JDK only: {@code javac
 * AgentLoad.java}.
 */
public final class AgentLoad {
  private static final Pattern NONCE = Pattern.compile(" cb\\.nonce=(\\S+)");
  private static final Pattern SESSION = Pattern.compile("\"session\":\"([A-Za-z0-9_-]+)\"");
  private static final Pattern GENERATION = Pattern.compile("\"generation\":(\\d+)");
  private static final String GROUP = "/apis/boot.chrootbooter.io/v1alpha1/namespaces/";

  private final URI api;
  private final String namespace;

  /** The operator's admin port, where {@code /q/metrics} is; set by {@code --admin}. */
  private URI admin;
  private final HttpClient http =
      HttpClient.newBuilder()
          .executor(Executors.newFixedThreadPool(4, daemon("http")))
          .connectTimeout(Duration.ofSeconds(10))
          .build();

  AgentLoad(URI api, String namespace) {
    this.api = api;
    this.namespace = namespace;
  }

  public static void main(String[] args) {
    try {
      run(args);
    } catch (Exception | Error e) {
      e.printStackTrace();
      // Non-daemon threads (the JDK HTTP client's) must not keep a failed run alive.
      System.exit(1);
    }
    System.exit(0);
  }

  private static void run(String[] args) throws Exception {
    if (args.length == 0 || !List.of("create", "streams", "liveness").contains(args[0])) {
      throw new IllegalArgumentException(USAGE);
    }
    Map<String, String> o = options(Arrays.copyOfRange(args, 1, args.length));
    AgentLoad load = new AgentLoad(URI.create(o.get("api")), o.getOrDefault("namespace", "bench"));
    int n = Integer.parseInt(o.get("n"));
    if (o.containsKey("admin")) {
      load.admin = URI.create(o.get("admin"));
    }
    if (args[0].equals("create")) {
      load.create(n, o.get("image-url"), o.get("image-sha256"));
    } else if (args[0].equals("liveness")) {
      load.liveness(
          URI.create(o.get("operator")),
          n,
          Integer.parseInt(o.getOrDefault("sources", "8")),
          Duration.ofSeconds(Long.parseLong(o.getOrDefault("window-s", "120"))),
          Duration.ofSeconds(Long.parseLong(o.getOrDefault("lost-after-s", "60"))));
    } else {
      load.streams(
          URI.create(o.get("operator")),
          Long.parseLong(o.get("pid")),
          n,
          Integer.parseInt(o.getOrDefault("changes", "200")),
          Long.parseLong(o.getOrDefault("gap-ms", "20")),
          Integer.parseInt(o.getOrDefault("sources", "8")),
          Boolean.parseBoolean(o.getOrDefault("fanout-results", "true")));
    }
  }

  static final String USAGE =
      "usage: java AgentLoad.java create --api URL --n N --image-url URL --image-sha256 HEX\n"
          + "       java AgentLoad.java streams --api URL --n N --operator URL --admin URL --pid PID"
          + " [--changes 200] [--gap-ms 20] [--sources 8] [--fanout-results true]\n"
          + "       java AgentLoad.java liveness --api URL --n N --operator URL --admin URL"
          + " [--window-s 120] [--lost-after-s 60] [--sources 8]";

  /** The namespace, a BootImage of the image at {@code url}, and N MachineBoots that run it. */
  void create(int n, String url, String sha256) throws Exception {
    post(
        "/api/v1/namespaces",
        "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\""
            + namespace
            + "\"}}");
    post(
        GROUP + namespace + "/bootimages",
        "{\"apiVersion\":\"boot.chrootbooter.io/v1alpha1\",\"kind\":\"BootImage\","
            + "\"metadata\":{\"name\":\"bench-image\"},\"spec\":{\"source\":{\"url\":\""
            + url
            + "\"},\"sha256\":\""
            + sha256
            + "\"}}");
    note("creating " + n + " MachineBoots");
    createMachines(0, n);
  }

  /**
   * With the operator running: N agents enrol and open their streams; prints the
   * operator's memory before and after, then the fan-out delays.
   */
  void streams(
      URI operator,
      long pid,
      int n,
      int changes,
      long gapMillis,
      int sources,
      boolean fanoutResults)
      throws Exception {
    String label = n % 1000 == 0 ? n / 1000 + "k" : String.valueOf(n);
    awaitImageReady();
    note("waiting for the operator to reconcile " + n + " MachineBoots");
    quiesce(operator, n);
    Memory baseline = memory(pid);
    System.out.printf(
        Locale.ROOT,
        "NOTE %s machines, no streams: operator heap %.0f MB, RSS %.0f MB%n",
        label,
        baseline.heapMb(),
        baseline.rssMb());

    note("enrolling " + n + " machines with the nonces of their iPXE scripts");
    List<String> sessions = enrolAll(operator, n);
    note("opening " + n + " desired-state streams");
    Streams streams = new Streams(operator, sources);
    streams.start();
    long opening = System.nanoTime();
    for (int i = 0; i < n; i++) {
      streams.open(i, mac(i), sessions.get(i));
    }
    streams.awaitFirstEvents(n, Duration.ofMinutes(10));
    note(
        String.format(
            "%d streams hold their first event (%.1f s to open them)",
            n, (System.nanoTime() - opening) / 1e9));
    quiesce(operator, n);
    Memory m = memory(pid);
    System.out.printf(Locale.ROOT, "RESULT sse_heap_mb_%s %.0f MB%n", label, m.heapMb());
    System.out.printf(Locale.ROOT, "RESULT sse_rss_mb_%s %.0f MB%n", label, m.rssMb());
    System.out.printf(
        Locale.ROOT,
        "NOTE %s streams cost %.1f KB of heap and %.1f KB of RSS each; %d reconnections%n",
        label,
        (m.heapMb() - baseline.heapMb()) * 1024 / n,
        (m.rssMb() - baseline.rssMb()) * 1024 / n,
        streams.reconnections.get());
    fanout(
        streams, n, changes, gapMillis, fanoutResults ? "RESULT fanout" : "NOTE fanout_" + label);
    System.out.printf(Locale.ROOT, "NOTE %d reconnections in all%n", streams.reconnections.get());
  }

  // ---- liveness

  /**
   * With the operator running: N agents open their streams and send their full status report every
   * heartbeat the desired state names, nothing ever changing, as a quiet fleet does. After a warm-up
   * (every Lease created, every status written once), counts over {@code window} the API writes the
   * liveness mechanism makes: the operator's own counters of Lease writes and status writes, and,
   * as a check from the API's side, the MODIFIED events of a watch on the namespace's MachineBoots
   * and Leases (one per write).
   */
  void liveness(URI operator, int n, int sources, Duration window, Duration lostAfter)
      throws Exception {
    String label = n % 1000 == 0 ? n / 1000 + "k" : String.valueOf(n);
    awaitImageReady();
    note("waiting for the operator to reconcile " + n + " MachineBoots");
    quiesce(operator, n);
    note("enrolling " + n + " machines with the nonces of their iPXE scripts");
    List<String> sessions = enrolAll(operator, n);
    note("opening " + n + " desired-state streams");
    Streams streams = new Streams(operator, sources);
    streams.start();
    for (int i = 0; i < n; i++) {
      streams.open(i, mac(i), sessions.get(i));
    }
    streams.awaitFirstEvents(n, Duration.ofMinutes(10));
    Duration heartbeat = heartbeatOf(operator, mac(0), sessions.get(0));
    note("every agent reports every " + heartbeat.toMillis() + " ms (the desired state's heartbeat)");

    AtomicInteger sent = new AtomicInteger();
    AtomicInteger failed = new AtomicInteger();
    var timer = Executors.newScheduledThreadPool(2, daemon("heartbeat"));
    Random random = new Random(1);
    for (int i = 0; i < n; i++) {
      String report =
          "{\"phase\":\"Running\",\"currentImage\":\"bench-image\",\"agent\":{\"version\":"
              + "\"bench\",\"bootId\":\"boot-"
              + i
              + "\",\"ip\":\"10.0."
              + (i >> 8 & 255)
              + "."
              + (i & 255)
              + "\",\"kernel\":\"6.1.0\"},\"appliedGeneration\":1}";
      HttpRequest request =
          HttpRequest.newBuilder(operator.resolve("/agent/v1/machines/" + mac(i) + "/status"))
              .header("Authorization", "Bearer " + sessions.get(i))
              .header("Content-Type", "application/json")
              .timeout(Duration.ofSeconds(30))
              .POST(HttpRequest.BodyPublishers.ofString(report))
              .build();
      timer.scheduleAtFixedRate(
          () ->
              http.sendAsync(request, HttpResponse.BodyHandlers.discarding())
                  .whenComplete(
                      (r, e) -> {
                        if (e == null && r.statusCode() == 202) {
                          sent.incrementAndGet();
                        } else {
                          failed.incrementAndGet();
                        }
                      }),
          random.nextLong(heartbeat.toMillis()),
          heartbeat.toMillis(),
          TimeUnit.MILLISECONDS);
    }
    Duration warmUp = lostAfter.plus(heartbeat.multipliedBy(2));
    note("warming up for " + warmUp.toSeconds() + " s: first reports, Leases, lastSeen");
    Thread.sleep(warmUp.toMillis());

    AtomicInteger machineEvents = new AtomicInteger();
    AtomicInteger leaseEvents = new AtomicInteger();
    List<HttpResponse<InputStream>> watches = new ArrayList<>();
    watches.add(countModified(GROUP + namespace + "/machineboots?watch=true", machineEvents));
    watches.add(
        countModified(
            "/apis/coordination.k8s.io/v1/namespaces/" + namespace + "/leases?watch=true",
            leaseEvents));
    Thread.sleep(2000); // the watches are open and past their initial events
    machineEvents.set(0);
    leaseEvents.set(0);
    Map<String, Double> before = counters(operator);
    int sentBefore = sent.get();
    int failedBefore = failed.get();
    note("counting writes for " + window.toSeconds() + " s");
    long start = System.nanoTime();
    // Every 2 s: machines marked lost (there must be none: every agent speaks) and renewals
    // queued in the operator.
    double maxLost = 0;
    double maxPending = 0;
    long end = start + window.toNanos();
    while (System.nanoTime() < end) {
      Thread.sleep(Math.min(2000, Math.max(1, (end - System.nanoTime()) / 1_000_000)));
      Map<String, Double> sample = counters(operator);
      maxLost = Math.max(maxLost, sample.getOrDefault("chrootbooter_machines_lost", 0.0));
      maxPending =
          Math.max(maxPending, sample.getOrDefault("chrootbooter_liveness_lease_pending", 0.0));
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    Map<String, Double> after = counters(operator);
    LeaseAges ages = leaseAges(n);
    int lostAtEnd = lostMachines();
    long openFiles;
    try (var fds = Files.list(Path.of("/proc/self/fd"))) {
      openFiles = fds.count();
    }
    note("the load generator holds " + openFiles + " open files");
    int watchedMachines = machineEvents.get();
    int watchedLeases = leaseEvents.get();
    timer.shutdownNow();
    watches.forEach(
        w -> {
          try {
            w.body().close();
          } catch (IOException e) {
            // closing a watch: nothing to do
          }
        });
    double leaseWrites =
        after.get("chrootbooter_liveness_lease_writes_total")
            - before.get("chrootbooter_liveness_lease_writes_total");
    double statusWrites =
        after.get("chrootbooter_agent_status_patches_total")
            - before.get("chrootbooter_agent_status_patches_total");
    double unchanged =
        after.get("chrootbooter_agent_status_unchanged_total")
            - before.get("chrootbooter_agent_status_unchanged_total");
    double writes = leaseWrites + statusWrites;
    System.out.printf(
        Locale.ROOT,
        "NOTE liveness %s: %d reports sent in %.0f s (%.1f/s, %d failed), %.0f not written;"
            + " %.0f Lease writes, %.0f status writes (operator counters); the API's watches saw"
            + " %d Lease and %d MachineBoot modifications%n",
        label,
        sent.get() - sentBefore,
        seconds,
        (sent.get() - sentBefore) / seconds,
        failed.get(),
        unchanged,
        leaseWrites,
        statusWrites,
        watchedLeases,
        watchedMachines);
    System.out.printf(
        Locale.ROOT,
        "NOTE liveness_writes_per_machine_per_s_%s %.5f%n",
        label,
        Math.max(writes, watchedLeases + watchedMachines) / seconds / n);
    double renewals =
        after.get("chrootbooter_liveness_lease_write_seconds_count")
            - before.get("chrootbooter_liveness_lease_write_seconds_count");
    double renewalSeconds =
        after.get("chrootbooter_liveness_lease_write_seconds_sum")
            - before.get("chrootbooter_liveness_lease_write_seconds_sum");
    double waitCount =
        after.get("chrootbooter_liveness_lease_wait_seconds_count")
            - before.get("chrootbooter_liveness_lease_wait_seconds_count");
    double waitSeconds =
        after.get("chrootbooter_liveness_lease_wait_seconds_sum")
            - before.get("chrootbooter_liveness_lease_wait_seconds_sum");
    double late =
        after.get("chrootbooter_liveness_lease_late_total")
            - before.get("chrootbooter_liveness_lease_late_total");
    System.out.printf(
        Locale.ROOT,
        "NOTE liveness %s renewals: %.2f ms per Lease write (mean, API call), %.2f ms queued"
            + " before it (mean), at most %.0f queued or in flight, %.0f written more than a"
            + " heartbeat late; oldest Lease at the end %.1f s, newest %.1f s%n",
        label,
        renewals == 0 ? 0 : renewalSeconds / renewals * 1000,
        waitCount == 0 ? 0 : waitSeconds / waitCount * 1000,
        maxPending,
        late,
        ages.oldestSeconds(),
        ages.newestSeconds());
    // The larger of the two counts: the watches also see writes that are not liveness's.
    System.out.printf(
        Locale.ROOT,
        "RESULT liveness_writes_per_s_%s %.1f writes/s%n",
        label,
        Math.max(writes, watchedLeases + watchedMachines) / seconds);

    // What must hold, or the figure above is no saving: no machine wrongly lost, and renewals
    // keeping up. A Lease is renewed at the first report once it is lostAfter/3 old: every
    // ceil((lostAfter/3) / heartbeat) heartbeats, so no Lease of a live agent is older than that
    // period plus the time a write takes.
    long hb = heartbeat.toMillis();
    long periodMillis = (lostAfter.toMillis() / 3 + hb - 1) / hb * hb;
    double needed = n * seconds * 1000 / periodMillis;
    double oldestAllowed = periodMillis / 1000.0 + 5;
    List<String> failures = new ArrayList<>();
    if (maxLost > 0 || lostAtEnd > 0) {
      failures.add(
          String.format(
              Locale.ROOT,
              "machines wrongly marked lost: up to %.0f during the window (chrootbooter_machines_lost),"
                  + " %d at its end (Ready reason AgentLost), though every agent reported",
              maxLost,
              lostAtEnd));
    }
    if (leaseWrites < 0.9 * needed) {
      failures.add(
          String.format(
              Locale.ROOT,
              "renewals fall behind: %.0f Lease writes in %.0f s where %d machines need about %.0f"
                  + " (one per %d ms)",
              leaseWrites,
              seconds,
              n,
              needed,
              periodMillis));
    }
    if (ages.oldestSeconds() > oldestAllowed || ages.count() < n) {
      failures.add(
          String.format(
              Locale.ROOT,
              "renewals fall behind: %d of %d Leases exist, the oldest renewed %.1f s ago"
                  + " (at most %.1f s for a live agent)",
              ages.count(),
              n,
              ages.oldestSeconds(),
              oldestAllowed));
    }
    if (late > 0) {
      failures.add(
          String.format(
              Locale.ROOT,
              "renewals fall behind: %.0f written more than a heartbeat after the report that"
                  + " asked for them",
              late));
    }
    if (failed.get() > failedBefore) {
      failures.add(
          String.format(
              Locale.ROOT,
              "%d status reports failed during the window",
              failed.get() - failedBefore));
    }
    if (!failures.isEmpty()) {
      failures.forEach(f -> System.out.println("FAIL liveness " + label + ": " + f));
      throw new IllegalStateException("liveness " + label + " failed: " + failures);
    }
  }

  record LeaseAges(int count, double oldestSeconds, double newestSeconds) {}

  /** How long ago the agent Leases of the namespace were renewed, read from the API. */
  LeaseAges leaseAges(int n) throws Exception {
    String list =
        send(
                HttpRequest.newBuilder(
                    api.resolve("/apis/coordination.k8s.io/v1/namespaces/" + namespace + "/leases")))
            .body();
    long now = System.currentTimeMillis();
    Matcher m = Pattern.compile("\"renewTime\":\"([^\"]+)\"").matcher(list);
    int count = 0;
    double oldest = 0;
    double newest = Double.MAX_VALUE;
    while (m.find()) {
      double age = (now - java.time.Instant.parse(m.group(1)).toEpochMilli()) / 1000.0;
      count++;
      oldest = Math.max(oldest, age);
      newest = Math.min(newest, age);
    }
    return new LeaseAges(count, oldest, count == 0 ? 0 : newest);
  }

  /** MachineBoots whose Ready condition says AgentLost, read from the API. */
  int lostMachines() throws Exception {
    String list = send(HttpRequest.newBuilder(api.resolve(GROUP + namespace + "/machineboots"))).body();
    Matcher m = Pattern.compile("\"reason\":\"AgentLost\"").matcher(list);
    int count = 0;
    while (m.find()) {
      count++;
    }
    // Ready and Stalled both carry the reason: count machines, not conditions.
    return count / 2 + count % 2;
  }

  /** The heartbeat of a machine's desired state, read from the first event of its stream. */
  Duration heartbeatOf(URI operator, String mac, String session) throws Exception {
    HttpResponse<InputStream> r =
        http.send(
            HttpRequest.newBuilder(operator.resolve("/agent/v1/machines/" + mac + "/desired"))
                .header("Authorization", "Bearer " + session)
                .header("Accept", "text/event-stream")
                .build(),
            HttpResponse.BodyHandlers.ofInputStream());
    try (BufferedReader in =
        new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
      for (String line; (line = in.readLine()) != null; ) {
        Matcher m = Pattern.compile("\"heartbeat\":\"([0-9]+)(ms|s|m)\"").matcher(line);
        if (m.find()) {
          long v = Long.parseLong(m.group(1));
          return switch (m.group(2)) {
            case "ms" -> Duration.ofMillis(v);
            case "s" -> Duration.ofSeconds(v);
            default -> Duration.ofMinutes(v);
          };
        }
        if (line.startsWith("data:")) {
          return Duration.ofSeconds(15); // an operator that names none: the agent's default
        }
      }
    }
    throw new IllegalStateException("no desired state on the stream of " + mac);
  }

  /** A watch that counts MODIFIED and ADDED events, read on a thread of its own. */
  HttpResponse<InputStream> countModified(String path, AtomicInteger count) throws Exception {
    HttpResponse<InputStream> r =
        http.send(
            HttpRequest.newBuilder(api.resolve(path)).build(),
            HttpResponse.BodyHandlers.ofInputStream());
    Thread t =
        new Thread(
            () -> {
              try (BufferedReader in =
                  new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
                for (String line; (line = in.readLine()) != null; ) {
                  if (line.contains("\"type\":\"MODIFIED\"")
                      || line.contains("\"type\":\"ADDED\"")) {
                    count.incrementAndGet();
                  }
                }
              } catch (IOException e) {
                // closed at the end of the window
              }
            },
            "watch");
    t.setDaemon(true);
    t.start();
    return r;
  }

  /** {@code /q/metrics} on the operator's admin port. */
  URI metricsUri() {
    if (admin == null) {
      throw new IllegalArgumentException("--admin URL (the operator's admin port) is needed");
    }
    return admin.resolve("/q/metrics");
  }

  /**
   * The operator's meters whose names start with {@code chrootbooter_}, by name (the series of one
   * name added up).
   */
  Map<String, Double> counters(URI operator) throws Exception {
    Map<String, Double> values = new HashMap<>();
    for (String line :
        send(HttpRequest.newBuilder(metricsUri())).body().split("\n")) {
      if (line.startsWith("chrootbooter_")) {
        String name = line.substring(0, line.indexOf(line.contains("{") ? '{' : ' '));
        values.merge(name, Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1)), Double::sum);
      }
    }
    for (String name :
        List.of(
            "chrootbooter_liveness_lease_writes_total",
            "chrootbooter_agent_status_patches_total",
            "chrootbooter_agent_status_unchanged_total",
            "chrootbooter_liveness_lease_write_seconds_count",
            "chrootbooter_liveness_lease_write_seconds_sum",
            "chrootbooter_liveness_lease_wait_seconds_count",
            "chrootbooter_liveness_lease_wait_seconds_sum",
            "chrootbooter_liveness_lease_late_total")) {
      values.putIfAbsent(name, 0.0);
    }
    return values;
  }

  // ---- fan-out

  void fanout(Streams streams, int n, int changes, long gapMillis, String prefix) throws Exception {
    note("changing " + changes + " MachineBoots, one every " + gapMillis + " ms");
    Random random = new Random(42);
    int[] picked = random.ints(0, n).distinct().limit(Math.min(changes, n)).toArray();
    long[] patchNanos = new long[picked.length];
    Map<String, Stream> changed = new ConcurrentHashMap<>();
    for (int index : picked) {
      changed.put(name(index), streams.get(index));
    }
    // The API server's own watch, read alongside the operator's: when the change left the API
    // server, so that the operator's share of the delay can be told from the API server's.
    HttpResponse<InputStream> watch =
        http.send(
            HttpRequest.newBuilder(api.resolve(GROUP + namespace + "/machineboots?watch=true"))
                .build(),
            HttpResponse.BodyHandlers.ofInputStream());
    CountDownLatch listed = new CountDownLatch(n);
    Thread watcher = new Thread(() -> watch(watch.body(), changed, listed), "watch");
    watcher.setDaemon(true);
    watcher.start();
    if (!listed.await(5, TimeUnit.MINUTES)) {
      throw new IllegalStateException("the watch did not list the " + n + " MachineBoots");
    }
    for (int k = 0; k < picked.length; k++) {
      Stream s = streams.get(picked[k]);
      long generation = s.generation + 1;
      String body =
          "{\"spec\":{\"kernelArgs\":[\"systemd.show_status=1\",\"bench.change=" + k + "\"]}}";
      long sent = System.nanoTime();
      s.expect(generation, sent);
      HttpResponse<String> r =
          send(
              HttpRequest.newBuilder(
                      api.resolve(GROUP + namespace + "/machineboots/" + name(picked[k])))
                  .header("Content-Type", "application/merge-patch+json")
                  .method("PATCH", HttpRequest.BodyPublishers.ofString(body)));
      if (r.statusCode() / 100 != 2) {
        throw new IllegalStateException("PATCH " + name(picked[k]) + ": " + r.statusCode());
      }
      patchNanos[k] = System.nanoTime() - sent;
      Thread.sleep(gapMillis);
    }
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    List<Long> delays = new ArrayList<>();
    for (int index : picked) {
      Stream s = streams.get(index);
      while (s.delayNanos < 0 && System.nanoTime() < deadline) {
        Thread.sleep(10);
      }
      if (s.delayNanos >= 0) {
        delays.add(s.delayNanos);
      }
    }
    if (delays.isEmpty()) {
      throw new IllegalStateException("no agent received the event of its change within 30 s");
    }
    long[] sorted = delays.stream().mapToLong(Long::longValue).sorted().toArray();
    System.out.printf(Locale.ROOT, "%s_p50 %.1f ms%n", prefix, percentile(sorted, 50) / 1e6);
    System.out.printf(Locale.ROOT, "%s_p99 %.1f ms%n", prefix, percentile(sorted, 99) / 1e6);
    System.out.printf(
        Locale.ROOT,
        "NOTE fan-out over %d changes with %d streams open: max %.1f ms; %d events missing after"
            + " 30 s%n",
        picked.length,
        n,
        sorted[sorted.length - 1] / 1e6,
        picked.length - delays.size());
    long[] operatorShare =
        Arrays.stream(picked)
            .mapToObj(streams::get)
            .filter(s -> s.delayNanos >= 0 && s.watchNanos >= 0)
            .mapToLong(s -> s.changeNanos + s.delayNanos - s.watchNanos)
            .sorted()
            .toArray();
    if (operatorShare.length > 0) {
      System.out.printf(
          Locale.ROOT,
          "NOTE from the API server's watch event to the agent's event (the operator's share):"
              + " p50 %.1f ms, p99 %.1f ms, max %.1f ms%n",
          percentile(operatorShare, 50) / 1e6,
          percentile(operatorShare, 99) / 1e6,
          operatorShare[operatorShare.length - 1] / 1e6);
    }
    // The reference, same changes, same run: a plain watch client of the API server (what
    // `kubectl get -w` sees), change -> its watch event. Ours is change -> the agent's event, which
    // includes that watch plus the operator: SPEEDUP = reference p99 / ours p99, at most about 1.
    long[] watchDelays =
        Arrays.stream(picked)
            .mapToObj(streams::get)
            .filter(s -> s.watchNanos >= 0)
            .mapToLong(s -> s.watchNanos - s.changeNanos)
            .sorted()
            .toArray();
    if (prefix.startsWith("RESULT") && watchDelays.length > 0) {
      double reference = percentile(watchDelays, 99) / 1e6;
      System.out.printf(Locale.ROOT, "RESULT watch_reference_p99 %.1f ms%n", reference);
      System.out.printf(
          Locale.ROOT,
          "SPEEDUP fanout_vs_watch %.2f%n",
          reference / Math.max(percentile(sorted, 99) / 1e6, 0.001));
    }
    watch.body().close();
    // Slow events against the heartbeat rounds: does sending the heartbeats hold events back?
    List<long[]> rounds = streams.heartbeatRounds();
    long slow = 0;
    long slowInRound = 0;
    for (int index : picked) {
      Stream s = streams.get(index);
      if (s.delayNanos > 100_000_000L) {
        slow++;
        long from = s.changeNanos;
        long to = s.changeNanos + s.delayNanos;
        if (rounds.stream().anyMatch(r -> r[0] <= to && from <= r[1])) {
          slowInRound++;
        }
      }
    }
    System.out.printf(
        Locale.ROOT,
        "NOTE heartbeat rounds took %s ms from the first stream to the last; %d of %d events"
            + " slower than 100 ms overlapped a round%n",
        rounds.stream().map(r -> (r[1] - r[0]) / 1_000_000).toList(),
        slowInRound,
        slow);
    Arrays.sort(patchNanos);
    System.out.printf(
        Locale.ROOT,
        "NOTE the API server answered the PATCHes in p50 %.1f ms, p99 %.1f ms%n",
        percentile(patchNanos, 50) / 1e6,
        percentile(patchNanos, 99) / 1e6);
  }

  /** Reads watch events: counts the initial ADDED listing, notes when each change arrives. */
  private static void watch(InputStream body, Map<String, Stream> changed, CountDownLatch listed) {
    Pattern name = Pattern.compile("\"name\":\"(m[0-9]+)\"");
    try (var lines =
        new BufferedReader(new InputStreamReader(body, StandardCharsets.UTF_8), 64 * 1024)) {
      for (String line; (line = lines.readLine()) != null; ) {
        long now = System.nanoTime();
        if (listed.getCount() > 0 && line.contains("\"type\":\"ADDED\"")) {
          listed.countDown();
          continue;
        }
        Matcher n = name.matcher(line);
        Matcher g = GENERATION.matcher(line);
        Stream s = n.find() && g.find() ? changed.get(n.group(1)) : null;
        if (s != null && s.watchNanos < 0 && Long.parseLong(g.group(1)) >= s.expectGeneration) {
          s.watchNanos = now;
        }
      }
    } catch (IOException e) {
      // closed at the end of the measurement
    }
  }

  static long percentile(long[] sorted, int p) {
    int rank = (int) Math.ceil(p / 100.0 * sorted.length);
    return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
  }

  // ---- the Kubernetes side

  void awaitImageReady() throws Exception {
    long deadline = System.nanoTime() + Duration.ofMinutes(10).toNanos();
    while (true) {
      String body =
          send(HttpRequest.newBuilder(api.resolve(GROUP + namespace + "/bootimages/bench-image")))
              .body();
      if (body.contains("\"phase\":\"Ready\"")) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("BootImage bench-image not Ready after 10 min: " + body);
      }
      Thread.sleep(200);
    }
  }

  void createMachines(int from, int to) throws Exception {
    Semaphore inFlight = new Semaphore(16);
    List<CompletableFuture<?>> all = new ArrayList<>();
    for (int i = from; i < to; i++) {
      String body =
          "{\"apiVersion\":\"boot.chrootbooter.io/v1alpha1\",\"kind\":\"MachineBoot\","
              + "\"metadata\":{\"name\":\""
              + name(i)
              + "\"},\"spec\":{\"macAddress\":\""
              + mac(i)
              + "\",\"imageRef\":\"bench-image\",\"kernelArgs\":[\"systemd.show_status=1\"]}}";
      inFlight.acquire();
      String machine = name(i);
      all.add(
          http.sendAsync(
                  HttpRequest.newBuilder(api.resolve(GROUP + namespace + "/machineboots"))
                      .header("Content-Type", "application/json")
                      .POST(HttpRequest.BodyPublishers.ofString(body))
                      .build(),
                  HttpResponse.BodyHandlers.ofString())
              .whenComplete((r, e) -> inFlight.release())
              .thenAccept(
                  r -> {
                    if (r.statusCode() >= 300) {
                      throw new IllegalStateException(
                          "POST MachineBoot " + machine + ": " + r.statusCode() + " " + r.body());
                    }
                  }));
    }
    CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).join();
  }

  /**
   * Each machine's session, as the machine gets it: the nonce of its iPXE script exchanged at the
   * operator ({@code POST /agent/v1/machines/{mac}/enroll}).
   */
  List<String> enrolAll(URI operator, int n) throws Exception {
    int from = 0;
    int to = n;
    String[] sessions = new String[n];
    long deadline = System.nanoTime() + Duration.ofMinutes(5).toNanos();
    List<Integer> missing = new ArrayList<>();
    for (int i = from; i < to; i++) {
      missing.add(i);
    }
    while (!missing.isEmpty()) {
      Semaphore inFlight = new Semaphore(32);
      List<Integer> retry = Collections.synchronizedList(new ArrayList<>());
      List<CompletableFuture<?>> all = new ArrayList<>();
      for (int i : missing) {
        inFlight.acquire();
        all.add(
            http.sendAsync(
                    HttpRequest.newBuilder(operator.resolve("/boot/" + mac(i) + ".ipxe")).build(),
                    HttpResponse.BodyHandlers.ofString())
                .thenCompose(
                    script -> {
                      Matcher m = NONCE.matcher(script.body());
                      if (script.statusCode() != 200 || !m.find()) {
                        return CompletableFuture.completedFuture(null);
                      }
                      return http.sendAsync(
                          HttpRequest.newBuilder(
                                  operator.resolve("/agent/v1/machines/" + mac(i) + "/enroll"))
                              .header("Content-Type", "application/json")
                              .POST(
                                  HttpRequest.BodyPublishers.ofString(
                                      "{\"nonce\":\""
                                          + m.group(1)
                                          + "\",\"bootId\":\"bench-"
                                          + i
                                          + "\"}"))
                              .build(),
                          HttpResponse.BodyHandlers.ofString());
                    })
                .handle(
                    (r, e) -> {
                      inFlight.release();
                      Matcher m = r == null ? null : SESSION.matcher(r.body());
                      if (r != null && r.statusCode() == 200 && m.find()) {
                        sessions[i - from] = m.group(1);
                      } else {
                        retry.add(i);
                      }
                      return null;
                    }));
      }
      CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).join();
      missing = new ArrayList<>(retry);
      if (!missing.isEmpty()) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException(missing.size() + " machines could not enrol in 5 min");
        }
        Thread.sleep(500);
      }
    }
    return List.of(sessions);
  }

  /**
   * Waits until the operator is idle: it has reconciled every MachineBoot at least once, and
   * neither a reconcile nor a status patch has happened for 3 s in a row (its own counters on
   * {@code /q/metrics}).
   */
  void quiesce(URI operator, int machines) throws Exception {
    long deadline = System.nanoTime() + Duration.ofMinutes(15).toNanos();
    double last = -1;
    int quiet = 0;
    while (true) {
      Thread.sleep(1000);
      double work = 0;
      double machineReconciles = 0;
      for (String line :
          send(HttpRequest.newBuilder(metricsUri())).body().split("\n")) {
        double value =
            line.startsWith("chrootbooter_")
                ? Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1))
                : 0;
        if (line.startsWith("chrootbooter_reconcile_seconds_count")
            || line.startsWith("chrootbooter_agent_status_patches_total")) {
          work += value;
        }
        if (line.startsWith("chrootbooter_reconcile_seconds_count{kind=\"MachineBoot\"")) {
          machineReconciles = value;
        }
      }
      quiet = work == last && machineReconciles >= machines ? quiet + 1 : 0;
      last = work;
      if (quiet == 3) {
        note(String.format("the operator is idle after %.0f reconciles and patches", work));
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(
            "the operator did not become idle within 15 min ("
                + machineReconciles
                + " MachineBoot reconciles)");
      }
    }
  }

  record Memory(double heapMb, double rssMb) {}

  /** The operator's live heap after a full GC, and its resident set. */
  Memory memory(long pid) throws Exception {
    jcmd(pid, "GC.run");
    String info = jcmd(pid, "GC.heap_info");
    long usedKb = 0;
    Matcher used = Pattern.compile("used (\\d+)K").matcher(info);
    int metaspace = info.indexOf("Metaspace");
    while (used.find() && (metaspace < 0 || used.start() < metaspace)) {
      usedKb += Long.parseLong(used.group(1));
    }
    long rssKb = 0;
    for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
      if (line.startsWith("VmRSS:")) {
        rssKb = Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    }
    return new Memory(usedKb / 1024.0, rssKb / 1024.0);
  }

  static String jcmd(long pid, String command) throws Exception {
    Process p =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(),
                String.valueOf(pid),
                command)
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (p.waitFor() != 0) {
      throw new IllegalStateException("jcmd " + pid + " " + command + ": " + out);
    }
    return out;
  }

  void post(String path, String json) throws Exception {
    HttpResponse<String> r =
        send(
            HttpRequest.newBuilder(api.resolve(path))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json)));
    if (r.statusCode() >= 300) {
      throw new IllegalStateException("POST " + path + ": " + r.statusCode() + " " + r.body());
    }
  }

  HttpResponse<String> send(HttpRequest.Builder request) throws Exception {
    return http.send(
        request.timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
  }

  static String name(int i) {
    return String.format("m%05d", i);
  }

  static String mac(int i) {
    return String.format("52:54:00:%02x:%02x:%02x", i >> 16 & 255, i >> 8 & 255, i & 255);
  }

  static void note(String message) {
    System.err.printf("# %tT %s%n", System.currentTimeMillis(), message);
  }

  static ThreadFactory daemon(String name) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, name + "-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }

  static Map<String, String> options(String[] args) {
    Map<String, String> options = new HashMap<>();
    for (int i = 0; i < args.length; i += 2) {
      if (!args[i].startsWith("--") || i + 1 == args.length) {
        throw new IllegalArgumentException(USAGE);
      }
      options.put(args[i].substring(2), args[i + 1]);
    }
    return options;
  }

  // ---- the streams

  /** One simulated agent's stream and what it has seen; touched by the selector thread only. */
  static final class Stream {
    final int index;
    final String mac;
    final String session;
    SocketChannel channel;
    String lastEventId;
    volatile long generation;
    volatile boolean firstEvent;

    // A change the fan-out measurement waits for.
    volatile long expectGeneration = Long.MAX_VALUE;
    volatile long changeNanos;
    volatile long delayNanos = -1;
    volatile long watchNanos = -1;

    // Response parsing.
    boolean pending; // connecting, or waiting for the response headers
    long reconnectAt;
    boolean inBody;
    boolean chunked;
    long chunkLeft = -1; // -1: reading a chunk-size line; -2: the CRLF after a chunk
    byte[] line = new byte[256];
    int lineLength;
    String eventId;
    String data;

    Stream(int index, String mac, String session) {
      this.index = index;
      this.mac = mac;
      this.session = session;
    }

    void expect(long generation, long nanos) {
      changeNanos = nanos;
      delayNanos = -1;
      expectGeneration = generation;
    }

    void reset() {
      inBody = false;
      chunked = false;
      chunkLeft = -1;
      lineLength = 0;
      eventId = null;
      data = null;
    }
  }

  /** Every stream, on one selector thread. */
  static final class Streams implements Runnable {
    private final URI operator;
    private final int sources;
    private final Selector selector;
    private final ConcurrentLinkedQueue<Stream> toOpen = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<Stream> toReconnect = new ConcurrentLinkedQueue<>();
    private final List<Stream> all = Collections.synchronizedList(new ArrayList<>());
    private final ByteBuffer read = ByteBuffer.allocateDirect(64 * 1024);
    final AtomicInteger withFirstEvent = new AtomicInteger();
    final AtomicInteger reconnections = new AtomicInteger();
    private long[] heartbeats = new long[1024];
    private int heartbeatCount;

    private void heartbeat(long nanos) {
      synchronized (this) {
        if (heartbeatCount == heartbeats.length) {
          heartbeats = Arrays.copyOf(heartbeats, heartbeatCount * 2);
        }
        heartbeats[heartbeatCount++] = nanos;
      }
    }

    /**
     * When heartbeat comments arrived: one {start, end} per round the operator sent (rounds are
     * 15 s apart; arrivals more than 5 s apart start a new round).
     */
    synchronized List<long[]> heartbeatRounds() {
      long[] times = Arrays.copyOf(heartbeats, heartbeatCount);
      Arrays.sort(times);
      List<long[]> rounds = new ArrayList<>();
      for (long t : times) {
        if (rounds.isEmpty() || t - rounds.get(rounds.size() - 1)[1] > 5_000_000_000L) {
          rounds.add(new long[] {t, t});
        } else {
          rounds.get(rounds.size() - 1)[1] = t;
        }
      }
      return rounds;
    }
    private int connecting;
    private static final int MAX_CONNECTING = 200;

    Streams(URI operator, int sources) throws IOException {
      this.operator = operator;
      this.sources = sources;
      this.selector = Selector.open();
    }

    void start() {
      Thread t = new Thread(this, "streams");
      t.setDaemon(true);
      t.start();
    }

    void open(int index, String mac, String session) {
      Stream s = new Stream(index, mac, session);
      all.add(s);
      toOpen.add(s);
      selector.wakeup();
    }

    Stream get(int index) {
      return all.get(index);
    }

    void awaitFirstEvents(int count, Duration timeout) throws InterruptedException {
      long deadline = System.nanoTime() + timeout.toNanos();
      while (withFirstEvent.get() < count) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException(
              "only " + withFirstEvent.get() + " of " + count + " streams got a first event");
        }
        Thread.sleep(100);
      }
    }

    @Override
    public void run() {
      try {
        while (true) {
          selector.select(1000);
          for (Iterator<SelectionKey> it = selector.selectedKeys().iterator(); it.hasNext(); ) {
            SelectionKey key = it.next();
            it.remove();
            Stream s = (Stream) key.attachment();
            try {
              if (key.isConnectable()) {
                s.channel.finishConnect();
                s.channel.write(requestOf(s));
                key.interestOps(SelectionKey.OP_READ);
              } else if (key.isReadable()) {
                read(s);
              }
            } catch (IOException e) {
              dropped(s, key);
            }
          }
          long now = System.nanoTime();
          while (connecting < MAX_CONNECTING
              && toReconnect.peek() != null
              && toReconnect.peek().reconnectAt <= now) {
            connect(toReconnect.poll());
          }
          for (Stream s; connecting < MAX_CONNECTING && (s = toOpen.poll()) != null; ) {
            connect(s);
          }
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    private void connect(Stream s) throws IOException {
      s.reset();
      SocketChannel channel = SocketChannel.open();
      s.channel = channel;
      s.pending = true;
      connecting++;
      SelectionKey key = null;
      try {
        channel.configureBlocking(false);
        // Several source addresses: each has its own ephemeral ports toward the operator's port.
        channel.bind(new InetSocketAddress("127.0.0." + (2 + s.index % sources), 0));
        key = channel.register(selector, SelectionKey.OP_CONNECT, s);
        if (channel.connect(new InetSocketAddress(operator.getHost(), operator.getPort()))) {
          channel.write(requestOf(s));
          key.interestOps(SelectionKey.OP_READ);
        }
      } catch (IOException e) {
        dropped(s, key);
      }
    }

    private ByteBuffer requestOf(Stream s) {
      String request =
          "GET /agent/v1/machines/"
              + s.mac
              + "/desired HTTP/1.1\r\nHost: "
              + operator.getHost()
              + ":"
              + operator.getPort()
              + "\r\nAuthorization: Bearer "
              + s.session
              + "\r\nAccept: text/event-stream\r\n"
              + (s.lastEventId == null ? "" : "Last-Event-ID: " + s.lastEventId + "\r\n")
              + "\r\n";
      return ByteBuffer.wrap(request.getBytes(StandardCharsets.US_ASCII));
    }

    /** Closes a broken stream; it is opened again, with its Last-Event-ID, a second later. */
    private void dropped(Stream s, SelectionKey key) {
      if (key != null) {
        key.cancel();
      }
      try {
        s.channel.close();
      } catch (IOException ignored) {
        // closing a broken connection
      }
      if (s.pending) {
        s.pending = false;
        connecting--;
      }
      reconnections.incrementAndGet();
      s.reconnectAt = System.nanoTime() + 1_000_000_000L;
      toReconnect.add(s);
    }

    private void read(Stream s) throws IOException {
      read.clear();
      int n = s.channel.read(read);
      if (n < 0) {
        throw new IOException("closed by the operator");
      }
      read.flip();
      while (read.hasRemaining()) {
        byte b = read.get();
        if (!s.inBody) {
          headerByte(s, b);
        } else if (!s.chunked) {
          bodyByte(s, b);
        } else if (s.chunkLeft == -1) {
          if (b == '\n') {
            String size = new String(s.line, 0, s.lineLength, StandardCharsets.US_ASCII).trim();
            int semicolon = size.indexOf(';');
            s.chunkLeft = Long.parseLong(semicolon < 0 ? size : size.substring(0, semicolon), 16);
            s.lineLength = 0;
            if (s.chunkLeft == 0) {
              throw new IOException("the operator ended the stream");
            }
          } else if (b != '\r') {
            append(s, b);
          }
        } else if (s.chunkLeft == -2) {
          if (b == '\n') {
            s.chunkLeft = -1;
          }
        } else {
          bodyByte(s, b);
          if (--s.chunkLeft == 0) {
            s.chunkLeft = -2;
          }
        }
      }
    }

    /** Response headers: the status line must say 200; the body is chunked or not. */
    private void headerByte(Stream s, byte b) throws IOException {
      if (b != '\n') {
        if (b != '\r') {
          append(s, b);
        }
        return;
      }
      String line = new String(s.line, 0, s.lineLength, StandardCharsets.US_ASCII);
      s.lineLength = 0;
      if (line.startsWith("HTTP/")) {
        if (!line.startsWith("HTTP/1.1 200")) {
          throw new IOException(s.mac + ": " + line);
        }
      } else if (line.toLowerCase(Locale.ROOT).startsWith("transfer-encoding:")
          && line.toLowerCase(Locale.ROOT).contains("chunked")) {
        s.chunked = true;
      } else if (line.isEmpty()) {
        s.inBody = true;
        s.pending = false;
        connecting--;
      }
    }

    /** One byte of the event stream (WHATWG HTML, server-sent events). */
    private void bodyByte(Stream s, byte b) {
      if (b == '\r') {
        return;
      }
      if (b != '\n') {
        append(s, b);
        return;
      }
      String line = new String(s.line, 0, s.lineLength, StandardCharsets.UTF_8);
      s.lineLength = 0;
      if (line.isEmpty()) {
        if (s.data != null) {
          event(s);
        }
        s.data = null;
      } else if (line.startsWith(":")) {
        heartbeat(System.nanoTime());
      } else if (line.startsWith("id:")) {
        s.eventId = line.substring(3).trim();
      } else if (line.startsWith("data:")) {
        s.data = line.substring(5).trim();
      }
    }

    private void event(Stream s) {
      long now = System.nanoTime();
      s.lastEventId = s.eventId;
      Matcher m = GENERATION.matcher(s.data);
      if (m.find()) {
        s.generation = Long.parseLong(m.group(1));
      }
      if (s.generation >= s.expectGeneration && s.delayNanos < 0) {
        s.delayNanos = now - s.changeNanos;
      }
      if (!s.firstEvent) {
        s.firstEvent = true;
        withFirstEvent.incrementAndGet();
      }
    }

    private static void append(Stream s, byte b) {
      if (s.lineLength == s.line.length) {
        s.line = Arrays.copyOf(s.line, s.line.length * 2);
      }
      s.line[s.lineLength++] = b;
    }
  }
}
