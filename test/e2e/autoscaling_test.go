//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestQueueTimeAutoscalingAPIService: a server autoscaling on queue time
// reads the custom metrics APIService through core, which needs list and
// watch on APIServices (crossplane-rbac.yaml). With an APIService that is
// registered but unavailable (no adapter behind it), the server is Synced
// and its Autoscaling condition says why within one reconcile, instead of
// every reconcile timing out on an informer that never syncs.
func TestQueueTimeAutoscalingAPIService(t *testing.T) {
	requireFlavour(t, flavourV2)
	const (
		project, ns = "scaling", "scaling-dev"
		app, srv    = "queue", "queue-srv"
		apiService  = "v1beta1.custom.metrics.k8s.io"
	)
	teardown(t, project, ns)
	var fay *kube
	step(t, "UnavailableAPIService", func(t *testing.T) {
		// An unavailable aggregated API makes namespace deletion fail on
		// discovery: it goes as soon as this step ends.
		t.Cleanup(func() {
			if err := lab.Kube.del(context.Background(), "apiregistration.k8s.io/v1", "APIService", "", apiService); err != nil {
				t.Errorf("delete APIService %s: %v", apiService, err)
			}
		})
		applyYAML(t, fmt.Sprintf(`apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: %s}
spec:
  group: custom.metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service: {namespace: monitoring, name: prometheus-adapter}
`, apiService))
		fay = tenantEnvironment(t, project, ns, "fay")
		if err := fay.create(t.Context(), applicationYAML(app, ns, project)); err != nil {
			t.Fatal(err)
		}
		waitReady(t, kindApplication, ns, app, 60*time.Second)
		s := newServer(srv, ns, app)
		s.Spec["autoscaling"] = map[string]any{"enabled": true, "metric": "queueTime", "minReplicas": int64(1), "maxReplicas": int64(2)}
		start := time.Now()
		if _, err := fay.apply(t.Context(), s.object()); err != nil {
			t.Fatal(err)
		}
		// One reconcile: the function's first answer after the
		// requirements are fetched, well inside core's 2 min timeout.
		c := waitXRCondition(t, kindServer, ns, srv, "Autoscaling", "False", "CustomMetricsAPIUnavailable", 30*time.Second)
		measure(t, "queue-time server's Autoscaling condition %s %s after apply: %s", c.Reason, time.Since(start).Round(10*time.Millisecond), c.Message)
		waitXRCondition(t, kindServer, ns, srv, "Synced", "True", "", 30*time.Second)
		waitReady(t, kindServer, ns, srv, 90*time.Second)
	})

	step(t, "NoNamespaceStuck", func(t *testing.T) {
		if err := fay.delWith(t.Context(), apiVersionKalypso, kindServer, ns, srv, "Foreground"); err != nil {
			t.Fatal(err)
		}
		waitGone(t, apiVersionKalypso, kindServer, ns, srv, 60*time.Second)
		// Namespaces deleted while the APIService was unavailable retry
		// discovery; none may stay stuck on it.
		waitFor(t, "no namespace stuck on discovery", 90*time.Second, func() (bool, string, error) {
			items, err := lab.Kube.list(t.Context(), "v1", "Namespace", "")
			if err != nil {
				return false, "", err
			}
			var stuck []string
			for _, n := range items {
				if str(&n, "status", "phase") != "Terminating" {
					continue
				}
				if c := getCondition(&n, "NamespaceDeletionDiscoveryFailure"); c.Status == "True" {
					stuck = append(stuck, n.GetName()+": "+c.Message)
				}
			}
			return len(stuck) == 0, strings.Join(stuck, "; "), nil
		})
	})
}
