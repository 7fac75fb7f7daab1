package io.chrootbooter.agent.daemon;

import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.unpack.ImageCache;
import io.chrootbooter.protocol.MachinePhase;
import java.io.IOException;
import java.util.function.Consumer;

/**
 * What the {@link Agent} asks of the image pipeline ({@link ImageLoader}): an interface so that the
 * agent's applier can be tested without mounts.
 */
public interface Images {
  /** Downloads, verifies and mounts; see {@link ImageLoader#prepare}. */
  ImageLoader.Prepared prepare(
      ImageLoader.Request request, FetchOptions options, Consumer<MachinePhase> phases)
      throws IOException;

  /** The cache, for the console's {@code images}. */
  ImageCache cache();
}
