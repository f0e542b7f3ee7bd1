//go:build e2e

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// TestFaults kills and restarts the lab's components under a running
// server: the function mid-reconcile, Crossplane core, the API server. Each
// time the server converges, and nothing is deleted or recreated.
func TestFaults(t *testing.T) {
	requireFlavour(t, flavourV2)
	const (
		project = "chaos"
		ns      = "chaos-prod"
		app     = "chaos-app"
	)
	teardown(t, project, ns)
	srv := newServer("chaos-srv", ns, app)

	step(t, "Setup", func(t *testing.T) {
		applyYAML(t, projectYAML(project, env{name: "prod", namespace: ns}))
		waitXRCondition(t, kindProject, "", project, "Ready", "True", "", 90*time.Second)
		environmentSecrets(t, ns)
		applyYAML(t, applicationYAML(app, ns, project))
		waitReady(t, kindApplication, ns, app, 60*time.Second)
		srv.apply(t)
		waitReady(t, kindServer, ns, srv.Name, 90*time.Second)
	})

	step(t, "KillFunctionMidReconcile", func(t *testing.T) {
		before := uidSnapshot(t, project, ns)
		calls := functionCalls(t)
		srv.Spec["replicas"] = int64(2)
		applied := time.Now()
		srv.apply(t)
		// Kill the function as soon as core has called it for this change
		// (its started-calls counter moves), before core applied the result.
		called := false
		for time.Since(applied) < 2*time.Second {
			if functionCalls(t) > calls {
				called = true
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		old, err := lab.stopComponent("function", syscall.SIGKILL, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		t.Logf("function killed %s after the change (a call for it had started: %v)", killed.Sub(applied).Round(time.Millisecond), called)
		time.Sleep(3 * time.Second)
		xr := mustGet(t, apiVersionKalypso, kindServer, ns, srv.Name)
		t.Logf("while the function is down: %s", conditionsSummary(xr))
		if err := lab.startComponent(t.Context(), old); err != nil {
			t.Fatal(err)
		}
		restarted := time.Now()
		waitDeploymentAvailable(t, ns, srv.Name+"-deploy", 2, 120*time.Second)
		waitConverged(t, ns, srv.Name, 2, 60*time.Second)
		measure(t, "function SIGKILLed %s after a change (call started: %v), down %s; server converged (2 replicas, Ready, observedGeneration current) %s after the restart",
			killed.Sub(applied).Round(time.Millisecond), called, restarted.Sub(killed).Round(100*time.Millisecond), time.Since(restarted).Round(100*time.Millisecond))
		// Two replicas bring a PodDisruptionBudget.
		assertSameObjects(t, before, uidSnapshot(t, project, ns), true, "PodDisruptionBudget "+ns+"/"+srv.Name+"-pdb")
	})

	step(t, "RestartCore", func(t *testing.T) {
		before := uidSnapshot(t, project, ns)
		calls := functionCalls(t)
		old, err := lab.stopComponent("crossplane-core", syscall.SIGTERM, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		time.Sleep(2 * time.Second)
		if err := lab.startComponent(t.Context(), old); err != nil {
			t.Fatal(err)
		}
		up := time.Now()
		// Core reconciles every composite once its informers are synced:
		// wait for a function call per composite, then a little more.
		xrs := countComposites(t)
		if xrs == 0 {
			t.Fatal("no composites")
		}
		waitFor(t, fmt.Sprintf("core called the function for the %d composites again", xrs), 60*time.Second, func() (bool, string, error) {
			n := functionCalls(t) - calls
			return n >= xrs, fmt.Sprintf("%d calls", n), nil
		})
		reconciled := time.Now()
		time.Sleep(5 * time.Second)
		measure(t, "Crossplane core down %s, first %d function calls %s after it was up again",
			up.Sub(stopped).Round(100*time.Millisecond), xrs, reconciled.Sub(up).Round(100*time.Millisecond))
		// The project may compose its ClusterUsage now if it had not
		// noticed its application yet (it does at its next reconcile).
		assertSameObjects(t, before, uidSnapshot(t, project, ns), false, "ClusterUsage kalypsoproject-"+project)
		waitConverged(t, ns, srv.Name, 2, 30*time.Second)
	})

	step(t, "RestartAPIServer", func(t *testing.T) {
		before := uidSnapshot(t, project, ns)
		old, err := lab.stopComponent("kube-apiserver", syscall.SIGTERM, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		time.Sleep(2 * time.Second)
		if err := lab.startComponent(t.Context(), old); err != nil {
			t.Fatal(err)
		}
		up := time.Now()
		// A change made right after the restart converges.
		srv.Spec["replicas"] = int64(1)
		srv.apply(t)
		waitDeploymentAvailable(t, ns, srv.Name+"-deploy", 1, 120*time.Second)
		waitConverged(t, ns, srv.Name, 1, 60*time.Second)
		measure(t, "kube-apiserver down %s (SIGTERM, restart on the same port); a replicas change applied once it was ready converged %s later",
			up.Sub(stopped).Round(100*time.Millisecond), time.Since(up).Round(100*time.Millisecond))
		// Back to one replica: no PodDisruptionBudget.
		assertSameObjects(t, before, uidSnapshot(t, project, ns), true, "PodDisruptionBudget "+ns+"/"+srv.Name+"-pdb", "ClusterUsage kalypsoproject-"+project)
		// The Usage webhook still answers through the restarted API server.
		if err := lab.Kube.del(t.Context(), apiVersionKalypso, kindApplication, ns, app); err == nil {
			t.Errorf("application %s was deleted under its server after the restarts", app)
		} else if !strings.Contains(strings.ToLower(err.Error()), "usage") {
			t.Errorf("application delete refused for the wrong reason: %v", err)
		}
		for _, kind := range []string{kindProject, kindApplication, kindServer} {
			items, err := lab.Kube.list(t.Context(), apiVersionKalypso, kind, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				if c := getCondition(&it, "Ready"); c.Status != "True" {
					t.Errorf("%s %s is not Ready after the restarts: %s", kind, nsName(it.GetNamespace(), it.GetName()), conditionsSummary(&it))
				}
			}
		}
	})

	step(t, "Delete", func(t *testing.T) {
		mustDelete(t, apiVersionKalypso, kindServer, ns, srv.Name)
		waitGone(t, apiVersionKalypso, kindServer, ns, srv.Name, 60*time.Second)
		if _, _, err := deleteEventually(t.Context(), apiVersionKalypso, kindApplication, ns, app, 120*time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

// functionCalls is the number of RunFunction calls the running function has
// started (its grpc_server_started_total).
func functionCalls(t testing.TB) int {
	t.Helper()
	s, err := scrape(lab.FunctionMetrics)
	if err != nil {
		t.Fatalf("function metrics: %v", err)
	}
	n, _ := sum(s, "grpc_server_started_total", `grpc_method="RunFunction"`)
	return int(n)
}

// countComposites counts the Kalypso composites in the lab that core runs
// the function for: those not being deleted.
func countComposites(t testing.TB) int {
	t.Helper()
	n := 0
	for _, kind := range []string{kindProject, kindApplication, kindServer} {
		items, err := lab.Kube.list(t.Context(), apiVersionKalypso, kind, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.GetDeletionTimestamp() == nil {
				n++
			}
		}
	}
	return n
}

// waitConverged waits until a server reports the replicas, is Ready and has
// observed its current generation.
func waitConverged(t testing.TB, ns, name string, replicas int64, timeout time.Duration) {
	t.Helper()
	waitFor(t, fmt.Sprintf("server %s/%s converged on %d replicas", ns, name, replicas), timeout, func() (bool, string, error) {
		xr, err := lab.Kube.get(t.Context(), apiVersionKalypso, kindServer, ns, name)
		if err != nil || xr == nil {
			return false, "absent", err
		}
		gen, observed := xr.GetGeneration(), integer(xr, "status", "observedGeneration")
		avail := integer(xr, "status", "availableReplicas")
		ready := getCondition(xr, "Ready").Status == "True"
		return ready && avail == replicas && observed == gen,
			fmt.Sprintf("generation %d observed %d availableReplicas %d: %s", gen, observed, avail, conditionsSummary(xr)), nil
	})
}

// assertSameObjects fails when an object of the first snapshot is gone or
// was recreated (new UID), or a new object appeared, except the objects
// named in expected ("Kind ns/name"), which the step itself adds or
// removes. Pods are left out when podsMayChange.
func assertSameObjects(t testing.TB, before, after map[string]types.UID, podsMayChange bool, expected ...string) {
	t.Helper()
	if podsMayChange {
		for _, m := range []map[string]types.UID{before, after} {
			for k := range m {
				if strings.HasPrefix(k, "Pod ") {
					delete(m, k)
				}
			}
		}
	}
	gone, recreated, created := compareSnapshots(before, after)
	unexpected := func(keys []string) []string {
		var out []string
		for _, k := range keys {
			if !slices.Contains(expected, k) {
				out = append(out, k)
			}
		}
		return out
	}
	gone, created = unexpected(gone), unexpected(created)
	if len(gone)+len(recreated)+len(created) > 0 {
		t.Errorf("objects changed identity: deleted %v, recreated (new UID) %v, created %v", gone, recreated, created)
		return
	}
	t.Logf("all %d objects kept their UIDs (expected changes: %v)", len(before), expected)
}
