//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// TestProjectRenameUpgrade: v0.1.0 named the objects inside every
// environment namespace alike (<project>-quota, <project>-allow-ingress…).
// Crossplane v2.2.1 sorts a composite's resourceRefs by apiVersion, kind and
// name only (composition_functions.go UpdateResourceRefs), so such a project
// rewrites its spec at random on every reconcile, which reconciles it
// again: its generation climbs until core's circuit breaker opens (v2.3
// sorts by namespace too, crossplane/crossplane#7341). This release names
// them <project>-<env>-…; a project made by v0.1.0 gets the new objects
// first and loses the old ones only once they all exist, so no namespace is
// ever without its quota, NetworkPolicies or RoleBindings, and nothing else
// is replaced.
func TestProjectRenameUpgrade(t *testing.T) {
	requireFlavour(t, flavourV2)
	const project, app, srv = "renamed", "renamed-app", "renamed-srv"
	namespaces := map[string]string{"dev": "renamed-dev", "prod": "renamed-prod"}
	nsList := slices.Sorted(maps.Values(namespaces))
	previous, err := previousFunction()
	if err != nil {
		t.Fatal(err)
	}
	teardown(t, project, nsList...)
	t.Cleanup(func() {
		if err := lab.useFunction(t.Context(), lab.bins.Function); err != nil {
			t.Errorf("restoring the current function: %v", err)
		}
	})
	projectYAML := fmt.Sprintf(`apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoProject
metadata: {name: %s}
spec:
  owner: e2e
  access: {editors: [{kind: User, name: erin}]}
  environments:
    dev: {namespace: %s, resourceQuota: {requests: {nvidia.com/gpu: "2"}}}
    prod: {namespace: %s, resourceQuota: {requests: {nvidia.com/gpu: "2"}}}
`, project, namespaces["dev"], namespaces["prod"])
	var before map[string]types.UID

	step(t, "CreatedByPreviousRelease", func(t *testing.T) {
		if err := lab.useFunction(t.Context(), previous); err != nil {
			t.Fatal(err)
		}
		applyYAML(t, projectYAML)
		waitReady(t, kindProject, "", project, 90*time.Second)
		for _, ns := range nsList {
			q := mustGet(t, "v1", "ResourceQuota", ns, project+"-quota")
			measure(t, "v0.1.0 composed ResourceQuota %s/%s", ns, q.GetName())
		}
		ns := namespaces["dev"]
		applyYAML(t, apiKeySecretYAML(ns))
		applyYAML(t, storageSecretYAML(ns))
		applyYAML(t, applicationYAML(app, ns, project))
		newServer(srv, ns, app).apply(t)
		waitReady(t, kindServer, ns, srv, 120*time.Second)
		climbed := generationClimb(t, project, 20*time.Second)
		measure(t, "v0.1.0, Crossplane core %s: the project's generation advanced by %d in 20 s without a spec change", os.Getenv("E2E_CROSSPLANE_VERSION"), climbed)
		before = uidSnapshot(t, project, nsList...)
	})

	step(t, "UpgradedWithoutGaps", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		gaps := watchGuardRails(ctx, project, nsList)
		start := time.Now()
		if err := lab.useFunction(t.Context(), lab.bins.Function); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "v0.1.0's objects replaced in "+strings.Join(nsList, ", "), 120*time.Second, func() (bool, string, error) {
			for env, ns := range namespaces {
				old, err := lab.Kube.get(t.Context(), "v1", "ResourceQuota", ns, project+"-quota")
				if err != nil || old != nil {
					return false, "v0.1.0's quota still in " + ns, err
				}
				name := project + "-" + env + "-quota"
				renamed, err := lab.Kube.get(t.Context(), "v1", "ResourceQuota", ns, name)
				if err != nil || renamed == nil {
					return false, "no quota " + name + " yet", err
				}
			}
			return true, "", nil
		})
		measure(t, "v0.1.0's objects replaced %s after the upgrade", time.Since(start).Round(100*time.Millisecond))
		// A few more samples after the old objects went.
		time.Sleep(2 * time.Second)
		cancel()
		if g := gaps(); len(g) > 0 {
			t.Errorf("a namespace was without one of its guard rails during the rename:\n%s", strings.Join(g, "\n"))
		}
		after := uidSnapshot(t, project, nsList...)
		gone, recreated, _ := compareSnapshots(before, after)
		if len(recreated) > 0 {
			t.Errorf("replaced by the upgrade (new UID): %v", recreated)
		}
		for _, k := range gone {
			kind := strings.Fields(k)[0]
			if !slices.Contains([]string{"ResourceQuota", "NetworkPolicy", "RoleBinding", "LimitRange"}, kind) {
				t.Errorf("deleted by the upgrade: %s", k)
			}
		}
		measure(t, "the rename replaced %d objects; %d kept their UIDs (namespaces, application, server, Deployment among them)", len(gone), len(before)-len(gone))
	})

	step(t, "GenerationSettles", func(t *testing.T) {
		waitReady(t, kindProject, "", project, 90*time.Second)
		if climbed := generationClimb(t, project, 30*time.Second); climbed > 0 {
			t.Errorf("the project's generation advanced by %d in 30 s without a spec change: its resourceRefs still change at every reconcile", climbed)
		}
	})
}

// generationClimb is how far the project's generation moves in d.
func generationClimb(t *testing.T, project string, d time.Duration) int64 {
	t.Helper()
	first := mustGet(t, apiVersionKalypso, kindProject, "", project).GetGeneration()
	time.Sleep(d)
	return mustGet(t, apiVersionKalypso, kindProject, "", project).GetGeneration() - first
}

// watchGuardRails samples every 100 ms, until ctx ends, that each namespace
// holds an enforced ResourceQuota (admission checks only what status.hard
// lists), a default-deny and an allow NetworkPolicy and the editors'
// RoleBinding of the project, whatever their names. It returns a
// function listing the samples that missed one.
func watchGuardRails(ctx context.Context, project string, namespaces []string) func() []string {
	var mu sync.Mutex
	var gaps []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for _, ns := range namespaces {
				if missing := missingGuardRails(ctx, project, ns); len(missing) > 0 && ctx.Err() == nil {
					mu.Lock()
					gaps = append(gaps, fmt.Sprintf("%s %s: no %s", time.Now().Format("15:04:05.000"), ns, strings.Join(missing, ", ")))
					mu.Unlock()
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return func() []string {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return gaps
	}
}

func missingGuardRails(ctx context.Context, project, ns string) []string {
	var missing []string
	count := func(apiVersion, kind string, match func(map[string]any) bool) int {
		items, err := lab.Kube.list(ctx, apiVersion, kind, ns)
		if err != nil {
			return -1 // a failed list is no evidence of a gap
		}
		n := 0
		for _, o := range items {
			if o.GetLabels()["kalypso-serving.io/project"] == project && match(o.Object) {
				n++
			}
		}
		return n
	}
	enforced := func(o map[string]any) bool {
		status, _ := o["status"].(map[string]any)
		hard, _ := status["hard"].(map[string]any)
		_, ok := hard["requests.nvidia.com/gpu"]
		return ok
	}
	deny := func(o map[string]any) bool {
		spec, _ := o["spec"].(map[string]any)
		_, hasIngress := spec["ingress"]
		return !hasIngress
	}
	editors := func(o map[string]any) bool {
		ref, _ := o["roleRef"].(map[string]any)
		return ref["name"] == "edit"
	}
	for what, n := range map[string]int{
		"enforced ResourceQuota":     count("v1", "ResourceQuota", enforced),
		"default-deny NetworkPolicy": count("networking.k8s.io/v1", "NetworkPolicy", deny),
		"allow NetworkPolicy":        count("networking.k8s.io/v1", "NetworkPolicy", func(o map[string]any) bool { return !deny(o) }),
		"editors' RoleBinding":       count("rbac.authorization.k8s.io/v1", "RoleBinding", editors),
	} {
		if n == 0 {
			missing = append(missing, what)
		}
	}
	slices.Sort(missing)
	return missing
}
