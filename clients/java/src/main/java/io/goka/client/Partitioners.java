package io.goka.client;

/**
 * The partition of a key as goka-py tables announce it: {@code murmur2} (Kafka's default, as
 * the Java producer's) or {@code fnv1a} (Goka's: Sarama's hash partitioner), so that a Java
 * producer can write keys where a table's readers look for them.
 */
public final class Partitioners {
  private Partitioners() {}

  /** The partition of {@code key} by the partitioner called {@code name}. */
  public static int partition(String name, byte[] key, int partitions) {
    if (partitions < 1) {
      throw new IllegalArgumentException("partitions must be >= 1, got " + partitions);
    }
    return switch (name) {
      case "murmur2" -> murmur2(key, partitions);
      case "fnv1a" -> fnv1a(key, partitions);
      default -> throw new IllegalArgumentException(
          "unknown partitioner " + name + " (known: murmur2, fnv1a)");
    };
  }

  /** Kafka's: {@code (murmur2(key) & 0x7fffffff) % partitions}. */
  public static int murmur2(byte[] key, int partitions) {
    final int m = 0x5bd1e995;
    final int length = key.length;
    int h = 0x9747b28c ^ length;
    for (int i = 0; i + 4 <= length; i += 4) {
      int k = (key[i] & 0xff) | (key[i + 1] & 0xff) << 8 | (key[i + 2] & 0xff) << 16
          | (key[i + 3] & 0xff) << 24;
      k *= m;
      k ^= k >>> 24;
      k *= m;
      h *= m;
      h ^= k;
    }
    int tail = length & ~3;
    switch (length % 4) {
      case 3:
        h ^= (key[tail + 2] & 0xff) << 16;
        // fall through
      case 2:
        h ^= (key[tail + 1] & 0xff) << 8;
        // fall through
      case 1:
        h ^= key[tail] & 0xff;
        h *= m;
        break;
      default:
        break;
    }
    h ^= h >>> 13;
    h *= m;
    h ^= h >>> 15;
    return (h & 0x7fffffff) % partitions;
  }

  /** Goka's: {@code abs((int) fnv1a32(key)) % partitions}. */
  public static int fnv1a(byte[] key, int partitions) {
    int h = 0x811c9dc5;
    for (byte b : key) {
      h ^= b & 0xff;
      h *= 0x01000193;
    }
    return (int) (Math.abs((long) h) % partitions);
  }
}
