//go:build e2e

package e2e

import (
	"maps"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

const apiVersionKEDA = "keda.sh/v1alpha1"

// kedaHandOff switches a running server whose HPA owns its replicas (min =
// max = replicas) from the hpa engine to keda and back, sampling the
// Deployment's replicas every 200 ms: they never leave the running count.
// The lab runs no KEDA: once the ScaledObject exists the test stands in for
// KEDA's operator and creates the HPA it would (the name the ScaledObject
// gives it, the ScaledObject's bounds, controlled by it; KEDA v2.20.1
// controllers/keda/hpa.go), so that the switch back meets a real second
// HPA until the garbage collector removes it. KEDA's webhook, which refuses
// a ScaledObject while another HPA targets the Deployment unless that HPA
// allows it (scaledobject_webhook.go verifyHpas), does not run here. A
// failed apply would show as a Warning event on the server.
func kedaHandOff(t *testing.T, s *server, replicas int64) {
	ns, deploy := s.Namespace, s.Name+"-deploy"
	soName, kedaHPA := s.Name+"-so", s.Name+"-kda"
	warningsBefore := len(xrWarnings(t, kindServer, s.Name, "ComposeResources"))
	bounds := map[string]any{"enabled": true, "metric": "cpu", "minReplicas": replicas, "maxReplicas": replicas}
	if err := lab.installScaledObjectCRD(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Core caches a group-version's OpenAPI as it was until the next CRD
	// event (optionalKind): switch only once the API server publishes the
	// kind. That narrows the race but does not close it, as any
	// composite's schema check refills core's cache.
	waitPublished(t, optScaledObject.gvk)

	w := watchReplicas(t, ns, deploy)
	s.Spec["autoscaling"] = withEntry(bounds, "engine", "keda")
	applied := time.Now()
	s.apply(t)
	so := composedAfterCRD(t, optScaledObject, objKey{kindServer, ns, s.Name}, ns, soName)
	slowSpecChange(t, "ScaledObject "+soName+" existed", applied)
	waitGone(t, "autoscaling/v2", "HorizontalPodAutoscaler", ns, s.Name+"-hpa", 60*time.Second)
	measure(t, "hpa to keda: ScaledObject %s composed and HorizontalPodAutoscaler %s-hpa gone %s after the spec change",
		soName, s.Name, time.Since(applied).Round(100*time.Millisecond))
	if lo, hi := integer(so, "spec", "minReplicaCount"), integer(so, "spec", "maxReplicaCount"); lo != replicas || hi != replicas {
		t.Errorf("ScaledObject replica counts %d..%d, want %d..%d", lo, hi, replicas, replicas)
	}
	if got := str(so, "spec", "scaleTargetRef", "name"); got != deploy {
		t.Errorf("ScaledObject targets %q, want %s", got, deploy)
	}
	if got := str(so, "spec", "advanced", "horizontalPodAutoscalerConfig", "name"); got != kedaHPA {
		t.Errorf("ScaledObject names KEDA's HPA %q, want %s", got, kedaHPA)
	}
	standInForKEDA(t, ns, kedaHPA, deploy, so.GetUID(), soName, int32(replicas))
	waitXRCondition(t, kindServer, ns, s.Name, "Autoscaling", "True", "ScaledObjectComposed", 30*time.Second)
	// The HPA controller syncs the new HPA at once, then every 15 s.
	time.Sleep(20 * time.Second)
	checkReplicasHeld(t, "hpa to keda", w.stop(), int32(replicas))

	w = watchReplicas(t, ns, deploy)
	s.Spec["autoscaling"] = withEntry(bounds, "engine", "hpa")
	applied = time.Now()
	s.apply(t)
	waitExists(t, "autoscaling/v2", "HorizontalPodAutoscaler", ns, s.Name+"-hpa", specChangeWait)
	slowSpecChange(t, "HorizontalPodAutoscaler "+s.Name+"-hpa existed", applied)
	waitGone(t, apiVersionKEDA, "ScaledObject", ns, soName, 60*time.Second)
	// The garbage collector deletes KEDA's HPA with its ScaledObject.
	waitGone(t, "autoscaling/v2", "HorizontalPodAutoscaler", ns, kedaHPA, 60*time.Second)
	measure(t, "keda to hpa: HorizontalPodAutoscaler %s-hpa composed, ScaledObject and %s gone %s after the spec change",
		s.Name, kedaHPA, time.Since(applied).Round(100*time.Millisecond))
	waitXRCondition(t, kindServer, ns, s.Name, "Autoscaling", "True", "HorizontalPodAutoscalerComposed", 30*time.Second)
	time.Sleep(20 * time.Second)
	checkReplicasHeld(t, "keda to hpa", w.stop(), int32(replicas))
	if w := xrWarnings(t, kindServer, s.Name, "ComposeResources"); len(w) > warningsBefore {
		t.Errorf("composing failed during the hand-off: %v", w[warningsBefore:])
	}
}

// withEntry copies m with one more entry.
func withEntry(m map[string]any, k string, v any) map[string]any {
	out := maps.Clone(m)
	out[k] = v
	return out
}

// standInForKEDA creates the HorizontalPodAutoscaler KEDA's operator makes
// for a ScaledObject with a cpu trigger, controlled by the ScaledObject.
func standInForKEDA(t *testing.T, ns, name, deploy string, soUID types.UID, soName string, replicas int32) {
	t.Helper()
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: apiVersionKEDA, Kind: "ScaledObject", Name: soName, UID: soUID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
		}}},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: deploy},
			MinReplicas:    ptr.To(replicas), MaxReplicas: replicas,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](80)},
			}}},
		},
	}
	if _, err := lab.Kube.Typed.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(t.Context(), hpa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("standing in for KEDA: create %s: %v", name, err)
	}
}

// checkReplicasHeld fails when the Deployment's replicas left n during a
// switch.
func checkReplicasHeld(t *testing.T, what string, seen replicaSeen, n int32) {
	t.Helper()
	t.Logf("%s: spec.replicas/status.replicas seen every 200 ms: %s", what, seen.summary())
	if seen.minSpec < n || seen.minStatus < n {
		t.Errorf("%s: the Deployment dropped below the minimum %d: %s", what, n, seen.summary())
	}
	if seen.specChanges > 0 {
		t.Errorf("%s: spec.replicas changed (%v): two autoscalers, or Crossplane and one, fought over it", what, seen.specValues())
	}
}
