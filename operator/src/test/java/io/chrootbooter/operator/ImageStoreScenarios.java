package io.chrootbooter.operator;

import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.BootImagePhase;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The image store as a user sees it: BootImages mirrored from a source the test controls, verified,
 * served byte for byte with HTTP semantics, and removed with their last BootImage.
 */
public abstract class ImageStoreScenarios extends AgentApiScenarios {
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
          given()
              .get("/images/" + sha)
              .then()
              .statusCode(200)
              .header("ETag", "\"" + sha + "\"")
              .extract()
              .asByteArray();
      assertThat(served).isEqualTo(bytes);
      assertThat(
              given()
                  .get("/images/" + ns + "/" + name)
                  .then()
                  .statusCode(200)
                  .extract()
                  .asByteArray())
          .isEqualTo(bytes);
      given()
          .head("/images/" + sha)
          .then()
          .statusCode(200)
          .header("Content-Length", String.valueOf(bytes.length));
      byte[] part =
          given()
              .header("Range", "bytes=100-199")
              .get("/images/" + sha)
              .then()
              .statusCode(206)
              .header("Content-Range", "bytes 100-199/" + bytes.length)
              .extract()
              .asByteArray();
      assertThat(part).isEqualTo(Arrays.copyOfRange(bytes, 100, 200));
      given()
          .header("Range", "bytes=" + (bytes.length + 10) + "-")
          .get("/images/" + sha)
          .then()
          .statusCode(416);
      given()
          .header("If-None-Match", "\"" + sha + "\"")
          .get("/images/" + sha)
          .then()
          .statusCode(304);
      // If-Range with another validator: the whole image, not the range.
      given()
          .header("Range", "bytes=0-9")
          .header("If-Range", "\"other\"")
          .get("/images/" + sha)
          .then()
          .statusCode(200)
          .header("Content-Length", String.valueOf(bytes.length));
    }
    given().get("/images/" + "0".repeat(64)).then().statusCode(404);
    given().get("/images/..%2F..%2Fetc%2Fpasswd").then().statusCode(404);
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
    given().get("/images/" + declared).then().statusCode(404);
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

  @Test
  void droppedConnectionResumesToTheRightDigest() {
    byte[] bytes = fakeImage(new byte[] {'h', 's', 'q', 's'}, 13);
    String sha = images.put("flaky.squashfs", bytes);
    images.behave("flaky.squashfs", new ImageServer.Behaviour(200, 100_000, -1, false));
    createImage("flaky", images.url("flaky.squashfs"), sha);
    BootImage image = awaitPhase("flaky", BootImagePhase.Ready);
    assertThat(image.getStatus().sha256()).isEqualTo(sha);
    assertThat(images.requests()).anyMatch(r -> r.startsWith("GET /flaky.squashfs Range: bytes="));
    assertThat(given().get("/images/" + sha).then().statusCode(200).extract().asByteArray())
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
    given().get("/images/" + sha).then().statusCode(404);
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
    given().header("Range", "bytes=0-1").get("/bootstrap/vmlinuz").then().statusCode(206);
    given().get("/bootstrap/initramfs").then().statusCode(200);
    given().get("/bootstrap/../pom.xml").then().statusCode(404);
  }
}
