//go:build e2e

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// scaleServers is how many servers TestScale runs at once.
const scaleServers = 50

// TestScale runs 50 servers across two applications at once and measures
// the wall time until every one is Ready, and the function's share of it.
func TestScale(t *testing.T) {
	requireFlavour(t, flavourV2)
	const (
		project = "fleet"
		ns      = "fleet-prod"
	)
	apps := []string{"fleet-a", "fleet-b"}
	teardown(t, project, ns)

	step(t, "Setup", func(t *testing.T) {
		// Measure on a quiet lab: earlier scenarios' projects are still
		// being deleted in the background.
		start := time.Now()
		waitBackground(3 * time.Minute)
		t.Logf("earlier clean-ups done after %s", time.Since(start).Round(100*time.Millisecond))
		applyYAML(t, projectYAML(project, env{name: "prod", namespace: ns}))
		waitXRCondition(t, kindProject, "", project, "Ready", "True", "", 90*time.Second)
		environmentSecrets(t, ns)
		for _, a := range apps {
			applyYAML(t, applicationYAML(a, ns, project))
		}
		for _, a := range apps {
			waitReady(t, kindApplication, ns, a, 60*time.Second)
		}
	})

	var names []string
	step(t, "FiftyServersReady", func(t *testing.T) {
		fnBefore, err := scrape(lab.FunctionMetrics)
		if err != nil {
			t.Fatal(err)
		}
		coreBefore, err := scrape(lab.CoreMetrics)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for i := range scaleServers {
			app := apps[i%len(apps)]
			s := newServer(fmt.Sprintf("%s-%02d", app, i/len(apps)), ns, app)
			s.apply(t)
			names = append(names, s.Name)
		}
		appliedIn := time.Since(start)
		readyAt := map[string]time.Duration{}
		waitFor(t, fmt.Sprintf("%d servers Ready", scaleServers), 5*time.Minute, func() (bool, string, error) {
			items, err := lab.Kube.list(t.Context(), apiVersionKalypso, kindServer, ns)
			if err != nil {
				return false, "", err
			}
			for _, it := range items {
				if _, ok := readyAt[it.GetName()]; !ok && getCondition(&it, "Ready").Status == "True" {
					readyAt[it.GetName()] = time.Since(start)
				}
			}
			return len(readyAt) == scaleServers, fmt.Sprintf("%d/%d Ready", len(readyAt), scaleServers), nil
		})
		wall := time.Since(start)
		fnAfter, err := scrape(lab.FunctionMetrics)
		if err != nil {
			t.Fatal(err)
		}
		coreAfter, err := scrape(lab.CoreMetrics)
		if err != nil {
			t.Fatal(err)
		}

		lat := make([]time.Duration, 0, len(readyAt))
		for _, d := range readyAt {
			lat = append(lat, d)
		}
		slices.Sort(lat)
		pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(10 * time.Millisecond) }
		measure(t, "%d servers (applied in %s) all Ready %s after the first apply; per server Ready after p50 %s, p90 %s, max %s",
			scaleServers, appliedIn.Round(10*time.Millisecond), wall.Round(10*time.Millisecond), pct(0.5), pct(0.9), pct(1))

		delta := func(before, after []sample, name string, parts ...string) (float64, bool) {
			a, ok := sum(after, name, parts...)
			b, _ := sum(before, name, parts...)
			return a - b, ok
		}
		calls, _ := delta(fnBefore, fnAfter, "grpc_server_handled_total", `grpc_method="RunFunction"`)
		coreSum, okSum := delta(coreBefore, coreAfter, "function_run_function_seconds_sum", `function_name="`+functionName+`"`)
		coreCount, _ := delta(coreBefore, coreAfter, "function_run_function_seconds_count", `function_name="`+functionName+`"`)
		if okSum && coreCount > 0 {
			measure(t, "as core sees it (function_run_function_seconds, gRPC over mTLS included): %.0f RunFunction calls (%.1f per server), %.3f s in total, %.2f ms each on average: %.1f%% of the %s wall time",
				coreCount, coreCount/scaleServers, coreSum, 1000*coreSum/coreCount, 100*coreSum/wall.Seconds(), wall.Round(10*time.Millisecond))
		} else {
			softErrorf(t, "Crossplane core's metrics endpoint has no function_run_function_seconds for %s", functionName)
		}
		fnSum, okFnSum := delta(fnBefore, fnAfter, "grpc_server_handling_seconds_sum", `grpc_method="RunFunction"`)
		fnCount, _ := delta(fnBefore, fnAfter, "grpc_server_handling_seconds_count", `grpc_method="RunFunction"`)
		switch {
		case okFnSum && fnCount > 0:
			measure(t, "as the function sees it (grpc_server_handling_seconds): %.0f RunFunction calls, %.3f s in total, %.2f ms each on average: %.1f%% of the %s wall time",
				fnCount, fnSum, 1000*fnSum/fnCount, 100*fnSum/wall.Seconds(), wall.Round(10*time.Millisecond))
		default:
			var grpcNames []string
			for _, n := range metricNames(fnAfter) {
				if strings.HasPrefix(n, "grpc_server_") {
					grpcNames = append(grpcNames, n)
				}
			}
			measure(t, "the function handled %.0f RunFunction calls (grpc_server_handled_total) but reports no handling time", calls)
			softErrorf(t, "the function's metrics endpoint (--metrics-address) serves no grpc_server_handling_seconds histogram, only %v: "+
				"fn/cmd/function/main.go calls function.Serve(..., function.WithMetricsServer(addr)) without "+
				"function.WithMetricsServerOpts(grpcprometheus.WithServerHandlingTimeHistogram()) "+
				"(grpcprometheus = github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus, as function-sdk-go v0.7.1 uses), "+
				"so the function's own time per RunFunction cannot be read from it (core's function_run_function_seconds is reported above instead)", grpcNames)
		}
	})

	step(t, "ApplicationCounts", func(t *testing.T) {
		per := int64(scaleServers / len(apps))
		start := time.Now()
		for _, a := range apps {
			waitFor(t, fmt.Sprintf("%s counts %d Ready servers", a, per), 45*time.Second, func() (bool, string, error) {
				u, err := lab.Kube.get(t.Context(), apiVersionKalypso, kindApplication, ns, a)
				if err != nil || u == nil {
					return false, "absent", err
				}
				act, ready := integer(u, "status", "activeModels"), integer(u, "status", "readyModels")
				return act == per && ready == per, fmt.Sprintf("activeModels %d readyModels %d", act, ready), nil
			})
		}
		measure(t, "both applications counted their %d Ready servers %s after all were Ready", per, time.Since(start).Round(100*time.Millisecond))
	})

	step(t, "DeleteAll", func(t *testing.T) {
		start := time.Now()
		for _, n := range names {
			mustDelete(t, apiVersionKalypso, kindServer, ns, n)
		}
		waitFor(t, "every server, Deployment and pod of "+ns+" gone", 3*time.Minute, func() (bool, string, error) {
			xrs, err := lab.Kube.list(t.Context(), apiVersionKalypso, kindServer, ns)
			if err != nil {
				return false, "", err
			}
			deps, err := lab.Kube.list(t.Context(), "apps/v1", "Deployment", ns)
			if err != nil {
				return false, "", err
			}
			pods, err := lab.Kube.list(t.Context(), "v1", "Pod", ns)
			if err != nil {
				return false, "", err
			}
			return len(xrs)+len(deps)+len(pods) == 0, fmt.Sprintf("%d servers, %d Deployments, %d pods left", len(xrs), len(deps), len(pods)), nil
		})
		measure(t, "%d servers and everything they composed gone %s after their deletes", scaleServers, time.Since(start).Round(100*time.Millisecond))
		for _, a := range apps {
			if _, _, err := deleteEventually(t.Context(), apiVersionKalypso, kindApplication, ns, a, 60*time.Second); err != nil {
				t.Fatal(err)
			}
		}
	})
}
