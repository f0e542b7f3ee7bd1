package compose

import (
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
)

// Route names an application's route to one of its servers: the
// application composes it, a server with a canary reads it back to know
// when the gateway stopped sending to the canary.
func RouteName(application, server, protocol string) string {
	return application + "-" + server + "-" + protocol
}

// Route protocols.
const (
	RouteHTTP = "http"
	RouteGRPC = "grpc"
)

// LabelTrack marks a canary's pods and objects; the stable track's carry
// none, so that a server without a canary composes what it always did.
const (
	LabelTrack  = "kalypso-serving.io/track"
	TrackCanary = "canary"
)

// CanaryName is the name of a server's canary track: the value of its
// pods' tritonserver label and the prefix of its objects' names.
func CanaryName(server string) string { return server + "-canary" }

// Backend is a route's reference to a Service port.
func Backend(svc string, port int64) gatewayv1.BackendObjectReference {
	return gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(svc), Port: ptr.To(gatewayv1.PortNumber(port))}
}

// Backends are a route's backends to a server: its Service, and its
// canary's with the weight the server reports (status.canary) once it is
// above 0; the stable Service then gets the rest.
func Backends(stableSvc string, canary *v1alpha1.CanaryStatus, port int64) []gatewayv1.BackendRef {
	stable := gatewayv1.BackendRef{BackendObjectReference: Backend(stableSvc, port)}
	if canary == nil || canary.Weight <= 0 || canary.State == v1alpha1.CanaryDropping {
		return []gatewayv1.BackendRef{stable}
	}
	stable.Weight = ptr.To(100 - canary.Weight)
	return []gatewayv1.BackendRef{stable, {BackendObjectReference: Backend(canary.Service, port), Weight: ptr.To(canary.Weight)}}
}

// Mirror copies the share of the requests the server reports to its
// canary; the gateway drops the canary's answers (Gateway API v1.4.1
// HTTPRequestMirrorFilter, Extended support on HTTPRoute and GRPCRoute).
func Mirror(canary *v1alpha1.CanaryStatus, port int64) *gatewayv1.HTTPRequestMirrorFilter {
	if canary == nil || canary.MirrorPercent <= 0 || canary.State == v1alpha1.CanaryDropping {
		return nil
	}
	return &gatewayv1.HTTPRequestMirrorFilter{BackendRef: Backend(canary.Service, port), Percent: ptr.To(canary.MirrorPercent)}
}
