// Package tritonserver composes a KalypsoTritonServer: a GPU Deployment of
// NVIDIA Triton, its Service, ServiceMonitor, PodDisruptionBudget,
// HorizontalPodAutoscaler and the Usage that protects its application, and
// reports whether it serves.
package tritonserver

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// Phases of a server.
const (
	PhasePending = "Pending"
	PhaseRunning = "Running"
	PhaseFailed  = "Failed"
)

// Condition types a server owns; every call sends each of them.
const (
	ConditionApplicationReady = "ApplicationReady"
	ConditionServerAvailable  = "ServerAvailable"
	ConditionMetricsScraping  = "MetricsScraping"
	ConditionTracing          = "Tracing"
	ConditionProfiling        = "Profiling"
	ConditionAutoscaling      = "Autoscaling"
	ConditionAPIRestricted    = "APIRestricted"
	ConditionShutdown         = "Shutdown"
	ConditionAlerting         = "Alerting"
)

// ConditionTypes lists them, for re-sending the last known ones with a Fatal.
var ConditionTypes = []string{ConditionApplicationReady, ConditionServerAvailable, ConditionMetricsScraping, ConditionTracing, ConditionProfiling, ConditionAutoscaling, ConditionAPIRestricted, ConditionShutdown, ConditionAlerting, ConditionGPUClass, ConditionCanaryHealthy}

// Pipeline names of the composed objects.
const (
	resDeployment     = resource.Name("deployment")
	resService        = resource.Name("service")
	resServiceMonitor = resource.Name("servicemonitor")
	resPDB            = resource.Name("poddisruptionbudget")
	resHPA            = resource.Name("horizontalpodautoscaler")
	resUsage          = resource.Name("usage")
	// resClaimTemplatePrefix begins the pipeline name of a DRA server's
	// ResourceClaimTemplate, which ends with what it asks for.
	resClaimTemplatePrefix = "resourceclaimtemplate-"
)

// Required resource keys.
const (
	reqApplication    = "application"
	reqServiceMonitor = "servicemonitor-schema"
	reqPods           = "pods"
	reqQuotas         = "resourcequotas"
	reqMetricsAPI     = "custom-metrics-api"
	reqAPIKey         = "api-key-secret"
)

const (
	serviceMonitorCRD = "servicemonitors.monitoring.coreos.com"
	customMetricsAPI  = "v1beta1.custom.metrics.k8s.io"
	// maxNameLength leaves <name>-svc a DNS-1035 label.
	maxNameLength = 59
)

var nameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// Composer composes one observed server.
type Composer struct {
	id       compose.Identity
	xr       *resource.Composite
	gen      int64
	spec     v1alpha1.KalypsoTritonServerSpec
	last     *v1alpha1.ServerApplicationStatus // what the server last used
	observed map[resource.Name]resource.ObservedComposed
	deploy   *composed.Unstructured // observed Deployment, nil before the first create
	// gpu and gpuCond are the GPU class and devices the spec asks for and
	// their condition, resolved at the start of Compose.
	gpu     gpuRequest
	gpuCond compose.Condition
	// canary is set on the Composer of a canary track (canaryTrack): the
	// canary's settings, merged into spec.
	canary *v1alpha1.CanarySpec
	// prevCanary is status.canary as last written.
	prevCanary *v1alpha1.CanaryStatus
}

// New decodes the server. A spec that does not decode is an error naming
// the field.
func New(xr *resource.Composite, observed map[resource.Name]resource.ObservedComposed) (*Composer, error) {
	c := &Composer{id: compose.IdentityOf(xr), xr: xr, gen: compose.Generation(xr), observed: observed}
	if err := compose.DecodeSpec(xr.Resource.Object, &c.spec); err != nil {
		return nil, err
	}
	if len(c.id.Name) > maxNameLength || !nameRE.MatchString(c.id.Name) {
		return nil, fmt.Errorf("metadata.name: %q must start with a letter, hold only lower case letters, digits and '-', and be at most %d characters, so that %s-svc is a valid Service name", c.id.Name, maxNameLength, c.id.Name)
	}
	if c.id.Namespace == "" {
		return nil, fmt.Errorf("a KalypsoTritonServer must be namespaced (or a claim): %s has no namespace", c.id.Name)
	}
	// Only the application snapshot is read back from the status; one that
	// does not decode is simply not used.
	if raw, ok, _ := unstructured.NestedFieldNoCopy(xr.Resource.Object, "status", "application"); ok {
		last := &v1alpha1.ServerApplicationStatus{}
		if err := compose.DecodeInto(raw, last); err == nil {
			c.last = last
		}
	}
	if raw, ok, _ := unstructured.NestedFieldNoCopy(xr.Resource.Object, "status", "canary"); ok {
		prev := &v1alpha1.CanaryStatus{}
		if err := compose.DecodeInto(raw, prev); err == nil {
			c.prevCanary = prev
		}
	}
	if o, ok := observed[resDeployment]; ok {
		c.deploy = o.Resource
	}
	return c, nil
}

// Requirements: the application and its Usage of itself, the pods while the
// Deployment is not available when the platform reads pods (for the reason;
// see input DiagnosticsDefaults.ReadPods for its cost), the namespace's quotas
// before the first create (every server requests ephemeral storage, GPU
// servers GPUs) and while a DRA server misses replicas (awaitsClaims), and
// the custom metrics API for queue-time autoscaling.
func (c *Composer) Requirements(p compose.Platform) map[string]*fnv1.ResourceSelector {
	ns := c.id.Namespace
	r := map[string]*fnv1.ResourceSelector{
		reqApplication:   compose.KindApplication.Named(ns, c.spec.ApplicationRef),
		reqAppProtection: c.appProtectionRequirement(),
	}
	if c.readsPods(p) {
		r[reqPods] = compose.KindPod.Labelled(ns, c.selector())
	}
	if !c.unrestricted() {
		r[reqAPIKey] = compose.KindSecret.Named(ns, p.RestrictedAPISecret)
	}
	if c.deploy == nil || c.awaitsClaims(p) || (c.spec.Canary != nil && !c.canaryObserved()) {
		r[reqQuotas] = compose.KindResourceQuota.Labelled(ns, nil)
	}
	if c.spec.Canary != nil {
		r[reqCanaryNamesake] = compose.KindTritonServer.Named(ns, compose.CanaryName(c.id.Name))
	}
	if owner, ok := c.canaryOwner(); ok {
		r[reqCanaryOwner] = compose.KindTritonServer.Named(ns, owner)
	}
	if c.canaryObserved() {
		// Only once a canary exists: its application then composes routes,
		// so their kinds are served (core fails a call that requires a
		// kind that is not).
		r[reqHTTPRoute] = compose.KindHTTPRoute.Named(ns, compose.RouteName(c.spec.ApplicationRef, c.id.Name, compose.RouteHTTP))
		r[reqGRPCRoute] = compose.KindGRPCRoute.Named(ns, compose.RouteName(c.spec.ApplicationRef, c.id.Name, compose.RouteGRPC))
	}
	if readsCostLabels(p) {
		r[reqNamespace] = compose.KindNamespace.Named("", ns)
	}
	if a := c.spec.Autoscaling; a != nil && a.Enabled && metricOf(a) == metricQueueTime && !c.usesKEDA(p) {
		r[reqMetricsAPI] = compose.KindAPIService.Named("", customMetricsAPI)
	}
	return r
}

// readsPods: the platform opted in and the Deployment does not serve, or
// serves with replicas missing (a scale-up short of GPUs).
func (c *Composer) readsPods(p compose.Platform) bool {
	if !p.ReadPods || c.deploy == nil {
		return false
	}
	want, available := deploymentCounts(c.deploy)
	return available < want || !c.serves(c.deploy)
}

// Schemas: whether ServiceMonitors are served (the Prometheus Operator's
// CRD installed), asked while one is wanted and none composed yet.
func (c *Composer) Schemas(p compose.Platform) map[string]*fnv1.SchemaSelector {
	s := map[string]*fnv1.SchemaSelector{}
	if c.checksServiceMonitorKind() {
		s[reqServiceMonitor] = compose.KindServiceMonitor.Schema()
	}
	if c.checksKEDAKind(p) {
		s[reqScaledObject] = compose.KindScaledObject.Schema()
	}
	if c.checksPrometheusRuleKind(p) {
		s[reqPrometheusRule] = compose.KindPrometheusRule.Schema()
	}
	if len(s) == 0 {
		return nil
	}
	return s
}

// reasonWaitingToCreate: the server waits for something before its first
// create.
const reasonWaitingToCreate = "WaitingToCreate"

// checksServiceMonitorKind: a ServiceMonitor is wanted and none composed,
// and the server is not waiting to be created. Core parses the
// group-version's whole OpenAPI document (about 2 MB for
// monitoring.coreos.com/v1) at every fetch (internal/xfn/required_schemas.go),
// and a waiting server polls; once it is created, the Deployment's events
// wake it and the ServiceMonitor follows one call later.
func (c *Composer) checksServiceMonitorKind() bool {
	if !c.wantsServiceMonitor() || c.serviceMonitorComposed() {
		return false
	}
	if c.deploy != nil {
		return true
	}
	cond := compose.FindCondition(c.xr.Resource.Object, ConditionServerAvailable)
	return cond == nil || cond["reason"] != reasonWaitingToCreate
}

// serviceMonitorComposed: a ServiceMonitor is observed, so its kind is
// served. It goes with its CRD, and the kind is then checked again.
func (c *Composer) serviceMonitorComposed() bool {
	_, ok := c.observed[resServiceMonitor]
	return ok
}

func (c *Composer) selector() map[string]string {
	return map[string]string{compose.LabelTritonServer: c.trackName()}
}

// trackName is the server's name, or its canary's.
func (c *Composer) trackName() string {
	if c.canary != nil {
		return compose.CanaryName(c.id.Name)
	}
	return c.id.Name
}

func (c *Composer) unrestricted() bool {
	return c.spec.Security != nil && c.spec.Security.UnrestrictedAPIs
}

// restrictedAPI returns the header that unlocks the restricted APIs, or
// why the server cannot start: it never starts Triton unrestricted because
// the platform's API key Secret is missing.
func (c *Composer) restrictedAPI(p compose.Platform, required map[string][]resource.Required) (string, *compose.Condition) {
	if c.unrestricted() {
		return "", nil
	}
	items := required[reqAPIKey]
	if len(items) == 0 {
		return "", &compose.Condition{Type: ConditionAPIRestricted, Reason: "APIKeySecretMissing", Message: fmt.Sprintf(
			"Secret %s does not exist in namespace %s: the platform provisions it (key %s) so that Triton's model-repository and shared-memory APIs are restricted; the server is not started unrestricted. Set spec.security.unrestrictedAPIs: true to opt out",
			p.RestrictedAPISecret, c.id.Namespace, p.RestrictedAPISecretKey)}
	}
	if len(compose.MissingSecretKeys(items[0].Resource, p.RestrictedAPISecretKey)) > 0 {
		return "", &compose.Condition{Type: ConditionAPIRestricted, Reason: "APIKeySecretIncomplete", Message: fmt.Sprintf(
			"Secret %s in namespace %s has no (or an empty) key %s: the server is not started unrestricted", p.RestrictedAPISecret, c.id.Namespace, p.RestrictedAPISecretKey)}
	}
	return p.RestrictedAPIHeader, nil
}

func (c *Composer) apiCondition(p compose.Platform, problem *compose.Condition) compose.Condition {
	switch {
	case problem != nil:
		return *problem
	case c.unrestricted():
		return compose.Condition{Type: ConditionAPIRestricted, Reason: "UnrestrictedBySpec", Message: "spec.security.unrestrictedAPIs is true: any client that reaches the server may load models and map shared memory"}
	}
	return compose.Condition{Type: ConditionAPIRestricted, Status: true, Reason: "APIKeyRequired", Message: fmt.Sprintf(
		"Triton's %s APIs need the header %s (gRPC: triton-grpc-protocol-%s) with the value of Secret %s key %s", restrictedGroups, p.RestrictedAPIHeader, p.RestrictedAPIHeader, p.RestrictedAPISecret, p.RestrictedAPISecretKey)}
}

func (c *Composer) observability() *v1alpha1.ObservabilitySpec {
	if o := c.spec.Observability; o != nil && o.Enabled {
		return o
	}
	return nil
}

// metricsEnabled: Triton serves metrics unless metrics.enabled is false.
func (c *Composer) metricsEnabled() bool {
	o := c.spec.Observability
	return o == nil || o.Metrics == nil || ptr.Deref(o.Metrics.Enabled, true)
}

func (c *Composer) wantsServiceMonitor() bool {
	o := c.observability()
	return o != nil && o.Metrics != nil && o.Metrics.EnableServiceMonitor && c.metricsEnabled()
}

func (c *Composer) name(suffix string) string { return c.trackName() + "-" + suffix }

// applicationState is what the server knows of its application this call.
type applicationState struct {
	snapshot *v1alpha1.ServerApplicationStatus // settings to compose from; nil: none known
	problem  *compose.Condition                // why the application is not usable, nil when it is
	app      *unstructured.Unstructured
}

func (c *Composer) application(required map[string][]resource.Required) applicationState {
	ref := c.spec.ApplicationRef
	// The last used settings stand in for a missing application only once
	// the server runs: a server never created is never built from them.
	var last *v1alpha1.ServerApplicationStatus
	if c.deploy != nil {
		last = c.last
	}
	items := required[reqApplication]
	if len(items) == 0 {
		return applicationState{snapshot: last, problem: &compose.Condition{Type: ConditionApplicationReady, Reason: "ApplicationNotFound",
			Message: fmt.Sprintf("KalypsoApplication %s does not exist in namespace %s: create it, or fix spec.applicationRef", ref, c.id.Namespace)}}
	}
	app := items[0].Resource
	if compose.ConditionStatus(app.Object, "Ready") != "True" {
		return applicationState{app: app, snapshot: last, problem: &compose.Condition{Type: ConditionApplicationReady, Reason: "ApplicationNotReady",
			Message: fmt.Sprintf("KalypsoApplication %s is not Ready yet: see its conditions (kubectl describe kalypsoapplication %s -n %s)", ref, ref, c.id.Namespace)}}
	}
	snap := &v1alpha1.ServerApplicationStatus{Name: ref}
	snap.Project, _, _ = unstructured.NestedString(app.Object, "spec", "projectRef")
	snap.Environment, _, _ = unstructured.NestedString(app.Object, "status", "environment")
	if raw, ok, _ := unstructured.NestedFieldNoCopy(app.Object, "spec", "storage"); ok {
		s := &v1alpha1.StorageSpec{}
		if err := compose.DecodeInto(raw, s); err == nil {
			snap.Storage = s
		}
	}
	return applicationState{app: app, snapshot: snap}
}

func (c *Composer) owner(snap *v1alpha1.ServerApplicationStatus) compose.Owner {
	o := compose.Owner{Application: c.spec.ApplicationRef, TritonServer: c.id.Name}
	if snap != nil {
		o.Project, o.Environment = snap.Project, snap.Environment
	}
	return o
}

// serviceName names the server in traces, profiles and logs.
func (c *Composer) serviceName() string { return c.spec.ApplicationRef + "." + c.id.Name }

func (c *Composer) status() *v1alpha1.KalypsoTritonServerStatus {
	return &v1alpha1.KalypsoTritonServerStatus{ObservedGeneration: c.gen}
}

// pending reports a server whose Deployment cannot be created yet. Objects
// that exist (a Deployment deleted by hand or never applied leaves its
// Service, Usage, HPA… behind) are kept as observed: an object missing from
// the desired state is deleted by Crossplane. Only what would be created is
// held back. The Usage is composed afresh rather than kept, so that one an
// older release composed loses its spec.by (see compose.ApplicationUsage). appCond
// is the ApplicationReady condition; the problem replaces the condition of
// its own type.
func (c *Composer) pending(problem, appCond compose.Condition, snap *v1alpha1.ServerApplicationStatus, app *unstructured.Unstructured, required map[string][]resource.Required) compose.Result {
	d := compose.NewDesired(c.observed)
	for _, name := range slices.Sorted(maps.Keys(c.observed)) {
		ready := compose.Exists
		switch name {
		case resUsage:
			continue
		case resService:
			ready = compose.ServiceHasClusterIP
		}
		if _, err := d.Keep(name, c.observed[name].Resource, ready); err != nil {
			return compose.Result{Fatal: err}
		}
	}
	if _, ok := c.observed[resUsage]; ok {
		if err := c.addUsage(d, app, c.owner(cmp.Or(snap, c.last)).Labels("tritonserver", c.id.Name), required); err != nil {
			return compose.Result{Fatal: err}
		}
	}
	st := c.status()
	st.Phase, st.Message, st.Application = PhasePending, problem.Message, snap
	// A canary's routing state outlives the stable Deployment's absence.
	st.Canary = c.prevCanary
	conds := []compose.Condition{
		appCond,
		{Type: ConditionServerAvailable, Reason: reasonWaitingToCreate, Message: "the Deployment is not created yet: " + problem.Message},
	}
	conds = append(conds, c.offConditions("the server is not created yet")...)
	conds = append(conds, c.gpuCond)
	if last := compose.FindCondition(c.xr.Resource.Object, ConditionCanaryHealthy); last != nil {
		conds = append(conds, compose.Condition{Type: ConditionCanaryHealthy, Status: last["status"] == "True", Reason: compose.Str(last, "reason"), Message: compose.Str(last, "message")})
	}
	for i := range conds {
		if conds[i].Type == problem.Type {
			conds[i] = problem
		}
	}
	return compose.Result{Desired: d.Objects, Status: st, Conditions: conds, TTL: compose.WaitTTL}
}

// offConditions fill the feature conditions when nothing is composed.
func (c *Composer) offConditions(why string) []compose.Condition {
	return []compose.Condition{
		{Type: ConditionMetricsScraping, Reason: "NotCreated", Message: why},
		{Type: ConditionTracing, Reason: "NotCreated", Message: why},
		{Type: ConditionProfiling, Reason: "NotCreated", Message: why},
		{Type: ConditionAutoscaling, Reason: "NotCreated", Message: why},
		{Type: ConditionAPIRestricted, Reason: "NotCreated", Message: why},
		{Type: ConditionShutdown, Reason: "NotCreated", Message: why},
		{Type: ConditionAlerting, Reason: "NotCreated", Message: why},
	}
}

func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}
