package viewsvc

import (
	"context"
	"errors"
	"io"
	"time"

	viewsvcv1 "github.com/goka-py/goka-py/clients/go/gen/viewsvcv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// WatchOptions select the changes of a watch: any of Keys, within Prefix and
// Start <= key < End, of Partitions (empty: all).
type WatchOptions struct {
	Keys               [][]byte
	Prefix, Start, End []byte
	Partitions         []int32
	// FromOffsets resumes a watch: per partition, the first offset to send (a previous
	// watch's Positions).
	FromOffsets map[int32]int64
	// Snapshot first sends the current rows of the partitions without a FromOffsets entry.
	Snapshot bool
	Read     ReadOptions
	// ReconnectTimeout bounds how long a broken watch tries the nodes again (default: the
	// client's timeout).
	ReconnectTimeout time.Duration
}

// Change is a change of a key, or (Snapshot) a row of the snapshot.
type Change struct {
	Key []byte
	// Value is nil when the key was deleted.
	Value     []byte
	Deleted   bool
	Partition int32
	// Offset is the change's table-topic offset; -1 for a snapshot row.
	Offset   int64
	Snapshot bool
}

// WatchStream yields the changes of a watch as they come. When the stream breaks (the node
// stopped, its partition moved) it watches again from Positions on the other nodes first,
// the same rule as the Python client's: no change is missed or repeated.
type WatchStream struct {
	c         *Client
	ctx       context.Context
	cancel    context.CancelFunc
	request   *viewsvcv1.WatchRequest
	reconnect time.Duration
	endpoint  string
	stream    viewsvcv1.TableService_WatchClient
	pending   []Change
	failedAt  time.Time
	err       error
	done      bool
	// Positions says, per partition, the offset to resume from.
	Positions map[int32]int64
	// Resumed counts the reconnections; Dropped the changes received again, dropped.
	Resumed, Dropped int
}

// Watch starts a watch; it lasts until ctx ends or Close. Call Next to read it.
func (c *Client) Watch(ctx context.Context, table string, options WatchOptions) (*WatchStream, error) {
	if err := validTable(table); err != nil {
		return nil, err
	}
	positions := map[int32]int64{}
	for p, o := range options.FromOffsets {
		if p < 0 || o < 0 {
			return nil, errors.New("viewsvc: FromOffsets must map partitions >= 0 to offsets >= 0")
		}
		positions[p] = o
	}
	reconnect := options.ReconnectTimeout
	if reconnect <= 0 {
		reconnect = c.config.Timeout
	}
	ctx, cancel := context.WithCancel(ctx)
	request := &viewsvcv1.WatchRequest{Table: table, Keys: options.Keys, Prefix: options.Prefix,
		Start: options.Start, End: options.End, Partitions: uniqueSorted(options.Partitions),
		Snapshot: options.Snapshot, Options: options.Read.pb()}
	return &WatchStream{c: c, ctx: ctx, cancel: cancel, request: request, reconnect: reconnect,
		Positions: positions}, nil
}

// Next is the next change; false once the watch ended (see Err).
func (w *WatchStream) Next() (Change, bool) {
	for !w.done {
		if len(w.pending) > 0 {
			change := w.pending[0]
			w.pending = w.pending[1:]
			return change, true
		}
		if w.stream == nil {
			w.open()
			continue
		}
		response, err := w.stream.Recv()
		if err == io.EOF {
			w.broken(status.Error(codes.Unavailable, "the node ended the watch"))
		} else if err != nil {
			w.broken(err)
		} else {
			w.failedAt = time.Time{}
			w.take(response)
		}
	}
	return Change{}, false
}

// Err is the error that ended the watch, if any (nil after Close or the context's end).
func (w *WatchStream) Err() error { return w.err }

// Close stops the watch.
func (w *WatchStream) Close() {
	w.done = true
	w.cancel()
}

func (w *WatchStream) take(response *viewsvcv1.WatchResponse) {
	for _, row := range response.GetRows() {
		if _, done := w.Positions[row.GetPartition()]; !done {
			w.pending = append(w.pending, Change{Key: row.GetKey(), Value: row.GetValue(),
				Partition: row.GetPartition(), Offset: -1, Snapshot: true})
		}
	}
	for _, c := range response.GetChanges() {
		if position, known := w.Positions[c.GetPartition()]; known && c.GetOffset() < position {
			w.Dropped++
			continue
		}
		w.Positions[c.GetPartition()] = c.GetOffset() + 1
		change := Change{Key: c.GetKey(), Value: c.GetValue(), Deleted: c.GetDeleted(),
			Partition: c.GetPartition(), Offset: c.GetOffset()}
		if change.Deleted {
			change.Value = nil
		}
		w.pending = append(w.pending, change)
	}
	for p, position := range response.GetPositions() {
		if known, ok := w.Positions[p]; !ok || position > known {
			w.Positions[p] = position
		}
	}
}

// open watches from Positions on the nodes, the one that broke last.
func (w *WatchStream) open() {
	order := fallbacks(w.c.config.Targets, w.c.Members())
	if w.endpoint != "" {
		rest := order[:0:0]
		for _, e := range order {
			if e != w.endpoint {
				rest = append(rest, e)
			}
		}
		order = append(rest, w.endpoint)
	}
	request := &viewsvcv1.WatchRequest{Table: w.request.Table, Keys: w.request.Keys,
		Prefix: w.request.Prefix, Start: w.request.Start, End: w.request.End,
		Partitions: w.request.Partitions, Snapshot: w.request.Snapshot,
		Options: w.request.Options, FromOffsets: map[int32]int64{}}
	for p, o := range w.Positions {
		request.FromOffsets[p] = o
	}
	var last error = status.Error(codes.Unavailable, "no node to watch on: pass Targets")
	for _, endpoint := range order {
		stub, err := w.c.stub(endpoint)
		if err != nil {
			last = err
			continue
		}
		stream, err := stub.Watch(w.c.outgoing(w.ctx), request)
		if err == nil {
			var first *viewsvcv1.WatchResponse
			if first, err = stream.Recv(); err == nil {
				w.endpoint, w.stream, w.failedAt = endpoint, stream, time.Time{}
				w.take(first)
				return
			}
		}
		last = err
		if !resumable(err) || w.ctx.Err() != nil {
			break
		}
		w.endpoint = endpoint
	}
	w.broken(last)
}

// broken ends the watch on an error no node can get past, or past the reconnect timeout;
// otherwise the next Next watches again.
func (w *WatchStream) broken(err error) {
	w.stream = nil
	if w.ctx.Err() != nil {
		w.done = true
		return
	}
	now := time.Now()
	if w.failedAt.IsZero() {
		w.failedAt = now
	}
	if !resumable(err) || now.Sub(w.failedAt) > w.reconnect {
		w.done, w.err = true, readError(err)
		w.cancel()
		return
	}
	w.Resumed++
	select {
	case <-w.ctx.Done():
	case <-time.After(50 * time.Millisecond):
	}
}

// resumable says whether a watch that failed with err goes on elsewhere: the failover rule,
// and OUT_OF_RANGE (another replica may still have the changes).
func resumable(err error) bool {
	return retryable(err) || status.Code(err) == codes.OutOfRange
}
