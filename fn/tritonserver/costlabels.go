package tritonserver

import (
	"github.com/crossplane/function-sdk-go/resource"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// Cost labels (README, "Showback"): the platform's cost label keys
// (showback.costLabelKeys) that the server's namespace carries, which its
// project sets there, go onto the Deployment's own labels, never onto the
// pod template: a changed cost center must not restart a GPU server.

const reqNamespace = "namespace"

// readsCostLabels: the platform has cost label keys to copy.
func readsCostLabels(p compose.Platform) bool { return len(p.CostLabelKeys) > 0 }

// costLabels are the namespace's labels of the platform's cost label keys.
func costLabels(p compose.Platform, required map[string][]resource.Required) map[string]string {
	items := required[reqNamespace]
	if len(items) == 0 {
		return nil
	}
	nsLabels := items[0].Resource.GetLabels()
	out := map[string]string{}
	for _, k := range p.CostLabelKeys {
		if v, ok := nsLabels[k]; ok {
			out[k] = v
		}
	}
	return out
}
