package compose

import (
	"strings"
	"testing"
)

func TestCRDMissing(t *testing.T) {
	cases := map[string]struct {
		crd, what string
		prefix    string
	}{
		"Consequence": {
			crd: "servicemonitors.monitoring.coreos.com", what: ", so nothing scrapes the server: install the Prometheus Operator",
			prefix: "the servicemonitors.monitoring.coreos.com CRD is not installed, so nothing scrapes the server: install the Prometheus Operator (",
		},
		"RemedyOnly": {
			crd: "httproutes.gateway.networking.k8s.io", what: ": install the Gateway API's standard-channel CRDs",
			prefix: "the httproutes.gateway.networking.k8s.io CRD is not installed: install the Gateway API's standard-channel CRDs (",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := CRDMissing(tc.crd, tc.what)
			if !strings.HasPrefix(got, tc.prefix) {
				t.Errorf("CRDMissing(%q, %q) = %q, want prefix %q", tc.crd, tc.what, got, tc.prefix)
			}
			// The cure for core's stale discovery cache names this CRD, so
			// the command can be pasted as it is.
			if cure := "kubectl annotate --overwrite crd " + tc.crd + " kalypso-serving.io/refresh="; !strings.Contains(got, cure) {
				t.Errorf("CRDMissing(%q, %q) = %q, want it to contain %q", tc.crd, tc.what, got, cure)
			}
		})
	}
}
