package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// pushtestCmd proves the packages are pushable and readable the way
// Crossplane reads them, without a real registry: it serves
// go-containerregistry's in-memory registry on 127.0.0.1, pushes each
// NAME=FILE with `crossplane xpkg push`, then checks the manifest the registry
// holds (digest, config, layers, io.crossplane.xpkg annotations) and pulls the
// package stream back with `crossplane xpkg extract`. NAME=FILE,FILE... (one
// package per platform) is pushed as one OCI image index, as
// `crossplane xpkg push -f a.xpkg,b.xpkg` does for a multi-platform Function;
// the index, each platform's entry and each package are checked.
func pushtestCmd(args []string) error {
	fs := flag.NewFlagSet("pushtest", flag.ExitOnError)
	crossplane := fs.String("crossplane", "", "crossplane CLI binary")
	org := fs.String("org", "", "repository prefix (PACKAGE_ORG)")
	version := fs.String("version", "", "tag (VERSION)")
	_ = fs.Parse(args)
	if *crossplane == "" || *org == "" || *version == "" || fs.NArg() == 0 {
		return errors.New("usage: pkgtool pushtest -crossplane CLI -org ORG -version TAG NAME=FILE[,FILE...]...")
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	addr := l.Addr().String()
	fmt.Printf("in-memory registry on %s (plain HTTP, loopback)\n", addr)

	tmp, err := os.MkdirTemp("", "pkgtool-pushtest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// No credentials from the machine: an empty docker config.
	env := append(os.Environ(), "DOCKER_CONFIG="+tmp, "REGISTRY_AUTH_FILE="+filepath.Join(tmp, "none.json"))

	for _, arg := range fs.Args() {
		pkgName, path, ok := strings.Cut(arg, "=")
		if !ok {
			return fmt.Errorf("%q: want NAME=FILE[,FILE...]", arg)
		}
		ref := fmt.Sprintf("%s/%s/%s:%s", addr, *org, pkgName, *version)
		start := time.Now()
		if err := run(env, *crossplane, "xpkg", "push", "-f", path, ref); err != nil {
			return fmt.Errorf("push %s: %w", path, err)
		}
		pushTime := time.Since(start)
		if files := strings.Split(path, ","); len(files) > 1 {
			err = checkPushedIndex(env, *crossplane, files, ref, tmp)
		} else {
			err = checkPushed(env, *crossplane, path, ref, tmp)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		fmt.Printf("  pushed in %s\n", pushTime.Round(time.Millisecond))
	}
	return nil
}

func run(env []string, bin string, args ...string) error {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.String())
	}
	return nil
}

func checkPushed(env []string, crossplane, path, refStr, tmp string) error {
	local, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return err
	}
	want, err := pushDigest(local)
	if err != nil {
		return err
	}
	ref, err := name.ParseReference(refStr)
	if err != nil {
		return err
	}
	desc, err := remote.Get(ref)
	if err != nil {
		return err
	}
	if desc.Digest.String() != want {
		return fmt.Errorf("registry holds %s, predicted %s", desc.Digest, want)
	}
	remoteImg, err := desc.Image()
	if err != nil {
		return err
	}
	rm, err := remoteImg.Manifest()
	if err != nil {
		return err
	}
	lm, err := local.Manifest()
	if err != nil {
		return err
	}
	if rm.Config.Digest != lm.Config.Digest {
		return fmt.Errorf("config %s in the registry, %s in the file", rm.Config.Digest, lm.Config.Digest)
	}
	if len(rm.Layers) != len(lm.Layers) {
		return fmt.Errorf("%d layers in the registry, %d in the file", len(rm.Layers), len(lm.Layers))
	}
	var anns []string
	base := 0
	for i, l := range rm.Layers {
		if l.Digest != lm.Layers[i].Digest {
			return fmt.Errorf("layer %d: %s in the registry, %s in the file", i+1, l.Digest, lm.Layers[i].Digest)
		}
		a := l.Annotations[xpkgAnnotationKey]
		if a == "base" {
			base++
		}
		if a == "" {
			a = "-"
		}
		anns = append(anns, a)
	}
	if base != 1 {
		return fmt.Errorf("%d layers annotated %s: base, want 1", base, xpkgAnnotationKey)
	}

	// What the package manager reads: the package stream of the base layer.
	gz := filepath.Join(tmp, "extract.gz")
	if err := run(env, crossplane, "xpkg", "extract", refStr, "-o", gz); err != nil {
		return err
	}
	got, err := gunzip(gz)
	if err != nil {
		return err
	}
	wantStream, err := packageStream(local)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, wantStream) {
		return errors.New("crossplane xpkg extract returned a package.yaml that differs from the file's")
	}
	fmt.Printf("%s\n  digest %s (as predicted), media type %s, layers [%s], xpkg extract: %d bytes of package.yaml, %d objects\n",
		refStr, desc.Digest, desc.MediaType, strings.Join(anns, " "), len(got), len(yamlDocs(string(got))))
	return nil
}

// checkPushedIndex checks a multi-platform push: the tag is an OCI image
// index with the predicted digest (indexDigest), one entry per file whose
// digest is that file's pushed digest and whose platform is its config's
// os/architecture, and each entry passes checkPushed. Crossplane's package
// manager pulls the tag with go-containerregistry's remote.Image without a
// platform (internal/xpkg/fetch.go), which picks linux/amd64: the entry
// for the default platform must exist.
func checkPushedIndex(env []string, crossplane string, files []string, refStr, tmp string) error {
	ref, err := name.ParseReference(refStr)
	if err != nil {
		return err
	}
	desc, err := remote.Get(ref)
	if err != nil {
		return err
	}
	if !desc.MediaType.IsIndex() {
		return fmt.Errorf("media type %s, want an image index", desc.MediaType)
	}
	want, err := indexDigest(files)
	if err != nil {
		return err
	}
	if desc.Digest.String() != want {
		pred, _ := indexManifest(files)
		return fmt.Errorf("index %s in the registry, predicted %s\nregistry:  %s\npredicted: %s", desc.Digest, want, desc.Manifest, pred)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	if len(im.Manifests) != len(files) {
		return fmt.Errorf("index holds %d manifests, want %d", len(im.Manifests), len(files))
	}
	var platforms []string
	for i, f := range files {
		img, err := tarball.ImageFromPath(f, nil)
		if err != nil {
			return err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		d, err := pushDigest(img)
		if err != nil {
			return err
		}
		m := im.Manifests[i]
		if m.Digest.String() != d {
			return fmt.Errorf("index entry %d is %s, predicted %s for %s", i, m.Digest, d, f)
		}
		if m.Platform == nil || m.Platform.OS != cf.OS || m.Platform.Architecture != cf.Architecture {
			return fmt.Errorf("index entry %d (%s): platform %v, want %s/%s", i, f, m.Platform, cf.OS, cf.Architecture)
		}
		platforms = append(platforms, m.Platform.OS+"/"+m.Platform.Architecture)
		if err := checkPushed(env, crossplane, f, ref.Context().Digest(d).String(), tmp); err != nil {
			return err
		}
	}
	// What the package manager gets from the tag.
	img, err := remote.Image(ref)
	if err != nil {
		return fmt.Errorf("remote.Image without a platform: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	fmt.Printf("%s\n  index %s (as predicted), %s, platforms [%s]; pulled without a platform: %s/%s\n",
		refStr, desc.Digest, desc.MediaType, strings.Join(platforms, " "), cf.OS, cf.Architecture)
	return nil
}

func gunzip(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// packageStream returns package.yaml from the layer the config labels
// io.crossplane.xpkg: base.
func packageStream(img v1.Image) ([]byte, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		if cf.Config.Labels[xpkgAnnotationKey+":"+d.String()] != "base" {
			continue
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				return nil, fmt.Errorf("no %s in the base layer: %w", xpkgStreamFile, err)
			}
			if h.Name == xpkgStreamFile {
				return io.ReadAll(tr)
			}
		}
	}
	return nil, errors.New("no layer labelled as the package's base")
}
