package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Names the crossplane CLI (internal/xpkg) uses inside a package.
const (
	xpkgAnnotationKey = "io.crossplane.xpkg"
	xpkgStreamFile    = "package.yaml"
	xpkgExamplesFile  = ".up/examples.yaml"
)

// inspectCmd describes image tarballs and .xpkg files. -short prints one line
// per file (file sha256, image digest, path) for comparing two builds. An
// argument a.xpkg,b.xpkg (one package per platform) also gets the digest of
// the image index `crossplane xpkg push -f a.xpkg,b.xpkg` writes.
func inspectCmd(args []string) error {
	fs := flag.NewFlagSet("inspect", flag.ExitOnError)
	short := fs.Bool("short", false, "one line per file: file sha256, image digest, pushed digest, path")
	_ = fs.Parse(args)
	if fs.NArg() == 0 {
		return errors.New("no files")
	}
	for _, arg := range fs.Args() {
		files := strings.Split(arg, ",")
		for _, p := range files {
			if err := inspect(p, *short); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		if len(files) > 1 {
			d, err := indexDigest(files)
			if err != nil {
				return fmt.Errorf("%s: %w", arg, err)
			}
			if *short {
				fmt.Printf("%-64s  %-71s  %s  index of %s\n", "-", "-", d, arg)
			} else {
				fmt.Printf("index of %s\n  pushed as  %s (crossplane xpkg push -f %s)\n", arg, d, arg)
			}
		}
	}
	return nil
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func inspect(path string, short bool) error {
	sum, size, err := fileSHA256(path)
	if err != nil {
		return err
	}
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	pushedDigest, err := pushDigest(img)
	if err != nil {
		return err
	}
	if short {
		fmt.Printf("%s  %s  %s  %s\n", sum, digest, pushedDigest, path)
		return nil
	}

	m, err := img.Manifest()
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", path)
	fmt.Printf("  file       %d bytes (%.1f MB), sha256:%s\n", size, float64(size)/1e6, sum)
	fmt.Printf("  image      %s (%s)\n", digest, m.MediaType)
	if pushedDigest != "-" {
		fmt.Printf("  pushed as  %s (layers annotated from the config labels, as crossplane xpkg push does)\n", pushedDigest)
	}
	fmt.Printf("  config     %s, %s/%s, created %s\n", m.Config.Digest, orNone(cf.OS), orNone(cf.Architecture), cf.Created.UTC().Format("2006-01-02T15:04:05Z"))
	if c := cf.Config; len(c.Entrypoint) > 0 || c.User != "" || len(c.ExposedPorts) > 0 {
		fmt.Printf("  runtime    entrypoint %q, user %q, ports %v\n", c.Entrypoint, c.User, sortedKeys(c.ExposedPorts))
	}
	for _, k := range sortedKeys(cf.Config.Labels) {
		if !strings.HasPrefix(k, xpkgAnnotationKey+":") {
			fmt.Printf("  label      %s=%s\n", k, cf.Config.Labels[k])
		}
	}
	for i, h := range cf.History {
		fmt.Printf("  history %d  created %s, %q\n", i+1, h.Created.UTC().Format("2006-01-02T15:04:05Z"), h.CreatedBy)
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		mt, err := l.MediaType()
		if err != nil {
			return err
		}
		lsize, err := l.Size()
		if err != nil {
			return err
		}
		ann := cf.Config.Labels[xpkgAnnotationKey+":"+d.String()]
		if ann != "" {
			ann = "  [" + xpkgAnnotationKey + ": " + ann + "]"
		}
		fmt.Printf("  layer %d    %s %d bytes %s%s\n", i+1, d, lsize, mt, ann)
		if err := describeLayer(l); err != nil {
			return fmt.Errorf("layer %d: %w", i+1, err)
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// describeLayer lists a layer's entries; for the package and examples
// streams it lists their YAML documents instead of the bytes.
func describeLayer(l v1.Layer) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Printf("             %s %o %d:%d %s %d bytes\n", h.Name, h.Mode, h.Uid, h.Gid, h.ModTime.UTC().Format("2006-01-02T15:04:05Z"), h.Size)
		if h.Name == xpkgStreamFile || h.Name == xpkgExamplesFile {
			data, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			for _, d := range yamlDocs(string(data)) {
				fmt.Printf("               - %s\n", d)
			}
		}
	}
}

// yamlDocs names the objects of a YAML stream as apiVersion kind name
// (namespace/name when namespaced). Line based: enough for the serializer's
// and the repository's block-style YAML.
func yamlDocs(s string) []string {
	var out []string
	for _, doc := range splitYAML(s) {
		var apiVersion, kind, name, ns string
		inMeta := false
		for _, l := range strings.Split(doc, "\n") {
			switch {
			case strings.HasPrefix(l, "apiVersion:"):
				apiVersion = strings.TrimSpace(strings.TrimPrefix(l, "apiVersion:"))
			case strings.HasPrefix(l, "kind:"):
				kind = strings.TrimSpace(strings.TrimPrefix(l, "kind:"))
			case l == "metadata:":
				inMeta = true
			case inMeta && strings.HasPrefix(l, "  name:"):
				name = strings.TrimSpace(strings.TrimPrefix(l, "  name:"))
			case inMeta && strings.HasPrefix(l, "  namespace:"):
				ns = strings.TrimSpace(strings.TrimPrefix(l, "  namespace:"))
			case len(l) > 0 && l[0] != ' ' && l[0] != '#' && l[0] != '-':
				inMeta = false
			}
		}
		if kind == "" {
			continue
		}
		if ns != "" {
			name = ns + "/" + name
		}
		out = append(out, fmt.Sprintf("%s %s %s", apiVersion, kind, name))
	}
	return out
}

func splitYAML(s string) []string {
	var docs []string
	var cur strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.TrimRight(l, "\r\n") == "---" {
			docs = append(docs, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(l)
	}
	return append(docs, cur.String())
}

// pushDigest is the digest `crossplane xpkg push` gives a package, or "-"
// when img is no package (no io.crossplane.xpkg labels).
// indexDigest predicts the digest of the image index `crossplane xpkg push -f
// a.xpkg,b.xpkg` writes (cmd/crank/xpkg/push.go pushImages): each package
// annotated as pushDigest does, then mutate.AppendManifests(empty.Index, …)
// with the manifest's media type and the platform from its config's os,
// architecture and os.version, in the order the files are given.
func indexDigest(files []string) (string, error) {
	raw, err := indexManifest(files)
	if err != nil {
		return "", err
	}
	return "sha256:" + fmt.Sprintf("%x", sha256.Sum256(raw)), nil
}

// indexManifest is the predicted index's raw manifest. The CLI v2.2.1 is
// built with go-containerregistry v0.20, whose AppendManifests writes no
// artifactType; v0.22 (this module) adds one from the config's media type,
// so the entries are written here without it.
func indexManifest(files []string) ([]byte, error) {
	adds := make([]mutate.IndexAddendum, 0, len(files))
	for _, f := range files {
		img, err := tarball.ImageFromPath(f, nil)
		if err != nil {
			return nil, err
		}
		pushed, err := annotateLayers(img)
		if err != nil {
			return nil, err
		}
		mt, err := pushed.MediaType()
		if err != nil {
			return nil, err
		}
		cf, err := pushed.ConfigFile()
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: pushed, Descriptor: v1.Descriptor{
			MediaType: mt,
			Platform:  &v1.Platform{Architecture: cf.Architecture, OS: cf.OS, OSVersion: cf.OSVersion},
		}})
	}
	im, err := mutate.AppendManifests(empty.Index, adds...).IndexManifest()
	if err != nil {
		return nil, err
	}
	for i := range im.Manifests {
		im.Manifests[i].ArtifactType = ""
	}
	return json.Marshal(im)
}

func pushDigest(img v1.Image) (string, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	isPkg := false
	for k := range cf.Config.Labels {
		isPkg = isPkg || strings.HasPrefix(k, xpkgAnnotationKey+":")
	}
	if !isPkg {
		return "-", nil
	}
	pushed, err := annotateLayers(img)
	if err != nil {
		return "", err
	}
	d, err := pushed.Digest()
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// annotateLayers is what `crossplane xpkg push` (internal/xpkg.AnnotateLayers)
// does to a package before writing it to a registry: it rebuilds the image
// from empty.Image, copying each io.crossplane.xpkg:<layer digest> config
// label to an annotation on that layer's descriptor. Its digest is the one the
// registry reports.
func annotateLayers(img v1.Image) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	adds := make([]mutate.Addendum, 0, len(layers))
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		a := mutate.Addendum{Layer: l}
		if ann, ok := cf.Config.Labels[xpkgAnnotationKey+":"+d.String()]; ok {
			a.Annotations = map[string]string{xpkgAnnotationKey: ann}
		}
		adds = append(adds, a)
	}
	if len(adds) == 0 {
		return img, nil
	}
	out := empty.Image
	for _, a := range adds {
		if out, err = mutate.Append(out, a); err != nil {
			return nil, err
		}
	}
	return mutate.ConfigFile(out, cf)
}
