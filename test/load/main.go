// Command load measures the function over gRPC on loopback with the
// full-observability KalypsoTritonServer request (examples/tritonservers/
// add-sub-server.yaml, running stage; built by test/requests as
// Crossplane sends it). It starts the function binary itself on 127.0.0.1
// (or is pointed at one with -addr), and for each mode sends a bounded
// number of calls at a fixed concurrency:
//
//	plain     one process, --insecure
//	mtls      one process, --tls-server-certs-dir with a throwaway CA; the
//	          client presents a client certificate as Crossplane does
//	scaleout  two --insecure processes behind one client connection that
//	          balances round robin (Crossplane's service config)
//
// It prints throughput, latency percentiles, CPU per call of server and
// client, and the server's peak RSS (VmHWM) with VmRSS sampled every second.
// Every process it starts is killed on the way out, also on failure or
// interrupt; every loop is bounded in calls and time.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kalypsoserving/function-kalypso/test/requests"
)

type config struct {
	bin          string
	addrs        []string
	clientTLS    string
	pids         []int
	modes        []string
	duration     time.Duration
	calls        int
	warmup       time.Duration
	warmupCalls  int
	concurrency  int
	timeout      time.Duration
	maxErrors    int
	sample       time.Duration
	codec        string
	maxRunTime   time.Duration
	flatFraction float64
}

func main() {
	os.Exit(run())
}

func run() int {
	cfg := config{}
	var addrs, modes, pids string
	flag.StringVar(&cfg.bin, "function", ".bin/function", "function binary to start (make function builds it)")
	flag.StringVar(&addrs, "addr", "", "comma-separated loopback addresses of running functions to load instead of starting any (several: round robin)")
	flag.StringVar(&cfg.clientTLS, "tls-client-certs-dir", "", "with -addr: dial with mTLS using ca.crt, tls.crt, tls.key from this directory (else insecure)")
	flag.StringVar(&pids, "pid", "", "with -addr: comma-separated pids of those functions, for CPU and RSS")
	flag.StringVar(&modes, "modes", "plain,mtls,scaleout", "runs, in order: plain, mtls, scaleout")
	flag.DurationVar(&cfg.duration, "duration", 60*time.Second, "measured time per run (at most)")
	flag.IntVar(&cfg.calls, "calls", 200000, "measured calls per run (at most)")
	flag.DurationVar(&cfg.warmup, "warmup", 3*time.Second, "unmeasured warm-up time per run (at most)")
	flag.IntVar(&cfg.warmupCalls, "warmup-calls", 5000, "unmeasured warm-up calls per run (at most)")
	flag.IntVar(&cfg.concurrency, "concurrency", 8, "calls in flight")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "timeout of one call")
	flag.IntVar(&cfg.maxErrors, "max-errors", 100, "stop a run after this many failed calls")
	flag.DurationVar(&cfg.sample, "sample", time.Second, "RSS sampling interval")
	flag.StringVar(&cfg.codec, "codec", "raw", "raw: send the serialized request, check the response length (least client CPU); proto: the generated client, encoding and decoding every call")
	flag.Float64Var(&cfg.flatFraction, "flat", 0.10, "RSS is flat when the median of the last 10 samples is within this fraction of the first 10")
	flag.Parse()

	if cfg.duration <= 0 || cfg.calls <= 0 || cfg.concurrency <= 0 || cfg.concurrency > 1024 || cfg.timeout <= 0 || cfg.sample <= 0 {
		fmt.Fprintln(os.Stderr, "load: -duration, -calls, -timeout, -sample must be positive and -concurrency in 1..1024")
		return 2
	}
	if cfg.duration > 30*time.Minute || cfg.warmup > 5*time.Minute {
		fmt.Fprintln(os.Stderr, "load: -duration is capped at 30m and -warmup at 5m")
		return 2
	}
	if addrs != "" {
		cfg.addrs = strings.Split(addrs, ",")
		for _, a := range cfg.addrs {
			if err := loopback(a); err != nil {
				fmt.Fprintln(os.Stderr, "load:", err)
				return 2
			}
		}
		for _, p := range strings.Split(pids, ",") {
			var pid int
			if _, err := fmt.Sscan(p, &pid); err == nil && pid > 0 {
				cfg.pids = append(cfg.pids, pid)
			}
		}
		cfg.modes = []string{"external"}
	} else {
		cfg.modes = strings.Split(modes, ",")
		for _, m := range cfg.modes {
			if !slices.Contains([]string{"plain", "mtls", "scaleout"}, m) {
				fmt.Fprintf(os.Stderr, "load: unknown mode %q\n", m)
				return 2
			}
		}
	}
	// Bound the whole program, whatever happens in it.
	cfg.maxRunTime = time.Duration(len(cfg.modes))*(cfg.duration+cfg.warmup+2*time.Minute) + time.Minute

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.maxRunTime)
	defer cancel()
	defer stopAll()

	root, err := requests.Root()
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		return 1
	}
	c, err := requests.FullObservabilityTritonServer(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		return 1
	}
	built, err := requests.Build(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load: cannot build the request:", err)
		return 1
	}
	if !filepath.IsAbs(cfg.bin) {
		cfg.bin = filepath.Join(root, cfg.bin)
	}
	tmp, err := os.MkdirTemp("", "kalypso-load-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	fmt.Printf("load: request %d B (KalypsoTritonServer add-sub-server, running: %d observed, %d required), %d composed objects in the answer\n",
		proto.Size(built.Request), len(built.Request.GetObserved().GetResources()), len(built.Request.GetRequiredResources()), len(built.Response.GetDesired().GetResources()))
	fmt.Printf("load: %d CPUs, client GOMAXPROCS %d, concurrency %d, per run at most %s or %d calls after %s / %d warm-up calls, codec %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), cfg.concurrency, cfg.duration, cfg.calls, cfg.warmup, cfg.warmupCalls, cfg.codec)

	var results []runResult
	failed := false
	for _, m := range cfg.modes {
		if ctx.Err() != nil {
			break
		}
		r := runMode(ctx, cfg, m, built, tmp)
		results = append(results, r)
		r.print(cfg)
		if r.err != nil {
			failed = true
		}
	}
	summary(results)
	stopAll()
	if failed || ctx.Err() != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "load: interrupted:", context.Cause(ctx))
		}
		return 1
	}
	return 0
}

// loopback refuses any address but a loopback one.
func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: only loopback addresses are loaded", addr)
	}
	return nil
}

// runResult is one mode's measurement.
type runResult struct {
	mode      string
	procs     int
	loadavg   string
	load      loadResult
	serverCPU time.Duration
	clientCPU time.Duration
	rss       [][]int64 // per process, KiB, every sample interval
	hwm       []int64   // per process, KiB
	err       error
}

func runMode(ctx context.Context, cfg config, mode string, built *requests.Built, tmp string) (res runResult) {
	res = runResult{mode: mode, loadavg: loadavg()}
	var tlsConfig *tls.Config
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	addrs, pids := cfg.addrs, cfg.pids
	switch mode {
	case "external":
		if cfg.clientTLS != "" {
			t, err := loadClientTLS(cfg.clientTLS)
			if err != nil {
				res.err = err
				return res
			}
			tlsConfig = t
		}
	default:
		n, tlsDir := 1, ""
		if mode == "scaleout" {
			n = 2
		}
		if mode == "mtls" {
			p, err := newPKI(filepath.Join(tmp, "pki"))
			if err != nil {
				res.err = fmt.Errorf("cannot make certificates: %w", err)
				return res
			}
			tlsDir, tlsConfig = p.serverDir, p.client
		}
		for i := range n {
			s, err := startServer(ctx, cfg.bin, tlsDir, tmp, i)
			if err != nil {
				res.err = fmt.Errorf("cannot start the function: %w", err)
				return res
			}
			servers = append(servers, s)
			addrs = append(addrs, s.addr)
			pids = append(pids, s.pid())
		}
	}
	res.procs = len(addrs)
	conn, err := dial(addrs, tlsConfig)
	if err != nil {
		res.err = err
		return res
	}
	defer conn.Close()

	// One decoded call per address checks the answer.
	wantLen := 0
	for range addrs {
		n, err := check(ctx, conn, built.Request, len(built.Response.GetDesired().GetResources()))
		if err != nil {
			res.err = fmt.Errorf("first call: %w", err)
			return res
		}
		wantLen = n
	}
	newCall, err := newCaller(conn, built.Request, cfg.codec)
	if err != nil {
		res.err = err
		return res
	}
	if cfg.warmupCalls > 0 && cfg.warmup > 0 {
		w := load(ctx, newCall, cfg.concurrency, cfg.warmupCalls, cfg.warmup, cfg.timeout, cfg.maxErrors, wantLen)
		if w.firstErr != nil && w.ok == 0 {
			res.err = fmt.Errorf("warm-up: %w", w.firstErr)
			return res
		}
	}

	// Measure, sampling RSS meanwhile.
	sctx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	res.rss = make([][]int64, len(pids))
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(cfg.sample)
		defer t.Stop()
		limit := int(cfg.duration/cfg.sample) + 2
		for i := 0; i < limit; i++ {
			for j, pid := range pids {
				if rss, _, err := memory(pid); err == nil {
					res.rss[j] = append(res.rss[j], rss)
				}
			}
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	cpu0, self0 := sumCPU(pids), selfCPU()
	res.load = load(ctx, newCall, cfg.concurrency, cfg.calls, cfg.duration, cfg.timeout, cfg.maxErrors, wantLen)
	res.serverCPU, res.clientCPU = sumCPU(pids)-cpu0, selfCPU()-self0
	stopSampling()
	wg.Wait()
	for _, pid := range pids {
		_, hwm, _ := memory(pid)
		res.hwm = append(res.hwm, hwm)
	}
	if res.load.firstErr != nil {
		res.err = res.load.firstErr
	} else if res.load.ok == 0 {
		res.err = errNoCalls
	}
	for _, s := range servers {
		select {
		case <-s.done:
			res.err = errors.Join(res.err, fmt.Errorf("function %s exited during the run: %v\n%s", s.addr, s.err, tail(s.log, 20)))
		default:
		}
	}
	return res
}

func sumCPU(pids []int) time.Duration {
	var t time.Duration
	for _, p := range pids {
		c, _ := cpu(p)
		t += c
	}
	return t
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func (r runResult) print(cfg config) {
	fmt.Printf("\n== %s (%d function process(es), load average before: %s) ==\n", r.mode, r.procs, r.loadavg)
	if r.load.ok > 0 {
		l := r.load
		fmt.Printf("calls      %d ok, %d failed in %.1f s: %.0f calls/s\n", l.ok, l.failed, l.elapsed.Seconds(), l.throughput())
		fmt.Printf("latency    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
			ms(l.percentile(0.50)), ms(l.percentile(0.90)), ms(l.percentile(0.99)), ms(l.percentile(0.999)), ms(l.latencies[len(l.latencies)-1]))
		sec := l.elapsed.Seconds()
		n := float64(l.ok + l.failed)
		fmt.Printf("CPU        function %.2f cores (%.0f µs/call), client %.2f cores (%.0f µs/call), together %.2f of %d cores\n",
			r.serverCPU.Seconds()/sec, float64(r.serverCPU.Microseconds())/n,
			r.clientCPU.Seconds()/sec, float64(r.clientCPU.Microseconds())/n,
			(r.serverCPU+r.clientCPU).Seconds()/sec, runtime.NumCPU())
	}
	for i, s := range r.rss {
		if len(s) == 0 {
			continue
		}
		first, last := median(s[:min(10, len(s))]), median(s[max(0, len(s)-10):])
		change := float64(last-first) / float64(first)
		verdict := "flat"
		if change > cfg.flatFraction || change < -cfg.flatFraction {
			verdict = fmt.Sprintf("NOT flat (more than %.0f%%)", cfg.flatFraction*100)
		}
		peak := int64(0)
		if i < len(r.hwm) {
			peak = r.hwm[i]
		}
		fmt.Printf("RSS [%d]    peak (VmHWM) %.1f MiB; VmRSS min %.1f max %.1f MiB; median of first 10 samples %.1f, of last 10 %.1f (%+.1f%%): %s\n",
			i, mib(peak), mib(slices.Min(s)), mib(slices.Max(s)), mib(first), mib(last), change*100, verdict)
		fmt.Printf("VmRSS [%d]  MiB every %s: %s\n", i, cfg.sample, series(s))
	}
	if r.err != nil {
		fmt.Printf("ERROR      %v\n", r.err)
	}
}

// summary prints the runs side by side.
func summary(rs []runResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Printf("\n%-26s", "summary")
	for _, r := range rs {
		fmt.Printf(" %14s", r.mode)
	}
	row := func(name string, f func(r runResult) string) {
		fmt.Printf("\n%-26s", name)
		for _, r := range rs {
			v := "-"
			if r.load.ok > 0 {
				v = f(r)
			}
			fmt.Printf(" %14s", v)
		}
	}
	row("processes", func(r runResult) string { return fmt.Sprint(r.procs) })
	row("calls ok / failed", func(r runResult) string { return fmt.Sprintf("%d/%d", r.load.ok, r.load.failed) })
	row("throughput (calls/s)", func(r runResult) string { return fmt.Sprintf("%.0f", r.load.throughput()) })
	row("p50 (ms)", func(r runResult) string { return ms(r.load.percentile(0.5)) })
	row("p99 (ms)", func(r runResult) string { return ms(r.load.percentile(0.99)) })
	row("max (ms)", func(r runResult) string { return ms(r.load.latencies[len(r.load.latencies)-1]) })
	row("function CPU µs/call", func(r runResult) string {
		return fmt.Sprintf("%.0f", float64(r.serverCPU.Microseconds())/float64(r.load.ok+r.load.failed))
	})
	row("client CPU µs/call", func(r runResult) string {
		return fmt.Sprintf("%.0f", float64(r.clientCPU.Microseconds())/float64(r.load.ok+r.load.failed))
	})
	row("cores busy (fn+client)", func(r runResult) string {
		return fmt.Sprintf("%.2f", (r.serverCPU+r.clientCPU).Seconds()/r.load.elapsed.Seconds())
	})
	row("CPU-bound calls/s @cores", func(r runResult) string {
		perCall := (r.serverCPU + r.clientCPU).Seconds() / float64(r.load.ok+r.load.failed)
		return fmt.Sprintf("%.0f", float64(runtime.NumCPU())/perCall)
	})
	row("peak RSS MiB (each)", func(r runResult) string {
		var s []string
		for _, h := range r.hwm {
			s = append(s, fmt.Sprintf("%.1f", mib(h)))
		}
		return strings.Join(s, "+")
	})
	fmt.Println()
	fmt.Printf("CPU-bound calls/s @cores = %d cores ÷ (function + client CPU per call): the throughput if this run had had every core to itself\n", runtime.NumCPU())
	var plain, scale *runResult
	for i := range rs {
		switch rs[i].mode {
		case "plain":
			plain = &rs[i]
		case "scaleout":
			scale = &rs[i]
		}
	}
	if plain != nil && scale != nil && plain.load.ok > 0 && scale.load.ok > 0 {
		fmt.Printf("scale-out: 2 processes give %.2f× the throughput of 1 (cores busy %.2f vs %.2f of %d)\n",
			scale.load.throughput()/plain.load.throughput(),
			(scale.serverCPU+scale.clientCPU).Seconds()/scale.load.elapsed.Seconds(),
			(plain.serverCPU+plain.clientCPU).Seconds()/plain.load.elapsed.Seconds(), runtime.NumCPU())
	}
}

func median(s []int64) int64 {
	c := slices.Clone(s)
	slices.Sort(c)
	return c[len(c)/2]
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }

// series prints samples compactly, at most 120 values.
func series(s []int64) string {
	step := max(1, (len(s)+119)/120)
	var out []string
	for i := 0; i < len(s); i += step {
		out = append(out, fmt.Sprintf("%.1f", mib(s[i])))
	}
	return strings.Join(out, " ")
}
