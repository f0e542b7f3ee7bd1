package tritonserver

import (
	"github.com/crossplane/function-sdk-go/resource/composed"
	appsv1 "k8s.io/api/apps/v1"

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
	// progressPaused and progressResumed: kubectl rollout pause and
	// resume (sync.go checkPausedConditions).
	progressPaused  = "DeploymentPaused"
	progressResumed = "DeploymentResumed"
)

// serves is the readiness of the server's Deployment: it serves the
// server's current spec. Its latest rollout is complete (Kubernetes'
// Progressing reason NewReplicaSetAvailable, which it sets only once every
// replica of the new template is available and keeps through later scales),
// every counted pod runs the current template, and a replica is available.
//
// So a scale, by the spec or by an autoscaler, keeps the server Ready while
// the new replicas start, however many it adds. Requiring every replica
// (kubectl rollout status) would turn the server, its application's ready
// count and every alert on them False at each autoscaler scale-up, and cost
// the composite a burst of status writes, each a watch event that spends
// Crossplane core's circuit breaker tokens. The Available condition is no
// test: with maxUnavailable 1 it reads True with one replica and none
// running, and False during a scale of two or more (sync.go
// calculateStatus).
//
// Where the Progressing reason does not track the rollout, every replica
// must be updated and available: without a progress deadline Kubernetes
// keeps no Progressing condition; a paused Deployment reads
// DeploymentPaused; and Recreate, rolled back to a ReplicaSet it kept,
// keeps NewReplicaSetAvailable from before while the old pods are gone and
// the kept ones start (sync.go getNewReplicaSet reuses the ReplicaSet
// without a new condition; progress.go then sees replicas == updated and
// tracks nothing). A rolling update moves to ReplicaSetUpdated as soon as
// it scales a ReplicaSet down.
//
// The counts describe the generation the controller last saw. Until it
// sees the latest (a scale or spec change just applied), the server keeps
// its last answer (its ServerAvailable condition) rather than flap for that
// moment, unless the controller could not create the new template's
// ReplicaSet: it then never observes the generation.
func (c *Composer) serves(o *composed.Unstructured) bool {
	return deploymentServes(o, compose.ConditionStatus(c.xr.Resource.Object, c.availabilityCondition()) == "True")
}

// availabilityCondition is the condition that says whether the track
// serves.
func (c *Composer) availabilityCondition() string {
	if c.canary != nil {
		return ConditionCanaryHealthy
	}
	return ConditionServerAvailable
}

// deploymentServes is serves, given the track's last answer.
func deploymentServes(o *composed.Unstructured, servedBefore bool) bool {
	progress := compose.FindCondition(o.Object, "Progressing")
	reason, _ := progress["reason"].(string)
	gen, _ := compose.Int(o.Object, "metadata", "generation")
	seen, _ := compose.Int(o.Object, "status", "observedGeneration")
	if seen < gen {
		return reason != progressRSCreateFailed && servedBefore
	}
	want, available := deploymentCounts(o)
	if want == 0 {
		return true
	}
	pods, _ := compose.Int(o.Object, "status", "replicas")
	updated, _ := compose.Int(o.Object, "status", "updatedReplicas")
	recreate := compose.Str(o.Object, "spec", "strategy", "type") == string(appsv1.RecreateDeploymentStrategyType)
	if progress == nil || recreate || reason == progressPaused || reason == progressResumed {
		return updated == want && pods == want && available == want
	}
	return reason == progressComplete && updated == pods && available > 0
}
