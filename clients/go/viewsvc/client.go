// Package viewsvc is a smart client of goka-py's TableService: it follows the deployment's
// membership (DiscoveryService.WatchMembers), computes each key's partition with the
// partitioner the table announces (murmur2 or fnv1a), sends each read straight to a member
// holding the partition, and passes it to the next one when a node is unavailable. Any node
// forwards a read it cannot answer, so the targets are only where to start.
package viewsvc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	discoveryv1 "github.com/goka-py/goka-py/clients/go/gen/discoveryv1"
	viewsvcv1 "github.com/goka-py/goka-py/clients/go/gen/viewsvcv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Consistency says who may answer a read.
type Consistency int

const (
	// Any lets any running holder answer: the active owner, a standby or a view replica.
	Any Consistency = iota
	// Active lets only the partition's active owner answer.
	Active
)

// ReadOptions bound who may answer a read.
type ReadOptions struct {
	Consistency Consistency
	// MaxLag: at most this many offsets behind the end of the table partition (0: no bound).
	MaxLag int64
	// MinOffsets: per partition, the offset the replica must have applied (read-your-writes).
	MinOffsets map[int32]int64
	// MinOffsetsTopic: the topic MinOffsets are offsets of (default: the table).
	MinOffsetsTopic string
}

func (o ReadOptions) pb() *viewsvcv1.ReadOptions {
	consistency := viewsvcv1.Consistency_CONSISTENCY_ANY
	if o.Consistency == Active {
		consistency = viewsvcv1.Consistency_CONSISTENCY_ACTIVE
	}
	return &viewsvcv1.ReadOptions{Consistency: consistency, MaxLag: o.MaxLag,
		MinOffsets: o.MinOffsets, MinOffsetsTopic: o.MinOffsetsTopic}
}

// Config configures a Client.
type Config struct {
	// Targets are nodes to learn the membership from and to fall back to (host:port).
	Targets []string
	// Timeout bounds each read when its context has no deadline (default 10 s).
	Timeout time.Duration
	// Token is the bearer token the servers require (default: none).
	Token string
	// Credentials for TLS (default: plaintext).
	Credentials credentials.TransportCredentials
}

// ReadError is a read that failed: the gRPC status code and what the servers said.
type ReadError struct {
	Code    codes.Code
	Details string
}

func (e *ReadError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Details) }

// GetResult is the value of one key and where it came from.
type GetResult struct {
	Key       []byte
	Found     bool
	Value     []byte
	Partition int32
	Offset    int64  // the offset the answering replica had applied (the next it would apply)
	ServedBy  string // the member id of the node that read it from its local copy
	// Endpoint is the node this client sent the read to: ServedBy is that node's member id
	// when the read went straight to a holder (no forwarding hop).
	Endpoint string
}

// Client reads tables; safe for concurrent use.
type Client struct {
	config  Config
	mu      sync.Mutex
	conns   map[string]*grpc.ClientConn
	members atomic.Pointer[[]Member]
	ready   chan struct{}
	once    sync.Once
	stop    context.CancelFunc
	done    chan struct{}
}

// New starts following the membership from config.Targets.
func New(config Config) (*Client, error) {
	if len(config.Targets) == 0 {
		return nil, errors.New("viewsvc: Config.Targets must name at least one node (host:port)")
	}
	for _, target := range config.Targets {
		if !strings.Contains(target, ":") {
			return nil, fmt.Errorf("viewsvc: target %q is not host:port", target)
		}
	}
	if config.Timeout <= 0 {
		config.Timeout = 10 * time.Second
	}
	if config.Credentials == nil {
		config.Credentials = insecure.NewCredentials()
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &Client{config: config, conns: map[string]*grpc.ClientConn{}, ready: make(chan struct{}),
		stop: stop, done: make(chan struct{})}
	empty := []Member{}
	c.members.Store(&empty)
	go c.follow(ctx)
	return c, nil
}

// WaitReady waits until the first membership arrived (or ctx ends).
func (c *Client) WaitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("viewsvc: no membership from %v yet: %w", c.config.Targets, ctx.Err())
	}
}

// Members are the live members as last learned.
func (c *Client) Members() []Member { return *c.members.Load() }

// Close stops following the membership and closes the connections.
func (c *Client) Close() error {
	c.stop()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for _, conn := range c.conns {
		if err := conn.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.conns = map[string]*grpc.ClientConn{}
	return first
}

// follow keeps a WatchMembers stream open to one target after the other.
func (c *Client) follow(ctx context.Context) {
	defer close(c.done)
	backoff := 100 * time.Millisecond
	for i := 0; ctx.Err() == nil; i++ {
		target := c.config.Targets[i%len(c.config.Targets)]
		if c.watch(ctx, target) {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// watch follows one target's WatchMembers until the stream ends; true if it got any.
func (c *Client) watch(ctx context.Context, target string) bool {
	conn, err := c.conn(target)
	if err != nil {
		return false
	}
	stream, err := discoveryv1.NewDiscoveryServiceClient(conn).WatchMembers(
		c.outgoing(ctx), &discoveryv1.WatchMembersRequest{})
	if err != nil {
		return false
	}
	got := false
	for {
		response, err := stream.Recv()
		if err != nil {
			return got
		}
		members := make([]Member, 0, len(response.GetMembers()))
		for _, m := range response.GetMembers() {
			members = append(members, memberFromPB(m))
		}
		c.members.Store(&members)
		got = true
		c.once.Do(func() { close(c.ready) })
	}
}

func (c *Client) conn(endpoint string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn, ok := c.conns[endpoint]; ok {
		return conn, nil
	}
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(c.config.Credentials))
	if err != nil {
		return nil, err
	}
	c.conns[endpoint] = conn
	return conn, nil
}

func (c *Client) outgoing(ctx context.Context) context.Context {
	if c.config.Token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.config.Token)
}

func (c *Client) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.config.Timeout)
}

func (c *Client) stub(endpoint string) (viewsvcv1.TableServiceClient, error) {
	conn, err := c.conn(endpoint)
	if err != nil {
		return nil, err
	}
	return viewsvcv1.NewTableServiceClient(conn), nil
}

// retryable says whether a read that failed with code goes to the next node: UNAVAILABLE,
// or CANCELLED by a draining server. Reads are idempotent.
func retryable(err error) bool {
	code := status.Code(err)
	return code == codes.Unavailable || code == codes.Canceled
}

// firstAnswer calls each endpoint in turn until one answers; what the others said is in the
// error when none does.
func firstAnswer[T any](ctx context.Context, endpoints []string,
	call func(context.Context, string) (T, error)) (T, string, error) {
	var zero T
	var tried []string
	for _, endpoint := range endpoints {
		if ctx.Err() != nil {
			break
		}
		answer, err := call(ctx, endpoint)
		if err == nil {
			return answer, endpoint, nil
		}
		if !retryable(err) {
			return zero, endpoint, readError(err)
		}
		tried = append(tried, fmt.Sprintf("%s: %s", endpoint, status.Convert(err).Message()))
	}
	return zero, "", exhausted(ctx, endpoints, tried)
}

func readError(err error) error {
	if s, ok := status.FromError(err); ok {
		return &ReadError{Code: s.Code(), Details: s.Message()}
	}
	return &ReadError{Code: codes.Unknown, Details: err.Error()}
}

func exhausted(ctx context.Context, endpoints []string, tried []string) error {
	if len(endpoints) == 0 {
		return &ReadError{Code: codes.Unavailable, Details: "no node to send the read to: no " +
			"member with an endpoint is known yet; pass Config.Targets, or call WaitReady first"}
	}
	if ctx.Err() != nil {
		return &ReadError{Code: codes.DeadlineExceeded, Details: fmt.Sprintf(
			"the deadline passed before any of %v answered (%s)", endpoints, strings.Join(tried, "; "))}
	}
	return &ReadError{Code: codes.Unavailable, Details: fmt.Sprintf("%s (tried %v)",
		strings.Join(tried, "; "), endpoints)}
}

func validTable(table string) error {
	if table == "" {
		return errors.New("viewsvc: table must be a non-empty table topic name")
	}
	return nil
}

// Get reads one key; a missing key has Found false.
func (c *Client) Get(ctx context.Context, table string, key []byte,
	options ReadOptions) (*GetResult, error) {
	if err := validTable(table); err != nil {
		return nil, err
	}
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	route := keyRoutes(c.Members(), c.config.Targets, table, [][]byte{key}, options)[0]
	request := &viewsvcv1.GetRequest{Table: table, Key: key, Options: options.pb()}
	response, endpoint, err := firstAnswer(ctx, route,
		func(ctx context.Context, endpoint string) (*viewsvcv1.GetResponse, error) {
			stub, err := c.stub(endpoint)
			if err != nil {
				return nil, err
			}
			return stub.Get(c.outgoing(ctx), request)
		})
	if err != nil {
		return nil, err
	}
	return result(response, key, endpoint), nil
}

func result(r *viewsvcv1.GetResponse, key []byte, endpoint string) *GetResult {
	return &GetResult{Key: key, Found: r.GetFound(), Value: r.GetValue(),
		Partition: r.GetPartition(), Offset: r.GetOffset(), ServedBy: r.GetServedBy(),
		Endpoint: endpoint}
}

// GetMany reads keys, results in request order: one GetMany per holder, in parallel; the
// keys of a node that is unavailable go again to their next node.
func (c *Client) GetMany(ctx context.Context, table string, keys [][]byte,
	options ReadOptions) ([]*GetResult, error) {
	if err := validTable(table); err != nil {
		return nil, err
	}
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	routes := keyRoutes(c.Members(), c.config.Targets, table, keys, options)
	results := make([]*GetResult, len(keys))
	tried := make([][]string, len(keys))
	pending := make([]int, len(keys))
	for i := range keys {
		pending[i] = i
	}
	for len(pending) > 0 {
		groups := map[string][]int{}
		for _, i := range pending {
			if len(routes[i]) == 0 {
				return nil, exhausted(ctx, routes[i], tried[i])
			}
			groups[routes[i][0]] = append(groups[routes[i][0]], i)
		}
		type answer struct {
			endpoint string
			indexes  []int
			response *viewsvcv1.GetManyResponse
			err      error
		}
		answers := make(chan answer, len(groups))
		for endpoint, indexes := range groups {
			go func() {
				batch := make([][]byte, len(indexes))
				for j, i := range indexes {
					batch[j] = keys[i]
				}
				stub, err := c.stub(endpoint)
				var response *viewsvcv1.GetManyResponse
				if err == nil {
					response, err = stub.GetMany(c.outgoing(ctx), &viewsvcv1.GetManyRequest{
						Table: table, Keys: batch, Options: options.pb()})
				}
				answers <- answer{endpoint, indexes, response, err}
			}()
		}
		pending = nil
		var refused error
		for range groups {
			a := <-answers
			switch {
			case a.err == nil && len(a.response.GetResults()) != len(a.indexes):
				refused = &ReadError{Code: codes.Internal, Details: fmt.Sprintf(
					"%s answered %d results for %d keys", a.endpoint,
					len(a.response.GetResults()), len(a.indexes))}
			case a.err == nil:
				for j, i := range a.indexes {
					results[i] = result(a.response.GetResults()[j], keys[i], a.endpoint)
				}
			case retryable(a.err) && ctx.Err() == nil:
				for _, i := range a.indexes {
					tried[i] = append(tried[i], fmt.Sprintf("%s: %s", a.endpoint,
						status.Convert(a.err).Message()))
					routes[i] = routes[i][1:]
				}
				pending = append(pending, a.indexes...)
			default:
				refused = readError(a.err)
			}
		}
		if refused != nil {
			return nil, refused
		}
	}
	return results, nil
}

// Location is a key's partition and its holders, best first.
type Location struct {
	Table     string
	Partition int
	Replicas  []Owner
}

// Locate is the key's partition and holders: computed from the membership, or asked of a
// node when the membership does not know the table.
func (c *Client) Locate(ctx context.Context, table string, key []byte) (*Location, error) {
	if err := validTable(table); err != nil {
		return nil, err
	}
	members := c.Members()
	if info := tableInfo(members, table); info != nil {
		partition, err := PartitionOf(info.Partitioner, key, info.PartitionCount)
		if err == nil {
			return &Location{table, partition, Owners(members, table, partition)}, nil
		}
	}
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	request := &viewsvcv1.LocateRequest{Table: table, Key: key}
	response, _, err := firstAnswer(ctx, fallbacks(c.config.Targets, members),
		func(ctx context.Context, endpoint string) (*viewsvcv1.LocateResponse, error) {
			stub, err := c.stub(endpoint)
			if err != nil {
				return nil, err
			}
			return stub.Locate(c.outgoing(ctx), request)
		})
	if err != nil {
		return nil, err
	}
	location := &Location{Table: table, Partition: int(response.GetPartition())}
	for _, r := range response.GetReplicas() {
		location.Replicas = append(location.Replicas, Owner{MemberID: r.GetMemberId(),
			Endpoint: r.GetEndpoint(), Kind: r.GetKind(), State: r.GetState(),
			AppliedOffset: r.GetAppliedOffset(), Lag: r.GetLag()})
	}
	return location, nil
}
