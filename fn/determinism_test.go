package fn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"github.com/kalypsoserving/function-kalypso/fn"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
	"github.com/kalypsoserving/function-kalypso/test/requests"
)

// This file holds the determinism properties of RunFunction over every
// example at every stage (requests.Examples: what `make render` renders,
// each stage's required objects answering the function's requirements as
// Crossplane answers them), and the cases audit_test.go uses too.

// exCase is one example at one stage.
type exCase struct {
	name     string // <dir>/<xr>/<stage>
	xr       map[string]any
	input    *structpb.Struct // the Composition's pipeline input
	observed map[string]map[string]any
	pool     []map[string]any // what exists in the cluster
}

// exCases loads every example at every stage.
func exCases(t *testing.T) []exCase {
	t.Helper()
	examples, err := requests.Examples("..")
	if err != nil {
		t.Fatal(err)
	}
	var out []exCase
	for _, e := range examples {
		in, err := requests.CompositionInput(e.Composition)
		if err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
		observed, err := requests.ByName(e.Observed)
		if err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
		out = append(out, exCase{name: e.Name, xr: e.XR, input: in, observed: observed, pool: e.Pool})
	}
	if len(out) < 20 {
		t.Fatalf("found only %d example cases", len(out))
	}
	return out
}

// exConverge calls the function as Crossplane's function runner does (see
// composetest.Converge). It returns the last request (every requirement
// answered) and its response; a Fatal fails the test.
func exConverge(t *testing.T, f *fn.Function, c exCase) (*fnv1.RunFunctionRequest, *fnv1.RunFunctionResponse) {
	t.Helper()
	req, rsp, err := composetest.Converge(f, c.xr, c.input, c.observed, c.pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := composetest.Fatal(rsp); r != nil {
		t.Fatalf("the function refused the example: %s", r.GetMessage())
	}
	return req, rsp
}

// exCall runs one request on a fresh copy: the SDK writes the response's
// desired state into the request's.
func exCall(t *testing.T, f *fn.Function, req *fnv1.RunFunctionRequest) *fnv1.RunFunctionResponse {
	t.Helper()
	rsp, err := f.RunFunction(context.Background(), proto.Clone(req).(*fnv1.RunFunctionRequest))
	if err != nil {
		t.Fatalf("RunFunction returned an error: %v", err)
	}
	return rsp
}

func exMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// shuffleRuns is how many shuffled requests each case gets.
const shuffleRuns = 16

// TestDeterministicUnderShuffling: what the function must treat as a set
// arrives in any order. The items of every required resource list, the
// observed composed resources and every map of the observed composite (the
// project's environments, labels, maps of the spec) are rebuilt in a
// random order; the response must be byte-identical. List order inside the
// composite (access subjects, parameters, tolerations…) is meaningful for
// the output and is left alone.
func TestDeterministicUnderShuffling(t *testing.T) {
	f := fn.New(logging.NewNopLogger())
	for i, c := range exCases(t) {
		t.Run(c.name, func(t *testing.T) {
			req, _ := exConverge(t, f, c)
			want := exMarshal(t, exCall(t, f, req))
			rng := rand.New(rand.NewPCG(uint64(i), 0x6b616c79)) //nolint:gosec // reproducible shuffles.
			for run := range shuffleRuns {
				shuffled := shuffleRequest(req, rng)
				if got := exMarshal(t, exCall(t, f, shuffled)); !bytes.Equal(want, got) {
					t.Fatalf("shuffled request %d (seed %d) got a different response:\n%s", run, i, describeDiff(t, want, got))
				}
			}
		})
	}
}

// setCases add members to the sets of some example stages, where a
// function that takes the first match in list order would answer
// differently: several crash-looping pods, several GPU quotas, several
// applications in a removed environment or across a project.
var setCases = []struct {
	stage string
	add   []string
}{
	{
		stage: "tritonservers/yolo/failed",
		add: []string{
			`{apiVersion: v1, kind: Pod, metadata: {name: yolo-deploy-5d8c7b9f4-b, namespace: vision-prod, labels: {kalypso-serving.io/tritonserver: yolo}},
			  status: {containerStatuses: [{name: tritonserver, state: {waiting: {reason: CrashLoopBackOff}}, lastState: {terminated: {exitCode: 2, reason: Error, message: second}}}]}}`,
			`{apiVersion: v1, kind: Pod, metadata: {name: yolo-deploy-5d8c7b9f4-c, namespace: vision-prod, labels: {kalypso-serving.io/tritonserver: yolo}},
			  status: {containerStatuses: [{name: tritonserver, state: {waiting: {reason: CrashLoopBackOff}}, lastState: {terminated: {exitCode: 3, reason: Error, message: third}}}]}}`,
		},
	},
	{
		stage: "tritonservers/yolo/no-gpu-quota",
		add: []string{`{apiVersion: v1, kind: ResourceQuota, metadata: {name: other-quota, namespace: vision-prod},
		  status: {hard: {requests.nvidia.com/gpu: "1"}, used: {requests.nvidia.com/gpu: "1"}}}`},
	},
	{
		stage: "projects/vision-without-stage/in-use",
		add: []string{
			`{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: zeta, namespace: vision-stage}, spec: {projectRef: vision}}`,
			`{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: alpha, namespace: vision-stage}, spec: {projectRef: vision}}`,
		},
	},
	{
		stage: "projects/vision/ready",
		add: []string{
			`{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: detector, namespace: vision-prod}, spec: {projectRef: vision}}`,
			`{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: ranker, namespace: vision-dev}, spec: {projectRef: vision}}`,
			`{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoApplication, metadata: {name: embeddings, namespace: vision-stage}, spec: {projectRef: vision}}`,
		},
	},
	{
		stage: "applications/recommendation-application/initial",
		add: []string{
			`{apiVersion: serving.kalypso.io/v1alpha1, kind: KalypsoTritonServer, metadata: {name: aaa, namespace: sample-project-dev},
			  spec: {applicationRef: recommendation-application, storageUri: s3://b/p}, status: {conditions: [{type: Ready, status: "True", reason: Available}]}}`,
		},
	},
}

// TestDeterministicUnderShufflingSets is TestDeterministicUnderShuffling
// on example stages whose sets have several members.
func TestDeterministicUnderShufflingSets(t *testing.T) {
	f := fn.New(logging.NewNopLogger())
	cases := map[string]exCase{}
	for _, c := range exCases(t) {
		cases[c.name] = c
	}
	for i, sc := range setCases {
		t.Run(sc.stage, func(t *testing.T) {
			c, ok := cases[sc.stage]
			if !ok {
				t.Fatalf("no example stage %s", sc.stage)
			}
			c.pool = slices.Clone(c.pool)
			for _, y := range sc.add {
				var o map[string]any
				if err := yaml.Unmarshal([]byte(y), &o); err != nil {
					t.Fatal(err)
				}
				c.pool = append(c.pool, o)
			}
			req, _ := exConverge(t, f, c)
			want := exMarshal(t, exCall(t, f, req))
			rng := rand.New(rand.NewPCG(uint64(i), 0x73657473)) //nolint:gosec // reproducible shuffles.
			for run := range shuffleRuns {
				if got := exMarshal(t, exCall(t, f, shuffleRequest(req, rng))); !bytes.Equal(want, got) {
					t.Fatalf("shuffled request %d got a different response:\n%s", run, describeDiff(t, want, got))
				}
			}
		})
	}
}

// shuffleRequest returns a copy of req with every set rebuilt in a random
// order.
func shuffleRequest(req *fnv1.RunFunctionRequest, rng *rand.Rand) *fnv1.RunFunctionRequest {
	out := proto.Clone(req).(*fnv1.RunFunctionRequest)
	required := make(map[string]*fnv1.Resources, len(out.GetRequiredResources()))
	for _, k := range shuffledKeys(out.GetRequiredResources(), rng) {
		items := out.GetRequiredResources()[k].GetItems()
		rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
		for _, it := range items {
			shuffleMaps(it.GetResource(), rng)
		}
		required[k] = &fnv1.Resources{Items: items}
	}
	out.RequiredResources = required
	observed := make(map[string]*fnv1.Resource, len(out.GetObserved().GetResources()))
	for _, k := range shuffledKeys(out.GetObserved().GetResources(), rng) {
		r := out.GetObserved().GetResources()[k]
		shuffleMaps(r.GetResource(), rng)
		observed[k] = r
	}
	out.Observed.Resources = observed
	shuffleMaps(out.GetObserved().GetComposite().GetResource(), rng)
	return out
}

func shuffledKeys[V any](m map[string]V, rng *rand.Rand) []string {
	keys := slices.Sorted(maps.Keys(m))
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return keys
}

// shuffleMaps rebuilds every map of a Struct, recursively, inserting its
// keys in a random order (environments, labels, quota lists…).
func shuffleMaps(s *structpb.Struct, rng *rand.Rand) {
	if s == nil {
		return
	}
	fields := make(map[string]*structpb.Value, len(s.GetFields()))
	for _, k := range shuffledKeys(s.GetFields(), rng) {
		v := s.GetFields()[k]
		shuffleValue(v, rng)
		fields[k] = v
	}
	s.Fields = fields
}

func shuffleValue(v *structpb.Value, rng *rand.Rand) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StructValue:
		shuffleMaps(k.StructValue, rng)
	case *structpb.Value_ListValue:
		for _, e := range k.ListValue.GetValues() {
			shuffleValue(e, rng)
		}
	}
}

// describeDiff shows where two responses differ, as JSON.
func describeDiff(t *testing.T, want, got []byte) string {
	t.Helper()
	var w, g fnv1.RunFunctionResponse
	if err := proto.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	wl := strings.Split(exJSON(t, &w), "\n")
	gl := strings.Split(exJSON(t, &g), "\n")
	var b strings.Builder
	for i := range max(len(wl), len(gl)) {
		var a, c string
		if i < len(wl) {
			a = wl[i]
		}
		if i < len(gl) {
			c = gl[i]
		}
		if a != c {
			fmt.Fprintf(&b, "line %d\n- %s\n+ %s\n", i+1, a, c)
			if b.Len() > 2000 {
				break
			}
		}
	}
	return b.String()
}

// exJSON is a response as indented JSON with sorted keys.
func exJSON(t *testing.T, m proto.Message) string {
	t.Helper()
	b, err := json.Marshal(exAsMap(t, m))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", " "); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// maxRounds bounds the reconciles TestNoChurn feeds back.
const maxRounds = 5

// TestNoChurn: Crossplane applies the desired composed resources and sends
// them back as observed, with its composition-resource-name annotation, its
// composite label and owner reference, the API server's identity fields,
// and the status the function wrote on the composite. Fed back round after
// round, an object once desired must be desired again byte for byte: a
// changed object would be applied again on every reconcile, a dropped one
// deleted. New objects may join (a project composes a namespace first and
// its contents once it exists) until the desired set settles, within a few
// rounds. Two runs: objects observed as applied (no status) and as ready.
func TestNoChurn(t *testing.T) {
	f := fn.New(logging.NewNopLogger())
	for _, c := range exCases(t) {
		t.Run(c.name, func(t *testing.T) {
			_, first := exConverge(t, f, c)
			for _, ready := range []bool{false, true} {
				next, rsp := c, first
				prev := desiredBodies(t, rsp)
				settled := false
				for round := 1; round <= maxRounds && !settled; round++ {
					next.xr = withStatusOf(t, c.xr, rsp)
					next.observed = applied(t, c.xr, next.observed, rsp, ready)
					_, rsp = exConverge(t, f, next)
					cur := desiredBodies(t, rsp)
					for name, w := range prev {
						switch got, ok := cur[name]; {
						case !ok:
							t.Errorf("ready=%v round %d: desired %s was dropped once observed", ready, round, name)
						case !bytes.Equal(w, got):
							t.Errorf("ready=%v round %d: desired %s changed once observed:\n- %s\n+ %s", ready, round, name,
								exJSONBytes(t, w), exJSONBytes(t, got))
						}
					}
					settled = len(cur) == len(prev)
					prev = cur
				}
				if !settled {
					t.Errorf("ready=%v: the desired resources did not settle within %d rounds", ready, maxRounds)
				}
			}
		})
	}
}

// exJSONBytes shows a deterministically marshalled Struct as JSON.
func exJSONBytes(t *testing.T, b []byte) string {
	t.Helper()
	s := &structpb.Struct{}
	if err := proto.Unmarshal(b, s); err != nil {
		t.Fatal(err)
	}
	return exJSON(t, s)
}

// desiredBodies are the desired composed resources' bodies, marshalled
// deterministically.
func desiredBodies(t *testing.T, rsp *fnv1.RunFunctionResponse) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for name, r := range rsp.GetDesired().GetResources() {
		out[name] = exMarshal(t, r.GetResource())
	}
	return out
}

// withStatusOf is the composite with the status the response wrote (and
// its conditions), as Crossplane persists it.
func withStatusOf(t *testing.T, xr map[string]any, rsp *fnv1.RunFunctionResponse) map[string]any {
	t.Helper()
	out := requests.DeepCopy(xr)
	status, _ := rsp.GetDesired().GetComposite().GetResource().AsMap()["status"].(map[string]any)
	if status == nil {
		status = map[string]any{}
	}
	var conds []any
	for _, c := range rsp.GetConditions() {
		st := map[fnv1.Status]string{fnv1.Status_STATUS_CONDITION_TRUE: "True", fnv1.Status_STATUS_CONDITION_FALSE: "False"}[c.GetStatus()]
		if st == "" {
			st = "Unknown"
		}
		conds = append(conds, map[string]any{"type": c.GetType(), "status": st, "reason": c.GetReason(), "message": c.GetMessage(), "lastTransitionTime": "2026-01-01T00:00:00Z"})
	}
	status["conditions"] = conds
	out["status"] = status
	return out
}

// applied is what Crossplane observes once it applied the response's
// desired composed resources over the previous observed ones: server-side
// apply sets the desired fields and keeps the others (fields other managers
// own, such as an autoscaler's replicas, and the status); undesired objects
// are deleted. Crossplane's annotation, composite label and controller
// reference and the API server's identity fields are added; with ready the
// objects get the status of ready objects.
func applied(t *testing.T, xr map[string]any, previous map[string]map[string]any, rsp *fnv1.RunFunctionResponse, ready bool) map[string]map[string]any {
	t.Helper()
	xmd, _ := xr["metadata"].(map[string]any)
	out := map[string]map[string]any{}
	for name, r := range rsp.GetDesired().GetResources() {
		o := map[string]any{}
		if p, ok := previous[name]; ok {
			o = requests.DeepCopy(p)
		}
		composetest.Merge(o, requests.DeepCopy(r.GetResource().AsMap()))
		md := requests.EnsureMap(o, "metadata")
		requests.EnsureMap(md, "annotations")[requests.ResourceNameAnnotation] = name
		requests.EnsureMap(md, "labels")["crossplane.io/composite"] = xmd["name"]
		if _, ok := md["ownerReferences"]; !ok {
			md["ownerReferences"] = []any{map[string]any{
				"apiVersion": xr["apiVersion"], "kind": xr["kind"], "name": xmd["name"], "uid": "xr-uid",
				"controller": true, "blockOwnerDeletion": true,
			}}
		}
		if _, ok := md["uid"]; !ok {
			md["uid"] = "uid-" + name
		}
		md["resourceVersion"] = "42"
		if _, ok := md["generation"]; !ok {
			md["generation"] = float64(1)
		}
		if _, ok := md["creationTimestamp"]; !ok {
			md["creationTimestamp"] = "2026-01-01T00:00:00Z"
		}
		if ready {
			exMarkReady(o)
		}
		out[name] = o
	}
	return out
}

// exMarkReady gives an object the status of a ready object of its kind.
func exMarkReady(o map[string]any) {
	switch o["kind"] {
	case "Namespace":
		o["status"] = map[string]any{"phase": "Active"}
	case "Deployment":
		spec, _ := o["spec"].(map[string]any)
		replicas, ok := spec["replicas"].(float64)
		if !ok {
			replicas = 1
		}
		o["status"] = map[string]any{
			"observedGeneration": float64(1), "replicas": replicas, "updatedReplicas": replicas,
			"readyReplicas": replicas, "availableReplicas": replicas,
			"conditions": []any{map[string]any{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}},
		}
	case "Service":
		requests.EnsureMap(o, "spec")["clusterIP"] = "10.96.0.10"
	case "HTTPRoute", "GRPCRoute":
		spec, _ := o["spec"].(map[string]any)
		if parents, _ := spec["parentRefs"].([]any); len(parents) > 0 {
			o["status"] = map[string]any{"parents": []any{map[string]any{
				"parentRef": parents[0], "controllerName": "gateway.example.com/controller",
				"conditions": []any{map[string]any{"type": "Accepted", "status": "True", "reason": "Accepted"}},
			}}}
		}
	}
}

// exAsMap is a proto message as a JSON map.
func exAsMap(t *testing.T, m proto.Message) map[string]any {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
