package io.chrootbooter.e2e.apiserver;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.dsl.HttpMethod;
import io.fabric8.mockwebserver.http.Buffer;
import io.fabric8.mockwebserver.http.Headers;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The list shapes client-go's typed clients rely on, checked without a kubectl binary. */
class ApiDispatcherTest {

  private static final String EVENTS = "/api/v1/namespaces/default/events";

  private final ApiDispatcher dispatcher =
      new ApiDispatcher(
          new IndexedCrudDispatcher(),
          new ResourceCatalog(List::of),
          () -> "127.0.0.1:0",
          Clock.systemUTC(),
          "the-labs-token");

  @Test
  void listOfEventsIsAnEventListFilteredByInvolvedObject() throws Exception {
    create(event("m1.switched", "m1", "uid-1"));
    create(event("m2.other", "m2", "uid-2"));

    // What kubectl describe sends for m1 (client-go events.GetFieldSelector), URL-encoded.
    JsonNode list =
        get(
            EVENTS
                + "?fieldSelector=involvedObject.name%3Dm1%2CinvolvedObject.namespace%3Ddefault"
                + "%2CinvolvedObject.kind%3DMachineBoot%2CinvolvedObject.uid%3Duid-1&limit=500");

    // client-go decodes into EventList only when the body says so; "List" gave describe nothing.
    assertThat(list.path("kind").asText()).isEqualTo("EventList");
    assertThat(list.path("apiVersion").asText()).isEqualTo("v1");
    assertThat(list.path("items").findValuesAsText("message"))
        .containsExactly("m1 switched to busybox");
  }

  @Test
  void listOfAnotherGroupNamesItsGroupVersion() throws Exception {
    JsonNode list = get("/apis/coordination.k8s.io/v1/namespaces/default/leases");

    assertThat(list.path("kind").asText()).isEqualTo("LeaseList");
    assertThat(list.path("apiVersion").asText()).isEqualTo("coordination.k8s.io/v1");
  }

  @Test
  void leasesHaveTheOptimisticLockingLeaderElectionNeeds() throws Exception {
    String leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    String lease =
        "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":"
            + "{\"name\":\"op\",\"namespace\":\"default\"},\"spec\":{\"holderIdentity\":\"a\","
            + "\"leaseDurationSeconds\":4}}";
    assertThat(dispatch(HttpMethod.POST, leases, lease).code()).isEqualTo(201);
    // A second candidate creating the Lease at the same moment loses.
    assertThat(dispatch(HttpMethod.POST, leases, lease.replace("\"a\"", "\"b\"")).code())
        .isEqualTo(409);

    JsonNode read = get(leases + "/op");
    String version = read.at("/metadata/resourceVersion").asText();
    String renewal =
        read.toString().replace("\"leaseDurationSeconds\":4", "\"leaseDurationSeconds\":5");
    assertThat(dispatch(HttpMethod.PUT, leases + "/op", renewal).code()).isEqualTo(200);
    // The other candidate's update, from the version both read, conflicts.
    String takeover =
        read.toString().replace("\"holderIdentity\":\"a\"", "\"holderIdentity\":\"b\"");
    MockResponse conflict = dispatch(HttpMethod.PUT, leases + "/op", takeover);
    assertThat(conflict.code()).isEqualTo(409);
    assertThat(get(leases + "/op").at("/spec/holderIdentity").asText()).isEqualTo("a");
    assertThat(get(leases + "/op").at("/metadata/resourceVersion").asText()).isNotEqualTo(version);
  }

  @Test
  void oneObjectIsFoundByNameAmongThousandsAndAcrossNamespacesAndKinds() throws Exception {
    // The index by kind and name: the same name in two namespaces and as another kind.
    for (String ns : List.of("a", "b")) {
      for (int i = 0; i < 2000; i++) {
        String lease =
            "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":"
                + "{\"name\":\"m"
                + i
                + "-agent\",\"namespace\":\""
                + ns
                + "\"},\"spec\":{\"holderIdentity\":\""
                + ns
                + i
                + "\"}}";
        assertThat(
                dispatch(
                        HttpMethod.POST,
                        "/apis/coordination.k8s.io/v1/namespaces/" + ns + "/leases",
                        lease)
                    .code())
            .isEqualTo(201);
      }
    }
    create(event("m7-agent", "m7", "uid-7"));
    String b7 = "/apis/coordination.k8s.io/v1/namespaces/b/leases/m7-agent";
    assertThat(get(b7).at("/spec/holderIdentity").asText()).isEqualTo("b7");
    assertThat(get(EVENTS + "/m7-agent").at("/kind").asText()).isEqualTo("Event");

    assertThat(dispatch(HttpMethod.PATCH, b7, "{\"spec\":{\"holderIdentity\":\"renewed\"}}").code())
        .isLessThan(300);
    assertThat(get(b7).at("/spec/holderIdentity").asText()).isEqualTo("renewed");
    assertThat(
            get("/apis/coordination.k8s.io/v1/namespaces/a/leases/m7-agent")
                .at("/spec/holderIdentity")
                .asText())
        .isEqualTo("a7");

    assertThat(dispatch(HttpMethod.DELETE, b7, "").code()).isEqualTo(200);
    assertThat(dispatch(HttpMethod.GET, b7, "").code()).isEqualTo(404);
    assertThat(dispatch(HttpMethod.PATCH, b7, "{\"spec\":{}}").code()).isEqualTo(404);
    assertThat(get("/apis/coordination.k8s.io/v1/namespaces/b/leases").at("/items").size())
        .isEqualTo(1999);
  }

  @Test
  void selfReviewsAllowEverything() throws Exception {
    MockResponse rules =
        dispatch(
            HttpMethod.POST,
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SelfSubjectRulesReview\","
                + "\"spec\":{\"namespace\":\"default\"}}");
    assertThat(rules.code()).isEqualTo(201);
    JsonNode rule =
        Serialization.jsonMapper()
            .readTree(rules.getBody().readUtf8())
            .at("/status/resourceRules/0");
    assertThat(rule.path("verbs").get(0).asText()).isEqualTo("*");
    assertThat(rule.path("resources").get(0).asText()).isEqualTo("*");

    MockResponse access =
        dispatch(
            HttpMethod.POST,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "{\"kind\":\"SelfSubjectAccessReview\",\"spec\":{}}");
    assertThat(
            Serialization.jsonMapper()
                .readTree(access.getBody().readUtf8())
                .at("/status/allowed")
                .asBoolean())
        .isTrue();
    assertThat(
            dispatch(HttpMethod.POST, "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", "[]")
                .code())
        .isEqualTo(400);
  }

  @Test
  void theLabsTokenIsItsUserWhomEveryAccessReviewAllowsAndNoOtherTokenIsAnyone() throws Exception {
    JsonNode known =
        post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            "{\"kind\":\"TokenReview\",\"spec\":{\"token\":\"the-labs-token\"}}");
    assertThat(known.at("/status/authenticated").asBoolean()).isTrue();
    assertThat(known.at("/status/user/username").asText()).isEqualTo(ApiDispatcher.LAB_USER);
    JsonNode other =
        post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            "{\"kind\":\"TokenReview\",\"spec\":{\"token\":\"the-labs-tokeN\"}}");
    assertThat(other.at("/status/authenticated").asBoolean()).isFalse();
    assertThat(other.at("/status/user").isMissingNode()).isTrue();

    String review =
        "{\"kind\":\"SubjectAccessReview\",\"spec\":{\"user\":\"%s\",\"resourceAttributes\":"
            + "{\"group\":\"boot.chrootbooter.io\",\"resource\":\"machineboots\","
            + "\"subresource\":\"console\",\"verb\":\"create\",\"namespace\":\"default\"}}}";
    assertThat(
            post(
                    "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                    review.formatted(ApiDispatcher.LAB_USER))
                .at("/status/allowed")
                .asBoolean())
        .isTrue();
    assertThat(
            post("/apis/authorization.k8s.io/v1/subjectaccessreviews", review.formatted("mallory"))
                .at("/status/allowed")
                .asBoolean())
        .isFalse();
    assertThat(
            dispatch(HttpMethod.POST, "/apis/authentication.k8s.io/v1/tokenreviews", "[]").code())
        .isEqualTo(400);
    // The kubeconfig carries the token.
    assertThat(Kubeconfig.render("http://127.0.0.1:6443", "the-labs-token"))
        .contains("user: {token: the-labs-token}");
  }

  private JsonNode post(String uri, String body) throws Exception {
    MockResponse response = dispatch(HttpMethod.POST, uri, body);
    String text = response.getBody().readUtf8();
    assertThat(response.code()).as(text).isEqualTo(201);
    return Serialization.jsonMapper().readTree(text);
  }

  private static String event(String name, String machine, String uid) {
    return "{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{\"name\":\""
        + name
        + "\",\"namespace\":\"default\"},\"involvedObject\":{\"kind\":\"MachineBoot\","
        + "\"name\":\""
        + machine
        + "\",\"namespace\":\"default\",\"uid\":\""
        + uid
        + "\"},\"reason\":\"ImageSwitched\",\"message\":\""
        + machine
        + (machine.equals("m1") ? " switched to busybox" : " only")
        + "\"}";
  }

  private void create(String json) {
    MockResponse response = dispatch(HttpMethod.POST, EVENTS, json);
    assertThat(response.code()).as(response.getBody().readUtf8()).isEqualTo(201);
  }

  private JsonNode get(String uri) throws Exception {
    MockResponse response = dispatch(HttpMethod.GET, uri, "");
    String body = response.getBody().readUtf8();
    assertThat(response.code()).as(body).isEqualTo(200);
    return Serialization.jsonMapper().readTree(body);
  }

  private MockResponse dispatch(HttpMethod method, String uri, String body) {
    return dispatcher.dispatch(
        new RecordedRequest(
            "HTTP/1.1",
            method,
            uri,
            Headers.builder()
                .add(
                    "Content-Type",
                    method == HttpMethod.PATCH
                        ? "application/merge-patch+json"
                        : "application/json")
                .build(),
            new Buffer(body.getBytes(StandardCharsets.UTF_8))));
  }
}
