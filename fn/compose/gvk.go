package compose

import (
	"fmt"
	"slices"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

// Access is what the function makes Crossplane core do with a kind, and so
// what core's RBAC must allow on it.
type Access int

const (
	// Read: looked up through required resources. Core serves them from an
	// informer (Secrets excepted), so it needs get, list and watch; without
	// list/watch its cache never syncs and every reconcile of the composite
	// blocks until core's timeout.
	Read Access = 1 << iota
	// Compose: composed. Core applies, watches and garbage-collects it:
	// get, list, watch, create, update, patch and delete.
	Compose
)

// Verbs are the RBAC verbs core needs for an access.
func (a Access) Verbs() []string {
	if a&Compose != 0 {
		return []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	}
	return []string{"get", "list", "watch"}
}

// GVK is a kind the function requires or composes, with its resource name
// for RBAC.
type GVK struct {
	Group, Version, Kind, Resource string
	Access                         Access
}

// APIVersion is the kind's group/version.
func (g GVK) APIVersion() string {
	if g.Group == "" {
		return g.Version
	}
	return g.Group + "/" + g.Version
}

func (g GVK) String() string { return g.APIVersion() + ", Kind=" + g.Kind }

// The kinds the function reads or composes. Every ResourceSelector is built
// from one of these (Named, Labelled), and tests check every composed
// object and the shipped RBAC against this table (KindTable).
var (
	KindNamespace          = GVK{"", "v1", "Namespace", "namespaces", Compose | Read}
	KindResourceQuota      = GVK{"", "v1", "ResourceQuota", "resourcequotas", Compose | Read}
	KindLimitRange         = GVK{"", "v1", "LimitRange", "limitranges", Compose}
	KindService            = GVK{"", "v1", "Service", "services", Compose}
	KindConfigMap          = GVK{"", "v1", "ConfigMap", "configmaps", Compose}
	KindSecret             = GVK{"", "v1", "Secret", "secrets", Read}
	KindServiceAccount     = GVK{"", "v1", "ServiceAccount", "serviceaccounts", Read}
	KindPod                = GVK{"", "v1", "Pod", "pods", Read}
	KindDeployment         = GVK{"apps", "v1", "Deployment", "deployments", Compose}
	KindNetworkPolicy      = GVK{"networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", Compose}
	KindRoleBinding        = GVK{"rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", Compose}
	KindPDB                = GVK{"policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", Compose}
	KindHPA                = GVK{"autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", Compose}
	KindServiceMonitor     = GVK{"monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors", Compose}
	KindScaledObject       = GVK{"keda.sh", "v1alpha1", "ScaledObject", "scaledobjects", Compose}
	KindPrometheusRule     = GVK{"monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules", Compose}
	KindAlertmanagerConfig = GVK{"monitoring.coreos.com", "v1alpha1", "AlertmanagerConfig", "alertmanagerconfigs", Compose}
	KindHTTPRoute          = GVK{"gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", Compose | Read}
	KindGRPCRoute          = GVK{"gateway.networking.k8s.io", "v1", "GRPCRoute", "grpcroutes", Compose | Read}
	KindResourceClaimTmpl  = GVK{"resource.k8s.io", "v1", "ResourceClaimTemplate", "resourceclaimtemplates", Compose}
	KindUsage              = GVK{"protection.crossplane.io", "v1beta1", "Usage", "usages", Compose | Read}
	KindClusterUsage       = GVK{"protection.crossplane.io", "v1beta1", "ClusterUsage", "clusterusages", Compose | Read}
	KindAPIService         = GVK{"apiregistration.k8s.io", "v1", "APIService", "apiservices", Read}
	KindEnvironmentCfg     = GVK{"apiextensions.crossplane.io", "v1beta1", "EnvironmentConfig", "environmentconfigs", Read}
	// The Kalypso kinds read across composites: an application's project,
	// a server's application, an application's servers, a project's
	// applications (in the claim flavour, the claims of the same names).
	KindProject      = GVK{"serving.kalypso.io", "v1alpha1", "KalypsoProject", "kalypsoprojects", Read}
	KindApplication  = GVK{"serving.kalypso.io", "v1alpha1", "KalypsoApplication", "kalypsoapplications", Read}
	KindTritonServer = GVK{"serving.kalypso.io", "v1alpha1", "KalypsoTritonServer", "kalypsotritonservers", Read}
)

// KindTable lists every kind above.
var KindTable = []GVK{
	KindNamespace, KindResourceQuota, KindLimitRange, KindService, KindConfigMap, KindSecret, KindServiceAccount, KindPod,
	KindDeployment, KindNetworkPolicy, KindRoleBinding, KindPDB, KindHPA, KindServiceMonitor, KindScaledObject, KindPrometheusRule, KindAlertmanagerConfig,
	KindHTTPRoute, KindGRPCRoute, KindResourceClaimTmpl, KindUsage, KindClusterUsage, KindAPIService, KindEnvironmentCfg,
	KindProject, KindApplication, KindTritonServer,
}

// LookupKind finds a kind of the table by apiVersion and kind.
func LookupKind(apiVersion, kind string) (GVK, error) {
	i := slices.IndexFunc(KindTable, func(g GVK) bool { return g.APIVersion() == apiVersion && g.Kind == kind })
	if i < 0 {
		return GVK{}, fmt.Errorf("%s, Kind=%s is not in the kind table (fn/compose/gvk.go): add it there and to the shipped RBAC", apiVersion, kind)
	}
	return KindTable[i], nil
}

// Named selects one object of a kind by name; namespace "" for a
// cluster-scoped kind.
func (g GVK) Named(namespace, name string) *fnv1.ResourceSelector {
	s := &fnv1.ResourceSelector{ApiVersion: g.APIVersion(), Kind: g.Kind, Match: &fnv1.ResourceSelector_MatchName{MatchName: name}}
	if namespace != "" {
		s.Namespace = &namespace
	}
	return s
}

// Labelled selects the objects of a kind carrying labels (every object
// when labels is empty); namespace "" for a cluster-scoped kind.
func (g GVK) Labelled(namespace string, labels map[string]string) *fnv1.ResourceSelector {
	if labels == nil {
		labels = map[string]string{}
	}
	s := &fnv1.ResourceSelector{ApiVersion: g.APIVersion(), Kind: g.Kind, Match: &fnv1.ResourceSelector_MatchLabels{MatchLabels: &fnv1.MatchLabels{Labels: labels}}}
	if namespace != "" {
		s.Namespace = &namespace
	}
	return s
}

// Schema selects the kind's OpenAPI schema. Crossplane core answers from
// the API server's OpenAPI v3 discovery, with an empty schema when the kind
// is not served (v2.2.1 internal/xfn/required_schemas.go), so checking that
// an optional CRD is installed adds nothing to core's caches; a required
// CustomResourceDefinition would start a second, unstructured informer of
// every CRD of the cluster beside the typed one core keeps. Core parses
// the group-version's whole document each time, so composers ask only
// until they compose an object of the kind.
func (g GVK) Schema() *fnv1.SchemaSelector {
	return &fnv1.SchemaSelector{ApiVersion: g.APIVersion(), Kind: g.Kind}
}
