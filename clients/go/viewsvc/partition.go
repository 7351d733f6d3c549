package viewsvc

import "fmt"

// Murmur2 is the partition Kafka's default partitioner (the Java client's, librdkafka's
// murmur2_random) picks for a non-null key: murmur2(key) & 0x7fffffff % partitions.
func Murmur2(key []byte, partitions int) int {
	const seed, m, r = uint32(0x9747b28c), uint32(0x5bd1e995), 24
	length := len(key)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(key[i]) | uint32(key[i+1])<<8 | uint32(key[i+2])<<16 | uint32(key[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := key[length&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int(h&0x7fffffff) % partitions
}

// FNV1a is the partition Goka (Sarama's hash partitioner with FNV-1a) picks:
// abs(int32(fnv1a32(key))) % partitions.
func FNV1a(key []byte, partitions int) int {
	h := uint32(0x811c9dc5)
	for _, b := range key {
		h ^= uint32(b)
		h *= 0x01000193
	}
	signed := int64(int32(h))
	if signed < 0 {
		signed = -signed
	}
	return int(signed % int64(partitions))
}

// PartitionOf is the partition of key by the named partitioner ("murmur2" or "fnv1a").
func PartitionOf(partitioner string, key []byte, partitions int) (int, error) {
	if partitions < 1 {
		return 0, fmt.Errorf("partition count must be >= 1, got %d", partitions)
	}
	switch partitioner {
	case "murmur2":
		return Murmur2(key, partitions), nil
	case "fnv1a":
		return FNV1a(key, partitions), nil
	}
	return 0, fmt.Errorf("unknown partitioner %q (known: murmur2, fnv1a)", partitioner)
}
