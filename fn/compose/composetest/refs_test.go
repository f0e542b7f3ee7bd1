package composetest

import (
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
)

func TestDesiredRefKeysCollide(t *testing.T) {
	obj := func(apiVersion, kind, ns, name string) *resource.DesiredComposed {
		u := composed.New()
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetNamespace(ns)
		u.SetName(name)
		return &resource.DesiredComposed{Resource: u}
	}
	cases := map[string]struct {
		reason  string
		desired map[resource.Name]*resource.DesiredComposed
		want    string // a substring of the error; empty: none
	}{
		"SameNameOtherNamespace": {
			reason: "Core v2.2.1 cannot order two quotas named alike in two namespaces.",
			desired: map[resource.Name]*resource.DesiredComposed{
				"quota-dev": obj("v1", "ResourceQuota", "p-dev", "p-quota"), "quota-prod": obj("v1", "ResourceQuota", "p-prod", "p-quota"),
			},
			want: `composed quota-dev and quota-prod are both v1 ResourceQuota "p-quota"`,
		},
		"SameNameOtherKind": {
			reason: "The kind is part of the key.",
			desired: map[resource.Name]*resource.DesiredComposed{
				"quota": obj("v1", "ResourceQuota", "p", "p"), "limits": obj("v1", "LimitRange", "p", "p"),
			},
		},
		"SameNameOtherGroup": {
			reason: "So is the apiVersion.",
			desired: map[resource.Name]*resource.DesiredComposed{
				"usage": obj("protection.crossplane.io/v1beta1", "Usage", "p", "u"), "legacy": obj("apiextensions.crossplane.io/v1beta1", "Usage", "p", "u"),
			},
		},
		"UniqueNames": {
			reason: "Names per namespace keep the order stable.",
			desired: map[resource.Name]*resource.DesiredComposed{
				"quota.dev": obj("v1", "ResourceQuota", "p-dev", "p-dev-quota"), "quota.prod": obj("v1", "ResourceQuota", "p-prod", "p-prod-quota"),
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := DesiredRefKeysCollide(tc.desired)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%s\nunexpected error: %v", tc.reason, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("%s\nwant an error containing %q, got %v", tc.reason, tc.want, err)
			}
		})
	}
}
