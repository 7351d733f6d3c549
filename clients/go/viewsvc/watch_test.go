package viewsvc

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	viewsvcv1 "github.com/goka-py/goka-py/clients/go/gen/viewsvcv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// watchNode holds partition 0's changes at offsets 0..len-1 and serves a watch from the
// request's from_offsets; it ends the stream with UNAVAILABLE after breakAfter changes (0:
// never), and serves offsets from historyFrom only (older ones: OUT_OF_RANGE).
type watchNode struct {
	viewsvcv1.UnimplementedTableServiceServer
	changes     []*viewsvcv1.Change
	breakAfter  int
	historyFrom int64
	mu          sync.Mutex
	requests    []*viewsvcv1.WatchRequest
}

func (n *watchNode) Watch(r *viewsvcv1.WatchRequest, stream viewsvcv1.TableService_WatchServer) error {
	n.mu.Lock()
	n.requests = append(n.requests, r)
	n.mu.Unlock()
	from, ok := r.GetFromOffsets()[0]
	if !ok {
		from = int64(len(n.changes)) // from now: only later changes
	}
	if from < n.historyFrom {
		return status.Errorf(codes.OutOfRange, "partition 0 has changes from offset %d here", n.historyFrom)
	}
	if err := stream.Send(&viewsvcv1.WatchResponse{Positions: map[int32]int64{0: from}}); err != nil {
		return err
	}
	sent := 0
	for _, c := range n.changes[from:] {
		if n.breakAfter > 0 && sent == n.breakAfter {
			return status.Error(codes.Unavailable, "the node stops")
		}
		if err := stream.Send(&viewsvcv1.WatchResponse{Changes: []*viewsvcv1.Change{c}}); err != nil {
			return err
		}
		sent++
	}
	<-stream.Context().Done()
	return nil
}

func changesOf(n int) []*viewsvcv1.Change {
	var changes []*viewsvcv1.Change
	for i := 0; i < n; i++ {
		changes = append(changes, &viewsvcv1.Change{Key: []byte(fmt.Sprintf("user-%d", i%3)),
			Value: []byte(fmt.Sprint(i)), Deleted: i == 4, Offset: int64(i)})
	}
	return changes
}

func TestAWatchThatBreaksResumesElsewhereMissingAndRepeatingNothing(t *testing.T) {
	changes := changesOf(10)
	breaking := &watchNode{changes: changes, breakAfter: 4}
	stale := &watchNode{changes: changes, historyFrom: 8} // no history back to offset 4
	healthy := &watchNode{changes: changes}
	client, err := New(Config{Targets: []string{serve(t, breaking), serve(t, stale), serve(t, healthy)},
		Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := client.Watch(ctx, "t", WatchOptions{FromOffsets: map[int32]int64{0: 0}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 10; i++ {
		c, ok := w.Next()
		if !ok {
			t.Fatalf("the watch ended after %d changes: %v", i, w.Err())
		}
		if c.Offset != int64(i) || string(c.Key) != fmt.Sprintf("user-%d", i%3) || c.Deleted != (i == 4) {
			t.Fatalf("change %d is %+v", i, c)
		}
		if c.Deleted != (c.Value == nil) {
			t.Fatalf("change %d: a deleted key has no value: %+v", i, c)
		}
	}
	if w.Positions[0] != 10 || w.Resumed < 1 {
		t.Fatalf("positions %v, resumed %d", w.Positions, w.Resumed)
	}
	resumedAt := healthy.requests[len(healthy.requests)-1].GetFromOffsets()[0]
	if resumedAt != 4 {
		t.Fatalf("resumed from offset %d, not 4 (after the last change received)", resumedAt)
	}
}

func TestAWatchNoNodeCanServeEndsWithTheError(t *testing.T) {
	stale := &watchNode{changes: changesOf(5), historyFrom: 3}
	client, err := New(Config{Targets: []string{serve(t, stale)}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	w, err := client.Watch(context.Background(), "t", WatchOptions{FromOffsets: map[int32]int64{0: 1},
		ReconnectTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Next(); ok {
		t.Fatal("a change came from a node without the history")
	}
	if e, ok := w.Err().(*ReadError); !ok || e.Code != codes.OutOfRange {
		t.Fatalf("error %v, want OUT_OF_RANGE", w.Err())
	}
}
