package project

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	protectionv1beta1 "github.com/crossplane/crossplane/apis/v2/protection/v1beta1"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/input/v1beta1"
)

func xr(t *testing.T, spec string) *resource.Composite {
	t.Helper()
	return composetest.Composite(t, "apiVersion: serving.kalypso.io/v1alpha1\nkind: KalypsoProject\nmetadata: {name: vision, uid: project-uid, generation: 3}\nspec:\n"+spec)
}

func platform(t *testing.T) compose.Platform {
	t.Helper()
	return composetest.Platform(t, &v1beta1.Input{})
}

const (
	activeNS = `{apiVersion: v1, kind: Namespace, metadata: {name: vision-dev, labels: {kalypso-serving.io/environment: dev}}, status: {phase: Active}}`
	denyNP   = `{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: vision-dev-default-deny-ingress, namespace: vision-dev, labels: {kalypso-serving.io/environment: dev}}}`
	allowNP  = `{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: vision-dev-allow-ingress, namespace: vision-dev, labels: {kalypso-serving.io/environment: dev}}}`
	foreign  = `{apiVersion: v1, kind: Namespace, metadata: {name: vision-dev}, status: {phase: Active}}`
	// readyUsage is the project's ClusterUsage once Crossplane's Usage
	// controller has labelled the project in use.
	readyUsage = `{apiVersion: protection.crossplane.io/v1beta1, kind: ClusterUsage, metadata: {name: kalypsoproject-vision}, status: {conditions: [{type: Ready, status: "True", reason: Available}]}}`
	detector   = `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: detector, namespace: vision-dev}, spec: {projectRef: vision}}`
)

// quotaObserved is the dev environment's quota as the quota controller
// leaves it: spec.hard, status.hard (what admission enforces) and the used
// application count.
func quotaObserved(spec, statusHard, used string) string {
	q := `{apiVersion: v1, kind: ResourceQuota, metadata: {name: vision-dev-quota, namespace: vision-dev, labels: {kalypso-serving.io/environment: dev}}, spec: {hard: {` + spec + `}}`
	if statusHard != "" {
		q += `, status: {hard: {` + statusHard + `}, used: {` + used + `}}`
	}
	return q + "}"
}

const countApps = "count/kalypsoapplications.serving.kalypso.io"

func TestCompose(t *testing.T) {
	type want struct {
		resources  map[string]resource.Ready
		phase      string
		created    []string
		envs       []v1alpha1.EnvironmentStatus
		ready      bool
		conditions map[string]string // type → reason
		idle       bool              // settled: the idle TTL
		fatal      string
	}
	conditions := func(envs, released string) map[string]string {
		return map[string]string{ConditionNamespacesOwned: "NamespacesOwned", ConditionEnvironmentsReady: envs, ConditionEnvironmentRemoval: "NoRemovalPending", ConditionReleased: released}
	}
	allGood := conditions("EnvironmentsReady", ReasonProtected)
	waiting := conditions("EnvironmentsNotReady", ReasonProtected)
	cases := map[string]struct {
		reason   string
		spec     string
		observed map[string]string
		// unprotected: no ClusterUsage observed. Otherwise the observed
		// state holds it, Ready.
		unprotected bool
		required    map[string][]string
		want        want
	}{
		"NoEnvironments": {
			reason:      "A project without environments composes nothing and is ready.",
			spec:        "  owner: team-vision\n",
			unprotected: true,
			want:        want{idle: true, resources: map[string]resource.Ready{}, phase: PhaseReady, ready: true, conditions: conditions("EnvironmentsReady", ReasonNothingToProtect)},
		},
		"ProtectionFirst": {
			reason:      "The ClusterUsage comes before any namespace: none is created until it is Ready (the project then carries the in-use label).",
			spec:        "  environments: {dev: {namespace: vision-dev}}\n",
			unprotected: true,
			want: want{
				resources:  map[string]resource.Ready{"usage": resource.ReadyFalse},
				phase:      PhaseProvisioning,
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev"}},
				conditions: conditions("EnvironmentsNotReady", ReasonProtectionPending),
			},
		},
		"ProtectionNotReady": {
			reason:      "An observed ClusterUsage that is not Ready yet does not protect: still no namespace.",
			spec:        "  environments: {dev: {namespace: vision-dev}}\n",
			unprotected: true,
			observed:    map[string]string{"usage": `{apiVersion: protection.crossplane.io/v1beta1, kind: ClusterUsage, metadata: {name: kalypsoproject-vision}}`},
			want: want{
				resources:  map[string]resource.Ready{"usage": resource.ReadyFalse},
				phase:      PhaseProvisioning,
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev"}},
				conditions: conditions("EnvironmentsNotReady", ReasonProtectionPending),
			},
		},
		"ExistingProjectMigrates": {
			reason:      "A project whose namespace exists from before the ClusterUsage keeps everything while its new ClusterUsage becomes Ready.",
			spec:        "  environments: {dev: {namespace: vision-dev}}\n",
			unprotected: true,
			observed:    map[string]string{"namespace-dev": activeNS, "networkpolicy-deny.dev": denyNP, "networkpolicy-allow.dev": allowNP},
			required:    map[string][]string{"namespace-dev": {activeNS}},
			want: want{idle: true,
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "networkpolicy-deny.dev": resource.ReadyTrue, "networkpolicy-allow.dev": resource.ReadyTrue, "usage": resource.ReadyFalse},
				phase:     PhaseReady, ready: true, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev", Ready: true}},
				conditions: conditions("EnvironmentsReady", ReasonProtectionPending),
			},
		},
		"RenamesV010Objects": {
			reason: "v0.1.0 named the objects inside every environment namespace alike (vision-default-deny-ingress as networkpolicy-deny-dev): they stay while their replacements, named per environment, are created, so the namespace is never without them.",
			spec:   "  environments: {dev: {namespace: vision-dev}}\n",
			observed: map[string]string{"namespace-dev": activeNS,
				"networkpolicy-deny-dev":  strings.Replace(denyNP, "vision-dev-default", "vision-default", 1),
				"networkpolicy-allow-dev": strings.Replace(allowNP, "vision-dev-allow", "vision-allow", 1)},
			want: want{
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "usage": resource.ReadyTrue,
					"networkpolicy-deny-dev": resource.ReadyTrue, "networkpolicy-allow-dev": resource.ReadyTrue,
					"networkpolicy-deny.dev": resource.ReadyFalse, "networkpolicy-allow.dev": resource.ReadyFalse},
				phase: PhaseProvisioning, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev"}},
				conditions: waiting,
			},
		},
		"RenamedV010ObjectsRetire": {
			reason: "Once every replacement exists, v0.1.0's objects are no longer composed: Crossplane deletes them.",
			spec:   "  environments: {dev: {namespace: vision-dev}}\n",
			observed: map[string]string{"namespace-dev": activeNS, "networkpolicy-deny.dev": denyNP, "networkpolicy-allow.dev": allowNP,
				"networkpolicy-deny-dev":  strings.Replace(denyNP, "vision-dev-default", "vision-default", 1),
				"networkpolicy-allow-dev": strings.Replace(allowNP, "vision-dev-allow", "vision-allow", 1)},
			want: want{idle: true,
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "usage": resource.ReadyTrue,
					"networkpolicy-deny.dev": resource.ReadyTrue, "networkpolicy-allow.dev": resource.ReadyTrue},
				phase: PhaseReady, ready: true, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev", Ready: true}},
				conditions: allGood,
			},
		},
		"RenamedQuotaNotYetEnforced": {
			reason: "The renamed quota exists but the quota controller has not filled its status.hard, which is all admission enforces: v0.1.0's quota stays.",
			spec:   "  environments: {dev: {namespace: vision-dev, resourceQuota: {requests: {nvidia.com/gpu: '4'}}}}\n",
			observed: map[string]string{"namespace-dev": activeNS, "networkpolicy-deny.dev": denyNP, "networkpolicy-allow.dev": allowNP,
				"quota.dev": quotaObserved(`requests.nvidia.com/gpu: "4"`, "", ""),
				"quota-dev": strings.Replace(quotaObserved(`requests.nvidia.com/gpu: "4"`, `requests.nvidia.com/gpu: "4"`, `requests.nvidia.com/gpu: "0"`), "vision-dev-quota", "vision-quota", 1)},
			want: want{idle: true,
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "usage": resource.ReadyTrue, "quota-dev": resource.ReadyTrue,
					"quota.dev": resource.ReadyTrue, "networkpolicy-deny.dev": resource.ReadyTrue, "networkpolicy-allow.dev": resource.ReadyTrue},
				phase: PhaseReady, ready: true, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev", Ready: true}},
				conditions: allGood,
			},
		},
		"RenamedV010QuotaRetires": {
			reason: "Once the renamed quota is enforced and every other replacement exists, v0.1.0's quota and policies go.",
			spec:   "  environments: {dev: {namespace: vision-dev, resourceQuota: {requests: {nvidia.com/gpu: '4'}}}}\n",
			observed: map[string]string{"namespace-dev": activeNS, "networkpolicy-deny.dev": denyNP, "networkpolicy-allow.dev": allowNP,
				"quota.dev":               quotaObserved(`requests.nvidia.com/gpu: "4"`, `requests.nvidia.com/gpu: "4000m"`, `requests.nvidia.com/gpu: "0"`),
				"quota-dev":               strings.Replace(quotaObserved(`requests.nvidia.com/gpu: "4"`, `requests.nvidia.com/gpu: "4"`, `requests.nvidia.com/gpu: "0"`), "vision-dev-quota", "vision-quota", 1),
				"networkpolicy-deny-dev":  strings.Replace(denyNP, "vision-dev-default", "vision-default", 1),
				"networkpolicy-allow-dev": strings.Replace(allowNP, "vision-dev-allow", "vision-allow", 1)},
			want: want{idle: true,
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "usage": resource.ReadyTrue,
					"quota.dev": resource.ReadyTrue, "networkpolicy-deny.dev": resource.ReadyTrue, "networkpolicy-allow.dev": resource.ReadyTrue},
				phase: PhaseReady, ready: true, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev", Ready: true, GPUs: &v1alpha1.GPUUsage{Resource: "requests.nvidia.com/gpu", Requested: "0", Quota: "4000m"}}},
				conditions: allGood,
			},
		},
		"RenamedV010AccessRemoved": {
			reason: "A v0.1.0 RoleBinding the spec no longer asks for goes at once, even while the other replacements are created.",
			spec:   "  environments: {dev: {namespace: vision-dev}}\n",
			observed: map[string]string{"namespace-dev": activeNS,
				"networkpolicy-deny-dev":  strings.Replace(denyNP, "vision-dev-default", "vision-default", 1),
				"networkpolicy-allow-dev": strings.Replace(allowNP, "vision-dev-allow", "vision-allow", 1),
				"rolebinding-view-dev":    `{apiVersion: rbac.authorization.k8s.io/v1, kind: RoleBinding, metadata: {name: vision-viewers, namespace: vision-dev, labels: {kalypso-serving.io/environment: dev}}, roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}, subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: eve}]}`},
			want: want{
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "usage": resource.ReadyTrue,
					"networkpolicy-deny-dev": resource.ReadyTrue, "networkpolicy-allow-dev": resource.ReadyTrue,
					"networkpolicy-deny.dev": resource.ReadyFalse, "networkpolicy-allow.dev": resource.ReadyFalse},
				phase: PhaseProvisioning, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev"}},
				conditions: waiting,
			},
		},
		"NewEnvironment": {
			reason: "Nothing observed yet: the Namespace comes first (its contents would fail to apply before it exists).",
			spec:   "  environments: {dev: {namespace: vision-dev}}\n",
			want: want{
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyFalse, "usage": resource.ReadyTrue},
				phase:     PhaseProvisioning, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev"}},
				conditions: waiting,
			},
		},
		"EnvironmentReady": {
			reason:   "Once the namespace is Active and the policies exist, the environment and the project are ready.",
			spec:     "  environments: {dev: {namespace: vision-dev}}\n",
			observed: map[string]string{"namespace-dev": activeNS, "networkpolicy-deny.dev": denyNP, "networkpolicy-allow.dev": allowNP},
			required: map[string][]string{"namespace-dev": {activeNS}},
			want: want{idle: true,
				resources: map[string]resource.Ready{"usage": resource.ReadyTrue, "namespace-dev": resource.ReadyTrue, "networkpolicy-deny.dev": resource.ReadyTrue, "networkpolicy-allow.dev": resource.ReadyTrue},
				phase:     PhaseReady, ready: true, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev", Ready: true}},
				conditions: allGood,
			},
		},
		"NamespaceTerminating": {
			reason:   "A namespace that exists but is not Active is not ready.",
			spec:     "  environments: {dev: {namespace: vision-dev}}\n",
			observed: map[string]string{"namespace-dev": strings.Replace(activeNS, "Active", "Terminating", 1), "networkpolicy-deny.dev": denyNP, "networkpolicy-allow.dev": allowNP},
			want: want{
				resources: map[string]resource.Ready{"usage": resource.ReadyTrue, "namespace-dev": resource.ReadyFalse, "networkpolicy-deny.dev": resource.ReadyTrue, "networkpolicy-allow.dev": resource.ReadyTrue},
				phase:     PhaseProvisioning, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev"}},
				conditions: waiting,
			},
		},
		"ForeignNamespaceRefused": {
			reason:   "A namespace that exists and is not the project's is never taken over: nothing is composed for it.",
			spec:     "  environments: {dev: {namespace: vision-dev}}\n",
			required: map[string][]string{"namespace-dev": {foreign}},
			want: want{
				resources: map[string]resource.Ready{"usage": resource.ReadyTrue}, phase: PhaseFailed,
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev"}},
				conditions: map[string]string{ConditionNamespacesOwned: "NamespaceNotOwned", ConditionEnvironmentsReady: "EnvironmentsNotReady", ConditionEnvironmentRemoval: "NoRemovalPending", ConditionReleased: ReasonProtected},
			},
		},
		"ForeignNamespaceAdopted": {
			reason:   "With adoptExistingNamespace the project composes what is inside, never the Namespace.",
			spec:     "  environments: {dev: {namespace: vision-dev, adoptExistingNamespace: true, resourceQuota: {limits: {nvidia.com/gpu: '1'}}}}\n",
			required: map[string][]string{"namespace-dev": {foreign}},
			want: want{
				resources:  map[string]resource.Ready{"usage": resource.ReadyTrue, "quota.dev": resource.ReadyFalse, "networkpolicy-deny.dev": resource.ReadyFalse, "networkpolicy-allow.dev": resource.ReadyFalse},
				phase:      PhaseProvisioning,
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev", Adopted: true}},
				conditions: waiting,
			},
		},
		"AdoptedMissing": {
			reason: "Adoption of a namespace that does not exist composes nothing and says how to fix it.",
			spec:   "  environments: {dev: {namespace: vision-dev, adoptExistingNamespace: true}}\n",
			want: want{
				resources: map[string]resource.Ready{"usage": resource.ReadyTrue}, phase: PhaseFailed,
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev"}},
				conditions: map[string]string{ConditionNamespacesOwned: "NamespaceNotFound", ConditionEnvironmentsReady: "EnvironmentsNotReady", ConditionEnvironmentRemoval: "NoRemovalPending", ConditionReleased: ReasonProtected},
			},
		},
		"OwnNamespaceNotObserved": {
			reason:      "A namespace this project controls (owner reference to its uid) is its own even when the composed state was lost; it exists, so it is composed while the ClusterUsage is not Ready yet.",
			spec:        "  environments: {dev: {namespace: vision-dev}, }\n  access: {viewers: [{kind: User, name: ann}]}\n",
			unprotected: true,
			required:    map[string][]string{"namespace-dev": {`{apiVersion: v1, kind: Namespace, metadata: {name: vision-dev, ownerReferences: [{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoProject, name: vision, uid: project-uid, controller: true}]}}`}},
			want: want{
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyFalse, "usage": resource.ReadyFalse},
				phase:     PhaseProvisioning, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev"}},
				conditions: conditions("EnvironmentsNotReady", ReasonProtectionPending),
			},
		},
		"ComposedNamespaceStaysWhenAdoptFlagSet": {
			reason:   "Setting adoptExistingNamespace on a namespace the project created must not drop (and so delete) it.",
			spec:     "  environments: {dev: {namespace: vision-dev, adoptExistingNamespace: true, networkIsolation: {enabled: false}}}\n",
			observed: map[string]string{"namespace-dev": activeNS},
			required: map[string][]string{"namespace-dev": {activeNS}},
			want: want{idle: true,
				resources: map[string]resource.Ready{"usage": resource.ReadyTrue, "namespace-dev": resource.ReadyTrue},
				phase:     PhaseReady, ready: true, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev", Ready: true}},
				conditions: allGood,
			},
		},
		"RemovedEnvironmentInUse": {
			reason:   "An environment removed from the spec while applications live in it keeps all its objects.",
			spec:     "  environments: {}\n",
			observed: map[string]string{"namespace-dev": activeNS, "networkpolicy-deny.dev": denyNP},
			required: map[string][]string{"applications-dev": {`{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: detector, namespace: vision-dev}}`}},
			want: want{
				resources: map[string]resource.Ready{"usage": resource.ReadyTrue, "namespace-dev": resource.ReadyTrue, "networkpolicy-deny.dev": resource.ReadyTrue, "quota.dev": resource.ReadyFalse},
				phase:     PhaseReady, ready: true, created: []string{"vision-dev"},
				conditions: map[string]string{ConditionNamespacesOwned: "NamespacesOwned", ConditionEnvironmentsReady: "EnvironmentsReady", ConditionEnvironmentRemoval: "EnvironmentInUse", ConditionReleased: ReasonProtected},
			},
		},
		"RemovedEnvironmentClosing": {
			reason:   "No application is found in a removed environment, but one may have been created since the last look: everything stays and its quota closes to new applications first.",
			spec:     "  environments: {}\n",
			observed: map[string]string{"namespace-dev": activeNS, "networkpolicy-deny.dev": denyNP},
			required: map[string][]string{"applications-dev": {}},
			want: want{
				resources: map[string]resource.Ready{"usage": resource.ReadyTrue, "namespace-dev": resource.ReadyTrue, "networkpolicy-deny.dev": resource.ReadyTrue, "quota.dev": resource.ReadyFalse},
				phase:     PhaseReady, ready: true, created: []string{"vision-dev"},
				conditions: map[string]string{ConditionNamespacesOwned: "NamespacesOwned", ConditionEnvironmentsReady: "EnvironmentsReady", ConditionEnvironmentRemoval: "EnvironmentClosing", ConditionReleased: ReasonProtected},
			},
		},
		"RemovedEnvironmentEmpty": {
			reason:   "Once its quota enforces no application, counts none and none is found, a removed environment's objects are dropped, so Crossplane deletes them.",
			spec:     "  environments: {}\n",
			observed: map[string]string{"namespace-dev": activeNS, "networkpolicy-deny.dev": denyNP, "quota.dev": quotaObserved(countApps+`: "0"`, countApps+`: "0"`, countApps+`: "0"`)},
			required: map[string][]string{"applications-dev": {}},
			want:     want{resources: map[string]resource.Ready{"usage": resource.ReadyTrue}, phase: PhaseReady, ready: true, conditions: allGood},
		},
		"RemovedEnvironmentQuotaNotCountingYet": {
			reason:   "The quota enforces 0 applications but the quota controller does not count the kind yet (admission then refuses with 'status unknown for quota'): the removed environment goes.",
			spec:     "  environments: {}\n",
			observed: map[string]string{"namespace-dev": activeNS, "quota.dev": quotaObserved(countApps+`: "0"`, countApps+`: "0"`, `requests.cpu: "0"`)},
			required: map[string][]string{"applications-dev": {}},
			want:     want{resources: map[string]resource.Ready{"usage": resource.ReadyTrue}, phase: PhaseReady, ready: true, conditions: allGood},
		},
		"RemovedEnvironmentQuotaCountsOne": {
			reason:   "The quota controller counts an application the project has not seen yet: the removed environment stays.",
			spec:     "  environments: {}\n",
			observed: map[string]string{"namespace-dev": activeNS, "quota.dev": quotaObserved(countApps+`: "0"`, countApps+`: "0"`, countApps+`: "1"`)},
			required: map[string][]string{"applications-dev": {}},
			want: want{
				resources: map[string]resource.Ready{"usage": resource.ReadyTrue, "namespace-dev": resource.ReadyTrue, "quota.dev": resource.ReadyTrue},
				phase:     PhaseReady, ready: true, created: []string{"vision-dev"},
				conditions: map[string]string{ConditionNamespacesOwned: "NamespacesOwned", ConditionEnvironmentsReady: "EnvironmentsReady", ConditionEnvironmentRemoval: "EnvironmentClosing", ConditionReleased: ReasonProtected},
			},
		},
		"ProtectedWhileApplicationsExist": {
			reason:   "With applications in it the project keeps its reason-only ClusterUsage of itself.",
			spec:     "  environments: {dev: {namespace: vision-dev, networkIsolation: {enabled: false}}}\n",
			observed: map[string]string{"namespace-dev": activeNS},
			required: map[string][]string{
				"namespace-dev":    {activeNS},
				"applications-dev": {`{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: detector, namespace: vision-dev}, spec: {projectRef: vision}}`},
			},
			want: want{idle: true,
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "usage": resource.ReadyTrue},
				phase:     PhaseReady, ready: true, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev", Ready: true}},
				conditions: allGood,
			},
		},
		"ReleaseClosesQuotas": {
			reason:   "A release first closes every environment's quota to new applications, even one without a quota of its own, and keeps the ClusterUsage.",
			spec:     "  release: true\n  environments: {dev: {namespace: vision-dev, networkIsolation: {enabled: false}}}\n",
			observed: map[string]string{"namespace-dev": activeNS},
			required: map[string][]string{"namespace-dev": {activeNS}},
			want: want{
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "quota.dev": resource.ReadyFalse, "usage": resource.ReadyTrue},
				phase:     PhaseProvisioning, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev"}},
				conditions: conditions("EnvironmentsNotReady", ReasonReleasePending),
			},
		},
		"ReleaseWaitsForQuotaController": {
			reason:   "Admission enforces status.hard, which only the quota controller writes: until it shows the closed count, the ClusterUsage stays.",
			spec:     "  release: true\n  environments: {dev: {namespace: vision-dev, networkIsolation: {enabled: false}}}\n",
			observed: map[string]string{"namespace-dev": activeNS, "quota.dev": quotaObserved(countApps+`: "0"`, "", "")},
			required: map[string][]string{"namespace-dev": {activeNS}},
			want: want{
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "quota.dev": resource.ReadyTrue, "usage": resource.ReadyTrue},
				phase:     PhaseReady, ready: true, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev", Ready: true}},
				conditions: conditions("EnvironmentsReady", ReasonReleasePending),
			},
		},
		"ReleaseWaitsForQuotaUsage": {
			reason:   "The quota controller wrote status.hard but cannot count the kind yet (no used value; admission refuses with \"status unknown for quota\"): the ClusterUsage stays.",
			spec:     "  release: true\n  environments: {dev: {namespace: vision-dev, networkIsolation: {enabled: false}}}\n",
			observed: map[string]string{"namespace-dev": activeNS, "quota.dev": quotaObserved(countApps+`: "0"`, countApps+`: "0"`, "")},
			required: map[string][]string{"namespace-dev": {activeNS}},
			want: want{
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "quota.dev": resource.ReadyTrue, "usage": resource.ReadyTrue},
				phase:     PhaseReady, ready: true, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev", Ready: true}},
				conditions: conditions("EnvironmentsReady", ReasonReleasePending),
			},
		},
		"ReleaseWaitsForApplications": {
			reason:   "An application in an environment holds the release, whatever project it names: the namespace would take it along.",
			spec:     "  release: true\n  environments: {dev: {namespace: vision-dev, networkIsolation: {enabled: false}}}\n",
			observed: map[string]string{"namespace-dev": activeNS, "quota.dev": quotaObserved(countApps+`: "0"`, countApps+`: "0"`, countApps+`: "1"`)},
			required: map[string][]string{
				"namespace-dev":    {activeNS},
				"applications-dev": {`{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: stray, namespace: vision-dev}, spec: {projectRef: audio}}`},
			},
			want: want{
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "quota.dev": resource.ReadyTrue, "usage": resource.ReadyTrue},
				phase:     PhaseReady, ready: true, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev", Ready: true}},
				conditions: conditions("EnvironmentsReady", ReasonReleasePending),
			},
		},
		"ReleaseWaitsForQuotaCount": {
			reason:   "The quota controller still counts an application the project has not seen yet (its cache lags): the ClusterUsage stays.",
			spec:     "  release: true\n  environments: {dev: {namespace: vision-dev, networkIsolation: {enabled: false}}}\n",
			observed: map[string]string{"namespace-dev": activeNS, "quota.dev": quotaObserved(countApps+`: "0"`, countApps+`: "0"`, countApps+`: "1"`)},
			required: map[string][]string{"namespace-dev": {activeNS}},
			want: want{
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "quota.dev": resource.ReadyTrue, "usage": resource.ReadyTrue},
				phase:     PhaseReady, ready: true, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev", Ready: true}},
				conditions: conditions("EnvironmentsReady", ReasonReleasePending),
			},
		},
		"ReleaseIgnoresV010Quota": {
			reason:   "A release waits for the renamed quota to be closed and enforced, even when v0.1.0's quota already is: v0.1.0's goes once the renamed one is in force.",
			spec:     "  release: true\n  environments: {dev: {namespace: vision-dev, networkIsolation: {enabled: false}}}\n",
			observed: map[string]string{"namespace-dev": activeNS, "quota-dev": strings.Replace(quotaObserved(countApps+`: "0"`, countApps+`: "0"`, countApps+`: "0"`), "vision-dev-quota", "vision-quota", 1)},
			required: map[string][]string{"namespace-dev": {activeNS}},
			want: want{
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "quota.dev": resource.ReadyFalse, "quota-dev": resource.ReadyTrue, "usage": resource.ReadyTrue},
				phase:     PhaseProvisioning, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev"}},
				conditions: conditions("EnvironmentsNotReady", ReasonReleasePending),
			},
		},
		"Released": {
			reason:   "Release requested, every quota enforces 0 applications and counts none, and none is found: the ClusterUsage is dropped, the quota stays closed.",
			spec:     "  release: true\n  environments: {dev: {namespace: vision-dev, networkIsolation: {enabled: false}}}\n",
			observed: map[string]string{"namespace-dev": activeNS, "quota.dev": quotaObserved(countApps+`: "0"`, countApps+`: "0"`, countApps+`: "0"`)},
			required: map[string][]string{"namespace-dev": {activeNS}},
			want: want{
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "quota.dev": resource.ReadyTrue},
				phase:     PhaseReady, ready: true, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev", Ready: true}},
				conditions: conditions("EnvironmentsReady", ReasonReleased),
			},
		},
		"ReleaseCreatesNoNamespace": {
			reason: "While a release is requested no new namespace is created; with nothing else, the project is released at once.",
			spec:   "  release: true\n  environments: {dev: {namespace: vision-dev}}\n",
			want: want{
				resources:  map[string]resource.Ready{},
				phase:      PhaseProvisioning,
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev"}},
				conditions: conditions("EnvironmentsNotReady", ReasonReleased),
			},
		},
		"ReleaseWithdrawnKeepsQuotaClosed": {
			reason:      "Release set back to false after the ClusterUsage went: the quota stays closed until the new ClusterUsage is Ready.",
			spec:        "  environments: {dev: {namespace: vision-dev, networkIsolation: {enabled: false}}}\n",
			unprotected: true,
			observed:    map[string]string{"namespace-dev": activeNS, "quota.dev": quotaObserved(countApps+`: "0"`, countApps+`: "0"`, countApps+`: "0"`)},
			required:    map[string][]string{"namespace-dev": {activeNS}},
			want: want{idle: true,
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "quota.dev": resource.ReadyTrue, "usage": resource.ReadyFalse},
				phase:     PhaseReady, ready: true, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev", Ready: true}},
				conditions: conditions("EnvironmentsReady", ReasonProtectionPending),
			},
		},
		"ProtectedQuotaReopens": {
			reason:   "Once the ClusterUsage is Ready again the closed count leaves the quota (an environment without a quota of its own has none).",
			spec:     "  environments: {dev: {namespace: vision-dev, networkIsolation: {enabled: false}}}\n",
			observed: map[string]string{"namespace-dev": activeNS, "quota.dev": quotaObserved(countApps+`: "0"`, countApps+`: "0"`, countApps+`: "0"`)},
			required: map[string][]string{"namespace-dev": {activeNS}},
			want: want{idle: true,
				resources: map[string]resource.Ready{"namespace-dev": resource.ReadyTrue, "usage": resource.ReadyTrue},
				phase:     PhaseReady, ready: true, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev", Ready: true}},
				conditions: allGood,
			},
		},
		"IsolationOff": {
			reason:   "Without network isolation no policy is composed; a GPU-only quota needs no default limit range.",
			spec:     "  environments: {dev: {namespace: vision-dev, networkIsolation: {enabled: false}, resourceQuota: {requests: {nvidia.com/gpu: '2'}}}}\n",
			observed: map[string]string{"namespace-dev": activeNS},
			want: want{
				resources: map[string]resource.Ready{"usage": resource.ReadyTrue, "namespace-dev": resource.ReadyTrue, "quota.dev": resource.ReadyFalse},
				phase:     PhaseProvisioning, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev"}},
				conditions: waiting,
			},
		},
		"ComputeQuotaGetsDefaultLimits": {
			reason:   "A quota bounding cpu or memory gets the platform's default container LimitRange.",
			spec:     "  environments: {dev: {namespace: vision-dev, networkIsolation: {enabled: false}, resourceQuota: {limits: {cpu: '4'}}}}\n",
			observed: map[string]string{"namespace-dev": activeNS},
			want: want{
				resources: map[string]resource.Ready{"usage": resource.ReadyTrue, "namespace-dev": resource.ReadyTrue, "quota.dev": resource.ReadyFalse, "limitrange.dev": resource.ReadyFalse},
				phase:     PhaseProvisioning, created: []string{"vision-dev"},
				envs:       []v1alpha1.EnvironmentStatus{{Name: "dev", Namespace: "vision-dev"}},
				conditions: waiting,
			},
		},
		"ConflictingGPUQuota": {
			reason: "Conflicting GPU limits and requests are refused with a Fatal naming both fields.",
			spec:   "  environments: {dev: {namespace: vision-dev, resourceQuota: {limits: {nvidia.com/gpu: '8'}, requests: {nvidia.com/gpu: '4'}}}}\n",
			want:   want{fatal: "spec.environments.dev.resourceQuota.limits[nvidia.com/gpu] and spec.environments.dev.resourceQuota.requests[nvidia.com/gpu] both set quota requests.nvidia.com/gpu"},
		},
		"InvalidSpecFatalBeforeProtection": {
			reason:      "A bad spec is Fatal even while the namespaces wait for the ClusterUsage.",
			spec:        "  environments: {dev: {namespace: vision-dev, resourceQuota: {limits: {nvidia.com/gpu: '8'}, requests: {nvidia.com/gpu: '4'}}}}\n",
			unprotected: true,
			want:        want{fatal: "both set quota requests.nvidia.com/gpu"},
		},
		"UnknownSiblingEnvironment": {
			reason: "allowFromEnvironments must name another environment of the project.",
			spec:   "  environments: {prod: {namespace: vision-prod, networkIsolation: {allowFromEnvironments: [qa]}}}\n",
			want:   want{fatal: `spec.environments.prod.networkIsolation.allowFromEnvironments[0]: "qa" is not another environment of project vision`},
		},
		"BadSubjectKind": {
			reason: "An access subject must be a User, Group or ServiceAccount.",
			spec:   "  environments: {dev: {namespace: vision-dev}}\n  access: {admins: [{kind: Robot, name: r2}]}\n",
			want:   want{fatal: `spec.access.admins[0].kind: "Robot" is not User, Group or ServiceAccount`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			observed := map[string]string{}
			maps.Copy(observed, tc.observed)
			if !tc.unprotected {
				observed["usage"] = readyUsage
			}
			c, err := New(xr(t, tc.spec), composetest.Observed(t, observed))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			req := composetest.Required(t, tc.required)
			for k := range c.Requirements(platform(t)) {
				if _, ok := req[k]; !ok {
					req[k] = nil // resolved, not found
				}
			}
			got := c.Compose(platform(t), req)
			if tc.want.fatal != "" {
				if got.Fatal == nil || !strings.Contains(got.Fatal.Error(), tc.want.fatal) {
					t.Fatalf("%s\nwant Fatal containing %q, got %v", tc.reason, tc.want.fatal, got.Fatal)
				}
				return
			}
			if got.Fatal != nil {
				t.Fatalf("%s\nunexpected Fatal: %v", tc.reason, got.Fatal)
			}
			res := map[string]resource.Ready{}
			for n, d := range got.Desired {
				res[string(n)] = d.Ready
			}
			if diff := cmp.Diff(tc.want.resources, res); diff != "" {
				t.Errorf("%s\ndesired resources: -want, +got:\n%s", tc.reason, diff)
			}
			st := got.Status.(*v1alpha1.KalypsoProjectStatus)
			wantStatus := &v1alpha1.KalypsoProjectStatus{Phase: tc.want.phase, CreatedNamespaces: tc.want.created, Environments: tc.want.envs, ObservedGeneration: 3}
			if diff := cmp.Diff(wantStatus, st); diff != "" {
				t.Errorf("%s\nstatus: -want, +got:\n%s", tc.reason, diff)
			}
			if got.Ready != tc.want.ready {
				t.Errorf("%s\ncomposite ready: want %v, got %v", tc.reason, tc.want.ready, got.Ready)
			}
			conds := map[string]string{}
			for _, c := range got.Conditions {
				conds[c.Type] = c.Reason
			}
			// Alert routing and dashboards are off in these cases
			// (TestComposeAlerting, TestComposeDashboard).
			wantConds := maps.Clone(tc.want.conditions)
			if _, ok := wantConds[ConditionAlertRouting]; !ok && wantConds != nil {
				wantConds[ConditionAlertRouting] = reasonRoutingDisabled
				wantConds[ConditionDashboard] = "DashboardsDisabled"
				wantConds[ConditionShowback] = "ShowbackDisabled"
			}
			if diff := cmp.Diff(wantConds, conds); diff != "" {
				t.Errorf("%s\nconditions: -want, +got:\n%s", tc.reason, diff)
			}
			// Namespaces and applications trigger no watch: a project that
			// waits on them looks again every minute, a settled one idles.
			wantTTL := compose.PollTTL
			if tc.want.idle {
				wantTTL = compose.IdleTTL
			}
			if got.TTL != wantTTL {
				t.Errorf("%s\nTTL: want %v, got %v", tc.reason, wantTTL, got.TTL)
			}
		})
	}
}

func TestEnvironmentObjects(t *testing.T) {
	spec := `  access:
    admins: [{kind: Group, name: vision-leads}]
    editors: [{kind: ServiceAccount, name: ci}]
  environments:
    stage: {namespace: vision-stage}
    prod:
      namespace: vision-prod
      podSecurity: baseline
      description: Production
      resourceQuota: {limits: {cpu: '64', nvidia.com/gpu: '8'}}
      networkIsolation: {allowFromEnvironments: [stage]}
`
	// Both namespaces exist, so their contents are composed.
	c, err := New(xr(t, spec), composetest.Observed(t, map[string]string{
		"namespace-prod":  `{apiVersion: v1, kind: Namespace, metadata: {name: vision-prod}}`,
		"namespace-stage": `{apiVersion: v1, kind: Namespace, metadata: {name: vision-stage}}`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Compose(platform(t), map[string][]resource.Required{})
	if got.Fatal != nil {
		t.Fatal(got.Fatal)
	}
	labels := func(component string) map[string]string {
		return compose.Owner{Project: "vision", Environment: "prod"}.Labels(component, "vision")
	}
	meta := func(component, name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: "vision-prod", Labels: labels(component)}
	}
	typeMeta := func(apiVersion, kind string) metav1.TypeMeta {
		return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
	}

	wantNS := &corev1.Namespace{
		TypeMeta: typeMeta("v1", "Namespace"),
		ObjectMeta: metav1.ObjectMeta{Name: "vision-prod", Annotations: map[string]string{"kalypso-serving.io/description": "Production"}, Labels: compose.Merge(labels("namespace"), map[string]string{
			"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "latest",
			"pod-security.kubernetes.io/audit": "baseline", "pod-security.kubernetes.io/warn": "baseline",
		})},
	}
	if diff := cmp.Diff(wantNS, composetest.Decode[corev1.Namespace](t, got.Desired["namespace-prod"])); diff != "" {
		t.Errorf("namespace: -want, +got:\n%s", diff)
	}
	wantQuota := &corev1.ResourceQuota{TypeMeta: typeMeta("v1", "ResourceQuota"), ObjectMeta: meta("quota", "vision-prod-quota"),
		Spec: corev1.ResourceQuotaSpec{Hard: list("limits.cpu", "64", "requests.nvidia.com/gpu", "8")}}
	if diff := cmp.Diff(wantQuota, composetest.Decode[corev1.ResourceQuota](t, got.Desired["quota.prod"])); diff != "" {
		t.Errorf("quota: -want, +got:\n%s", diff)
	}
	wantLimits := &corev1.LimitRange{TypeMeta: typeMeta("v1", "LimitRange"), ObjectMeta: meta("limitrange", "vision-prod-limits"),
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, Default: list("cpu", "2", "memory", "4Gi"), DefaultRequest: list("cpu", "100m", "memory", "256Mi", "ephemeral-storage", "1Gi")}}}}
	if diff := cmp.Diff(wantLimits, composetest.Decode[corev1.LimitRange](t, got.Desired["limitrange.prod"])); diff != "" {
		t.Errorf("limit range: -want, +got:\n%s", diff)
	}
	ingress := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	wantDeny := &networkingv1.NetworkPolicy{TypeMeta: typeMeta("networking.k8s.io/v1", "NetworkPolicy"), ObjectMeta: meta("networkpolicy", "vision-prod-default-deny-ingress"),
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: ingress}}
	if diff := cmp.Diff(wantDeny, composetest.Decode[networkingv1.NetworkPolicy](t, got.Desired["networkpolicy-deny.prod"])); diff != "" {
		t.Errorf("deny policy: -want, +got:\n%s", diff)
	}
	wantAllow := &networkingv1.NetworkPolicy{TypeMeta: typeMeta("networking.k8s.io/v1", "NetworkPolicy"), ObjectMeta: meta("networkpolicy", "vision-prod-allow-ingress"),
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: ingress, Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: []string{"monitoring", "vision-prod", "vision-stage"},
			}}},
		}}}}}}
	if diff := cmp.Diff(wantAllow, composetest.Decode[networkingv1.NetworkPolicy](t, got.Desired["networkpolicy-allow.prod"])); diff != "" {
		t.Errorf("allow policy: -want, +got:\n%s", diff)
	}
	wantAdmins := &rbacv1.RoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"), ObjectMeta: meta("rolebinding", "vision-prod-admins"),
		Subjects: []rbacv1.Subject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "vision-leads"}},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "admin"}}
	if diff := cmp.Diff(wantAdmins, composetest.Decode[rbacv1.RoleBinding](t, got.Desired["rolebinding-admin.prod"])); diff != "" {
		t.Errorf("admins: -want, +got:\n%s", diff)
	}
	wantEditors := &rbacv1.RoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"), ObjectMeta: meta("rolebinding", "vision-prod-editors"),
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "ci", Namespace: "vision-prod"}},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "edit"}}
	if diff := cmp.Diff(wantEditors, composetest.Decode[rbacv1.RoleBinding](t, got.Desired["rolebinding-edit.prod"])); diff != "" {
		t.Errorf("editors: -want, +got:\n%s", diff)
	}
	// The stage environment: restricted by default, no quota, no bindings for
	// empty lists.
	for _, n := range []string{"quota.stage", "limitrange.stage", "rolebinding-view.stage"} {
		if _, ok := got.Desired[resource.Name(n)]; ok {
			t.Errorf("%s should not be composed", n)
		}
	}
	if l := composetest.Decode[corev1.Namespace](t, got.Desired["namespace-stage"]).Labels["pod-security.kubernetes.io/enforce"]; l != "restricted" {
		t.Errorf("stage enforce level: want the platform default restricted, got %q", l)
	}
}

func TestProtectionUsage(t *testing.T) {
	var twelve []string
	for i := range 12 {
		twelve = append(twelve, fmt.Sprintf(`{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: app-%02d, namespace: vision-dev}, spec: {projectRef: vision}}`, i))
	}
	const step = "to delete it, set spec.release: true (kubectl patch kalypsoproject vision --type merge -p '{spec: {release: true}}'), delete its applications, wait for its condition Released=True, then delete the project"
	cases := map[string]struct {
		reason   string
		spec     string
		observed map[string]string
		apps     []string
		want     string // the ClusterUsage's reason, which the webhook quotes
	}{
		"NoApplications": {
			reason: "Without applications the reason still names the release step.",
			spec:   "  environments: {dev: {namespace: vision-dev}}\n",
			want:   "project vision is protected against deletion; " + step,
		},
		"ManyApplications": {
			reason: "Applications are named, ten at most.",
			spec:   "  environments: {dev: {namespace: vision-dev}}\n",
			apps:   twelve,
			want:   "project vision still has applications: vision-dev/app-00, vision-dev/app-01, vision-dev/app-02, vision-dev/app-03, vision-dev/app-04, vision-dev/app-05, vision-dev/app-06, vision-dev/app-07, vision-dev/app-08, vision-dev/app-09 and 2 more; " + step,
		},
		"ReleasePending": {
			reason:   "During a release the reason says what the release waits for.",
			spec:     "  release: true\n  environments: {dev: {namespace: vision-dev}}\n",
			observed: map[string]string{"usage": readyUsage, "namespace-dev": activeNS},
			apps:     []string{detector},
			want: "project vision is being released (spec.release is true) and can be deleted once its condition Released is True; waiting for applications to be deleted: vision-dev/detector; " +
				"the ResourceQuotas of environments dev to admit no new application (count/kalypsoapplications.serving.kalypso.io: 0)",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := New(xr(t, tc.spec), composetest.Observed(t, tc.observed))
			if err != nil {
				t.Fatal(err)
			}
			got := c.Compose(platform(t), composetest.Required(t, map[string][]string{"applications-dev": tc.apps, "namespace-dev": {activeNS}}))
			if got.Fatal != nil {
				t.Fatal(got.Fatal)
			}
			u := composetest.Decode[protectionv1beta1.ClusterUsage](t, got.Desired["usage"])
			want := &protectionv1beta1.ClusterUsage{
				TypeMeta:   metav1.TypeMeta{APIVersion: "protection.crossplane.io/v1beta1", Kind: "ClusterUsage"},
				ObjectMeta: metav1.ObjectMeta{Name: "kalypsoproject-vision", Labels: compose.Owner{Project: "vision"}.Labels("usage", "vision")},
				Spec: protectionv1beta1.ClusterUsageSpec{
					Of:     protectionv1beta1.Resource{APIVersion: "serving.kalypso.io/v1alpha1", Kind: "KalypsoProject", ResourceRef: &protectionv1beta1.ResourceRef{Name: "vision"}},
					Reason: ptr.To(tc.want),
				},
			}
			if diff := cmp.Diff(want, u); diff != "" {
				t.Errorf("%s\nClusterUsage: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestClosedQuota: during a release the environment's quota keeps its own
// limits and gets the application count 0, over its own value for it.
func TestClosedQuota(t *testing.T) {
	cases := map[string]struct {
		reason string
		env    string
		want   corev1.ResourceList
	}{
		"NoQuota": {
			reason: "An environment without a quota gets one with the count alone.",
			env:    "{namespace: vision-dev, networkIsolation: {enabled: false}}",
			want:   corev1.ResourceList{countApps: kresource.MustParse("0")},
		},
		"OwnQuota": {
			reason: "The environment's limits stay.",
			env:    "{namespace: vision-dev, networkIsolation: {enabled: false}, resourceQuota: {requests: {nvidia.com/gpu: '2'}}}",
			want:   corev1.ResourceList{"requests.nvidia.com/gpu": kresource.MustParse("2"), countApps: kresource.MustParse("0")},
		},
		"OwnCount": {
			reason: "An application count of its own is overridden while the release is pending.",
			env:    "{namespace: vision-dev, networkIsolation: {enabled: false}, resourceQuota: {requests: {" + countApps + ": '5'}}}",
			want:   corev1.ResourceList{countApps: kresource.MustParse("0")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := New(xr(t, "  release: true\n  environments: {dev: "+tc.env+"}\n"), composetest.Observed(t, map[string]string{"usage": readyUsage, "namespace-dev": activeNS}))
			if err != nil {
				t.Fatal(err)
			}
			got := c.Compose(platform(t), composetest.Required(t, map[string][]string{"namespace-dev": {activeNS}}))
			if got.Fatal != nil {
				t.Fatal(got.Fatal)
			}
			q := composetest.Decode[corev1.ResourceQuota](t, got.Desired["quota.dev"])
			if diff := cmp.Diff(tc.want, q.Spec.Hard); diff != "" {
				t.Errorf("%s\nquota hard: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestNewMalformedSpec(t *testing.T) {
	_, err := New(xr(t, "  environments: [dev]\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "spec.environments") {
		t.Fatalf("want an error naming spec.environments, got %v", err)
	}
}

// Removed environments that still have applications keep v0.1.0's objects
// until their renamed copies are in force; the quota is closed under the
// current names. Kept under v0.1.0's names in two namespaces they would
// collide in Crossplane v2.2.1's resourceRefs order for as long as the
// applications stay.
func TestRemovedV010EnvironmentsRenamed(t *testing.T) {
	v010 := func(o, env string) string {
		o = strings.ReplaceAll(o, "vision-dev", "vision-"+env)
		o = strings.ReplaceAll(o, "environment: dev", "environment: "+env)
		return strings.Replace(o, "vision-"+env+"-", "vision-", 1)
	}
	observed := map[string]string{"usage": readyUsage}
	required := map[string][]string{}
	for _, env := range []string{"dev", "prod"} {
		observed["namespace-"+env] = strings.ReplaceAll(activeNS, "dev", env)
		observed["quota-"+env] = v010(quotaObserved(`requests.nvidia.com/gpu: "4"`, `requests.nvidia.com/gpu: "4"`, `requests.nvidia.com/gpu: "0"`), env)
		observed["networkpolicy-deny-"+env] = v010(denyNP, env)
		required["applications-"+env] = []string{strings.ReplaceAll(detector, "vision-dev", "vision-"+env)}
	}
	compose1 := func(observed map[string]string) compose.Result {
		t.Helper()
		c, err := New(xr(t, "  environments: {}\n"), composetest.Observed(t, observed))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		got := c.Compose(platform(t), composetest.Required(t, required))
		if got.Fatal != nil {
			t.Fatalf("unexpected Fatal: %v", got.Fatal)
		}
		return got
	}

	first := compose1(observed)
	for _, env := range []string{"dev", "prod"} {
		for _, name := range []string{"quota-" + env, "networkpolicy-deny-" + env, "quota." + env, "networkpolicy-deny." + env} {
			if _, ok := first.Desired[resource.Name(name)]; !ok {
				t.Errorf("first call: %s is not composed; every v0.1.0 object stays until its replacement is in force", name)
			}
		}
		q := composetest.Decode[corev1.ResourceQuota](t, first.Desired[resource.Name("quota."+env)])
		want := list("requests.nvidia.com/gpu", "4", countApps, "0")
		if q.Name != "vision-"+env+"-quota" || !equality.Semantic.DeepEqual(q.Spec.Hard, want) {
			t.Errorf("want quota.%s closed as vision-%s-quota with %v, got %s with %v", env, env, want, q.Name, q.Spec.Hard)
		}
		np := composetest.Decode[networkingv1.NetworkPolicy](t, first.Desired[resource.Name("networkpolicy-deny."+env)])
		if np.Name != "vision-"+env+"-default-deny-ingress" || np.Namespace != "vision-"+env {
			t.Errorf("renamed deny policy: got %s/%s", np.Namespace, np.Name)
		}
	}

	// The copies exist; the new quotas are taken over by the quota
	// controller: v0.1.0's objects go, and no two objects share a name.
	for _, env := range []string{"dev", "prod"} {
		observed["quota."+env] = strings.ReplaceAll(strings.ReplaceAll(quotaObserved(`requests.nvidia.com/gpu: "4", `+countApps+`: "0"`, `requests.nvidia.com/gpu: "4", `+countApps+`: "0"`, ""), "vision-dev", "vision-"+env), "environment: dev", "environment: "+env)
		observed["networkpolicy-deny."+env] = strings.ReplaceAll(strings.ReplaceAll(denyNP, "vision-dev", "vision-"+env), "environment: dev", "environment: "+env)
	}
	second := compose1(observed)
	var names []string
	for name := range second.Desired {
		names = append(names, string(name))
	}
	slices.Sort(names)
	wantNames := []string{"namespace-dev", "namespace-prod", "networkpolicy-deny.dev", "networkpolicy-deny.prod", "quota.dev", "quota.prod", "usage"}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("second call: desired -want, +got:\n%s", diff)
	}
}
