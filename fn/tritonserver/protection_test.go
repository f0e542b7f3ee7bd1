package tritonserver

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	protectionv1beta1 "github.com/crossplane/crossplane/apis/v2/protection/v1beta1"
)

// TestUsageHandOff: a server protects its application with a Usage of its
// own only until the application protects itself, so the idle cost of
// Crossplane's Usage controller is one Usage per application.
func TestUsageHandOff(t *testing.T) {
	appUsage := `{apiVersion: protection.crossplane.io/v1beta1, kind: Usage, metadata: {name: classifier-has-servers, namespace: vision-dev},
  spec: {of: {apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, resourceRef: {name: classifier}}, reason: "has servers", replayDeletion: false}}`
	deleting := `{apiVersion: protection.crossplane.io/v1beta1, kind: Usage, metadata: {name: classifier-has-servers, namespace: vision-dev, deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: [usage.apiextensions.crossplane.io]},
  spec: {of: {apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, resourceRef: {name: classifier}}, reason: "has servers"}}`
	running := created(t, "", deployAvailable)
	cases := map[string]struct {
		reason     string
		observed   map[string]string
		protection []string
		want       bool // the server composes its own Usage
	}{
		"FirstCreate": {
			reason: "A new server in an application that does not protect itself yet composes its own Usage with its Deployment.",
			want:   true,
		},
		"ApplicationNotYetProtecting": {
			reason:   "A running server keeps its Usage while the application's is missing.",
			observed: running, want: true,
		},
		"ApplicationProtects": {
			reason:   "Once the application's Usage of itself exists, the server's own is dropped (Crossplane deletes it).",
			observed: running, protection: []string{appUsage}, want: false,
		},
		"FirstCreateProtected": {
			reason:     "A new server in an application that protects itself composes none.",
			protection: []string{appUsage}, want: false,
		},
		"ApplicationProtectionGoing": {
			reason:   "An application's Usage being deleted (it counted no server) does not count: the server composes its own.",
			observed: running, protection: []string{deleting}, want: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := map[string][]string{reqApplication: {readyApp}}
			if tc.protection != nil {
				req[reqAppProtection] = tc.protection
			}
			r := scene{xr: serverXR("", snapshot), observed: tc.observed, required: req}.run(t, int64s, platform(t))
			if r.Fatal != nil {
				t.Fatal(r.Fatal)
			}
			_, got := r.Desired[resUsage]
			if got != tc.want {
				t.Fatalf("%s\nserver's own Usage composed: want %v, got %v", tc.reason, tc.want, got)
			}
			if !got {
				return
			}
			u := decodeStrict[protectionv1beta1.Usage](t, r, resUsage)
			want := protectionv1beta1.UsageSpec{
				Of: protectionv1beta1.NamespacedResource{APIVersion: "serving.kalypso.io/v1alpha1", Kind: "KalypsoApplication",
					ResourceRef: &protectionv1beta1.NamespacedResourceRef{Name: "classifier"}},
				Reason:         u.Spec.Reason,
				ReplayDeletion: u.Spec.ReplayDeletion,
			}
			if diff := cmp.Diff(want, u.Spec); diff != "" || u.Name != "resnet-uses-application" || u.Spec.By != nil || u.Spec.ReplayDeletion == nil || *u.Spec.ReplayDeletion {
				t.Errorf("%s\nthe server's Usage must be reason-only, without replay, of its application: %s %+v", tc.reason, diff, u)
			}
		})
	}
}
