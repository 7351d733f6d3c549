// Command gokainterop runs real Goka (lovoo/goka) against a Kafka cluster, so that tests can
// share tables between Goka services in Go and goka-py in Python. Every subcommand takes
// -brokers; processors run until SIGTERM or SIGINT and print "ready" once recovered.
//
//	gokainterop emit    -topic T                 < lines "key value": emit with Goka's emitter
//	gokainterop count   -group G -input T        count clicks (codec.String) into G-table
//	gokainterop copy    -group G -input T        keep each key's last Int64 in G-table
//	gokainterop joiner  -group G -input T -join X  keep X's value (a join) of each input key
//	gokainterop view    -table X [-keys a,b]     print {"key": value} as Goka's view reads them
//
// Goka's defaults are kept (the FNV-1a hasher, codec.Int64's decimal text, <group>-table)
// except what Kafka 4 needs: the protocol version (sarama's default, 2.0, asks for request
// versions Kafka 4 no longer serves), and replication factor 1 for a one-node cluster.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: gokainterop emit|count|copy|joiner|view [flags]"))
	}
	command, args := os.Args[1], os.Args[2:]
	flags := flag.NewFlagSet(command, flag.ExitOnError)
	brokers := flags.String("brokers", "", "bootstrap servers, host:port[,host:port]")
	topic := flags.String("topic", "", "emit: the stream to emit to")
	group := flags.String("group", "", "count, copy, joiner: the processor's group")
	input := flags.String("input", "", "count, copy, joiner: the input stream")
	join := flags.String("join", "", "joiner: the table to join")
	table := flags.String("table", "", "view: the table to read")
	keys := flags.String("keys", "", "view: keys to get, separated by commas (default: all)")
	replication := flags.Int("replication", 1, "replication factor of the topics Goka creates")
	if err := flags.Parse(args); err != nil {
		fail(err)
	}
	if *brokers == "" {
		fail(errors.New("-brokers is required"))
	}
	servers := strings.Split(*brokers, ",")
	configure(*replication)
	var err error
	switch command {
	case "emit":
		err = emit(servers, required("topic", *topic))
	case "count":
		err = run(servers, goka.DefineGroup(goka.Group(required("group", *group)),
			goka.Input(goka.Stream(required("input", *input)), new(codec.String), count),
			goka.Persist(new(codec.Int64))))
	case "copy":
		err = run(servers, goka.DefineGroup(goka.Group(required("group", *group)),
			goka.Input(goka.Stream(required("input", *input)), new(codec.Int64), keepLast),
			goka.Persist(new(codec.Int64))))
	case "joiner":
		joined := goka.Table(required("join", *join))
		err = run(servers, goka.DefineGroup(goka.Group(required("group", *group)),
			goka.Input(goka.Stream(required("input", *input)), new(codec.String),
				func(ctx goka.Context, _ interface{}) {
					if value := ctx.Join(joined); value != nil {
						ctx.SetValue(value)
					}
				}),
			goka.Join(joined, new(codec.Int64)),
			goka.Persist(new(codec.Int64))))
	case "view":
		err = view(servers, goka.Table(required("table", *table)), *keys)
	default:
		err = fmt.Errorf("unknown command %q: use emit, count, copy, joiner or view", command)
	}
	if err != nil {
		fail(err)
	}
}

var tmConfig = goka.NewTopicManagerConfig()

func configure(replication int) {
	config := goka.DefaultConfig()
	config.Version = sarama.V3_6_0_0
	config.Consumer.Offsets.Initial = sarama.OffsetOldest // inputs emitted before the start
	goka.ReplaceGlobalConfig(config)
	tmConfig.Table.Replication = replication
	tmConfig.Stream.Replication = replication
}

func required(name, value string) string {
	if value == "" {
		fail(fmt.Errorf("-%s is required", name))
	}
	return value
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gokainterop:", err)
	os.Exit(2)
}

func count(ctx goka.Context, _ interface{}) {
	var n int64
	if value := ctx.Value(); value != nil {
		n = value.(int64)
	}
	ctx.SetValue(n + 1)
}

func keepLast(ctx goka.Context, msg interface{}) {
	ctx.SetValue(msg)
}

// emit reads "key value" lines from stdin and emits each value (an Int64 when it parses as
// one, else a String) with Goka's emitter and default hasher, synchronously.
func emit(servers []string, topic string) error {
	tmb := goka.TopicManagerBuilderWithTopicManagerConfig(tmConfig)
	emitters := map[bool]*goka.Emitter{}
	for _, isInt := range []bool{false, true} {
		var c goka.Codec = new(codec.String)
		if isInt {
			c = new(codec.Int64)
		}
		emitter, err := goka.NewEmitter(servers, goka.Stream(topic), c,
			goka.WithEmitterTopicManagerBuilder(tmb))
		if err != nil {
			return err
		}
		defer emitter.Finish()
		emitters[isInt] = emitter
	}
	var key, value string
	emitted := 0
	for {
		n, err := fmt.Scanln(&key, &value)
		if n == 0 && err != nil {
			break
		}
		if err != nil {
			return fmt.Errorf("line %d: want 'key value': %w", emitted+1, err)
		}
		if number, err := strconv.ParseInt(value, 10, 64); err == nil {
			err = emitters[true].EmitSync(key, number)
		} else {
			err = emitters[false].EmitSync(key, value)
		}
		if err != nil {
			return err
		}
		emitted++
	}
	fmt.Printf("emitted %d\n", emitted)
	return nil
}

// run runs a processor until SIGTERM or SIGINT, printing "ready" once it has recovered.
func run(servers []string, graph *goka.GroupGraph) error {
	processor, err := goka.NewProcessor(servers, graph,
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithTopicManagerConfig(tmConfig)))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- processor.Run(ctx) }()
	go func() {
		if processor.WaitForReadyContext(ctx) == nil {
			fmt.Println("ready")
		}
	}()
	return <-done
}

// view prints the values of keys (all of them without -keys) as Goka's view reads them,
// once it has caught up: a key missing from the partition Goka's hasher picks reads null.
func view(servers []string, table goka.Table, keys string) error {
	v, err := goka.NewView(servers, table, new(codec.Int64),
		goka.WithViewTopicManagerBuilder(goka.TopicManagerBuilderWithTopicManagerConfig(tmConfig)))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	select {
	case <-v.WaitRunning():
	case err := <-done:
		return fmt.Errorf("the view stopped before it caught up: %w", err)
	}
	values := map[string]interface{}{}
	if keys == "" {
		it, err := v.Iterator()
		if err != nil {
			return err
		}
		for it.Next() {
			if values[it.Key()], err = it.Value(); err != nil {
				return err
			}
		}
	} else {
		for _, key := range strings.Split(keys, ",") {
			if values[key], err = v.Get(key); err != nil {
				return err
			}
		}
	}
	out, err := json.Marshal(values)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	cancel()
	<-done
	return nil
}
