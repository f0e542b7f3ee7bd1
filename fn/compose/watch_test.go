package compose

import (
	"testing"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"k8s.io/utils/ptr"
)

func TestWatchPrimers(t *testing.T) {
	obj := func(apiVersion, kind, namespace, name string) *composed.Unstructured {
		u := composed.New()
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetNamespace(namespace)
		u.SetName(name)
		return u
	}
	desired := func(objs ...*composed.Unstructured) map[resource.Name]*resource.DesiredComposed {
		out := map[resource.Name]*resource.DesiredComposed{}
		for _, o := range objs {
			out[resource.Name(o.GetKind()+"-"+o.GetNamespace()+"-"+o.GetName())] = &resource.DesiredComposed{Resource: o}
		}
		return out
	}
	observed := func(objs ...*composed.Unstructured) map[resource.Name]resource.ObservedComposed {
		out := map[resource.Name]resource.ObservedComposed{}
		for _, o := range objs {
			out[resource.Name(o.GetKind()+"-"+o.GetNamespace()+"-"+o.GetName())] = resource.ObservedComposed{Resource: o}
		}
		return out
	}
	cases := map[string]struct {
		reason   string
		observed map[resource.Name]resource.ObservedComposed
		desired  map[resource.Name]*resource.DesiredComposed
		want     map[string]*fnv1.ResourceSelector
	}{
		"SeveralNewOfAKind": {
			reason: "Several quotas, none observed: the first by namespace and name is required, in its namespace.",
			desired: desired(
				obj("v1", "ResourceQuota", "p-prod", "p-quota"),
				obj("v1", "ResourceQuota", "p-dev", "p-quota"),
				obj("v1", "Namespace", "", "p-prod"),
				obj("v1", "Namespace", "", "p-dev"),
			),
			want: map[string]*fnv1.ResourceSelector{
				"watch-primer/v1/ResourceQuota": {ApiVersion: "v1", Kind: "ResourceQuota", Namespace: ptr.To("p-dev"), Match: &fnv1.ResourceSelector_MatchName{MatchName: "p-quota"}},
				"watch-primer/v1/Namespace":     {ApiVersion: "v1", Kind: "Namespace", Match: &fnv1.ResourceSelector_MatchName{MatchName: "p-dev"}},
			},
		},
		"OneNewOfAKind": {
			reason:  "A single new object of a kind starts a single handler: nothing to prime.",
			desired: desired(obj("apps/v1", "Deployment", "ns", "a")),
			want:    map[string]*fnv1.ResourceSelector{},
		},
		"KindAlreadyObserved": {
			reason:   "Core Gets observed objects through its cache before it starts watches: the kind's informer is active.",
			observed: observed(obj("v1", "ResourceQuota", "p-dev", "p-quota")),
			desired: desired(
				obj("v1", "ResourceQuota", "p-prod", "p-quota"),
				obj("v1", "ResourceQuota", "p-dev", "p-quota"),
			),
			want: map[string]*fnv1.ResourceSelector{},
		},
		"SameKindOtherGroup": {
			reason:   "Kinds are told apart by apiVersion.",
			observed: observed(obj("gateway.networking.k8s.io/v1", "HTTPRoute", "ns", "r")),
			desired: desired(
				obj("example.org/v1", "HTTPRoute", "ns", "b"),
				obj("example.org/v1", "HTTPRoute", "ns", "a"),
			),
			want: map[string]*fnv1.ResourceSelector{
				"watch-primer/example.org/v1/HTTPRoute": {ApiVersion: "example.org/v1", Kind: "HTTPRoute", Namespace: ptr.To("ns"), Match: &fnv1.ResourceSelector_MatchName{MatchName: "a"}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := WatchPrimers(tc.observed, tc.desired)
			if diff := cmp.Diff(tc.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
