import io.chrootbooter.agent.fetch.FetchOptions;
import io.chrootbooter.agent.lazy.HttpBlocks;
import io.chrootbooter.agent.lazy.NbdServer;
import java.net.URI;
import java.nio.file.Path;

/** The agent's NBD server over HTTP ranges, alone: URL, socket, image length, cache file. */
public class LazyNbdServe {
  public static void main(String[] a) throws Exception {
    long length = Long.parseLong(a[2]);
    long size = (length + 4095) / 4096 * 4096;
    try (HttpBlocks blocks =
            new HttpBlocks(URI.create(a[0]), null, size, length, Path.of(a[3]), FetchOptions.defaults());
        NbdServer server = NbdServer.start(Path.of(a[1]), "lazy", blocks, 8)) {
      System.out.println("ready");
      System.in.read();
    }
  }
}
