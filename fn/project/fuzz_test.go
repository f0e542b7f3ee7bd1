package project

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
)

// FuzzQuotaHard maps arbitrary quota keys: never a panic, every refusal
// names the key's field, and every accepted key is one a ResourceQuota
// enforces (prefixed compute and extended resources, or an object count).
func FuzzQuotaHard(f *testing.F) {
	for _, k := range []string{"cpu", "memory", "nvidia.com/gpu", "hugepages-2Mi", "pods", "count/deployments.apps", "storage", "limits.cpu", "gpu", "kubernetes.io/x", "a/b/c"} {
		f.Add(k, true)
		f.Add(k, false)
	}
	f.Fuzz(func(t *testing.T, key string, limits bool) {
		list := corev1.ResourceList{corev1.ResourceName(key): resource.MustParse("1")}
		q := &v1alpha1.ResourceQuotaSpec{Requests: list}
		if limits {
			q = &v1alpha1.ResourceQuotaSpec{Limits: list}
		}
		hard, err := quotaHard(q, "q")
		if err != nil {
			if !strings.Contains(err.Error(), "q.") {
				t.Fatalf("quotaHard(%q): error does not name the field: %v", key, err)
			}
			return
		}
		for k := range hard {
			s := string(k)
			if !strings.HasPrefix(s, "limits.") && !strings.HasPrefix(s, "requests.") && !objectCount(k) {
				t.Fatalf("quotaHard(%q) produced key %q, which a quota does not enforce", key, s)
			}
			if strings.HasPrefix(s, "limits.") && !strings.HasPrefix(s, "limits.cpu") && !strings.HasPrefix(s, "limits.memory") && !strings.HasPrefix(s, "limits.ephemeral-storage") {
				t.Fatalf("quotaHard(%q) produced %q: only cpu, memory and ephemeral-storage have a limits side", key, s)
			}
		}
	})
}
