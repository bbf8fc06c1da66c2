package example.cache;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/** A least-recently-used cache with a fixed number of entries. */
public final class LruCache<K, V> {
    private final int capacity;
    private final LinkedHashMap<K, V> entries;
    private long hits;
    private long misses;

    public LruCache(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("capacity must be at least 1, got " + capacity);
        }
        this.capacity = capacity;
        this.entries = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<K, V> eldest) {
                return size() > LruCache.this.capacity;
            }
        };
    }

    public Optional<V> get(K key) {
        V value = entries.get(key);
        if (value == null) {
            misses++;
            return Optional.empty();
        }
        hits++;
        return Optional.of(value);
    }

    public void put(K key, V value) {
        entries.put(key, value);
    }

    public double hitRate() {
        long total = hits + misses;
        return total == 0 ? 0.0 : (double) hits / total;
    }
}
