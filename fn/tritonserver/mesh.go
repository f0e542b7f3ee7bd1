package tritonserver

import (
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// Pipeline names of the mesh routes (GAMMA) of a server with a canary.
const (
	resMeshHTTPRoute = resource.Name("canary-mesh-httproute")
	resMeshGRPCRoute = resource.Name("canary-mesh-grpcroute")
)

// meshParent attaches a route to the stable Service's port: a mesh that
// implements the Gateway API's mesh support (GAMMA) then routes in-cluster
// calls to that Service by it. Gateway API v1.4.1 apis/v1/shared_types.go
// ParentReference: kind Service, group "" (core).
func meshParent(svc string, port int32) gatewayv1.ParentReference {
	return gatewayv1.ParentReference{Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")), Name: gatewayv1.ObjectName(svc), Port: ptr.To(gatewayv1.PortNumber(port))}
}

// meshRoutes are the GAMMA HTTPRoute (HTTP port) and GRPCRoute (gRPC
// port) of a server with a canary: the stable Service, the parent, keeps
// 100 - weight of the calls made to it and the canary gets its weight or
// mirror, as on the gateway.
func meshRoutes(svc, ns string, labels map[string]string, prts ports, canary *v1alpha1.CanaryStatus) (*gatewayv1.HTTPRoute, *gatewayv1.GRPCRoute) {
	http := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: svc + "-mesh-http", Namespace: ns, Labels: labels},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{meshParent(svc, prts.http)}},
			Rules:           []gatewayv1.HTTPRouteRule{{}},
		},
	}
	grpc := &gatewayv1.GRPCRoute{
		ObjectMeta: metav1.ObjectMeta{Name: svc + "-mesh-grpc", Namespace: ns, Labels: labels},
		Spec: gatewayv1.GRPCRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{meshParent(svc, prts.grpc)}},
			Rules:           []gatewayv1.GRPCRouteRule{{}},
		},
	}
	for _, b := range compose.Backends(svc, canary, int64(prts.http)) {
		http.Spec.Rules[0].BackendRefs = append(http.Spec.Rules[0].BackendRefs, gatewayv1.HTTPBackendRef{BackendRef: b})
	}
	for _, b := range compose.Backends(svc, canary, int64(prts.grpc)) {
		grpc.Spec.Rules[0].BackendRefs = append(grpc.Spec.Rules[0].BackendRefs, gatewayv1.GRPCBackendRef{BackendRef: b})
	}
	if m := compose.Mirror(canary, int64(prts.http)); m != nil {
		http.Spec.Rules[0].Filters = []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: m}}
	}
	if m := compose.Mirror(canary, int64(prts.grpc)); m != nil {
		grpc.Spec.Rules[0].Filters = []gatewayv1.GRPCRouteFilter{{Type: gatewayv1.GRPCRouteFilterRequestMirror, RequestMirror: m}}
	}
	return http, grpc
}

// addMeshRoutes composes the mesh routes while the server has a canary and
// the platform asks for them (gateway.meshRoutes). They go with the canary.
func (t canaryTrack) addMeshRoutes(d *compose.Desired, c *Composer, p compose.Platform, prts ports, labels map[string]string) error {
	if !p.GatewayMeshRoutes || t.status == nil {
		return nil
	}
	http, grpc := meshRoutes(c.name("svc"), c.id.Namespace, labels, prts, t.status)
	if _, err := d.Add(resMeshHTTPRoute, http, compose.Exists); err != nil {
		return err
	}
	_, err := d.Add(resMeshGRPCRoute, grpc, compose.Exists)
	return err
}

// observedMeshRoutes are the mesh routes as the mesh last saw them: a
// dropping canary waits on them as on the application's routes.
func (c *Composer) observedMeshRoutes() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, name := range []resource.Name{resMeshHTTPRoute, resMeshGRPCRoute} {
		if o, ok := c.observed[name]; ok {
			out = append(out, asUnstructured(o.Resource))
		}
	}
	return out
}

func asUnstructured(o *composed.Unstructured) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: o.Object}
}
