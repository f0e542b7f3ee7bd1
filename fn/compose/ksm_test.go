package compose

import "testing"

func TestKSMLabel(t *testing.T) {
	for key, want := range map[string]string{
		LabelProject:  "label_kalypso_serving_io_project",
		"cost-center": "label_cost_center",
		"CostCenter":  "label_cost_center",
	} {
		if got := KSMLabel(key); got != want {
			t.Errorf("KSMLabel(%q) = %q, want %q (kube-state-metrics internal/store/utils.go)", key, got, want)
		}
	}
}
