package project

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

// TestLimitRangeEphemeralStorage: Triton servers request ephemeral storage
// for their model cache, so projects put requests.ephemeral-storage in
// their quotas; the default LimitRange then gives every other container an
// ephemeral-storage request, or the quota would refuse its pods.
func TestLimitRangeEphemeralStorage(t *testing.T) {
	p := composetest.Platform(t, &v1beta1.Input{})
	defaults := []corev1.LimitRangeItem{{
		Type:           corev1.LimitTypeContainer,
		Default:        list("cpu", "2", "memory", "4Gi"),
		DefaultRequest: list("cpu", "100m", "memory", "256Mi", "ephemeral-storage", "1Gi"),
	}}
	own := []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, DefaultRequest: list("ephemeral-storage", "2Gi")}}
	cases := map[string]struct {
		reason string
		env    v1alpha1.EnvironmentSpec
		hard   corev1.ResourceList
		want   []corev1.LimitRangeItem
	}{
		"EphemeralStorageOnly": {
			reason: "A quota on requests.ephemeral-storage alone gets the default LimitRange, with its ephemeral-storage request.",
			hard:   list("requests.ephemeral-storage", "200Gi"), want: defaults,
		},
		"ComputeQuota": {
			reason: "A cpu quota's default LimitRange carries the ephemeral-storage request too.",
			hard:   list("requests.cpu", "16"), want: defaults,
		},
		"GPUOnly": {
			reason: "A quota on GPUs only needs no defaults.",
			hard:   list("requests.nvidia.com/gpu", "4"),
		},
		"OwnLimits": {
			reason: "An environment's own limits are used as given.",
			env:    v1alpha1.EnvironmentSpec{LimitRange: &v1alpha1.LimitRangeSpec{Limits: own}},
			hard:   list("requests.ephemeral-storage", "200Gi"), want: own,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := limitRangeItems(p, tc.env, tc.hard)
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b kresource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
				t.Errorf("%s\nlimit range: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
