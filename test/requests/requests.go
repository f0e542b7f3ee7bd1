// Package requests builds RunFunctionRequests the way Crossplane sends them
// in the steady state, from the examples: the XR file with the status and
// bookkeeping Crossplane keeps on it, the stage's observed composed objects
// keyed by their composition-resource-name annotation, and the required
// resources the function asks for, resolved from the stage's required files
// (composetest.Converge: by apiVersion, kind, namespace and name or labels;
// a requirement nothing matches resolves to an empty list, as Crossplane's
// fetcher does).
//
// The benchmarks in fn/bench_test.go and the load client in test/load use
// it, so both measure the same requests; fn's determinism and audit tests
// read every example stage with Examples.
package requests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"google.golang.org/protobuf/types/known/structpb"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/kalypsoserving/function-kalypso/fn"
	"github.com/kalypsoserving/function-kalypso/fn/compose/composetest"
)

// Object is one decoded YAML document.
type Object = map[string]any

// ResourceNameAnnotation names a composed object in its composite's
// pipeline.
const ResourceNameAnnotation = "crossplane.io/composition-resource-name"

// Root returns the repository root: the first directory at or above the
// working directory holding this module's go.mod.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 32 {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/kalypsoserving/function-kalypso\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("cannot find the repository root (go.mod of github.com/kalypsoserving/function-kalypso) above the working directory")
}

// ReadObjects reads every YAML document of a file, or of the *.yaml files of
// a directory in name order (symbolic links are followed). A missing path
// reads as no objects.
func ReadObjects(path string) ([]Object, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		files = files[:0]
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".yaml") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
	}
	var out []Object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			j, err := yaml.YAMLToJSON(doc)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			var o Object
			if err := json.Unmarshal(j, &o); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if len(o) > 0 {
				out = append(out, o)
			}
		}
	}
	return out, nil
}

// ReadStage reads a stage's observed and required objects
// (observed.yaml or observed/, required.yaml or required/).
func ReadStage(dir string) (observed, required []Object, err error) {
	observed, required, err = readStage(dir)
	if err != nil {
		return nil, nil, err
	}
	if len(observed) == 0 && len(required) == 0 {
		return nil, nil, fmt.Errorf("stage %s holds no observed or required objects", dir)
	}
	return observed, required, nil
}

// readStage is ReadStage that admits an empty or missing stage.
func readStage(dir string) (observed, required []Object, err error) {
	for _, n := range []string{"observed.yaml", "observed"} {
		o, err := ReadObjects(filepath.Join(dir, n))
		if err != nil {
			return nil, nil, err
		}
		observed = append(observed, o...)
	}
	for _, n := range []string{"required.yaml", "required"} {
		o, err := ReadObjects(filepath.Join(dir, n))
		if err != nil {
			return nil, nil, err
		}
		required = append(required, o...)
	}
	return observed, required, nil
}

// Case is one request to build.
type Case struct {
	// XR is the composite as written by its author (no status).
	XR Object
	// Composition is the path of the Composition whose pipeline input the
	// request carries.
	Composition string
	// Observed composed objects; with GenerateObserved they are rendered
	// from the XR and marked ready the way test/render/observe does.
	Observed         []Object
	GenerateObserved bool
	// Pool holds the objects that exist in the cluster, for the
	// requirements.
	Pool []Object
}

// Built is a steady-state request and the response the function gives it.
type Built struct {
	Request  *fnv1.RunFunctionRequest
	Response *fnv1.RunFunctionResponse
	// First is the first call of the same reconcile: Crossplane calls
	// without required resources, learns the requirements, then calls
	// again with them (Request).
	First *fnv1.RunFunctionRequest
}

// Build builds the steady-state request of a case: observed state, then the
// status the function wrote fed back onto the observed XR, then the
// requirements resolved until they are stable, as Crossplane iterates them.
func Build(c Case) (*Built, error) {
	in, err := CompositionInput(c.Composition)
	if err != nil {
		return nil, err
	}
	xr := DeepCopy(c.XR)
	f := fn.New(logging.NewNopLogger())
	observed := c.Observed
	if c.GenerateObserved {
		// Reconcile until the composed set stops growing: a kind may
		// compose in steps (e.g. what lives in a namespace once the
		// namespace is there).
		var prev map[string]Object
		for i := 0; ; i++ {
			if i == 8 {
				return nil, errors.New("the composed objects did not settle in 8 reconciles")
			}
			_, rsp, err := converge(f, xr, in, prev, c.Pool)
			if err != nil {
				return nil, fmt.Errorf("render %d: %w", i+1, err)
			}
			observed = observe(xr, rsp.GetDesired().GetResources())
			if len(observed) == len(prev) {
				break
			}
			if prev, err = ByName(observed); err != nil {
				return nil, err
			}
		}
	}
	obs, err := ByName(observed)
	if err != nil {
		return nil, err
	}
	decorate(xr, c.Composition, obs)
	// Two rounds: the first writes the status, the second sees it.
	var req *fnv1.RunFunctionRequest
	var rsp *fnv1.RunFunctionResponse
	for range 2 {
		req, rsp, err = converge(f, xr, in, obs, c.Pool)
		if err != nil {
			return nil, err
		}
		feedBack(xr, rsp)
	}
	req, rsp, err = converge(f, xr, in, obs, c.Pool)
	if err != nil {
		return nil, err
	}
	if len(rsp.GetDesired().GetResources()) == 0 {
		return nil, errors.New("the steady-state response composes nothing")
	}
	first, err := composetest.NewRequest(xr, in, obs, nil, nil)
	if err != nil {
		return nil, err
	}
	return &Built{Request: req, Response: rsp, First: first}, nil
}

// converge is composetest.Converge refusing a Fatal result.
func converge(f *fn.Function, xr Object, in *structpb.Struct, obs map[string]Object, pool []Object) (*fnv1.RunFunctionRequest, *fnv1.RunFunctionResponse, error) {
	req, rsp, err := composetest.Converge(f, xr, in, obs, pool, nil)
	if err != nil {
		return nil, nil, err
	}
	if r := composetest.Fatal(rsp); r != nil {
		return nil, nil, fmt.Errorf("the function refused the request: %s", r.GetMessage())
	}
	return req, rsp, nil
}

// observe turns desired composed objects into what the API server reports
// once they are ready, like test/render/observe: Crossplane's annotation,
// label and owner reference, and the status of a ready object.
func observe(xr Object, desired map[string]*fnv1.Resource) []Object {
	md, _ := xr["metadata"].(map[string]any)
	xrName, _ := md["name"].(string)
	names := make([]string, 0, len(desired))
	for n := range desired {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]Object, 0, len(names))
	for _, n := range names {
		o := desired[n].GetResource().AsMap()
		m := EnsureMap(o, "metadata")
		EnsureMap(m, "annotations")[ResourceNameAnnotation] = n
		EnsureMap(m, "labels")["crossplane.io/composite"] = xrName
		m["ownerReferences"] = []any{map[string]any{
			"apiVersion": xr["apiVersion"], "kind": xr["kind"], "name": xrName, "uid": "",
			"controller": true, "blockOwnerDeletion": true,
		}}
		switch o["kind"] {
		case "Namespace":
			o["status"] = map[string]any{"phase": "Active"}
		case "Deployment":
			spec, _ := o["spec"].(map[string]any)
			replicas, ok := spec["replicas"].(float64)
			if !ok {
				replicas = 1
			}
			m["generation"] = float64(1)
			o["status"] = map[string]any{
				"observedGeneration": float64(1), "replicas": replicas, "updatedReplicas": replicas,
				"readyReplicas": replicas, "availableReplicas": replicas,
				"conditions": []any{
					map[string]any{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
					map[string]any{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
				},
			}
		case "Service":
			EnsureMap(o, "spec")["clusterIP"] = "10.96.0.10"
		case "HTTPRoute", "GRPCRoute":
			spec, _ := o["spec"].(map[string]any)
			parents, _ := spec["parentRefs"].([]any)
			if len(parents) > 0 {
				o["status"] = map[string]any{"parents": []any{map[string]any{
					"parentRef": parents[0], "controllerName": "gateway.example.com/controller",
					"conditions": []any{map[string]any{"type": "Accepted", "status": "True", "reason": "Accepted",
						"lastTransitionTime": "2026-01-01T00:00:00Z", "message": "accepted"}},
				}}}
			}
		}
		out = append(out, o)
	}
	return out
}

// decorate adds what Crossplane keeps on an XR it reconciles: identity and
// bookkeeping metadata and spec.crossplane with the composition references
// and a reference to every composed object.
func decorate(xr Object, composition string, obs map[string]Object) {
	md := EnsureMap(xr, "metadata")
	name, _ := md["name"].(string)
	md["uid"] = "5f0c8a8e-3c1d-4d7e-9b8a-2f6e1d0c9b7a"
	md["generation"] = float64(1)
	md["resourceVersion"] = "184467"
	md["creationTimestamp"] = "2026-01-01T00:00:00Z"
	md["finalizers"] = []any{"composite.apiextensions.crossplane.io"}
	EnsureMap(md, "labels")["crossplane.io/composite"] = name
	compName := filepath.Base(filepath.Dir(composition))
	if objs, err := ReadObjects(composition); err == nil && len(objs) > 0 {
		if m, ok := objs[0]["metadata"].(map[string]any); ok {
			compName, _ = m["name"].(string)
		}
	}
	names := make([]string, 0, len(obs))
	for n := range obs {
		names = append(names, n)
	}
	slices.Sort(names)
	refs := make([]any, 0, len(names))
	for _, n := range names {
		o := obs[n]
		om, _ := o["metadata"].(map[string]any)
		ref := map[string]any{"apiVersion": o["apiVersion"], "kind": o["kind"], "name": om["name"]}
		if ns, ok := om["namespace"]; ok {
			ref["namespace"] = ns
		}
		refs = append(refs, ref)
	}
	EnsureMap(xr, "spec")["crossplane"] = map[string]any{
		"compositionRef":          map[string]any{"name": compName},
		"compositionRevisionRef":  map[string]any{"name": compName + "-3f8a1c2"},
		"compositionUpdatePolicy": "Automatic",
		"resourceRefs":            refs,
	}
}

// feedBack writes what Crossplane persists from a response onto the
// observed XR: the status the function set and its conditions, beside
// Crossplane's own Synced and Ready.
func feedBack(xr Object, rsp *fnv1.RunFunctionResponse) {
	status := map[string]any{}
	if s, ok := rsp.GetDesired().GetComposite().GetResource().AsMap()["status"].(map[string]any); ok {
		status = s
	}
	ready := "Creating"
	readyStatus := "False"
	if rsp.GetDesired().GetComposite().GetReady() == fnv1.Ready_READY_TRUE {
		ready, readyStatus = "Available", "True"
	}
	conds := []any{
		map[string]any{"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": float64(1)},
		map[string]any{"type": "Ready", "status": readyStatus, "reason": ready, "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": float64(1)},
	}
	for _, c := range rsp.GetConditions() {
		st := "Unknown"
		switch c.GetStatus() {
		case fnv1.Status_STATUS_CONDITION_TRUE:
			st = "True"
		case fnv1.Status_STATUS_CONDITION_FALSE:
			st = "False"
		}
		m := map[string]any{"type": c.GetType(), "status": st, "reason": c.GetReason(),
			"lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": float64(1)}
		if c.Message != nil {
			m["message"] = c.GetMessage()
		}
		conds = append(conds, m)
	}
	status["conditions"] = conds
	xr["status"] = status
}

// CompositionInput reads the pipeline input of a Composition's first step.
func CompositionInput(path string) (*structpb.Struct, error) {
	objs, err := ReadObjects(path)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%s: no Composition", path)
	}
	spec, _ := objs[0]["spec"].(map[string]any)
	pipeline, _ := spec["pipeline"].([]any)
	if len(pipeline) == 0 {
		return nil, fmt.Errorf("%s: no pipeline", path)
	}
	step, _ := pipeline[0].(map[string]any)
	in, _ := step["input"].(map[string]any)
	if in == nil {
		return nil, fmt.Errorf("%s: the first step has no input", path)
	}
	return structpb.NewStruct(in)
}

// EnsureMap returns o[key] as a map, setting an empty one if there is none.
func EnsureMap(o map[string]any, key string) map[string]any {
	m, ok := o[key].(map[string]any)
	if !ok {
		m = map[string]any{}
		o[key] = m
	}
	return m
}

// DeepCopy copies a JSON-shaped object.
func DeepCopy(o Object) Object {
	b, err := json.Marshal(o)
	if err != nil {
		panic(err) // decoded from JSON: always encodable.
	}
	var out Object
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// ByName keys observed objects by their composition-resource-name
// annotation, which each must have, once.
func ByName(objs []Object) (map[string]Object, error) {
	out := make(map[string]Object, len(objs))
	for _, o := range objs {
		md, _ := o["metadata"].(map[string]any)
		a, _ := md["annotations"].(map[string]any)
		name, _ := a[ResourceNameAnnotation].(string)
		if name == "" {
			return nil, fmt.Errorf("an observed %v %v has no %s annotation", o["kind"], md["name"], ResourceNameAnnotation)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("two observed objects have the %s annotation %s", ResourceNameAnnotation, name)
		}
		out[name] = o
	}
	return out, nil
}
