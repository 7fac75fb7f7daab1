package io.chrootbooter.api.v1alpha1;

/** What a machine does once its {@link BootTest} ends. */
public enum AfterTest {
  /** It runs what its MachineBoot's spec says, with the edits made during the test. */
  Restore,
  /** Its MachineBoot's spec is set to {@code state: Bootstrap}. */
  Bootstrap,
  /** Its MachineBoot's spec names the image under test. */
  Keep
}
