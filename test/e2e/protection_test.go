//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// TestDeletionProtection: an application cannot be deleted while servers
// use it (each server's Usage), nor a project while applications live in
// its environments (the project's reason-only ClusterUsage of itself); once
// the users are gone each delete goes through.
func TestDeletionProtection(t *testing.T) {
	requireFlavour(t, flavourV2)
	const (
		project = "guard"
		ns      = "guard-prod"
		app     = "shield"
	)
	servers := []string{"guard-a", "guard-b"}
	teardown(t, project, ns)
	var appApplied time.Time

	step(t, "Setup", func(t *testing.T) {
		applyYAML(t, projectYAML(project, env{name: "prod", namespace: ns}))
		waitXRCondition(t, kindProject, "", project, "Ready", "True", "", 90*time.Second)
		environmentSecrets(t, ns)
		applyYAML(t, applicationYAML(app, ns, project))
		appApplied = time.Now()
		waitReady(t, kindApplication, ns, app, 60*time.Second)
		for _, name := range servers {
			// No GPU: these run on the general-purpose node.
			newServer(name, ns, app).apply(t)
		}
		for _, name := range servers {
			waitReady(t, kindServer, ns, name, 90*time.Second)
			waitFor(t, "Usage "+name+"-uses-application Ready", 30*time.Second, func() (bool, string, error) {
				u, err := lab.Kube.get(t.Context(), apiVersionProtection, "Usage", ns, name+"-uses-application")
				if err != nil || u == nil {
					return false, "absent", err
				}
				return getCondition(u, "Ready").Status == "True", conditionsSummary(u), nil
			})
		}
		a := mustGet(t, apiVersionKalypso, kindApplication, ns, app)
		if a.GetLabels()["crossplane.io/in-use"] != "true" {
			t.Errorf("application %s is not labelled crossplane.io/in-use=true: %v", app, a.GetLabels())
		}
	})

	step(t, "ProjectProtected", func(t *testing.T) {
		// The project learns about the application at its next poll (it
		// is a required resource, which no watch follows): until then the
		// project is not protected.
		name := "kalypsoproject-" + project
		waitFor(t, "ClusterUsage "+name+" Ready", 90*time.Second, func() (bool, string, error) {
			u, err := lab.Kube.get(t.Context(), apiVersionProtection, "ClusterUsage", "", name)
			if err != nil || u == nil {
				return false, "absent", err
			}
			return getCondition(u, "Ready").Status == "True", conditionsSummary(u), nil
		})
		measure(t, "ClusterUsage %s protecting project %s Ready %s after application %s was applied (the project's next poll; it is unprotected until then)",
			name, project, time.Since(appApplied).Round(100*time.Millisecond), app)
		u := mustGet(t, apiVersionProtection, "ClusterUsage", "", name)
		if reason := str(u, "spec", "reason"); !strings.Contains(reason, ns+"/"+app) {
			t.Errorf("ClusterUsage reason %q does not name %s/%s", reason, ns, app)
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
		if !strings.Contains(strings.ToLower(err.Error()), "usage") {
			t.Errorf("refusal should mention the usage: %v", err)
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

		// The Usages replay the refused delete (replayDeletion: true): the
		// application may go by itself. Retry our own delete meanwhile.
		refused, first, err := deleteEventually(t.Context(), apiVersionKalypso, kindApplication, ns, app, 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		appGone := time.Now()
		measure(t, "application %s gone %s after its servers (%d deletes refused meanwhile%s)",
			app, appGone.Sub(serversGone).Round(100*time.Millisecond), refused, firstErr(first))

		// The project drops its ClusterUsage at its next poll.
		refused, first, err = deleteEventually(t.Context(), apiVersionKalypso, kindProject, "", project, 90*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		measure(t, "project %s gone %s after its last application (%d deletes refused meanwhile%s)",
			project, time.Since(appGone).Round(100*time.Millisecond), refused, firstErr(first))
		waitGone(t, apiVersionProtection, "ClusterUsage", "", "kalypsoproject-"+project, 30*time.Second)
		waitGone(t, "v1", "Namespace", "", ns, 90*time.Second)
	})
}

// TestProjectProtectionWindow deletes a project right after an application
// in it turned Ready: the project learns about applications only when it is
// next reconciled (required resources, no watch; its TTL is 60 s), so until
// then it has no ClusterUsage and the delete goes through, taking the
// application's namespace, and the application, with it.
func TestProjectProtectionWindow(t *testing.T) {
	requireFlavour(t, flavourV2)
	const (
		project = "guard-race"
		ns      = "guard-race-prod"
		app     = "early"
	)
	teardown(t, project, ns)

	step(t, "DeleteRightAfterApplication", func(t *testing.T) {
		applyYAML(t, projectYAML(project, env{name: "prod", namespace: ns}))
		waitXRCondition(t, kindProject, "", project, "Ready", "True", "", 90*time.Second)
		environmentSecrets(t, ns)
		// Let the new project settle: right after its creation Crossplane
		// reconciles it again as its composed objects become ready, and
		// such a reconcile would notice the application by chance.
		time.Sleep(8 * time.Second)
		applyYAML(t, applicationYAML(app, ns, project))
		waitReady(t, kindApplication, ns, app, 60*time.Second)
		readyAt := time.Now()
		err := lab.Kube.del(t.Context(), apiVersionKalypso, kindProject, "", project)
		after := time.Since(readyAt)
		if err != nil {
			t.Logf("project delete refused %s after application %s was Ready: %v", after.Round(time.Millisecond), app, err)
			return
		}
		waitGone(t, apiVersionKalypso, kindProject, "", project, 60*time.Second)
		waitGone(t, "v1", "Namespace", "", ns, 90*time.Second)
		a, err := lab.Kube.get(t.Context(), apiVersionKalypso, kindApplication, ns, app)
		if err != nil {
			t.Fatal(err)
		}
		functionFinding(t, "project %s was deleted although application %s/%s (Ready) lived in it: the delete, %s after the application turned Ready, "+
			"was accepted because the project composes its ClusterUsage only when it is next reconciled (the applications are required resources, "+
			"which no watch follows; the project's TTL is the default 60 s); the project's namespace went with it and the application is %s",
			project, ns, app, after.Round(time.Millisecond), map[bool]string{true: "gone", false: "still there"}[a == nil])
	})
}

func firstErr(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprintf("; first: %v", err)
}
