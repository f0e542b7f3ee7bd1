package compose

import (
	"maps"
	"slices"
	"testing"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	"github.com/google/go-cmp/cmp"
)

func TestHoldBackNewKinds(t *testing.T) {
	obj := func(apiVersion, kind, namespace, name string) *composed.Unstructured {
		u := composed.New()
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetNamespace(namespace)
		u.SetName(name)
		return u
	}
	key := func(o *composed.Unstructured) resource.Name {
		return resource.Name(o.GetKind() + "-" + o.GetNamespace() + "-" + o.GetName())
	}
	desired := func(objs ...*composed.Unstructured) map[resource.Name]*resource.DesiredComposed {
		out := map[resource.Name]*resource.DesiredComposed{}
		for _, o := range objs {
			out[key(o)] = &resource.DesiredComposed{Resource: o}
		}
		return out
	}
	observed := func(objs ...*composed.Unstructured) map[resource.Name]resource.ObservedComposed {
		out := map[resource.Name]resource.ObservedComposed{}
		for _, o := range objs {
			out[key(o)] = resource.ObservedComposed{Resource: o}
		}
		return out
	}
	cases := map[string]struct {
		reason   string
		observed map[resource.Name]resource.ObservedComposed
		desired  map[resource.Name]*resource.DesiredComposed
		want     []resource.Name
		held     int
	}{
		"SeveralNewOfAKind": {
			reason: "Of several new Namespaces only the first by name is composed, and what a held-back Namespace holds waits with it; of the other quotas only one is left, so it goes.",
			desired: desired(
				obj("v1", "Namespace", "", "p-prod"),
				obj("v1", "Namespace", "", "p-dev"),
				obj("v1", "ResourceQuota", "p-prod", "p-quota"),
				obj("v1", "ResourceQuota", "shared", "p-quota"),
				obj("v1", "LimitRange", "p-prod", "p-limits"),
			),
			want: []resource.Name{"Namespace--p-dev", "ResourceQuota-shared-p-quota"},
			held: 3,
		},
		"ObservedObjectStays": {
			reason:   "An object core already observes is never dropped with a held-back Namespace: core would delete it.",
			observed: observed(obj("v1", "ConfigMap", "p-prod", "kept")),
			desired: desired(
				obj("v1", "Namespace", "", "p-prod"),
				obj("v1", "Namespace", "", "p-dev"),
				obj("v1", "ConfigMap", "p-prod", "kept"),
			),
			want: []resource.Name{"ConfigMap-p-prod-kept", "Namespace--p-dev"},
			held: 1,
		},
		"OneNewOfAKind": {
			reason:  "A single new object of a kind starts a single handler: nothing is held back.",
			desired: desired(obj("apps/v1", "Deployment", "ns", "a"), obj("v1", "Service", "ns", "a")),
			want:    []resource.Name{"Deployment-ns-a", "Service-ns-a"},
		},
		"KindAlreadyObserved": {
			reason:   "A composite that already composes the kind has its watch: new objects of it all go at once.",
			observed: observed(obj("v1", "ResourceQuota", "p-dev", "p-quota")),
			desired: desired(
				obj("v1", "ResourceQuota", "p-prod", "p-quota"),
				obj("v1", "ResourceQuota", "p-dev", "p-quota"),
				obj("v1", "ResourceQuota", "p-lab", "p-quota"),
			),
			want: []resource.Name{"ResourceQuota-p-dev-p-quota", "ResourceQuota-p-lab-p-quota", "ResourceQuota-p-prod-p-quota"},
		},
		"SameKindOtherGroup": {
			reason:   "Kinds are told apart by apiVersion.",
			observed: observed(obj("gateway.networking.k8s.io/v1", "HTTPRoute", "ns", "r")),
			desired: desired(
				obj("gateway.networking.k8s.io/v1", "HTTPRoute", "ns", "r"),
				obj("example.org/v1", "HTTPRoute", "ns", "b"),
				obj("example.org/v1", "HTTPRoute", "ns", "a"),
			),
			want: []resource.Name{"HTTPRoute-ns-a", "HTTPRoute-ns-r"},
			held: 1,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			held := HoldBackNewKinds(tc.observed, tc.desired)
			got := slices.Sorted(maps.Keys(tc.desired))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
			if held != tc.held {
				t.Errorf("%s\nheld back %d, want %d", tc.reason, held, tc.held)
			}
		})
	}
}
