package io.chrootbooter.operator.machine;

import io.chrootbooter.api.v1alpha1.MachineBoot;
import io.chrootbooter.operator.OperatorConfig;
import io.chrootbooter.operator.token.MachineTokens;
import io.smallrye.common.annotation.NonBlocking;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.UriInfo;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * {@code GET /boot/{mac}.ipxe}: the script a machine's iPXE chains to. Read from the {@link
 * MachineDirectory} cache: no API call per request.
 */
@Path("/boot")
public class IpxeResource {
  static final String IPXE = "text/plain; charset=utf-8";
  private static final Pattern HOST_PORT =
      Pattern.compile("^([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?$");

  private final MachineDirectory directory;
  private final MachineTokens tokens;
  private final OperatorConfig config;
  private final List<String> consoleArgs;
  private final Optional<String> unknownScript;
  private final String caPin;

  IpxeResource(MachineDirectory directory, MachineTokens tokens, OperatorConfig config) {
    this.directory = directory;
    this.tokens = tokens;
    this.config = config;
    this.consoleArgs =
        Arrays.stream(config.ipxe().console().trim().split("\\s+"))
            .filter(s -> !s.isEmpty())
            .toList();
    // Read once at start: the event loop must not touch the disk.
    this.unknownScript = config.ipxe().unknownMachineScript().map(IpxeResource::read);
    this.caPin = config.agent().caFile().map(IpxeResource::pin).orElse(null);
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
  @GET
  @Path("/{file}")
  @NonBlocking
  public Response script(@PathParam("file") String file, @Context UriInfo uri) {
    if (!file.endsWith(".ipxe")) {
      return text(
          Response.Status.NOT_FOUND, "not found: /boot/" + file + "; expected {mac}.ipxe\n");
    }
    String given = file.substring(0, file.length() - ".ipxe".length());
    Optional<String> mac = MacAddress.normalize(given);
    if (mac.isEmpty()) {
      return text(
          Response.Status.BAD_REQUEST,
          "not a MAC address; use 52:54:00:12:34:56, 52-54-00-12-34-56 or 525400123456\n");
    }
    if (!directory.synced() || !tokens.ready()) {
      return text(Response.Status.SERVICE_UNAVAILABLE, "the operator is starting\n");
    }
    Optional<MachineBoot> machine = directory.byMac(mac.get());
    if (machine.isEmpty()) {
      return unknownScript
          .map(script -> text(Response.Status.OK, script))
          .orElseGet(() -> text(Response.Status.NOT_FOUND, IpxeScript.unknown(mac.get())));
    }
    MachineBoot mb = machine.get();
    String ns = mb.getMetadata().getNamespace();
    String name = mb.getMetadata().getName();
    if (!MachineBootValidator.violations(mb.getSpec()).isEmpty()) {
      return text(Response.Status.OK, IpxeScript.invalid(ns, name));
    }
    Optional<String> base = baseUrl(config, uri);
    if (base.isEmpty()) {
      return text(Response.Status.BAD_REQUEST, "the Host header is not a host name or address\n");
    }
    return text(
        Response.Status.OK,
        IpxeScript.boot(
            new IpxeScript.Boot(
                ns,
                name,
                base.get(),
                mac.get(),
                tokens.issue(mac.get()),
                imageArgs(mb, base.get()),
                consoleArgs,
                mb.getSpec().kernelArgsOrEmpty(),
                config.agent().url().orElse(null),
                caPin)));
  }

  private List<String> imageArgs(MachineBoot mb, String base) {
    String ref = mb.getSpec().imageRef();
    return ref == null
        ? List.of()
        : directory
            .image(mb.getMetadata().getNamespace(), ref)
            .map(image -> IpxeScript.imageArgs(image, base))
            .orElse(List.of());
  }

  /** The URL this request reached the operator at: {@code cb.public-url}, or its Host. */
  public static Optional<String> baseUrl(OperatorConfig config, UriInfo uri) {
    if (config.publicUrl().isPresent()) {
      return config.publicUrl();
    }
    var base = uri.getBaseUri();
    String authority = base.getRawAuthority();
    if (authority == null || !HOST_PORT.matcher(authority).matches()) {
      return Optional.empty();
    }
    return Optional.of(base.getScheme() + "://" + authority);
  }

  private static String read(java.nio.file.Path path) {
    try {
      return Files.readString(path);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read cb.ipxe.unknown-machine-script " + path, e);
    }
  }

  private static Response text(Response.Status status, String body) {
    return Response.status(status).type(IPXE).entity(body).build();
  }
}
