// Package application composes a KalypsoApplication: it validates the
// project and the model storage its servers share, counts its servers, and
// optionally exposes them through the platform's Gateway API gateway.
package application

import (
	"fmt"
	"slices"
	"strings"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// Phases of an application.
const (
	PhasePending = "Pending"
	PhaseReady   = "Ready"
	PhaseFailed  = "Failed"
)

// Condition types an application owns; every call sends each of them.
const (
	ConditionProjectValid = "ProjectValid"
	ConditionStorageReady = "StorageReady"
	ConditionExposed      = "Exposed"
)

// ConditionTypes lists them, for re-sending the last known ones with a Fatal.
var ConditionTypes = []string{ConditionProjectValid, ConditionStorageReady, ConditionExposed}

// Required resource keys.
const (
	reqProject        = "project"
	reqSecret         = "storage-secret"
	reqServiceAccount = "storage-serviceaccount"
	reqServers        = "servers"
	reqRouteSchema    = "httproute-schema"

	httpRouteCRD = "httproutes.gateway.networking.k8s.io"
)

// Composer composes one observed application.
type Composer struct {
	id       compose.Identity
	xrName   string // the composite's own name (the claim flavour's differs from id.Name)
	gen      int64
	spec     v1alpha1.KalypsoApplicationSpec
	lastEnv  string // environment recorded in the observed status
	observed map[resource.Name]resource.ObservedComposed
}

// New decodes the application.
func New(xr *resource.Composite, observed map[resource.Name]resource.ObservedComposed) (*Composer, error) {
	c := &Composer{id: compose.IdentityOf(xr), xrName: xr.Resource.GetName(), gen: compose.Generation(xr), observed: observed}
	if err := compose.DecodeSpec(xr.Resource.Object, &c.spec); err != nil {
		return nil, err
	}
	if c.id.Namespace == "" {
		return nil, fmt.Errorf("a KalypsoApplication must be namespaced (or a claim): %s has no namespace", c.id.Name)
	}
	c.lastEnv = compose.Str(xr.Resource.Object, "status", "environment")
	return c, nil
}

func (c *Composer) gatewayEnabled() bool { return c.spec.Gateway != nil && c.spec.Gateway.Enabled }

// Requirements: the project, the storage secret or service account, and
// the servers of the namespace.
func (c *Composer) Requirements(compose.Platform) map[string]*fnv1.ResourceSelector {
	ns := c.id.Namespace
	r := map[string]*fnv1.ResourceSelector{
		reqProject: compose.KindProject.Named("", c.spec.ProjectRef),
		reqServers: compose.KindTritonServer.Labelled(ns, nil),
	}
	if s := c.spec.Storage; s != nil {
		if s.SecretName != "" {
			r[reqSecret] = compose.KindSecret.Named(ns, s.SecretName)
		}
		if s.ServiceAccountName != "" {
			r[reqServiceAccount] = compose.KindServiceAccount.Named(ns, s.ServiceAccountName)
		}
	}
	return r
}

// project validates the project: it exists, is Ready and owns this
// namespace. It returns the environment, or the failed condition.
func (c *Composer) project(required map[string][]resource.Required) (string, *compose.Condition) {
	ref := c.spec.ProjectRef
	items := required[reqProject]
	if len(items) == 0 {
		return "", &compose.Condition{Type: ConditionProjectValid, Reason: "ProjectNotFound", Message: fmt.Sprintf(
			"KalypsoProject %s does not exist: create it, or fix spec.projectRef", ref)}
	}
	p := items[0].Resource
	envs, _, _ := unstructured.NestedMap(p.Object, "spec", "environments")
	env := ""
	for _, name := range slices.Sorted(mapsKeys(envs)) {
		if ns, _, _ := unstructured.NestedString(envs, name, "namespace"); ns == c.id.Namespace {
			env = name
		}
	}
	if env == "" {
		return "", &compose.Condition{Type: ConditionProjectValid, Reason: "NamespaceNotInProject", Message: fmt.Sprintf(
			"namespace %s is not an environment of KalypsoProject %s: create the application in one of its environment namespaces, or add an environment with this namespace to the project",
			c.id.Namespace, ref)}
	}
	if compose.ConditionStatus(p.Object, "Ready") != "True" {
		return env, &compose.Condition{Type: ConditionProjectValid, Reason: "ProjectNotReady", Message: fmt.Sprintf(
			"KalypsoProject %s is not Ready yet (its environment namespaces are being provisioned, or it reports a problem: kubectl describe kalypsoproject %s)", ref, ref)}
	}
	return env, nil
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// storageKeys are the secret keys each provider needs, with their defaults.
func storageKeys(s *v1alpha1.StorageSpec) []string {
	k := ptr.Deref(s.Keys, v1alpha1.StorageKeys{})
	or := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	switch s.Provider {
	case v1alpha1.StorageGCS:
		return []string{or(k.GCSCredentials, "gcs-credentials.json")}
	case v1alpha1.StorageAzure:
		return []string{or(k.AzureStorageAccount, "AZURE_STORAGE_ACCOUNT"), or(k.AzureStorageKey, "AZURE_STORAGE_KEY")}
	default:
		keys := []string{or(k.AccessKeyID, "AWS_ACCESS_KEY_ID"), or(k.SecretAccessKey, "AWS_SECRET_ACCESS_KEY")}
		// A session token is optional under its default name (servers
		// reference it with optional: true); one named in storage.keys is
		// required, and servers reference it without optional.
		if k.SessionToken != "" {
			keys = append(keys, k.SessionToken)
		}
		return keys
	}
}

// storage checks that the storage is usable: the secret exists and holds
// the provider's keys (only key names are read, never values), or the
// keyless service account exists.
func (c *Composer) storage(required map[string][]resource.Required) compose.Condition {
	s := c.spec.Storage
	ok := compose.Condition{Type: ConditionStorageReady, Status: true}
	if s == nil {
		ok.Reason, ok.Message = "NoStorage", "no spec.storage: servers reach public model repositories, or set their own serviceAccountName"
		return ok
	}
	provider := s.Provider
	if provider == "" {
		provider = v1alpha1.StorageS3
	}
	var problems []string
	reason := ""
	if s.ServiceAccountName != "" && len(required[reqServiceAccount]) == 0 {
		reason = "StorageServiceAccountMissing"
		problems = append(problems, fmt.Sprintf("ServiceAccount %s (spec.storage.serviceAccountName) does not exist in namespace %s: create it with the cloud identity annotation your platform uses (EKS IRSA, GKE or AKS Workload Identity)", s.ServiceAccountName, c.id.Namespace))
	}
	if s.SecretName != "" {
		items := required[reqSecret]
		if len(items) == 0 {
			reason = "StorageSecretMissing"
			problems = append(problems, fmt.Sprintf("Secret %s (spec.storage.secretName) does not exist in namespace %s: create it with the keys %s", s.SecretName, c.id.Namespace, strings.Join(storageKeys(s), ", ")))
		} else {
			missing := compose.MissingSecretKeys(items[0].Resource, storageKeys(s)...)
			if len(missing) > 0 {
				if reason == "" {
					reason = "StorageSecretIncomplete"
				}
				problems = append(problems, fmt.Sprintf("Secret %s lacks the key(s) %s that %s storage needs: add them, or name the keys it has in spec.storage.keys", s.SecretName, strings.Join(missing, ", "), provider))
			}
		}
	}
	if len(problems) > 0 {
		return compose.Condition{Type: ConditionStorageReady, Reason: reason, Message: strings.Join(problems, "; ")}
	}
	ok.Reason = "StorageReady"
	switch {
	case s.SecretName != "" && s.ServiceAccountName != "":
		ok.Message = fmt.Sprintf("%s storage: Secret %s holds the needed keys and ServiceAccount %s exists", provider, s.SecretName, s.ServiceAccountName)
	case s.SecretName != "":
		ok.Message = fmt.Sprintf("%s storage: Secret %s holds the needed keys", provider, s.SecretName)
	default:
		ok.Message = fmt.Sprintf("%s storage through ServiceAccount %s (keyless)", provider, s.ServiceAccountName)
	}
	return ok
}

// server is a KalypsoTritonServer that references this application.
type server struct {
	name      string
	httpPort  int64
	grpcPort  int64
	ready     bool
	namespace string
	canary    *v1alpha1.CanaryStatus // what the server says its canary gets
}

func (c *Composer) servers(required map[string][]resource.Required) []server {
	var out []server
	for _, r := range required[reqServers] {
		u := r.Resource
		if ref, _, _ := unstructured.NestedString(u.Object, "spec", "applicationRef"); ref != c.id.Name {
			continue
		}
		s := server{name: u.GetName(), namespace: u.GetNamespace(), httpPort: 8000, grpcPort: 8001,
			ready: compose.ConditionStatus(u.Object, "Ready") == "True"}
		if v, ok := compose.Int(u.Object, "spec", "networking", "httpPort"); ok {
			s.httpPort = v
		}
		if v, ok := compose.Int(u.Object, "spec", "networking", "grpcPort"); ok {
			s.grpcPort = v
		}
		if raw, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "status", "canary"); ok {
			cs := &v1alpha1.CanaryStatus{}
			if err := compose.DecodeInto(raw, cs); err == nil && cs.Service != "" {
				s.canary = cs
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b server) int { return strings.Compare(a.name, b.name) })
	return out
}

// Compose validates, counts, exposes and reports.
func (c *Composer) Compose(p compose.Platform, required map[string][]resource.Required) compose.Result {
	env, projectProblem := c.project(required)
	if env == "" {
		// Keep the labels of what exists while the project is invalid.
		env = c.lastEnv
	}
	storage := c.storage(required)
	servers := c.servers(required)

	st := &v1alpha1.KalypsoApplicationStatus{ObservedGeneration: c.gen, Environment: env, ActiveModels: int32(len(servers))}
	for _, s := range servers {
		if s.ready {
			st.ReadyModels++
		}
	}

	labels := compose.Owner{Project: c.spec.ProjectRef, Environment: env, Application: c.id.Name}.Labels("route", c.id.Name)
	d := compose.NewDesired(c.observed)
	exposed, endpoint, err := c.expose(d, p, servers, projectProblem == nil, required, labels)
	if err != nil {
		return compose.Result{Fatal: err}
	}
	st.GatewayEndpoint = endpoint
	if err := c.protect(d, servers, compose.Owner{Project: c.spec.ProjectRef, Environment: env, Application: c.id.Name}.Labels("usage", c.id.Name)); err != nil {
		return compose.Result{Fatal: err}
	}

	projectCond := compose.Condition{Type: ConditionProjectValid, Status: true, Reason: "ProjectValid",
		Message: fmt.Sprintf("KalypsoProject %s is Ready and owns namespace %s (environment %s)", c.spec.ProjectRef, c.id.Namespace, env)}
	if projectProblem != nil {
		projectCond = *projectProblem
	}
	valid := projectProblem == nil && storage.Status
	switch {
	case valid:
		st.Phase = PhaseReady
	case projectProblem != nil && projectProblem.Reason == "ProjectNotReady" && storage.Status:
		st.Phase = PhasePending
	default:
		st.Phase = PhaseFailed
	}
	r := compose.Result{
		Desired: d.Objects, Ready: valid, Status: st,
		Conditions: []compose.Condition{projectCond, storage, exposed},
		// The servers are required resources, which no watch follows:
		// activeModels and readyModels lag a server's change by at most
		// this long. A minute is what `kubectl get` users tolerate for a
		// count; at idle each call costs its few requests per application,
		// not per server.
		TTL: compose.PollTTL,
	}
	if !valid || slices.ContainsFunc(servers, func(s server) bool { return s.canary != nil }) {
		// Routes follow a canary's weight from its server's status, which
		// no watch brings here, and a dropping or promoting canary waits on
		// these routes (tritonserver's removedCanary): follow it soon while
		// a canary exists, which is for a while only.
		r.TTL = compose.WaitTTL
	}
	return r
}
