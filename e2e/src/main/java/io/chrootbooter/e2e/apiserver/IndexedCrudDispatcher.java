package io.chrootbooter.e2e.apiserver;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinitionList;
import io.fabric8.kubernetes.client.server.mock.KubernetesAttributesExtractor;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.crud.Attribute;
import io.fabric8.mockwebserver.crud.AttributeSet;
import io.fabric8.mockwebserver.http.MockResponse;
import java.net.HttpURLConnection;
import java.util.AbstractMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The fabric8 CRUD dispatcher with an index by kind and name: it finds an object by comparing the
 * request's attributes with those of every stored object, so a read or a write of one object cost
 * time in proportion to all of them (at 20,000 objects a GET by name took 13 ms of CPU, found or
 * not, and a PATCH up to as much, on the API server's one event loop), where a real API server
 * looks the key up. The index maps the {@code plural} and {@code name} attributes to the stored
 * attribute sets that carry them; a request naming both looks only at those (and still matches
 * every attribute, so the answer is the one the full scan would give). Requests that name no object
 * (lists, watches, selectors) scan as before.
 */
final class IndexedCrudDispatcher extends KubernetesCrudDispatcher {

  private record Key(Attribute plural, Attribute name) {}

  private static final String CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

  private final Map<Key, Set<AttributeSet>> index = new ConcurrentHashMap<>();

  /**
   * The stored CRDs, read once per change of them: every GET looks its kind up among them, and
   * listing them is a scan of every object.
   */
  private volatile List<CustomResourceDefinition> crds;

  private final AtomicLong crdChanges = new AtomicLong();

  /**
   * False once the index might not mirror the store (an attribute set it could not recompute):
   * every lookup then scans, as the CRUD dispatcher does.
   */
  private volatile boolean exact = true;

  private static Key keyOf(AttributeSet attributes) {
    Attribute plural = attributes.getAttribute(KubernetesAttributesExtractor.PLURAL);
    Attribute name = attributes.getAttribute(KubernetesAttributesExtractor.NAME);
    return plural == null || name == null ? null : new Key(plural, name);
  }

  @Override
  public void processEvent(
      String path,
      AttributeSet pathAttributes,
      AttributeSet oldAttributes,
      GenericKubernetesResource resource,
      String newState) {
    super.processEvent(path, pathAttributes, oldAttributes, resource, newState);
    if (path.startsWith("/apis/apiextensions.k8s.io/")) {
      crdChanges.incrementAndGet();
      crds = null;
    }
    if (oldAttributes != null) {
      remove(oldAttributes);
    }
    if (newState != null) {
      // The attribute set the CRUD dispatcher stored, computed as it does.
      KubernetesAttributesExtractor extractor =
          (KubernetesAttributesExtractor) getAttributeExtractor();
      AttributeSet stored =
          resource != null ? extractor.extract(resource) : extractor.fromResource(newState);
      if (!stored.containsKey(KubernetesAttributesExtractor.PLURAL)) {
        stored = AttributeSet.merge(pathAttributes, stored);
      }
      if (map.containsKey(stored)) {
        Key key = keyOf(stored);
        if (key != null) {
          index.computeIfAbsent(key, k -> ConcurrentHashMap.newKeySet()).add(stored);
        }
      } else {
        exact = false;
      }
    }
  }

  private void remove(AttributeSet attributes) {
    Key key = keyOf(attributes);
    if (key != null) {
      index.computeIfPresent(key, (k, set) -> set.remove(attributes) && set.isEmpty() ? null : set);
    }
  }

  @Override
  public Map.Entry<AttributeSet, String> findResource(AttributeSet attributes) {
    Key key = keyOf(attributes);
    if (key == null || !exact) {
      return super.findResource(attributes);
    }
    for (AttributeSet candidate : index.getOrDefault(key, Set.of())) {
      String value = map.get(candidate);
      if (value != null && candidate.matches(attributes)) {
        return new AbstractMap.SimpleImmutableEntry<>(candidate, value);
      }
    }
    return null;
  }

  /**
   * A GET of one object (no query, no subresource) is a lookup, found or not (a miss scanned
   * everything too: the first read of every agent Lease is one); anything else as before.
   */
  @Override
  public MockResponse handleGet(String path) {
    if (exact && !path.contains("?") && !path.endsWith("/status")) {
      AttributeSet query = getKey(path);
      if (keyOf(query) != null) {
        Map.Entry<AttributeSet, String> found = findResource(query);
        return found != null
            ? new MockResponse()
                .setResponseCode(HttpURLConnection.HTTP_OK)
                .setBody(found.getValue())
            : new MockResponse().setResponseCode(HttpURLConnection.HTTP_NOT_FOUND);
      }
    }
    return super.handleGet(path);
  }

  /** The CRDs stored now, in storage order. */
  List<CustomResourceDefinition> storedCrds() {
    List<CustomResourceDefinition> known = crds;
    if (known != null) {
      return known;
    }
    long changes = crdChanges.get();
    MockResponse list = super.handleGet(CRD_PATH);
    List<CustomResourceDefinition> read = List.of();
    if (list.code() == HttpURLConnection.HTTP_OK) {
      CustomResourceDefinitionList parsed =
          Serialization.unmarshal(list.getBody().readUtf8(), CustomResourceDefinitionList.class);
      read = parsed.getItems() == null ? List.of() : List.copyOf(parsed.getItems());
    }
    if (crdChanges.get() == changes) {
      crds = read; // unless a CRD changed meanwhile: then the next call reads again
    }
    return read;
  }

  @Override
  public void reset() {
    super.reset();
    index.clear();
    exact = true;
    crdChanges.incrementAndGet();
    crds = null;
  }
}
