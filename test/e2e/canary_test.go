//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The Gateway API's route CRDs, from the module the function builds them
// with (standard channel: RequestMirror and weights are in it).
const (
	gatewayModule  = "sigs.k8s.io/gateway-api"
	gatewayVersion = "v1.4.1"
	apiVersionGW   = "gateway.networking.k8s.io/v1"
)

// gatewayDefaults are the lab's platform defaults naming a gateway, for
// this test only (the upgrade tests share the EnvironmentConfig).
const gatewayDefaults = platformDefaults + `  gateway:
    parentRefs: [{name: e2e-gateway, namespace: gateway-system}]
    hostname: models.e2e.example
`

// TestCanary: a tenant runs a canary beside a server, weighted through the
// application's routes; then drops it, and promotes another. At every
// 200 ms sample during the drop and the promotion, every backend the
// HTTPRoute gives a weight above 0 has a ready endpoint in its
// EndpointSlices, and those backends hold at least the stable track's
// replicas. No gateway controller runs in the lab: routes are checked by
// their spec (a route no gateway reports on counts by its spec).
func TestCanary(t *testing.T) {
	requireFlavour(t, flavourV2)
	const (
		project, ns = "canary", "canary-prod"
		app, name   = "shop", "ranker"
		newTag      = "25.02-py3"
	)
	teardown(t, project, ns)
	// Registered on the test, not a step: a step's cleanups run when the
	// step ends. It runs before the teardown's (last registered, first
	// run): the application then drops its routes, which nothing needs.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := lab.installPlatformDefaults(ctx); err != nil {
			t.Errorf("restore the platform defaults: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			if u, _ := lab.Kube.get(context.Background(), apiVersionKalypso, kindApplication, ns, app); u != nil {
				t.Logf("application %s: %s", app, conditionsSummary(u))
			}
		}
	})
	var k *kube
	step(t, "Setup", func(t *testing.T) {
		dir, err := lab.moduleDir(t.Context(), gatewayModule, gatewayVersion)
		if err != nil {
			t.Fatal(err)
		}
		crds := filepath.Join(dir, "config", "crd", "standard")
		if _, err := lab.applyFiles(t.Context(), filepath.Join(crds, "gateway.networking.k8s.io_httproutes.yaml"), filepath.Join(crds, "gateway.networking.k8s.io_grpcroutes.yaml")); err != nil {
			t.Fatal(err)
		}
		if err := lab.waitEstablished(t.Context(), []string{"httproutes.gateway.networking.k8s.io", "grpcroutes.gateway.networking.k8s.io"}); err != nil {
			t.Fatal(err)
		}
		// Core caches a group as absent if it looks before the API server
		// publishes the CRD's OpenAPI (see optionalKind).
		waitPublished(t, optHTTPRoute.gvk, optHTTPRoute.gvk.GroupVersion().WithKind("GRPCRoute"))
		applyYAML(t, gatewayDefaults)
		k = tenantEnvironment(t, project, ns, "carla")
		if err := k.create(t.Context(), applicationYAML(app, ns, project)+"  gateway: {enabled: true}\n"); err != nil {
			t.Fatal(err)
		}
		waitReady(t, kindApplication, ns, app, 60*time.Second)
	})

	srv := newServer(name, ns, app)
	route := fmt.Sprintf("%s-%s-http", app, name)
	weights := func() map[string]int64 {
		u, err := lab.Kube.get(t.Context(), apiVersionGW, "HTTPRoute", ns, route)
		if err != nil || u == nil {
			return nil
		}
		return routeWeights(u)
	}
	canaryServing := func(t *testing.T) {
		waitXRCondition(t, kindServer, ns, name, "CanaryHealthy", "True", "CanaryServing", 3*time.Minute)
		waitFor(t, "the HTTPRoute gives the canary 20 and the stable Service 80", 90*time.Second, func() (bool, string, error) {
			w := weights()
			return w[name+"-svc"] == 80 && w[name+"-canary-svc"] == 20, fmt.Sprint(w), nil
		})
	}
	step(t, "Weighted", func(t *testing.T) {
		if _, err := k.apply(t.Context(), srv.object()); err != nil {
			t.Fatal(err)
		}
		waitReady(t, kindServer, ns, name, 2*time.Minute)
		composedAfterCRD(t, optHTTPRoute, objKey{kindApplication, ns, app}, ns, route)
		srv.Spec["canary"] = map[string]any{"tag": newTag, "weight": int64(20)}
		if _, err := k.apply(t.Context(), srv.object()); err != nil {
			t.Fatal(err)
		}
		canaryServing(t)
		pods := mustGet(t, "apps/v1", "Deployment", ns, name+"-canary-deploy")
		if l := str(pods, "spec", "template", "metadata", "labels", "kalypso-serving.io/track"); l != "canary" {
			t.Errorf("canary pods' track label: %q", l)
		}
		measure(t, "weighted canary: HTTPRoute %s backends %v", route, weights())
		// A serving canary changes nothing: the server's status must not
		// move.
		assertStill(t, kindServer, ns, name, quietWindow)
	})

	sampled := func(t *testing.T, what string, change func(), done func() (bool, string, error)) {
		s := startRouteSampler(t, ns, route, 1)
		change()
		took := waitFor(t, what, 4*time.Minute, done)
		r := s.stop()
		measure(t, "%s in %s: %d samples every 200 ms; fewest ready endpoints per weighted backend %v; fewest behind all weighted backends %d; weights seen %v",
			what, took.Round(100*time.Millisecond), r.samples, r.minPerBackend, r.minTotal, r.weightsSeen)
		for _, f := range r.failures {
			t.Error(f)
		}
	}
	gone := func(what string) func() (bool, string, error) {
		return func() (bool, string, error) {
			u, err := lab.Kube.get(t.Context(), "apps/v1", "Deployment", ns, name+"-canary-deploy")
			return u == nil, what, err
		}
	}
	step(t, "Drop", func(t *testing.T) {
		sampled(t, "the dropped canary's Deployment was deleted", func() {
			delete(srv.Spec, "canary")
			if _, err := k.apply(t.Context(), srv.object()); err != nil {
				t.Fatal(err)
			}
		}, gone("canary Deployment present"))
		if w := weights(); len(w) != 1 || w[name+"-svc"] != 1 {
			t.Errorf("after the drop the route sends to %v; want the stable Service alone", w)
		}
		waitXRCondition(t, kindServer, ns, name, "CanaryHealthy", "False", "NoCanary", time.Minute)
	})
	step(t, "Promote", func(t *testing.T) {
		srv.Spec["canary"] = map[string]any{"tag": newTag, "weight": int64(20), "onRemoval": "promote"}
		if _, err := k.apply(t.Context(), srv.object()); err != nil {
			t.Fatal(err)
		}
		canaryServing(t)
		sampled(t, "the promoted canary's Deployment was deleted", func() {
			delete(srv.Spec, "canary")
			srv.Spec["tritonConfig"] = map[string]any{"tag": newTag}
			if _, err := k.apply(t.Context(), srv.object()); err != nil {
				t.Fatal(err)
			}
		}, gone("canary Deployment present"))
		d := mustGet(t, "apps/v1", "Deployment", ns, name+"-deploy")
		if img := containerImageOf(d); img == "" || img[len(img)-len(newTag):] != newTag {
			t.Errorf("after the promotion the stable track runs %q; want tag %s", img, newTag)
		}
		waitXRCondition(t, kindServer, ns, name, "CanaryHealthy", "False", "NoCanary", time.Minute)
	})
	step(t, "DeletedWithServer", func(t *testing.T) {
		srv.Spec["canary"] = map[string]any{"tag": "25.03-py3", "weight": int64(20)}
		if _, err := k.apply(t.Context(), srv.object()); err != nil {
			t.Fatal(err)
		}
		waitExists(t, "apps/v1", "Deployment", ns, name+"-canary-deploy", 2*time.Minute)
		if err := k.delWith(t.Context(), apiVersionKalypso, kindServer, ns, name, metav1.DeletePropagationForeground); err != nil {
			t.Fatal(err)
		}
		waitGone(t, "apps/v1", "Deployment", ns, name+"-canary-deploy", 2*time.Minute)
		waitGone(t, "v1", "Service", ns, name+"-canary-svc", time.Minute)
	})
}

func containerImageOf(d *unstructured.Unstructured) string {
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(cs) == 0 {
		return ""
	}
	m, _ := cs[0].(map[string]any)
	img, _ := m["image"].(string)
	return img
}

// routeWeights: each backend of the route's first rule with its weight
// (Gateway API's default 1 when unset).
func routeWeights(u *unstructured.Unstructured) map[string]int64 {
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	out := map[string]int64{}
	if len(rules) == 0 {
		return out
	}
	rule, _ := rules[0].(map[string]any)
	refs, _, _ := unstructured.NestedSlice(rule, "backendRefs")
	for _, r := range refs {
		m, _ := r.(map[string]any)
		w, found, _ := unstructured.NestedInt64(m, "weight")
		if !found {
			w = 1
		}
		out[fmt.Sprint(m["name"])] = w
	}
	return out
}

// routeSampler reads the route and the EndpointSlices of its weighted
// backends every 200 ms.
type routeSampler struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	r      samplerReport
}

type samplerReport struct {
	samples       int
	minPerBackend map[string]int
	minTotal      int
	weightsSeen   []string
	failures      []string
}

func startRouteSampler(t *testing.T, ns, route string, stableReplicas int) *routeSampler {
	ctx, cancel := context.WithCancel(t.Context())
	s := &routeSampler{cancel: cancel, r: samplerReport{minPerBackend: map[string]int{}, minTotal: 1 << 30}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for ctx.Err() == nil {
			s.sample(ctx, ns, route, stableReplicas)
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *routeSampler) sample(ctx context.Context, ns, route string, stableReplicas int) {
	u, err := lab.Kube.get(ctx, apiVersionGW, "HTTPRoute", ns, route)
	if err != nil || u == nil {
		return
	}
	w := routeWeights(u)
	if seen := fmt.Sprint(w); len(s.r.weightsSeen) == 0 || s.r.weightsSeen[len(s.r.weightsSeen)-1] != seen {
		s.r.weightsSeen = append(s.r.weightsSeen, seen)
	}
	total := 0
	for svc, weight := range w {
		if weight <= 0 {
			continue
		}
		slices, err := lab.Kube.Typed.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
		if err != nil {
			return
		}
		ready := 0
		for _, sl := range slices.Items {
			for _, e := range sl.Endpoints {
				if e.Conditions.Ready == nil || *e.Conditions.Ready {
					ready++
				}
			}
		}
		if m, ok := s.r.minPerBackend[svc]; !ok || ready < m {
			s.r.minPerBackend[svc] = ready
		}
		if ready == 0 {
			s.r.failures = append(s.r.failures, fmt.Sprintf("sample %d: backend %s has weight %d and no ready endpoint (route %v)", s.r.samples, svc, weight, w))
		}
		total += ready
	}
	if total < s.r.minTotal {
		s.r.minTotal = total
	}
	if total < stableReplicas {
		s.r.failures = append(s.r.failures, fmt.Sprintf("sample %d: %d ready endpoints behind the weighted backends %v, fewer than the stable track's %d replicas", s.r.samples, total, w, stableReplicas))
	}
	s.r.samples++
}

func (s *routeSampler) stop() samplerReport {
	s.cancel()
	s.wg.Wait()
	return s.r
}
