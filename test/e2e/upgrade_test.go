//go:build e2e

package e2e

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// TestUsageUpgrade: under the last release a server's Usage names the server
// in spec.by, and a foreground delete of the server waits forever (shown
// here with stuck-srv: the Usage waits for its `by`, the server for the
// Usage it owns with blockOwnerDeletion). A server created by that release
// is converted in place when the current function takes over: the same
// Usage object loses spec.by (server-side apply drops a field its manager
// no longer sends) and gains a reason; a foreground delete of it then
// completes. A delete already stuck is not reconciled by Crossplane any
// more (composite/reconciler.go only removes the finalizer of a deleting
// XR), so it needs the README's manual step: patch its Usage reason-only.
func TestUsageUpgrade(t *testing.T) {
	requireFlavour(t, flavourV2, flavourClaims)
	const (
		project, ns = "upgrade", "upgrade-dev"
		app, srv    = "legacy", "legacy-srv"
		stuck       = "stuck-srv"
	)
	previous, err := previousFunction()
	if err != nil {
		t.Fatal(err)
	}
	teardown(t, project, ns)
	usageKind, usageNS, usageName := "Usage", ns, srv+"-uses-application"
	if lab.Flavour == flavourClaims {
		usageKind, usageNS, usageName = "ClusterUsage", "", srv+"-uses-application-"+ns
	}
	// Whatever happens, the lab goes on with the current function.
	t.Cleanup(func() {
		if err := lab.useFunction(t.Context(), lab.bins.Function); err != nil {
			t.Errorf("restoring the current function: %v", err)
		}
	})
	var uid string
	var erin *kube

	step(t, "CreatedByPreviousRelease", func(t *testing.T) {
		// The project too: switching a project made by this release back
		// to v0.1.0 would swap its RoleBindings for v0.1.0's names, and
		// erin would lose access while the authorizer catches up.
		if err := lab.useFunction(t.Context(), previous); err != nil {
			t.Fatal(err)
		}
		erin = tenantEnvironment(t, project, ns, "erin")
		if err := erin.create(t.Context(), applicationYAML(app, ns, project)); err != nil {
			t.Fatal(err)
		}
		waitReady(t, kindApplication, ns, app, 60*time.Second)
		for _, name := range []string{srv, stuck} {
			s := newServer(name, ns, app)
			if lab.Flavour == flavourClaims {
				// The claim's composite is deleted in the foreground.
				s.Spec["compositeDeletePolicy"] = "Foreground"
			}
			if _, err := erin.apply(t.Context(), s.object()); err != nil {
				t.Fatal(err)
			}
		}
		waitReady(t, kindServer, ns, srv, 90*time.Second)
		waitReady(t, kindServer, ns, stuck, 90*time.Second)
		u := waitExists(t, apiVersionProtection, usageKind, usageNS, usageName, 30*time.Second)
		if by := str(u, "spec", "by", "resourceRef", "name"); by == "" {
			t.Fatalf("%s %s made by release %s has no spec.by: this is not the old behaviour the upgrade must convert", usageKind, usageName, "v0.1.0")
		}
		uid = string(u.GetUID())
	})

	step(t, "PreviousReleaseForegroundDeleteHangs", func(t *testing.T) {
		if err := erin.delWith(t.Context(), apiVersionKalypso, kindServer, ns, stuck, metav1.DeletePropagationForeground); err != nil {
			t.Fatal(err)
		}
		// Twice the Usage controller's 30 s wait poll, and the 60 s the
		// issue allows a foreground delete.
		time.Sleep(65 * time.Second)
		s, err := lab.Kube.get(t.Context(), apiVersionKalypso, kindServer, ns, stuck)
		if err != nil || s == nil {
			t.Fatalf("v0.1.0's foreground delete of %s completed (%v): the hang this release fixes was not reproduced", stuck, err)
		}
		measure(t, "v0.1.0: foreground delete of %s still pending after 65 s (finalizers %v)", stuck, s.GetFinalizers())
	})

	step(t, "ConvertedInPlace", func(t *testing.T) {
		start := time.Now()
		if err := lab.useFunction(t.Context(), lab.bins.Function); err != nil {
			t.Fatal(err)
		}
		waitFor(t, usageKind+" "+usageName+" converted to reason-only", 90*time.Second, func() (bool, string, error) {
			u, err := lab.Kube.get(t.Context(), apiVersionProtection, usageKind, usageNS, usageName)
			if err != nil {
				return false, "", err
			}
			if u == nil {
				// Dropped once the application protects itself, which the
				// server does only after composing it reason-only: one
				// that still named the server would wait for it, being
				// deleted, and never be gone.
				return true, "gone", nil
			}
			if string(u.GetUID()) != uid {
				t.Fatalf("%s %s was replaced (uid %s, was %s): it must be converted in place", usageKind, usageName, u.GetUID(), uid)
			}
			by, reason := str(u, "spec", "by", "resourceRef", "name"), str(u, "spec", "reason")
			return by == "" && reason != "", "by " + by + ", reason " + reason, nil
		})
		measure(t, "%s of a v0.1.0 server converted in place %s after the upgrade", usageKind, time.Since(start).Round(100*time.Millisecond))
		// Ready again within a minute: this release's pod template differs
		// from v0.1.0's (preStop, HOME, --exit-timeout-secs, …), so the
		// server's first call by it, at its poll up to a minute after the
		// upgrade, rolls the Deployment once (seen in CI on core v2.3.4:
		// a new ReplicaSet 62 s after the upgrade, Ready=False for 1.3 s).
		if c := getXRCondition(t, kindServer, ns, srv, "Ready"); c.Status != "True" {
			t.Logf("server %s not Ready right after the conversion: %+v", srv, c)
			waitXRCondition(t, kindServer, ns, srv, "Ready", "True", "", 60*time.Second)
		}
	})

	step(t, "StuckDeleteReleasedByHand", func(t *testing.T) {
		// The README's step for a delete v0.1.0 left stuck, as the
		// platform team (Usages are not in the tenants' roles).
		name := stuck + "-uses-application"
		if lab.Flavour == flavourClaims {
			name += "-" + ns
		}
		start := time.Now()
		patch := `{"spec":{"by":null,"reason":"released by hand: the server is being deleted"}}`
		c, err := lab.Kube.client(t.Context(), schema.FromAPIVersionAndKind(apiVersionProtection, usageKind), usageNS)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Patch(t.Context(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatalf("patch %s %s reason-only: %v", usageKind, name, err)
		}
		waitGone(t, apiVersionKalypso, kindServer, ns, stuck, 60*time.Second)
		measure(t, "a v0.1.0 foreground delete left stuck completed %s after its Usage was patched reason-only", time.Since(start).Round(100*time.Millisecond))
	})

	step(t, "ForegroundDelete", func(t *testing.T) {
		start := time.Now()
		if err := erin.delWith(t.Context(), apiVersionKalypso, kindServer, ns, srv, metav1.DeletePropagationForeground); err != nil {
			t.Fatal(err)
		}
		waitGone(t, apiVersionKalypso, kindServer, ns, srv, 60*time.Second)
		measure(t, "foreground delete of an upgraded server done in %s", time.Since(start).Round(10*time.Millisecond))
	})
}
