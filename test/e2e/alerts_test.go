//go:build e2e

package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// alertsAfterCRD turns a running server's alerts on before the
// PrometheusRule CRD exists (the server says so and composes nothing),
// then installs the Prometheus Operator's rule and route CRDs: the server
// composes its PrometheusRule at its next poll.
func alertsAfterCRD(t *testing.T, s *server) {
	s.Spec["slo"] = map[string]any{"alerts": true, "queueTimeMicroseconds": int64(20000)}
	applied := time.Now()
	s.apply(t)
	waitXRCondition(t, kindServer, s.Namespace, s.Name, "Alerting", "False", "PrometheusRuleCRDMissing", specChangeWait)
	slowSpecChange(t, "the server said the PrometheusRule CRD is missing", applied)

	if err := lab.installAlertingCRDs(t.Context()); err != nil {
		t.Fatal(err)
	}
	installed := time.Now()
	rule := composedAfterCRD(t, optPrometheusRule, objKey{kindServer, s.Namespace, s.Name}, s.Namespace, s.Name+"-rules")
	measure(t, "PrometheusRule %s-rules composed %s after its CRD was installed (no watch: the server's next poll, TTL 60 s)", s.Name, time.Since(installed).Round(100*time.Millisecond))
	if got := rule.GetLabels()["release"]; got != "prometheus" {
		t.Errorf("PrometheusRule label release = %q, want prometheus (platform default alerts.ruleLabels)", got)
	}
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	var alerts []string
	for _, g := range groups {
		rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, r := range rules {
			if a, ok := r.(map[string]any)["alert"].(string); ok {
				alerts = append(alerts, a)
			}
		}
	}
	want := []string{"KalypsoTritonServerDown", "KalypsoTritonReplicasUnavailable", "KalypsoTritonQueueTimeHigh", "KalypsoTritonFailureRatioHigh", "KalypsoTritonGPUMemoryHigh", "KalypsoTritonRestarting"}
	if !slices.Equal(alerts, want) {
		t.Errorf("PrometheusRule alerts %v, want %v", alerts, want)
	}
	waitXRCondition(t, kindServer, s.Namespace, s.Name, "Alerting", "True", "AlertsComposed", 30*time.Second)
}

// alertRouting: project vision (examples/projects/vision.yaml) routes its
// alerts to receivers whose Secrets do not exist yet: it composes no
// route for them and names them. A member of the project's editors group
// (impersonated, not an administrator) then creates the Secrets in each
// environment namespace, and every environment gets its
// AlertmanagerConfig at the project's next poll.
func alertRouting(t *testing.T, project string, namespaces []string) {
	start := time.Now()
	// The CRD was installed with the PrometheusRule's (alertsAfterCRD); the
	// project checks it through a required schema at its next poll, so
	// core's discovery cache can hold it as absent (optionalKind).
	actedOnCRD(t, optAlertmanagerConfig, objKey{kind: kindProject, name: project}, func() bool {
		return getXRCondition(t, kindProject, "", project, optAlertmanagerConfig.condition).Reason != optAlertmanagerConfig.missing
	})
	waitXRCondition(t, kindProject, "", project, "AlertRouting", "False", "ReceiverSecretMissing", crdPollWait)
	measure(t, "project %s reported its receivers' missing Secrets %s into this step (its AlertmanagerConfig CRD came with the PrometheusRule's, a step earlier)", project, time.Since(start).Round(100*time.Millisecond))

	member, err := lab.Kube.asMember("vision-dev-1@example.com", "vision-devs")
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range namespaces {
		y := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: vision-alert-receivers, namespace: %s}\nstringData: {slack-webhook-url: 'https://hooks.example.com/vision'}\n", ns)
		if ns == "vision-prod" {
			y += "---\napiVersion: v1\nkind: Secret\nmetadata: {name: vision-pagerduty, namespace: vision-prod}\nstringData: {routing-key: 0123456789abcdef}\n"
		}
		if err := member.create(t.Context(), y); err != nil {
			t.Fatalf("a member of vision-devs creates the receiver Secrets in %s: %v", ns, err)
		}
	}
	created := time.Now()
	waitXRCondition(t, kindProject, "", project, "AlertRouting", "True", "AlertRoutingComposed", 150*time.Second)
	measure(t, "project %s routed its alerts %s after the receiver Secrets were created (no watch on Secrets: the project's next poll, TTL 60 s)", project, time.Since(created).Round(100*time.Millisecond))
	amc := waitExists(t, "monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", "vision-prod", project+"-prod-alerts", 30*time.Second)
	receivers, _, _ := unstructured.NestedSlice(amc.Object, "spec", "receivers")
	var names []string
	for _, r := range receivers {
		names = append(names, fmt.Sprint(r.(map[string]any)["name"]))
	}
	if want := []string{"kalypso.none", "oncall", "team"}; !slices.Equal(names, want) {
		t.Errorf("AlertmanagerConfig %s-prod-alerts receivers %v, want %v", project, names, want)
	}
	for _, ns := range namespaces {
		if ns != "vision-prod" {
			waitExists(t, "monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", ns, fmt.Sprintf("%s-%s-alerts", project, envOf(ns)), 30*time.Second)
		}
	}
}

// envOf is the environment of a vision namespace (vision-<env>).
func envOf(ns string) string { return ns[len("vision-"):] }
