//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestTenantAccess acts as the people projects name, by impersonation, with
// nothing but the RBAC a cluster gets from Crossplane, the shipped
// crossplane-rbac.yaml and tenant-rbac.yaml, and the RoleBindings the
// projects compose:
//   - alice, an editor of project tenancy-a, applies her storage Secret, an
//     application and a server in her environment, and they become Ready;
//   - she is refused in project tenancy-b's namespace and for KalypsoProject;
//   - bob, a viewer of tenancy-a, may get and list but not create or delete;
//   - dave, named in no project, may do nothing;
//   - alice deletes: the application while its server runs (refused, and not
//     replayed later), the server in the foreground (as kubectl
//     --cascade=foreground and Argo CD's pruning do), then the application.
//
// In the claim flavour the same users work with claims, and the server's
// claim has compositeDeletePolicy: Foreground, so Crossplane deletes its
// composite in the foreground too.
func TestTenantAccess(t *testing.T) {
	requireFlavour(t, flavourV2, flavourClaims)
	const (
		projectA, nsA = "tenancy-a", "tenancy-a-dev"
		projectB, nsB = "tenancy-b", "tenancy-b-dev"
		app, srv      = "catalog", "ranker"
	)
	teardown(t, projectA, nsA)
	teardown(t, projectB, nsB)
	users := map[string]*kube{}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		k, err := lab.Kube.as(u)
		if err != nil {
			t.Fatal(err)
		}
		users[u] = k
	}
	alice, bob, dave := users["alice"], users["bob"], users["dave"]
	forbidden := func(t *testing.T, who, what string, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s %s: want Forbidden, got %v", who, what, err)
		}
	}

	step(t, "Setup", func(t *testing.T) {
		applyYAML(t, tenantProjectYAML(projectA, "dev", nsA, []string{"alice"}, []string{"bob"}))
		applyYAML(t, tenantProjectYAML(projectB, "dev", nsB, []string{"carol"}, nil))
		waitXRCondition(t, kindProject, "", projectA, "Ready", "True", "", 90*time.Second)
		waitXRCondition(t, kindProject, "", projectB, "Ready", "True", "", 90*time.Second)
		// The platform's part: the Triton API key in each environment.
		applyYAML(t, apiKeySecretYAML(nsA)+"---\n"+apiKeySecretYAML(nsB))
	})

	step(t, "EditorServes", func(t *testing.T) {
		// RoleBindings reach the authorizer through its informer: allow a
		// moment after the project is Ready.
		waitFor(t, "alice may create Secrets in "+nsA, 30*time.Second, func() (bool, string, error) {
			err := alice.create(t.Context(), storageSecretYAML(nsA))
			return err == nil || apierrors.IsAlreadyExists(err), errString(err), nil
		})
		if err := alice.create(t.Context(), applicationYAML(app, nsA, projectA)); err != nil {
			t.Fatalf("alice creates application %s: %v", app, err)
		}
		waitReady(t, kindApplication, nsA, app, 60*time.Second)
		s := newServer(srv, nsA, app)
		if lab.Flavour == flavourClaims {
			s.Spec["compositeDeletePolicy"] = "Foreground"
		}
		if _, err := alice.apply(t.Context(), s.object()); err != nil {
			t.Fatalf("alice applies server %s: %v", srv, err)
		}
		waitReady(t, kindServer, nsA, srv, 90*time.Second)
		if _, err := alice.get(t.Context(), apiVersionKalypso, kindServer, nsA, srv); err != nil {
			t.Errorf("alice gets her server: %v", err)
		}
	})

	step(t, "EditorConfined", func(t *testing.T) {
		forbidden(t, "alice", "creates an application in "+nsB, alice.create(t.Context(), applicationYAML("intruder", nsB, projectB)))
		_, err := alice.list(t.Context(), apiVersionKalypso, kindServer, nsB)
		forbidden(t, "alice", "lists servers in "+nsB, err)
		forbidden(t, "alice", "creates a KalypsoProject", alice.create(t.Context(), tenantProjectYAML("alices-own", "dev", "alices-own-dev", []string{"alice"}, nil)))
		forbidden(t, "alice", "deletes project "+projectA, alice.del(t.Context(), apiVersionKalypso, kindProject, "", projectA))
	})

	step(t, "ViewerReads", func(t *testing.T) {
		if _, err := bob.get(t.Context(), apiVersionKalypso, kindServer, nsA, srv); err != nil {
			t.Errorf("bob gets server %s: %v", srv, err)
		}
		for _, kind := range []string{kindServer, kindApplication} {
			items, err := bob.list(t.Context(), apiVersionKalypso, kind, nsA)
			if err != nil || len(items) != 1 {
				t.Errorf("bob lists %s in %s: %d items, %v", kind, nsA, len(items), err)
			}
		}
		forbidden(t, "bob", "creates a server", bob.create(t.Context(), toYAML(newServer("bobs", nsA, app).object().Object)))
		forbidden(t, "bob", "deletes server "+srv, bob.del(t.Context(), apiVersionKalypso, kindServer, nsA, srv))
	})

	step(t, "StrangerNothing", func(t *testing.T) {
		_, err := dave.get(t.Context(), apiVersionKalypso, kindServer, nsA, srv)
		forbidden(t, "dave", "gets server "+srv, err)
		_, err = dave.list(t.Context(), apiVersionKalypso, kindApplication, nsA)
		forbidden(t, "dave", "lists applications", err)
		forbidden(t, "dave", "creates an application", dave.create(t.Context(), applicationYAML("daves", nsA, projectA)))
		forbidden(t, "dave", "deletes application "+app, dave.del(t.Context(), apiVersionKalypso, kindApplication, nsA, app))
	})

	step(t, "EditorDeletes", func(t *testing.T) {
		// The application is in use: refused, naming the step to take. (A
		// claim's delete is accepted and its composite's refused, so the
		// claim flavour deletes only once the server is gone, below.)
		if lab.Flavour != flavourClaims {
			// The refusal quotes one Usage: the server's own (naming it)
			// or, once the application counted it, the application's
			// (saying how to list its servers).
			err := alice.del(t.Context(), apiVersionKalypso, kindApplication, nsA, app)
			if err == nil || !strings.Contains(err.Error(), "delete the server first") && !strings.Contains(err.Error(), "kubectl get kalypsotritonservers -n "+nsA) {
				t.Fatalf("alice deletes application %s while %s serves it: want a refusal saying to delete the servers first, got %v", app, srv, err)
			}
		}
		start := time.Now()
		if err := alice.delWith(t.Context(), apiVersionKalypso, kindServer, nsA, srv, metav1.DeletePropagationForeground); err != nil {
			t.Fatalf("alice deletes server %s in the foreground: %v", srv, err)
		}
		waitGone(t, apiVersionKalypso, kindServer, nsA, srv, 60*time.Second)
		measure(t, "foreground delete of server %s (%s flavour) done in %s", srv, lab.Flavour, time.Since(start).Round(10*time.Millisecond))

		if lab.Flavour == flavourClaims {
			// No delete was refused: the claim's is accepted and its
			// composite's retried by the claim controller.
			deleteApplication(t, alice, nsA, app)
			return
		}
		// The refused delete is not replayed once the last Usage goes
		// (replayDeletion: false): Crossplane would replay it about 2 s
		// after removing the Usage's finalizer (usage/reconciler.go).
		// The application drops its Usage of itself at its next count
		// (a poll every minute).
		waitFor(t, "no usage of application "+app+" left", 90*time.Second, func() (bool, string, error) {
			items, err := lab.Kube.list(t.Context(), apiVersionProtection, "Usage", nsA)
			if err != nil {
				return false, "", err
			}
			for _, u := range items {
				if strings.HasPrefix(u.GetName(), srv+"-uses-application") || u.GetName() == app+"-has-servers" {
					return false, u.GetName() + " still there", nil
				}
			}
			return true, "", nil
		})
		time.Sleep(10 * time.Second)
		a, err := lab.Kube.get(t.Context(), apiVersionKalypso, kindApplication, nsA, app)
		if err != nil || a == nil || a.GetDeletionTimestamp() != nil {
			t.Fatalf("application %s was deleted without being asked again (a replayed delete): %v %v", app, a, err)
		}

		deleteApplication(t, alice, nsA, app)
	})
}

// deleteApplication deletes an application whose servers are gone, as its
// team, and waits until it is gone.
func deleteApplication(t *testing.T, k *kube, ns, app string) {
	t.Helper()
	start := time.Now()
	if err := k.del(t.Context(), apiVersionKalypso, kindApplication, ns, app); err != nil {
		t.Fatalf("deleting application %s once its servers are gone: %v", app, err)
	}
	// The claim flavour's composite goes once the application's
	// ClusterUsage of itself goes, at its next count (a poll every minute).
	waitGone(t, apiVersionKalypso, kindApplication, ns, app, 150*time.Second)
	measure(t, "delete of application %s (%s flavour) after its server was gone done in %s", app, lab.Flavour, time.Since(start).Round(10*time.Millisecond))
}
