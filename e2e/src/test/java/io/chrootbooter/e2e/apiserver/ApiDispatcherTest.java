package io.chrootbooter.e2e.apiserver;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
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
          new KubernetesCrudDispatcher(),
          new ResourceCatalog(List::of),
          () -> "127.0.0.1:0",
          Clock.systemUTC());

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
            Headers.builder().add("Content-Type", "application/json").build(),
            new Buffer(body.getBytes(StandardCharsets.UTF_8))));
  }
}
