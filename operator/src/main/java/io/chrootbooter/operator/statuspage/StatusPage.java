package io.chrootbooter.operator.statuspage;

import io.quarkus.qute.Engine;
import io.quarkus.qute.HtmlEscaper;
import io.quarkus.qute.ReflectionValueResolver;
import io.quarkus.qute.Template;
import io.quarkus.qute.Variant;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;

/**
 * Renders the status page and the fragments pushed to it from one Qute template, {@code page.html}:
 * the same markup whether a row is part of the first page or a live update. The template is HTML,
 * so Qute escapes every value it prints.
 */
public final class StatusPage {
  private static final String RESOURCE = "/io/chrootbooter/operator/statuspage/page.html";

  private final Template template;

  public StatusPage() {
    Engine engine =
        Engine.builder()
            .addDefaults()
            .addValueResolver(new ReflectionValueResolver())
            .addResultMapper(new HtmlEscaper(List.of(Variant.TEXT_HTML)))
            .build();
    try (InputStream in = StatusPage.class.getResourceAsStream(RESOURCE)) {
      if (in == null) {
        throw new IllegalStateException(RESOURCE + " is missing from the class path");
      }
      template =
          engine.parse(
              new String(in.readAllBytes(), StandardCharsets.UTF_8),
              new Variant(Locale.ROOT, Variant.TEXT_HTML, "UTF-8"),
              "page.html");
    } catch (IOException e) {
      throw new UncheckedIOException("reading " + RESOURCE, e);
    }
  }

  /**
   * The whole page. {@code seq} is the id of the last update it includes; {@code nonce} the
   * Content-Security-Policy nonce of its inline style and script.
   */
  public String page(StatusView.Page page, String seq, String nonce) {
    return template.data("page", page).data("seq", seq).data("nonce", nonce).render();
  }

  /** Everything inside {@code <main>}: what a client that missed updates starts over from. */
  public String content(StatusView.Page page) {
    return template.getFragment("content").data("page", page).render();
  }

  /** The counts above the tables. */
  public String summary(StatusView.Summary summary) {
    return template
        .getFragment("summary")
        .data("page", new StatusView.Page(summary, List.of(), List.of()))
        .render();
  }

  /** One machine's table row. */
  public String machine(StatusView.MachineRow row) {
    return template.getFragment("machine").data("m", row).render();
  }

  /** One BootTest's table row. */
  public String test(StatusView.TestRow row) {
    return template.getFragment("test").data("t", row).render();
  }

  /** One image's table row. */
  public String image(StatusView.ImageRow row) {
    return template.getFragment("image").data("i", row).render();
  }
}
