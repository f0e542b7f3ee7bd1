package fn_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/response"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/fn"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
)

const input = `{"apiVersion": "kalypso.fn.crossplane.io/v1beta1", "kind": "Input"}`

const projectXR = `
apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoProject
metadata: {name: vision, generation: 1}
spec:
  environments:
    dev: {namespace: vision-dev}
    prod: {namespace: vision-prod, podSecurity: restricted}
`

// resolved answers every requirement of the project above: nothing exists.
func resolved(t *testing.T, extra map[string]*fnv1.Resources) map[string]*fnv1.Resources {
	t.Helper()
	out := map[string]*fnv1.Resources{
		"environment-config": {}, "namespace-dev": {}, "namespace-prod": {}, "applications-dev": {}, "applications-prod": {},
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

func newRequest(t *testing.T, xr, in string, required map[string]*fnv1.Resources) *fnv1.RunFunctionRequest {
	t.Helper()
	return &fnv1.RunFunctionRequest{
		Meta:              &fnv1.RequestMeta{Tag: "t"},
		Input:             composetest.Struct(t, in),
		Observed:          &fnv1.State{Composite: &fnv1.Resource{Resource: composetest.Struct(t, xr)}},
		RequiredResources: required,
	}
}

func run(t *testing.T, req *fnv1.RunFunctionRequest) *fnv1.RunFunctionResponse {
	t.Helper()
	rsp, err := fn.New(logging.NewNopLogger()).RunFunction(context.Background(), req)
	if err != nil {
		t.Fatalf("RunFunction returned an error; it must report through the response: %v", err)
	}
	return rsp
}

func fatalResult(msg string) []*fnv1.Result {
	return []*fnv1.Result{{Severity: fnv1.Severity_SEVERITY_FATAL, Message: msg, Target: fnv1.Target_TARGET_COMPOSITE.Enum()}}
}

func meta() *fnv1.ResponseMeta {
	return &fnv1.ResponseMeta{Tag: "t", Ttl: durationpb.New(response.DefaultTTL)}
}

func TestRunFunctionRefusals(t *testing.T) {
	cases := map[string]struct {
		reason string
		req    *fnv1.RunFunctionRequest
		want   *fnv1.RunFunctionResponse
	}{
		"UnknownKind": {
			reason: "A kind the function does not serve gets a Fatal naming it and the kinds it serves.",
			req:    newRequest(t, `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoModel, metadata: {name: m}}`, input, nil),
			want:   &fnv1.RunFunctionResponse{Meta: meta(), Results: fatalResult("function-kalypso does not compose serving.kalypso.io/v1alpha1, Kind=KalypsoModel: it serves serving.kalypso.io kinds KalypsoApplication, KalypsoProject, KalypsoTritonServer, XKalypsoApplication, XKalypsoTritonServer")},
		},
		"ForeignGroup": {
			reason: "A known kind name in another group is not ours.",
			req:    newRequest(t, `{apiVersion: example.org/v1, kind: KalypsoProject, metadata: {name: m}}`, input, nil),
			want:   &fnv1.RunFunctionResponse{Meta: meta(), Results: fatalResult("function-kalypso does not compose example.org/v1, Kind=KalypsoProject: it serves serving.kalypso.io kinds KalypsoApplication, KalypsoProject, KalypsoTritonServer, XKalypsoApplication, XKalypsoTritonServer")},
		},
		"MalformedSpec": {
			reason: "A spec of the wrong shape is refused with the field named, before anything is composed.",
			req:    newRequest(t, `{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoProject, metadata: {name: vision}, spec: {environments: [dev]}}`, input, nil),
			want:   &fnv1.RunFunctionResponse{Meta: meta(), Results: fatalResult("invalid KalypsoProject vision: spec.environments: cannot use a JSON array where map[string]v1alpha1.EnvironmentSpec is expected")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := run(t, tc.req)
			if diff := cmp.Diff(tc.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRunFunctionRejectsUnknownInputFields(t *testing.T) {
	// The input is decoded strictly: a typo is an error naming the field,
	// not a silently ignored default. (The decoder's wording is the SDK's.)
	got := run(t, newRequest(t, projectXR, `{"apiVersion": "kalypso.fn.crossplane.io/v1beta1", "kind": "Input", "spec": {"tenancy": {"podSecurityLvl": "baseline"}}}`, nil))
	if len(got.GetResults()) != 1 || got.GetResults()[0].GetSeverity() != fnv1.Severity_SEVERITY_FATAL {
		t.Fatalf("want one Fatal result, got %v", got.GetResults())
	}
	msg := got.GetResults()[0].GetMessage()
	for _, want := range []string{"cannot decode the function input", `"podSecurityLvl"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("Fatal message %q does not contain %q", msg, want)
		}
	}
	if got.GetDesired() != nil {
		t.Errorf("a Fatal must not carry a desired state")
	}
}

func TestRunFunctionAsksForRequirementsFirst(t *testing.T) {
	got := run(t, newRequest(t, projectXR, input, nil))
	want := &fnv1.RunFunctionResponse{
		Meta: meta(),
		Requirements: &fnv1.Requirements{Resources: map[string]*fnv1.ResourceSelector{
			"environment-config": {ApiVersion: "apiextensions.crossplane.io/v1beta1", Kind: "EnvironmentConfig", Match: &fnv1.ResourceSelector_MatchName{MatchName: "kalypso-defaults"}},
			"namespace-dev":      {ApiVersion: "v1", Kind: "Namespace", Match: &fnv1.ResourceSelector_MatchName{MatchName: "vision-dev"}},
			"namespace-prod":     {ApiVersion: "v1", Kind: "Namespace", Match: &fnv1.ResourceSelector_MatchName{MatchName: "vision-prod"}},
			"applications-dev": {ApiVersion: "serving.kalypso.io/v1alpha1", Kind: "KalypsoApplication", Namespace: ptr.To("vision-dev"),
				Match: &fnv1.ResourceSelector_MatchLabels{MatchLabels: &fnv1.MatchLabels{}}},
			"applications-prod": {ApiVersion: "serving.kalypso.io/v1alpha1", Kind: "KalypsoApplication", Namespace: ptr.To("vision-prod"),
				Match: &fnv1.ResourceSelector_MatchLabels{MatchLabels: &fnv1.MatchLabels{}}},
		}},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("the first call returns the requirements and composes nothing: -want, +got:\n%s", diff)
	}
}

// TestRunFunctionPlatformFirst: a project that reads receiver Secrets asks
// for the EnvironmentConfig alone first, so that Crossplane fetches the
// Secrets once, for the platform's final defaults.
func TestRunFunctionPlatformFirst(t *testing.T) {
	xr := projectXR + "  alerting: {receivers: [{name: team, type: slack, secretRef: {name: hooks, key: slack}}]}\n"
	got := run(t, newRequest(t, xr, input, nil))
	want := &fnv1.RunFunctionResponse{
		Meta: meta(),
		Requirements: &fnv1.Requirements{Resources: map[string]*fnv1.ResourceSelector{
			"environment-config": {ApiVersion: "apiextensions.crossplane.io/v1beta1", Kind: "EnvironmentConfig", Match: &fnv1.ResourceSelector_MatchName{MatchName: "kalypso-defaults"}},
		}},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("first call: -want, +got:\n%s", diff)
	}
	second := run(t, newRequest(t, xr, input, map[string]*fnv1.Resources{"environment-config": {}}))
	if _, ok := second.GetRequirements().GetResources()["receiver-secret-dev.hooks"]; !ok {
		t.Errorf("second call: want the receiver Secrets asked for, got %v", second.GetRequirements().GetResources())
	}
}

func TestRunFunctionEnvironmentConfig(t *testing.T) {
	envConfig := func(data string) map[string]*fnv1.Resources {
		return map[string]*fnv1.Resources{"environment-config": composetest.Resources(t,
			`{apiVersion: apiextensions.crossplane.io/v1beta1, kind: EnvironmentConfig, metadata: {name: kalypso-defaults}, data: `+data+`}`)}
	}
	baselineInput := `{"apiVersion": "kalypso.fn.crossplane.io/v1beta1", "kind": "Input", "spec": {"tenancy": {"podSecurityLevel": "baseline"}}}`
	cases := map[string]struct {
		reason    string
		in        string
		required  map[string]*fnv1.Resources
		wantDev   string // enforce level of the dev namespace (no level in its spec)
		wantProd  string // prod sets restricted in its spec
		wantFatal string
	}{
		"BuiltIn":                {reason: "Without input or EnvironmentConfig the built-in default applies.", in: input, required: resolved(t, nil), wantDev: "restricted", wantProd: "restricted"},
		"InputOverBuiltIn":       {reason: "The Input overrides the built-in default.", in: baselineInput, required: resolved(t, nil), wantDev: "baseline", wantProd: "restricted"},
		"EnvConfigOverInput":     {reason: "The EnvironmentConfig overrides the Input; the spec overrides both.", in: baselineInput, required: resolved(t, envConfig(`{tenancy: {podSecurityLevel: privileged}}`)), wantDev: "privileged", wantProd: "restricted"},
		"EnvConfigKeepsUnsetKey": {reason: "A key the EnvironmentConfig leaves out keeps the Input's value.", in: baselineInput, required: resolved(t, envConfig(`{tenancy: {networkIsolation: false}}`)), wantDev: "baseline", wantProd: "restricted"},
		"EnvConfigUnknownKey": {
			reason: "The EnvironmentConfig is decoded strictly: an unknown key is an error naming it.",
			in:     input, required: resolved(t, envConfig(`{tenancy: {podSecurity: privileged}}`)),
			wantFatal: `EnvironmentConfig kalypso-defaults: data must mirror the function Input's spec: json: unknown field "podSecurity"`,
		},
		"EnvConfigBadLevel": {
			reason: "A value outside the enum is refused with the field named.",
			in:     input, required: resolved(t, envConfig(`{tenancy: {podSecurityLevel: strict}}`)),
			wantFatal: `defaults: tenancy.podSecurityLevel "strict" is not one of privileged, baseline, restricted`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := newRequest(t, projectXR, tc.in, tc.required)
			// The project's ClusterUsage is Ready: its namespaces are composed,
			// both at once since one exists (compose.HoldBackNewKinds).
			req.Observed.Resources = map[string]*fnv1.Resource{
				"usage": {Resource: composetest.Struct(t,
					`{apiVersion: protection.crossplane.io/v1beta1, kind: ClusterUsage, metadata: {name: kalypsoproject-vision}, status: {conditions: [{type: Ready, status: "True"}]}}`)},
				"namespace-dev": {Resource: composetest.Struct(t, `{apiVersion: v1, kind: Namespace, metadata: {name: vision-dev}}`)},
			}
			rsp := run(t, req)
			if tc.wantFatal != "" {
				if len(rsp.GetResults()) != 1 || !strings.Contains(rsp.GetResults()[0].GetMessage(), tc.wantFatal) {
					t.Fatalf("%s\nwant a Fatal containing %q, got %v", tc.reason, tc.wantFatal, rsp.GetResults())
				}
				return
			}
			for ns, want := range map[string]string{"namespace-dev": tc.wantDev, "namespace-prod": tc.wantProd} {
				got := &corev1.Namespace{}
				composetest.DecodeStrict(t, rsp.GetDesired().GetResources()[ns].GetResource(), got)
				if l := got.Labels["pod-security.kubernetes.io/enforce"]; l != want {
					t.Errorf("%s\n%s enforce level: want %q, got %q", tc.reason, ns, want, l)
				}
			}
		})
	}
}

func TestRunFunctionDeterministic(t *testing.T) {
	req := newRequest(t, `
apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoProject
metadata: {name: vision}
spec:
  access: {admins: [{kind: Group, name: a}], viewers: [{kind: User, name: v}]}
  environments:
    dev: {namespace: vision-dev, resourceQuota: {limits: {cpu: '4', memory: 8Gi, nvidia.com/gpu: '1'}, requests: {pods: '10', count/services: '4'}}}
    stage: {namespace: vision-stage}
    prod: {namespace: vision-prod, networkIsolation: {allowFromEnvironments: [stage, dev]}}
`, input, map[string]*fnv1.Resources{
		"environment-config": {}, "namespace-dev": {}, "namespace-stage": {}, "namespace-prod": {},
		"applications-dev": {}, "applications-stage": {}, "applications-prod": {},
	})
	first, err := proto.MarshalOptions{Deterministic: true}.Marshal(run(t, req))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		again, err := proto.MarshalOptions{Deterministic: true}.Marshal(run(t, req))
		if err != nil {
			t.Fatal(err)
		}
		if string(first) != string(again) {
			t.Fatalf("call %d returned different bytes for the same request", i+2)
		}
	}
}

func TestRunFunctionFatalResendsConditions(t *testing.T) {
	xr := `
apiVersion: serving.kalypso.io/v1alpha1
kind: KalypsoProject
metadata: {name: vision}
spec:
  environments:
    dev: {namespace: vision-dev, resourceQuota: {limits: {nvidia.com/gpu: '2'}, requests: {nvidia.com/gpu: '1'}}}
status:
  conditions:
  - {type: Ready, status: "True", reason: Available, lastTransitionTime: "2026-01-01T00:00:00Z"}
  - {type: EnvironmentsReady, status: "True", reason: EnvironmentsReady, message: all 1 environments are ready, lastTransitionTime: "2026-01-01T00:00:00Z"}
  - {type: NamespacesOwned, status: "True", reason: NamespacesOwned, message: ok, lastTransitionTime: "2026-01-01T00:00:00Z"}
`
	got := run(t, newRequest(t, xr, input, resolved(t, nil)))
	want := &fnv1.RunFunctionResponse{
		Meta:         meta(),
		Requirements: got.GetRequirements(),
		Results:      fatalResult("invalid KalypsoProject vision: spec.environments.dev.resourceQuota.limits[nvidia.com/gpu] and spec.environments.dev.resourceQuota.requests[nvidia.com/gpu] both set quota requests.nvidia.com/gpu, to 2 and 1: a quota knows requests.nvidia.com/gpu only once; set one value"),
		Conditions: []*fnv1.Condition{
			{Type: "NamespacesOwned", Status: fnv1.Status_STATUS_CONDITION_TRUE, Reason: "NamespacesOwned", Message: ptr.To("ok"), Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum()},
			{Type: "EnvironmentsReady", Status: fnv1.Status_STATUS_CONDITION_TRUE, Reason: "EnvironmentsReady", Message: ptr.To("all 1 environments are ready"), Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum()},
		},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("a Fatal keeps the composed objects and re-sends the last known conditions: -want, +got:\n%s", diff)
	}
}

func TestRunFunctionHoldsBackNewKinds(t *testing.T) {
	req := newRequest(t, projectXR, input, resolved(t, nil))
	req.Observed.Resources = map[string]*fnv1.Resource{"usage": {Resource: composetest.Struct(t,
		`{apiVersion: protection.crossplane.io/v1beta1, kind: ClusterUsage, metadata: {name: kalypsoproject-vision}, status: {conditions: [{type: Ready, status: "True"}]}}`)}}
	rsp := run(t, req)
	var got []string
	for name := range rsp.GetDesired().GetResources() {
		got = append(got, name)
	}
	slices.Sort(got)
	// Core would start a watch handler per new Namespace, for good: the
	// first Namespace goes now, the second once the first is observed.
	if diff := cmp.Diff([]string{"namespace-dev", "usage"}, got); diff != "" {
		t.Errorf("a project's first call with namespaces composes one of them: -want, +got:\n%s", diff)
	}
	if r := rsp.GetDesired().GetComposite().GetReady(); r != fnv1.Ready_READY_FALSE {
		t.Errorf("a project with a namespace held back must not be Ready, got %v", r)
	}
}
