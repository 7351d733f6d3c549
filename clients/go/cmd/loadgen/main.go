// Command loadgen drives TableService.Get from Go, for bench/grpc_reads: -concurrency
// goroutines call Get back to back over the keys of -keys-file (hex, one per line) for a
// -warmup, print "measuring", go on for -seconds, then print one JSON line with the calls,
// the keys found, the elapsed seconds, the latencies in seconds and the CPU seconds this
// process used meanwhile.
//
//	-mode smart:  the viewsvc smart client (membership from -targets, reads straight to holders)
//	-mode direct: a plain stub on the first target (the least a Go gRPC client costs)
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	viewsvcv1 "github.com/goka-py/goka-py/clients/go/gen/viewsvcv1"
	"github.com/goka-py/goka-py/clients/go/viewsvc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

type report struct {
	Calls      int       `json:"calls"`
	Found      int       `json:"found"`
	Seconds    float64   `json:"seconds"`
	Latencies  []float64 `json:"latencies"`
	CPUSeconds float64   `json:"cpu_seconds"`
}

func main() {
	mode := flag.String("mode", "smart", "smart or direct")
	targets := flag.String("targets", "", "host:port[,host:port]")
	table := flag.String("table", "", "the table to read")
	keysFile := flag.String("keys-file", "", "keys, hex, one per line")
	concurrency := flag.Int("concurrency", 1, "goroutines calling Get")
	seconds := flag.Float64("seconds", 5, "measured seconds")
	warmup := flag.Float64("warmup", 0.5, "seconds before measuring")
	flag.Parse()
	if err := run(*mode, strings.Split(*targets, ","), *table, *keysFile, *concurrency,
		*seconds, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func readKeys(path string) ([][]byte, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	var keys [][]byte
	lines := bufio.NewScanner(file)
	for lines.Scan() {
		key, err := hex.DecodeString(strings.TrimSpace(lines.Text()))
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys in " + path)
	}
	return keys, lines.Err()
}

func getter(mode string, targets []string, table string) (func(context.Context, []byte) (bool, error), func(), error) {
	switch mode {
	case "smart":
		client, err := viewsvc.New(viewsvc.Config{Targets: targets})
		if err != nil {
			return nil, nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := client.WaitReady(ctx); err != nil {
			return nil, nil, err
		}
		get := func(ctx context.Context, key []byte) (bool, error) {
			r, err := client.Get(ctx, table, key, viewsvc.ReadOptions{})
			return err == nil && r.Found, err
		}
		return get, func() { client.Close() }, nil
	case "direct":
		conn, err := grpc.NewClient(targets[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, nil, err
		}
		stub := viewsvcv1.NewTableServiceClient(conn)
		get := func(ctx context.Context, key []byte) (bool, error) {
			r, err := stub.Get(ctx, &viewsvcv1.GetRequest{Table: table, Key: key})
			return err == nil && r.GetFound(), err
		}
		return get, func() { conn.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown -mode %q: smart or direct", mode)
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()).Seconds()
}

func run(mode string, targets []string, table, keysFile string, concurrency int,
	seconds, warmup float64) error {
	if concurrency < 1 || seconds <= 0 || warmup < 0 || table == "" {
		return errors.New("need -table, -concurrency >= 1, -seconds > 0, -warmup >= 0")
	}
	keys, err := readKeys(keysFile)
	if err != nil {
		return err
	}
	get, closeClient, err := getter(mode, targets, table)
	if err != nil {
		return err
	}
	defer closeClient()
	start := time.Now()
	measureFrom := start.Add(time.Duration(warmup * float64(time.Second)))
	end := measureFrom.Add(time.Duration(seconds * float64(time.Second)))
	latencies := make([][]float64, concurrency)
	found := make([]int, concurrency)
	errs := make([]error, concurrency)
	var wg sync.WaitGroup
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * 7919; ; i++ {
				began := time.Now()
				ok, err := get(context.Background(), keys[i%len(keys)])
				finished := time.Now()
				if err != nil {
					errs[w] = err
					return
				}
				if began.After(measureFrom) {
					latencies[w] = append(latencies[w], finished.Sub(began).Seconds())
					if ok {
						found[w]++
					}
				}
				if finished.After(end) {
					return
				}
			}
		}()
	}
	time.Sleep(time.Until(measureFrom))
	fmt.Println("measuring")
	cpuBefore := cpuSeconds()
	wg.Wait()
	out := report{Seconds: time.Since(measureFrom).Seconds(), CPUSeconds: cpuSeconds() - cpuBefore}
	for w := range latencies {
		if errs[w] != nil {
			return errs[w]
		}
		out.Latencies = append(out.Latencies, latencies[w]...)
		out.Found += found[w]
	}
	out.Calls = len(out.Latencies)
	return json.NewEncoder(os.Stdout).Encode(out)
}
