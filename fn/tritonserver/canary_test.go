package tritonserver

import (
	"strconv"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// gatewayApp is readyApp with its gateway on: a canary's traffic goes
// through the application's routes.
var gatewayApp = appWith("  projectRef: vision\n", "  projectRef: vision\n  gateway: {enabled: true}\n")

// route is the application's HTTPRoute to resnet with the given backendRefs
// (YAML flow list) and, when accepted, a parent that accepted generation 3.
func route(backendRefs string, accepted bool) string {
	y := "{apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, metadata: {name: classifier-resnet-http, namespace: vision-dev, generation: 3}, spec: {parentRefs: [{name: gw}], rules: [{backendRefs: " + backendRefs + "}]}"
	if accepted {
		y += ", status: {parents: [{parentRef: {name: gw}, controllerName: example.com/gw, conditions: [{type: Accepted, status: 'True', reason: Accepted, observedGeneration: 3}]}]}"
	}
	return y + "}"
}

const (
	stableOnly       = "[{name: resnet-svc, port: 8000}]"
	canaryWeighted10 = "[{name: resnet-svc, port: 8000, weight: 90}, {name: resnet-canary-svc, port: 8000, weight: 10}]"
	canaryAll        = "[{name: resnet-svc, port: 8000, weight: 0}, {name: resnet-canary-svc, port: 8000, weight: 100}]"
	canaryTag        = "canary:\n  tag: 25.02-py3\n  weight: 10\n"
)

// canaryObserved adds the canary's objects, as composed for spec, to a
// running server's observed objects, with the canary Deployment patched.
func canaryObserved(t *testing.T, observed map[string]string, spec, deployPatch string) map[string]string {
	t.Helper()
	r := scene{xr: serverXR(spec, ""), observed: observed, required: map[string][]string{reqApplication: {gatewayApp}}}.run(t, int64s, platform(t))
	out := map[string]string{}
	for k, v := range observed {
		out[k] = v
	}
	for _, n := range []resource.Name{resCanaryDeployment, resCanaryService, resCanaryPDB} {
		d, ok := r.Desired[n]
		if !ok {
			continue
		}
		patch := serviceReady
		if n == resCanaryDeployment {
			patch = deployPatch
		}
		out[string(n)] = observe(t, d, patch)
	}
	if _, ok := out[string(resCanaryDeployment)]; !ok {
		t.Fatalf("the canary was not composed: %v", r.Conditions)
	}
	return out
}

func TestCanary(t *testing.T) {
	p := platform(t)
	running := created(t, "", deployAvailable)
	withCanary := canaryObserved(t, running, canaryTag, deployAvailable)
	stableAnd := func(c cond) map[string]cond {
		out := composedConds(map[string]cond{ConditionServerAvailable: {true, "AllReplicasAvailable"}})
		out[ConditionCanaryHealthy] = c
		return out
	}
	stableObjects := all(resource.ReadyTrue, resDeployment, resService, resUsage)
	withCanaryObjects := func(deploy, service resource.Ready) map[string]resource.Ready {
		out := all(resource.ReadyTrue, resDeployment, resService, resUsage)
		out[string(resCanaryDeployment)], out[string(resCanaryService)] = deploy, service
		return out
	}
	canaryStatus := func(want *v1alpha1.CanaryStatus) func(*testing.T, compose.Result) {
		return func(t *testing.T, r compose.Result) {
			t.Helper()
			if diff := cmp.Diff(want, r.Status.(*v1alpha1.KalypsoTritonServerStatus).Canary); diff != "" {
				t.Errorf("status.canary: -want, +got:\n%s", diff)
			}
		}
	}
	serving := func(weight, mirror int32) *v1alpha1.CanaryStatus {
		return &v1alpha1.CanaryStatus{State: v1alpha1.CanaryServing, OnRemoval: v1alpha1.CanaryDrop, Service: "resnet-canary-svc", Weight: weight, MirrorPercent: mirror}
	}
	prevStatus := func(state, onRemoval string, weight int32) string {
		return "canary: {state: " + state + ", onRemoval: " + onRemoval + ", service: resnet-canary-svc, weight: " + strconv.Itoa(int(weight)) + "}\n" +
			"conditions: [{type: CanaryHealthy, status: 'True', reason: CanaryServing}, {type: ServerAvailable, status: 'True', reason: AllReplicasAvailable}]\n"
	}
	starting := &v1alpha1.CanaryStatus{State: v1alpha1.CanaryStarting, OnRemoval: v1alpha1.CanaryDrop, Service: "resnet-canary-svc"}
	// refused: the canary is not created, the stable track runs on.
	refused := func(reason, message string) want {
		w := want{resources: stableObjects, conditions: stableAnd(cond{false, reason}),
			phase: PhaseRunning, ready: true, ttl: compose.WaitTTL, application: snapshotStatus, check: canaryStatus(starting)}
		if message != "" {
			w.messages = map[string]string{ConditionCanaryHealthy: message}
		}
		return w
	}
	// kept: the canary's objects stay while the server waits on its
	// routes or its stable rollout.
	kept := func(c cond, st *v1alpha1.CanaryStatus) want {
		return want{resources: withCanaryObjects(resource.ReadyTrue, resource.ReadyTrue), conditions: stableAnd(c),
			phase: PhaseRunning, ready: true, ttl: compose.WaitTTL, application: snapshotStatus, check: canaryStatus(st)}
	}
	quota := func(hard, used string) string {
		return "{apiVersion: v1, kind: ResourceQuota, metadata: {name: vision-quota, namespace: vision-dev}, status: {hard: {requests.nvidia.com/gpu: '" + hard + "'}, used: {requests.nvidia.com/gpu: '" + used + "'}}}"
	}

	cases := map[string]struct {
		reason   string
		spec     string
		status   string
		observed map[string]string
		required map[string][]string
		want     want
	}{
		"Starting": {
			reason:   "A canary on a running server is composed beside it and gets no traffic until it is available.",
			spec:     canaryTag,
			observed: running,
			want: want{resources: withCanaryObjects(resource.ReadyFalse, resource.ReadyFalse), conditions: stableAnd(cond{false, "CanaryStarting"}),
				phase: PhaseRunning, ready: true, ttl: compose.WaitTTL, application: snapshotStatus,
				check: canaryStatus(&v1alpha1.CanaryStatus{State: v1alpha1.CanaryStarting, OnRemoval: v1alpha1.CanaryDrop, Service: "resnet-canary-svc"})},
		},
		"Weighted": {
			reason:   "An available canary gets its weight; the server waits on nothing and idles.",
			spec:     canaryTag,
			observed: withCanary,
			want: want{resources: withCanaryObjects(resource.ReadyTrue, resource.ReadyTrue), conditions: stableAnd(cond{true, "CanaryServing"}),
				messages: map[string]string{ConditionCanaryHealthy: "send Service resnet-canary-svc 10% of the requests"},
				phase:    PhaseRunning, ready: true, ttl: compose.IdleTTL, application: snapshotStatus,
				check: canaryStatus(serving(10, 0))},
		},
		"Restarting": {
			reason:   "A changed spec.canary takes the canary's weight away until its controller has seen the new pods.",
			spec:     "canary:\n  tag: 25.03-py3\n  weight: 10\n",
			observed: withCanary,
			want: want{resources: withCanaryObjects(resource.ReadyTrue, resource.ReadyTrue), conditions: stableAnd(cond{false, "CanaryStarting"}),
				phase: PhaseRunning, ready: true, ttl: compose.WaitTTL, application: snapshotStatus,
				check: canaryStatus(&v1alpha1.CanaryStatus{State: v1alpha1.CanaryStarting, OnRemoval: v1alpha1.CanaryDrop, Service: "resnet-canary-svc"})},
		},
		"Mirrored": {
			reason:   "A mirrored canary gets a copy of the requests and no weight.",
			spec:     "canary:\n  tag: 25.02-py3\n  mirror: {percent: 50}\n",
			observed: withCanary,
			want: want{resources: withCanaryObjects(resource.ReadyTrue, resource.ReadyTrue), conditions: stableAnd(cond{true, "CanaryServing"}),
				phase: PhaseRunning, ready: true, ttl: compose.IdleTTL, application: snapshotStatus,
				check: canaryStatus(serving(0, 50))},
		},
		"MirrorRefusedByGateway": {
			reason:   "A gateway that refuses the route's mirror filter is reported on the canary; the server stays Ready.",
			spec:     "canary:\n  tag: 25.02-py3\n  mirror: {percent: 50}\n",
			observed: withCanary,
			required: map[string][]string{reqApplication: {gatewayApp}, reqHTTPRoute: {"{apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, metadata: {name: classifier-resnet-http, namespace: vision-dev, generation: 3}, spec: {parentRefs: [{name: gw}], rules: [{backendRefs: [{name: resnet-svc, port: 8000}], filters: [{type: RequestMirror, requestMirror: {backendRef: {name: resnet-canary-svc, port: 8000}, percent: 50}}]}]}, status: {parents: [{parentRef: {name: gw}, controllerName: example.com/gw, conditions: [{type: Accepted, status: 'False', reason: UnsupportedValue, message: RequestMirror is not supported, observedGeneration: 3}]}]}}"}},
			want: want{resources: withCanaryObjects(resource.ReadyTrue, resource.ReadyTrue), conditions: stableAnd(cond{false, "UnsupportedValue"}),
				messages: map[string]string{ConditionCanaryHealthy: "HTTPRoute classifier-resnet-http: gateway gw reports Accepted=False (UnsupportedValue): RequestMirror is not supported"},
				phase:    PhaseRunning, ready: true, ttl: compose.PollTTL, application: snapshotStatus,
				check: canaryStatus(serving(0, 50))},
		},
		"NameTaken": {
			reason:   "A server named resnet-canary would share the canary's names: the canary is refused.",
			spec:     canaryTag,
			observed: running,
			required: map[string][]string{reqApplication: {gatewayApp}, reqCanaryNamesake: {"{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoTritonServer, metadata: {name: resnet-canary, namespace: vision-dev}, spec: {applicationRef: classifier}}"}},
			want:     refused("CanaryNameTaken", ""),
		},
		"FailedCanaryLeavesStable": {
			reason:   "A canary past its progress deadline gets no traffic; the server stays Ready.",
			spec:     canaryTag,
			observed: canaryObserved(t, running, canaryTag, `{metadata: {generation: 1}, status: {observedGeneration: 1, replicas: 1, unavailableReplicas: 1, conditions: [{type: Progressing, status: "False", reason: ProgressDeadlineExceeded, message: "ReplicaSet has timed out progressing."}]}}`),
			want: want{resources: withCanaryObjects(resource.ReadyFalse, resource.ReadyTrue), conditions: stableAnd(cond{false, "ProgressDeadlineExceeded"}),
				phase: PhaseRunning, ready: true, ttl: compose.WaitTTL, application: snapshotStatus,
				check: canaryStatus(&v1alpha1.CanaryStatus{State: v1alpha1.CanaryStarting, OnRemoval: v1alpha1.CanaryDrop, Service: "resnet-canary-svc"})},
		},
		"Unchanged": {
			reason:   "A canary whose pods would be the stable track's is refused.",
			spec:     "canary:\n  tag: " + p.TritonTag + "\n",
			observed: running,
			want:     refused("CanaryUnchanged", ""),
		},
		"NoGateway": {
			reason:   "A canary of an application without a gateway would get no traffic: refused.",
			spec:     canaryTag,
			observed: running,
			required: map[string][]string{reqApplication: {readyApp}},
			want:     refused("CanaryNeedsGateway", "spec.gateway.enabled"),
		},
		"SpecInvalid": {
			reason:   "A canary setting Triton would refuse is named, and only the canary is refused.",
			spec:     "canary:\n  modelControl: {mode: poll, loadModels: [resnet]}\n",
			observed: running,
			want:     refused("CanarySpecInvalid", "spec.canary: spec.modelControl.loadModels needs"),
		},
		"GPUClassRefused": {
			reason:   "A canary that breaks a GPU-class rule is refused with the class's reason; the stable track runs on.",
			spec:     "canary:\n  tag: 25.02-py3\n  gpuClass: h200\n  gpus: 1\n",
			observed: running,
			want:     refused("UnknownGPUClass", `spec.canary: spec.gpuClass "h200" is not a GPU class of this platform`),
		},
		"QuotaRefused": {
			reason:   "A canary whose GPUs do not fit the quota left is refused before its create; the stable track is untouched.",
			spec:     "canary:\n  tag: 25.02-py3\n  gpus: 1\n",
			observed: running,
			required: map[string][]string{reqApplication: {gatewayApp}, reqQuotas: {quota("1", "1")}},
			want:     refused(reasonInsufficientGPUQuota, "per canary pod × spec.canary.replicas"),
		},
		"Dropping": {
			reason:   "Removing spec.canary takes its traffic away; its objects stay while a route still sends to it.",
			status:   prevStatus(v1alpha1.CanaryServing, v1alpha1.CanaryDrop, 10),
			observed: withCanary,
			required: map[string][]string{reqApplication: {gatewayApp}, reqHTTPRoute: {route(canaryWeighted10, true)}},
			want:     kept(cond{false, "CanaryDropping"}, &v1alpha1.CanaryStatus{State: v1alpha1.CanaryDropping, OnRemoval: v1alpha1.CanaryDrop, Service: "resnet-canary-svc"}),
		},
		"DroppingUntilAccepted": {
			reason:   "A route that dropped the canary but is not accepted at its generation still holds the canary.",
			status:   prevStatus(v1alpha1.CanaryDropping, v1alpha1.CanaryDrop, 0),
			observed: withCanary,
			required: map[string][]string{reqApplication: {gatewayApp}, reqHTTPRoute: {strings.Replace(route(stableOnly, true), "observedGeneration: 3", "observedGeneration: 2", 1)}},
			want:     kept(cond{false, "CanaryDropping"}, &v1alpha1.CanaryStatus{State: v1alpha1.CanaryDropping, OnRemoval: v1alpha1.CanaryDrop, Service: "resnet-canary-svc"}),
		},
		"Dropped": {
			reason:   "Once every route dropped the canary and was accepted, its objects go.",
			status:   prevStatus(v1alpha1.CanaryDropping, v1alpha1.CanaryDrop, 0),
			observed: withCanary,
			required: map[string][]string{reqApplication: {gatewayApp}, reqHTTPRoute: {route(stableOnly, true)}},
			want: want{resources: stableObjects, conditions: stableAnd(cond{false, "NoCanary"}),
				phase: PhaseRunning, ready: true, ttl: compose.IdleTTL, application: snapshotStatus,
				check: canaryStatus(nil)},
		},
		"StaleParentIgnored": {
			reason:   "A parent the route no longer names (a gateway uninstalled without cleaning up) does not hold the canary.",
			status:   prevStatus(v1alpha1.CanaryDropping, v1alpha1.CanaryDrop, 0),
			observed: withCanary,
			required: map[string][]string{reqApplication: {gatewayApp}, reqHTTPRoute: {strings.Replace(route(stableOnly, true), "parents: [", "parents: [{parentRef: {name: old-gw}, controllerName: example.com/old, conditions: [{type: Accepted, status: 'True', reason: Accepted, observedGeneration: 1}]}, ", 1)}},
			want: want{resources: stableObjects, conditions: stableAnd(cond{false, "NoCanary"}),
				phase: PhaseRunning, ready: true, ttl: compose.IdleTTL, application: snapshotStatus, check: canaryStatus(nil)},
		},
		"PromotionGivesBackAFailingCanary": {
			reason:   "A canary that stops serving during its promotion gives the traffic back to the stable track.",
			spec:     "tritonConfig: {tag: 25.02-py3}\n",
			status:   prevStatus(v1alpha1.CanaryPromoting, v1alpha1.CanaryPromote, 100),
			observed: canaryObserved(t, running, canaryTag, `{metadata: {generation: 1}, status: {observedGeneration: 1, replicas: 1, unavailableReplicas: 1, conditions: [{type: Progressing, status: "False", reason: ProgressDeadlineExceeded}]}}`),
			required: map[string][]string{reqApplication: {gatewayApp}, reqHTTPRoute: {route(canaryAll, true)}},
			want:     kept(cond{false, "CanaryDropping"}, &v1alpha1.CanaryStatus{State: v1alpha1.CanaryDropping, OnRemoval: v1alpha1.CanaryPromote, Service: "resnet-canary-svc"}),
		},
		"NoCanaryAfterDrop": {
			reason:   "Once gone, the condition says so, so that Crossplane does not turn it Unknown.",
			status:   "conditions: [{type: CanaryHealthy, status: 'False', reason: NoCanary}]\n",
			observed: running,
			want: want{resources: stableObjects, conditions: stableAnd(cond{false, "NoCanary"}),
				phase: PhaseRunning, ready: true, ttl: compose.IdleTTL, application: snapshotStatus, check: canaryStatus(nil)},
		},
		"PromotingHoldsStable": {
			reason:   "A promotion first moves every request to the canary: the stable Deployment waits as it is.",
			spec:     "tritonConfig: {tag: 25.02-py3}\n",
			status:   prevStatus(v1alpha1.CanaryServing, v1alpha1.CanaryPromote, 10),
			observed: withCanary,
			required: map[string][]string{reqApplication: {gatewayApp}, reqHTTPRoute: {route(canaryWeighted10, true)}},
			want: want{resources: withCanaryObjects(resource.ReadyTrue, resource.ReadyTrue), conditions: stableAnd(cond{true, "CanaryPromoting"}),
				messages: map[string]string{ConditionCanaryHealthy: "waiting for the routes"},
				phase:    PhaseRunning, ready: true, ttl: compose.WaitTTL, application: snapshotStatus,
				check: func(t *testing.T, r compose.Result) {
					canaryStatus(&v1alpha1.CanaryStatus{State: v1alpha1.CanaryPromoting, OnRemoval: v1alpha1.CanaryPromote, Service: "resnet-canary-svc", Weight: 100})(t, r)
					if img := tritonContainer(t, decodeStrict[appsv1.Deployment](t, r, resDeployment)).Image; strings.HasSuffix(img, ":25.02-py3") {
						t.Errorf("the stable Deployment rolled (%s) before the routes sent everything to the canary", img)
					}
				}},
		},
		"PromotingRollsStable": {
			reason:   "Once the routes send every request to the canary, the stable track rolls to the new spec.",
			spec:     "tritonConfig: {tag: 25.02-py3}\n",
			status:   prevStatus(v1alpha1.CanaryPromoting, v1alpha1.CanaryPromote, 100),
			observed: withCanary,
			required: map[string][]string{reqApplication: {gatewayApp}, reqHTTPRoute: {route(canaryAll, true)}},
			want: want{resources: withCanaryObjects(resource.ReadyTrue, resource.ReadyTrue), conditions: stableAnd(cond{true, "CanaryPromoting"}),
				phase: PhaseRunning, ready: true, ttl: compose.WaitTTL, application: snapshotStatus,
				check: func(t *testing.T, r compose.Result) {
					canaryStatus(&v1alpha1.CanaryStatus{State: v1alpha1.CanaryPromoting, OnRemoval: v1alpha1.CanaryPromote, Service: "resnet-canary-svc", Weight: 100})(t, r)
					if img := tritonContainer(t, decodeStrict[appsv1.Deployment](t, r, resDeployment)).Image; !strings.HasSuffix(img, ":25.02-py3") {
						t.Errorf("the stable Deployment did not roll to the new spec: %s", img)
					}
				}},
		},
		"PromotionWaitsForTheController": {
			reason:   "A stable Deployment read right after the apply has the new spec and the old counts: the rollout has not happened yet.",
			spec:     "tritonConfig: {tag: 25.02-py3}\n",
			status:   prevStatus(v1alpha1.CanaryPromoting, v1alpha1.CanaryPromote, 100),
			observed: canaryObserved(t, created(t, "tritonConfig: {tag: 25.02-py3}\n", strings.Replace(deployAvailable, "generation: 1}", "generation: 2}", 1)), "tritonConfig: {tag: 25.02-py3}\ncanary: {tag: 25.03-py3}\n", deployAvailable),
			required: map[string][]string{reqApplication: {gatewayApp}, reqHTTPRoute: {route(canaryAll, true)}},
			want:     kept(cond{true, "CanaryPromoting"}, &v1alpha1.CanaryStatus{State: v1alpha1.CanaryPromoting, OnRemoval: v1alpha1.CanaryPromote, Service: "resnet-canary-svc", Weight: 100}),
		},
		"StableGoneKeepsCanary": {
			reason: "A stable Deployment deleted by hand leaves the canary as it is: routes may still send to it.",
			spec:   canaryTag,
			status: prevStatus(v1alpha1.CanaryServing, v1alpha1.CanaryDrop, 10),
			observed: func() map[string]string {
				o := canaryObserved(t, running, canaryTag, deployAvailable)
				delete(o, string(resDeployment))
				return o
			}(),
			want: want{resources: map[string]resource.Ready{string(resService): resource.ReadyTrue, string(resUsage): resource.ReadyTrue, string(resCanaryDeployment): resource.ReadyTrue, string(resCanaryService): resource.ReadyTrue, string(resDeployment): resource.ReadyFalse},
				conditions: composedConds(map[string]cond{ConditionCanaryHealthy: {false, "WaitingForStable"}}), phase: PhasePending, ready: false, ttl: compose.WaitTTL, application: snapshotStatus,
				check: canaryStatus(&v1alpha1.CanaryStatus{State: v1alpha1.CanaryStarting, OnRemoval: v1alpha1.CanaryDrop, Service: "resnet-canary-svc"})},
		},
		"PromotedThenDropping": {
			reason:   "Once the stable track serves the new spec, the canary's traffic goes back to it and the canary is dropped.",
			spec:     "tritonConfig: {tag: 25.02-py3}\n",
			status:   prevStatus(v1alpha1.CanaryPromoting, v1alpha1.CanaryPromote, 100),
			observed: canaryObserved(t, created(t, "tritonConfig: {tag: 25.02-py3}\n", deployAvailable), "tritonConfig: {tag: 25.02-py3}\ncanary: {tag: 25.03-py3}\n", deployAvailable),
			required: map[string][]string{reqApplication: {gatewayApp}, reqHTTPRoute: {route(canaryAll, true)}},
			want:     kept(cond{false, "CanaryDropping"}, &v1alpha1.CanaryStatus{State: v1alpha1.CanaryDropping, OnRemoval: v1alpha1.CanaryPromote, Service: "resnet-canary-svc"}),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			required := tc.required
			if required == nil {
				required = map[string][]string{reqApplication: {gatewayApp}}
			}
			for _, enc := range encodings {
				r := scene{xr: serverXR(tc.spec, tc.status), observed: tc.observed, required: required}.run(t, enc, p)
				tc.want.verify(t, tc.reason+" ("+string(enc)+")", r)
			}
		})
	}
}

// TestCanarySelectors: canary pods never match the stable track's
// selectors, and the stable track composes what it did without a canary.
func TestCanarySelectors(t *testing.T) {
	p := platform(t)
	running := created(t, "", deployAvailable)
	without := scene{xr: serverXR("", ""), observed: running, required: map[string][]string{reqApplication: {gatewayApp}}}.run(t, int64s, p)
	with := scene{xr: serverXR(canaryTag, ""), observed: running, required: map[string][]string{reqApplication: {gatewayApp}}}.run(t, int64s, p)
	for _, n := range []resource.Name{resDeployment, resService, resUsage} {
		if diff := cmp.Diff(without.Desired[n].Resource.Object, with.Desired[n].Resource.Object); diff != "" {
			t.Errorf("%s changed with a canary: -without, +with:\n%s", n, diff)
		}
	}
	canary := decodeStrict[appsv1.Deployment](t, with, resCanaryDeployment)
	pods := labels.Set(canary.Spec.Template.Labels)
	if pods[compose.LabelTrack] != compose.TrackCanary || pods[compose.LabelTritonServer] != "resnet-canary" {
		t.Errorf("canary pod labels: %v", pods)
	}
	stable := decodeStrict[appsv1.Deployment](t, with, resDeployment)
	svc := decodeStrict[corev1.Service](t, with, resService)
	for what, sel := range map[string]map[string]string{"stable Deployment": stable.Spec.Selector.MatchLabels, "stable Service": svc.Spec.Selector} {
		if labels.SelectorFromSet(sel).Matches(pods) {
			t.Errorf("the %s's selector %v matches canary pods %v", what, sel, pods)
		}
	}
	canarySvc := decodeStrict[corev1.Service](t, with, resCanaryService)
	if canarySvc.Name != "resnet-canary-svc" || !labels.SelectorFromSet(canarySvc.Spec.Selector).Matches(pods) || labels.SelectorFromSet(canarySvc.Spec.Selector).Matches(labels.Set(stable.Spec.Template.Labels)) {
		t.Errorf("canary Service %s selects %v: must select the canary's pods only", canarySvc.Name, canarySvc.Spec.Selector)
	}
	if got := tritonContainer(t, canary).Image; !strings.HasSuffix(got, ":25.02-py3") {
		t.Errorf("canary image: %s", got)
	}
	if canary.Spec.Replicas == nil || *canary.Spec.Replicas != 1 {
		t.Errorf("canary replicas: %v", canary.Spec.Replicas)
	}
}

// TestCanaryNamesake: a new server named <x>-canary waits while server <x>
// has a canary.
func TestCanaryNamesake(t *testing.T) {
	xr := strings.Replace(serverXR("", ""), "name: resnet,", "name: resnet-canary,", 1)
	r := scene{xr: xr, required: map[string][]string{reqApplication: {readyApp},
		reqCanaryOwner: {"{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoTritonServer, metadata: {name: resnet, namespace: vision-dev}, spec: {applicationRef: classifier, canary: {tag: 25.02-py3}}}"}}}.run(t, int64s, platform(t))
	if c := condsOf(r)[ConditionServerAvailable]; c.Reason != "NameTakenByCanary" || len(r.Desired) != 0 {
		t.Errorf("want nothing composed and ServerAvailable NameTakenByCanary, got %v and %d objects", c, len(r.Desired))
	}
}

// TestCanaryDRA: a canary of a DRA class gets its own ResourceClaimTemplate,
// named and selected as the canary.
func TestCanaryDRA(t *testing.T) {
	p := catalogue(t)
	running := createdOn(t, p, "", deployAvailable)
	spec := "canary:\n  tag: 25.02-py3\n  gpuClass: dra-h100\n  gpus: 1\n"
	r := scene{xr: serverXR(spec, ""), observed: running, required: map[string][]string{reqApplication: {gatewayApp}}}.run(t, int64s, p)
	var templates []string
	for n := range r.Desired {
		if strings.HasPrefix(string(n), resCanaryClaimTemplatePrefix) {
			templates = append(templates, string(n))
		}
	}
	if len(templates) != 1 {
		t.Fatalf("want one canary ResourceClaimTemplate, got %v (conditions %v)", templates, condsOf(r))
	}
	tmpl := decodeStrict[resourcev1.ResourceClaimTemplate](t, r, resource.Name(templates[0]))
	if !strings.HasPrefix(tmpl.Name, "resnet-canary-gpu1-") || tmpl.Spec.ObjectMeta.Labels[compose.LabelTritonServer] != "resnet-canary" {
		t.Errorf("canary template %s labels %v", tmpl.Name, tmpl.Spec.ObjectMeta.Labels)
	}
	pod := decodeStrict[appsv1.Deployment](t, r, resCanaryDeployment).Spec.Template.Spec
	if len(pod.ResourceClaims) != 1 || ptr.Deref(pod.ResourceClaims[0].ResourceClaimTemplateName, "") != tmpl.Name {
		t.Errorf("canary pod claims: %+v", pod.ResourceClaims)
	}
	for n := range r.Desired {
		if strings.HasPrefix(string(n), resClaimTemplatePrefix) {
			t.Errorf("the stable track (default class) composed %s", n)
		}
	}
}

// TestCanaryMonitor: with the stable track's ServiceMonitor, the canary
// gets its own, selecting only the canary's Service.
func TestCanaryMonitor(t *testing.T) {
	monitored := "observability: {enabled: true, metrics: {enableServiceMonitor: true}}\n"
	running := created(t, monitored, deployAvailable)
	r := scene{xr: serverXR(monitored+canaryTag, ""), observed: running, required: map[string][]string{reqApplication: {gatewayApp}, reqServiceMonitor: {smCRD}}}.run(t, int64s, platform(t))
	stable := decodeStrict[monitoringv1.ServiceMonitor](t, r, resServiceMonitor)
	canary := decodeStrict[monitoringv1.ServiceMonitor](t, r, resCanaryMonitor)
	if canary.Name != "resnet-canary-monitor" || canary.Spec.Selector.MatchLabels[compose.LabelTritonServer] != "resnet-canary" {
		t.Errorf("canary ServiceMonitor %s selects %v", canary.Name, canary.Spec.Selector.MatchLabels)
	}
	if stable.Spec.Selector.MatchLabels[compose.LabelTritonServer] != "resnet" {
		t.Errorf("stable ServiceMonitor selects %v", stable.Spec.Selector.MatchLabels)
	}
}
