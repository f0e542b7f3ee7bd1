// Command schemas writes the schema set that `crossplane beta validate` needs
// to run fully offline:
//
//	DIR/cache/xpkg.crossplane.io/crossplane/crossplane@<version>/package.yaml
//	    Crossplane's own CRDs (cluster/crds/*.yaml of the pinned module). The
//	    CLI looks here for the built-in schemas of the Crossplane image it would
//	    otherwise download.
//	DIR/kubernetes/*.yaml
//	    CRD-shaped schemas for core Kubernetes kinds, converted from the
//	    OpenAPI v3 documents of the pinned k8s.io/kubernetes module.
//	DIR/third-party/*.yaml
//	    Upstream CRDs copied verbatim from pinned modules.
//
// Every input is an exact module version fetched with `go mod download`, so
// the output is reproducible and needs only the Go module proxy (or a warm
// module cache).
//
// Usage: go run . -out DIR
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Module is an exact module version.
type Module struct {
	Path, Version string
}

func (m Module) String() string { return m.Path + "@" + m.Version }

// The pinned inputs. Changing one changes this file, which changes the stamp
// prepare.sh keys its output on.
var (
	crossplaneModule = Module{"github.com/crossplane/crossplane/v2", "v2.2.1"}
	kubernetesModule = Module{"k8s.io/kubernetes", "v1.35.4"}
)

// GVK names one Kubernetes kind.
type GVK struct {
	Group, Version, Kind string
}

func (g GVK) apiVersion() string {
	if g.Group == "" {
		return g.Version
	}
	return g.Group + "/" + g.Version
}

// KubernetesKinds are the built-in kinds we compose. Add a line to support
// another kind: its schema is looked up in the matching OpenAPI v3 document.
var KubernetesKinds = []GVK{
	{"", "v1", "Namespace"},
	{"", "v1", "ResourceQuota"},
	{"", "v1", "LimitRange"},
	{"", "v1", "Service"},
	{"", "v1", "ConfigMap"},
	{"", "v1", "Secret"},
	{"", "v1", "ServiceAccount"},
	{"apps", "v1", "Deployment"},
	{"networking.k8s.io", "v1", "NetworkPolicy"},
	{"rbac.authorization.k8s.io", "v1", "RoleBinding"},
	{"policy", "v1", "PodDisruptionBudget"},
	{"autoscaling", "v2", "HorizontalPodAutoscaler"},
	{"resource.k8s.io", "v1", "ResourceClaimTemplate"},
}

// ThirdPartyCRD is a CRD file inside a module.
type ThirdPartyCRD struct {
	Module Module
	File   string
}

// ThirdPartyCRDs are copied verbatim.
var ThirdPartyCRDs = []ThirdPartyCRD{
	{Module{"github.com/prometheus-operator/prometheus-operator", "v0.85.0"}, "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"},
	{Module{"github.com/prometheus-operator/prometheus-operator", "v0.85.0"}, "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml"},
	{Module{"github.com/prometheus-operator/prometheus-operator", "v0.85.0"}, "example/prometheus-operator-crd/monitoring.coreos.com_alertmanagerconfigs.yaml"},
	{Module{"sigs.k8s.io/gateway-api", "v1.4.1"}, "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml"},
	{Module{"sigs.k8s.io/gateway-api", "v1.4.1"}, "config/crd/standard/gateway.networking.k8s.io_grpcroutes.yaml"},
	// v2.20 is KEDA's first release supporting Kubernetes 1.35; only its
	// CRD is read (fn/compose/keda holds our types).
	{Module{"github.com/kedacore/keda/v2", "v2.20.1"}, "config/crd/bases/keda.sh_scaledobjects.yaml"},
	{Module{"github.com/kedacore/keda/v2", "v2.20.1"}, "config/crd/bases/keda.sh_clustertriggerauthentications.yaml"},
}

// maxDepth bounds $ref expansion. The kinds above nest about 12 levels deep;
// a recursive type (such as JSONSchemaProps) would be cut off here and left
// open with x-kubernetes-preserve-unknown-fields.
const maxDepth = 32

func main() {
	out := flag.String("out", "", "output directory (required)")
	goBin := flag.String("go", "go", "go command used for `go mod download`")
	verbose := flag.Bool("v", false, "list every file written")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: schemas -out DIR")
		os.Exit(2)
	}
	if err := Run(*out, *goBin, *verbose, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "schemas:", err)
		os.Exit(1)
	}
}

// Run writes the whole schema set into out, replacing what it wrote before.
// Notes (schema parts left open or simplified) always go to log.
func Run(out, goBin string, verbose bool, log io.Writer) error {
	mods := []Module{crossplaneModule, kubernetesModule}
	for _, t := range ThirdPartyCRDs {
		if !slices.Contains(mods, t.Module) {
			mods = append(mods, t.Module)
		}
	}
	dirs, err := download(goBin, mods)
	if err != nil {
		return err
	}

	files := map[string][]byte{} // relative path -> content

	// a. Crossplane's built-in CRDs where the CLI's package cache expects them.
	// The CLI derives the directory from the image reference
	// (xpkg.crossplane.io/crossplane/crossplane:<version>, ':' replaced by '@')
	// and loads every YAML file in it.
	pkg, err := crossplaneCRDs(dirs[crossplaneModule])
	if err != nil {
		return err
	}
	files[filepath.Join("cache", "xpkg.crossplane.io", "crossplane", "crossplane@"+crossplaneModule.Version, "package.yaml")] = pkg

	// b. Core Kubernetes kinds.
	specDir := filepath.Join(dirs[kubernetesModule], "api", "openapi-spec", "v3")
	docs := map[string]*openAPIDoc{}
	for _, g := range KubernetesKinds {
		file := openAPIFile(g)
		doc, ok := docs[file]
		if !ok {
			if doc, err = loadOpenAPI(filepath.Join(specDir, file)); err != nil {
				return err
			}
			docs[file] = doc
		}
		crd, notes, err := kindCRD(doc, g, kubernetesModule.String()+" api/openapi-spec/v3/"+file)
		if err != nil {
			return fmt.Errorf("%s %s: %w", g.apiVersion(), g.Kind, err)
		}
		b, err := yaml.Marshal(crd)
		if err != nil {
			return err
		}
		name := strings.ToLower(strings.NewReplacer(".", "_", "/", "_").Replace(g.apiVersion()) + "_" + g.Kind)
		if g.Group == "" {
			name = "core_" + name
		}
		files[filepath.Join("kubernetes", name+".yaml")] = append([]byte(header(kubernetesModule.String()+" api/openapi-spec/v3/"+file)), b...)
		for _, n := range notes {
			fmt.Fprintf(log, "schemas: note: %s %s: %s\n", g.apiVersion(), g.Kind, n)
		}
	}

	// c. Third-party CRDs, verbatim.
	for _, t := range ThirdPartyCRDs {
		b, err := os.ReadFile(filepath.Join(dirs[t.Module], filepath.FromSlash(t.File)))
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("module %s does not contain %s", t.Module, t.File)
		}
		if err != nil {
			return err
		}
		if err := checkCRDs(b); err != nil {
			return fmt.Errorf("%s in %s: %w", t.File, t.Module, err)
		}
		files[filepath.Join("third-party", filepath.Base(t.File))] = append([]byte(header(t.Module.String()+" "+t.File)), b...)
	}

	// Replace the three trees we own; leave anything else in out alone.
	for _, sub := range []string{"cache", "kubernetes", "third-party"} {
		if err := os.RemoveAll(filepath.Join(out, sub)); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(out, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return err
		}
		if verbose {
			fmt.Fprintf(log, "schemas: wrote %s (%d bytes)\n", p, len(files[n]))
		}
	}
	fmt.Fprintf(log, "schemas: wrote %d files into %s\n", len(names), out)
	return nil
}

func header(source string) string {
	return "# Generated by test/validate/schemas from " + source + ". DO NOT EDIT.\n"
}

// download fetches exact module versions and returns their directories.
func download(goBin string, mods []Module) (map[Module]string, error) {
	// Run outside any module or workspace so the caller's go.mod is untouched.
	tmp, err := os.MkdirTemp("", "schemas-download-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	args := []string{"mod", "download", "-json"}
	for _, m := range mods {
		args = append(args, m.String())
	}
	cmd := exec.Command(goBin, args...)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	dirs := map[Module]string{}
	var problems []string
	dec := json.NewDecoder(&stdout)
	for {
		var r struct{ Path, Version, Dir, Error string }
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go %s: cannot parse output: %w", strings.Join(args, " "), err)
		}
		if r.Error != "" {
			problems = append(problems, r.Error)
			continue
		}
		dirs[Module{r.Path, r.Version}] = r.Dir
	}
	for _, m := range mods {
		if dirs[m] == "" && len(problems) == 0 {
			problems = append(problems, "no directory reported for "+m.String())
		}
	}
	if len(problems) > 0 || runErr != nil {
		return nil, fmt.Errorf("go %s: %v %s %s", strings.Join(args, " "), runErr, strings.Join(problems, "; "), strings.TrimSpace(stderr.String()))
	}
	return dirs, nil
}

func crossplaneCRDs(moduleDir string) ([]byte, error) {
	paths, err := filepath.Glob(filepath.Join(moduleDir, "cluster", "crds", "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no CRDs in %s/cluster/crds", moduleDir)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	buf.WriteString(header(crossplaneModule.String() + " cluster/crds/*.yaml"))
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if err := checkCRDs(b); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(bytes.TrimSpace(b))
		buf.WriteString("\n")
	}
	return buf.Bytes(), nil
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// checkCRDs makes sure every document in a YAML stream is a CRD.
func checkCRDs(b []byte) error {
	n := 0
	for _, d := range docSeparator.Split(string(b), -1) {
		var obj struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
			return err
		}
		if obj.Kind == "" && obj.APIVersion == "" {
			continue // empty document or comments only
		}
		if obj.APIVersion != "apiextensions.k8s.io/v1" || obj.Kind != "CustomResourceDefinition" {
			return fmt.Errorf("not a CustomResourceDefinition: %s %s", obj.APIVersion, obj.Kind)
		}
		n++
	}
	if n == 0 {
		return errors.New("no CustomResourceDefinition found")
	}
	return nil
}

// ---- Kubernetes OpenAPI v3 -> CRD --------------------------------------------

type openAPIDoc struct {
	Paths      map[string]map[string]any `json:"paths"`
	Components struct {
		Schemas map[string]map[string]any `json:"schemas"`
	} `json:"components"`
}

func openAPIFile(g GVK) string {
	if g.Group == "" {
		return "api__" + g.Version + "_openapi.json"
	}
	return "apis__" + g.Group + "__" + g.Version + "_openapi.json"
}

func loadOpenAPI(path string) (*openAPIDoc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	doc := &openAPIDoc{}
	if err := dec.Decode(doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc, nil
}

func gvkOf(v any) []GVK {
	var out []GVK
	list, _ := v.([]any)
	if m, ok := v.(map[string]any); ok {
		list = []any{m}
	}
	for _, e := range list {
		m, _ := e.(map[string]any)
		g, _ := m["group"].(string)
		ver, _ := m["version"].(string)
		k, _ := m["kind"].(string)
		out = append(out, GVK{g, ver, k})
	}
	return out
}

// collectionPath matches the path that creates objects of a kind:
// /api/v1/namespaces/{namespace}/services, /apis/apps/v1/namespaces/{namespace}/deployments,
// /api/v1/namespaces.
var collectionPath = regexp.MustCompile(`^/apis?(?:/[^/{}]+)?/[^/{}]+(/namespaces/\{namespace\})?/([^/{}]+)$`)

// resourceNames finds the plural and the scope of a kind from the document's
// paths: the path whose POST creates it.
func resourceNames(doc *openAPIDoc, g GVK) (plural string, namespaced bool, err error) {
	var found []string
	for p, ops := range doc.Paths {
		post, _ := ops["post"].(map[string]any)
		if post == nil || post["x-kubernetes-action"] != "post" || !slices.Contains(gvkOf(post["x-kubernetes-group-version-kind"]), g) {
			continue
		}
		m := collectionPath.FindStringSubmatch(p)
		if m == nil {
			continue
		}
		found = append(found, p)
		plural, namespaced = m[2], m[1] != ""
	}
	if len(found) != 1 {
		return "", false, fmt.Errorf("want exactly one collection path creating the kind, found %v", found)
	}
	return plural, namespaced, nil
}

func kindCRD(doc *openAPIDoc, g GVK, source string) (map[string]any, []string, error) {
	var schemaName string
	for name, s := range doc.Components.Schemas {
		if slices.Contains(gvkOf(s["x-kubernetes-group-version-kind"]), g) {
			if schemaName != "" {
				return nil, nil, fmt.Errorf("several schemas declare the kind: %s, %s", schemaName, name)
			}
			schemaName = name
		}
	}
	if schemaName == "" {
		return nil, nil, errors.New("no schema declares the kind")
	}
	plural, namespaced, err := resourceNames(doc, g)
	if err != nil {
		return nil, nil, err
	}

	c := &converter{schemas: doc.Components.Schemas}
	root, err := c.convert(map[string]any{"$ref": refPrefix + schemaName}, "", 0, nil)
	if err != nil {
		return nil, nil, err
	}
	c.finish(root, "")

	// The root of a CRD schema: metadata may only be `type: object` (the API
	// server validates ObjectMeta itself), nothing at the root is nullable.
	props, _ := root["properties"].(map[string]any)
	if props == nil {
		return nil, nil, errors.New("kind schema has no properties")
	}
	props["apiVersion"] = map[string]any{"type": "string"}
	props["kind"] = map[string]any{"type": "string"}
	props["metadata"] = map[string]any{"type": "object"}
	for _, p := range props {
		delete(p.(map[string]any), "nullable")
	}
	root["type"] = "object"

	name := plural
	if g.Group != "" {
		name += "." + g.Group
	}
	scope := "Cluster"
	if namespaced {
		scope = "Namespaced"
	}
	crd := map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata": map[string]any{
			"name": name,
			"annotations": map[string]any{
				"validate.kalypso.io/source": source + " #/components/schemas/" + schemaName,
			},
		},
		"spec": map[string]any{
			"group": g.Group,
			"names": map[string]any{
				"kind":     g.Kind,
				"listKind": g.Kind + "List",
				"plural":   plural,
				"singular": strings.ToLower(g.Kind),
			},
			"scope": scope,
			"versions": []any{map[string]any{
				"name":    g.Version,
				"served":  true,
				"storage": true,
				"schema":  map[string]any{"openAPIV3Schema": root},
			}},
		},
	}
	return crd, c.notes, nil
}

const refPrefix = "#/components/schemas/"

// Schemas replaced wholesale: they are not expressible as plain JSON schema
// types, or they are free-form.
func special(name string) (map[string]any, bool) {
	switch name {
	case "io.k8s.apimachinery.pkg.api.resource.Quantity":
		s := intOrString()
		// The same pattern controller-gen emits for resource.Quantity.
		s["pattern"] = `^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$`
		return s, true
	case "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
		return intOrString(), true
	case "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
		"io.k8s.apimachinery.pkg.runtime.RawExtension",
		"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON":
		return map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}, true
	}
	return nil, false
}

func intOrString() map[string]any {
	return map[string]any{
		"x-kubernetes-int-or-string": true,
		"anyOf":                      []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}},
	}
}

// Formats the CRD validator understands (others would only be dropped by
// the API server).
var keptFormats = map[string]bool{
	"int32": true, "int64": true, "float": true, "double": true, "byte": true,
	"date": true, "date-time": true, "duration": true,
}

// Value validations and structural extensions carried over unchanged.
var keptKeys = []string{
	"enum", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
	"minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "multipleOf",
	"x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
	"x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource", "x-kubernetes-validations",
}

// Keys dropped on purpose: documentation, defaults (see finish), client-side
// patch hints and unions, GVK markers, uniqueItems (forbidden in CRDs).
var droppedKeys = map[string]bool{
	"description": true, "default": true, "x-kubernetes-patch-strategy": true, "x-kubernetes-patch-merge-key": true,
	"x-kubernetes-unions": true, "x-kubernetes-group-version-kind": true, "x-kubernetes-action": true,
	"uniqueItems": true, "readOnly": true, "example": true, "externalDocs": true,
}

type converter struct {
	schemas map[string]map[string]any
	notes   []string
}

// convert returns an inline, structural schema for node.
func (c *converter) convert(node map[string]any, path string, depth int, stack []string) (map[string]any, error) {
	at := path
	if at == "" {
		at = "<root>"
	}

	// allOf with a single $ref: the generator's way to attach a description or
	// default to a reference. Siblings override the referenced schema.
	if all, ok := node["allOf"]; ok {
		list, _ := all.([]any)
		if len(list) != 1 {
			return nil, fmt.Errorf("%s: allOf with %d entries is not supported", at, len(list))
		}
		inner, _ := list[0].(map[string]any)
		merged := map[string]any{}
		for k, v := range inner {
			merged[k] = v
		}
		for k, v := range node {
			if k != "allOf" {
				merged[k] = v
			}
		}
		return c.convert(merged, path, depth, stack)
	}

	if ref, ok := node["$ref"].(string); ok {
		name, ok := strings.CutPrefix(ref, refPrefix)
		if !ok {
			return nil, fmt.Errorf("%s: unsupported $ref %q", at, ref)
		}
		if s, ok := special(name); ok {
			return s, nil
		}
		target, ok := c.schemas[name]
		if !ok {
			return nil, fmt.Errorf("%s: unresolved $ref %q", at, ref)
		}
		if slices.Contains(stack, name) || depth >= maxDepth {
			// Recursive type: leave it open rather than expand forever.
			c.notes = append(c.notes, fmt.Sprintf("%s: %s not expanded (recursion or depth limit), left open", at, name))
			return map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}, nil
		}
		merged := map[string]any{}
		for k, v := range target {
			merged[k] = v
		}
		for k, v := range node {
			if k != "$ref" {
				merged[k] = v
			}
		}
		return c.convert(merged, path, depth+1, append(slices.Clone(stack), name))
	}

	if f, _ := node["format"].(string); f == "int-or-string" || node["x-kubernetes-int-or-string"] == true {
		return intOrString(), nil
	}
	if _, ok := node["oneOf"]; ok {
		return nil, fmt.Errorf("%s: oneOf is not supported here", at)
	}
	if _, ok := node["anyOf"]; ok {
		return nil, fmt.Errorf("%s: anyOf is not supported here", at)
	}

	out := map[string]any{}
	for k, v := range node {
		switch {
		case k == "type", k == "format", k == "properties", k == "additionalProperties", k == "items", k == "required":
			// handled below
		case slices.Contains(keptKeys, k):
			out[k] = v
		case droppedKeys[k]:
		default:
			return nil, fmt.Errorf("%s: unexpected schema keyword %q", at, k)
		}
	}
	// Scalar defaults are kept for now: finish needs them for list-map keys.
	if d, ok := node["default"]; ok {
		switch d.(type) {
		case map[string]any, []any, nil:
		default:
			out["default"] = d
		}
	}

	typ, _ := node["type"].(string)
	if f, ok := node["format"].(string); ok && keptFormats[f] {
		out["format"] = f
	}

	if props, ok := node["properties"].(map[string]any); ok {
		if typ == "" {
			typ = "object"
		}
		cp := map[string]any{}
		for k, v := range props {
			pm, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s.%s: property schema is not an object", at, k)
			}
			s, err := c.convert(pm, path+"."+k, depth, stack)
			if err != nil {
				return nil, err
			}
			// Native types accept null for any field (it decodes to the zero
			// value), so a null field is not an error.
			s["nullable"] = true
			cp[k] = s
		}
		out["properties"] = cp
	}
	if req, ok := node["required"].([]any); ok && len(req) > 0 {
		out["required"] = req
	}
	switch ap := node["additionalProperties"].(type) {
	case nil:
	case map[string]any:
		s, err := c.convert(ap, path+".*", depth, stack)
		if err != nil {
			return nil, err
		}
		out["additionalProperties"] = s
	case bool:
		if ap {
			out["x-kubernetes-preserve-unknown-fields"] = true
		}
	default:
		return nil, fmt.Errorf("%s: unexpected additionalProperties %v", at, ap)
	}
	if it, ok := node["items"].(map[string]any); ok {
		s, err := c.convert(it, path+"[]", depth, stack)
		if err != nil {
			return nil, err
		}
		out["items"] = s
	}

	switch {
	case typ != "":
		out["type"] = typ
	case out["x-kubernetes-preserve-unknown-fields"] == true:
	default:
		// An untyped schema accepts anything.
		out["x-kubernetes-preserve-unknown-fields"] = true
		c.notes = append(c.notes, at+": untyped schema, left open")
	}

	if typ == "object" && out["properties"] == nil && out["additionalProperties"] == nil && out["x-kubernetes-preserve-unknown-fields"] == nil {
		c.notes = append(c.notes, at+": object without properties (accepts only {})")
	}
	return out, nil
}

// finish makes the converted tree a valid structural CRD schema:
//   - markers only where their type allows them;
//   - x-kubernetes-list-type=map keys must be non-nullable and required or
//     defaulted (else the list is downgraded to atomic); items of map and set
//     lists are not nullable; set items of object type are atomic;
//   - every other default is removed. The CLI applies defaults before
//     validating, and the zero-value defaults of native types would hide a
//     missing required field.
func (c *converter) finish(s map[string]any, path string) {
	typ, _ := s["type"].(string)
	if typ != "array" {
		delete(s, "x-kubernetes-list-type")
		delete(s, "x-kubernetes-list-map-keys")
	}
	if typ != "object" {
		delete(s, "x-kubernetes-map-type")
	}
	delete(s, "default")

	var keys []string
	if items, ok := s["items"].(map[string]any); ok {
		switch s["x-kubernetes-list-type"] {
		case "map":
			keys = listMapKeys(s, items)
			if keys == nil {
				c.notes = append(c.notes, fmt.Sprintf("%s: list-map keys %v unusable in a CRD, list made atomic", path, s["x-kubernetes-list-map-keys"]))
				s["x-kubernetes-list-type"] = "atomic"
				delete(s, "x-kubernetes-list-map-keys")
			}
			delete(items, "nullable")
		case "set":
			if it, _ := items["type"].(string); it == "object" {
				items["x-kubernetes-map-type"] = "atomic"
			} else if it == "array" {
				items["x-kubernetes-list-type"] = "atomic"
			}
			delete(items, "nullable")
		}
		c.finish(items, path+"[]")
		for _, k := range keys {
			if p, ok := items["properties"].(map[string]any)[k].(map[string]any); ok {
				delete(p, "nullable")
				if slices.Contains(toStrings(items["required"]), k) {
					delete(p, "default")
				} else {
					p["default"] = s["x-kalypso-key-default-"+k]
				}
			}
			delete(s, "x-kalypso-key-default-"+k)
		}
	}
	if props, ok := s["properties"].(map[string]any); ok {
		for k, p := range props {
			c.finish(p.(map[string]any), path+"."+k)
		}
	}
	if ap, ok := s["additionalProperties"].(map[string]any); ok {
		c.finish(ap, path+".*")
	}
}

// listMapKeys returns the keys of a list-type=map list if they are usable
// (scalar item properties that are required or have a default), else nil.
// Defaults of non-required keys are stashed on the list and restored after
// the items are finished.
func listMapKeys(list, items map[string]any) []string {
	keys := toStrings(list["x-kubernetes-list-map-keys"])
	props, _ := items["properties"].(map[string]any)
	if len(keys) == 0 || props == nil || items["type"] != "object" {
		return nil
	}
	required := toStrings(items["required"])
	defaults := map[string]any{}
	for _, k := range keys {
		p, ok := props[k].(map[string]any)
		if !ok || p["type"] == "object" || p["type"] == "array" {
			return nil
		}
		if !slices.Contains(required, k) {
			d, ok := p["default"]
			if !ok {
				return nil
			}
			defaults[k] = d
		}
	}
	for k, d := range defaults {
		list["x-kalypso-key-default-"+k] = d
	}
	return keys
}

func toStrings(v any) []string {
	var out []string
	switch l := v.(type) {
	case []any:
		for _, e := range l {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	case []string:
		out = l
	}
	return out
}
