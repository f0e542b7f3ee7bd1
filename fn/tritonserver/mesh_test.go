package tritonserver

import (
	"testing"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// TestMeshRoutes: with gateway.meshRoutes on, a server with a canary
// attaches routes to its own Service, split as the gateway's, and a
// dropping canary waits for them too.
func TestMeshRoutes(t *testing.T) {
	p := composetest.Platform(t, &v1beta1.Input{Spec: v1beta1.Defaults{Gateway: &v1beta1.GatewayDefaults{MeshRoutes: ptr.To(true)}}})
	running := created(t, "", deployAvailable)
	withCanary := canaryObserved(t, running, canaryTag, deployAvailable)
	r := scene{xr: serverXR(canaryTag, ""), observed: withCanary, required: map[string][]string{reqApplication: {gatewayApp}}}.run(t, int64s, p)
	http := decodeStrict[gatewayv1.HTTPRoute](t, r, resMeshHTTPRoute)
	wantParent := []gatewayv1.ParentReference{{Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")), Name: "resnet-svc", Port: ptr.To(gatewayv1.PortNumber(8000))}}
	if diff := cmp.Diff(wantParent, http.Spec.ParentRefs); diff != "" {
		t.Errorf("mesh HTTPRoute parent: -want, +got:\n%s", diff)
	}
	weights := map[string]int32{}
	for _, b := range http.Spec.Rules[0].BackendRefs {
		weights[string(b.Name)] = ptr.Deref(b.Weight, 1)
	}
	if diff := cmp.Diff(map[string]int32{"resnet-svc": 90, "resnet-canary-svc": 10}, weights); diff != "" {
		t.Errorf("mesh HTTPRoute weights: -want, +got:\n%s", diff)
	}
	if grpc := decodeStrict[gatewayv1.GRPCRoute](t, r, resMeshGRPCRoute); *grpc.Spec.ParentRefs[0].Port != 8001 || len(grpc.Spec.Rules[0].BackendRefs) != 2 {
		t.Errorf("mesh GRPCRoute: %+v", grpc.Spec)
	}

	// Dropping: the mesh route as observed still sends to the canary.
	observed := map[string]string{}
	for k, v := range withCanary {
		observed[k] = v
	}
	for _, n := range []resource.Name{resMeshHTTPRoute, resMeshGRPCRoute} {
		observed[string(n)] = observe(t, r.Desired[n], "")
	}
	status := "canary: {state: Dropping, onRemoval: drop, service: resnet-canary-svc}\n"
	drop := scene{xr: serverXR("", status), observed: observed, required: map[string][]string{reqApplication: {gatewayApp}}}.run(t, int64s, p)
	if _, kept := drop.Desired[resCanaryDeployment]; !kept {
		t.Errorf("the canary was deleted while its mesh route still sends to it")
	}
	after := decodeStrict[gatewayv1.HTTPRoute](t, drop, resMeshHTTPRoute)
	if n := len(after.Spec.Rules[0].BackendRefs); n != 1 || after.Spec.Rules[0].BackendRefs[0].Name != "resnet-svc" {
		t.Errorf("a dropping canary's mesh route must send to the stable Service only: %+v", after.Spec.Rules[0].BackendRefs)
	}
	// Once the mesh route sends nothing to it, the canary and the routes go.
	for _, n := range []resource.Name{resMeshHTTPRoute, resMeshGRPCRoute} {
		observed[string(n)] = observe(t, drop.Desired[n], "")
	}
	gone := scene{xr: serverXR("", status), observed: observed, required: map[string][]string{reqApplication: {gatewayApp}}}.run(t, int64s, p)
	for _, n := range []resource.Name{resCanaryDeployment, resCanaryService, resMeshHTTPRoute, resMeshGRPCRoute} {
		if _, ok := gone.Desired[n]; ok {
			t.Errorf("%s is still composed after the drop", n)
		}
	}
}
