package fn_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/kalypsoserving/function-kalypso/fn"
)

// This file holds the determinism properties of RunFunction over every
// example at every stage, and the loader of those examples (also used by
// audit_test.go).
//
// An example case is what `make render` renders: an XR file
// examples/<dir>/<xr>.yaml at its stage "initial" and at every stage folder
// examples/<dir>/stages/<xr>/<stage>/ with observed composed objects
// (observed.yaml or observed/) and the objects that exist in the cluster
// (required.yaml or required/), from which the function's requirements are
// answered the way Crossplane answers them.

// exCase is one example at one stage.
type exCase struct {
	name     string // <dir>/<xr>/<stage>
	xr       map[string]any
	input    *structpb.Struct // the Composition's pipeline input
	observed map[string]map[string]any
	pool     []map[string]any // what exists in the cluster
}

const exResourceNameAnnotation = "crossplane.io/composition-resource-name"

// exCases loads every example at every stage.
func exCases(t *testing.T) []exCase {
	t.Helper()
	root := filepath.Join("..", "examples")
	var xrFiles []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "stages" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".yaml") {
			xrFiles = append(xrFiles, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(xrFiles)
	var out []exCase
	for _, path := range xrFiles {
		objs := exReadObjects(t, path)
		if len(objs) == 0 || !strings.HasPrefix(fmt.Sprint(objs[0]["apiVersion"]), "serving.kalypso.io/") {
			continue
		}
		xr := objs[0]
		dir, base := filepath.Dir(path), strings.TrimSuffix(filepath.Base(path), ".yaml")
		stages := []string{"initial"}
		if entries, err := os.ReadDir(filepath.Join(dir, "stages", base)); err == nil {
			for _, e := range entries {
				if e.IsDir() && e.Name() != "initial" {
					stages = append(stages, e.Name())
				}
			}
		}
		slices.Sort(stages)
		in := exCompositionInput(t, fmt.Sprint(xr["kind"]))
		for _, st := range stages {
			sdir := filepath.Join(dir, "stages", base, st)
			if _, err := os.Stat(filepath.Join(sdir, "expect-error")); err == nil {
				continue
			}
			c := exCase{name: strings.TrimPrefix(filepath.ToSlash(filepath.Join(dir, base, st)), "../examples/"), xr: exDeepCopy(xr), input: in, observed: map[string]map[string]any{}}
			for _, n := range []string{"observed.yaml", "observed"} {
				for _, o := range exReadObjects(t, filepath.Join(sdir, n)) {
					name := exAnnotation(o, exResourceNameAnnotation)
					if name == "" {
						t.Fatalf("%s: an observed %v has no %s annotation", sdir, o["kind"], exResourceNameAnnotation)
					}
					c.observed[name] = o
				}
			}
			for _, n := range []string{"required.yaml", "required"} {
				c.pool = append(c.pool, exReadObjects(t, filepath.Join(sdir, n))...)
			}
			out = append(out, c)
		}
	}
	if len(out) < 20 {
		t.Fatalf("found only %d example cases", len(out))
	}
	return out
}

// exReadObjects reads every YAML document of a file, or of the *.yaml files
// of a directory (symbolic links followed); a missing path holds none.
func exReadObjects(t *testing.T, path string) []map[string]any {
	t.Helper()
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	files := []string{path}
	if fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			t.Fatal(err)
		}
		files = nil
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".yaml") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		slices.Sort(files)
	}
	var out []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f) //nolint:gosec // test fixtures.
		if err != nil {
			t.Fatal(err)
		}
		r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			j, err := yaml.YAMLToJSON(doc)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var o map[string]any
			if err := json.Unmarshal(j, &o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(o) > 0 {
				out = append(out, o)
			}
		}
	}
	return out
}

// exCompositionInput reads the pipeline input of the kind's Composition.
func exCompositionInput(t *testing.T, kind string) *structpb.Struct {
	t.Helper()
	path := filepath.Join("..", "apis", strings.ToLower(kind)+"s", "composition.yaml")
	if strings.HasPrefix(kind, "X") {
		path = filepath.Join("..", "apis", "claims", strings.ToLower(kind)+"s", "composition.yaml")
	}
	objs := exReadObjects(t, path)
	if len(objs) == 0 {
		t.Fatalf("no Composition for %s at %s", kind, path)
	}
	spec, _ := objs[0]["spec"].(map[string]any)
	pipeline, _ := spec["pipeline"].([]any)
	if len(pipeline) == 0 {
		t.Fatalf("%s: no pipeline", path)
	}
	in, _ := pipeline[0].(map[string]any)["input"].(map[string]any)
	s, err := structpb.NewStruct(in)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func exAnnotation(o map[string]any, key string) string {
	md, _ := o["metadata"].(map[string]any)
	a, _ := md["annotations"].(map[string]any)
	s, _ := a[key].(string)
	return s
}

func exDeepCopy(o map[string]any) map[string]any {
	b, err := json.Marshal(o)
	if err != nil {
		panic(err) // decoded from JSON.
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func exStruct(t *testing.T, o map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// exRequest builds a request as Crossplane sends it: an empty desired state,
// the observed composite and composed objects, and the required resources
// (nil on the first call of a reconcile).
func exRequest(t *testing.T, c exCase, required map[string]*fnv1.Resources) *fnv1.RunFunctionRequest {
	t.Helper()
	req := &fnv1.RunFunctionRequest{
		Meta:              &fnv1.RequestMeta{Tag: "example"},
		Observed:          &fnv1.State{Composite: &fnv1.Resource{Resource: exStruct(t, c.xr)}, Resources: map[string]*fnv1.Resource{}},
		Desired:           &fnv1.State{},
		Input:             proto.Clone(c.input).(*structpb.Struct),
		RequiredResources: required,
	}
	for name, o := range c.observed {
		req.Observed.Resources[name] = &fnv1.Resource{Resource: exStruct(t, o)}
	}
	return req
}

// exConverge calls the function as Crossplane's function runner does: until
// the requirements it returns stop changing, answering them from the pool.
// It returns the last request (every requirement answered) and its
// response; a Fatal fails the test.
func exConverge(t *testing.T, f *fn.Function, c exCase) (*fnv1.RunFunctionRequest, *fnv1.RunFunctionResponse) {
	t.Helper()
	var required map[string]*fnv1.Resources
	var last *fnv1.Requirements
	for range 8 {
		req := exRequest(t, c, required)
		rsp, err := f.RunFunction(context.Background(), proto.Clone(req).(*fnv1.RunFunctionRequest))
		if err != nil {
			t.Fatalf("RunFunction returned an error: %v", err)
		}
		for _, r := range rsp.GetResults() {
			if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
				t.Fatalf("the function refused the example: %s", r.GetMessage())
			}
		}
		if required != nil && proto.Equal(rsp.GetRequirements(), last) {
			return req, rsp
		}
		last = rsp.GetRequirements()
		required = exResolve(t, last.GetResources(), c.pool)
	}
	t.Fatal("the requirements did not settle")
	return nil, nil
}

// exResolve answers requirements from the objects that exist: by
// apiVersion, kind, namespace and name or labels, in pool order.
func exResolve(t *testing.T, sels map[string]*fnv1.ResourceSelector, pool []map[string]any) map[string]*fnv1.Resources {
	t.Helper()
	out := make(map[string]*fnv1.Resources, len(sels))
	for name, sel := range sels {
		rs := &fnv1.Resources{}
		for _, o := range pool {
			if exMatches(sel, o) {
				rs.Items = append(rs.Items, &fnv1.Resource{Resource: exStruct(t, o)})
			}
		}
		out[name] = rs
	}
	return out
}

func exMatches(sel *fnv1.ResourceSelector, o map[string]any) bool {
	if o["apiVersion"] != sel.GetApiVersion() || o["kind"] != sel.GetKind() {
		return false
	}
	md, _ := o["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	if sel.Namespace != nil && ns != sel.GetNamespace() {
		return false
	}
	switch m := sel.GetMatch().(type) {
	case *fnv1.ResourceSelector_MatchName:
		return md["name"] == m.MatchName
	case *fnv1.ResourceSelector_MatchLabels:
		labels, _ := md["labels"].(map[string]any)
		for k, v := range m.MatchLabels.GetLabels() {
			if labels[k] != v {
				return false
			}
		}
		return true
	}
	return false
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
	out := exDeepCopy(xr)
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
			o = exDeepCopy(p)
		}
		exMerge(o, exDeepCopy(r.GetResource().AsMap()))
		md := exEnsureMap(o, "metadata")
		exEnsureMap(md, "annotations")[exResourceNameAnnotation] = name
		exEnsureMap(md, "labels")["crossplane.io/composite"] = xmd["name"]
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

// exMerge writes src over dst: maps merge key by key, anything else
// replaces.
func exMerge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				exMerge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
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
		exEnsureMap(o, "spec")["clusterIP"] = "10.96.0.10"
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

func exEnsureMap(o map[string]any, key string) map[string]any {
	m, ok := o[key].(map[string]any)
	if !ok {
		m = map[string]any{}
		o[key] = m
	}
	return m
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
