package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
)

// The shared vectors (testdata/vectors.json) against real Goka: the partition Sarama's hash
// partitioner picks with Goka's default hasher is the vectors' fnv1a, and Goka's codecs
// encode the vectors' int64 and string values to the vectors' bytes.
type vectors struct {
	Partitions []struct {
		KeyHex         string `json:"key_hex"`
		PartitionCount int32  `json:"partition_count"`
		FNV1a          int32  `json:"fnv1a"`
	} `json:"partitions"`
	Codecs map[string][]struct {
		Value      interface{} `json:"value"`
		EncodedHex string      `json:"encoded_hex"`
	} `json:"codecs"`
}

func readVectors(t *testing.T) vectors {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGokasPartitionsAreTheFNV1aVectors(t *testing.T) {
	partitioner := sarama.NewCustomHashPartitioner(goka.DefaultHasher())("vectors")
	cases := readVectors(t).Partitions
	if len(cases) == 0 {
		t.Fatal("no partition vectors")
	}
	for _, c := range cases {
		key, err := hex.DecodeString(c.KeyHex)
		if err != nil {
			t.Fatal(err)
		}
		got, err := partitioner.Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(key)},
			c.PartitionCount)
		if err != nil || got != c.FNV1a {
			t.Errorf("Sarama+Goka put %x in partition %d of %d (%v); the vectors say %d", key, got,
				c.PartitionCount, err, c.FNV1a)
		}
	}
}

func TestGokasCodecsWriteTheVectorsBytes(t *testing.T) {
	codecs := readVectors(t).Codecs
	for _, c := range codecs["int64"] {
		number, err := strconv.ParseInt(c.Value.(string), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		assertEncodes(t, new(codec.Int64), number, c.EncodedHex)
	}
	for _, c := range codecs["string"] {
		assertEncodes(t, new(codec.String), c.Value.(string), c.EncodedHex)
	}
	if len(codecs["int64"]) == 0 || len(codecs["string"]) == 0 {
		t.Fatal("no codec vectors")
	}
}

func assertEncodes(t *testing.T, c goka.Codec, value interface{}, encodedHex string) {
	t.Helper()
	encoded, err := c.Encode(value)
	if err != nil || hex.EncodeToString(encoded) != encodedHex {
		t.Errorf("%T encodes %v as %x (%v); the vectors say %s", c, value, encoded, err, encodedHex)
	}
	decoded, err := c.Decode(encoded)
	if err != nil || decoded != value {
		t.Errorf("%T decodes %x as %v (%v); want %v", c, encoded, decoded, err, value)
	}
}
