package tritonserver

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

const shmMin = 1 << 20 // the python backend refuses less (python_be.cc)

// validate refuses settings Triton would refuse at start-up.
func (c *Composer) validate() error {
	if mc := c.spec.ModelControl; mc != nil {
		if len(mc.LoadModels) > 0 && mc.Mode != "explicit" {
			return fmt.Errorf("spec.modelControl.loadModels needs spec.modelControl.mode: explicit (Triton refuses --load-model otherwise)")
		}
		if slices.Contains(mc.LoadModels, "*") && len(mc.LoadModels) > 1 {
			return fmt.Errorf("spec.modelControl.loadModels: \"*\" loads every model and must be the only entry")
		}
		if mc.RepositoryPollSeconds != nil && mc.Mode != "poll" {
			return fmt.Errorf("spec.modelControl.repositoryPollSeconds needs spec.modelControl.mode: poll")
		}
	}
	if pb := pythonBackend(&c.spec); pb != nil {
		if pb.ShmDefaultByteSize != nil && *pb.ShmDefaultByteSize < shmMin {
			return fmt.Errorf("spec.tritonConfig.pythonBackend.shmDefaultByteSize: %d is below the python backend's minimum of 1 MiB (1048576)", *pb.ShmDefaultByteSize)
		}
		if pb.ShmGrowthByteSize != nil && *pb.ShmGrowthByteSize <= 0 {
			return fmt.Errorf("spec.tritonConfig.pythonBackend.shmGrowthByteSize must be greater than 0")
		}
	}
	return nil
}

// checkImage refuses an image that names its own tag or digest: the tag has
// its own field, and Kubernetes would get "<image>:<tag>:<tag>".
func checkImage(tc *v1alpha1.TritonConfig) error {
	if tc == nil || tc.Image == "" {
		return nil
	}
	last := tc.Image[strings.LastIndex(tc.Image, "/")+1:]
	if strings.ContainsAny(last, ":@") {
		return fmt.Errorf("spec.tritonConfig.image %q holds a tag or digest: put the repository in image and the tag in spec.tritonConfig.tag", tc.Image)
	}
	return nil
}

// intervalRE is a Prometheus duration, which a ServiceMonitor accepts.
var intervalRE = regexp.MustCompile(`^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$`)

func checkInterval(s string) error {
	if s == "" || !intervalRE.MatchString(s) {
		return fmt.Errorf("spec.observability.metrics.interval %q is not a Prometheus duration such as 15s, 1m or 1m30s", s)
	}
	return nil
}

// plan is what a track's pods are built from: the spec resolved against
// the platform and the application, and what blocks building them.
type plan struct {
	prts           ports
	res            corev1.ResourceRequirements
	cache          modelCache
	objectives     slo
	as             applicationState
	wiring         storageAccess
	apiKeyHeader   string
	apiProblem     *compose.Condition
	stop           shutdown
	stopProblem    *compose.Condition
	blocker        *compose.Condition // why the Deployment cannot be (re)built from the spec now
	tracesEndpoint string
	tracingProblem string
	args           []string
}

// plan resolves the spec. An error is a spec mistake (a Fatal); it sets
// c.gpu and c.gpuCond.
func (c *Composer) plan(p compose.Platform, required map[string][]resource.Required) (plan, error) {
	var pl plan
	var err error
	if pl.prts, err = portsOf(c.spec.Networking); err != nil {
		return pl, err
	}
	provider, err := storageScheme(c.spec.StorageURI)
	if err != nil {
		return pl, err
	}
	if err := c.validate(); err != nil {
		return pl, err
	}
	class, gpuProblem := gpuClassOf(&c.spec, p)
	res, err := gpuResources(&c.spec, class.Resource)
	if err != nil {
		return pl, err
	}
	c.gpu = gpuRequest{class: class, devices: devicesOf(&c.spec, class, res)}
	if gpuProblem == nil {
		gpuProblem = checkDevices(&c.spec, c.gpu)
	}
	c.gpuCond = gpuCondition(c.gpu)
	if gpuProblem != nil {
		c.gpuCond = *gpuProblem
	}
	if pl.cache, err = modelCacheOf(&c.spec, p); err != nil {
		return pl, err
	}
	pl.res = withEphemeralStorage(res, pl.cache)
	if err := checkImage(c.spec.TritonConfig); err != nil {
		return pl, err
	}
	if err := checkVersion(c.spec.TritonConfig, p.TritonTag); err != nil {
		return pl, err
	}
	if err := checkInterval(c.metricsInterval()); err != nil {
		return pl, err
	}
	if pl.objectives, err = sloOf(&c.spec, p); err != nil {
		return pl, err
	}
	if err := c.checkCounters(); err != nil {
		return pl, err
	}

	pl.as = c.application(required)
	snap := pl.as.snapshot
	uri := c.spec.StorageURI
	switch {
	case snap == nil:
		pl.blocker = pl.as.problem
	default:
		storage := ptr.Deref(snap.Storage, v1alpha1.StorageSpec{})
		appProvider := storage.Provider
		if appProvider == "" {
			appProvider = v1alpha1.StorageS3
		}
		if appProvider != provider {
			pl.blocker = &compose.Condition{Type: ConditionApplicationReady, Reason: "StorageProviderMismatch", Message: fmt.Sprintf(
				"%s %q is %s storage but KalypsoApplication %s has spec.storage.provider %s: make them agree",
				c.storageField(), c.spec.StorageURI, provider, c.spec.ApplicationRef, appProvider)}
		} else if uri, err = modelURI(c.spec.StorageURI, storage.Endpoint); err != nil {
			pl.blocker = &compose.Condition{Type: ConditionApplicationReady, Reason: "StorageEndpointInvalid", Message: err.Error()}
		} else {
			pl.wiring, pl.blocker = c.storageWiring(p, provider, snap)
		}
	}

	pl.apiKeyHeader, pl.apiProblem = c.restrictedAPI(p, required)
	pl.stop, pl.stopProblem = shutdownOf(&c.spec, p)
	pl.blocker = cmp.Or(pl.blocker, pl.apiProblem, pl.stopProblem, gpuProblem, c.namesakeProblem(required))

	pl.tracesEndpoint = p.TracesEndpoint
	if o := c.spec.Observability; o != nil && o.CollectorEndpoint != "" {
		pl.tracesEndpoint = o.CollectorEndpoint
	}
	environment := ""
	if snap != nil {
		environment = snap.Environment
	}
	// Built before any wait, so spec mistakes show at once.
	pl.args, pl.tracingProblem, err = tritonArgs(argsInput{
		spec: &c.spec, modelURI: uri, ports: pl.prts, metrics: c.metricsEnabled(),
		tracesEndpoint: pl.tracesEndpoint, serviceName: c.serviceName(), environment: environment,
		apiKeyHeader: pl.apiKeyHeader, exitTimeout: pl.stop.drain,
	})
	return pl, err
}

// buildDeployment builds the track's Deployment from its plan.
func (c *Composer) buildDeployment(p compose.Platform, pl plan, labels map[string]string, required map[string][]resource.Required) *appsv1.Deployment {
	wiring := pl.wiring
	if pl.apiKeyHeader != "" {
		wiring.env = append(slices.Clone(wiring.env), secretEnv(apiKeyEnv, p.RestrictedAPISecret, p.RestrictedAPISecretKey))
	}
	return deployment(deploymentInput{
		name: c.name("deploy"), namespace: c.id.Namespace, labels: labels, costLabels: costLabels(p, required), selector: c.selector(),
		annotations: c.podAnnotations(p), spec: &c.spec, platform: p, args: pl.args, ports: pl.prts,
		metrics: c.metricsEnabled(), storage: wiring, serviceAccount: c.serviceAccount(pl.as.snapshot),
		replicas: c.replicas(c.keptScaledObject(p, required, pl.res)), resources: pl.res, gpu: c.gpu, claimTemplate: c.claimTemplateName(), shutdown: pl.stop, modelCache: pl.cache,
	})
}

// Compose builds the desired state, status and conditions.
func (c *Composer) Compose(p compose.Platform, required map[string][]resource.Required) compose.Result {
	fatal := func(err error) compose.Result { return compose.Result{Fatal: err} }
	pl, err := c.plan(p, required)
	if err != nil {
		return fatal(err)
	}
	prts, res, as, snap, blocker := pl.prts, pl.res, pl.as, pl.as.snapshot, pl.blocker

	if c.deploy == nil {
		appCond := compose.Condition{Type: ConditionApplicationReady, Status: true, Reason: "ApplicationReady",
			Message: fmt.Sprintf("KalypsoApplication %s is Ready", c.spec.ApplicationRef)}
		if as.problem != nil {
			appCond = *as.problem
		}
		if blocker != nil {
			return c.pending(*blocker, appCond, snap, as.app, required)
		}
		if reason, msg := c.quotaShortfall(required[reqQuotas], res); msg != "" {
			return c.pending(compose.Condition{Type: ConditionServerAvailable, Reason: reason, Message: msg}, appCond, snap, as.app, required)
		}
	}

	owner := c.owner(snap)
	labels := owner.Labels("tritonserver", c.id.Name)
	ns := c.id.Namespace
	d := compose.NewDesired(c.observed)
	add := func(name resource.Name, o runtime.Object, ready compose.ReadyCheck) error {
		_, err := d.Add(name, o, ready)
		return err
	}

	var stableDeploy *appsv1.Deployment
	if blocker == nil {
		stableDeploy = c.buildDeployment(p, pl, labels, required)
	}
	canary, err := c.canaryOf(p, required, stableDeploy, labels)
	if err != nil {
		return fatal(err)
	}

	// The Deployment, fresh from the spec, or as it is while blocked.
	var deployReady bool
	rebuilt := blocker == nil && !c.kedaHoldsDeployment(p, required, res) && !canary.holdStable
	if rebuilt {
		ok, err := d.Add(resDeployment, stableDeploy, c.serves)
		if err != nil {
			return fatal(err)
		}
		deployReady = ok
	} else {
		if deployReady, err = d.Keep(resDeployment, c.deploy, c.serves); err != nil {
			return fatal(err)
		}
	}

	if err := c.addClaimTemplate(d, rebuilt, labels); err != nil {
		return fatal(err)
	}
	if err := add(resService, service(c.name("svc"), ns, labels, c.selector(), prts, c.metricsEnabled()), compose.ServiceHasClusterIP); err != nil {
		return fatal(err)
	}
	metricsCond := c.metricsCondition(required)
	if metricsCond.Status {
		if err := add(resServiceMonitor, serviceMonitor(c.name("monitor"), ns, compose.Merge(labels, p.ServiceMonitorLabels), c.selector(), c.metricsInterval()), compose.Exists); err != nil {
			return fatal(err)
		}
	}
	if c.spreadsReplicas() {
		if err := add(resPDB, podDisruptionBudget(c.name("pdb"), ns, labels, c.selector(), c.spec.Disruption), compose.Exists); err != nil {
			return fatal(err)
		}
	}
	if c.composesHPA(p, required, res) {
		if err := add(resHPA, horizontalPodAutoscaler(c.name("hpa"), ns, c.name("deploy"), labels, c.spec.Autoscaling), compose.Exists); err != nil {
			return fatal(err)
		}
	}
	if err := c.addScaledObject(d, p, owner.Project, labels, required, res); err != nil {
		return fatal(err)
	}
	rulesProblem := c.rulesProblem(p, metricsCond, required)
	alertingCond := c.alertingCondition(p, rulesProblem, pl.objectives)
	if err := c.addPrometheusRule(d, p, rulesProblem, labels, owner, pl.objectives); err != nil {
		return fatal(err)
	}
	if err := c.addUsage(d, as.app, labels, required); err != nil {
		return fatal(err)
	}
	if err := canary.add(d, c, p, labels, metricsCond.Status); err != nil {
		return fatal(err)
	}
	if err := canary.addMeshRoutes(d, c, p, prts, labels); err != nil {
		return fatal(err)
	}

	st := c.status()
	st.Application = snap
	if snap == nil {
		st.Application = c.last
	}
	st.DeploymentName = c.name("deploy")
	host := c.name("svc") + "." + ns + ".svc"
	st.ServiceEndpoint = fmt.Sprintf("http://%s:%d", host, prts.http)
	st.GRPCEndpoint = fmt.Sprintf("%s:%d", host, prts.grpc)
	if c.deploy != nil {
		_, avail := deploymentCounts(c.deploy)
		st.AvailableReplicas = int32(avail)
	}
	avail := c.availability(deployReady, required[reqPods])
	avail = c.claimShortfall(avail, required[reqQuotas], required[reqPods])
	st.Phase, st.Message = avail.phase, avail.message
	st.Canary = canary.status
	st.Tracks = canary.tracks(c, st, containerImage(d.Objects[resDeployment].Resource.Object), d)

	appCond := compose.Condition{Type: ConditionApplicationReady, Status: true, Reason: "ApplicationReady",
		Message: fmt.Sprintf("KalypsoApplication %s is Ready; the server uses its storage settings", c.spec.ApplicationRef)}
	switch {
	case as.problem != nil && snap != nil:
		appCond = *as.problem
		appCond.Message += "; the server keeps running with the application's last known settings"
	case blocker != nil && blocker.Type == ConditionApplicationReady:
		appCond = *blocker
		appCond.Message += "; the Deployment is kept as it is until this is fixed"
	}
	apiCond := c.apiCondition(p, pl.apiProblem)
	if pl.apiProblem != nil && c.deploy != nil {
		apiCond.Message += "; the Deployment is kept as it is until this is fixed"
	}
	conds := []compose.Condition{
		appCond,
		{Type: ConditionServerAvailable, Status: deployReady, Reason: avail.reason, Message: avail.message},
		metricsCond,
		c.tracingCondition(pl.tracesEndpoint, pl.tracingProblem),
		c.profilingCondition(),
		c.autoscalingCondition(p, required, res),
		apiCond,
		c.shutdownCondition(pl.stop, pl.stopProblem),
		alertingCond,
		c.gpuCond,
	}
	if canary.cond != nil {
		conds = append(conds, *canary.cond)
	}
	waiting := as.problem != nil || blocker != nil || c.readsPods(p) || canary.inFlight()
	return compose.Result{Desired: d.Objects, Ready: deployReady, Status: st, Conditions: conds,
		TTL: c.ttl(deployReady, waiting, conds)}
}

// ttl (see compose's TTLs): the application, the API key Secret, the pods
// and the custom metrics API are required resources, which no watch
// follows, so while the server waits on one it looks again soon. A rollout
// is followed through the Deployment's events, a minute only guards against
// dropped ones. A settled server idles.
func (c *Composer) ttl(ready, waiting bool, conds []compose.Condition) time.Duration {
	switch {
	case waiting:
		return compose.WaitTTL
	case !ready:
		return compose.PollTTL
	}
	for _, cond := range conds {
		// A gateway's refusal of the canary's route shows only in the
		// route, a required resource.
		if slices.Contains(awaitedAPIs[cond.Type], cond.Reason) || cond.Type == ConditionCanaryHealthy && !cond.Status && cond.Reason != reasonNoCanary {
			return compose.PollTTL
		}
	}
	return compose.IdleTTL
}

// awaitedAPIs are the conditions of a running server that wait for an API
// to be served (an APIService, a CRD), by type: it looks again every
// minute, so installing the API takes effect within one.
var awaitedAPIs = map[string][]string{
	ConditionAutoscaling:     {reasonMetricsAPIUnavailable, reasonKEDANotInstalled},
	ConditionMetricsScraping: {reasonServiceMonitorCRDMissing},
	ConditionAlerting:        {reasonPrometheusRuleCRD},
}

func (c *Composer) metricsInterval() string {
	if o := c.spec.Observability; o != nil && o.Metrics != nil && o.Metrics.Interval != "" {
		return o.Metrics.Interval
	}
	return defaultMetricsInterval
}

// replicas returns the Deployment's replicas. With autoscaling on, the
// field is left to the autoscaler once its field manager co-owns it; until
// then the function keeps it, so switching autoscaling on never drops the
// Deployment to one replica (server-side apply removes a field its manager
// stops setting). What it keeps is the count the autoscaler enforces
// without any metric, spec.replicas (before the create) or the observed
// count (after) brought within its bounds (horizontal.go
// normalizeDesiredReplicas), those of a kept ScaledObject if there is one
// (keptScaledObject). Core reads the observed Deployment from its cache
// before the function runs and applies with force after it (v2.2.1
// composition_functions.go): an autoscaler's write in between, as at its
// first tick after a new minimum, would be undone by any other count.
func (c *Composer) replicas(keptScaledObject *composed.Unstructured) *int32 {
	want := ptr.Deref(c.spec.Replicas, 1)
	a := c.spec.Autoscaling
	if a == nil || !a.Enabled {
		return ptr.To(want)
	}
	if c.deploy != nil {
		if replicasCoOwned(c.deploy) {
			return nil
		}
		if observed, found := compose.Int(c.deploy.Object, "spec", "replicas"); found {
			want = int32(observed)
		}
	}
	lo, hi := replicaBounds(a)
	if keptScaledObject != nil {
		lo, hi = scaledObjectBounds(keptScaledObject, lo, hi)
	}
	return ptr.To(min(max(want, lo), hi))
}

// replicasCoOwned reports whether a manager other than Crossplane's (the
// autoscaler, through the scale subresource) owns spec.replicas.
func replicasCoOwned(deploy *composed.Unstructured) bool {
	for _, mf := range deploy.GetManagedFields() {
		if mf.FieldsV1 == nil || isCrossplaneManager(mf) {
			continue
		}
		fields := map[string]any{}
		if err := compose.DecodeInto(mf.FieldsV1, &fields); err != nil {
			continue
		}
		if spec, ok := fields["f:spec"].(map[string]any); ok {
			if _, ok := spec["f:replicas"]; ok {
				return true
			}
		}
	}
	return false
}

func isCrossplaneManager(mf metav1.ManagedFieldsEntry) bool {
	return strings.HasPrefix(mf.Manager, "apiextensions.crossplane.io")
}

// spreadsReplicas: a PodDisruptionBudget only when more than one replica
// may run; at one replica it could only block a node drain.
func (c *Composer) spreadsReplicas() bool {
	if a := c.spec.Autoscaling; a != nil && a.Enabled {
		return ptr.Deref(a.MaxReplicas, 1) > 1
	}
	return ptr.Deref(c.spec.Replicas, 1) > 1
}

// quotaShortfall reports when the namespace's quotas leave too little for
// the Deployment's requests, instead of creating pods that can never be
// admitted: GPUs, and the ephemeral storage every server requests for its
// model cache. It returns the condition's reason and message, or "".
func (c *Composer) quotaShortfall(quotas []resource.Required, res corev1.ResourceRequirements) (string, string) {
	quotas = sortedByName(quotas)
	// Checked before the first create, when no ScaledObject exists.
	replicas := int64(ptr.Deref(c.replicas(nil), 1))
	storage, ok := res.Requests[corev1.ResourceEphemeralStorage]
	if !ok {
		storage = res.Limits[corev1.ResourceEphemeralStorage]
	}
	checks := []struct {
		key          corev1.ResourceName
		need         kresource.Quantity
		reason, per  string
		lowerOrRaise string
	}{
		{c.gpu.class.QuotaKey(), *kresource.NewQuantity(c.gpu.devices, kresource.DecimalSI), reasonInsufficientGPUQuota,
			"GPUs of class " + c.gpu.class.Name + " per pod × replicas", "lower them"},
		{"requests." + corev1.ResourceEphemeralStorage, storage, "InsufficientEphemeralStorageQuota", "ephemeral storage per pod × replicas", "lower spec.modelCache.request or the replicas"},
	}
	for _, chk := range checks {
		if chk.need.IsZero() {
			continue
		}
		total := chk.need.DeepCopy()
		total.Mul(replicas)
		if short := shortQuota(quotas, chk.key, total); short != "" {
			return chk.reason, fmt.Sprintf("%s: %s more are needed (%s); %s or raise the project's quota", short, total.String(), chk.per, chk.lowerOrRaise)
		}
	}
	return "", ""
}

// sortedByName: an answer about quotas must not depend on their order.
func sortedByName(quotas []resource.Required) []resource.Required {
	quotas = slices.Clone(quotas)
	slices.SortFunc(quotas, func(a, b resource.Required) int { return strings.Compare(a.Resource.GetName(), b.Resource.GetName()) })
	return quotas
}

func scoped(q *unstructured.Unstructured) bool {
	scopes, _, _ := unstructured.NestedSlice(q.Object, "spec", "scopes")
	sel, _, _ := unstructured.NestedMap(q.Object, "spec", "scopeSelector")
	return len(scopes) > 0 || len(sel) > 0
}

// shortQuota names the first quota (quotas sorted by name) that counts key
// and has less than need left, with its limit and use; "" when none.
func shortQuota(quotas []resource.Required, key corev1.ResourceName, need kresource.Quantity) string {
	for _, q := range quotas {
		if compose.DRADevicesKey(key) && scoped(q.Resource) {
			// A quota with scopes never matches a ResourceClaim
			// (pkg/quota/v1/evaluator/core/resource_claims.go).
			continue
		}
		hard, found, _ := unstructured.NestedString(q.Resource.Object, "status", "hard", string(key))
		if !found {
			continue
		}
		used, _, _ := unstructured.NestedString(q.Resource.Object, "status", "used", string(key))
		free := parseQuantity(hard)
		free.Sub(parseQuantity(used))
		if need.Cmp(free) > 0 {
			return fmt.Sprintf("ResourceQuota %s allows %s %s and %s are in use", q.Resource.GetName(), hard, key, compose.OrZero(used))
		}
	}
	return ""
}

// storageField names the field the track's model repository comes from.
func (c *Composer) storageField() string {
	if c.canary != nil && c.canary.StorageURI != "" {
		return "spec.canary.storageUri"
	}
	return "spec.storageUri"
}
