package viewsvc

import (
	"context"
	"errors"
	"io"

	viewsvcv1 "github.com/goka-py/goka-py/clients/go/gen/viewsvcv1"
)

// ScanOptions select the rows of a scan: Start <= key < End (empty: unbounded), with Prefix.
type ScanOptions struct {
	Start, End, Prefix []byte
	// Limit is the most rows (0: the whole range, up to the server's cap); when rows are
	// left, NextPageToken continues the scan as PageToken.
	Limit      int64
	PageToken  string
	Partitions []int32
	Read       ReadOptions
}

// Entry is one row of a scan.
type Entry struct {
	Key, Value []byte
	Partition  int32
}

// Source says which member served a partition of a scan, at which offset.
type Source struct {
	Partition int32
	ServedBy  string
	Offset    int64
}

// ScanIterator yields a scan's rows in ascending key order. A stream that breaks midway
// (UNAVAILABLE or CANCELLED: the node stopped) is resumed after the last row received, on
// the other nodes first, within the same deadline: no row is repeated or skipped.
type ScanIterator struct {
	c        *Client
	ctx      context.Context
	cancel   context.CancelFunc
	request  *viewsvcv1.ScanRequest
	order    []string
	endpoint string
	stream   viewsvcv1.TableService_ScanClient
	batch    []*viewsvcv1.Entry
	received int64
	lastKey  []byte
	err      error
	done     bool
	// NextPageToken, once Next returned false without error: the token to continue with
	// (empty when the range is exhausted).
	NextPageToken string
	// Sources says where each partition was read.
	Sources []Source
	// Resumed counts the broken streams resumed.
	Resumed int
}

// Scan starts a scan; call Close when not reading it to its end.
func (c *Client) Scan(ctx context.Context, table string, options ScanOptions) (*ScanIterator, error) {
	if err := validTable(table); err != nil {
		return nil, err
	}
	if options.Limit < 0 {
		return nil, errors.New("viewsvc: Limit must be >= 0 (0: no limit)")
	}
	ctx, cancel := c.deadline(ctx)
	request := &viewsvcv1.ScanRequest{Table: table, Start: options.Start, End: options.End,
		Prefix: options.Prefix, Limit: options.Limit, PageToken: options.PageToken,
		Partitions: uniqueSorted(options.Partitions), Options: options.Read.pb()}
	return &ScanIterator{c: c, ctx: ctx, cancel: cancel, request: request,
		order: fallbacks(c.config.Targets, c.Members())}, nil
}

// Next is the next row; false at the end or on an error (see Err).
func (s *ScanIterator) Next() (Entry, bool) {
	for !s.done {
		if len(s.batch) > 0 {
			e := s.batch[0]
			s.batch = s.batch[1:]
			s.received++
			s.lastKey = e.GetKey()
			return Entry{e.GetKey(), e.GetValue(), e.GetPartition()}, true
		}
		if s.stream == nil {
			s.open(s.rest())
			continue
		}
		response, err := s.stream.Recv()
		if err == io.EOF {
			s.finish(nil)
		} else if err != nil {
			s.broken(err)
		} else {
			s.take(response)
		}
	}
	return Entry{}, false
}

// Err is the error that ended the scan, if any.
func (s *ScanIterator) Err() error { return s.err }

// Close cancels the scan.
func (s *ScanIterator) Close() {
	s.done = true
	s.cancel()
}

func (s *ScanIterator) finish(err error) {
	s.done, s.err = true, err
	s.cancel()
}

func (s *ScanIterator) take(response *viewsvcv1.ScanResponse) {
	if len(response.GetSources()) > 0 {
		s.Sources = s.Sources[:0]
		for _, src := range response.GetSources() {
			s.Sources = append(s.Sources, Source{src.GetPartition(), src.GetServedBy(), src.GetOffset()})
		}
	}
	s.NextPageToken = response.GetNextPageToken()
	s.batch = response.GetEntries()
}

// open sends request to the first node of the order that answers with a first message.
func (s *ScanIterator) open(request *viewsvcv1.ScanRequest) {
	type opened struct {
		stream viewsvcv1.TableService_ScanClient
		first  *viewsvcv1.ScanResponse
		eof    bool
	}
	answer, endpoint, err := firstAnswer(s.ctx, s.order,
		func(ctx context.Context, endpoint string) (opened, error) {
			stub, err := s.c.stub(endpoint)
			if err != nil {
				return opened{}, err
			}
			stream, err := stub.Scan(s.c.outgoing(ctx), request)
			if err != nil {
				return opened{}, err
			}
			first, err := stream.Recv()
			if err == io.EOF {
				return opened{stream, nil, true}, nil
			}
			return opened{stream, first, false}, err
		})
	if err != nil {
		s.finish(err)
		return
	}
	s.endpoint, s.stream = endpoint, answer.stream
	if answer.eof {
		s.finish(nil)
		return
	}
	s.take(answer.first)
}

// broken resumes a stream that failed midway, the other nodes first; any other error ends
// the scan.
func (s *ScanIterator) broken(err error) {
	if !retryable(err) || s.ctx.Err() != nil {
		s.finish(readError(err))
		return
	}
	s.Resumed++
	s.stream = nil
	rest := s.order[:0:0]
	for _, e := range s.order {
		if e != s.endpoint {
			rest = append(rest, e)
		}
	}
	s.order = append(rest, s.endpoint)
	if s.request.GetLimit() > 0 && s.received >= s.request.GetLimit() {
		s.NextPageToken = s.token() // the page is complete; more rows may follow
		s.finish(nil)
	}
}

// rest is the request for what is left: the original one, or after the last row received.
func (s *ScanIterator) rest() *viewsvcv1.ScanRequest {
	if s.received == 0 {
		return s.request
	}
	rest := &viewsvcv1.ScanRequest{Table: s.request.Table, Start: s.request.Start,
		End: s.request.End, Prefix: s.request.Prefix, Partitions: s.request.Partitions,
		Options: s.request.Options, PageToken: s.token()}
	if s.request.GetLimit() > 0 {
		rest.Limit = s.request.GetLimit() - s.received
	}
	return rest
}

func (s *ScanIterator) token() string {
	r := s.request
	return PageToken(r.GetTable(), r.GetStart(), r.GetEnd(), r.GetPrefix(), r.GetPartitions(), s.lastKey)
}
