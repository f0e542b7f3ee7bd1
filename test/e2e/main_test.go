//go:build e2e

// Package e2e runs Kalypso against a real control plane started as local
// processes: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
// kwok with fake GPU nodes, Crossplane core (webhooks on, under the RBAC
// Crossplane ships plus examples/platform/crossplane-rbac.yaml) and its RBAC
// manager, and the function over mTLS on loopback.
//
// Run it with `make e2e`, which builds the binaries and points the E2E_*
// environment variables at them. The lab starts once in TestMain; tests
// share it, so each test uses its own object names.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// lab is the running lab every test uses.
var lab *Lab

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) (code int) {
	bins, err := binariesFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	logRoot := os.Getenv("E2E_LOG_ROOT")
	if logRoot == "" {
		logRoot = filepath.Join(root, ".bin", "e2e-logs")
	}
	flavour, err := labFlavour()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if !flavourSelected(flavour) {
		fmt.Printf("e2e: no test of the %s flavour matches -run %q; the %s lab is not started\n", flavour, runFlag(), flavour)
		return 0
	}
	logDir := filepath.Join(logRoot, time.Now().Format("20060102-150405")+"-"+flavour)
	lab, err = newLab(root, logDir, bins)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}

	// Stop the lab exactly once: at the end, on SIGINT/SIGTERM, or just
	// before `go test -timeout` kills the binary (which runs no defers).
	var once sync.Once
	failed := false
	stop := func(reason string) {
		once.Do(func() {
			if failed || reason != "" {
				lab.dumpState()
			}
			rss := lab.Stop()
			lab.Cleanup()
			report := lab.report(rss)
			fmt.Print(report)
			_ = os.WriteFile(filepath.Join(logDir, "report.txt"), []byte(report), 0o644)
			switch {
			case reason != "":
				fmt.Printf("e2e: stopped (%s); component logs kept in %s\n", reason, logDir)
			case failed:
				fmt.Printf("e2e: FAILED; component logs kept in %s\n", logDir)
			case os.Getenv("E2E_KEEP_LOGS") != "":
				fmt.Printf("e2e: component logs in %s\n", logDir)
			default:
				os.RemoveAll(logDir)
			}
		})
	}
	defer func() {
		if r := recover(); r != nil {
			failed = true
			stop("")
			panic(r)
		}
		if code == 0 && !waitBackground(backgroundTimeout) {
			code = 1
		}
		failed = code != 0
		stop("")
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sig
		stop("signal " + s.String())
		os.Exit(2)
	}()
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d > time.Minute {
			time.AfterFunc(d-30*time.Second, func() { stop("test timeout close: " + d.String()) })
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fmt.Printf("e2e: starting the %s lab (logs in %s)\n", flavour, logDir)
	if err := lab.Up(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: lab did not start:", err)
		return 1
	}
	fmt.Printf("e2e: lab up in %s: %s\n", lab.Timings[len(lab.Timings)-1].Took.Round(10*time.Millisecond), lab.apiServer)
	return m.Run()
}

// report summarizes timings and peak memory.
func (l *Lab) report(rss string) string {
	var b strings.Builder
	b.WriteString("e2e: lab start-up\n")
	for _, t := range l.Timings {
		fmt.Fprintf(&b, "  %-40s %8s\n", t.What, t.Took.Round(10*time.Millisecond))
	}
	scenarioMu.Lock()
	if len(scenarioTimings) > 0 {
		b.WriteString("e2e: scenarios\n")
		for _, t := range scenarioTimings {
			fmt.Fprintf(&b, "  %-40s %8s\n", t.What, t.Took.Round(10*time.Millisecond))
		}
	}
	scenarioMu.Unlock()
	measureMu.Lock()
	if len(measures) > 0 {
		b.WriteString("e2e: measurements\n")
		for _, m := range measures {
			fmt.Fprintf(&b, "  - %s\n", m)
		}
	}
	measureMu.Unlock()
	bgMu.Lock()
	if len(bgReports) > 0 {
		b.WriteString("e2e: background clean-up\n")
		for _, r := range bgReports {
			fmt.Fprintf(&b, "  - %s\n", r)
		}
	}
	bgMu.Unlock()
	findingsMu.Lock()
	if len(findings) > 0 {
		b.WriteString("e2e: findings (see test/e2e/README.md)\n")
		for _, f := range findings {
			fmt.Fprintf(&b, "  - %s\n", f)
		}
	}
	findingsMu.Unlock()
	b.WriteString("e2e: peak RSS per process\n")
	b.WriteString(rss)
	return b.String()
}

var (
	scenarioMu      sync.Mutex
	scenarioTimings []timing
)

// step runs one step of a scenario as a subtest and records its duration.
// A failed step stops the scenario: later steps build on it.
func step(t *testing.T, name string, fn func(t *testing.T)) {
	t.Helper()
	start := time.Now()
	ok := t.Run(name, fn)
	scenarioMu.Lock()
	scenarioTimings = append(scenarioTimings, timing{t.Name() + "/" + name, time.Since(start)})
	scenarioMu.Unlock()
	checkResponsive(t)
	softMu.Lock()
	for _, f := range softFailures {
		t.Errorf("%s: %s", name, f)
	}
	softFailures = nil
	softMu.Unlock()
	if !ok {
		t.FailNow()
	}
	if err := lab.checkAlive(); err != nil {
		t.Fatal(err)
	}
}

var (
	softMu       sync.Mutex
	softFailures []string
)

// softErrorf records a failure that must fail the test but need not stop
// the scenario: the step's later checks and the following steps still run.
func softErrorf(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	t.Log("FAILURE (the scenario goes on): " + msg)
	softMu.Lock()
	softFailures = append(softFailures, msg)
	softMu.Unlock()
}

var (
	findingsMu sync.Mutex
	findings   []string
)

// finding records something wrong that is not the function's doing (an
// upstream behaviour the lab runs into): it is printed in the report and
// logged, and fails the test only with E2E_STRICT=1.
func finding(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	findingsMu.Lock()
	findings = append(findings, t.Name()+": "+msg)
	findingsMu.Unlock()
	if os.Getenv("E2E_STRICT") != "" {
		softErrorf(t, "%s", msg)
		return
	}
	t.Log("FINDING (not a failure; E2E_STRICT=1 makes it one): " + msg)
}

var (
	unresponsiveMu   sync.Mutex
	unresponsiveSeen = map[string]bool{}
)

// checkResponsive fails the test (without stopping it) when Crossplane has
// stopped reacting to a composite's watch events: its XR circuit breaker
// opens (Responsive=False, WatchCircuitOpen) when the composed resources of
// one composite produce more watch events than it allows (a burst of 100,
// then 1 a second), and then even the composite's own spec changes wait for
// the next poll (--poll-interval, 1 minute by default).
func checkResponsive(t *testing.T) {
	t.Helper()
	kinds := []string{"KalypsoProject", "KalypsoApplication", "KalypsoTritonServer"}
	if lab.Flavour == flavourClaims {
		kinds = []string{"KalypsoProject", "XKalypsoApplication", "XKalypsoTritonServer"}
	}
	for _, kind := range kinds {
		items, err := lab.Kube.list(t.Context(), apiVersionKalypso, kind, "")
		if err != nil {
			t.Errorf("list %s: %v", kind, err)
			continue
		}
		for _, it := range items {
			c := getCondition(&it, "Responsive")
			key := kind + "/" + nsName(it.GetNamespace(), it.GetName())
			unresponsiveMu.Lock()
			seen := unresponsiveSeen[key]
			if c.Status == "False" {
				unresponsiveSeen[key] = true
			}
			unresponsiveMu.Unlock()
			if c.Status == "False" && !seen {
				finding(t, "Crossplane opened the watch circuit breaker of %s: Responsive=False %s: %s "+
					"(it now drops the composite's watch events, its own spec changes included, until its next poll)", key, c.Reason, c.Message)
			}
		}
	}
}

// projectComposedKinds are the kinds a project can compose: ClusterUsage,
// Namespace, ResourceQuota, LimitRange, NetworkPolicy and RoleBinding.
const projectComposedKinds = 6

// checkWatchHandlers fails the test when Crossplane core runs more
// composed-resource watch handlers for projects than a project composes
// kinds. Core v2.2.x and v2.3.x start one handler per resourceRef of a kind
// its engine has not watched yet (internal/engine/engine.go StartWatches)
// and never stop the extra ones; each one spends the project's circuit
// breaker tokens on every event. compose.HoldBackNewKinds keeps it to one
// per kind for composites created while core runs; after a core restart
// the first reconcile of an existing project starts one per ref again,
// which the function cannot avoid: then it is a finding. Started minus
// stopped is what runs now (engine_watches_{started,stopped}_total, since
// core's last start).
func checkWatchHandlers(t *testing.T) {
	t.Helper()
	samples, err := scrape(lab.CoreMetrics)
	if err != nil {
		t.Errorf("scrape Crossplane core's metrics: %v", err)
		return
	}
	parts := []string{`controller="composite/kalypsoprojects.serving.kalypso.io"`, `type="ComposedResource"`}
	started, _ := sum(samples, "engine_watches_started_total", parts...)
	stopped, _ := sum(samples, "engine_watches_stopped_total", parts...)
	measure(t, "Crossplane core runs %.0f watch handlers for the kinds projects compose (%.0f started, %.0f stopped)", started-stopped, started, stopped)
	switch {
	case started-stopped <= projectComposedKinds:
	case lab.restarted("crossplane-core"):
		finding(t, "Crossplane core runs %.0f watch handlers for the kinds projects compose, more than the %d kinds a project composes: "+
			"a scenario restarted core, whose first reconcile of each existing project starts one per resourceRef (README, \"Crossplane versions\")", started-stopped, projectComposedKinds)
	default:
		t.Errorf("Crossplane core runs %.0f watch handlers for the kinds projects compose, more than the %d kinds a project composes: "+
			"duplicate handlers multiply the watch events charged to a project's circuit breaker (compose.HoldBackNewKinds)", started-stopped, projectComposedKinds)
	}
}

// dumpState writes what the cluster holds of interest to state.yaml in the
// log folder, for failures.
func (l *Lab) dumpState() {
	if l.Kube == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, err := os.Create(filepath.Join(l.LogDir, "state.yaml"))
	if err != nil {
		return
	}
	defer f.Close()
	kinds := []struct{ apiVersion, kind string }{
		{apiVersionKalypso, "KalypsoProject"},
		{apiVersionKalypso, "KalypsoApplication"},
		{apiVersionKalypso, "KalypsoTritonServer"},
		{apiVersionKalypso, "XKalypsoApplication"},
		{apiVersionKalypso, "XKalypsoTritonServer"},
		{"protection.crossplane.io/v1beta1", "Usage"},
		{"protection.crossplane.io/v1beta1", "ClusterUsage"},
		{"apps/v1", "Deployment"},
		{"v1", "Service"},
		{"policy/v1", "PodDisruptionBudget"},
		{"autoscaling/v2", "HorizontalPodAutoscaler"},
		{"monitoring.coreos.com/v1", "ServiceMonitor"},
		{"apiextensions.crossplane.io/v1beta1", "EnvironmentConfig"},
		{"v1", "Namespace"},
		{"v1", "ResourceQuota"},
		{"v1", "LimitRange"},
		{"networking.k8s.io/v1", "NetworkPolicy"},
		{"rbac.authorization.k8s.io/v1", "RoleBinding"},
		{"v1", "Pod"},
		{"apiextensions.crossplane.io/v2", "CompositeResourceDefinition"},
		{"pkg.crossplane.io/v1", "FunctionRevision"},
	}
	for _, k := range kinds {
		if !l.Kube.served(schema.FromAPIVersionAndKind(k.apiVersion, k.kind)) {
			continue
		}
		items, err := l.Kube.list(ctx, k.apiVersion, k.kind, "")
		if err != nil {
			fmt.Fprintf(f, "# %s: %v\n", k.kind, err)
			continue
		}
		for _, it := range items {
			if it.GetNamespace() == "kube-system" {
				continue
			}
			it.SetManagedFields(nil)
			fmt.Fprintf(f, "---\n%s", toYAML(it.Object))
		}
	}
	events, err := l.Kube.Typed.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	if err == nil {
		fmt.Fprintln(f, "--- # events")
		for _, e := range events.Items {
			fmt.Fprintf(f, "# %s %s %s/%s %s: %s\n", e.LastTimestamp.Format(time.RFC3339), e.Type,
				e.InvolvedObject.Kind, nsName(e.InvolvedObject.Namespace, e.InvolvedObject.Name), e.Reason, e.Message)
		}
	}
}

// testFlavours names the flavours of every test: a lab runs one flavour,
// and TestMain does not start one when -run selects no test of its flavour.
// A test missing here always gets a lab.
var testFlavours = map[string][]string{
	"TestKalypsoProject":                 {flavourV2},
	"TestApplicationServer":              {flavourV2},
	"TestDeletionProtection":             {flavourV2},
	"TestProjectProtectionWindow":        {flavourV2},
	"TestProjectProtectionUpgrade":       {flavourV2},
	"TestFaults":                         {flavourV2},
	"TestScale":                          {flavourV2},
	"TestQueueTimeAutoscalingAPIService": {flavourV2},
	"TestWaitingServerKeepsItsObjects":   {flavourV2},
	"TestGPUClasses":                     {flavourV2},
	"TestCanary":                         {flavourV2},
	"TestTenantAccess":                   {flavourV2, flavourClaims},
	"TestUsageUpgrade":                   {flavourV2, flavourClaims},
	"TestClaims":                         {flavourClaims},
	"TestPackages":                       {flavourPackages},
}

func runFlag() string {
	if f := flag.Lookup("test.run"); f != nil {
		return f.Value.String()
	}
	return ""
}

// flavourSelected reports whether -run may select a test of the flavour:
// false only when every known test it matches belongs to another flavour.
func flavourSelected(flavour string) bool {
	run := runFlag()
	if run == "" {
		return true
	}
	re, err := regexp.Compile(strings.Split(run, "/")[0])
	if err != nil {
		return true
	}
	other := false
	for name, fs := range testFlavours {
		if re.MatchString(name) {
			if slices.Contains(fs, flavour) {
				return true
			}
			other = true
		}
	}
	return !other
}

// requireFlavour skips a test written for other flavours' labs.
func requireFlavour(t *testing.T, flavours ...string) {
	t.Helper()
	if !slices.Contains(flavours, lab.Flavour) {
		t.Skipf("needs a lab of flavour %s (E2E_FLAVOUR); this is the %s lab", strings.Join(flavours, " or "), lab.Flavour)
	}
}

var (
	measureMu sync.Mutex
	measures  []string
)

// measure records a measurement for the report at the end (and the log).
func measure(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	t.Log("MEASURED: " + msg)
	measureMu.Lock()
	measures = append(measures, t.Name()+": "+msg)
	measureMu.Unlock()
}

var (
	bgWG      sync.WaitGroup
	bgMu      sync.Mutex
	bgReports []string
	bgFailed  bool
)

// background runs a clean-up that need not hold up the next scenario (a
// project whose deletion waits for its next poll to drop its ClusterUsage).
// TestMain waits for it before stopping the lab and fails the run if it
// failed.
// backgroundTimeout bounds a background clean-up: a project's release can
// wait for kube-controller-manager's full quota resync (5 min) to count
// applications in an environment that never had one (README, "Deletion
// protection", Release), then for the project's next poll (1 min). The
// packages lab's clean-up of project vision failed at the 3 minutes this
// was: its dev and stage quotas had status.hard but no status.used count.
const backgroundTimeout = 7 * time.Minute

func background(what string, fn func(ctx context.Context) error) {
	bgWG.Add(1)
	go func() {
		defer bgWG.Done()
		ctx, cancel := context.WithTimeout(context.Background(), backgroundTimeout)
		defer cancel()
		start := time.Now()
		err := fn(ctx)
		bgMu.Lock()
		defer bgMu.Unlock()
		if err != nil {
			bgFailed = true
			bgReports = append(bgReports, fmt.Sprintf("%s: FAILED after %s: %v", what, time.Since(start).Round(100*time.Millisecond), err))
			return
		}
		bgReports = append(bgReports, fmt.Sprintf("%s: done in %s", what, time.Since(start).Round(100*time.Millisecond)))
	}()
}

// waitBackground waits for the background clean-ups; false when one failed
// or they did not end in time.
func waitBackground(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { bgWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		bgMu.Lock()
		bgReports = append(bgReports, "background clean-ups still running after "+timeout.String())
		bgFailed = true
		bgMu.Unlock()
	}
	bgMu.Lock()
	defer bgMu.Unlock()
	return !bgFailed
}
