package io.chrootbooter.operator.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.chrootbooter.operator.TestCa;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code cb.store.ca-bundle} as an admin sets it: a good bundle is taken, a bad one named. */
class SourceTrustTest {

  @Test
  void aBundleThatIsNotPemStopsTheOperatorNamingSettingAndFile(@TempDir Path dir)
      throws IOException {
    Path bundle = Files.writeString(dir.resolve("bundle.pem"), "-----BEGIN PRIVATE KEY-----\n");
    assertThatThrownBy(
            () ->
                new SourceTrust(
                    ImageStoreTest.config(dir, "cb.store.ca-bundle", bundle.toString())))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith(
            "cb.store.ca-bundle: " + bundle + " is not a PEM certificate bundle: ");

    Path empty = Files.writeString(dir.resolve("empty.pem"), "");
    assertThatThrownBy(
            () ->
                new SourceTrust(ImageStoreTest.config(dir, "cb.store.ca-bundle", empty.toString())))
        .hasMessage(
            "cb.store.ca-bundle: "
                + empty
                + " is not a PEM certificate bundle: it holds no certificate"
                + " (-----BEGIN CERTIFICATE-----)");

    Path missing = dir.resolve("missing.pem");
    assertThatThrownBy(
            () ->
                new SourceTrust(
                    ImageStoreTest.config(dir, "cb.store.ca-bundle", missing.toString())))
        .hasMessage("cb.store.ca-bundle: cannot read " + missing + ": NoSuchFileException");
  }

  @Test
  void aBundleOfSeveralCasIsTakenWhole(@TempDir Path dir) throws Exception {
    TestCa one = TestCa.create(dir.resolve("one"), "one");
    TestCa two = TestCa.create(dir.resolve("two"), "two");
    byte[] bundle = ("# corporate CAs\n" + one.pem() + two.pem()).getBytes();
    assertThat(SourceTrust.parse(bundle))
        .extracting(c -> c.getSubjectX500Principal().getName())
        .containsExactly("CN=one", "CN=two");
  }
}
