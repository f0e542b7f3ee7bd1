//go:build e2e

package e2e

import (
	"testing"
	"time"
)

// TestWaitingServerKeepsItsObjects: a Ready server whose API key Secret and
// then Deployment are deleted waits for the Secret before it builds a
// Deployment again, and meanwhile keeps its Service (same UID) and its
// application stays protected:
// dropping them from the desired state would have Crossplane delete them.
// Once the Secret is back the Deployment returns.
func TestWaitingServerKeepsItsObjects(t *testing.T) {
	requireFlavour(t, flavourV2)
	const (
		project, ns = "keeper", "keeper-dev"
		app, srv    = "vault", "vault-srv"
	)
	teardown(t, project, ns)
	// The Service, and the application's Usage of itself: the server's
	// own Usage goes by design once the application protects itself.
	kept := []struct{ apiVersion, kind, name string }{
		{"v1", "Service", srv + "-svc"},
		{apiVersionProtection, "Usage", app + "-has-servers"},
	}
	uids := map[string]string{}
	var gus *kube

	step(t, "Ready", func(t *testing.T) {
		gus = tenantEnvironment(t, project, ns, "gus")
		if err := gus.create(t.Context(), applicationYAML(app, ns, project)); err != nil {
			t.Fatal(err)
		}
		waitReady(t, kindApplication, ns, app, 60*time.Second)
		if _, err := gus.apply(t.Context(), newServer(srv, ns, app).object()); err != nil {
			t.Fatal(err)
		}
		waitReady(t, kindServer, ns, srv, 90*time.Second)
		waitExists(t, apiVersionProtection, "Usage", ns, app+"-has-servers", 90*time.Second)
		for _, o := range kept {
			uids[o.kind] = string(mustGet(t, o.apiVersion, o.kind, ns, o.name).GetUID())
		}
	})

	step(t, "SecretThenDeploymentDeleted", func(t *testing.T) {
		// Let the reconciles the roll-out started finish: one that read
		// the Deployment before its delete would apply it again (a
		// Crossplane apply creates what is missing).
		time.Sleep(5 * time.Second)
		// The Secret is a required resource, which no watch follows; the
		// Deployment's delete wakes the server at once (realtime
		// compositions), and it then finds the Secret gone and no
		// Deployment: it waits to create one.
		mustDelete(t, "v1", "Secret", ns, "kalypso-triton-api-key")
		mustDelete(t, "apps/v1", "Deployment", ns, srv+"-deploy")
		waitXRCondition(t, kindServer, ns, srv, "ServerAvailable", "False", "WaitingToCreate", 30*time.Second)
		waitXRCondition(t, kindServer, ns, srv, "APIRestricted", "False", "APIKeySecretMissing", 5*time.Second)
		// Several reconciles (15 s TTL while waiting), as long as the lab
		// saw the objects go before the fix.
		time.Sleep(45 * time.Second)
		for _, o := range kept {
			u, err := lab.Kube.get(t.Context(), o.apiVersion, o.kind, ns, o.name)
			switch {
			case err != nil:
				t.Error(err)
			case u == nil:
				t.Errorf("%s %s was deleted while the server waited for its API key", o.kind, o.name)
			case string(u.GetUID()) != uids[o.kind] || u.GetDeletionTimestamp() != nil:
				t.Errorf("%s %s was replaced or is being deleted", o.kind, o.name)
			}
		}
		if d, _ := lab.Kube.get(t.Context(), "apps/v1", "Deployment", ns, srv+"-deploy"); d != nil {
			t.Errorf("Deployment %s was rebuilt without the API key Secret", srv+"-deploy")
		}
	})

	step(t, "SecretBack", func(t *testing.T) {
		start := time.Now()
		applyYAML(t, apiKeySecretYAML(ns))
		waitReady(t, kindServer, ns, srv, 90*time.Second)
		measure(t, "server %s Ready again %s after its API key Secret came back", srv, time.Since(start).Round(100*time.Millisecond))
	})
}
