//go:build e2e

package e2e

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// scaleSnapshot is what the scale scenario reads at a phase boundary.
type scaleSnapshot struct {
	at       time.Time
	requests map[string]float64 // kube-apiserver's apiserver_request_total
	observer map[string]float64 // the observer's own requests so far
	core     map[string]float64 // core's requests since the previous snapshot (audit log)
	cpu      map[string]float64 // CPU-seconds by lab process
	metrics  []sample           // Crossplane core's metrics
}

func takeSnapshot(t testing.TB, o *observer) scaleSnapshot {
	t.Helper()
	s := scaleSnapshot{at: time.Now(), cpu: map[string]float64{}}
	var err error
	if s.requests, err = o.apiRequests(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.observer = o.counter.snapshot()
	if s.core, err = o.audit.next(); err != nil {
		t.Fatal(err)
	}
	lab.mu.Lock()
	procs := slices.Clone(lab.procs)
	lab.mu.Unlock()
	for _, p := range procs {
		if s.cpu[p.name], err = p.cpuSeconds(); err != nil {
			t.Fatal(err)
		}
	}
	if s.metrics, err = scrape(lab.CoreMetrics); err != nil {
		t.Fatal(err)
	}
	return s
}

// scaleWindow is what happened between two snapshots.
type scaleWindow struct {
	took time.Duration
	// requests by verb and resource, of every client but the observer.
	requests map[string]float64
	// core are Crossplane core's requests, from the audit log.
	core map[string]float64
	cpu  map[string]float64
	// Crossplane core's circuit breaker (internal/circuit of v2.2.1):
	// transitions to open, and watch events it dropped.
	breakerOpens, breakerDropped float64
	// runFunction counts core's RunFunction calls to the function.
	runFunction float64
}

func windowOf(a, b scaleSnapshot) scaleWindow {
	w := scaleWindow{took: b.at.Sub(a.at), requests: map[string]float64{}, core: b.core, cpu: map[string]float64{}}
	for k, v := range b.requests {
		if d := v - a.requests[k] - (b.observer[k] - a.observer[k]); d != 0 {
			w.requests[k] = d
		}
	}
	for k, v := range b.cpu {
		w.cpu[k] = v - a.cpu[k]
	}
	delta := func(name string, parts ...string) float64 {
		after, _ := sum(b.metrics, name, parts...)
		before, _ := sum(a.metrics, name, parts...)
		return after - before
	}
	w.breakerOpens = delta("circuit_breaker_opens_total")
	w.breakerDropped = delta("circuit_breaker_events_total", `result="Dropped"`)
	w.runFunction = delta("function_run_function_seconds_count", `function_name="`+functionName+`"`)
	return w
}

func total(m map[string]float64) float64 {
	var n float64
	for _, v := range m {
		n += v
	}
	return n
}

func perServerMinute(n float64, servers int, d time.Duration) float64 {
	return n / float64(servers) / d.Minutes()
}

// peakRSS reads a process's VmHWM.
func peakRSS(p *proc) string {
	kb, ok := p.vmHWM()
	if !ok {
		return "unknown"
	}
	return fmt.Sprintf("%d MB", kb/1024)
}

// Targets of the scale issue, reported next to the figures (not enforced).
const (
	targetExist, targetAvailable, targetReady = 1.25, 1.25, 1.5
	targetCreateRequests                      = 42 // per server
	targetIdleRequests                        = 2  // per server per minute
)

// scaleReport is the scenario's result as markdown.
type scaleReport struct {
	params       scaleParams
	nodes, rss   string
	load         string
	kalypso      scaleRun
	perKind      map[string]time.Duration // composites of each kind Ready
	goneAt       map[string]time.Duration // … and gone, from the first delete
	settle       scaleWindow              // from every composite Ready until none changes
	idle         scaleWindow
	bounds       map[int]scaleRun
	composed     int // objects Kalypso composed
	bound        int // objects the bound applies
	unresponsive map[objKey]seen
	idleEnd      time.Time // the end of the idle period, when the deletes start
	// composites that went from Ready to not Ready, how often, and why
	lostReady, lostReadyTimes int
	lostReasons               string
	restart                   *restartResult // SCALE_RESTART only
	// earlier are the phase times of earlier runs of the same
	// configuration, newest first (earlierRuns).
	earlier []string
}

// heartbeats are the kwok nodes' requests, whatever the servers do.
var heartbeats = []string{"PUT leases.coordination.k8s.io", "PATCH nodes/status"}

func (r scaleReport) markdown() string {
	p, k, b := r.params, r.kalypso, r.bounds[scaleWorkers]
	n := float64(p.servers)
	var s strings.Builder
	fmt.Fprintf(&s, "%s\n\n", r.heading())
	fmt.Fprintf(&s, "- run: %s; function built from %s; %d CPUs, load average %s before the first apply; Crossplane core %s; Kubernetes %s; %s\n",
		time.Now().UTC().Format(time.UnixDate), sourceRevision(), runtime.NumCPU(), r.load, coreVersion(), kubeVersion(), r.nodes)
	s.WriteString("- kube-controller-manager runs with `--kube-api-qps=200 --kube-api-burst=400` (the defaults, 20 and 30, would dominate every run)\n")
	fmt.Fprintf(&s, "- Kalypso composed %d objects; the bound applies %d of them (all but Crossplane's Usages and ClusterUsages)\n", r.composed, r.bound)
	fmt.Fprintf(&s, "- idle period %s; times from the first apply\n\n", p.idle)

	s.WriteString("| | Kalypso | bound, 10 workers | Kalypso ÷ bound | target | bound, 1 worker | bound, 50 workers |\n")
	s.WriteString("|---|---:|---:|---:|---|---:|---:|\n")
	row := func(what, kal, bnd, rat, target string, f func(scaleRun) string) {
		fmt.Fprintf(&s, "| %s | %s | %s | %s | %s | %s | %s |\n", what, kal, bnd, rat, target, f(r.bounds[1]), f(r.bounds[50]))
	}
	none := func(scaleRun) string { return "" }
	phase := func(what string, f func(scaleRun) time.Duration, limit float64) {
		q := ratio(f(k), f(b))
		target := ""
		if limit > 0 {
			target = verdict(q <= limit, fmt.Sprintf("≤ %.2f×", limit))
		}
		row(what, sec(f(k)), sec(f(b)), fmt.Sprintf("%.2f×", q), target, func(x scaleRun) string { return sec(f(x)) })
	}
	phase("every apply returned", func(x scaleRun) time.Duration { return x.applied }, 0)
	phase("(a) every composed object exists", func(x scaleRun) time.Duration { return x.exist }, targetExist)
	phase("(b) every Deployment available", func(x scaleRun) time.Duration { return x.available }, targetAvailable)
	phase("(c) every composite Ready (bound: b)", func(x scaleRun) time.Duration { return x.ready }, targetReady)
	row("↳ projects / applications / servers Ready", fmt.Sprintf("%s / %s / %s",
		sec(r.perKind[kindProject]), sec(r.perKind[kindApplication]), sec(r.perKind[kindServer])), "", "", "", none)
	if len(r.earlier) > 0 {
		row(earlierRow, strings.Join(r.earlier, "<br>"), "", "", "", none)
	}

	perServer := func(x scaleRun) float64 { return total(x.creating.requests) / n }
	per := func(x scaleRun) string { return fmt.Sprintf("%.1f", perServer(x)) }
	row("API server requests while creating, per server", per(k), per(b), fmt.Sprintf("%.2f×", perServer(k)/perServer(b)),
		verdict(perServer(k) <= targetCreateRequests, fmt.Sprintf("≤ %d", targetCreateRequests)), per)
	corePer := func(x scaleRun) string { return fmt.Sprintf("%.1f", total(x.creating.core)/n) }
	row("↳ of them Crossplane core's (audit log)", corePer(k), corePer(b), "", "", corePer)
	// The bound calls no function: the function's CPU there is an idle
	// process's, and a ratio to it would mean nothing.
	for _, c := range []struct {
		what, proc string
		inBound    bool
	}{
		{"Crossplane core", "crossplane-core", true}, {"function", "function", false}, {"kube-apiserver", "kube-apiserver", true},
		{"etcd", "etcd", true}, {"kube-controller-manager", "kube-controller-manager", true}, {"all lab processes", "", true},
	} {
		cpu := func(x scaleRun) float64 {
			if c.proc == "" {
				return total(x.creating.cpu)
			}
			return x.creating.cpu[c.proc]
		}
		f := func(x scaleRun) string { return fmt.Sprintf("%.1f", cpu(x)) }
		rat := ""
		if c.inBound && cpu(b) > 0 {
			rat = fmt.Sprintf("%.2f×", cpu(k)/cpu(b))
		}
		row("CPU-seconds while creating: "+c.what, f(k), f(b), rat, "", f)
	}
	row(fmt.Sprintf("settling: from (c) until no composite changed for %s", settleQuiet), fmt.Sprintf("%.1f s, %.1f requests per server",
		r.settle.took.Seconds(), total(r.settle.requests)/float64(p.servers)), "", "", "", none)
	idleReq := perServerMinute(total(r.idle.requests), p.servers, r.idle.took)
	row("idle: API server requests per server per minute", fmt.Sprintf("%.2f", idleReq), "", "",
		verdict(idleReq <= targetIdleRequests, fmt.Sprintf("≤ %d", targetIdleRequests)), none)
	row("↳ of them Crossplane core's (audit log)", fmt.Sprintf("%.2f", perServerMinute(total(r.idle.core), p.servers, r.idle.took)), "", "", "", none)
	var beats float64
	for _, h := range heartbeats {
		beats += r.idle.requests[h]
	}
	row("↳ of them the fake nodes' heartbeats (leases, nodes/status)", fmt.Sprintf("%.2f", perServerMinute(beats, p.servers, r.idle.took)), "", "", "", none)
	row("idle: CPU-seconds per minute, core / function / kube-apiserver", fmt.Sprintf("%.2f / %.2f / %.2f",
		r.idle.cpu["crossplane-core"]/r.idle.took.Minutes(), r.idle.cpu["function"]/r.idle.took.Minutes(), r.idle.cpu["kube-apiserver"]/r.idle.took.Minutes()), "", "", "", none)
	row("RunFunction calls per server: creating / idle per minute", fmt.Sprintf("%.1f / %.2f",
		k.creating.runFunction/n, perServerMinute(r.idle.runFunction, p.servers, r.idle.took)), "", "", "", none)
	row("Crossplane core peak RSS (whole scenario)", r.rss, "", "", "", none)
	row("circuit breaker opens / dropped watch events (creating and idle)", fmt.Sprintf("%.0f / %.0f",
		k.creating.breakerOpens+r.idle.breakerOpens, k.creating.breakerDropped+r.idle.breakerDropped), "", "", "", none)
	early := 0
	for _, u := range r.unresponsive {
		if u.at.Before(r.idleEnd) {
			early++
		}
	}
	row("composites seen with Responsive≠True: creating and idle (by the end of deleting)", fmt.Sprintf("%d (%d)", early, len(r.unresponsive)), "", "", "", none)
	if rs := r.restart; rs != nil {
		row("after a restart of core (SIGTERM): every composite reconciled / breaker opens / composites Responsive=False 60 s later",
			fmt.Sprintf("%s / %.0f / %d", sec(rs.reconciled), rs.opens, len(rs.unresponsive)), "", "", "", none)
	}
	row("composites that lost Ready once they had it, before the deletion (times: kind and reason)", fmt.Sprintf("%d (%d: %s)", r.lostReady, r.lostReadyTimes, r.lostReasons), "", "", "", none)
	phase("deleting everything, until every Namespace, Deployment and pod is gone", func(x scaleRun) time.Duration { return x.deleted }, 0)
	row("↳ servers / applications / projects gone", fmt.Sprintf("%s / %s / %s",
		sec(r.goneAt[kindServer]), sec(r.goneAt[kindApplication]), sec(r.goneAt[kindProject])), "", "", "", none)

	s.WriteString("\nAPI server requests by verb and resource, every client but the test's observer (apiserver_request_total; the top 12 while Kalypso creates, then the top 8 idle):\n\n")
	fmt.Fprintf(&s, "| request | Kalypso, creating | bound (%d workers), creating | Kalypso idle, per server per minute |\n|---|---:|---:|---:|\n", scaleWorkers)
	rows := top(k.creating.requests, 12)
	for _, key := range top(r.idle.requests, 8) {
		if !slices.Contains(rows, key) {
			rows = append(rows, key)
		}
	}
	for _, key := range rows {
		fmt.Fprintf(&s, "| %s | %.0f | %.0f | %.3f |\n", key, k.creating.requests[key], b.creating.requests[key],
			perServerMinute(r.idle.requests[key], p.servers, r.idle.took))
	}
	s.WriteString("\nCrossplane core's requests by verb and resource (audit log, which does not tell a server-side apply from another patch; the top 12 while creating, then the top 8 idle):\n\n")
	s.WriteString("| request | creating | idle, per server per minute |\n|---|---:|---:|\n")
	rows = top(k.creating.core, 12)
	for _, key := range top(r.idle.core, 8) {
		if !slices.Contains(rows, key) {
			rows = append(rows, key)
		}
	}
	for _, key := range rows {
		fmt.Fprintf(&s, "| %s | %.0f | %.3f |\n", key, k.creating.core[key], perServerMinute(r.idle.core[key], p.servers, r.idle.took))
	}
	if len(r.unresponsive) > 0 {
		s.WriteString("\nComposites seen with Responsive≠True:\n\n")
		for _, key := range slices.SortedFunc(maps.Keys(r.unresponsive), func(a, b objKey) int { return strings.Compare(a.String(), b.String()) }) {
			u, when := r.unresponsive[key], "while creating or idle"
			if !u.at.Before(r.idleEnd) {
				when = "while deleting"
				if r.restart != nil {
					when = "after the restart of core or while deleting"
				}
			}
			fmt.Fprintf(&s, "- %s: %s, %s\n", key, u.reason, when)
		}
	}
	return s.String()
}

func verdict(ok bool, target string) string {
	if ok {
		return target + ": met"
	}
	return target + ": **missed**"
}

// top returns the keys of the n largest values, largest first.
func top(m map[string]float64, n int) []string {
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b))
	})
	var out []string
	for _, k := range keys {
		if len(out) == n || m[k] <= 0 {
			break
		}
		out = append(out, k)
	}
	return out
}

// sourceRevision names the commit the function was built from (make e2e
// builds the working tree), and whether the function's sources differed
// from it.
func sourceRevision() string {
	out, err := exec.Command("git", "-C", lab.Root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "an unknown commit"
	}
	rev := "commit " + strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", lab.Root, "status", "--porcelain", "--", "fn", "apis", "input").Output(); err == nil && len(st) > 0 {
		rev += " with uncommitted changes to fn/, apis/ or input/"
	}
	return rev
}

// coreVersion is the version of Crossplane's module the lab runs.
func coreVersion() string {
	_, v, _ := strings.Cut(filepath.Base(lab.xpModuleDir), "@")
	return v
}

func kubeVersion() string {
	v, err := lab.Kube.Typed.Discovery().ServerVersion()
	if err != nil {
		return "unknown"
	}
	return v.GitVersion
}

// heading names a run's configuration; the README keeps the latest run of
// each.
func (r scaleReport) heading() string {
	p := r.params
	return fmt.Sprintf("### %d servers, %d applications, %d projects × %d environments, Crossplane core %s",
		p.servers, p.apps, p.projects, p.envs, coreVersion())
}

// The reports live between these markers of the README, one section per
// configuration (its heading): a run replaces the section of its own
// configuration and keeps the others.
const (
	reportBegin = "<!-- scale-report:begin -->"
	reportEnd   = "<!-- scale-report:end -->"
)

// earlierRow is the report's row of the phase times of earlier runs.
const earlierRow = "(a) / (b) / (c) in earlier runs of this configuration, newest first"

// maxEarlier bounds the earlier runs a report carries.
const maxEarlier = 4

// earlierRuns reads the phase times of the run the README reports under
// heading, and the earlier runs that report carried, so that a table
// shows the spread of repeated runs: "<date>: (a) 46.2 s (9.02×) / …".
func earlierRuns(path, heading string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	_, block, _ := strings.Cut(string(b), reportBegin)
	block, _, _ = strings.Cut(block, reportEnd)
	_, sec, found := strings.Cut(block, heading+"\n")
	if !found {
		return nil, nil
	}
	sec, _, _ = strings.Cut(sec, "\n### ")
	var date string
	phases := map[string]string{}
	var out []string
	for _, line := range strings.Split(sec, "\n") {
		if v, ok := strings.CutPrefix(line, "- run: "); ok {
			date, _, _ = strings.Cut(v, ";")
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			continue
		}
		label := strings.TrimSpace(cells[1])
		switch {
		case label == earlierRow:
			out = strings.Split(strings.TrimSpace(cells[2]), "<br>")
		case strings.HasPrefix(label, "(a) "), strings.HasPrefix(label, "(b) "), strings.HasPrefix(label, "(c) "):
			phases[label[:3]] = fmt.Sprintf("%s (%s)", strings.TrimSpace(cells[2]), strings.TrimSpace(cells[4]))
		}
	}
	if date == "" || len(phases) != 3 {
		return nil, nil
	}
	latest := fmt.Sprintf("%s: %s / %s / %s", date, phases["(a)"], phases["(b)"], phases["(c)"])
	out = append([]string{latest}, out...)
	return out[:min(len(out), maxEarlier)], nil
}

func writeReport(path, heading, table string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	before, rest, ok := strings.Cut(string(b), reportBegin)
	block, after, ok2 := strings.Cut(rest, reportEnd)
	if !ok || !ok2 {
		return fmt.Errorf("%s lacks the markers %s and %s", path, reportBegin, reportEnd)
	}
	var sections []string
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		if strings.HasPrefix(line, "### ") || len(sections) == 0 {
			sections = append(sections, line)
			continue
		}
		sections[len(sections)-1] += "\n" + line
	}
	replaced := false
	for i, sec := range sections {
		sections[i] = strings.TrimSpace(sec)
		if first, _, _ := strings.Cut(sec, "\n"); first == heading {
			sections[i], replaced = strings.TrimSpace(table), true
		}
	}
	if !replaced {
		sections = append(sections, strings.TrimSpace(table))
	}
	return os.WriteFile(path, []byte(before+reportBegin+"\n"+strings.Join(sections, "\n\n")+"\n"+reportEnd+after), 0o644)
}
