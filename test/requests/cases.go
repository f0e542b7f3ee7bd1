package requests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Stage is the case of an example XR file in one of its stages
// (examples/<dir>/stages/<xr>/<stage>/).
func Stage(root, xrFile, stage string) (Case, error) {
	xr, err := readXR(root, xrFile)
	if err != nil {
		return Case{}, err
	}
	dir := filepath.Join(root, filepath.Dir(xrFile), "stages", strings.TrimSuffix(filepath.Base(xrFile), ".yaml"), stage)
	observed, required, err := ReadStage(dir)
	if err != nil {
		return Case{}, err
	}
	return Case{XR: xr, Composition: compositionOf(root, xr), Observed: observed, Pool: required}, nil
}

// FullObservabilityTritonServer is the add-sub-server example (python
// backend, logging, tracing, profiling, metrics with a ServiceMonitor)
// running: the request the load test sends.
func FullObservabilityTritonServer(root string) (Case, error) {
	return Stage(root, "examples/tritonservers/add-sub-server.yaml", "running")
}

// ProjectEnvs is the vision project scaled to n environments env-00…: each
// takes the spec of dev, stage and prod in turn, in its own namespace; an
// environment copied from one that admits traffic from another admits it
// from the environment before it. Every object is composed and observed
// ready; no namespace or application exists beside them.
func ProjectEnvs(root string, n int) (Case, error) {
	xr, err := readXR(root, "examples/projects/vision.yaml")
	if err != nil {
		return Case{}, err
	}
	spec := EnsureMap(xr, "spec")
	envs, _ := spec["environments"].(map[string]any)
	templates := []string{"dev", "stage", "prod"}
	for _, t := range templates {
		if _, ok := envs[t].(map[string]any); !ok {
			return Case{}, fmt.Errorf("examples/projects/vision.yaml has no environment %s", t)
		}
	}
	scaled := map[string]any{}
	for i := range n {
		name := fmt.Sprintf("env-%02d", i)
		e := DeepCopy(envs[templates[i%len(templates)]].(map[string]any))
		e["namespace"] = "vision-" + name
		if ni, ok := e["networkIsolation"].(map[string]any); ok {
			if _, ok := ni["allowFromEnvironments"]; ok {
				if i == 0 {
					delete(ni, "allowFromEnvironments")
				} else {
					ni["allowFromEnvironments"] = []any{fmt.Sprintf("env-%02d", i-1)}
				}
			}
		}
		scaled[name] = e
	}
	spec["environments"] = scaled
	return Case{XR: xr, Composition: compositionOf(root, xr), GenerateObserved: true}, nil
}

// ApplicationServers is the detector application (gateway on) with n
// servers referencing it, copied in turn from the two servers of its ready
// stage (default ports, custom ports), beside the stage's project, secret,
// route CRD and EnvironmentConfig. Its routes are composed and observed
// accepted.
func ApplicationServers(root string, n int) (Case, error) {
	c, err := Stage(root, "examples/applications/detector.yaml", "ready")
	if err != nil {
		return Case{}, err
	}
	var pool, servers []Object
	for _, o := range c.Pool {
		if o["kind"] == "KalypsoTritonServer" {
			servers = append(servers, o)
			continue
		}
		pool = append(pool, o)
	}
	if len(servers) == 0 {
		return Case{}, fmt.Errorf("the detector ready stage requires no KalypsoTritonServer to copy")
	}
	for i := range n {
		s := DeepCopy(servers[i%len(servers)])
		name := fmt.Sprintf("server-%02d", i)
		EnsureMap(s, "metadata")["name"] = name
		EnsureMap(s, "spec")["storageUri"] = "s3://vision-models/" + name
		pool = append(pool, s)
	}
	return Case{XR: c.XR, Composition: c.Composition, GenerateObserved: true, Pool: pool}, nil
}

// TritonServerScaled is the add-sub-server example with n tritonserver
// parameters (log-verbose, then backend-config settings) and n tolerations
// (the XRD allows at most 32 tolerations: 50 is beyond what the API server
// admits and only probes the growth). Its objects are composed and observed
// ready, beside the running stage's application and ServiceMonitor CRD.
func TritonServerScaled(root string, n int) (Case, error) {
	c, err := FullObservabilityTritonServer(root)
	if err != nil {
		return Case{}, err
	}
	spec := EnsureMap(c.XR, "spec")
	tc := EnsureMap(spec, "tritonConfig")
	params := []any{map[string]any{"name": "log-verbose", "value": "1"}}
	for i := 1; i < n; i++ {
		params = append(params, map[string]any{"name": "backend-config", "value": fmt.Sprintf("python,setting-%02d=%d", i, i)})
	}
	tc["parameters"] = params
	tols := make([]any, 0, n)
	for i := range n {
		tols = append(tols, map[string]any{"key": fmt.Sprintf("pool.example.com/tier-%02d", i), "operator": "Exists", "effect": "NoSchedule"})
	}
	EnsureMap(spec, "scheduling")["tolerations"] = tols
	return Case{XR: c.XR, Composition: c.Composition, GenerateObserved: true, Pool: c.Pool}, nil
}

func readXR(root, file string) (Object, error) {
	objs, err := ReadObjects(filepath.Join(root, file))
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("%s: want one object, got %d", file, len(objs))
	}
	return objs[0], nil
}

// compositionOf is the Composition of an XR: apis/<kind plural>/, or
// apis/claims/<kind plural>/ for the claim flavour's XKalypso… kinds.
func compositionOf(root string, xr Object) string {
	kind, _ := xr["kind"].(string)
	dir := filepath.Join(root, "apis")
	if strings.HasPrefix(kind, "X") {
		dir = filepath.Join(dir, "claims")
	}
	return filepath.Join(dir, strings.ToLower(kind)+"s", "composition.yaml")
}

// Example is an example XR file at one of its stages.
type Example struct {
	// Name is <dir>/<xr>/<stage>, below examples/.
	Name string
	Case
}

// Examples are what `make render` renders: every example XR of a
// serving.kalypso.io kind (examples/<dir>/<xr>.yaml) at its stage
// "initial" and at every stage folder examples/<dir>/stages/<xr>/<stage>/,
// but those expecting an error; a stage holds what its folder holds, if
// anything.
func Examples(root string) ([]Example, error) {
	examples := filepath.Join(root, "examples")
	var xrFiles []string
	err := filepath.WalkDir(examples, func(path string, d os.DirEntry, err error) error {
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
		return nil, err
	}
	slices.Sort(xrFiles)
	var out []Example
	for _, path := range xrFiles {
		objs, err := ReadObjects(path)
		if err != nil {
			return nil, err
		}
		if len(objs) == 0 || !strings.HasPrefix(fmt.Sprint(objs[0]["apiVersion"]), "serving.kalypso.io/") {
			continue
		}
		rel, err := filepath.Rel(examples, strings.TrimSuffix(path, ".yaml"))
		if err != nil {
			return nil, err
		}
		stagesDir := filepath.Join(filepath.Dir(path), "stages", filepath.Base(rel))
		stages := []string{"initial"}
		if entries, err := os.ReadDir(stagesDir); err == nil {
			for _, e := range entries {
				if e.IsDir() && e.Name() != "initial" {
					stages = append(stages, e.Name())
				}
			}
		}
		slices.Sort(stages)
		for _, st := range stages {
			dir := filepath.Join(stagesDir, st)
			if _, err := os.Stat(filepath.Join(dir, "expect-error")); err == nil {
				continue
			}
			observed, pool, err := readStage(dir)
			if err != nil {
				return nil, err
			}
			out = append(out, Example{
				Name: filepath.ToSlash(filepath.Join(rel, st)),
				Case: Case{XR: DeepCopy(objs[0]), Composition: compositionOf(root, objs[0]), Observed: observed, Pool: pool},
			})
		}
	}
	return out, nil
}
