package tritonserver

import (
	"github.com/crossplane/function-sdk-go/resource/composed"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// Reasons of the Deployment's Progressing condition (k8s.io/kubernetes
// pkg/controller/deployment/util/deployment_util.go).
const (
	// progressComplete: the latest rollout completed; kept through later
	// scales (pkg/controller/deployment/progress.go syncRolloutStatus
	// checks progress only while the rollout is not complete).
	progressComplete = "NewReplicaSetAvailable"
	// progressRSCreateFailed: the ReplicaSet of a new template could not
	// be created (a webhook, a quota on ReplicaSets); the controller
	// retries without observing the generation (sync.go getNewReplicaSet).
	progressRSCreateFailed = "ReplicaSetCreateError"
	// progressTimedOut: past progressDeadlineSeconds.
	progressTimedOut = "ProgressDeadlineExceeded"
)

// serves is the readiness of the server's Deployment: it serves the
// server's current spec. Its latest rollout is complete (Kubernetes'
// Progressing reason NewReplicaSetAvailable, which it sets only once every
// replica of the new template is available and keeps through later scales),
// every counted pod runs the current template, and a replica is available.
//
// So a scale, by the spec or by an autoscaler, keeps the server Ready while
// the new replicas start, however many it adds and whatever the strategy.
// Requiring every replica (kubectl rollout status) would turn the server,
// its application's ready count and every alert on them False at each
// autoscaler scale-up, and cost the composite a burst of status writes,
// each a watch event that spends Crossplane core's circuit breaker tokens.
// The Available condition is no test: with maxUnavailable 1 it reads True
// with one replica and none running, and False during a scale of two or
// more (sync.go calculateStatus).
//
// The counts describe the generation the controller last saw. Until it
// sees the latest (a scale or spec change just applied), the server keeps
// its last answer (its ServerAvailable condition) rather than flap for that
// moment, unless the controller could not create the new template's
// ReplicaSet: it then never observes the generation.
func (c *Composer) serves(o *composed.Unstructured) bool {
	progress := compose.FindCondition(o.Object, "Progressing")
	reason, _ := progress["reason"].(string)
	gen, _ := compose.Int(o.Object, "metadata", "generation")
	seen, _ := compose.Int(o.Object, "status", "observedGeneration")
	if seen < gen {
		return reason != progressRSCreateFailed && compose.ConditionStatus(c.xr.Resource.Object, ConditionServerAvailable) == "True"
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
	if progress == nil {
		// progressDeadlineSeconds unset: Kubernetes tracks no progress
		// (progress.go), so only a complete Deployment tells.
		return updated == want && pods == want && available == want
	}
	return reason == progressComplete && updated == pods && available > 0
}
