package io.chrootbooter.operator;

import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import io.chrootbooter.operator.status.Conditions;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.quarkus.test.common.QuarkusTestResource;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The image store as a user sees it: BootImages mirrored from a source the test controls, verified,
 * served byte for byte with HTTP semantics, and removed with their last BootImage. Https sources
 * are signed by CAs the tests make: the operator's own ({@link OperatorCa}, {@code
 * cb.store.ca-bundle}) and per-image ones in {@code spec.source.caBundle} Secrets.
 */
@QuarkusTestResource(OperatorCa.class)
public abstract class ImageStoreScenarios extends LivenessScenarios {
  private static final Path STORE = Path.of("target/image-store/sha256");

  @TempDir Path work;

  BootImage awaitPhase(String name, BootImagePhase phase) {
    return awaitImage(name, i -> i.getStatus().phase() == phase);
  }

  Optional<String> createImage(String name, String url, String sha256) {
    return createRaw(
        "BootImage",
        name,
        sha256 == null
            ? Map.of("source", Map.of("url", url), "insecureSkipVerify", true)
            : Map.of("source", Map.of("url", url), "sha256", sha256));
  }

  /** A real image: mksquashfs or tar over a small tree with a few MB in it. */
  byte[] buildImage(String kind) throws Exception {
    Path tree = Files.createDirectories(work.resolve("tree-" + kind));
    Files.createDirectories(tree.resolve("sbin"));
    Files.writeString(tree.resolve("sbin/init"), "#!/bin/sh\necho hello\n");
    byte[] blob = new byte[3 * 1024 * 1024];
    new java.util.Random(7).nextBytes(blob);
    Files.write(tree.resolve("blob"), blob);
    Path out = work.resolve("image." + kind);
    ProcessBuilder pb =
        kind.equals("squashfs")
            ? new ProcessBuilder(
                "mksquashfs", tree.toString(), out.toString(), "-noappend", "-quiet")
            : new ProcessBuilder(
                "tar", "--zstd", "-cf", out.toString(), "-C", tree.toString(), ".");
    Assumptions.assumeTrue(
        new ProcessBuilder("which", pb.command().get(0)).start().waitFor() == 0,
        pb.command().get(0) + " is not installed (Debian: squashfs-tools, tar, zstd)");
    Process p = pb.inheritIO().start();
    assertThat(p.waitFor()).as(String.join(" ", pb.command())).isZero();
    return Files.readAllBytes(out);
  }

  private static final String READER = "52:54:00:0e:ad:e2";
  private String readerNs;
  private String readerSession;

  /**
   * A request as an enrolled machine whose MachineBoot names {@code image} makes it: images are
   * served only to such machines. The machine ({@code reader}) is created on first use in the
   * test's namespace and pointed at {@code image}; once the image is Ready, the request waits until
   * the operator's cache names it.
   */
  io.restassured.specification.RequestSpecification reading(String image) {
    var machines = client.resources(io.chrootbooter.api.v1alpha1.MachineBoot.class).inNamespace(ns);
    var reader = machines.withName("reader").get();
    if (reader == null) {
      var mb = new io.chrootbooter.api.v1alpha1.MachineBoot();
      mb.setMetadata(new ObjectMetaBuilder().withName("reader").withNamespace(ns).build());
      mb.setSpec(
          new io.chrootbooter.api.v1alpha1.MachineBootSpec(
              READER, null, image, null, null, null, null, null));
      machines.resource(mb).create();
    } else if (!image.equals(reader.getSpec().imageRef())) {
      machines
          .withName("reader")
          .edit(
              m -> {
                m.setSpec(withImage(m.getSpec(), image));
                return m;
              });
    }
    if (!ns.equals(readerNs)) {
      readerSession = sessionFor(READER);
      readerNs = ns;
    }
    BootImage named = client.resources(BootImage.class).inNamespace(ns).withName(image).get();
    if (named != null
        && named.getStatus() != null
        && named.getStatus().phase() == BootImagePhase.Ready) {
      awaitScript(READER, s -> s.contains("/images/" + named.getStatus().sha256() + " "));
    }
    return given().header("Authorization", "Bearer " + readerSession);
  }

  @Test
  void aSquashfsImageGetsAHashTreeThatVeritysetupAcceptsServedToItsMachinesOnly() throws Exception {
    byte[] bytes = buildImage("squashfs");
    String sha = images.put("lazy.squashfs", bytes);
    assertThat(
            createRaw(
                "BootImage",
                "lazy",
                Map.of(
                    "source",
                    Map.of("url", images.url("lazy.squashfs")),
                    "sha256",
                    sha,
                    "delivery",
                    "Lazy")))
        .isEmpty();
    byte[] tarBytes = buildImage("tar.zst");
    String tarSha = images.put("plain.tar.zst", tarBytes);
    assertThat(createImage("plain", images.url("plain.tar.zst"), tarSha)).isEmpty();

    BootImage image =
        awaitImage(
            "lazy",
            i -> i.getStatus().phase() == BootImagePhase.Ready && i.getStatus().verity() != null);
    var verity = image.getStatus().verity();
    assertThat(verity.hashTreeUrl()).isEqualTo("/verity/" + sha);
    assertThat(verity.rootHash()).matches("[0-9a-f]{64}");
    assertThat(verity.salt()).matches("[0-9a-f]{64}");
    assertThat(verity.dataBlocks()).isEqualTo((bytes.length + 4095) / 4096);
    assertThat(awaitPhase("plain", BootImagePhase.Ready).getStatus().verity()).isNull();

    byte[] tree =
        reading("lazy")
            .get("/verity/" + sha)
            .then()
            .statusCode(200)
            .header("ETag", "\"verity-" + verity.rootHash() + "\"")
            .extract()
            .asByteArray();
    assertThat((long) tree.length).isEqualTo(verity.hashTreeSize());
    assertThat(
            reading("lazy")
                .header("Range", "bytes=4096-4127")
                .get("/verity/" + sha)
                .then()
                .statusCode(206)
                .header("Content-Range", "bytes 4096-4127/" + tree.length)
                .extract()
                .asByteArray())
        .isEqualTo(Arrays.copyOfRange(tree, 4096, 4128));
    Path imageFile = Files.write(work.resolve("lazy.squashfs"), bytes);
    Path treeFile = Files.write(work.resolve("lazy.verity"), tree);
    var header = io.chrootbooter.operator.image.VerityTree.verify(imageFile, treeFile);
    assertThat(header.rootHashHex()).isEqualTo(verity.rootHash());
    assertThat(header.saltHex()).isEqualTo(verity.salt());
    Assumptions.assumeTrue(
        new ProcessBuilder("sh", "-c", "command -v veritysetup").start().waitFor() == 0,
        "veritysetup is not installed (Debian: apt-get install cryptsetup-bin)");
    Process check =
        new ProcessBuilder(
                "veritysetup",
                "verify",
                imageFile.toString(),
                treeFile.toString(),
                verity.rootHash())
            .redirectErrorStream(true)
            .start();
    String out = new String(check.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(check.waitFor()).as(out).isZero();

    // Without a session: 401; a machine whose MachineBoot names another image: 403.
    given().get("/verity/" + sha).then().statusCode(401);
    reading("plain").get("/verity/" + sha).then().statusCode(403);
    reading("plain").get("/verity/" + tarSha).then().statusCode(404);
    reading("plain").get("/verity/" + "0".repeat(64)).then().statusCode(404);
  }

  @Test
  void realImagesAreMirroredVerifiedAndServedByteForByte() throws Exception {
    for (String kind : java.util.List.of("squashfs", "tar.zst")) {
      byte[] bytes = buildImage(kind);
      String sha = images.put("real." + kind, bytes);
      String name = "real-" + kind.replace('.', '-');
      assertThat(createImage(name, images.url("real." + kind), sha)).isEmpty();
      BootImage image = awaitPhase(name, BootImagePhase.Ready);
      assertThat(image.getStatus().sha256()).isEqualTo(sha);
      assertThat(image.getStatus().size()).isEqualTo(bytes.length);
      assertThat(image.getStatus().servedUrl()).isEqualTo("/images/" + sha);
      assertThat(columns(image)).containsEntry("Size", String.valueOf(bytes.length));
      assertThat(Files.readAllBytes(STORE.resolve(sha))).isEqualTo(bytes);

      byte[] served =
          reading(name)
              .get("/images/" + sha)
              .then()
              .statusCode(200)
              .header("ETag", "\"" + sha + "\"")
              .extract()
              .asByteArray();
      assertThat(served).isEqualTo(bytes);
      assertThat(
              reading(name)
                  .get("/images/" + ns + "/" + name)
                  .then()
                  .statusCode(200)
                  .extract()
                  .asByteArray())
          .isEqualTo(bytes);
      reading(name)
          .head("/images/" + sha)
          .then()
          .statusCode(200)
          .header("Content-Length", String.valueOf(bytes.length))
          .header("ETag", "\"" + sha + "\"")
          .header("Last-Modified", org.hamcrest.Matchers.notNullValue());
      byte[] part =
          reading(name)
              .header("Range", "bytes=100-199")
              .get("/images/" + sha)
              .then()
              .statusCode(206)
              .header("Content-Range", "bytes 100-199/" + bytes.length)
              .extract()
              .asByteArray();
      assertThat(part).isEqualTo(Arrays.copyOfRange(bytes, 100, 200));
      reading(name)
          .header("Range", "bytes=" + (bytes.length + 10) + "-")
          .get("/images/" + sha)
          .then()
          .statusCode(416);
      reading(name)
          .header("If-None-Match", "\"" + sha + "\"")
          .get("/images/" + sha)
          .then()
          .statusCode(304);
      // If-Range with the digest: the range.
      reading(name)
          .header("Range", "bytes=0-9")
          .header("If-Range", "\"" + sha + "\"")
          .get("/images/" + sha)
          .then()
          .statusCode(206)
          .header("Content-Length", "10");
      // If-Range with another validator: the whole image, not the range.
      reading(name)
          .header("Range", "bytes=0-9")
          .header("If-Range", "\"other\"")
          .get("/images/" + sha)
          .then()
          .statusCode(200)
          .header("Content-Length", String.valueOf(bytes.length));
    }
    reading("real-tar-zst").get("/images/" + "0".repeat(64)).then().statusCode(404);
    reading("real-tar-zst").get("/images/..%2F..%2Fetc%2Fpasswd").then().statusCode(404);
  }

  @Test
  void wrongChecksumFailsAndNothingIsServed() {
    byte[] bytes = fakeImage(new byte[] {'h', 's', 'q', 's'}, 11);
    images.put("tampered.squashfs", bytes);
    String declared = "ab".repeat(32);
    createImage("tampered", images.url("tampered.squashfs"), declared);
    BootImage image = awaitPhase("tampered", BootImagePhase.Failed);
    assertThat(condition(image.getStatus().conditions(), "Stalled").getReason())
        .isEqualTo("ChecksumMismatch");
    assertThat(condition(image.getStatus().conditions(), "Stalled").getMessage())
        .isEqualTo(
            "expected sha256 "
                + declared
                + ", the downloaded bytes have sha256 "
                + ImageServer.sha256(bytes)
                + "; they were deleted");
    assertThat(image.getStatus().servedUrl()).isNull();
    assertThat(STORE.resolve(ImageServer.sha256(bytes))).doesNotExist();
    assertThat(STORE.resolve(declared)).doesNotExist();
    reading("tampered").get("/images/" + declared).then().statusCode(404);
    awaitEvent(
        "tampered",
        "Warning",
        "ChecksumMismatch",
        condition(image.getStatus().conditions(), "Stalled").getMessage());
  }

  @Test
  void sourceThatRefusesAndWrongFormatFailWithTheirReason() {
    createImage("missing", images.url("missing.squashfs"), "cd".repeat(32));
    BootImage missing = awaitPhase("missing", BootImagePhase.Failed);
    assertThat(condition(missing.getStatus().conditions(), "Stalled").getMessage())
        .isEqualTo("GET " + images.url("missing.squashfs") + " answered HTTP 404");

    byte[] gzip = fakeImage(new byte[] {0x1f, (byte) 0x8b}, 12);
    String sha = images.put("lying.squashfs", gzip);
    createImage("lying", images.url("lying.squashfs"), sha);
    BootImage lying = awaitPhase("lying", BootImagePhase.Failed);
    assertThat(condition(lying.getStatus().conditions(), "Stalled").getReason())
        .isEqualTo("FormatMismatch");
    assertThat(condition(lying.getStatus().conditions(), "Stalled").getMessage())
        .isEqualTo("the image is declared squashfs but its first bytes are those of tar.gz");
  }

  /** A V7 tar has no magic: mirrored, recognized by its header checksum, as it is declared tar. */
  @Test
  void aV7TarIsMirroredWhenDeclaredTar() throws Exception {
    Path tree = Files.createDirectories(work.resolve("v7"));
    Files.writeString(tree.resolve("hostname"), "node\n");
    Path tar = work.resolve("v7.tar");
    Process p =
        new ProcessBuilder("tar", "--format=v7", "-cf", tar.toString(), "-C", tree.toString(), ".")
            .redirectErrorStream(true)
            .start();
    assertThat(p.waitFor()).as(new String(p.getInputStream().readAllBytes())).isZero();
    byte[] bytes = Files.readAllBytes(tar);
    String sha = images.put("v7.tar", bytes);

    createImage("v7", images.url("v7.tar"), sha);

    BootImage image = awaitPhase("v7", BootImagePhase.Ready);
    assertThat(image.getStatus().sha256()).isEqualTo(sha);
    assertThat(reading("v7").get("/images/" + sha).then().statusCode(200).extract().asByteArray())
        .isEqualTo(bytes);
  }

  @Test
  void droppedConnectionResumesToTheRightDigest() {
    byte[] bytes = fakeImage(new byte[] {'h', 's', 'q', 's'}, 13);
    String sha = images.put("flaky.squashfs", bytes);
    images.behave("flaky.squashfs", new ImageServer.Behaviour(200, 100_000, -1, false));
    createImage("flaky", images.url("flaky.squashfs"), sha);
    BootImage image = awaitPhase("flaky", BootImagePhase.Ready);
    assertThat(image.getStatus().sha256()).isEqualTo(sha);
    // Resumed where the dropped connection stopped, on condition the source did not change.
    String etag = "\"" + sha.substring(0, 16) + "\"";
    assertThat(images.requests())
        .anyMatch(
            r -> r.matches("GET /flaky.squashfs Range: bytes=[1-9][0-9]*- If-Range: " + etag));
    assertThat(
            reading("flaky").get("/images/" + sha).then().statusCode(200).extract().asByteArray())
        .isEqualTo(bytes);
  }

  @Test
  void progressIsShownWhileDownloading() {
    byte[] bytes = fakeImage(new byte[] {'h', 's', 'q', 's'}, 14);
    String sha = images.put("slow.squashfs", bytes);
    images.holdStalls();
    images.behave("slow.squashfs", new ImageServer.Behaviour(200, -1, 128 * 1024, false));
    createImage("slow", images.url("slow.squashfs"), sha);
    BootImage downloading =
        awaitImage(
            "slow",
            i ->
                i.getStatus().phase() == BootImagePhase.Downloading
                    && i.getStatus().progress() != null);
    assertThat(downloading.getStatus().progress().bytes()).isPositive();
    assertThat(downloading.getStatus().progress().total()).isEqualTo((long) bytes.length);
    assertThat(columns(downloading)).containsEntry("Phase", "Downloading");
    assertThat(condition(downloading.getStatus().conditions(), "Reconciling").getReason())
        .isEqualTo("Mirroring");
    // Half-written bytes are never served.
    reading("slow").get("/images/" + sha).then().statusCode(404);
    images.release();
    awaitPhase("slow", BootImagePhase.Ready);
  }

  @Test
  void imagesWithOneDigestShareOneFileRemovedWithTheLastOfThem() {
    byte[] bytes = fakeImage(new byte[] {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd}, 15);
    String sha = images.put("shared.tar.zst", bytes);
    createImage("shared-a", images.url("shared.tar.zst"), sha);
    awaitPhase("shared-a", BootImagePhase.Ready);
    createImage("shared-b", images.url("shared.tar.zst"), sha);
    awaitPhase("shared-b", BootImagePhase.Ready);
    assertThat(images.requests().stream().filter(r -> r.startsWith("GET /shared.tar.zst")).count())
        .as("the second BootImage of a digest downloads nothing")
        .isEqualTo(1);
    client.resources(BootImage.class).inNamespace(ns).withName("shared-a").delete();
    await()
        .during(Duration.ofSeconds(1))
        .atMost(Duration.ofSeconds(5))
        .until(() -> Files.exists(STORE.resolve(sha)));
    client.resources(BootImage.class).inNamespace(ns).withName("shared-b").delete();
    await().atMost(Duration.ofSeconds(30)).until(() -> !Files.exists(STORE.resolve(sha)));
    reading("shared-b").get("/images/" + sha).then().statusCode(404);
  }

  @Test
  void bootstrapFilesAreServedWithRanges() throws IOException {
    Path dir = Files.createDirectories(Path.of("target/test-bootstrap"));
    byte[] kernel = fakeImage(new byte[] {'M', 'Z'}, 16);
    Files.write(dir.resolve("vmlinuz"), kernel);
    Files.write(
        dir.resolve("initramfs"), fakeImage(new byte[] {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd}, 17));
    assertThat(given().get("/bootstrap/vmlinuz").then().statusCode(200).extract().asByteArray())
        .isEqualTo(kernel);
    given()
        .header("Range", "bytes=0-1")
        .get("/bootstrap/vmlinuz")
        .then()
        .statusCode(206)
        .header("Content-Range", "bytes 0-1/" + kernel.length);
    given()
        .header("Range", "bytes=" + kernel.length + "-")
        .get("/bootstrap/vmlinuz")
        .then()
        .statusCode(416);
    given()
        .head("/bootstrap/vmlinuz")
        .then()
        .statusCode(200)
        .header("Content-Length", String.valueOf(kernel.length))
        .header("Last-Modified", org.hamcrest.Matchers.notNullValue());
    given().get("/bootstrap/initramfs").then().statusCode(200);
    given().get("/bootstrap/../pom.xml").then().statusCode(404);
  }

  // --- the rest of the promises ----------------------------------------------------

  @Test
  void progressIsPatchedAtMostOnceASecond() throws Exception {
    byte[] bytes = fakeImage(new byte[] {'h', 's', 'q', 's'}, 31);
    String sha = images.put("paced.squashfs", bytes);
    // 64 chunks of 4 KiB, one per 60 ms: about 4 s of downloading.
    images.pace("paced.squashfs", Duration.ofMillis(60));
    List<Long> progress = new java.util.concurrent.CopyOnWriteArrayList<>();
    List<Long> at = new java.util.concurrent.CopyOnWriteArrayList<>();
    try (var watch =
        client
            .resources(BootImage.class)
            .inNamespace(ns)
            .withName("paced")
            .watch(
                new io.fabric8.kubernetes.client.Watcher<BootImage>() {
                  @Override
                  public void eventReceived(Action action, BootImage image) {
                    var p = image.getStatus() == null ? null : image.getStatus().progress();
                    if (p != null
                        && p.bytes() > 0
                        && (progress.isEmpty() || p.bytes() != progress.get(progress.size() - 1))) {
                      progress.add(p.bytes());
                      at.add(System.nanoTime());
                    }
                  }

                  @Override
                  public void onClose(io.fabric8.kubernetes.client.WatcherException cause) {}
                })) {
      long start = System.nanoTime();
      createImage("paced", images.url("paced.squashfs"), sha);
      awaitPhase("paced", BootImagePhase.Ready);
      double seconds = (System.nanoTime() - start) / 1e9;
      assertThat(progress).as("progress updates while downloading").hasSizeGreaterThanOrEqualTo(2);
      assertThat(progress).isSorted();
      // The first update comes at once, then at most one a second.
      assertThat(progress.size())
          .as("progress updates %s in %.1f s", progress, seconds)
          .isLessThanOrEqualTo((int) Math.ceil(seconds) + 1);
    }
  }

  @Test
  void specChangeWhileDownloadingCancelsTheOldTransfer() throws Exception {
    byte[] old = fakeImage(new byte[] {'h', 's', 'q', 's'}, 32);
    String oldSha = images.put("old.squashfs", old);
    images.holdStalls();
    try {
      images.behave("old.squashfs", new ImageServer.Behaviour(200, -1, 64 * 1024, false));
      createImage("moving", images.url("old.squashfs"), oldSha);
      BootImage downloading =
          awaitImage(
              "moving",
              i ->
                  i.getStatus().phase() == BootImagePhase.Downloading
                      && i.getStatus().progress() != null
                      && i.getStatus().progress().bytes() > 0);
      String uid = downloading.getMetadata().getUid();
      assertThat(partials(uid)).as("the old download's partial file").hasSize(1);
      // Half-written bytes are never served.
      reading("moving").get("/images/" + oldSha).then().statusCode(404);

      byte[] fresh = fakeImage(new byte[] {'h', 's', 'q', 's'}, 33);
      String freshSha = images.put("new.squashfs", fresh);
      client
          .resources(BootImage.class)
          .inNamespace(ns)
          .withName("moving")
          .edit(
              i -> {
                i.setSpec(
                    io.chrootbooter.api.v1alpha1.BootImageSpec.builder()
                        .source(
                            new io.chrootbooter.api.v1alpha1.ImageSource(
                                images.url("new.squashfs"), null))
                        .sha256(freshSha)
                        .build());
                return i;
              });
      BootImage ready = awaitPhase("moving", BootImagePhase.Ready);
      assertThat(ready.getStatus().sha256()).isEqualTo(freshSha);
      // The old transfer stopped although its source still holds the connection open, and its
      // partial file went with it.
      await().atMost(Duration.ofSeconds(10)).until(() -> partials(uid).isEmpty());
      assertThat(STORE.resolve(oldSha)).doesNotExist();
      assertThat(
              reading("moving")
                  .get("/images/" + freshSha)
                  .then()
                  .statusCode(200)
                  .extract()
                  .asByteArray())
          .isEqualTo(fresh);
    } finally {
      images.release();
    }
  }

  /** The partial files of the downloads of the BootImage with this uid. */
  static List<Path> partials(String uid) throws IOException {
    try (var files = Files.list(STORE.resolveSibling("partial"))) {
      return files.filter(f -> f.getFileName().toString().startsWith(uid)).toList();
    }
  }

  @Test
  void sourceThatStopsSendingIsDroppedAndResumed() {
    byte[] bytes = fakeImage(new byte[] {'h', 's', 'q', 's'}, 36);
    String sha = images.put("stuck.squashfs", bytes);
    images.holdStalls();
    try {
      // The first response stops at 64 KiB and never sends more (cb.store.stall-timeout is 3 s
      // in the tests); the resumed request gets the rest.
      images.behave("stuck.squashfs", new ImageServer.Behaviour(200, -1, 64 * 1024, false));
      createImage("stuck", images.url("stuck.squashfs"), sha);
      BootImage ready = awaitPhase("stuck", BootImagePhase.Ready);
      assertThat(ready.getStatus().sha256()).isEqualTo(sha);
      assertThat(images.requests())
          .anyMatch(r -> r.matches("GET /stuck.squashfs Range: bytes=[1-9][0-9]*- If-Range: .*"));
      assertThat(
              reading("stuck").get("/images/" + sha).then().statusCode(200).extract().asByteArray())
          .isEqualTo(bytes);
    } finally {
      images.release();
    }
  }

  @Test
  void imageLargerThanTheFreeSpaceFailsBeforeDownloading() {
    byte[] bytes = fakeImage(new byte[] {'h', 's', 'q', 's'}, 34);
    String sha = images.put("huge.squashfs", bytes);
    long petabyte = 1L << 50;
    images.announce("huge.squashfs", petabyte);
    createImage("huge", images.url("huge.squashfs"), sha);
    BootImage image = awaitPhase("huge", BootImagePhase.Failed);
    assertThat(stalled(image).getReason()).isEqualTo("InsufficientSpace");
    assertThat(stalled(image).getMessage())
        .matches(
            "the image is "
                + petabyte
                + " bytes; the store at "
                + java.util.regex.Pattern.quote(STORE.getParent().toAbsolutePath().toString())
                + " has \\d+ bytes free");
    assertThat(STORE.resolve(sha)).doesNotExist();
  }

  @Test
  void rejectedSourcesAreNotRetried() {
    for (int status : new int[] {403, 404}) {
      String file = "refused-" + status + ".squashfs";
      images.put(file, fakeImage(new byte[] {'h', 's', 'q', 's'}, status));
      images.behave(file, new ImageServer.Behaviour(status, -1, -1, false));
      createImage("refused-" + status, images.url(file), "cd".repeat(32));
      BootImage image = awaitPhase("refused-" + status, BootImagePhase.Failed);
      assertThat(stalled(image).getReason()).isEqualTo("SourceRejected");
      assertThat(stalled(image).getMessage())
          .isEqualTo("GET " + images.url(file) + " answered HTTP " + status);
      await()
          .during(Duration.ofSeconds(1))
          .atMost(Duration.ofSeconds(5))
          .until(
              () ->
                  images.requests().stream().filter(r -> r.startsWith("GET /" + file)).count()
                      == 1);
    }
  }

  @Test
  void sourceThatSendsLessThanItAnnouncedFailsAfterItsRetries() {
    byte[] bytes = fakeImage(new byte[] {'h', 's', 'q', 's'}, 35);
    String sha = images.put("short.squashfs", bytes);
    images.behave("short.squashfs", new ImageServer.Behaviour(200, -1, -1, true));
    createImage("short", images.url("short.squashfs"), sha);
    BootImage image = awaitPhase("short", BootImagePhase.Failed);
    assertThat(stalled(image).getReason()).isEqualTo("MirrorFailed");
    assertThat(stalled(image).getMessage())
        .startsWith("GET " + images.url("short.squashfs") + " failed 3 times; the last error: ");
    assertThat(STORE.resolve(sha)).doesNotExist();
  }

  // --- sources refused by policy: loopback, link-local, the operator's own addresses -------

  /** A TCP listener that only counts the connections it is offered, and answers none. */
  static final class Listener implements AutoCloseable {
    final java.net.ServerSocket socket;
    final java.util.concurrent.atomic.AtomicInteger accepted =
        new java.util.concurrent.atomic.AtomicInteger();

    Listener(String host) throws IOException {
      socket = new java.net.ServerSocket(0, 50, java.net.InetAddress.getByName(host));
      Thread t =
          new Thread(
              () -> {
                while (!socket.isClosed()) {
                  try (var connection = socket.accept()) {
                    accepted.incrementAndGet();
                  } catch (IOException e) {
                    // Closed.
                  }
                }
              },
              "refused-source-listener");
      t.setDaemon(true);
      t.start();
    }

    int port() {
      return socket.getLocalPort();
    }

    @Override
    public void close() throws IOException {
      socket.close();
    }
  }

  @Test
  void internalSourcesAreRefusedByPolicyWithoutAConnection() throws Exception {
    // A digest no scenario stores: a stored one would be Ready without any download.
    String sha = "ef".repeat(32);
    try (Listener internal = new Listener("127.0.0.1")) {
      String behind = "http://127.0.0.1:" + internal.port() + "/secret.squashfs";
      images.redirect("hop.squashfs", 302, behind);
      images.redirect("hop-localhost.squashfs", 307, behind.replace("127.0.0.1", "localhost"));
      String loopback = "resolves to an address refused by policy (loopback)";
      Map<String, List<String>> cases = new LinkedHashMap<>();
      cases.put("loopback", List.of(behind, "source host 127.0.0.1 " + loopback));
      cases.put(
          "localhost",
          List.of(behind.replace("127.0.0.1", "localhost"), "source host localhost " + loopback));
      cases.put(
          "metadata",
          List.of(
              "http://169.254.169.254/latest/image.squashfs",
              "source host 169.254.169.254 resolves to an address refused by policy"
                  + " (link-local)"));
      cases.put(
          "ipv6-loopback",
          List.of(
              "http://[::1]:" + internal.port() + "/secret.squashfs",
              "source host [::1] " + loopback));
      cases.put(
          "redirected",
          List.of(
              images.url("hop.squashfs"),
              "GET "
                  + images.url("hop.squashfs")
                  + " was redirected (hop 1) to host 127.0.0.1, which "
                  + loopback));
      cases.put(
          "redirected-by-name",
          List.of(
              images.url("hop-localhost.squashfs"),
              "GET "
                  + images.url("hop-localhost.squashfs")
                  + " was redirected (hop 1) to host localhost, which "
                  + loopback));
      for (var c : cases.entrySet()) {
        assertThat(createImage(c.getKey(), c.getValue().get(0), sha)).isEmpty();
      }
      for (var c : cases.entrySet()) {
        BootImage image = awaitPhase(c.getKey(), BootImagePhase.Failed);
        assertThat(stalled(image).getReason()).as(c.getKey()).isEqualTo("SourceRejected");
        assertThat(stalled(image).getMessage()).as(c.getKey()).isEqualTo(c.getValue().get(1));
        assertThat(image.getStatus().servedUrl()).isNull();
        awaitEvent(c.getKey(), "Warning", "SourceRejected", c.getValue().get(1));
      }
      // Nothing reached the refused address, not even a TCP connection; the allowed host that
      // redirected was asked once (a refusal is final, not retried).
      await()
          .during(Duration.ofSeconds(1))
          .atMost(Duration.ofSeconds(5))
          .until(
              () ->
                  internal.accepted.get() == 0
                      && images.requests().stream()
                              .filter(r -> r.startsWith("GET /hop.squashfs"))
                              .count()
                          == 1);
      assertThat(STORE.resolve(sha)).doesNotExist();
    }
  }

  @Test
  void redirectsBetweenAllowedHostsAreFollowedAFewTimes() {
    byte[] bytes = fakeImage(new byte[] {'h', 's', 'q', 's'}, 42);
    String sha = images.put("moved-here.squashfs", bytes);
    images.redirect("moved.squashfs", 301, "/moved-again.squashfs");
    images.redirect("moved-again.squashfs", 308, images.url("moved-here.squashfs"));
    createImage("moved", images.url("moved.squashfs"), sha);
    assertThat(awaitPhase("moved", BootImagePhase.Ready).getStatus().sha256()).isEqualTo(sha);
    assertThat(
            reading("moved").get("/images/" + sha).then().statusCode(200).extract().asByteArray())
        .isEqualTo(bytes);

    images.redirect("loop.squashfs", 302, "/loop.squashfs");
    createImage("loop", images.url("loop.squashfs"), "ab".repeat(32));
    BootImage loop = awaitPhase("loop", BootImagePhase.Failed);
    assertThat(stalled(loop).getReason()).isEqualTo("SourceRejected");
    assertThat(stalled(loop).getMessage())
        .isEqualTo("GET " + images.url("loop.squashfs") + " was redirected more than 5 times");
  }

  // --- https sources: the operator's CA bundle, a BootImage's caBundle Secret ----------------

  /** An https image server with a certificate {@code ca} signed for {@code subjectAltName}. */
  ImageServer httpsServer(TestCa ca, String subjectAltName) throws IOException {
    ImageServer server = ImageServer.https(ca.serverContext(subjectAltName));
    httpsServers.add(server);
    return server;
  }

  private final List<ImageServer> httpsServers = new ArrayList<>();

  @AfterEach
  void stopHttpsServers() {
    httpsServers.forEach(ImageServer::close);
    httpsServers.clear();
  }

  Optional<String> createImage(String name, String url, String sha256, Map<String, ?> caBundle) {
    return createRaw(
        "BootImage",
        name,
        Map.of("source", Map.of("url", url, "caBundle", caBundle), "sha256", sha256));
  }

  /** Creates or replaces the Secret {@code name} in the scenario's namespace. */
  void putSecret(String name, Map<String, String> data) {
    Map<String, String> encoded = new LinkedHashMap<>();
    data.forEach(
        (k, v) ->
            encoded.put(
                k, Base64.getEncoder().encodeToString(v.getBytes(StandardCharsets.US_ASCII))));
    var secrets = client.secrets().inNamespace(ns);
    if (secrets.withName(name).get() == null) {
      secrets
          .resource(
              new SecretBuilder()
                  .withNewMetadata()
                  .withName(name)
                  .endMetadata()
                  .withData(encoded)
                  .build())
          .create();
    } else {
      secrets.withName(name).edit(s -> new SecretBuilder(s).withData(encoded).build());
    }
  }

  static Condition stalled(BootImage image) {
    return condition(image.getStatus().conditions(), "Stalled");
  }

  @Test
  void httpsSourceSignedByAnUnknownCaFailsOnceWithTheRemedy() throws Exception {
    TestCa ca = TestCa.create(work.resolve("ca"), "private mirror CA");
    ImageServer mirror = httpsServer(ca, "IP:" + ImageServer.HOST);
    byte[] bytes = fakeImage(new byte[] {'h', 's', 'q', 's'}, 21);
    String sha = mirror.put("private.squashfs", bytes);
    createImage("private", mirror.url("private.squashfs"), sha);

    BootImage image = awaitPhase("private", BootImagePhase.Failed);
    assertThat(stalled(image).getReason()).isEqualTo("SourceUntrusted");
    assertThat(stalled(image).getMessage())
        .isEqualTo(
            mirror.url("private.squashfs")
                + ": certificate not trusted (PKIX path building failed) — set"
                + " spec.source.caBundle or cb.store.ca-bundle");
    awaitEvent("private", "Warning", "SourceUntrusted", stalled(image).getMessage());
    // Final: not retried (the tests allow 3 attempts, 0.1 s apart).
    await()
        .during(Duration.ofSeconds(2))
        .atMost(Duration.ofSeconds(10))
        .until(() -> mirror.handshakes() == 1);
    assertThat(mirror.requests()).isEmpty();
    assertThat(STORE.resolve(sha)).doesNotExist();
  }

  @Test
  void caBundleSecretIsWaitedForThenTrusted() throws Exception {
    TestCa ca = TestCa.create(work.resolve("ca"), "private mirror CA");
    ImageServer mirror = httpsServer(ca, "IP:" + ImageServer.HOST);
    byte[] bytes = buildImage("squashfs");
    String sha = mirror.put("private.squashfs", bytes);
    createImage("private", mirror.url("private.squashfs"), sha, Map.of("secretName", "mirror-ca"));

    BootImage waiting = awaitPhase("private", BootImagePhase.Pending);
    Condition reconciling = condition(waiting.getStatus().conditions(), "Reconciling");
    assertThat(reconciling.getStatus()).isEqualTo("True");
    assertThat(reconciling.getReason()).isEqualTo("WaitingForCaBundle");
    assertThat(reconciling.getMessage())
        .isEqualTo(
            "waiting for Secret " + ns + "/mirror-ca (spec.source.caBundle): it does not exist");
    assertThat(mirror.handshakes()).isZero();

    // Picked up from the watch on the Secret: no spec change, no restart.
    putSecret("mirror-ca", Map.of("ca.crt", ca.pem()));
    BootImage ready = awaitPhase("private", BootImagePhase.Ready);
    assertThat(ready.getStatus().sha256()).isEqualTo(sha);
    assertThat(Files.readAllBytes(STORE.resolve(sha))).isEqualTo(bytes);
    assertThat(
            reading("private").get("/images/" + sha).then().statusCode(200).extract().asByteArray())
        .isEqualTo(bytes);
  }

  @Test
  void brokenCaBundleSecretsStallUntilTheSecretIsFixed() throws Exception {
    TestCa ca = TestCa.create(work.resolve("ca"), "private mirror CA");
    TestCa other = TestCa.create(work.resolve("other"), "some other CA");
    ImageServer mirror = httpsServer(ca, "IP:" + ImageServer.HOST);
    byte[] bytes = fakeImage(new byte[] {'h', 's', 'q', 's'}, 22);
    String sha = mirror.put("private.squashfs", bytes);
    String url = mirror.url("private.squashfs");
    putSecret("mirror-ca", Map.of("tls.crt", ca.pem(), "tls.key", "not for anyone's eyes"));
    createImage("private", url, sha, Map.of("secretName", "mirror-ca", "key", "bundle.pem"));

    BootImage noKey =
        awaitImage("private", i -> hasReason(i, "Stalled", "InvalidCaBundle", "has no key"));
    assertThat(noKey.getStatus().phase()).isEqualTo(BootImagePhase.Failed);
    assertThat(stalled(noKey).getMessage())
        .isEqualTo(
            "Secret "
                + ns
                + "/mirror-ca has no key \"bundle.pem\" (spec.source.caBundle.key); its keys:"
                + " tls.crt, tls.key");

    putSecret("mirror-ca", Map.of("bundle.pem", "not for anyone's eyes"));
    BootImage garbage =
        awaitImage("private", i -> hasReason(i, "Stalled", "InvalidCaBundle", "not a PEM"));
    assertThat(stalled(garbage).getMessage())
        .startsWith(
            "Secret " + ns + "/mirror-ca key \"bundle.pem\" is not a PEM certificate bundle: ")
        .doesNotContain("anyone's eyes");

    // Another CA's certificate: the download is tried, and fails on the certificate.
    putSecret("mirror-ca", Map.of("bundle.pem", other.pem()));
    BootImage untrusted =
        awaitImage("private", i -> hasReason(i, "Stalled", "SourceUntrusted", "not trusted"));
    assertThat(stalled(untrusted).getMessage()).startsWith(url + ": certificate not trusted");

    // The right CA, with another in the bundle: a change of the Secret retries the download.
    putSecret("mirror-ca", Map.of("bundle.pem", other.pem() + ca.pem()));
    assertThat(awaitPhase("private", BootImagePhase.Ready).getStatus().sha256()).isEqualTo(sha);
    assertThat(
            reading("private").get("/images/" + sha).then().statusCode(200).extract().asByteArray())
        .isEqualTo(bytes);
    assertThat(client.v1().events().inNamespace(ns).list().getItems())
        .noneMatch(e -> e.getMessage().contains("anyone's eyes"));
  }

  @Test
  void operatorWideCaBundleIsTrustedBesideTheDefaultOnes() throws Exception {
    ImageServer mirror = httpsServer(OperatorCa.ca(), "IP:" + ImageServer.HOST);
    byte[] bytes = fakeImage(new byte[] {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd}, 23);
    String sha = mirror.put("company.tar.zst", bytes);
    createImage("company", mirror.url("company.tar.zst"), sha);
    assertThat(awaitPhase("company", BootImagePhase.Ready).getStatus().sha256()).isEqualTo(sha);
    assertThat(
            reading("company").get("/images/" + sha).then().statusCode(200).extract().asByteArray())
        .isEqualTo(bytes);
  }

  @Test
  void certificateForAnotherHostFailsEvenFromATrustedCa() throws Exception {
    TestCa ca = TestCa.create(work.resolve("ca"), "private mirror CA");
    ImageServer mirror = httpsServer(ca, "DNS:mirror.example.org");
    byte[] bytes = fakeImage(new byte[] {'h', 's', 'q', 's'}, 24);
    String sha = mirror.put("private.squashfs", bytes);
    putSecret("mirror-ca", Map.of("ca.crt", ca.pem()));
    createImage("private", mirror.url("private.squashfs"), sha, Map.of("secretName", "mirror-ca"));

    BootImage image = awaitPhase("private", BootImagePhase.Failed);
    assertThat(stalled(image).getReason()).isEqualTo("SourceUntrusted");
    assertThat(stalled(image).getMessage())
        .isEqualTo(
            mirror.url("private.squashfs")
                + ": certificate not valid for host "
                + ImageServer.HOST
                + " (No subject alternative names matching IP address "
                + ImageServer.HOST
                + " found); host names are always verified");
    assertThat(mirror.requests()).isEmpty();

    // The operator-wide CA does not help either: the name is what is wrong.
    ImageServer wrongName = httpsServer(OperatorCa.ca(), "DNS:localhost");
    wrongName.put("company.squashfs", bytes);
    createImage("company", wrongName.url("company.squashfs"), sha);
    assertThat(stalled(awaitPhase("company", BootImagePhase.Failed)).getMessage())
        .contains(": certificate not valid for host " + ImageServer.HOST + " (");
  }

  @Test
  void caBundleNamesOnlySecretsOfItsOwnNamespaceAndNeverTheTokenSecret() {
    String tokenNamespace = client.getNamespace();
    String tokenSecret = "chrootbooter-machine-token";
    // In the BootImage's namespace there is no such Secret: it is waited for, not looked up
    // elsewhere.
    createImage(
        "token-elsewhere",
        images.url("x.squashfs"),
        "ab".repeat(32),
        Map.of("secretName", tokenSecret, "key", "current"));
    BootImage elsewhere = awaitPhase("token-elsewhere", BootImagePhase.Pending);
    assertThat(condition(elsewhere.getStatus().conditions(), "Reconciling").getMessage())
        .isEqualTo(
            "waiting for Secret "
                + ns
                + "/"
                + tokenSecret
                + " (spec.source.caBundle): it does not exist");

    // In the operator's namespace the token Secret is refused outright.
    GenericKubernetesResource raw = new GenericKubernetesResource();
    raw.setApiVersion(BootImage.GROUP + "/" + BootImage.VERSION);
    raw.setKind("BootImage");
    String name = "steal-" + ns;
    raw.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(tokenNamespace).build());
    raw.setAdditionalProperty(
        "spec",
        Map.of(
            "source",
            Map.of(
                "url",
                images.url("x.squashfs"),
                "caBundle",
                Map.of("secretName", tokenSecret, "key", "current")),
            "sha256",
            "ab".repeat(32)));
    try {
      client.resource(raw).inNamespace(tokenNamespace).create();
      BootImage steal =
          await()
              .atMost(Duration.ofSeconds(30))
              .until(
                  () ->
                      client
                          .resources(BootImage.class)
                          .inNamespace(tokenNamespace)
                          .withName(name)
                          .get(),
                  i -> i != null && i.getStatus() != null);
      assertThat(steal.getStatus().phase()).isEqualTo(BootImagePhase.Failed);
      assertThat(stalled(steal).getReason()).isEqualTo("InvalidSpec");
      assertThat(stalled(steal).getMessage())
          .isEqualTo(
              "spec.source.caBundle.secretName: \""
                  + tokenSecret
                  + "\" is the operator's machine-token Secret, never a CA bundle");
    } finally {
      client.resources(BootImage.class).inNamespace(tokenNamespace).withName(name).delete();
    }
  }

  @Test
  void invalidCaBundleReferencesStall() {
    Map<String, Map<String, ?>> cases = new LinkedHashMap<>();
    cases.put(
        "spec.source.caBundle.secretName: \"Mirror_CA\" is not a Kubernetes object name"
            + " (lower-case letters, digits, '-' and '.', at most 253 characters)",
        Map.of("secretName", "Mirror_CA"));
    cases.put(
        "spec.source.caBundle.key: \"ca crt\" is not a Secret key (letters, digits, '-', '_' and"
            + " '.', at most 253 characters)",
        Map.of("secretName", "mirror-ca", "key", "ca crt"));
    cases.put("spec.source.caBundle.secretName: required", Map.of("key", "ca.crt"));
    int i = 0;
    for (var c : cases.entrySet()) {
      String name = "bad-ca-" + i++;
      Optional<String> rejected =
          createImage(name, "https://mirror.example.org/a.squashfs", "ab".repeat(32), c.getValue());
      if (rejected.isPresent()) {
        assertThat(rejected.get()).contains("caBundle");
        continue;
      }
      BootImage image = awaitPhase(name, BootImagePhase.Failed);
      assertThat(stalled(image).getReason()).isEqualTo("InvalidSpec");
      assertThat(stalled(image).getMessage()).isEqualTo(c.getKey());
    }
  }

  static boolean hasReason(BootImage image, String type, String reason, String inMessage) {
    return Conditions.find(image.getStatus().conditions(), type)
        .map(
            c ->
                "True".equals(c.getStatus())
                    && reason.equals(c.getReason())
                    && c.getMessage().contains(inMessage))
        .orElse(false);
  }
}
