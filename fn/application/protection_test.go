package application

import (
	"testing"

	protectionv1beta1 "github.com/crossplane/crossplane/apis/v2/protection/v1beta1"
	"github.com/google/go-cmp/cmp"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
)

// TestProtection: an application refuses its own deletion through one
// reason-only Usage while it counts servers, and composes none without
// them (Crossplane then deletes it, and the application can be deleted).
func TestProtection(t *testing.T) {
	required := func(servers ...string) map[string][]string {
		return map[string][]string{reqProject: {readyProject}, reqSecret: {s3Secret}, reqServers: servers}
	}
	cases := map[string]struct {
		reason   string
		required map[string][]string
		want     bool
	}{
		"NoServers":      {reason: "Without servers there is nothing to protect.", required: required(), want: false},
		"OtherServers":   {reason: "Servers of another application do not count.", required: required(otherServer), want: false},
		"ReadyServer":    {reason: "A server makes the application protect itself.", required: required(readyServer), want: true},
		"PendingServer":  {reason: "…whether or not it is Ready.", required: required(pendingServer), want: true},
		"ProjectMissing": {reason: "Protection does not depend on the project being valid.", required: map[string][]string{reqSecret: {s3Secret}, reqServers: {readyServer}}, want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := New(xr(t, appMeta, "  projectRef: vision\n"+s3Storage), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Compose(platform(t, false), composetest.Required(t, tc.required))
			if got.Fatal != nil {
				t.Fatal(got.Fatal)
			}
			d, ok := got.Desired[resProtection]
			if ok != tc.want {
				t.Fatalf("%s\nUsage composed: want %v, got %v", tc.reason, tc.want, ok)
			}
			if !ok {
				return
			}
			u := composetest.Decode[protectionv1beta1.Usage](t, d)
			want := protectionv1beta1.NamespacedResource{APIVersion: "serving.kalypso.io/v1alpha1", Kind: "KalypsoApplication", ResourceRef: &protectionv1beta1.NamespacedResourceRef{Name: "detector"}}
			if diff := cmp.Diff(want, u.Spec.Of); diff != "" {
				t.Errorf("%s\nspec.of: -want, +got:\n%s", tc.reason, diff)
			}
			if u.Name != "detector-has-servers" || u.Namespace != "vision-prod" || u.Spec.By != nil || u.Spec.Reason == nil || u.Spec.ReplayDeletion == nil || *u.Spec.ReplayDeletion {
				t.Errorf("%s\nwant a reason-only Usage detector-has-servers in vision-prod without replay, got %+v", tc.reason, u)
			}
		})
	}
}

// TestClaimFlavourProtection: the claim flavour's composites are cluster
// scoped, so the application protects its composite with a ClusterUsage
// named after its claim, which its servers look up by that name.
func TestClaimFlavourProtection(t *testing.T) {
	c, err := New(composetest.Composite(t, claimApplicationXR), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Compose(platform(t, false), composetest.Required(t, map[string][]string{reqProject: {readyProject}, reqSecret: {s3Secret}, reqServers: {readyServer}}))
	u := composetest.Decode[protectionv1beta1.ClusterUsage](t, got.Desired[resProtection])
	want := protectionv1beta1.Resource{APIVersion: "serving.kalypso.io/v1alpha1", Kind: "XKalypsoApplication", ResourceRef: &protectionv1beta1.ResourceRef{Name: "detector-x7k2p"}}
	if diff := cmp.Diff(want, u.Spec.Of); diff != "" || u.Name != "vision-prod.detector.has-servers" || u.Spec.By != nil {
		t.Errorf("want a reason-only ClusterUsage vision-prod.detector.has-servers of the composite, got %s %+v", diff, u)
	}
}

// TestSchemas: whether HTTPRoutes are served is asked through a required
// schema, only while exposing and until a route is composed.
func TestSchemas(t *testing.T) {
	route := `{apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, metadata: {name: yolo, namespace: vision-prod}}`
	cases := map[string]struct {
		reason   string
		spec     string
		observed map[string]string
		want     bool
	}{
		"NotExposed":    {reason: "Without exposure nothing is checked.", spec: s3Storage},
		"Exposed":       {reason: "Exposing without a route yet: the kind is checked.", spec: s3Storage + "  gateway: {enabled: true}\n", want: true},
		"RouteComposed": {reason: "A route is observed: the kind is served.", spec: s3Storage + "  gateway: {enabled: true}\n", observed: map[string]string{"httproute-yolo": route}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := New(xr(t, appMeta, "  projectRef: vision\n"+tc.spec), composetest.Observed(t, tc.observed))
			if err != nil {
				t.Fatal(err)
			}
			s, ok := c.Schemas(compose.Platform{})[reqRouteSchema]
			if ok != tc.want {
				t.Fatalf("%s\nschema asked: want %v, got %v", tc.reason, tc.want, ok)
			}
			if ok && (s.GetApiVersion() != "gateway.networking.k8s.io/v1" || s.GetKind() != "HTTPRoute") {
				t.Errorf("schema selector: %v", s)
			}
		})
	}
}
