// Package project composes a KalypsoProject: per environment a Namespace
// (unless adopted), a ResourceQuota, a LimitRange, NetworkPolicies and
// RoleBindings, and the project's status.
package project

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// Phases of a project.
const (
	PhaseProvisioning = "Provisioning"
	PhaseReady        = "Ready"
	PhaseFailed       = "Failed"
)

// Condition types a project owns; every call sends each of them.
const (
	ConditionNamespacesOwned    = "NamespacesOwned"
	ConditionEnvironmentsReady  = "EnvironmentsReady"
	ConditionEnvironmentRemoval = "EnvironmentRemoval"
)

// ConditionTypes lists them, for re-sending the last known ones with a Fatal.
var ConditionTypes = []string{ConditionNamespacesOwned, ConditionEnvironmentsReady, ConditionEnvironmentRemoval, ConditionReleased, ConditionAlertRouting, ConditionDashboard, ConditionShowback}

// Composer composes one observed KalypsoProject.
type Composer struct {
	name     string
	uid      string
	gen      int64
	spec     v1alpha1.KalypsoProjectSpec
	envs     []string // sorted names of spec.environments
	observed map[resource.Name]resource.ObservedComposed
	// removed maps environments that have composed objects but are gone
	// from the spec to their namespace.
	removed map[string]string
}

// New decodes the project. A spec that does not decode is an error naming
// the field.
func New(xr *resource.Composite, observed map[resource.Name]resource.ObservedComposed) (*Composer, error) {
	c := &Composer{
		name:     xr.Resource.GetName(),
		uid:      string(xr.Resource.GetUID()),
		gen:      compose.Generation(xr),
		observed: observed,
		removed:  map[string]string{},
	}
	if err := compose.DecodeSpec(xr.Resource.Object, &c.spec); err != nil {
		return nil, err
	}
	c.envs = slices.Sorted(maps.Keys(c.spec.Environments))
	for _, o := range observed {
		env := o.Resource.GetLabels()[compose.LabelEnvironment]
		if _, inSpec := c.spec.Environments[env]; env == "" || inSpec {
			continue
		}
		ns := o.Resource.GetNamespace()
		if o.Resource.GetKind() == "Namespace" {
			ns = o.Resource.GetName()
		}
		c.removed[env] = ns
	}
	return c, nil
}

func namespaceRequirement(env string) string    { return "namespace-" + env }
func applicationsRequirement(env string) string { return "applications-" + env }

// Requirements asks for every environment namespace (to never take over a
// foreign one) and for the applications living in every environment
// namespace, removed ones included (to protect the project and to keep a
// removed environment while it is in use).
func (c *Composer) Requirements(p compose.Platform) map[string]*fnv1.ResourceSelector {
	req := map[string]*fnv1.ResourceSelector{}
	applications := func(env, ns string) {
		req[applicationsRequirement(env)] = compose.KindApplication.Labelled(ns, nil)
	}
	for _, env := range c.envs {
		ns := c.spec.Environments[env].Namespace
		req[namespaceRequirement(env)] = compose.KindNamespace.Named("", ns)
		applications(env, ns)
	}
	for env, ns := range c.removed {
		applications(env, ns)
	}
	c.alertingRequirements(req)
	if p.DashboardsEnabled {
		req[reqDashboardNamespace] = compose.KindNamespace.Named("", p.DashboardNamespace)
	}
	return req
}

// namespaceState says who holds an environment's namespace.
type namespaceState int

const (
	nsCompose  namespaceState = iota // the project composes the Namespace
	nsAdopted                        // exists, adopted: compose what is inside only
	nsForeign                        // exists, not ours, no opt-in: leave it alone
	nsNotFound                       // adoption asked for, but it does not exist
)

func (c *Composer) namespaceState(env string, e v1alpha1.EnvironmentSpec, existing *unstructured.Unstructured) namespaceState {
	if _, ours := c.observed[namespacePart(env)]; ours {
		return nsCompose
	}
	if existing == nil {
		if e.AdoptExistingNamespace {
			return nsNotFound
		}
		return nsCompose
	}
	// Composed by this project before its composed state was lost.
	if ref := controllerOf(existing); ref != "" && ref == c.uid {
		return nsCompose
	}
	if e.AdoptExistingNamespace {
		return nsAdopted
	}
	return nsForeign
}

func controllerOf(u *unstructured.Unstructured) string {
	for _, ref := range u.GetOwnerReferences() {
		if ptr.Deref(ref.Controller, false) {
			return string(ref.UID)
		}
	}
	return ""
}

// Compose builds the desired state, status and conditions.
func (c *Composer) Compose(p compose.Platform, required map[string][]resource.Required) compose.Result {
	if err := c.checkAlerting(); err != nil {
		return compose.Result{Fatal: err}
	}
	if err := c.checkCostLabels(); err != nil {
		return compose.Result{Fatal: err}
	}
	d := compose.NewDesired(c.observed)
	status := v1alpha1.KalypsoProjectStatus{ObservedGeneration: c.gen}
	// live: environments whose namespace exists, adopted or composed.
	var notOwned, waiting, held, quotaEnvs, live []string
	conds := []compose.Condition{}
	prot := c.protectionOf()

	for _, env := range c.envs {
		e := c.spec.Environments[env]
		var existing *unstructured.Unstructured
		if items := required[namespaceRequirement(env)]; len(items) > 0 {
			existing = items[0].Resource
		}
		st := c.namespaceState(env, e, existing)
		es := v1alpha1.EnvironmentStatus{Name: env, Namespace: e.Namespace, Adopted: st == nsAdopted}
		switch st {
		case nsForeign:
			notOwned = append(notOwned, fmt.Sprintf("namespace %s of environment %s exists and was not created by project %s, so it is left untouched: set spec.environments.%s.adoptExistingNamespace: true to compose the project's objects inside it (the namespace itself is then never deleted), or choose another namespace",
				e.Namespace, env, c.name, env))
		case nsNotFound:
			notOwned = append(notOwned, fmt.Sprintf("namespace %s of environment %s does not exist, and spec.environments.%s.adoptExistingNamespace is true: create the namespace, or set adoptExistingNamespace to false to let the project create it",
				e.Namespace, env, env))
		case nsCompose:
			// A namespace is created only while the project is protected
			// and not being released; one that exists (observed, or found
			// controlled by this project) is always kept.
			if _, observed := c.observed[namespacePart(env)]; !observed && existing == nil && !prot.newNamespaces {
				// Still validated: a bad spec is Fatal whether or not
				// the namespace can be created yet.
				if _, err := c.composeEnvironment(compose.NewDesired(c.observed), p, env, e, st, existing, prot.closeQuotas); err != nil {
					return compose.Result{Fatal: err}
				}
				held = append(held, env)
				break
			}
			ready, err := c.composeEnvironment(d, p, env, e, st, existing, prot.closeQuotas)
			if err != nil {
				return compose.Result{Fatal: err}
			}
			es.Ready = ready
			status.CreatedNamespaces = append(status.CreatedNamespaces, e.Namespace)
			quotaEnvs = append(quotaEnvs, env)
			if _, observed := c.observed[namespacePart(env)]; observed {
				live = append(live, env)
			}
		default:
			ready, err := c.composeEnvironment(d, p, env, e, st, existing, prot.closeQuotas)
			if err != nil {
				return compose.Result{Fatal: err}
			}
			es.Ready = ready
			quotaEnvs = append(quotaEnvs, env)
			live = append(live, env)
		}
		if st != nsForeign && st != nsNotFound {
			es.GPUs, es.GPUClasses = c.gpuUsage(p, env)
		}
		if !es.Ready {
			waiting = append(waiting, env)
		}
		status.Environments = append(status.Environments, es)
	}

	inUse, err := c.keepRemovedInUse(d, required)
	if err != nil {
		return compose.Result{Fatal: err}
	}
	apps := applications(required)
	// A removed environment still kept has its quota closed as well; a
	// release waits for it too.
	rs := c.release(apps, append(quotaEnvs, slices.Sorted(maps.Keys(inUse))...))
	if !rs.released && prot.needed {
		if _, err := d.Add(usageName, clusterUsage(c.name, usageReason(c.name, apps, rs)), usageReady); err != nil {
			return compose.Result{Fatal: err}
		}
	}
	for _, env := range slices.Sorted(maps.Keys(c.removed)) {
		if _, kept := inUse[env]; kept {
			if obs, ok := c.observed[namespacePart(env)]; ok {
				status.CreatedNamespaces = append(status.CreatedNamespaces, obs.Resource.GetName())
			}
		}
	}
	slices.Sort(status.CreatedNamespaces)
	status.CreatedNamespaces = slices.Compact(status.CreatedNamespaces)

	switch {
	case len(notOwned) > 0:
		status.Phase = PhaseFailed
		conds = append(conds, compose.Condition{Type: ConditionNamespacesOwned, Reason: reasonFor(notOwned), Message: strings.Join(notOwned, "; ")})
	default:
		conds = append(conds, compose.Condition{Type: ConditionNamespacesOwned, Status: true, Reason: "NamespacesOwned", Message: "every environment namespace is created or adopted by this project"})
	}
	if len(waiting) == 0 {
		conds = append(conds, compose.Condition{Type: ConditionEnvironmentsReady, Status: true, Reason: "EnvironmentsReady", Message: fmt.Sprintf("all %d environments are ready", len(c.envs))})
		if status.Phase == "" {
			status.Phase = PhaseReady
		}
	} else {
		conds = append(conds, compose.Condition{Type: ConditionEnvironmentsReady, Reason: "EnvironmentsNotReady", Message: "waiting for environments: " + strings.Join(waiting, ", ") + c.notReadyDetail(d) + c.heldDetail(held)})
		if status.Phase == "" {
			status.Phase = PhaseProvisioning
		}
	}
	routing, err := c.composeAlerting(d, p, live, required)
	if err != nil {
		return compose.Result{Fatal: err}
	}
	dash, err := c.composeDashboard(d, p, live, required)
	if err != nil {
		return compose.Result{Fatal: err}
	}
	showback, err := c.composeShowback(d, p, live, required)
	if err != nil {
		return compose.Result{Fatal: err}
	}
	conds = append(conds, removalCondition(inUse), releasedCondition(c.name, prot, apps, rs), routing, dash, showback)

	ttl := c.ttl(status.Phase)
	// Secrets, namespaces and CRDs are required resources or schemas,
	// which no watch follows: while the project waits for one it looks
	// again every minute.
	if c.spec.Alerting != nil && !routing.Status || slices.Contains(awaitedReasons, dash.Reason) || slices.Contains(awaitedReasons, showback.Reason) {
		ttl = compose.PollTTL
	}
	return compose.Result{Desired: d.Objects, Ready: status.Phase == PhaseReady, Status: &status, Conditions: conds, TTL: ttl}
}

// awaitedReasons are the conditions of a project waiting for a namespace or
// a CRD to appear.
var awaitedReasons = []string{"DashboardNamespaceMissing", "PrometheusRuleCRDMissing"}

// ttl: namespaces and applications are required resources, which no watch
// follows. While the project waits on them (a namespace to adopt, a removed
// environment's applications, a release) it looks again every minute; the
// protection itself does not depend on it (protection.go), and a pending
// release is noticed sooner, as the quota controller's count of
// applications changes a composed ResourceQuota, which Crossplane watches.
// A settled project only refreshes the application names its ClusterUsage
// quotes, so it idles.
func (c *Composer) ttl(phase string) time.Duration {
	if phase != PhaseReady || len(c.removed) > 0 || c.spec.Release {
		return compose.PollTTL
	}
	return compose.IdleTTL
}

func reasonFor(problems []string) string {
	for _, p := range problems {
		if strings.Contains(p, "does not exist") {
			return "NamespaceNotFound"
		}
	}
	return "NamespaceNotOwned"
}

// heldDetail names the environments whose namespace waits for the
// project's protection (or is not created during a release).
func (c *Composer) heldDetail(held []string) string {
	if len(held) == 0 {
		return ""
	}
	if c.spec.Release {
		return fmt.Sprintf(" (spec.release is true: the namespaces of %s are not created)", strings.Join(held, ", "))
	}
	return fmt.Sprintf(" (the namespaces of %s are created once ClusterUsage kalypsoproject-%s is Ready)", strings.Join(held, ", "), c.name)
}

func (c *Composer) notReadyDetail(d *compose.Desired) string {
	if len(d.NotReady) == 0 {
		return ""
	}
	const shown = 5
	var names []string
	for _, n := range d.NotReady[:min(shown, len(d.NotReady))] {
		names = append(names, string(n))
	}
	if more := len(d.NotReady) - shown; more > 0 {
		names = append(names, fmt.Sprintf("%d more", more))
	}
	return " (not ready: " + strings.Join(names, ", ") + ")"
}

// keepRemovedInUse keeps composing a removed environment until it can go
// without taking an application with it: while applications live in its
// namespace, and, for a namespace the project created (deleting it deletes
// everything inside), until its ResourceQuota admits no new application
// and the quota controller counts none (quotaRefusesNew). The project learns of applications
// by polling, so without the closed quota one created after the last poll
// would be deleted with the namespace. It returns the kept environments
// with the applications found (none: it waits for its quota). The others
// are dropped: Crossplane deletes their objects (and their namespace, only
// if the project created it).
func (c *Composer) keepRemovedInUse(d *compose.Desired, required map[string][]resource.Required) (map[string][]string, error) {
	inUse := map[string][]string{}
	for env, ns := range c.removed {
		apps := []string{}
		for _, a := range required[applicationsRequirement(env)] {
			apps = append(apps, ns+"/"+a.Resource.GetName())
		}
		_, created := c.observed[namespacePart(env)]
		quota, hasQuota := c.observed[partName("quota", env)]
		if len(apps) == 0 && (!created || hasQuota && quotaRefusesNew(quota.Resource)) {
			continue
		}
		sort.Strings(apps)
		inUse[env] = apps
		if err := c.keepRemoved(d, env); err != nil {
			return nil, err
		}
		if err := c.closeRemovedQuota(d, env, ns); err != nil {
			return nil, err
		}
	}
	return inUse, nil
}

// keepRemoved keeps a removed environment's objects as they are, but for
// its quota (closeRemovedQuota). v0.1.0's objects get their current names
// too, and go once their replacements are in force (see keepLegacy).
func (c *Composer) keepRemoved(d *compose.Desired, env string) error {
	quota := partName("quota", env)
	for _, name := range slices.Sorted(maps.Keys(c.observed)) {
		o := c.observed[name]
		if o.Resource.GetLabels()[compose.LabelEnvironment] != env || name == quota {
			continue
		}
		check := compose.Exists
		if o.Resource.GetKind() == "Namespace" {
			check = compose.NamespaceActive
		}
		if legacyPart(name, o, env) {
			replacement := quota
			if o.Resource.GetKind() != "ResourceQuota" {
				var u *composed.Unstructured
				replacement, u = c.renamed(name, o.Resource, env)
				if _, err := d.Keep(replacement, u, check); err != nil {
					return err
				}
			}
			if c.inForce(replacement) {
				continue
			}
		}
		if _, err := d.Keep(name, o.Resource, check); err != nil {
			return err
		}
	}
	return nil
}

func removalCondition(inUse map[string][]string) compose.Condition {
	if len(inUse) == 0 {
		return compose.Condition{Type: ConditionEnvironmentRemoval, Status: true, Reason: "NoRemovalPending", Message: "no removed environment is waiting for its applications to go"}
	}
	var msgs []string
	reason := "EnvironmentClosing"
	for _, env := range slices.Sorted(maps.Keys(inUse)) {
		if len(inUse[env]) == 0 {
			msgs = append(msgs, fmt.Sprintf("environment %s was removed from spec.environments: its namespace goes once its ResourceQuota admits no new KalypsoApplication (%s: 0) and counts none", env, countApplications))
			continue
		}
		reason = "EnvironmentInUse"
		msgs = append(msgs, fmt.Sprintf("environment %s was removed from spec.environments but KalypsoApplications still live in it (%s): it is kept until they are deleted", env, strings.Join(inUse[env], ", ")))
	}
	return compose.Condition{Type: ConditionEnvironmentRemoval, Reason: reason, Message: strings.Join(msgs, "; ")}
}
