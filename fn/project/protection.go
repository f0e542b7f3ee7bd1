package project

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	protectionv1beta1 "github.com/crossplane/crossplane/apis/v2/protection/v1beta1"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	corev1 "k8s.io/api/core/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// Deletion protection of a project (README "Deletion protection").
//
// The project composes a reason-only ClusterUsage of itself before anything
// else, and creates environment namespaces only once that ClusterUsage is
// observed Ready. Crossplane's Usage controller puts the crossplane.io/in-use
// label on the used object with a client Update before it marks the Usage
// Ready (internal/controller/protection/usage/reconciler.go, v2.2.1: the
// label at lines 475-494, Available() at 535), and its webhook refuses
// deleting a labelled object while a Usage of it exists
// (internal/webhook/protection/usage/handler.go). So a project is protected
// from before its first namespace exists, whatever the project knows about
// applications: nothing depends on its polling.
//
// It is released only on request, spec.release, and only when no
// application can be lost: every environment's ResourceQuota then allows
// count/kalypsoapplications.serving.kalypso.io: 0 (the object count quota of
// the namespaced kind, claim or XR; the API server's quota admission counts
// a custom resource it has no evaluator for with a generic object count
// evaluator, k8s.io/apiserver pkg/admission/plugin/resourcequota/controller.go
// Evaluate and pkg/quota/v1/generic/evaluator.go), that quota is enforced
// (admission checks status.hard, which only the quota controller writes,
// controller.go CheckRequest), the quota controller counts none, and no
// application is found. Only then is the ClusterUsage dropped; Crossplane
// deletes it, its Usage controller removes the label, and the delete goes
// through.

// usageName is the ClusterUsage's pipeline name.
const usageName resource.Name = "usage"

// countApplications is the object count quota key of KalypsoApplications
// in a namespace: the v2 flavour's namespaced XR and the claim flavour's
// claim share the plural and group (apis/claims/xkalypsoapplications: claim
// kalypsoapplications.serving.kalypso.io; its XR, xkalypsoapplications, is
// cluster scoped and in no namespace's quota).
const countApplications corev1.ResourceName = "count/kalypsoapplications.serving.kalypso.io"

// ConditionReleased says whether the project may be deleted.
const ConditionReleased = "Released"

// Reasons of ConditionReleased.
const (
	ReasonProtected         = "Protected"
	ReasonProtectionPending = "ProtectionPending"
	ReasonReleasePending    = "ReleasePending"
	ReasonReleased          = "Released"
	ReasonNothingToProtect  = "NothingToProtect"
)

// protection is what a call knows about the project's protection.
type protection struct {
	// needed: the project has environments or has composed something. A
	// project that never had either composes no ClusterUsage.
	needed bool
	// protected: the ClusterUsage is observed Ready, so the project carries
	// the in-use label and deleting it is refused.
	protected bool
	// closeQuotas: every environment's quota admits no new application.
	closeQuotas bool
	// newNamespaces: a namespace that does not exist yet may be created.
	newNamespaces bool
}

// protectionOf decides from the spec and the observed state. A quota that
// was closed stays closed until the ClusterUsage protects the project again
// (release set back to false).
func (c *Composer) protectionOf() protection {
	protected := false
	if u, ok := c.observed[usageName]; ok {
		protected = usageReady(u.Resource)
	}
	closed := false
	for _, o := range c.observed {
		if o.Resource.GetKind() == "ResourceQuota" && quotaSpecClosed(o.Resource) {
			closed = true
		}
	}
	return protection{
		needed:        len(c.envs) > 0 || len(c.observed) > 0,
		protected:     protected,
		closeQuotas:   c.spec.Release || (closed && !protected),
		newNamespaces: protected && !c.spec.Release,
	}
}

// closedQuota adds the application count of 0 to a quota's hard limits,
// over whatever the environment's own quota says about it.
func closedQuota(hard corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	maps.Copy(out, hard)
	out[countApplications] = kresource.MustParse("0")
	return out
}

func quotaSpecClosed(q *composed.Unstructured) bool {
	return isZero(q.Object, "spec", "hard")
}

// quotaEnforcesClosed: the quota controller has taken over the closed hard
// limit (admission reads status.hard) and counts no application.
func quotaEnforcesClosed(q *composed.Unstructured) bool {
	return quotaSpecClosed(q) && isZero(q.Object, "status", "hard") && isZero(q.Object, "status", "used")
}

// quotaRefusesNew: the quota controller has taken over the closed hard
// limit, so admission refuses every new application (with the kind counted,
// used + 1 exceeds 0; not counted yet, "status unknown for quota",
// k8s.io/apiserver plugin/resourcequota/controller.go CheckRequest), and it
// counts none. A removed environment's namespace goes then. Unlike a
// release it does not wait for the count itself: kube-controller-manager
// recounts a quota for a newly discovered kind only at its full resync
// (--resource-quota-sync-period, 5 min), and an application created before
// the quota closed is in Crossplane's cache, which the project reads, long
// before the quota controller has written status.hard.
func quotaRefusesNew(q *composed.Unstructured) bool {
	used, _, _ := unstructured.NestedStringMap(q.Object, "status", "used")
	_, counted := used[string(countApplications)]
	return quotaSpecClosed(q) && isZero(q.Object, "status", "hard") && (!counted || isZero(q.Object, "status", "used"))
}

// isZero reports whether the application count at path is present and 0.
func isZero(obj map[string]any, path ...string) bool {
	m, _, _ := unstructured.NestedStringMap(obj, path...)
	v, ok := m[string(countApplications)]
	if !ok {
		return false
	}
	q, err := kresource.ParseQuantity(v)
	return err == nil && q.IsZero()
}

// applications lists every KalypsoApplication found in the project's
// environment namespaces (removed ones included), whatever project it names:
// deleting the project deletes the namespaces it created with everything in
// them.
func applications(required map[string][]resource.Required) []string {
	var apps []string
	for key, items := range required {
		if !strings.HasPrefix(key, "applications-") {
			continue
		}
		for _, a := range items {
			apps = append(apps, a.Resource.GetNamespace()+"/"+a.Resource.GetName())
		}
	}
	slices.Sort(apps)
	return slices.Compact(apps)
}

// releaseState is the outcome of a release request.
type releaseState struct {
	released bool
	// waiting says what the release waits for, when requested and not done.
	waiting []string
}

// release decides whether a requested release is complete: no application
// found, and every environment with a namespace has its quota closed and
// enforced. quotaEnvs are the environments whose namespace exists.
func (c *Composer) release(apps []string, quotaEnvs []string) releaseState {
	if !c.spec.Release {
		return releaseState{}
	}
	var waiting []string
	if len(apps) > 0 {
		waiting = append(waiting, "applications to be deleted: "+namedApplications(apps))
	}
	var open []string
	for _, env := range quotaEnvs {
		if q, ok := c.observed[partName("quota", env)]; !ok || !quotaEnforcesClosed(q.Resource) {
			open = append(open, env)
		}
	}
	if len(open) > 0 {
		waiting = append(waiting, fmt.Sprintf("the ResourceQuotas of environments %s to admit no new application (%s: 0)", strings.Join(open, ", "), countApplications))
	}
	return releaseState{released: len(waiting) == 0, waiting: waiting}
}

// maxNamedApplications bounds the usage's reason.
const maxNamedApplications = 10

func namedApplications(apps []string) string {
	if len(apps) <= maxNamedApplications {
		return strings.Join(apps, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(apps[:maxNamedApplications], ", "), len(apps)-maxNamedApplications)
}

// releaseStep is the instruction every refusal quotes.
func releaseStep(project string) string {
	return fmt.Sprintf("to delete it, set spec.release: true (kubectl patch kalypsoproject %s --type merge -p '{spec: {release: true}}'), delete its applications, wait for its condition Released=True, then delete the project", project)
}

// usageReason is the ClusterUsage's reason, which Crossplane's webhook
// quotes when it refuses the delete.
func usageReason(project string, apps []string, rs releaseState) string {
	switch {
	case len(rs.waiting) > 0:
		return fmt.Sprintf("project %s is being released (spec.release is true) and can be deleted once its condition Released is True; waiting for %s", project, strings.Join(rs.waiting, "; "))
	case len(apps) > 0:
		return fmt.Sprintf("project %s still has applications: %s; %s", project, namedApplications(apps), releaseStep(project))
	default:
		return fmt.Sprintf("project %s is protected against deletion; %s", project, releaseStep(project))
	}
}

// clusterUsage is the reason-only ClusterUsage of the project itself. (A
// namespaced Usage of a cluster-scoped object does not protect it in
// Crossplane v2.2, crossplane/crossplane#7249, and a namespaced application
// cannot compose a ClusterUsage, so the project protects itself.)
func clusterUsage(project, reason string) *protectionv1beta1.ClusterUsage {
	return &protectionv1beta1.ClusterUsage{
		ObjectMeta: metav1.ObjectMeta{Name: "kalypsoproject-" + project, Labels: compose.Owner{Project: project}.Labels("usage", project)},
		Spec: protectionv1beta1.ClusterUsageSpec{
			Of: protectionv1beta1.Resource{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.KindProject,
				ResourceRef: &protectionv1beta1.ResourceRef{Name: project},
			},
			Reason: ptr.To(reason),
		},
	}
}

// usageReady is the ClusterUsage's readiness: its Ready condition, which
// its controller sets only after labelling the project.
func usageReady(o *composed.Unstructured) bool {
	return compose.ConditionStatus(o.Object, "Ready") == "True"
}

// releasedCondition reports the protection.
func releasedCondition(project string, p protection, apps []string, rs releaseState) compose.Condition {
	c := compose.Condition{Type: ConditionReleased}
	switch {
	case !p.needed:
		c.Status, c.Reason = true, ReasonNothingToProtect
		c.Message = fmt.Sprintf("project %s has no environment and has composed nothing: it can be deleted", project)
	case rs.released:
		c.Status, c.Reason = true, ReasonReleased
		c.Message = fmt.Sprintf("project %s is released: no application lives in its environments and their ResourceQuotas admit none (%s: 0); it can be deleted", project, countApplications)
	case len(rs.waiting) > 0:
		c.Reason = ReasonReleasePending
		c.Message = fmt.Sprintf("spec.release is true: new applications are refused; waiting for %s", strings.Join(rs.waiting, "; "))
	case !p.protected:
		c.Reason = ReasonProtectionPending
		c.Message = fmt.Sprintf("waiting for ClusterUsage kalypsoproject-%s to be Ready (Crossplane runs its Usage controllers only with webhooks enabled); environment namespaces are created once it is", project)
	default:
		c.Reason = ReasonProtected
		msg := fmt.Sprintf("deleting project %s is refused", project)
		if len(apps) > 0 {
			msg += " (applications: " + namedApplications(apps) + ")"
		}
		c.Message = msg + "; " + releaseStep(project)
	}
	return c
}

// quotaOf is an environment's observed quota: the current one, else
// v0.1.0's (quota-<env>), else nil.
func (c *Composer) quotaOf(env string) *composed.Unstructured {
	for _, name := range []resource.Name{partName("quota", env), resource.Name("quota-" + env)} {
		if o, ok := c.observed[name]; ok {
			return o.Resource
		}
	}
	return nil
}

// closeRemovedQuota composes a removed environment's quota, under the
// current names, as it was (none: an empty one) with the application count
// closed.
func (c *Composer) closeRemovedQuota(d *compose.Desired, env, ns string) error {
	observed := c.quotaOf(env)
	hard := corev1.ResourceList{}
	if observed != nil {
		spec, _, _ := unstructured.NestedStringMap(observed.Object, "spec", "hard")
		for k, v := range spec {
			q, err := kresource.ParseQuantity(v)
			if err != nil {
				return fmt.Errorf("cannot keep the observed quota of removed environment %s: spec.hard[%s]: %w", env, k, err)
			}
			hard[corev1.ResourceName(k)] = q
		}
	}
	_, err := d.Add(partName("quota", env), c.quota(env, ns, closedQuota(hard)), compose.Exists)
	return err
}
