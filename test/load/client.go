package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/protobuf/proto"
)

// svcConfig is the service config Crossplane dials functions with
// (internal/xfn): round robin over the resolved addresses, wait for ready.
const svcConfig = `{"loadBalancingConfig": [{"round_robin": {}}], "methodConfig": [{"name": [{}], "waitForReady": true}]}`

// dial opens one client connection, as Crossplane keeps one per function,
// balancing round robin over addrs (one address: a plain connection).
func dial(addrs []string, tlsConfig *tls.Config) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if tlsConfig != nil {
		creds = credentials.NewTLS(tlsConfig)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithDefaultServiceConfig(svcConfig)}
	if len(addrs) == 1 {
		return grpc.NewClient(addrs[0], opts...)
	}
	r := manual.NewBuilderWithScheme("kalypso-load")
	state := resolver.State{}
	for _, a := range addrs {
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a})
	}
	r.InitialState(state)
	return grpc.NewClient(r.Scheme()+":///function-kalypso", append(opts, grpc.WithResolvers(r))...)
}

// rawMsg is a message already serialized: the load client sends the same
// request bytes on every call and does not decode responses (it checks
// their length), so that its own CPU, which shares the cores with the
// function, goes to the transport only.
type rawMsg struct{ b []byte }

type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.(*rawMsg).b, nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	v.(*rawMsg).b = data
	return nil
}
func (rawCodec) Name() string { return "proto" }

// caller makes one RunFunction call; it reports the response length.
type caller func(ctx context.Context) (int, error)

// newCaller returns the way calls are made: raw (pre-serialized request,
// undecoded response) or proto (the generated client, as Crossplane does).
func newCaller(conn *grpc.ClientConn, req *fnv1.RunFunctionRequest, codec string) (func() caller, error) {
	switch codec {
	case "raw":
		b, err := proto.Marshal(req)
		if err != nil {
			return nil, err
		}
		return func() caller {
			in, out := &rawMsg{b: b}, &rawMsg{}
			return func(ctx context.Context) (int, error) {
				err := conn.Invoke(ctx, fnv1.FunctionRunnerService_RunFunction_FullMethodName, in, out, grpc.ForceCodec(rawCodec{}))
				return len(out.b), err
			}
		}, nil
	case "proto":
		c := fnv1.NewFunctionRunnerServiceClient(conn)
		return func() caller {
			return func(ctx context.Context) (int, error) {
				rsp, err := c.RunFunction(ctx, req)
				if err != nil {
					return 0, err
				}
				return proto.Size(rsp), nil
			}
		}, nil
	}
	return nil, fmt.Errorf("unknown codec %q (raw or proto)", codec)
}

// check makes one decoded call and verifies the answer: no Fatal result,
// the composed objects expected. It returns the response's size.
func check(ctx context.Context, conn *grpc.ClientConn, req *fnv1.RunFunctionRequest, wantDesired int) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rsp, err := fnv1.NewFunctionRunnerServiceClient(conn).RunFunction(cctx, req)
	if err != nil {
		return 0, err
	}
	for _, r := range rsp.GetResults() {
		if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
			return 0, fmt.Errorf("the function refused the request: %s", r.GetMessage())
		}
	}
	if got := len(rsp.GetDesired().GetResources()); got != wantDesired {
		return 0, fmt.Errorf("the function composed %d objects, want %d", got, wantDesired)
	}
	return proto.Size(rsp), nil
}

// loadResult is what one load phase measured.
type loadResult struct {
	ok, failed int
	firstErr   error
	elapsed    time.Duration
	latencies  []time.Duration // sorted
}

// load sends calls from concurrency workers until maxCalls were issued or
// duration passed (or maxErrors calls failed, or ctx ended), each call
// bounded by timeout. A response whose length differs from wantLen counts
// as failed.
func load(ctx context.Context, newCall func() caller, concurrency, maxCalls int, duration, timeout time.Duration, maxErrors int, wantLen int) loadResult {
	var issued, failed atomic.Int64
	var errOnce sync.Once
	var firstErr error
	lats := make([][]time.Duration, concurrency)
	start := time.Now()
	deadline := start.Add(duration)
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call := newCall()
			lat := make([]time.Duration, 0, maxCalls/concurrency+1)
			for ctx.Err() == nil && time.Now().Before(deadline) && failed.Load() < int64(maxErrors) {
				if issued.Add(1) > int64(maxCalls) {
					break
				}
				cctx, cancel := context.WithTimeout(ctx, timeout)
				t0 := time.Now()
				n, err := call(cctx)
				d := time.Since(t0)
				cancel()
				if err == nil && wantLen > 0 && n != wantLen {
					err = fmt.Errorf("response of %d bytes, want %d", n, wantLen)
				}
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				lat = append(lat, d)
			}
			lats[w] = lat
		}()
	}
	wg.Wait()
	r := loadResult{elapsed: time.Since(start), failed: int(failed.Load()), firstErr: firstErr}
	for _, l := range lats {
		r.latencies = append(r.latencies, l...)
	}
	r.ok = len(r.latencies)
	slices.Sort(r.latencies)
	if r.failed >= maxErrors && r.firstErr != nil {
		r.firstErr = fmt.Errorf("stopped after %d failed calls: %w", r.failed, r.firstErr)
	}
	return r
}

func (r loadResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies)-1) * p)
	return r.latencies[i]
}

func (r loadResult) throughput() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

var errNoCalls = errors.New("no call succeeded")
