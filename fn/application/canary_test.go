package application

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
)

// TestCanaryRoutes: the routes give a server's canary what the server's
// status.canary says, and nothing once it is dropping.
func TestCanaryRoutes(t *testing.T) {
	ref := func(name string, port int32, weight *int32) gatewayv1.BackendRef {
		return gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: ptr.To(gatewayv1.PortNumber(port))}, Weight: weight}
	}
	mirrorTo := func(port int32, percent int32) *gatewayv1.HTTPRequestMirrorFilter {
		return &gatewayv1.HTTPRequestMirrorFilter{BackendRef: ref("ranker-canary-svc", port, nil).BackendObjectReference, Percent: ptr.To(percent)}
	}
	cases := map[string]struct {
		reason   string
		canary   string // the server's status.canary
		backends func(port int32) []gatewayv1.BackendRef
		mirror   func(port int32) *gatewayv1.HTTPRequestMirrorFilter
		ttl      bool // the application follows its servers every WaitTTL while one has a canary
	}{
		"NoCanary": {
			reason:   "A server without a canary is routed as before: one backend, no weight.",
			backends: func(port int32) []gatewayv1.BackendRef { return []gatewayv1.BackendRef{ref("ranker-svc", port, nil)} },
		},
		"Starting": {
			reason:   "A canary that is not available yet gets nothing.",
			canary:   "{state: Starting, service: ranker-canary-svc}",
			backends: func(port int32) []gatewayv1.BackendRef { return []gatewayv1.BackendRef{ref("ranker-svc", port, nil)} },
			ttl:      true,
		},
		"Weighted": {
			reason: "A serving canary gets its weight and the stable Service the rest.",
			canary: "{state: Serving, service: ranker-canary-svc, weight: 10}",
			backends: func(port int32) []gatewayv1.BackendRef {
				return []gatewayv1.BackendRef{ref("ranker-svc", port, ptr.To[int32](90)), ref("ranker-canary-svc", port, ptr.To[int32](10))}
			},
			ttl: true,
		},
		"Promoting": {
			reason: "A promotion sends everything to the canary, the stable backend kept at weight 0.",
			canary: "{state: Promoting, service: ranker-canary-svc, weight: 100}",
			backends: func(port int32) []gatewayv1.BackendRef {
				return []gatewayv1.BackendRef{ref("ranker-svc", port, ptr.To[int32](0)), ref("ranker-canary-svc", port, ptr.To[int32](100))}
			},
			ttl: true,
		},
		"Mirrored": {
			reason:   "A mirrored canary gets a copy through a RequestMirror filter, and no backendRef.",
			canary:   "{state: Serving, service: ranker-canary-svc, mirrorPercent: 50}",
			backends: func(port int32) []gatewayv1.BackendRef { return []gatewayv1.BackendRef{ref("ranker-svc", port, nil)} },
			mirror:   func(port int32) *gatewayv1.HTTPRequestMirrorFilter { return mirrorTo(port, 50) },
			ttl:      true,
		},
		"Dropping": {
			reason:   "A dropping canary is named nowhere, whatever weight it had.",
			canary:   "{state: Dropping, service: ranker-canary-svc, weight: 10, mirrorPercent: 20}",
			backends: func(port int32) []gatewayv1.BackendRef { return []gatewayv1.BackendRef{ref("ranker-svc", port, nil)} },
			ttl:      true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := pendingServer
			if tc.canary != "" {
				srv = strings.TrimSuffix(srv, "}") + ", status: {canary: " + tc.canary + "}}"
			}
			c, err := New(xr(t, appMeta, "  projectRef: vision\n"+s3Storage+"  gateway: {enabled: true, hostname: detector.example.com}\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Compose(platform(t, true), composetest.Required(t, map[string][]string{reqProject: {readyProject}, reqSecret: {s3Secret}, reqServers: {srv}, reqRouteSchema: {routesServed}}))
			if got.Fatal != nil {
				t.Fatal(got.Fatal)
			}
			http := composetest.Decode[gatewayv1.HTTPRoute](t, got.Desired["httproute-ranker"]).Spec.Rules[0]
			var httpRefs []gatewayv1.BackendRef
			for _, b := range http.BackendRefs {
				httpRefs = append(httpRefs, b.BackendRef)
			}
			if diff := cmp.Diff(tc.backends(9000), httpRefs); diff != "" {
				t.Errorf("%s\nHTTPRoute backendRefs: -want, +got:\n%s", tc.reason, diff)
			}
			var httpMirror *gatewayv1.HTTPRequestMirrorFilter
			for _, f := range http.Filters {
				if f.Type == gatewayv1.HTTPRouteFilterRequestMirror {
					httpMirror = f.RequestMirror
				}
			}
			grpc := composetest.Decode[gatewayv1.GRPCRoute](t, got.Desired["grpcroute-ranker"]).Spec.Rules[0]
			var grpcRefs []gatewayv1.BackendRef
			for _, b := range grpc.BackendRefs {
				grpcRefs = append(grpcRefs, b.BackendRef)
			}
			if diff := cmp.Diff(tc.backends(9001), grpcRefs); diff != "" {
				t.Errorf("%s\nGRPCRoute backendRefs: -want, +got:\n%s", tc.reason, diff)
			}
			var grpcMirror *gatewayv1.HTTPRequestMirrorFilter
			for _, f := range grpc.Filters {
				if f.Type == gatewayv1.GRPCRouteFilterRequestMirror {
					grpcMirror = f.RequestMirror
				}
			}
			var wantHTTP, wantGRPC *gatewayv1.HTTPRequestMirrorFilter
			if tc.mirror != nil {
				wantHTTP, wantGRPC = tc.mirror(9000), tc.mirror(9001)
			}
			if diff := cmp.Diff(wantHTTP, httpMirror); diff != "" {
				t.Errorf("%s\nHTTPRoute mirror: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(wantGRPC, grpcMirror); diff != "" {
				t.Errorf("%s\nGRPCRoute mirror: -want, +got:\n%s", tc.reason, diff)
			}
			if fast := got.TTL == compose.WaitTTL; fast != tc.ttl {
				t.Errorf("%s\nTTL %v: want WaitTTL=%v", tc.reason, got.TTL, tc.ttl)
			}
		})
	}
}
