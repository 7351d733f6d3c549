package viewsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestLive reads a live deployment: GOKA_LIVE_TARGETS (host:port,...), GOKA_LIVE_TABLE and
// GOKA_LIVE_EXPECTED (a JSON file of the whole table: key -> value) are set by
// tests/integration/test_clients_live.py, which starts processors, a view pod and a router.
func TestLive(t *testing.T) {
	targets, table := os.Getenv("GOKA_LIVE_TARGETS"), os.Getenv("GOKA_LIVE_TABLE")
	if targets == "" || table == "" {
		t.Skip("no live deployment: tests/integration/test_clients_live.py runs this test")
	}
	raw, err := os.ReadFile(os.Getenv("GOKA_LIVE_EXPECTED"))
	if err != nil {
		t.Fatal(err)
	}
	var expected map[string]string
	if err := json.Unmarshal(raw, &expected); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(expected))
	for key := range expected {
		keys = append(keys, key)
	}
	sort.Strings(keys)

	client, err := New(Config{Targets: strings.Split(targets, ","), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := client.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	memberAt := map[string]string{}
	for _, m := range client.Members() {
		memberAt[m.Endpoint] = m.ID
	}

	t.Run("Get goes straight to a holder", func(t *testing.T) {
		for _, consistency := range []Consistency{Active, Any} {
			for _, key := range keys {
				r, err := client.Get(ctx, table, []byte(key), ReadOptions{Consistency: consistency})
				if err != nil {
					t.Fatalf("Get(%q): %v", key, err)
				}
				if !r.Found || string(r.Value) != expected[key] {
					t.Errorf("Get(%q) = %v %q; want %q", key, r.Found, r.Value, expected[key])
				}
				if r.ServedBy == "" || r.ServedBy != memberAt[r.Endpoint] {
					t.Errorf("Get(%q) sent to %s (%s) but served by %s: a hop", key, r.Endpoint,
						memberAt[r.Endpoint], r.ServedBy)
				}
			}
		}
		missing, err := client.Get(ctx, table, []byte("no such key"), ReadOptions{})
		if err != nil || missing.Found {
			t.Errorf("a missing key: %+v, %v", missing, err)
		}
	})

	t.Run("GetMany", func(t *testing.T) {
		raw := make([][]byte, len(keys))
		for i, key := range keys {
			raw[i] = []byte(key)
		}
		results, err := client.GetMany(ctx, table, raw, ReadOptions{Consistency: Active})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range results {
			if !bytes.Equal(r.Key, raw[i]) || !r.Found || string(r.Value) != expected[keys[i]] {
				t.Errorf("GetMany[%d] = %q %v %q; want %q %q", i, r.Key, r.Found, r.Value,
					keys[i], expected[keys[i]])
			}
			if r.ServedBy != memberAt[r.Endpoint] {
				t.Errorf("GetMany(%q) sent to %s but served by %s: a hop", keys[i], r.Endpoint,
					r.ServedBy)
			}
		}
	})

	t.Run("Scan, whole and in pages", func(t *testing.T) {
		whole := scanAll(ctx, t, client, table, ScanOptions{})
		if !equalRows(whole, keys, expected) {
			t.Errorf("Scan = %v; want %v", whole, expected)
		}
		var paged []Entry
		token := ""
		for pages := 0; ; pages++ {
			it, err := client.Scan(ctx, table, ScanOptions{Limit: 7, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for e, ok := it.Next(); ok; e, ok = it.Next() {
				paged = append(paged, e)
			}
			if it.Err() != nil {
				t.Fatal(it.Err())
			}
			if token = it.NextPageToken; token == "" || pages > len(keys) {
				break
			}
		}
		if !equalRows(paged, keys, expected) {
			t.Errorf("Scan in pages of 7 = %v; want %v", paged, expected)
		}
	})

	t.Run("Locate", func(t *testing.T) {
		info := tableInfo(client.Members(), table)
		if info == nil {
			t.Fatal("the table is not announced")
		}
		for _, key := range keys {
			location, err := client.Locate(ctx, table, []byte(key))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := PartitionOf(info.Partitioner, []byte(key), info.PartitionCount)
			if location.Partition != want || len(location.Replicas) == 0 ||
				location.Replicas[0].Kind != "active" {
				t.Errorf("Locate(%q) = %+v; want partition %d, active owner first", key, location, want)
			}
		}
	})
}

func scanAll(ctx context.Context, t *testing.T, c *Client, table string, o ScanOptions) []Entry {
	t.Helper()
	it, err := c.Scan(ctx, table, o)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var rows []Entry
	for e, ok := it.Next(); ok; e, ok = it.Next() {
		rows = append(rows, e)
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	return rows
}

func equalRows(rows []Entry, keys []string, expected map[string]string) bool {
	if len(rows) != len(keys) {
		return false
	}
	for i, row := range rows {
		if string(row.Key) != keys[i] || string(row.Value) != expected[keys[i]] {
			return false
		}
	}
	return true
}
