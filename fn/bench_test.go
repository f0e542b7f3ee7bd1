package fn_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/kalypsoserving/function-kalypso/fn"
	"github.com/kalypsoserving/function-kalypso/test/requests"
)

// The benchmarks run RunFunction on the requests Crossplane sends in the
// steady state (test/requests builds them from the examples), and
// beside each its floor: unmarshalling the serialized request and
// marshalling the response, which the gRPC server does on every call
// whatever the function does. `make bench` prints them as a table with the
// ratio RunFunction/floor and the marginal cost per environment, server and
// parameter (test/bench/README.md).
//
// Names: Benchmark<Kind>/<case>/{RunFunction,Floor,Pair}; a case named
// <Series><N> belongs to a scaling series (N = 1, 3, 50), which
// BenchmarkGrowth also times paired.
//
// Besides wall time (ns/op) every benchmark reports cpu-ns/op, the CPU time
// of the process per operation (garbage collector included): on a shared
// machine it does not count the time other processes hold the cores.

type benchCase struct {
	name  string
	build func(root string) (requests.Case, error)
	// first benchmarks the first call of a reconcile instead: no required
	// resources yet, the function only answers its requirements.
	first bool
}

func stage(xr, st string) func(string) (requests.Case, error) {
	return func(root string) (requests.Case, error) { return requests.Stage(root, xr, st) }
}

func scaled(f func(string, int) (requests.Case, error), n int) func(string) (requests.Case, error) {
	return func(root string) (requests.Case, error) { return f(root, n) }
}

func BenchmarkProject(b *testing.B) {
	benchCases(b, []benchCase{
		{name: "Vision3Stage", build: stage("examples/projects/vision.yaml", "ready")},
		{name: "Envs1", build: scaled(requests.ProjectEnvs, 1)},
		{name: "Envs3", build: scaled(requests.ProjectEnvs, 3)},
		{name: "Envs50", build: scaled(requests.ProjectEnvs, 50)},
	})
}

func BenchmarkApplication(b *testing.B) {
	benchCases(b, []benchCase{
		{name: "DetectorStage", build: stage("examples/applications/detector.yaml", "ready")},
		{name: "Servers1", build: scaled(requests.ApplicationServers, 1)},
		{name: "Servers3", build: scaled(requests.ApplicationServers, 3)},
		{name: "Servers50", build: scaled(requests.ApplicationServers, 50)},
	})
}

func BenchmarkTritonServer(b *testing.B) {
	benchCases(b, []benchCase{
		{name: "AddSubServerStage", build: requests.FullObservabilityTritonServer},
		{name: "AddSubServerFirstCall", build: requests.FullObservabilityTritonServer, first: true},
		{name: "Params1", build: scaled(requests.TritonServerScaled, 1)},
		{name: "Params3", build: scaled(requests.TritonServerScaled, 3)},
		{name: "Params50", build: scaled(requests.TritonServerScaled, 50)},
	})
}

// blockCPU is the CPU time of one block of calls in BenchmarkGrowth.
const blockCPU = 20 * time.Millisecond

// BenchmarkGrowth times the 1-, 3- and 50-unit cases of each series in
// the same loop, RunFunction and floor alike, in rotating blocks, by thread
// CPU time: load that comes and goes on a shared machine then weighs on all
// six alike, and growth = ((t50 − t3)/47) ÷ ((t3 − t1)/2) is not a ratio of
// differences of numbers measured seconds apart.
func BenchmarkGrowth(b *testing.B) {
	for _, s := range []struct {
		name  string
		build func(string, int) (requests.Case, error)
	}{
		{"ProjectEnvs", requests.ProjectEnvs},
		{"ApplicationServers", requests.ApplicationServers},
		{"TritonServerParams", requests.TritonServerScaled},
	} {
		b.Run(s.name, func(b *testing.B) {
			sizes := []int{1, 3, 50}
			var ps [3]*prepared
			for i, n := range sizes {
				ps[i] = prepare(b, buildCase(b, benchCase{name: fmt.Sprintf("%s%d", s.name, n), build: scaled(s.build, n)}))
			}
			// Blocks of calls of about blockCPU each, timed by the CPU time
			// of this goroutine's thread: a garbage collection one case
			// starts is then not charged to the next (the collector's
			// background workers run on other threads; its assists, paid
			// by the allocating goroutine, are counted).
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var reps [3]int
			for j := range ps {
				c0 := threadCPU()
				ps[j].call()
				ps[j].floor()
				reps[j] = max(1, int(blockCPU/max(threadCPU()-c0, time.Microsecond)))
			}
			b.Run("Paired", func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var fnT, floorT [3]time.Duration
				var calls [3]int
				for i := 0; b.Loop(); i++ {
					for k := range 3 {
						j := (i + k) % 3
						c0 := threadCPU()
						for range reps[j] {
							ps[j].call()
						}
						c1 := threadCPU()
						for range reps[j] {
							ps[j].floor()
						}
						fnT[j] += c1 - c0
						floorT[j] += threadCPU() - c1
						calls[j] += reps[j]
					}
				}
				var fnPer, floorPer [3]float64
				for j, n := range sizes {
					fnPer[j] = float64(fnT[j].Nanoseconds()) / float64(calls[j])
					floorPer[j] = float64(floorT[j].Nanoseconds()) / float64(calls[j])
					b.ReportMetric(fnPer[j], fmt.Sprintf("fn%d-cpu-ns", n))
					b.ReportMetric(floorPer[j], fmt.Sprintf("floor%d-cpu-ns", n))
				}
				growth := func(t [3]float64) float64 { return ((t[2] - t[1]) / 47) / ((t[1] - t[0]) / 2) }
				b.ReportMetric(growth(fnPer), "fn-growth")
				b.ReportMetric(growth(floorPer), "floor-growth")
			})
		})
	}
}

func benchCases(b *testing.B, cases []benchCase) {
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			benchPrepared(b, prepare(b, buildCase(b, c)))
		})
	}
}

func benchPrepared(b *testing.B, p *prepared) {
	b.Run("RunFunction", func(b *testing.B) {
		b.ReportAllocs()
		c0 := cpuTime()
		for b.Loop() {
			p.call()
		}
		reportCPU(b, cpuTime()-c0)
	})
	b.Run("Floor", func(b *testing.B) {
		b.ReportAllocs()
		c0 := cpuTime()
		for b.Loop() {
			p.floor()
		}
		reportCPU(b, cpuTime()-c0)
		b.ReportMetric(float64(len(p.reqBytes)), "req-B")
		b.ReportMetric(float64(len(p.rspBytes)), "rsp-B")
		b.ReportMetric(float64(len(p.req.GetObserved().GetResources())), "observed")
		b.ReportMetric(float64(len(p.rsp.GetDesired().GetResources())), "desired")
	})
	// Pair alternates the two in one loop, so that both see the same load
	// on a shared machine: its ratio is the steadier one.
	b.Run("Pair", func(b *testing.B) {
		var fnT, floorT time.Duration
		for b.Loop() {
			c0 := cpuTime()
			p.call()
			c1 := cpuTime()
			p.floor()
			fnT += c1 - c0
			floorT += cpuTime() - c1
		}
		b.ReportMetric(float64(fnT.Nanoseconds())/float64(b.N), "fn-cpu-ns")
		b.ReportMetric(float64(floorT.Nanoseconds())/float64(b.N), "floor-cpu-ns")
		b.ReportMetric(float64(fnT)/float64(floorT), "fn/floor")
	})
}

// built caches the requests by case.
var built = map[string]*fnv1.RunFunctionRequest{}

func buildCase(b *testing.B, c benchCase) *fnv1.RunFunctionRequest {
	b.Helper()
	key := fmt.Sprintf("%s/%v", c.name, c.first)
	if req, ok := built[key]; ok {
		return req
	}
	root, err := requests.Root()
	if err != nil {
		b.Fatal(err)
	}
	cs, err := c.build(root)
	if err != nil {
		b.Fatal(err)
	}
	bl, err := requests.Build(cs)
	if err != nil {
		b.Fatal(err)
	}
	req := bl.Request
	if c.first {
		req = bl.First
	}
	built[key] = req
	return req
}

// prepared is a request ready to be benchmarked: its serialized form and
// the response the function gives it.
type prepared struct {
	f                  *fn.Function
	req                *fnv1.RunFunctionRequest
	rsp                *fnv1.RunFunctionResponse
	reqBytes, rspBytes []byte
}

func prepare(b *testing.B, req *fnv1.RunFunctionRequest) *prepared {
	b.Helper()
	p := &prepared{f: fn.New(logging.NewNopLogger()), req: req}
	p.rsp = p.call()
	for _, r := range p.rsp.GetResults() {
		if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
			b.Fatalf("the function refused the request: %s", r.GetMessage())
		}
	}
	var err error
	if p.reqBytes, err = proto.Marshal(req); err != nil {
		b.Fatal(err)
	}
	if p.rspBytes, err = proto.Marshal(p.rsp); err != nil {
		b.Fatal(err)
	}
	// Same answer twice: nothing of one call leaks into the next.
	if again, _ := proto.Marshal(p.call()); len(again) != len(p.rspBytes) {
		b.Fatalf("the second call answered %d bytes, the first %d", len(again), len(p.rspBytes))
	}
	return p
}

// call runs the function once. response.To aliases the request's desired
// state into the response and the SDK fills it in place: over gRPC every
// call has a fresh request, so every call here starts from the empty
// desired state Crossplane sends.
func (p *prepared) call() *fnv1.RunFunctionResponse {
	p.req.Desired = &fnv1.State{}
	rsp, err := p.f.RunFunction(context.Background(), p.req)
	if err != nil {
		panic(err) // RunFunction reports through the response; checked in prepare.
	}
	return rsp
}

// floor is what the gRPC server does around the call: unmarshal the
// request, marshal the response.
func (p *prepared) floor() {
	in := &fnv1.RunFunctionRequest{}
	if err := proto.Unmarshal(p.reqBytes, in); err != nil {
		panic(err) // marshalled by prepare.
	}
	if _, err := proto.Marshal(p.rsp); err != nil {
		panic(err) // marshalled by prepare.
	}
}

// cpuTime is the CPU time of the whole process: every thread, the garbage
// collector's included.
func cpuTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}

// threadCPU is the CPU time of the calling thread (lock the goroutine to
// it first).
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}

func reportCPU(b *testing.B, d time.Duration) {
	b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
}
