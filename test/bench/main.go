// Command bench reads `go test -bench` output of fn/bench_test.go on stdin
// and prints a table: RunFunction beside its protobuf floor (unmarshal of
// the request, marshal of the response) with their ratio, then the marginal
// cost per unit of every scaling series (cases <Series>1, <Series>3,
// <Series>50): (t50 − t3)/47 against (t3 − t1)/2, and the targets.
// With -count > 1 the fastest run of each benchmark is kept.
//
//	go test -run '^$' -bench . -benchmem ./fn/ | go run ./test/bench
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// metrics of one benchmark line: unit → value.
type metrics map[string]float64

type caseResult struct {
	kind, name string
	sub        map[string]metrics // RunFunction, Floor, Pair
}

const cpuUnit = "cpu-ns/op"

var (
	lineRE   = regexp.MustCompile(`^Benchmark([^/\s]+)/([^/\s]+)/([^\s-]+)(?:-\d+)?\s+(\d+)\s+(.*)$`)
	seriesRE = regexp.MustCompile(`^([A-Za-z]+?)(\d+)$`)
)

func main() {
	ratioMax := flag.Float64("max-ratio", 2, "target: RunFunction/floor of the TritonServer steady state at most this")
	linMax := flag.Float64("max-growth", 1.5, "target: marginal cost per unit from 3 to 50 at most this times the one from 1 to 3")
	flag.Parse()
	results, order, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if len(order) == 0 {
		fmt.Fprintln(os.Stderr, "bench: no Benchmark<Kind>/<case>/<sub> lines on stdin")
		os.Exit(1)
	}
	table(os.Stdout, results, order)
	fmt.Println()
	marginals(os.Stdout, results, order, *linMax)
	fmt.Println()
	paired(os.Stdout, results, order, *linMax)
	fmt.Println()
	targets(os.Stdout, results, *ratioMax)
}

func parse(r io.Reader) (map[string]*caseResult, []string, error) {
	results := map[string]*caseResult{}
	var order []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		kind, name, sub := m[1], m[2], m[3]
		fields := strings.Fields(m[5])
		got := metrics{}
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, nil, fmt.Errorf("%q: %w", sc.Text(), err)
			}
			got[fields[i+1]] = v
		}
		key := kind + "/" + name
		c, ok := results[key]
		if !ok {
			c = &caseResult{kind: kind, name: name, sub: map[string]metrics{}}
			results[key] = c
			order = append(order, key)
		}
		// Keep the fastest of repeated runs (-count > 1).
		by := cpuUnit
		if _, ok := got[by]; !ok {
			by = "ns/op"
		}
		if prev, ok := c.sub[sub]; !ok || got[by] < prev[by] {
			c.sub[sub] = got
		}
	}
	return results, order, sc.Err()
}

func table(w io.Writer, results map[string]*caseResult, order []string) {
	fmt.Fprintln(w, "RunFunction against its floor (proto.Unmarshal of the request + proto.Marshal of the response), same run")
	fmt.Fprintf(w, "%-34s %10s %10s %9s %8s | %10s %10s %9s %8s | %6s %6s | %7s %4s %4s\n",
		"case", "fn wall ns", "fn cpu ns", "fn B/op", "allocs", "fl wall ns", "fl cpu ns", "fl B/op", "allocs", "ratio", "paired", "req B", "obs", "des")
	fmt.Fprintln(w, strings.Repeat("-", 146))
	for _, key := range order {
		c := results[key]
		if c.kind == "Growth" {
			continue
		}
		f, fl, p := c.sub["RunFunction"], c.sub["Floor"], c.sub["Pair"]
		fmt.Fprintf(w, "%-34s %10s %10s %9s %8s | %10s %10s %9s %8s | %6s %6s | %7s %4s %4s\n", key,
			num(f, "ns/op"), num(f, cpuUnit), num(f, "B/op"), num(f, "allocs/op"),
			num(fl, "ns/op"), num(fl, cpuUnit), num(fl, "B/op"), num(fl, "allocs/op"),
			ratio(f[cpuUnit], fl[cpuUnit]), fixed(p, "fn/floor"),
			num(fl, "req-B"), num(fl, "observed"), num(fl, "desired"))
	}
	fmt.Fprintln(w, "cpu ns = process CPU time per op (GC included; not inflated by other processes as wall ns is);")
	fmt.Fprintln(w, "ratio = fn cpu ÷ floor cpu of the separate runs; paired = the same with both alternated in one loop")
}

// seriesCases groups the cases <Series><N> of each kind by series.
type seriesKey struct{ kind, prefix string }

func seriesCases(results map[string]*caseResult, order []string) (map[seriesKey]map[int]*caseResult, []seriesKey) {
	found := map[seriesKey]map[int]*caseResult{}
	var names []seriesKey
	for _, key := range order {
		c := results[key]
		if c.kind == "Growth" {
			continue
		}
		m := seriesRE.FindStringSubmatch(c.name)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		s := seriesKey{c.kind, m[1]}
		if found[s] == nil {
			found[s] = map[int]*caseResult{}
			names = append(names, s)
		}
		found[s][n] = c
	}
	return found, names
}

// resolvable reports whether 1 → 3 units adds enough work to be told from
// noise in CPU time: at least 10% more allocations, which do not depend on
// the machine's load.
func resolvable(c1, c3 *caseResult) bool {
	a1, a3 := c1.sub["RunFunction"]["allocs/op"], c3.sub["RunFunction"]["allocs/op"]
	return a1 > 0 && a3-a1 >= 0.10*a1
}

func growthVerdict(resolved bool, growth, limit float64) string {
	switch {
	case !resolved:
		return "  unresolved: 1 → 3 units adds < 10% work, within CPU noise; judge by allocs"
	case growth <= limit:
		return fmt.Sprintf("  ok (≤ %.1f)", limit)
	}
	return fmt.Sprintf("  OVER %.1f", limit)
}

// marginals prints, per series, the cost added per unit from 1 to 3 and
// from 3 to 50.
func marginals(w io.Writer, results map[string]*caseResult, order []string, linMax float64) {
	found, names := seriesCases(results, order)
	fmt.Fprintln(w, "Marginal cost per unit: small = (t3 − t1)/2, large = (t50 − t3)/47; growth = large ÷ small (linear ≈ 1)")
	fmt.Fprintf(w, "%-30s %-10s %11s %11s %7s | %11s %11s %7s\n", "series", "metric", "fn small", "fn large", "growth", "fl small", "fl large", "growth")
	fmt.Fprintln(w, strings.Repeat("-", 112))
	for _, s := range names {
		c1, c3, c50 := found[s][1], found[s][3], found[s][50]
		if c1 == nil || c3 == nil || c50 == nil {
			continue
		}
		for _, unit := range []string{cpuUnit, "B/op", "allocs/op"} {
			fs, fL := marg(c1, c3, c50, "RunFunction", unit)
			ls, lL := marg(c1, c3, c50, "Floor", unit)
			verdict := ""
			if unit == cpuUnit {
				verdict = growthVerdict(resolvable(c1, c3), fL/fs, linMax)
			}
			fmt.Fprintf(w, "%-30s %-10s %11.0f %11.0f %7.2f | %11.0f %11.0f %7.2f%s\n",
				s.kind+"/"+s.prefix+" per unit", unit, fs, fL, fL/fs, ls, lL, lL/ls, verdict)
		}
	}
}

// paired prints the growth benchmarks, which time 1, 3 and 50 units in
// the same loop.
func paired(w io.Writer, results map[string]*caseResult, order []string, linMax float64) {
	found, names := seriesCases(results, order)
	fmt.Fprintln(w, "Growth measured paired (1, 3 and 50 units alternated in one loop, thread CPU): CPU ns per call and marginal CPU ns per unit")
	fmt.Fprintln(w, "(fn 1→50 = (t50 − t1)/49, the per-unit cost over the whole range, resolvable even when 1 → 3 is not)")
	fmt.Fprintf(w, "%-20s %10s %10s %10s %10s %10s %10s %7s | %10s %10s %7s\n", "series", "fn t1", "fn t3", "fn t50", "fn 1→50", "fn small", "fn large", "growth", "fl small", "fl large", "growth")
	fmt.Fprintln(w, strings.Repeat("-", 133))
	for _, key := range order {
		c := results[key]
		p, ok := c.sub["Paired"]
		if c.kind != "Growth" || !ok {
			continue
		}
		fs, fL := (p["fn3-cpu-ns"]-p["fn1-cpu-ns"])/2, (p["fn50-cpu-ns"]-p["fn3-cpu-ns"])/47
		ls, lL := (p["floor3-cpu-ns"]-p["floor1-cpu-ns"])/2, (p["floor50-cpu-ns"]-p["floor3-cpu-ns"])/47
		resolved := true
		for _, s := range names {
			if s.kind+s.prefix == c.name && found[s][1] != nil && found[s][3] != nil {
				resolved = resolvable(found[s][1], found[s][3])
			}
		}
		fmt.Fprintf(w, "%-20s %10.0f %10.0f %10.0f %10.0f %10.0f %10.0f %7.2f | %10.0f %10.0f %7.2f%s\n", c.name,
			p["fn1-cpu-ns"], p["fn3-cpu-ns"], p["fn50-cpu-ns"], (p["fn50-cpu-ns"]-p["fn1-cpu-ns"])/49, fs, fL, fL/fs, ls, lL, lL/ls, growthVerdict(resolved, fL/fs, linMax))
	}
}

func marg(c1, c3, c50 *caseResult, sub, unit string) (small, large float64) {
	t1, t3, t50 := c1.sub[sub][unit], c3.sub[sub][unit], c50.sub[sub][unit]
	return (t3 - t1) / 2, (t50 - t3) / 47
}

func targets(w io.Writer, results map[string]*caseResult, ratioMax float64) {
	c, ok := results["TritonServer/AddSubServerStage"]
	if !ok {
		return
	}
	r := c.sub["RunFunction"][cpuUnit] / c.sub["Floor"][cpuUnit]
	p := c.sub["Pair"]["fn/floor"]
	v := "ok"
	if math.Max(r, p) > ratioMax && math.Min(r, p) > ratioMax {
		v = "MISSED"
	} else if math.Max(r, p) > ratioMax {
		v = "ok by one measure only (noise)"
	}
	fmt.Fprintf(w, "Target TritonServer RunFunction ≤ %.1f× floor: ratio %.2f, paired %.2f → %s\n", ratioMax, r, p, v)
}

func num(m metrics, unit string) string {
	v, ok := m[unit]
	if !ok {
		return "-"
	}
	if v >= 100 || v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func fixed(m metrics, unit string) string {
	v, ok := m[unit]
	if !ok {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64)
}
