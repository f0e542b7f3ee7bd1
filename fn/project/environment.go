package project

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// Pod Security Admission label keys.
const (
	psaEnforce        = "pod-security.kubernetes.io/enforce"
	psaEnforceVersion = "pod-security.kubernetes.io/enforce-version"
	psaAudit          = "pod-security.kubernetes.io/audit"
	psaWarn           = "pod-security.kubernetes.io/warn"
)

// namespaceNameLabel is set by the API server on every namespace.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// part is one composed object of an environment.
type part struct {
	name  string // pipeline name, before the environment
	obj   runtime.Object
	ready compose.ReadyCheck
}

// Names of an environment's objects. The Namespace is composed as
// namespace-<env>. Every object inside it is named <project>-<env>-<suffix>
// and composed as <part>.<env>: v0.1.0 named them <project>-<suffix> in
// every environment, and Crossplane v2.2.1 then reorders the project's
// resourceRefs at every reconcile (composetest.RefKeysCollide), which
// reconciles the project again and again until core's circuit breaker
// opens. Environment names hold no dot, so the two pipeline schemes never
// meet; keepLegacy retires v0.1.0's objects (<part>-<env>).
func namespacePart(env string) resource.Name { return resource.Name("namespace-" + env) }

func partName(part, env string) resource.Name { return resource.Name(part + "." + env) }

func (pt part) pipelineName(env string) resource.Name {
	if pt.name == "namespace" {
		return namespacePart(env)
	}
	return partName(pt.name, env)
}

func (c *Composer) objectName(env, suffix string) string { return c.name + "-" + env + "-" + suffix }

// legacyPart: an object of an environment composed under v0.1.0's pipeline
// name, <part>-<env> (no dot), other than its Namespace.
func legacyPart(name resource.Name, o resource.ObservedComposed, env string) bool {
	return o.Resource.GetLabels()[compose.LabelEnvironment] == env && o.Resource.GetKind() != "Namespace" &&
		!strings.Contains(string(name), ".")
}

// renamed is the current pipeline name and object of a v0.1.0 object of an
// environment: <part>-<env> named <project>-<suffix> becomes <part>.<env>
// named <project>-<env>-<suffix>, with the same content.
func (c *Composer) renamed(name resource.Name, o *composed.Unstructured, env string) (resource.Name, *composed.Unstructured) {
	u := o.DeepCopy()
	u.SetName(c.objectName(env, strings.TrimPrefix(o.GetName(), c.name+"-")))
	return partName(strings.TrimSuffix(string(name), "-"+env), env), u
}

// composeEnvironment adds one environment's objects and reports whether all
// of them are ready. existing is the namespace as looked up (nil if absent).
// closeQuota composes a quota that admits no new application (a release is
// pending, see protection.go).
func (c *Composer) composeEnvironment(d *compose.Desired, p compose.Platform, env string, e v1alpha1.EnvironmentSpec, st namespaceState, existing *unstructured.Unstructured, closeQuota bool) (bool, error) {
	owner := compose.Owner{Project: c.name, Environment: env}
	field := "spec.environments." + env
	ready := true
	var parts []part

	if st == nsCompose {
		parts = append(parts, part{"namespace", c.namespace(p, owner, e), compose.NamespaceActive})
	} else {
		// Adopted: the namespace is not composed; it must still be Active.
		phase, _, _ := unstructured.NestedString(existing.Object, "status", "phase")
		ready = phase == "Active"
	}

	hard, err := environmentQuota(p, e, field)
	if err != nil {
		return false, err
	}
	quota := hard
	if closeQuota {
		quota = closedQuota(hard)
	}
	if len(quota) > 0 {
		parts = append(parts, part{"quota", c.quota(env, e.Namespace, quota), compose.Exists})
	}
	if limits := limitRangeItems(p, e, hard); len(limits) > 0 {
		parts = append(parts, part{"limitrange", &corev1.LimitRange{
			ObjectMeta: c.meta(owner, "limitrange", c.objectName(env, "limits"), e.Namespace),
			Spec:       corev1.LimitRangeSpec{Limits: limits},
		}, compose.Exists})
	}
	policies, err := c.networkPolicies(p, owner, env, e)
	if err != nil {
		return false, err
	}
	parts = append(parts, policies...)
	bindings, err := c.roleBindings(owner, env, e)
	if err != nil {
		return false, err
	}
	parts = append(parts, bindings...)

	// The namespace first, its contents once it exists: Crossplane applies
	// composed objects in no particular order and would fail on every object
	// of a namespace not created yet.
	_, nsObserved := c.observed[namespacePart(env)]
	nsFirst := st == nsCompose && !nsObserved
	replaced := true
	for _, pt := range parts {
		if nsFirst && pt.name != "namespace" {
			ready = false
			continue
		}
		name := pt.pipelineName(env)
		ok, err := d.Add(name, pt.obj, pt.ready)
		if err != nil {
			return false, err
		}
		ready = ready && ok
		replaced = replaced && c.inForce(name)
	}
	if replaced {
		return ready, nil
	}
	return ready, c.keepLegacy(d, env)
}

// inForce: the object is observed and, for a quota, enforced: quota
// admission checks only what status.hard lists (k8s.io/apiserver
// plugin/resourcequota/controller.go CheckRequest), which the quota
// controller fills after the create.
func (c *Composer) inForce(name resource.Name) bool {
	o, ok := c.observed[name]
	if !ok {
		return false
	}
	return o.Resource.GetKind() != "ResourceQuota" || quotaEnforcesSpec(o.Resource)
}

// keepLegacy keeps the objects v0.1.0 composed inside an environment's
// namespace while their replacements are not all in force, so that the
// namespace is never without its quota, NetworkPolicies or RoleBindings:
// a replacement has the same content under another name, and two equal
// quotas, LimitRanges, NetworkPolicies or RoleBindings act as one
// (admission checks every quota and applies every LimitRange,
// plugin/pkg/admission/limitranger/admission.go). Once every replacement is
// in force the project no longer composes them, and Crossplane deletes them.
// One the spec no longer asks for (access removed) goes at once.
func (c *Composer) keepLegacy(d *compose.Desired, env string) error {
	for _, name := range slices.Sorted(maps.Keys(c.observed)) {
		o := c.observed[name]
		if !legacyPart(name, o, env) {
			continue
		}
		if current, _ := c.renamed(name, o.Resource, env); d.Objects[current] != nil {
			if _, err := d.Keep(name, o.Resource, compose.Exists); err != nil {
				return err
			}
		}
	}
	return nil
}

// quota is an environment's ResourceQuota, <project>-<env>-quota.
func (c *Composer) quota(env, namespace string, hard corev1.ResourceList) *corev1.ResourceQuota {
	return &corev1.ResourceQuota{
		ObjectMeta: c.meta(compose.Owner{Project: c.name, Environment: env}, "quota", c.objectName(env, "quota"), namespace),
		Spec:       corev1.ResourceQuotaSpec{Hard: hard},
	}
}

func (c *Composer) meta(owner compose.Owner, component, name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: owner.Labels(component, c.name)}
}

func (c *Composer) namespace(p compose.Platform, owner compose.Owner, e v1alpha1.EnvironmentSpec) *corev1.Namespace {
	level := e.PodSecurity
	if level == "" {
		level = p.PodSecurityLevel
	}
	m := c.meta(owner, "namespace", e.Namespace, "")
	cost, _ := c.costLabels(p)
	m.Labels = compose.Merge(cost, m.Labels, map[string]string{
		psaEnforce: level, psaEnforceVersion: "latest", psaAudit: level, psaWarn: level,
	})
	if e.Description != "" {
		m.Annotations = map[string]string{"kalypso-serving.io/description": e.Description}
	}
	return &corev1.Namespace{ObjectMeta: m}
}

// limitRangeItems returns the environment's own limits, or, when the quota
// bounds cpu, memory or ephemeral storage and it sets none, a default
// container LimitRange so pods without explicit resources are not all
// refused (the quota admission plugin refuses a pod that does not request
// what a quota bounds, plugin/pkg/admission/resourcequota). Triton servers
// request ephemeral storage for their model cache, so projects quota it.
func limitRangeItems(p compose.Platform, e v1alpha1.EnvironmentSpec, hard corev1.ResourceList) []corev1.LimitRangeItem {
	if e.LimitRange != nil && len(e.LimitRange.Limits) > 0 {
		return e.LimitRange.Limits
	}
	_, ephemeral := hard[corev1.ResourceRequestsEphemeralStorage]
	if !(constrainsCompute(hard) || ephemeral) || (len(p.DefaultLimits) == 0 && len(p.DefaultRequests) == 0) {
		return nil
	}
	return []corev1.LimitRangeItem{{
		Type:           corev1.LimitTypeContainer,
		Default:        p.DefaultLimits,
		DefaultRequest: p.DefaultRequests,
	}}
}

// networkPolicies deny ingress by default and allow it from the same
// namespace, the platform namespaces (monitoring, gateway) and the sibling
// environments this one opts in to.
func (c *Composer) networkPolicies(p compose.Platform, owner compose.Owner, env string, e v1alpha1.EnvironmentSpec) ([]part, error) {
	isolated := p.NetworkIsolation
	var siblings []string
	if ni := e.NetworkIsolation; ni != nil {
		if ni.Enabled != nil {
			isolated = *ni.Enabled
		}
		for i, other := range ni.AllowFromEnvironments {
			o, ok := c.spec.Environments[other]
			if !ok || other == env {
				return nil, fmt.Errorf("spec.environments.%s.networkIsolation.allowFromEnvironments[%d]: %q is not another environment of project %s; name one of: %v",
					env, i, other, c.name, c.otherEnvs(env))
			}
			siblings = append(siblings, o.Namespace)
		}
	}
	if !isolated {
		return nil, nil
	}
	from := []string{e.Namespace}
	from = append(from, p.AllowedNamespaces...)
	for _, ref := range p.GatewayParentRefs {
		if ref.Namespace != "" {
			from = append(from, ref.Namespace)
		}
	}
	from = append(from, siblings...)
	slices.Sort(from)
	from = slices.Compact(from)

	ingress := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	deny := &networkingv1.NetworkPolicy{
		ObjectMeta: c.meta(owner, "networkpolicy", c.objectName(env, "default-deny-ingress"), e.Namespace),
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: ingress},
	}
	// A namespaceSelector peer alone admits every pod of the selected
	// namespaces, the environment's own included.
	allow := &networkingv1.NetworkPolicy{
		ObjectMeta: c.meta(owner, "networkpolicy", c.objectName(env, "allow-ingress"), e.Namespace),
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: ingress,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
						Key: namespaceNameLabel, Operator: metav1.LabelSelectorOpIn, Values: from,
					}}},
				}},
			}},
		},
	}
	return []part{
		{"networkpolicy-deny", deny, compose.Exists},
		{"networkpolicy-allow", allow, compose.Exists},
	}, nil
}

func (c *Composer) otherEnvs(env string) []string {
	var out []string
	for _, e := range c.envs {
		if e != env {
			out = append(out, e)
		}
	}
	return out
}

// roles maps each access list to the ClusterRole it is bound to.
var roles = []struct {
	field, clusterRole, suffix string
	subjects                   func(*v1alpha1.AccessSpec) []rbacv1.Subject
}{
	{"admins", "admin", "admins", func(a *v1alpha1.AccessSpec) []rbacv1.Subject { return a.Admins }},
	{"editors", "edit", "editors", func(a *v1alpha1.AccessSpec) []rbacv1.Subject { return a.Editors }},
	{"viewers", "view", "viewers", func(a *v1alpha1.AccessSpec) []rbacv1.Subject { return a.Viewers }},
}

// roleBindings bind the access lists in the environment namespace.
func (c *Composer) roleBindings(owner compose.Owner, env string, e v1alpha1.EnvironmentSpec) ([]part, error) {
	if c.spec.Access == nil {
		return nil, nil
	}
	var out []part
	for _, r := range roles {
		in := r.subjects(c.spec.Access)
		if len(in) == 0 {
			continue
		}
		subjects := make([]rbacv1.Subject, len(in))
		for i, s := range in {
			var err error
			if subjects[i], err = subject(s, e.Namespace, fmt.Sprintf("spec.access.%s[%d]", r.field, i)); err != nil {
				return nil, err
			}
		}
		out = append(out, part{"rolebinding-" + r.clusterRole, &rbacv1.RoleBinding{
			ObjectMeta: c.meta(owner, "rolebinding", c.objectName(env, r.suffix), e.Namespace),
			Subjects:   subjects,
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r.clusterRole},
		}, compose.Exists})
	}
	return out, nil
}

// subject completes an RBAC subject: the API group of users and groups, and
// a service account's namespace (the environment's when unset).
func subject(s rbacv1.Subject, namespace, field string) (rbacv1.Subject, error) {
	if s.Name == "" {
		return s, fmt.Errorf("%s.name must not be empty", field)
	}
	switch s.Kind {
	case rbacv1.UserKind, rbacv1.GroupKind:
		if s.APIGroup == "" {
			s.APIGroup = rbacv1.GroupName
		}
		if s.Namespace != "" {
			return s, fmt.Errorf("%s.namespace: a %s is not namespaced; remove the namespace", field, s.Kind)
		}
	case rbacv1.ServiceAccountKind:
		if s.APIGroup != "" {
			return s, fmt.Errorf("%s.apiGroup: a ServiceAccount subject has the core API group; remove apiGroup", field)
		}
		if s.Namespace == "" {
			s.Namespace = namespace
		}
	default:
		return s, fmt.Errorf("%s.kind: %q is not User, Group or ServiceAccount", field, s.Kind)
	}
	return s, nil
}
