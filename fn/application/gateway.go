package application

import (
	"fmt"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"strings"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// routeAccepted is the readiness of a route: accepted by a parent once the
// gateway reports on it; existing until then.
func routeAccepted(o *composed.Unstructured) bool {
	status, _ := o.Object["status"].(map[string]any)
	parents, _ := status["parents"].([]any)
	if len(parents) == 0 {
		return true
	}
	for _, p := range parents {
		if m, ok := p.(map[string]any); ok && compose.ConditionStatus(map[string]any{"status": m}, "Accepted") == "True" {
			return true
		}
	}
	return false
}

func parentRefs(refs []v1beta1.ParentRef) []gatewayv1.ParentReference {
	out := make([]gatewayv1.ParentReference, 0, len(refs))
	for _, r := range refs {
		pr := gatewayv1.ParentReference{Name: gatewayv1.ObjectName(r.Name)}
		if r.Namespace != "" {
			pr.Namespace = ptr.To(gatewayv1.Namespace(r.Namespace))
		}
		if r.SectionName != "" {
			pr.SectionName = ptr.To(gatewayv1.SectionName(r.SectionName))
		}
		out = append(out, pr)
	}
	return out
}

// httpRoute routes /<application>/<server>/ to the server's HTTP port and
// strips the prefix: Triton's HTTP API lives at /v2/….
func (c *Composer) httpRoute(s server, refs []gatewayv1.ParentReference, hostname string, labels map[string]string) *gatewayv1.HTTPRoute {
	r := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: compose.RouteName(c.id.Name, s.name, compose.RouteHTTP), Namespace: c.id.Namespace, Labels: labels},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: refs},
			Rules: []gatewayv1.HTTPRouteRule{{
				Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{
					Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To(c.prefix(s)),
				}}},
				Filters: []gatewayv1.HTTPRouteFilter{{
					Type: gatewayv1.HTTPRouteFilterURLRewrite,
					URLRewrite: &gatewayv1.HTTPURLRewriteFilter{Path: &gatewayv1.HTTPPathModifier{
						Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To("/"),
					}},
				}},
			}},
		},
	}
	rule := &r.Spec.Rules[0]
	for _, b := range compose.Backends(s.name+"-svc", s.canary, s.httpPort) {
		rule.BackendRefs = append(rule.BackendRefs, gatewayv1.HTTPBackendRef{BackendRef: b})
	}
	if m := compose.Mirror(s.canary, s.httpPort); m != nil {
		rule.Filters = append(rule.Filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: m})
	}
	if hostname != "" {
		r.Spec.Hostnames = []gatewayv1.Hostname{gatewayv1.Hostname(hostname)}
	}
	return r
}

func (c *Composer) prefix(s server) string { return "/" + c.id.Name + "/" + s.name + "/" }

// grpcRoute gives a server its own hostname: every Triton gRPC method has
// the same path (/inference.GRPCInferenceService/*), so gRPC cannot be
// routed by path.
func (c *Composer) grpcRoute(s server, refs []gatewayv1.ParentReference, hostname string, labels map[string]string) *gatewayv1.GRPCRoute {
	r := &gatewayv1.GRPCRoute{
		ObjectMeta: metav1.ObjectMeta{Name: compose.RouteName(c.id.Name, s.name, compose.RouteGRPC), Namespace: c.id.Namespace, Labels: labels},
		Spec: gatewayv1.GRPCRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: refs},
			Hostnames:       []gatewayv1.Hostname{gatewayv1.Hostname(c.grpcHost(s, hostname))},
			Rules:           []gatewayv1.GRPCRouteRule{{}},
		},
	}
	rule := &r.Spec.Rules[0]
	for _, b := range compose.Backends(s.name+"-svc", s.canary, s.grpcPort) {
		rule.BackendRefs = append(rule.BackendRefs, gatewayv1.GRPCBackendRef{BackendRef: b})
	}
	if m := compose.Mirror(s.canary, s.grpcPort); m != nil {
		rule.Filters = []gatewayv1.GRPCRouteFilter{{Type: gatewayv1.GRPCRouteFilterRequestMirror, RequestMirror: m}}
	}
	return r
}

func (c *Composer) grpcHost(s server, hostname string) string {
	return s.name + "." + c.id.Name + "." + hostname
}

// Schemas: whether HTTPRoutes are served (the Gateway API installed),
// asked while exposing and no route is composed yet.
func (c *Composer) Schemas(compose.Platform) map[string]*fnv1.SchemaSelector {
	if !c.gatewayEnabled() || c.routesComposed() {
		return nil
	}
	return map[string]*fnv1.SchemaSelector{reqRouteSchema: compose.KindHTTPRoute.Schema()}
}

// routesComposed: a route is observed, so the Gateway API is served.
func (c *Composer) routesComposed() bool {
	for name := range c.observed {
		if strings.HasPrefix(string(name), "httproute-") || strings.HasPrefix(string(name), "grpcroute-") {
			return true
		}
	}
	return false
}

// expose composes the routes and reports the Exposed condition and the
// endpoint (set only once a route is accepted).
func (c *Composer) expose(d *compose.Desired, p compose.Platform, servers []server, projectOK bool, required map[string][]resource.Required, labels map[string]string) (compose.Condition, string, error) {
	cond := compose.Condition{Type: ConditionExposed}
	routesExist := c.routesComposed()
	hostname := p.GatewayHostname
	if g := c.spec.Gateway; g != nil && g.Hostname != "" {
		hostname = g.Hostname
	}
	switch {
	case !c.gatewayEnabled():
		cond.Reason, cond.Message = "GatewayDisabled", "spec.gateway.enabled is false: servers are reached through their Services"
		return cond, "", nil
	case len(p.GatewayParentRefs) == 0:
		cond.Reason, cond.Message = "GatewayNotConfigured", "the platform names no gateway (function input gateway.parentRefs, or the kalypso-defaults EnvironmentConfig): ask the platform team to configure one"
		return cond, "", nil
	case !routesExist && len(required[reqRouteSchema]) == 0:
		cond.Reason, cond.Message = "GatewayAPIMissing", compose.CRDMissing(httpRouteCRD, ": install the Gateway API's standard-channel CRDs")
		return cond, "", nil
	case !projectOK && !routesExist:
		cond.Reason, cond.Message = "WaitingForProject", "routes are created once the project is valid"
		return cond, "", nil
	case len(servers) == 0:
		cond.Reason, cond.Message = "NoServers", "no KalypsoTritonServer references this application yet"
		return cond, "", nil
	}
	refs := parentRefs(p.GatewayParentRefs)
	accepted := 0
	for _, s := range servers {
		ok, err := d.Add(resource.Name("httproute-"+s.name), c.httpRoute(s, refs, hostname, labels), routeAccepted)
		if err != nil {
			return cond, "", err
		}
		if ok {
			accepted++
		}
		if hostname != "" {
			if _, err := d.Add(resource.Name("grpcroute-"+s.name), c.grpcRoute(s, refs, hostname, labels), routeAccepted); err != nil {
				return cond, "", err
			}
		}
	}
	grpc := "gRPC needs a hostname (spec.gateway.hostname or the platform's): no GRPCRoute"
	if hostname != "" {
		grpc = fmt.Sprintf("gRPC at %s:<port> for each server", c.grpcHost(servers[0], hostname))
	}
	if accepted == 0 {
		cond.Reason, cond.Message = "RoutesNotAccepted", fmt.Sprintf("%d HTTPRoute(s) composed; waiting for the gateway to accept them", len(servers))
		return cond, "", nil
	}
	endpoint := "/" + c.id.Name + "/"
	if hostname != "" {
		endpoint = p.GatewayScheme + "://" + hostname + endpoint
	}
	cond.Status, cond.Reason = true, "RoutesAccepted"
	cond.Message = fmt.Sprintf("%d of %d servers are routed under %s<server>/; %s", accepted, len(servers), endpoint, grpc)
	return cond, endpoint, nil
}
