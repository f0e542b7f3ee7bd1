package tritonserver

import (
	"github.com/crossplane/function-sdk-go/resource/composed"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// serves is the readiness of the server's Deployment: it serves the
// server's current spec. Every pod runs the current template (a rollout is
// over), at least one replica is available, and the Deployment has its
// minimum availability: Kubernetes sets Available once availableReplicas
// >= replicas - maxUnavailable (pkg/controller/deployment/sync.go
// calculateStatus), so with one replica and one allowed unavailable it
// reads Available with nothing running, hence the replica count.
//
// A scale, by the spec or by an autoscaler, changes neither: the server
// stays Ready while new replicas start. Requiring every replica instead
// (kubectl rollout status) would turn the server, its application's ready
// count and every alert on them False at each autoscaler scale-up, and
// costs the composite a burst of status writes, each a watch event that
// spends Crossplane core's circuit breaker tokens.
//
// The controller's counts describe the generation it last saw. Until it
// sees the latest (a scale or spec change just applied), the server keeps
// its last answer (its ServerAvailable condition) rather than flap for
// that moment: a new pod template then turns it not Ready a moment later,
// once the counts show old pods.
func (c *Composer) serves(o *composed.Unstructured) bool {
	gen, _ := compose.Int(o.Object, "metadata", "generation")
	seen, _ := compose.Int(o.Object, "status", "observedGeneration")
	if seen < gen {
		return compose.ConditionStatus(c.xr.Resource.Object, ConditionServerAvailable) == "True"
	}
	want, found := compose.Int(o.Object, "spec", "replicas")
	if !found {
		want = 1
	}
	if want == 0 {
		return true
	}
	pods, _ := compose.Int(o.Object, "status", "replicas")
	updated, _ := compose.Int(o.Object, "status", "updatedReplicas")
	available, _ := compose.Int(o.Object, "status", "availableReplicas")
	return updated == pods && available > 0 && compose.ConditionStatus(o.Object, "Available") == "True"
}
