package io.chrootbooter.operator.statuspage;

import io.chrootbooter.operator.status.RecordedEvent;
import io.fabric8.kubernetes.api.model.HasMetadata;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * The last few Events the operator recorded, per object, in memory: what the status page shows
 * without listing Events from the API server. Bounded twice: {@link #PER_OBJECT} events per object,
 * {@link #MAX_OBJECTS} objects (the least recently touched goes first). A replica shows the events
 * it recorded itself, so a follower of a leader election shows none until it leads.
 */
@ApplicationScoped
public class RecentEvents {
  static final int PER_OBJECT = 5;
  static final int MAX_OBJECTS = 20_000;

  private final Map<String, Deque<RecordedEvent>> byObject =
      new LinkedHashMap<>(256, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Deque<RecordedEvent>> eldest) {
          return size() > MAX_OBJECTS;
        }
      };
  private final List<Consumer<RecordedEvent>> listeners = new CopyOnWriteArrayList<>();

  void recorded(@Observes RecordedEvent event) {
    synchronized (byObject) {
      Deque<RecordedEvent> ring =
          byObject.computeIfAbsent(
              key(event.kind(), event.namespace(), event.name()), k -> new ArrayDeque<>());
      ring.addFirst(event);
      while (ring.size() > PER_OBJECT) {
        ring.removeLast();
      }
    }
    listeners.forEach(l -> l.accept(event));
  }

  /** The object's recent events, newest first. */
  public List<RecordedEvent> of(HasMetadata resource) {
    String key =
        key(
            resource.getKind(),
            resource.getMetadata().getNamespace(),
            resource.getMetadata().getName());
    synchronized (byObject) {
      Deque<RecordedEvent> ring = byObject.get(key);
      return ring == null ? List.of() : List.copyOf(new ArrayList<>(ring));
    }
  }

  /** Drops the events of an object that is gone. */
  public void forget(String kind, String namespace, String name) {
    synchronized (byObject) {
      byObject.remove(key(kind, namespace, name));
    }
  }

  /** Calls {@code listener} after each event is kept. */
  public void onRecorded(Consumer<RecordedEvent> listener) {
    listeners.add(listener);
  }

  private static String key(String kind, String namespace, String name) {
    return kind + "/" + namespace + "/" + name;
  }
}
