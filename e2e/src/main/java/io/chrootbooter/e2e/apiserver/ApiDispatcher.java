package io.chrootbooter.e2e.apiserver;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.fabric8.kubernetes.api.model.StatusBuilder;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.dsl.HttpMethod;
import io.fabric8.mockwebserver.http.Dispatcher;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.net.HttpURLConnection;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * The request/response half of the embedded API: answers what the fabric8 CRUD dispatcher does not
 * know ({@code /version}, {@code /openapi/v2}, discovery), rewrites what it would reject (strategic
 * merge and apply PATCHes, URL-encoded selectors), and post-processes what kubectl needs in another
 * shape (field-selected lists, {@code Table}s, {@code Status} bodies on errors). Everything else
 * goes to the CRUD dispatcher unchanged, so fabric8 clients see the mock server they know.
 */
public final class ApiDispatcher extends Dispatcher {

  /** What {@code kubectl version} prints for the server. */
  static final String GIT_VERSION = "v1.20.0-chrootbooter-embedded";

  private static final String AUTHORIZATION = "/apis/authorization.k8s.io/v1/";
  private static final String TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews";

  /** The user the lab's kubeconfig token stands for, and its groups. */
  public static final String LAB_USER = "chrootbooter-lab";

  static final List<String> LAB_GROUPS = List.of("system:masters", "system:authenticated");

  private final KubernetesCrudDispatcher crud;
  private final ResourceCatalog catalog;
  private final Discovery discovery;
  private final TableConverter tables;
  private final PatchNormalizer patches;
  private final ObjectMapper mapper = Serialization.jsonMapper();
  private final String labToken;

  /**
   * @param crud the fabric8 CRUD dispatcher that stores the objects
   * @param catalog the kinds served
   * @param serverAddress host:port for discovery's {@code serverAddressByClientCIDRs}
   * @param clock the time ages are computed against
   */
  public ApiDispatcher(
      KubernetesCrudDispatcher crud,
      ResourceCatalog catalog,
      java.util.function.Supplier<String> serverAddress,
      java.time.Clock clock) {
    this(crud, catalog, serverAddress, clock, null);
  }

  /**
   * @param labToken the bearer token of the lab's kubeconfig: a TokenReview of it names {@link
   *     #LAB_USER}, whom every SubjectAccessReview allows; null: no token is known
   */
  public ApiDispatcher(
      KubernetesCrudDispatcher crud,
      ResourceCatalog catalog,
      java.util.function.Supplier<String> serverAddress,
      java.time.Clock clock,
      String labToken) {
    this.labToken = labToken;
    this.crud = crud;
    this.catalog = catalog;
    this.discovery = new Discovery(catalog, serverAddress);
    this.tables = new TableConverter(mapper, clock);
    this.patches = new PatchNormalizer(mapper);
  }

  @Override
  public MockResponse dispatch(RecordedRequest request) {
    String uri = request.getPath();
    String path = uri.contains("?") ? uri.substring(0, uri.indexOf('?')) : uri;
    if (request.method() == HttpMethod.GET) {
      Optional<MockResponse> fixed = fixedDocument(path);
      if (fixed.isPresent()) {
        return fixed.get();
      }
    }
    if (request.method() == HttpMethod.POST && path.startsWith(AUTHORIZATION)) {
      return review(path.substring(AUTHORIZATION.length()), request.getBody().readUtf8());
    }
    if (request.method() == HttpMethod.POST && path.equals(TOKEN_REVIEWS)) {
      return tokenReview(request.getBody().readUtf8());
    }
    Optional<ResourcePath> resource = ResourcePath.parse(uri);
    if (resource.isEmpty()) {
      return status(HttpURLConnection.HTTP_NOT_FOUND, "NotFound", "no such path: " + path);
    }
    ResourcePath rp = resource.get();
    RecordedRequest normalized = withDecodedQuery(request, path, rp);
    if (request.method() == HttpMethod.PATCH) {
      normalized = patches.normalize(normalized, rp, this::exists);
    }
    MockResponse response = crud.dispatch(normalized);
    if (response == null) {
      return status(405, "MethodNotAllowed", request.getMethod() + " is not supported");
    }
    if (response.getWebSocketListener() != null) {
      return response;
    }
    if (response.code() >= 400) {
      return withStatusBody(response, rp);
    }
    if (request.method() == HttpMethod.GET) {
      return shapeGet(request, rp, response);
    }
    return response;
  }

  /**
   * Answers the self-reviews of {@code authorization.k8s.io} as a server without authorization
   * would: everything is allowed. The Operator SDK asks a SelfSubjectRulesReview before leader
   * election (may it get, create and update Leases?) and {@code kubectl auth can-i} a
   * SelfSubjectAccessReview; stored as plain objects they came back without a status.
   */
  private MockResponse review(String kind, String body) {
    JsonNode review;
    try {
      review = mapper.readTree(body);
    } catch (JsonProcessingException e) {
      return status(400, "BadRequest", "the review is not JSON: " + e.getOriginalMessage());
    }
    if (!(review instanceof ObjectNode object)) {
      return status(400, "BadRequest", "the review is not a JSON object");
    }
    ObjectNode status = object.putObject("status");
    switch (kind) {
      case "selfsubjectrulesreviews" -> {
        ObjectNode rule = status.putArray("resourceRules").addObject();
        rule.putArray("verbs").add("*");
        rule.putArray("apiGroups").add("*");
        rule.putArray("resources").add("*");
        ObjectNode other = status.putArray("nonResourceRules").addObject();
        other.putArray("verbs").add("*");
        other.putArray("nonResourceURLs").add("*");
        status.put("incomplete", false);
      }
      case "selfsubjectaccessreviews" -> status.put("allowed", true);
      case "subjectaccessreviews" -> {
        // The lab's user may do everything; any other is unknown here and may do nothing.
        boolean lab = LAB_USER.equals(object.path("spec").path("user").asText(null));
        status.put("allowed", lab);
        if (!lab) {
          status.put("reason", "the embedded API knows only the user " + LAB_USER);
        }
      }
      default -> {
        return status(404, "NotFound", "no such review: " + kind);
      }
    }
    return json(201, object.toString());
  }

  /**
   * Answers a TokenReview as an API server whose only credential is the lab kubeconfig's token:
   * that token is {@link #LAB_USER} in {@link #LAB_GROUPS}, any other is not authenticated.
   */
  private MockResponse tokenReview(String body) {
    JsonNode review;
    try {
      review = mapper.readTree(body);
    } catch (JsonProcessingException e) {
      return status(400, "BadRequest", "the review is not JSON: " + e.getOriginalMessage());
    }
    if (!(review instanceof ObjectNode object)) {
      return status(400, "BadRequest", "the review is not a JSON object");
    }
    String token = object.path("spec").path("token").asText("");
    ObjectNode status = object.putObject("status");
    boolean known =
        labToken != null
            && java.security.MessageDigest.isEqual(
                labToken.getBytes(java.nio.charset.StandardCharsets.UTF_8),
                token.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    status.put("authenticated", known);
    if (known) {
      ObjectNode user = status.putObject("user");
      user.put("username", LAB_USER);
      user.put("uid", LAB_USER);
      ArrayNode groups = user.putArray("groups");
      LAB_GROUPS.forEach(groups::add);
    } else {
      status.put("error", "not the token of the lab's kubeconfig");
    }
    return json(201, object.toString());
  }

  /** The catalog, for the HTTP layer's watch streams. */
  ResourceCatalog catalog() {
    return catalog;
  }

  /** The table converter, for the HTTP layer's watch streams. */
  TableConverter tables() {
    return tables;
  }

  private Optional<MockResponse> fixedDocument(String path) {
    if (path.equals("/version") || path.equals("/version/")) {
      ObjectNode v = mapper.createObjectNode();
      v.put("major", "1").put("minor", "20").put("gitVersion", GIT_VERSION);
      v.put("gitCommit", "").put("gitTreeState", "clean").put("buildDate", "");
      v.put("goVersion", "").put("compiler", "java").put("platform", "linux/amd64");
      return Optional.of(json(200, v.toString()));
    }
    if (path.equals("/openapi/v2") || path.equals("/swagger-2.0.0.pb-v1")) {
      // An empty protobuf openapi_v2.Document: kubectl's client-side validation then knows no
      // schema and accepts every object, as for a CRD without a schema. The CRD schemas are not
      // enforced here (the mock server never did); the operator validates again anyway.
      return Optional.of(
          new MockResponse()
              .setResponseCode(200)
              .setHeader("Content-Type", "application/octet-stream")
              .setBody(new byte[0]));
    }
    return discovery.document(path).map(body -> json(200, body));
  }

  private boolean exists(String objectPath) {
    return crud.handleGet(objectPath).code() == HttpURLConnection.HTTP_OK;
  }

  /**
   * The CRUD dispatcher matches selectors on the raw query and so misses URL-encoded ones ({@code
   * fieldSelector=metadata.name%3Dm1}, as client-go sends them): reads get the decoded query.
   * Writes get none: it recognises {@code /status} only at the very end of the URI, and the
   * parameters kubectl adds to writes ({@code fieldManager}, {@code fieldValidation}, {@code
   * dryRun}) mean nothing to it. Limitation: {@code --dry-run=server} therefore writes.
   */
  private static RecordedRequest withDecodedQuery(
      RecordedRequest request, String path, ResourcePath rp) {
    if (rp.query().isEmpty()) {
      return request;
    }
    // A list's field selector is applied in shapeGet: the CRUD dispatcher mis-reads some
    // (involvedObject.*) and would drop matching objects. Watches keep it: the dispatcher takes
    // the watched name from metadata.name there.
    String query =
        rp.query().entrySet().stream()
            .filter(e -> rp.isWatch() || !e.getKey().equals("fieldSelector"))
            .map(e -> e.getKey() + "=" + e.getValue())
            .collect(Collectors.joining("&"));
    String uri = request.method() == HttpMethod.GET ? path + "?" + query : path;
    return new RecordedRequest(
        request.getHttpVersion(), request.method(), uri, request.getHeaders(), request.getBody());
  }

  private MockResponse shapeGet(RecordedRequest request, ResourcePath rp, MockResponse response) {
    JsonNode body = read(response.getBody().readUtf8());
    Optional<ResourceType> type =
        rp.subresource() == null
            ? catalog.find(rp.group(), rp.version(), rp.plural())
            : Optional.empty();
    if (rp.isCollection() && body.has("items")) {
      if (type.isPresent()) {
        // The CRUD dispatcher answers every list as a generic "v1 List". client-go decodes a typed
        // list (kubectl describe's EventList) only when the body names that kind; given "List" it
        // builds a v1.List instead and hands the caller an empty EventList, so describe printed
        // "Events: <none>" although the events matched.
        ((ObjectNode) body).put("apiVersion", type.get().groupVersion());
        ((ObjectNode) body).put("kind", type.get().kind() + "List");
      }
      // Filter by field selector, and sort by namespace and name as etcd's key order does.
      FieldSelector fs = FieldSelector.parse(rp.query().getOrDefault("fieldSelector", ""));
      List<JsonNode> kept = new ArrayList<>();
      body.get("items")
          .forEach(
              item -> {
                if (fs.matches(item)) {
                  kept.add(item);
                }
              });
      kept.sort(Comparator.comparing(ApiDispatcher::sortKey));
      ArrayNode items = mapper.createArrayNode();
      kept.forEach(items::add);
      ((ObjectNode) body).set("items", items);
    }
    if (type.isPresent() && TableConverter.wantsTable(request.getHeader("Accept"))) {
      body = tables.table(type.get(), body, rp.query().get("includeObject"));
    }
    return json(response.code(), body.toString());
  }

  private static String sortKey(JsonNode item) {
    JsonNode metadata = item.path("metadata");
    return metadata.path("namespace").asText() + "/" + metadata.path("name").asText();
  }

  private MockResponse withStatusBody(MockResponse response, ResourcePath rp) {
    String existing = response.getBody() == null ? "" : response.getBody().readUtf8();
    if (existing.contains("\"kind\":\"Status\"")) {
      return response.setHeader("Content-Type", "application/json");
    }
    String resource = rp.group().isEmpty() ? rp.plural() : rp.plural() + "." + rp.group();
    int code = response.code();
    String reason = code == 404 ? "NotFound" : code == 409 ? "Conflict" : "BadRequest";
    String message =
        code == 404
            ? resource + " \"" + (rp.name() == null ? "" : rp.name()) + "\" not found"
            : existing.isBlank() ? "request failed with HTTP " + code : existing;
    return status(code, reason, message);
  }

  private MockResponse status(int code, String reason, String message) {
    String body =
        Serialization.asJson(
            new StatusBuilder()
                .withStatus("Failure")
                .withCode(code)
                .withReason(reason)
                .withMessage(message)
                .build());
    return json(code, body);
  }

  private JsonNode read(String body) {
    try {
      return mapper.readTree(body);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("the CRUD dispatcher returned invalid JSON: " + body, e);
    }
  }

  private static MockResponse json(int code, String body) {
    return new MockResponse()
        .setResponseCode(code)
        .setHeader("Content-Type", "application/json")
        .setBody(body);
  }
}
