package viewsvc

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	viewsvcv1 "github.com/goka-py/goka-py/clients/go/gen/viewsvcv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// scanNode serves rows[from:] after the request's page token (or from the start), and breaks
// the stream with UNAVAILABLE after breakAfter rows (0: never).
type scanNode struct {
	viewsvcv1.UnimplementedTableServiceServer
	rows       []*viewsvcv1.Entry
	breakAfter int
	requests   []*viewsvcv1.ScanRequest
}

func (n *scanNode) Scan(r *viewsvcv1.ScanRequest, stream viewsvcv1.TableService_ScanServer) error {
	n.requests = append(n.requests, r)
	from := 0
	if r.GetPageToken() != "" {
		for i, row := range n.rows {
			if PageToken(r.GetTable(), r.GetStart(), r.GetEnd(), r.GetPrefix(), r.GetPartitions(),
				row.GetKey()) == r.GetPageToken() {
				from = i + 1
			}
		}
		if from == 0 {
			return status.Error(codes.InvalidArgument, "page_token is not one of this scan")
		}
	}
	for i, row := range n.rows[from:] {
		if n.breakAfter > 0 && i == n.breakAfter {
			return status.Error(codes.Unavailable, "the node stops")
		}
		if err := stream.Send(&viewsvcv1.ScanResponse{Entries: []*viewsvcv1.Entry{row}}); err != nil {
			return err
		}
	}
	return nil
}

func serve(t *testing.T, node viewsvcv1.TableServiceServer) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	viewsvcv1.RegisterTableServiceServer(server, node)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return listener.Addr().String()
}

func TestAScanThatBreaksIsResumedElsewhereWithoutRepeatsOrGaps(t *testing.T) {
	var rows []*viewsvcv1.Entry
	for i := 0; i < 10; i++ {
		rows = append(rows, &viewsvcv1.Entry{Key: []byte(fmt.Sprintf("user-%02d", i)),
			Value: []byte{byte(i)}, Partition: int32(i % 3)})
	}
	breaking, healthy := &scanNode{rows: rows, breakAfter: 4}, &scanNode{rows: rows}
	client, err := New(Config{Targets: []string{serve(t, breaking), serve(t, healthy)},
		Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	it, err := client.Scan(context.Background(), "t", ScanOptions{Prefix: []byte("user-"),
		Partitions: []int32{2, 0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for e, ok := it.Next(); ok; e, ok = it.Next() {
		keys = append(keys, string(e.Key))
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	if len(keys) != len(rows) {
		t.Fatalf("%d rows: %v; want %d", len(keys), keys, len(rows))
	}
	for i, key := range keys {
		if key != string(rows[i].GetKey()) {
			t.Errorf("row %d: %s; want %s", i, key, rows[i].GetKey())
		}
	}
	if it.Resumed != 1 || len(healthy.requests) != 1 {
		t.Errorf("resumed %d times, %d requests to the other node; want 1 and 1", it.Resumed,
			len(healthy.requests))
	}
	want := PageToken("t", nil, nil, []byte("user-"), []int32{0, 1, 2}, rows[3].GetKey())
	if got := healthy.requests[0].GetPageToken(); got != want {
		t.Errorf("resumed with page token %q; want the one after %s", got, rows[3].GetKey())
	}
}

func TestAScanRefusedForGoodEndsWithTheServersError(t *testing.T) {
	node := &scanNode{}
	client, err := New(Config{Targets: []string{serve(t, node)}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	it, err := client.Scan(context.Background(), "t", ScanOptions{PageToken: "forged"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := it.Next(); ok {
		t.Fatal("a row from a refused scan")
	}
	if e, ok := it.Err().(*ReadError); !ok || e.Code != codes.InvalidArgument {
		t.Errorf("Err() = %v; want INVALID_ARGUMENT", it.Err())
	}
}
