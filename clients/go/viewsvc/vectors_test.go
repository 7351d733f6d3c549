package viewsvc

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// vectors are testdata/vectors.json, shared by the tests of every language.
type vectors struct {
	Partitions []struct {
		KeyHex         string `json:"key_hex"`
		PartitionCount int    `json:"partition_count"`
		Murmur2        int    `json:"murmur2"`
		FNV1a          int    `json:"fnv1a"`
	} `json:"partitions"`
	PageTokens []struct {
		Table      string  `json:"table"`
		StartHex   string  `json:"start_hex"`
		EndHex     string  `json:"end_hex"`
		PrefixHex  string  `json:"prefix_hex"`
		Partitions []int32 `json:"partitions"`
		LastKeyHex string  `json:"last_key_hex"`
		Token      string  `json:"token"`
	} `json:"page_tokens"`
}

func readVectors(t *testing.T) vectors {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPartitionersMatchTheVectors(t *testing.T) {
	cases := readVectors(t).Partitions
	if len(cases) == 0 {
		t.Fatal("no partition vectors")
	}
	for _, c := range cases {
		key := unhex(t, c.KeyHex)
		for name, want := range map[string]int{"murmur2": c.Murmur2, "fnv1a": c.FNV1a} {
			got, err := PartitionOf(name, key, c.PartitionCount)
			if err != nil || got != want {
				t.Errorf("%s(%x, %d) = %d, %v; want %d", name, key, c.PartitionCount, got, err, want)
			}
		}
	}
}

func TestPageTokensMatchTheVectors(t *testing.T) {
	cases := readVectors(t).PageTokens
	if len(cases) == 0 {
		t.Fatal("no page token vectors")
	}
	for _, c := range cases {
		got := PageToken(c.Table, unhex(t, c.StartHex), unhex(t, c.EndHex), unhex(t, c.PrefixHex),
			c.Partitions, unhex(t, c.LastKeyHex))
		if got != c.Token {
			t.Errorf("PageToken(%+v) = %q; want %q", c, got, c.Token)
		}
	}
}

func TestAnUnknownPartitionerIsAnError(t *testing.T) {
	if _, err := PartitionOf("crc32", []byte("k"), 4); err == nil {
		t.Error("crc32: no error")
	}
	if _, err := PartitionOf("murmur2", []byte("k"), 0); err == nil {
		t.Error("0 partitions: no error")
	}
}
