package io.chrootbooter.operator.machine;

import io.chrootbooter.api.v1alpha1.BootImage;
import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.api.v1alpha1.TestHold;
import io.chrootbooter.operator.OperatorConfig;
import io.chrootbooter.operator.liveness.AgentLeases;
import io.chrootbooter.operator.token.MachineTokens;
import io.quarkus.arc.ClientProxy;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.ws.rs.core.UriInfo;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * {@code GET|HEAD /boot/{mac}.ipxe}: the script a machine's iPXE chains to, read from the {@link
 * MachineDirectory} cache (no API call per request).
 *
 * <p>A Vert.x route on the event loop rather than a REST resource: every machine of a rack asks at
 * once after a power cut, and the answer is a few hundred bytes that change only when the machine's
 * MachineBoot or its BootImage does — but for its one-time boot nonce ({@code cb.nonce=}), fresh in
 * every answer and written nowhere (see {@code BootCredentials}). Each MAC's script is rendered
 * once and kept as the bytes before and after the nonce, together with the cached objects and Host
 * it was rendered from; a request serves those bytes around a new nonce while the objects the
 * informer holds are still those very instances (an update replaces the instance), and renders
 * afresh otherwise. A script is therefore never older than the informer cache, and informer events
 * drop the bytes of changed and deleted machines so that the memo holds no more than the cache
 * does.
 */
@ApplicationScoped
public class IpxeResource {
  static final String IPXE = "text/plain; charset=utf-8";
  private static final CharSequence IPXE_TYPE = HttpHeaders.createOptimized(IPXE);
  private static final String PREFIX = "/boot/";
  private static final String SUFFIX = ".ipxe";
  private static final Pattern HOST_PORT =
      Pattern.compile("^([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?$");
  private static final Buffer NOT_A_MAC =
      text("not a MAC address; use 52:54:00:12:34:56, 52-54-00-12-34-56 or 525400123456\n");
  private static final Buffer STARTING = text("the operator is starting\n");
  private static final Buffer BAD_HOST = text("the Host header is not a host name or address\n");

  /** Rendered in the place of the nonce, and cut out of the rendering. */
  private static final String NONCE_MARK = "cb.nonce=" + "N".repeat(32);

  private final MachineDirectory directory;
  private final MachineTokens tokens;
  private final AgentLeases leases;
  private final BootFetches fetches;
  private final OperatorConfig config;
  private final Optional<String> publicUrl;
  private final List<String> consoleArgs;
  private final Optional<Buffer> unknownScript;
  private final String caPin;

  /** The last script rendered for each MAC (lower-case colon form). */
  private final Map<String, Rendered> scripts = new ConcurrentHashMap<>();

  IpxeResource(
      MachineDirectory directory,
      MachineTokens tokens,
      OperatorConfig config,
      AgentLeases leases,
      BootFetches fetches) {
    this.fetches = ClientProxy.unwrap(fetches);
    this.leases = ClientProxy.unwrap(leases);
    // The beans themselves, not their client proxies: both live as long as the application, and a
    // proxy looks its bean up in the application context on every call, five times a request.
    this.directory = ClientProxy.unwrap(directory);
    this.tokens = ClientProxy.unwrap(tokens);
    this.config = config;
    this.publicUrl = config.publicUrl();
    this.consoleArgs =
        Arrays.stream(config.ipxe().console().trim().split("\\s+"))
            .filter(s -> !s.isEmpty())
            .toList();
    // Read once at start: the event loop must not touch the disk.
    this.unknownScript =
        config.ipxe().unknownMachineScript().map(IpxeResource::read).map(IpxeResource::text);
    this.caPin = config.agent().caFile().map(IpxeResource::pin).orElse(null);
    this.directory.onChange(scripts::remove);
  }

  void routes(@Observes Router router) {
    router.route(HttpMethod.GET, PREFIX + "*").handler(this::script);
    router.route(HttpMethod.HEAD, PREFIX + "*").handler(this::script);
  }

  /** {@code sha256:<hex>} of the DER form of the PEM certificate in {@code file}. */
  static String pin(java.nio.file.Path file) {
    try (var in = Files.newInputStream(file)) {
      var certificate =
          java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(in);
      return "sha256:"
          + java.util.HexFormat.of()
              .formatHex(
                  java.security.MessageDigest.getInstance("SHA-256")
                      .digest(certificate.getEncoded()));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read cb.agent.ca-file " + file, e);
    } catch (java.security.GeneralSecurityException e) {
      throw new IllegalArgumentException(
          "cb.agent.ca-file " + file + " is not a PEM certificate: " + e.getMessage(), e);
    }
  }

  /** Runs on the event loop: everything it reads is in memory. */
  private void script(RoutingContext ctx) {
    String path = ctx.normalizedPath();
    if (path.length() <= PREFIX.length() + SUFFIX.length()
        || path.indexOf('/', PREFIX.length()) >= 0
        || !path.endsWith(SUFFIX)) {
      end(ctx, 404, text("not found: " + path + "; expected /boot/{mac}.ipxe\n"));
      return;
    }
    Optional<String> mac = decode(path.substring(PREFIX.length(), path.length() - SUFFIX.length()));
    if (mac.isEmpty()) {
      end(ctx, 400, NOT_A_MAC);
      return;
    }
    if (!directory.synced() || !tokens.ready()) {
      end(ctx, 503, STARTING);
      return;
    }
    Optional<MachineBoot> machine = directory.byMac(mac.get());
    if (machine.isEmpty()) {
      if (unknownScript.isPresent()) {
        end(ctx, 200, unknownScript.get());
      } else {
        end(ctx, 404, text(IpxeScript.unknown(mac.get())));
      }
      return;
    }
    Rendered script = script(mac.get(), machine.get(), ctx.request());
    if (script == null) {
      end(ctx, 400, BAD_HOST);
    } else if (script.tail() == null) {
      end(ctx, 200, script.body());
    } else {
      end(
          ctx,
          200,
          script
              .body()
              .copy()
              .appendString(tokens.nonce(mac.get(), machine.get().getMetadata().getUid()))
              .appendBuffer(script.tail()));
      if (ctx.request().method() == HttpMethod.GET) {
        leases.ipxeFetched(machine.get()); // in the background: tells a reboot how it came back
        // The boot timeline's first step; the kernel and initramfs follow from this address.
        var remote = ctx.request().remoteAddress();
        if (remote != null && remote.hostAddress() != null) {
          fetches.scriptServed(mac.get(), remote.hostAddress(), java.time.Instant.now());
        }
      }
    }
  }

  /**
   * The script of a machine: the memo's bytes when they were rendered from the objects the cache
   * holds now, with the current token and the same Host; a fresh rendering otherwise. Null when the
   * Host header cannot be used in a URL.
   */
  private Rendered script(String mac, MachineBoot mb, HttpServerRequest request) {
    BootImage image = image(mb);
    Rendered last = scripts.get(mac);
    if (last != null && last.machine() == mb && last.image() == image) {
      if (last.tail() == null) {
        return last; // an invalid spec: the script names the machine and nothing else
      }
      if (publicUrl.isPresent()
          || (Objects.equals(last.scheme(), request.scheme())
              && Objects.equals(last.authority(), authority(request)))) {
        return last;
      }
    }
    Rendered fresh = render(mac, mb, image, request);
    if (fresh != null) {
      scripts.put(mac, fresh);
      // The informer may have replaced the object while this rendering ran, and its event may
      // already have dropped the MAC: drop these bytes too, or they would outlive the object.
      if (directory.byMac(mac).orElse(null) != mb) {
        scripts.remove(mac, fresh);
      }
    }
    return fresh;
  }

  private Rendered render(String mac, MachineBoot mb, BootImage image, HttpServerRequest request) {
    String ns = mb.getMetadata().getNamespace();
    String name = mb.getMetadata().getName();
    if (!MachineBootValidator.violations(TestHold.effectiveSpec(mb)).isEmpty()) {
      return new Rendered(mb, image, null, null, text(IpxeScript.invalid(ns, name)), null);
    }
    String scheme = request.scheme();
    String authority = authority(request);
    Optional<String> base = publicUrl.or(() -> baseUrl(scheme, authority));
    if (base.isEmpty()) {
      return null;
    }
    String script =
        IpxeScript.boot(
            new IpxeScript.Boot(
                ns,
                name,
                base.get(),
                mac,
                NONCE_MARK.substring("cb.nonce=".length()),
                image == null
                    ? List.of()
                    : IpxeScript.imageArgs(image, config.agent().url().orElse(base.get())),
                consoleArgs,
                TestHold.effectiveSpec(mb).kernelArgsOrEmpty(),
                config.agent().url().orElse(null),
                caPin));
    int at = script.indexOf(NONCE_MARK) + "cb.nonce=".length();
    return new Rendered(
        mb,
        image,
        scheme,
        authority,
        text(script.substring(0, at)),
        text(script.substring(at + NONCE_MARK.length() - "cb.nonce=".length())));
  }

  /**
   * The BootImage the machine names (the image under test while a BootTest holds it), as the cache
   * holds it; null for none.
   */
  private BootImage image(MachineBoot mb) {
    String ref = TestHold.effectiveSpec(mb).imageRef();
    return ref == null ? null : directory.image(mb.getMetadata().getNamespace(), ref).orElse(null);
  }

  /**
   * The MAC in a request path, percent-decoded when it is encoded ({@code 52%3A54%3A…}); a {@code
   * +} stays a plus, as it does in a path.
   */
  private static Optional<String> decode(String given) {
    if (given.indexOf('%') < 0) {
      return MacAddress.normalize(given);
    }
    try {
      return MacAddress.normalize(
          URLDecoder.decode(given.replace("+", "%2B"), StandardCharsets.UTF_8));
    } catch (IllegalArgumentException e) {
      return Optional.empty(); // a malformed escape is no MAC either
    }
  }

  /** The Host the request names, or the server's address for a request without one (HTTP/1.0). */
  private static String authority(HttpServerRequest request) {
    String host = request.getHeader(HttpHeaders.HOST);
    return host != null ? host : URI.create(request.absoluteURI()).getRawAuthority();
  }

  /** The URL this request reached the operator at: {@code cb.public-url}, or its Host. */
  public static Optional<String> baseUrl(OperatorConfig config, UriInfo uri) {
    if (config.publicUrl().isPresent()) {
      return config.publicUrl();
    }
    var base = uri.getBaseUri();
    return baseUrl(base.getScheme(), base.getRawAuthority());
  }

  /** {@code scheme://authority}, when the authority is a plain host name or address and port. */
  static Optional<String> baseUrl(String scheme, String authority) {
    if (authority == null || !HOST_PORT.matcher(authority).matches()) {
      return Optional.empty();
    }
    return Optional.of(scheme + "://" + authority);
  }

  private static String read(java.nio.file.Path path) {
    try {
      return Files.readString(path);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read cb.ipxe.unknown-machine-script " + path, e);
    }
  }

  private static Buffer text(String body) {
    return Buffer.buffer(body.getBytes(StandardCharsets.UTF_8));
  }

  private static void end(RoutingContext ctx, int status, Buffer body) {
    var response =
        ctx.response().setStatusCode(status).putHeader(HttpHeaders.CONTENT_TYPE, IPXE_TYPE);
    if (ctx.request().method() == HttpMethod.HEAD) {
      // Vert.x sends no body to a HEAD, and no length unless told (RFC 9110 §9.3.2: the GET's).
      response.putHeader(HttpHeaders.CONTENT_LENGTH, String.valueOf(body.length()));
    }
    response.end(body);
  }

  /**
   * A script as bytes, with what it was rendered from: the cached MachineBoot and BootImage
   * instances (compared by identity), and the scheme and Host it names. {@code body} is all of it
   * up to the nonce, {@code tail} what follows the nonce; the script of an invalid spec, which
   * names neither a nonce nor the Host, is all {@code body}, with the others null.
   */
  private record Rendered(
      MachineBoot machine,
      BootImage image,
      String scheme,
      String authority,
      Buffer body,
      Buffer tail) {
    Rendered {
      Objects.requireNonNull(machine, "machine");
      Objects.requireNonNull(body, "body");
    }
  }
}
