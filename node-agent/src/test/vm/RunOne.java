// Runs one JUnit test class and prints its summary; LazyInVmIT runs it in a QEMU guest (java RunOne.java CLASS).
import org.junit.platform.launcher.core.*;
import org.junit.platform.launcher.listeners.*;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;
public class RunOne {
  public static void main(String[] a) {
    var req = LauncherDiscoveryRequestBuilder.request().selectors(selectClass(a[0])).build();
    var l = new SummaryGeneratingListener();
    LauncherFactory.create().execute(req, l);
    var w = new java.io.PrintWriter(System.out);
    l.getSummary().printTo(w); l.getSummary().printFailuresTo(w, 30); w.flush();
    System.exit(l.getSummary().getTotalFailureCount() == 0 && l.getSummary().getTestsSucceededCount() > 0 ? 0 : 1);
  }
}
