package tritonserver

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// ConditionCanaryHealthy reports the canary track. Only a server that has
// or had a canary sends it, so a server without one composes what it
// always did.
const ConditionCanaryHealthy = "CanaryHealthy"

// reasonNoCanary: the server has no canary (any more).
const reasonNoCanary = "NoCanary"

// Pipeline names of the canary's objects.
const (
	resCanaryDeployment = resource.Name("canary-deployment")
	resCanaryService    = resource.Name("canary-service")
	resCanaryPDB        = resource.Name("canary-poddisruptionbudget")
	resCanaryMonitor    = resource.Name("canary-servicemonitor")
	// resCanaryClaimTemplatePrefix begins the pipeline names of a DRA
	// canary's ResourceClaimTemplates.
	resCanaryClaimTemplatePrefix = "canary-" + resClaimTemplatePrefix
)

// Required resource keys: the application's routes to this server, which
// a server with a canary reads to know what the gateway sends where.
const (
	reqHTTPRoute = "route-http"
	reqGRPCRoute = "route-grpc"
)

// Required servers whose names a canary's would share: server <x>-canary
// for the canary of <x> (reqCanaryNamesake), and server <x> for a new
// server <x>-canary (reqCanaryOwner).
const (
	reqCanaryNamesake = "canary-namesake"
	reqCanaryOwner    = "canary-owner"
)

// canaryOwner names the server whose canary would take this new server's
// names.
func (c *Composer) canaryOwner() (string, bool) {
	base, ok := strings.CutSuffix(c.id.Name, "-canary")
	return base, ok && c.deploy == nil
}

// namesakeProblem: a server named <x>-canary that is not created yet, while
// server <x> has a canary (their Deployments, Services and selectors would
// be the same).
func (c *Composer) namesakeProblem(required map[string][]resource.Required) *compose.Condition {
	if c.canary != nil {
		return nil // the canary track's own plan
	}
	for _, r := range required[reqCanaryOwner] {
		canary, _, _ := unstructured.NestedFieldNoCopy(r.Resource.Object, "spec", "canary")
		_, hadOne, _ := unstructured.NestedFieldNoCopy(r.Resource.Object, "status", "canary")
		if canary != nil || hadOne {
			return &compose.Condition{Type: ConditionServerAvailable, Reason: "NameTakenByCanary", Message: fmt.Sprintf(
				"server %s has a canary, whose Deployment, Service and pods are named %s: rename this server", r.Resource.GetName(), c.id.Name)}
		}
	}
	return nil
}

// maxCanaryNameLength leaves <name>-canary-svc a DNS-1035 label.
const maxCanaryNameLength = 63 - len("-canary-svc")

// canaryTrack is what the server does with its canary this call.
type canaryTrack struct {
	c      *Composer // the canary's Composer; nil once spec.canary is gone
	plan   plan
	deploy *appsv1.Deployment // built from spec.canary, when composed
	// compose: build the canary's objects from spec.canary; keep: keep
	// the observed ones as they are (refused after its create, promoting,
	// dropping). Neither: no canary objects (none yet, or dropped).
	compose, keep bool
	// holdStable keeps the stable Deployment as observed: a promotion
	// waits for the routes to send everything to the canary first.
	holdStable bool
	status     *v1alpha1.CanaryStatus
	cond       *compose.Condition // nil: the server never had a canary
}

// inFlight: the canary waits on something no watch follows (the routes
// of its application, which are required resources), so the server looks
// again soon.
func (t canaryTrack) inFlight() bool {
	return t.status != nil && t.status.State != v1alpha1.CanaryServing || t.keep && !t.compose
}

// canaryComposer is the Composer of the canary track: the stable spec with
// spec.canary's settings, its own replicas, never autoscaled.
func (c *Composer) canaryComposer() *Composer {
	cs := c.spec.Canary
	spec := *c.spec.DeepCopy()
	tc := ptr.Deref(spec.TritonConfig, v1alpha1.TritonConfig{})
	if cs.Image != "" {
		tc.Image = cs.Image
	}
	if cs.Tag != "" {
		tc.Tag = cs.Tag
	}
	if cs.Parameters != nil {
		tc.Parameters = cs.Parameters
	}
	spec.TritonConfig = &tc
	if cs.StorageURI != "" {
		spec.StorageURI = cs.StorageURI
	}
	if cs.ModelControl != nil {
		spec.ModelControl = cs.ModelControl
	}
	if cs.Resources != nil {
		spec.Resources = cs.Resources
	}
	if cs.GPUs != nil {
		spec.GPUs = cs.GPUs
	}
	if cs.GPUClass != "" {
		spec.GPUClass = cs.GPUClass
	}
	spec.Replicas = ptr.To(ptr.Deref(cs.Replicas, 1))
	spec.Autoscaling, spec.Canary = nil, nil
	cc := &Composer{id: c.id, xr: c.xr, gen: c.gen, spec: spec, last: c.last, observed: c.observed, canary: cs, prevCanary: c.prevCanary}
	cc.deploy = c.observedCanary()
	return cc
}

// observedCanary is the canary's Deployment as observed; nil before its
// create and after its delete.
func (c *Composer) observedCanary() *composed.Unstructured {
	if o, ok := c.observed[resCanaryDeployment]; ok {
		return o.Resource
	}
	return nil
}

// canaryObserved: the canary's Deployment exists.
func (c *Composer) canaryObserved() bool { return c.observedCanary() != nil }

// hasCanary: the server has, or is still winding down, a canary.
func (c *Composer) hasCanary() bool {
	return c.spec.Canary != nil || c.prevCanary != nil || c.canaryObserved()
}

// canaryOf decides the canary track before the stable Deployment is built.
func (c *Composer) canaryOf(p compose.Platform, required map[string][]resource.Required, stableDeploy *appsv1.Deployment, stableLabels map[string]string) (canaryTrack, error) {
	switch {
	case c.spec.Canary != nil:
		return c.runningCanary(p, required, stableDeploy, stableLabels)
	case c.prevCanary != nil || c.canaryObserved():
		return c.removedCanary(required, stableDeploy), nil
	case compose.FindCondition(c.xr.Resource.Object, ConditionCanaryHealthy) != nil:
		// Crossplane turns a custom condition that is not sent again
		// Unknown; say there is none.
		return canaryTrack{cond: &compose.Condition{Type: ConditionCanaryHealthy, Reason: reasonNoCanary, Message: "the server has no canary (spec.canary)"}}, nil
	}
	return canaryTrack{}, nil
}

// runningCanary: spec.canary is set. A canary that cannot run is refused
// with CanaryHealthy=False before its first create, and kept as it is,
// without traffic, after it; the stable track is never touched.
func (c *Composer) runningCanary(p compose.Platform, required map[string][]resource.Required, stableDeploy *appsv1.Deployment, stableLabels map[string]string) (canaryTrack, error) {
	cc := c.canaryComposer()
	t := canaryTrack{c: cc, status: &v1alpha1.CanaryStatus{OnRemoval: cmp.Or(cc.canary.OnRemoval, v1alpha1.CanaryDrop), Service: cc.name("svc")}}
	refuse := func(reason, format string, args ...any) (canaryTrack, error) {
		t.keep = cc.deploy != nil
		t.status.State = v1alpha1.CanaryStarting
		msg := fmt.Sprintf(format, args...)
		if t.keep {
			msg += "; the canary is kept as it is, without traffic, until this is fixed"
		} else {
			msg += "; no canary is created"
		}
		t.cond = &compose.Condition{Type: ConditionCanaryHealthy, Reason: reason, Message: msg}
		return t, nil
	}
	if c.deploy == nil {
		// Its quota check counts what the stable track's pods use.
		return refuse("WaitingForStable", "the canary follows the stable track's Deployment, which does not exist")
	}
	// The first one wins: a canary that runs keeps its names.
	if len(required[reqCanaryNamesake]) > 0 && cc.deploy == nil {
		return refuse("CanaryNameTaken", "spec.canary: server %s exists; the canary's Deployment, Service and pods would have its names: rename one of them", compose.CanaryName(c.id.Name))
	}
	if len(c.id.Name) > maxCanaryNameLength {
		return refuse("CanaryNameTooLong", "spec.canary: the server's name is %d characters; a canary needs at most %d so that %s-canary-svc is a valid Service name",
			len(c.id.Name), maxCanaryNameLength, c.id.Name)
	}
	pl, err := cc.plan(p, required)
	if err != nil {
		return refuse("CanarySpecInvalid", "spec.canary: %v", err)
	}
	t.plan = pl
	if pl.blocker != nil {
		return refuse(pl.blocker.Reason, "spec.canary: %s", pl.blocker.Message)
	}
	if !gatewayEnabled(pl.as.app) {
		return refuse("CanaryNeedsGateway", "spec.canary: KalypsoApplication %s has no gateway (spec.gateway.enabled): a canary gets its traffic through the application's routes; enable the gateway, or remove spec.canary", c.spec.ApplicationRef)
	}
	desired := cc.buildDeployment(p, pl, canaryLabels(stableLabels, c.id.Name), required)
	if stableDeploy != nil && equality.Semantic.DeepEqual(stableDeploy.Spec.Template.Spec, desired.Spec.Template.Spec) {
		return refuse("CanaryUnchanged", "spec.canary: the canary's pods would be the stable track's: change its image, tag, storageUri, modelControl, parameters, resources, gpus or gpuClass")
	}
	if cc.deploy == nil {
		if reason, msg := cc.quotaShortfall(required[reqQuotas], pl.res); msg != "" {
			return refuse(reason, "spec.canary: %s", strings.Replace(msg, "per pod × replicas", "per canary pod × spec.canary.replicas", 1))
		}
	}
	t.compose, t.deploy = true, desired
	// A canary whose pods are being replaced (a changed spec.canary) gets
	// no traffic until the controller has seen its new template: its last
	// answer (serves) would keep the weight through the restart.
	serving := cc.deploy != nil && cc.serves(cc.deploy) && cc.runs(desired)
	t.status.State = v1alpha1.CanaryStarting
	if serving {
		t.status.State = v1alpha1.CanaryServing
		t.status.Weight = ptr.Deref(cc.canary.Weight, 0)
		if m := cc.canary.Mirror; m != nil {
			t.status.Weight, t.status.MirrorPercent = 0, ptr.Deref(m.Percent, 100)
		}
	}
	t.cond = cc.canaryCondition(t.status)
	if t.status.State == v1alpha1.CanaryServing {
		if reason, msg := routeRefusal(c.routes(required), t.status.Service); reason != "" {
			t.cond = &compose.Condition{Type: ConditionCanaryHealthy, Reason: reason, Message: msg}
		}
	}
	return t, nil
}

// routeRefusal is a gateway's refusal of a route that names the canary,
// at the route's generation: Accepted or ResolvedRefs False (a gateway
// without RequestMirror support, a Service it cannot resolve). The server
// stays Ready; the canary's share is then not served as asked.
func routeRefusal(routes []*unstructured.Unstructured, service string) (string, string) {
	for _, route := range routes {
		if canaryWeight(route, service) == 0 {
			continue
		}
		parents, _, _ := unstructured.NestedSlice(route.Object, "status", "parents")
		for _, p := range parents {
			pm, _ := p.(map[string]any)
			if !namesParent(route, pm) {
				continue
			}
			for _, typ := range []string{"Accepted", "ResolvedRefs"} {
				cond := compose.FindCondition(map[string]any{"status": pm}, typ)
				g, _ := compose.Int(cond, "observedGeneration")
				if cond != nil && cond["status"] == "False" && g >= routeGeneration(route) {
					return compose.Str(cond, "reason"), fmt.Sprintf("%s %s: gateway %s reports %s=False (%s): %s",
						route.GetKind(), route.GetName(), compose.Str(pm, "parentRef", "name"), typ, compose.Str(cond, "reason"), compose.Str(cond, "message"))
				}
			}
		}
	}
	return "", ""
}

// canaryCondition describes a canary that is composed.
func (c *Composer) canaryCondition(st *v1alpha1.CanaryStatus) *compose.Condition {
	cond := &compose.Condition{Type: ConditionCanaryHealthy}
	if c.deploy == nil {
		cond.Reason, cond.Message = "CanaryStarting", fmt.Sprintf("Deployment %s is being created; it gets traffic once available", c.name("deploy"))
		return cond
	}
	want, avail := deploymentCounts(c.deploy)
	if reason, msg := deploymentFailure(c.deploy.Object); reason != "" {
		cond.Reason, cond.Message = reason, fmt.Sprintf("the canary gets no traffic: %s", msg)
		return cond
	}
	if st.State != v1alpha1.CanaryServing {
		cond.Reason, cond.Message = "CanaryStarting", fmt.Sprintf("%d/%d canary replicas available; it gets traffic once it serves", avail, want)
		return cond
	}
	cond.Status, cond.Reason = true, "CanaryServing"
	share := fmt.Sprintf("%d%% of the requests", st.Weight)
	if st.MirrorPercent > 0 {
		share = fmt.Sprintf("a copy of %d%% of the requests (answers dropped)", st.MirrorPercent)
	}
	cond.Message = fmt.Sprintf("%d/%d canary replicas available; the routes send Service %s %s; removing spec.canary will %s it", avail, want, st.Service, share, st.OnRemoval)
	return cond
}

// removedCanary: spec.canary is gone and the canary still exists. A
// promotion first moves every request to the canary, then lets the stable
// track roll to the new spec, then drops the canary; a drop takes its
// traffic away at once. The canary's objects go only once every route has
// stopped sending to it and the gateway accepted that (routesRelease).
func (c *Composer) removedCanary(required map[string][]resource.Required, stableDeploy *appsv1.Deployment) canaryTrack {
	prev := ptr.Deref(c.prevCanary, v1alpha1.CanaryStatus{OnRemoval: v1alpha1.CanaryDrop, Service: compose.CanaryName(c.id.Name) + "-svc"})
	st := &v1alpha1.CanaryStatus{OnRemoval: prev.OnRemoval, Service: prev.Service}
	t := canaryTrack{keep: c.canaryObserved(), status: st}
	canary := c.observedCanary()
	promoting := prev.OnRemoval == v1alpha1.CanaryPromote && prev.State != v1alpha1.CanaryDropping && canary != nil
	if promoting && !c.canaryServes(canary) {
		// A canary that does not serve takes no traffic over, and one that
		// stops serving gives it back.
		promoting = false
	}
	if promoting && !c.rolledOutAs(stableDeploy) {
		st.State, st.Weight = v1alpha1.CanaryPromoting, 100
		// Nothing to hold when the stable Deployment is gone.
		t.holdStable = c.deploy != nil && !routesSend(c.routes(required), st.Service, 100)
		msg := "the routes send every request to the canary; the stable track rolls to the new spec"
		switch {
		case stableDeploy == nil:
			msg = "the routes send every request to the canary; the stable track cannot roll to the new spec: see its conditions"
		case t.holdStable:
			msg = "waiting for the routes to send every request to the canary before the stable track rolls to the new spec"
		}
		t.cond = &compose.Condition{Type: ConditionCanaryHealthy, Status: true, Reason: "CanaryPromoting", Message: msg}
		return t
	}
	st.State = v1alpha1.CanaryDropping
	if !c.canaryObserved() || routesSend(c.routes(required), st.Service, 0) {
		// Every route dropped the canary: its objects go now.
		t.keep, t.status = false, nil
		what := "dropped"
		if prev.OnRemoval == v1alpha1.CanaryPromote {
			what = "promoted: the stable track runs the new spec, and the canary is deleted"
		}
		t.cond = &compose.Condition{Type: ConditionCanaryHealthy, Reason: reasonNoCanary, Message: "the canary was " + what}
		return t
	}
	t.cond = &compose.Condition{Type: ConditionCanaryHealthy, Reason: "CanaryDropping", Message: fmt.Sprintf(
		"spec.canary was removed: waiting for the routes to stop sending to Service %s before the canary is deleted", st.Service)}
	return t
}

// canaryServes: the observed canary Deployment serves.
func (c *Composer) canaryServes(o *composed.Unstructured) bool {
	return deploymentServes(o, compose.ConditionStatus(c.xr.Resource.Object, ConditionCanaryHealthy) == "True")
}

// runs: the observed Deployment's controller has seen the desired pods.
func (c *Composer) runs(desired *appsv1.Deployment) bool {
	observed, ok := c.observedDeployment()
	return ok && observed.Status.ObservedGeneration >= observed.Generation && samePods(observed.Spec.Template.Spec, desired.Spec.Template.Spec)
}

func (c *Composer) observedDeployment() (appsv1.Deployment, bool) {
	var observed appsv1.Deployment
	if c.deploy == nil {
		return observed, false
	}
	err := runtime.DefaultUnstructuredConverter.FromUnstructured(c.deploy.Object, &observed)
	return observed, err == nil
}

// rolledOutAs: the observed stable Deployment runs the pods of the desired
// one, every replica updated and available.
func (c *Composer) rolledOutAs(desired *appsv1.Deployment) bool {
	if desired == nil {
		return false
	}
	observed, ok := c.observedDeployment()
	if !ok || !samePods(observed.Spec.Template.Spec, desired.Spec.Template.Spec) {
		return false
	}
	// The controller's own test of a finished rollout, on the generation it
	// saw (k8s.io/kubernetes pkg/controller/deployment/util/deployment_util.go
	// DeploymentComplete): a read right after the apply has the new spec
	// and the old counts.
	want := ptr.Deref(observed.Spec.Replicas, 1)
	s := observed.Status
	return s.ObservedGeneration >= observed.Generation && s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want
}

// samePods compares what the spec decides of a pod and the API server does
// not default: each container's image, arguments and resources, and where
// the pod runs (a GPU class moves it).
func samePods(a, b corev1.PodSpec) bool {
	if !equality.Semantic.DeepEqual(a.NodeSelector, b.NodeSelector) || !equality.Semantic.DeepEqual(a.Tolerations, b.Tolerations) ||
		!equality.Semantic.DeepEqual(a.RuntimeClassName, b.RuntimeClassName) {
		return false
	}
	return sameContainers(a.Containers, b.Containers)
}

func sameContainers(a, b []corev1.Container) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Image != b[i].Image || !equality.Semantic.DeepEqual(a[i].Args, b[i].Args) || !equality.Semantic.DeepEqual(a[i].Resources, b[i].Resources) {
			return false
		}
	}
	return true
}

// routesSend: every route of the server that exists sends the canary
// Service this weight (0: no backendRef and no mirror to it at all), and
// each parent that reports on it accepted that generation.
func routesSend(routes []*unstructured.Unstructured, service string, weight int32) bool {
	for _, r := range routes {
		if canaryWeight(r, service) != weight || !acceptedAtGeneration(r) {
			return false
		}
	}
	return true
}

// routes are the routes that may send to the canary: its application's
// (required) and its own mesh routes (observed).
func (c *Composer) routes(required map[string][]resource.Required) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, key := range []string{reqHTTPRoute, reqGRPCRoute} {
		for _, r := range required[key] {
			out = append(out, r.Resource)
		}
	}
	return append(out, c.observedMeshRoutes()...)
}

// canaryWeight is the weight a route gives the canary Service: -1 for a
// mirror to it, 0 when it names it nowhere.
func canaryWeight(route *unstructured.Unstructured, service string) int32 {
	rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
	for _, rule := range rules {
		rm, _ := rule.(map[string]any)
		refs, _, _ := unstructured.NestedSlice(rm, "backendRefs")
		for _, ref := range refs {
			m, _ := ref.(map[string]any)
			if m["name"] == service {
				w, found := compose.Int(m, "weight")
				if !found {
					w = 1 // Gateway API's default weight
				}
				return int32(w)
			}
		}
		filters, _, _ := unstructured.NestedSlice(rm, "filters")
		for _, f := range filters {
			fm, _ := f.(map[string]any)
			if compose.Str(fm, "requestMirror", "backendRef", "name") == service {
				return -1
			}
		}
	}
	return 0
}

// acceptedAtGeneration: every parent that reports on the route accepted
// its current generation, or refused the route (a route no gateway reports
// on counts by its spec alone). Gateway API v1.4.1 apis/v1/shared_types.go
// RouteParentStatus: Accepted is per parent.
func acceptedAtGeneration(route *unstructured.Unstructured) bool {
	parents, _, _ := unstructured.NestedSlice(route.Object, "status", "parents")
	for _, p := range parents {
		pm, _ := p.(map[string]any)
		if !namesParent(route, pm) {
			// A parent the route no longer names: its controller should
			// have removed its entry (shared_types.go RouteStatus).
			continue
		}
		cond := compose.FindCondition(map[string]any{"status": pm}, "Accepted")
		if cond != nil && cond["status"] == "False" {
			// A parent that refused the route sends nothing through it.
			continue
		}
		if g, found := compose.Int(cond, "observedGeneration"); cond == nil || cond["status"] != "True" || !found || g < routeGeneration(route) {
			return false
		}
	}
	return true
}

// gatewayEnabled: the application exposes its servers through a gateway.
func gatewayEnabled(app *unstructured.Unstructured) bool {
	if app == nil {
		return false
	}
	on, _, _ := unstructured.NestedBool(app.Object, "spec", "gateway", "enabled")
	return on
}

// canaryLabels are the stable labels with the canary's tritonserver value
// and its track: the stable Service, PodDisruptionBudget and
// ServiceMonitor select the stable value, and a Deployment's selector is
// immutable.
func canaryLabels(stable map[string]string, server string) map[string]string {
	return compose.Merge(stable, map[string]string{compose.LabelTritonServer: compose.CanaryName(server), compose.LabelTrack: compose.TrackCanary})
}

// add composes the canary's objects from its spec, or keeps the observed
// ones as they are. With the stable track's ServiceMonitor (monitored),
// the canary gets its own: its series carry service <name>-canary-svc, so
// the stable track's alerts and autoscaler leave them out and dashboards
// can set the two side by side.
func (t canaryTrack) add(d *compose.Desired, c *Composer, p compose.Platform, stableLabels map[string]string, monitored bool) error {
	if t.compose {
		cc, labels := t.c, canaryLabels(stableLabels, c.id.Name)
		if _, err := d.Add(resCanaryDeployment, t.deploy, cc.serves); err != nil {
			return err
		}
		if err := cc.addClaimTemplate(d, true, labels); err != nil {
			return err
		}
		if _, err := d.Add(resCanaryService, service(cc.name("svc"), c.id.Namespace, labels, cc.selector(), t.plan.prts, cc.metricsEnabled()), compose.ServiceHasClusterIP); err != nil {
			return err
		}
		if monitored {
			if _, err := d.Add(resCanaryMonitor, serviceMonitor(cc.name("monitor"), c.id.Namespace, compose.Merge(labels, p.ServiceMonitorLabels), cc.selector(), c.metricsInterval()), compose.Exists); err != nil {
				return err
			}
		}
		if cc.spreadsReplicas() {
			_, err := d.Add(resCanaryPDB, podDisruptionBudget(cc.name("pdb"), c.id.Namespace, labels, cc.selector(), c.spec.Disruption), compose.Exists)
			return err
		}
		return nil
	}
	if !t.keep {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(c.observed)) {
		if strings.HasPrefix(string(name), "canary-") && !slices.Contains([]resource.Name{resMeshHTTPRoute, resMeshGRPCRoute}, name) {
			if _, err := d.Keep(name, c.observed[name].Resource, compose.Exists); err != nil {
				return err
			}
		}
	}
	return nil
}

// tracks shows both tracks while there is a canary.
func (t canaryTrack) tracks(c *Composer, st *v1alpha1.KalypsoTritonServerStatus, stableImage string, d *compose.Desired) []v1alpha1.TrackStatus {
	if t.status == nil {
		return nil
	}
	stableWeight := 100 - t.status.Weight
	stable := v1alpha1.TrackStatus{Track: "stable", Image: stableImage, Phase: st.Phase, AvailableReplicas: st.AvailableReplicas, Weight: stableWeight}
	if c.deploy != nil {
		want, _ := deploymentCounts(c.deploy)
		stable.Replicas = int32(want)
	}
	canary := v1alpha1.TrackStatus{Track: compose.TrackCanary, Phase: PhasePending, Weight: t.status.Weight}
	if o, ok := d.Objects[resCanaryDeployment]; ok {
		canary.Image = containerImage(o.Resource.Object)
	}
	if o := c.observedCanary(); o != nil {
		want, avail := deploymentCounts(o)
		canary.Replicas, canary.AvailableReplicas = int32(want), int32(avail)
		switch reason, _ := deploymentFailure(o.Object); {
		case reason != "":
			canary.Phase = PhaseFailed
		case t.status.State != v1alpha1.CanaryStarting:
			canary.Phase = PhaseRunning
		}
	}
	return []v1alpha1.TrackStatus{stable, canary}
}

// containerImage is the Triton container's image of a Deployment.
func containerImage(deploy map[string]any) string {
	containers, _, _ := unstructured.NestedSlice(deploy, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		return ""
	}
	m, _ := containers[0].(map[string]any)
	return compose.Str(m, "image")
}

// routeGeneration reads a required route's generation: the SDK decodes
// required resources from structpb, so numbers arrive as float64, which
// GetGeneration reads as 0 (compose.Int takes both).
func routeGeneration(route *unstructured.Unstructured) int64 {
	g, _ := compose.Int(route.Object, "metadata", "generation")
	return g
}

// namesParent: the route's spec.parentRefs names this status parent (name,
// and namespace, the route's own when unset).
func namesParent(route *unstructured.Unstructured, parent map[string]any) bool {
	ns := func(m map[string]any) string {
		if n := compose.Str(m, "namespace"); n != "" {
			return n
		}
		return route.GetNamespace()
	}
	ref, _, _ := unstructured.NestedMap(parent, "parentRef")
	refs, _, _ := unstructured.NestedSlice(route.Object, "spec", "parentRefs")
	for _, r := range refs {
		m, _ := r.(map[string]any)
		if compose.Str(m, "name") == compose.Str(ref, "name") && ns(m) == ns(ref) {
			return true
		}
	}
	return false
}
