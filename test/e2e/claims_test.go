//go:build e2e

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestClaims runs the claim flavour (apis/claims: legacy XRDs with claims) in
// a lab of its own (E2E_FLAVOUR=claims): KalypsoApplication and
// KalypsoTritonServer claims in a project namespace, their cluster-scoped
// composites, objects in the claim's namespace, and the ClusterUsage that
// protects the application's composite.
func TestClaims(t *testing.T) {
	requireFlavour(t, flavourClaims)
	const (
		project = "vision"
		ns      = "vision-prod"
	)
	teardown(t, project, ns, "vision-dev", "vision-stage")
	var appXR, serverXR string

	step(t, "Project", func(t *testing.T) {
		start := time.Now()
		applyFile(t, "examples/projects/vision.yaml")
		waitXRCondition(t, kindProject, "", project, "Ready", "True", "", 120*time.Second)
		measure(t, "project vision Ready %s after it was applied", time.Since(start).Round(10*time.Millisecond))
	})

	step(t, "ApplicationClaim", func(t *testing.T) {
		applyFile(t, "examples/applications/stages/fixtures/secret-models-s3.yaml")
		applyFile(t, "examples/tritonservers/stages/fixtures/apikey-vision-prod.yaml")
		start := time.Now()
		// examples/claims/stages/fixtures/claim-detector.yaml without what
		// Crossplane fills in (resourceRef, status).
		applyYAML(t, `
apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoApplication
metadata: {name: detector, namespace: vision-prod}
spec:
  projectRef: vision
  storage: {secretName: models-s3, region: eu-west-1}
`)
		claim := waitReady(t, kindApplication, ns, "detector", 60*time.Second)
		measure(t, "application claim detector Ready %s after it was applied", time.Since(start).Round(10*time.Millisecond))
		appXR = str(claim, "spec", "resourceRef", "name")
		if kind := str(claim, "spec", "resourceRef", "kind"); kind != "XKalypsoApplication" || appXR == "" {
			t.Fatalf("claim spec.resourceRef = %s %q, want an XKalypsoApplication", kind, appXR)
		}
		xr := mustGet(t, apiVersionKalypso, "XKalypsoApplication", "", appXR)
		if xr.GetNamespace() != "" {
			t.Errorf("XKalypsoApplication %s is namespaced", appXR)
		}
		if got := str(xr, "status", "environment"); got != "prod" {
			t.Errorf("XKalypsoApplication %s status.environment = %q, want prod", appXR, got)
		}
		for _, c := range []string{"ProjectValid", "StorageReady"} {
			if got := getCondition(xr, c); got.Status != "True" {
				t.Errorf("XKalypsoApplication %s condition %s = %+v, want True", appXR, c, got)
			}
			if got := getCondition(claim, c); got.Status != "True" {
				t.Errorf("claim detector condition %s = %+v, want True (conditions target the claim too)", c, got)
			}
		}
	})

	step(t, "ServerClaim", func(t *testing.T) {
		start := time.Now()
		applyYAML(t, `
apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoTritonServer
metadata: {name: yolo, namespace: vision-prod}
spec:
  applicationRef: detector
  storageUri: s3://vision-models/yolo
  gpus: 1
  tritonConfig: {backendType: onnxruntime}
`)
		claim := waitReady(t, kindServer, ns, "yolo", 90*time.Second)
		measure(t, "server claim yolo (1 GPU) Ready %s after it was applied", time.Since(start).Round(10*time.Millisecond))
		serverXR = str(claim, "spec", "resourceRef", "name")
		xr := mustGet(t, apiVersionKalypso, "XKalypsoTritonServer", "", serverXR)
		if got := str(xr, "status", "serviceEndpoint"); got != "http://yolo-svc.vision-prod.svc:8000" {
			t.Errorf("status.serviceEndpoint = %q: objects must be named after the claim, in its namespace", got)
		}
		// Objects land in the claim's namespace, named after the claim.
		d := waitDeploymentAvailable(t, ns, "yolo-deploy", 1, 30*time.Second)
		if q := d.Spec.Template.Spec.Containers[0].Resources.Limits[gpuResource]; q.Value() != 1 {
			t.Errorf("yolo-deploy asks for %s %s, want 1", gpuResource, q.String())
		}
		for _, p := range serverPods(t, ns, "yolo") {
			if p.Status.Phase != corev1.PodRunning || !slices.Contains(fakeNodes, p.Spec.NodeName) {
				t.Errorf("pod %s: phase %s on node %q, want Running on a GPU node", p.Name, p.Status.Phase, p.Spec.NodeName)
			}
		}
		mustGet(t, "v1", "Service", ns, "yolo-svc")
		for _, ref := range composedRefs(t, xr) {
			if ref.Namespace != "" && ref.Namespace != ns {
				t.Errorf("%s composed outside the claim's namespace", ref)
			}
		}

		// The application protects its composite with a ClusterUsage once
		// it counts its server (which composed its own until then).
		name := ns + ".detector.has-servers"
		u := waitExists(t, apiVersionProtection, "ClusterUsage", "", name, 90*time.Second)
		if kind, of := str(u, "spec", "of", "kind"), str(u, "spec", "of", "resourceRef", "name"); kind != "XKalypsoApplication" || of != appXR {
			t.Errorf("ClusterUsage %s protects %s %q, want XKalypsoApplication %q", name, kind, of, appXR)
		}
		// Reason-only: a `by` would keep the usage, and so a foreground
		// delete of the server, waiting on each other forever.
		if by, reason := str(u, "spec", "by", "resourceRef", "name"), str(u, "spec", "reason"); by != "" || !strings.Contains(reason, "delete them first") {
			t.Errorf("ClusterUsage %s: by %q, reason %q; want no by and a reason saying to delete the servers first", name, by, reason)
		}
		waitFor(t, "ClusterUsage "+name+" Ready", 30*time.Second, func() (bool, string, error) {
			u, err := lab.Kube.get(t.Context(), apiVersionProtection, "ClusterUsage", "", name)
			if err != nil || u == nil {
				return false, "absent", err
			}
			return getCondition(u, "Ready").Status == "True", conditionsSummary(u), nil
		})
		if l := mustGet(t, apiVersionKalypso, "XKalypsoApplication", "", appXR).GetLabels(); l["crossplane.io/in-use"] != "true" {
			t.Errorf("XKalypsoApplication %s is not labelled crossplane.io/in-use: %v", appXR, l)
		}
		waitFor(t, "detector counts its Ready server", 90*time.Second, func() (bool, string, error) {
			x, err := lab.Kube.get(t.Context(), apiVersionKalypso, "XKalypsoApplication", "", appXR)
			if err != nil || x == nil {
				return false, "absent", err
			}
			a, r := integer(x, "status", "activeModels"), integer(x, "status", "readyModels")
			return a == 1 && r == 1, fmt.Sprintf("activeModels %d readyModels %d", a, r), nil
		})
	})

	step(t, "ApplicationProtected", func(t *testing.T) {
		err := lab.Kube.del(t.Context(), apiVersionKalypso, "XKalypsoApplication", "", appXR)
		if err == nil {
			t.Fatalf("deleting XKalypsoApplication %s under its server was accepted", appXR)
		}
		if !strings.Contains(strings.ToLower(err.Error()), "usage") {
			t.Errorf("refusal should mention the usage: %v", err)
		}
		t.Logf("composite delete refused: %v", err)
		// Deleting the claim is accepted, but its composite's delete is
		// refused: the claim stays deleting.
		mustDelete(t, apiVersionKalypso, kindApplication, ns, "detector")
		time.Sleep(5 * time.Second)
		claim, err := lab.Kube.get(t.Context(), apiVersionKalypso, kindApplication, ns, "detector")
		if err != nil {
			t.Fatal(err)
		}
		if claim == nil {
			t.Fatal("the application claim was deleted while its server uses it")
		}
		if claim.GetDeletionTimestamp() == nil {
			t.Error("the application claim is not deleting")
		}
		xr := mustGet(t, apiVersionKalypso, "XKalypsoApplication", "", appXR)
		if xr.GetDeletionTimestamp() != nil {
			t.Errorf("XKalypsoApplication %s is being deleted under its server", appXR)
		}
		t.Logf("claim detector deleting and kept: %s", conditionsSummary(claim))
		if c := getCondition(mustGet(t, apiVersionKalypso, kindServer, ns, "yolo"), "Ready"); c.Status != "True" {
			t.Errorf("server yolo no longer Ready while its application's claim is deleting: %+v", c)
		}
	})

	step(t, "DeleteInOrder", func(t *testing.T) {
		start := time.Now()
		mustDelete(t, apiVersionKalypso, kindServer, ns, "yolo")
		waitGone(t, apiVersionKalypso, kindServer, ns, "yolo", 60*time.Second)
		waitGone(t, apiVersionKalypso, "XKalypsoTritonServer", "", serverXR, 60*time.Second)
		for _, o := range []struct{ apiVersion, kind, ns, name string }{
			{"apps/v1", "Deployment", ns, "yolo-deploy"},
			{"v1", "Service", ns, "yolo-svc"},
			{apiVersionProtection, "ClusterUsage", "", "yolo-uses-application-" + ns},
		} {
			waitGone(t, o.apiVersion, o.kind, o.ns, o.name, 60*time.Second)
		}
		serverGone := time.Now()
		// The claim's pending delete goes through once nothing uses it.
		// …once the application's count (a poll every minute) finds no
		// server and its ClusterUsage goes.
		waitGone(t, apiVersionKalypso, kindApplication, ns, "detector", 150*time.Second)
		waitGone(t, apiVersionKalypso, "XKalypsoApplication", "", appXR, 60*time.Second)
		measure(t, "server claim gone %s after its delete; the deleting application claim and its composite gone %s later",
			serverGone.Sub(start).Round(100*time.Millisecond), time.Since(serverGone).Round(100*time.Millisecond))
		appGone := time.Now()
		// The release step: the project's ClusterUsage goes once the
		// claims' quota key is closed and no claim is left.
		if err := releaseProject(t.Context(), project); err != nil {
			t.Fatal(err)
		}
		// The released project's quotas admit no new application claim
		// (count/kalypsoapplications.serving.kalypso.io is the claim's).
		// Within seconds, or, if core opened the project's watch circuit,
		// at its next poll (compose.BreakerTTL, a minute).
		waitFor(t, "quota of "+ns+" admits no application claim", 90*time.Second, func() (bool, string, error) {
			q, err := lab.Kube.get(t.Context(), "v1", "ResourceQuota", ns, project+"-prod-quota")
			if err != nil || q == nil {
				return false, "absent", err
			}
			return str(q, "status", "hard", countApplications) == "0", toYAML(q.Object["status"]), nil
		})
		if _, err := lab.Kube.apply(t.Context(), mustDecode(t, applicationYAML("late", ns, project))...); err == nil {
			t.Errorf("an application claim was created in %s while project %s is released", ns, project)
		} else if !quotaRefusal(err) {
			t.Errorf("the refusal of a new application claim should be the quota's: %v", err)
		} else {
			t.Logf("new application claim refused: %v", err)
		}
		refused, first, err := deleteEventually(t.Context(), apiVersionKalypso, kindProject, "", project, 90*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		measure(t, "project gone %s after its last application (%d deletes refused meanwhile%s)",
			time.Since(appGone).Round(100*time.Millisecond), refused, firstErr(first))
	})
}
