//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// TestDeletionProtection: an application cannot be deleted while servers
// use it (its Usage of itself while it counts servers), nor a project until it is released (its
// reason-only ClusterUsage of itself, composed before its namespace): a
// release closes the project's quotas to new applications and completes
// once no application is left; then each delete goes through.
func TestDeletionProtection(t *testing.T) {
	requireFlavour(t, flavourV2)
	const (
		project = "guard"
		ns      = "guard-prod"
		app     = "shield"
	)
	servers := []string{"guard-a", "guard-b"}
	teardown(t, project, ns)
	usage := "kalypsoproject-" + project

	step(t, "Setup", func(t *testing.T) {
		applyYAML(t, projectYAML(project, env{name: "prod", namespace: ns}))
		waitXRCondition(t, kindProject, "", project, "Ready", "True", "", 90*time.Second)
		environmentSecrets(t, ns)
		applyYAML(t, applicationYAML(app, ns, project))
		waitReady(t, kindApplication, ns, app, 60*time.Second)
		for _, name := range servers {
			// No GPU: these run on the general-purpose node.
			newServer(name, ns, app).apply(t)
		}
		for _, name := range servers {
			waitReady(t, kindServer, ns, name, 90*time.Second)
		}
		// The application protects itself with one Usage once it counts
		// its servers (each composes its own Usage only until then).
		waitFor(t, "Usage "+app+"-has-servers Ready", 90*time.Second, func() (bool, string, error) {
			u, err := lab.Kube.get(t.Context(), apiVersionProtection, "Usage", ns, app+"-has-servers")
			if err != nil || u == nil {
				return false, "absent", err
			}
			return getCondition(u, "Ready").Status == "True", conditionsSummary(u), nil
		})
		a := mustGet(t, apiVersionKalypso, kindApplication, ns, app)
		if a.GetLabels()["crossplane.io/in-use"] != "true" {
			t.Errorf("application %s is not labelled crossplane.io/in-use=true: %v", app, a.GetLabels())
		}
	})

	step(t, "ProjectProtected", func(t *testing.T) {
		// The ClusterUsage came before the namespace: it is Ready, and the
		// project labelled in use, as soon as the project is.
		u := mustGet(t, apiVersionProtection, "ClusterUsage", "", usage)
		if getCondition(u, "Ready").Status != "True" {
			t.Errorf("ClusterUsage %s not Ready: %s", usage, conditionsSummary(u))
		}
		n := mustGet(t, "v1", "Namespace", "", ns)
		if n.GetCreationTimestamp().Time.Before(u.GetCreationTimestamp().Time) {
			t.Errorf("namespace %s (%s) was created before ClusterUsage %s (%s)", ns, n.GetCreationTimestamp(), usage, u.GetCreationTimestamp())
		}
		if p := mustGet(t, apiVersionKalypso, kindProject, "", project); p.GetLabels()["crossplane.io/in-use"] != "true" {
			t.Errorf("project %s is not labelled crossplane.io/in-use=true: %v", project, p.GetLabels())
		}
		if reason := str(u, "spec", "reason"); !strings.Contains(reason, "spec.release: true") {
			t.Errorf("ClusterUsage reason %q does not name the release step", reason)
		}
	})

	step(t, "DeletesRefused", func(t *testing.T) {
		err := lab.Kube.del(t.Context(), apiVersionKalypso, kindApplication, ns, app)
		if err == nil {
			t.Fatalf("deleting application %s while servers use it was accepted", app)
		}
		t.Logf("application delete refused: %v", err)
		if !strings.Contains(strings.ToLower(err.Error()), "usage") {
			t.Errorf("refusal should mention the usage: %v", err)
		}
		err = lab.Kube.del(t.Context(), apiVersionKalypso, kindProject, "", project)
		if err == nil {
			t.Fatalf("deleting project %s while application %s lives in it was accepted", project, app)
		}
		t.Logf("project delete refused: %v", err)
		if !strings.Contains(err.Error(), usage) || !strings.Contains(err.Error(), "spec.release: true") {
			t.Errorf("refusal should quote the ClusterUsage and the release step: %v", err)
		}
		if apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		// Nothing started deleting.
		for _, o := range []struct{ kind, ns, name string }{{kindApplication, ns, app}, {kindProject, "", project}} {
			u := mustGet(t, apiVersionKalypso, o.kind, o.ns, o.name)
			if u.GetDeletionTimestamp() != nil {
				t.Errorf("%s %s is being deleted although its delete was refused", o.kind, nsName(o.ns, o.name))
			}
		}
	})

	step(t, "ReleaseWaitsForApplications", func(t *testing.T) {
		if err := releaseProject(t.Context(), project); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		// The quota controller has taken the closed count over (admission
		// enforces status.hard).
		waitFor(t, "quota of "+ns+" admits no application", 60*time.Second, func() (bool, string, error) {
			q, err := lab.Kube.get(t.Context(), "v1", "ResourceQuota", ns, project+"-prod-quota")
			if err != nil || q == nil {
				return false, "absent", err
			}
			return str(q, "status", "hard", countApplications) == "0", toYAML(q.Object["status"]), nil
		})
		measure(t, "release of project %s: quota of %s closed to applications %s after spec.release", project, ns, time.Since(start).Round(100*time.Millisecond))
		_, err := lab.Kube.apply(t.Context(), mustDecode(t, applicationYAML("intruder", ns, project))...)
		if err == nil {
			t.Fatalf("an application was created in %s while project %s is being released", ns, project)
		}
		t.Logf("new application refused: %v", err)
		if !quotaRefusal(err) {
			t.Errorf("the refusal should be the quota's: %v", err)
		}
		waitXRCondition(t, kindProject, "", project, "Released", "False", "ReleasePending", 30*time.Second)
		if err := lab.Kube.del(t.Context(), apiVersionKalypso, kindProject, "", project); err == nil {
			t.Fatalf("project %s was deleted during its release while application %s lives in it", project, app)
		}
		if u := mustGet(t, apiVersionProtection, "ClusterUsage", "", usage); !strings.Contains(str(u, "spec", "reason"), ns+"/"+app) {
			t.Errorf("ClusterUsage reason %q does not name %s/%s", str(u, "spec", "reason"), ns, app)
		}
	})

	step(t, "DeleteInOrder", func(t *testing.T) {
		start := time.Now()
		for _, name := range servers {
			mustDelete(t, apiVersionKalypso, kindServer, ns, name)
		}
		for _, name := range servers {
			waitGone(t, apiVersionKalypso, kindServer, ns, name, 60*time.Second)
			waitGone(t, apiVersionProtection, "Usage", ns, name+"-uses-application", 60*time.Second)
		}
		serversGone := time.Now()
		measure(t, "servers and their Usages gone %s after their delete", serversGone.Sub(start).Round(100*time.Millisecond))

		// The application drops its Usage of itself once its count (a
		// poll every minute) finds no server; until then our deletes are
		// refused, and none is replayed (replayDeletion: false).
		refused, first, err := deleteEventually(t.Context(), apiVersionKalypso, kindApplication, ns, app, 120*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		appGone := time.Now()
		measure(t, "application %s gone %s after its servers (%d deletes refused meanwhile%s)",
			app, appGone.Sub(serversGone).Round(100*time.Millisecond), refused, firstErr(first))

		// The release completes once the project sees no application (the
		// quota controller's count changes the composed quota, which
		// Crossplane watches, or at the latest its one-minute poll).
		refused, first, err = deleteEventually(t.Context(), apiVersionKalypso, kindProject, "", project, 90*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		measure(t, "released project %s gone %s after its last application (%d deletes refused meanwhile%s)",
			project, time.Since(appGone).Round(100*time.Millisecond), refused, firstErr(first))
		waitGone(t, apiVersionProtection, "ClusterUsage", "", usage, 30*time.Second)
		waitGone(t, "v1", "Namespace", "", ns, 90*time.Second)
	})
}

// countApplications is the quota key a release closes.
const countApplications = "count/kalypsoapplications.serving.kalypso.io"

// quotaRefusal reports whether quota admission refused an application:
// "exceeded quota" once the quota controller counts the kind, "status
// unknown for quota" while it cannot count it yet (its monitor of a new
// CRD starts at its next discovery, every 30 s; k8s.io/apiserver
// pkg/admission/plugin/resourcequota/controller.go CheckRequest).
func quotaRefusal(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, countApplications) &&
		(strings.Contains(msg, "exceeded quota") || strings.Contains(msg, "status unknown for quota"))
}

func mustDecode(t testing.TB, y string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := decodeYAML([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestProjectProtectionWindow deletes projects at the two moments a
// project used to be unprotected, each within 50 ms, 10 runs each:
//
//   - (a) right after its environment Namespace appears: the project
//     composes its ClusterUsage first and its namespaces only once that
//     ClusterUsage is Ready, so the delete must already be refused;
//   - (b) right after an application in it turns Ready, the project long
//     settled (it learns about applications only by polling):
//     the ClusterUsage has protected it since before its namespace existed.
//
// Every delete must be refused, quoting the release step; an accepted one
// fails the test, and nothing (project, namespace, application) may be lost
// in any run.
func TestProjectProtectionWindow(t *testing.T) {
	requireFlavour(t, flavourV2)
	const (
		runs   = 10
		within = 50 * time.Millisecond
	)
	type run struct {
		project, ns, app string
		nsUID, appUID    types.UID
		lost             bool
	}
	rs := make([]*run, runs)
	for i := range rs {
		p := fmt.Sprintf("window-%d", i)
		rs[i] = &run{project: p, ns: p + "-prod", app: "early"}
		teardown(t, p, rs[i].ns)
	}

	// deleteProject issues the delete and checks it was refused because of
	// the project's ClusterUsage, naming the release step.
	deleteProject := func(t *testing.T, r *run, what string, seen time.Time) {
		t.Helper()
		issued := time.Now()
		err := lab.Kube.del(t.Context(), apiVersionKalypso, kindProject, "", r.project)
		answered := time.Now()
		lag := issued.Sub(seen)
		measure(t, "%s: project %s delete issued %s after %s, answered in %s: %s", t.Name(), r.project,
			lag.Round(100*time.Microsecond), what, answered.Sub(issued).Round(time.Millisecond), map[bool]string{true: "accepted", false: "refused"}[err == nil])
		if lag > within {
			t.Errorf("the delete was issued %s after %s, not within %s: the run does not test the window", lag, what, within)
		}
		if err == nil {
			r.lost = true
			t.Errorf("project %s was deleted %s after %s: the delete was accepted", r.project, lag.Round(100*time.Microsecond), what)
			return
		}
		if !strings.Contains(err.Error(), "kalypsoproject-"+r.project) || !strings.Contains(err.Error(), "spec.release") {
			t.Errorf("the refusal does not quote the project's ClusterUsage and the release step (spec.release): %v", err)
		}
	}

	step(t, "DeleteWhenNamespaceAppears", func(t *testing.T) {
		for _, r := range rs {
			w, err := lab.Kube.Typed.CoreV1().Namespaces().Watch(t.Context(), metav1.ListOptions{FieldSelector: "metadata.name=" + r.ns})
			if err != nil {
				t.Fatal(err)
			}
			applyYAML(t, projectYAML(r.project, env{name: "prod", namespace: r.ns}))
			seen, ok := firstEvent(w, 120*time.Second, func(watch.Event) bool { return true })
			w.Stop()
			if !ok {
				t.Fatalf("namespace %s of project %s did not appear within 120 s", r.ns, r.project)
			}
			deleteProject(t, r, "namespace "+r.ns+" appeared", seen)
			if n := getNamespace(t, r.ns); n != nil {
				r.nsUID = n.UID
			}
		}
	})

	step(t, "DeleteWhenApplicationReady", func(t *testing.T) {
		for _, r := range rs {
			if r.lost {
				continue
			}
			waitXRCondition(t, kindProject, "", r.project, "Ready", "True", "", 120*time.Second)
			environmentSecrets(t, r.ns)
		}
		// Let the projects settle: right after its creation Crossplane
		// reconciles a project again as its composed objects become ready,
		// and such a reconcile would notice an application by chance.
		time.Sleep(8 * time.Second)
		for _, r := range rs {
			if r.lost {
				continue
			}
			ac, err := lab.Kube.client(t.Context(), schema.FromAPIVersionAndKind(apiVersionKalypso, kindApplication), r.ns)
			if err != nil {
				t.Fatal(err)
			}
			w, err := ac.Watch(t.Context(), metav1.ListOptions{FieldSelector: "metadata.name=" + r.app})
			if err != nil {
				t.Fatal(err)
			}
			applyYAML(t, applicationYAML(r.app, r.ns, r.project))
			seen, ok := firstEvent(w, 60*time.Second, func(e watch.Event) bool {
				u, _ := e.Object.(*unstructured.Unstructured)
				return u != nil && getCondition(u, "Ready").Status == "True"
			})
			w.Stop()
			if !ok {
				t.Fatalf("application %s/%s did not turn Ready within 60 s", r.ns, r.app)
			}
			deleteProject(t, r, "application "+r.ns+"/"+r.app+" turned Ready", seen)
			if a, _ := lab.Kube.get(t.Context(), apiVersionKalypso, kindApplication, r.ns, r.app); a != nil {
				r.appUID = a.GetUID()
			}
		}
	})

	step(t, "NothingLost", func(t *testing.T) {
		for _, r := range rs {
			p, err := lab.Kube.get(t.Context(), apiVersionKalypso, kindProject, "", r.project)
			switch {
			case err != nil:
				t.Fatal(err)
			case p == nil:
				t.Errorf("project %s is gone", r.project)
			case p.GetDeletionTimestamp() != nil:
				t.Errorf("project %s is being deleted", r.project)
			}
			n, err := lab.Kube.get(t.Context(), "v1", "Namespace", "", r.ns)
			switch {
			case err != nil:
				t.Fatal(err)
			case n == nil:
				t.Errorf("namespace %s of project %s is gone", r.ns, r.project)
			case n.GetDeletionTimestamp() != nil:
				t.Errorf("namespace %s of project %s is being deleted", r.ns, r.project)
			case n.GetUID() != r.nsUID:
				t.Errorf("namespace %s of project %s was re-created (UID %s, was %s)", r.ns, r.project, n.GetUID(), r.nsUID)
			}
			if r.lost {
				continue
			}
			a, err := lab.Kube.get(t.Context(), apiVersionKalypso, kindApplication, r.ns, r.app)
			switch {
			case err != nil:
				t.Fatal(err)
			case a == nil:
				t.Errorf("application %s/%s is gone", r.ns, r.app)
			case a.GetDeletionTimestamp() != nil:
				t.Errorf("application %s/%s is being deleted", r.ns, r.app)
			case a.GetUID() != r.appUID:
				t.Errorf("application %s/%s was re-created (UID %s, was %s)", r.ns, r.app, a.GetUID(), r.appUID)
			}
		}
	})
}

// TestProjectProtectionUpgrade: a project created by the previous release
// (v0.1.0: namespaces composed at once, no ClusterUsage without
// applications) migrates in place when the function is upgraded: its
// ClusterUsage is added and turns Ready, the project is labelled in use and
// its delete refused; its namespace is untouched, and the objects inside
// (quota, policies) are only replaced by their per-environment names.
func TestProjectProtectionUpgrade(t *testing.T) {
	requireFlavour(t, flavourV2)
	const (
		project = "migrate"
		ns      = "migrate-prod"
	)
	previous, err := previousFunction()
	if err != nil {
		t.Fatal(err)
	}
	teardown(t, project, ns)
	t.Cleanup(func() {
		if err := lab.useFunction(context.Background(), lab.bins.Function); err != nil {
			t.Errorf("restoring the current function: %v", err)
		}
	})
	usage := "kalypsoproject-" + project
	var before map[string]types.UID

	step(t, "CreatedByPreviousRelease", func(t *testing.T) {
		if err := lab.useFunction(t.Context(), previous); err != nil {
			t.Fatal(err)
		}
		applyYAML(t, projectYAML(project, env{name: "prod", namespace: ns, gpus: "1"}))
		waitXRCondition(t, kindProject, "", project, "Ready", "True", "", 90*time.Second)
		environmentSecrets(t, ns)
		before = uidSnapshot(t, project, ns)
		// Without applications v0.1.0 composes no ClusterUsage: the
		// namespace exists and nothing protects the project.
		if _, ok := before["ClusterUsage "+usage]; ok {
			t.Fatalf("the previous release composed ClusterUsage %s for a project without applications: not the old behaviour the upgrade must migrate", usage)
		}
		c, err := lab.Kube.client(t.Context(), schema.FromAPIVersionAndKind(apiVersionKalypso, kindProject), "")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(t.Context(), project, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Fatalf("under v0.1.0 deleting the project should pass admission (dry run): %v", err)
		}
	})

	step(t, "UpgradedInPlace", func(t *testing.T) {
		if err := lab.useFunction(t.Context(), lab.bins.Function); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		waitFor(t, "ClusterUsage "+usage+" Ready", 90*time.Second, func() (bool, string, error) {
			u, err := lab.Kube.get(t.Context(), apiVersionProtection, "ClusterUsage", "", usage)
			if err != nil || u == nil {
				return false, "absent", err
			}
			return getCondition(u, "Ready").Status == "True", conditionsSummary(u), nil
		})
		measure(t, "project %s created by v0.1.0 protected %s after the function upgrade (ClusterUsage Ready)", project, time.Since(start).Round(100*time.Millisecond))
		if p := mustGet(t, apiVersionKalypso, kindProject, "", project); p.GetLabels()["crossplane.io/in-use"] != "true" {
			t.Errorf("project %s is not labelled crossplane.io/in-use=true: %v", project, p.GetLabels())
		}
		waitXRCondition(t, kindProject, "", project, "Released", "False", "Protected", 30*time.Second)
		if err := lab.Kube.del(t.Context(), apiVersionKalypso, kindProject, "", project); err == nil {
			t.Fatalf("the upgraded project %s was deleted", project)
		} else if !strings.Contains(err.Error(), "spec.release") {
			t.Errorf("the refusal should name the release step: %v", err)
		}
		// The objects inside the namespace get their per-environment names
		// (README, "KalypsoProject"); v0.1.0's go once the replacements are
		// in force, its quota last.
		waitGone(t, "v1", "ResourceQuota", ns, project+"-quota", 60*time.Second)
		gone, recreated, created := compareSnapshots(before, uidSnapshot(t, project, ns))
		if len(recreated) > 0 {
			t.Errorf("the upgrade re-created %v", recreated)
		}
		want := []string{"ClusterUsage " + usage}
		for _, g := range gone {
			kind, ref, _ := strings.Cut(g, " ")
			gns, name, _ := strings.Cut(ref, "/")
			suffix, renamed := strings.CutPrefix(name, project+"-")
			if !renamed || gns != ns || kind == "Namespace" {
				t.Errorf("the upgrade deleted %s", g)
				continue
			}
			want = append(want, kind+" "+ns+"/"+project+"-prod-"+suffix)
		}
		slices.Sort(want)
		if !slices.Equal(created, want) {
			t.Errorf("the upgrade created %v, want %v (the ClusterUsage, and each deleted object under its per-environment name)", created, want)
		}
	})
}

// firstEvent waits for the first watch event that matches and returns when
// it arrived.
func firstEvent(w watch.Interface, timeout time.Duration, match func(watch.Event) bool) (time.Time, bool) {
	deadline := time.After(timeout)
	for {
		select {
		case e, ok := <-w.ResultChan():
			if !ok {
				return time.Time{}, false
			}
			if (e.Type == watch.Added || e.Type == watch.Modified) && match(e) {
				return time.Now(), true
			}
		case <-deadline:
			return time.Time{}, false
		}
	}
}

func firstErr(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprintf("; first: %v", err)
}
