package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The user the function runs as, as in distroless' nonroot images.
const nonroot = 65532

// imageCmd writes the function's runtime image as a `docker save`-style
// tarball (the format `crossplane xpkg build --embed-runtime-image-tarball`
// reads): a base layer with CA certificates, /etc/passwd and /etc/group, and a
// layer holding the static binary at /function.
//
// Every input that could vary between builds is fixed: entries are sorted,
// owners, modes and mtimes are set explicitly (mtime = -epoch), gzip writes no
// name or time, the config's created and history times are -epoch. The same
// binary, CA bundle and flags give the same image digest.
func imageCmd(args []string) error {
	fs := flag.NewFlagSet("image", flag.ExitOnError)
	binary := fs.String("binary", "", "static linux function binary for -arch, placed at /function")
	arch := fs.String("arch", "amd64", "the image's architecture (amd64 or arm64): the config's architecture, which `crossplane xpkg push` copies into the index entry's platform")
	caBundle := fs.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle, placed at /etc/ssl/certs/ca-certificates.crt")
	out := fs.String("o", "", "image tarball to write")
	tag := fs.String("tag", "", "reference recorded in the tarball's manifest.json (RepoTags)")
	version := fs.String("version", "", "org.opencontainers.image.version")
	revision := fs.String("revision", "", "org.opencontainers.image.revision (empty: unknown)")
	source := fs.String("source", "", "org.opencontainers.image.source")
	epochFlag := fs.String("epoch", os.Getenv("SOURCE_DATE_EPOCH"), "timestamp of every file and of the config, in seconds since 1970 (default $SOURCE_DATE_EPOCH, else 0)")
	_ = fs.Parse(args)
	if *binary == "" || *out == "" || *tag == "" || *version == "" || *source == "" {
		return errors.New("-binary, -o, -tag, -version and -source are required")
	}
	if *revision == "" {
		*revision = "unknown"
	}
	epoch, err := parseEpoch(*epochFlag)
	if err != nil {
		return err
	}
	ref, err := name.NewTag(*tag, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("-tag: %w", err)
	}

	bin, err := readStaticBinary(*binary, *arch)
	if err != nil {
		return err
	}
	ca, err := readCABundle(*caBundle)
	if err != nil {
		return err
	}

	baseLayer, err := layer(epoch, baseFiles(ca))
	if err != nil {
		return fmt.Errorf("base layer: %w", err)
	}
	binLayer, err := layer(epoch, []file{{name: "function", mode: 0o755, data: bin}})
	if err != nil {
		return fmt.Errorf("binary layer: %w", err)
	}

	created := v1.Time{Time: epoch}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: *arch,
		OS:           "linux",
		Created:      created,
		Config: v1.Config{
			Entrypoint:   []string{"/function"},
			User:         fmt.Sprintf("%d:%d", nonroot, nonroot),
			ExposedPorts: map[string]struct{}{"9443/tcp": {}},
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
			},
			WorkingDir: "/",
			Labels: map[string]string{
				"org.opencontainers.image.source":   *source,
				"org.opencontainers.image.version":  *version,
				"org.opencontainers.image.revision": *revision,
			},
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return err
	}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: baseLayer, History: v1.History{Created: created, CreatedBy: "pkgtool image: CA certificates, /etc/passwd, /etc/group (nonroot 65532)"}},
		mutate.Addendum{Layer: binLayer, History: v1.History{Created: created, CreatedBy: "pkgtool image: /function"}},
	)
	if err != nil {
		return err
	}
	want, err := img.Digest()
	if err != nil {
		return err
	}

	tmp := *out + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		return err
	}
	// Read it back as the crossplane CLI will: the digest must not change.
	got, err := imageDigest(tmp)
	if err != nil {
		return fmt.Errorf("reading back %s: %w", tmp, err)
	}
	if got != want {
		return fmt.Errorf("image digest changed when read back from the tarball: %s != %s", got, want)
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	fmt.Printf("image %s %s (linux/%s, created %s)\n", *out, want, *arch, epoch.Format(time.RFC3339))
	return nil
}

func parseEpoch(s string) (time.Time, error) {
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("epoch (SOURCE_DATE_EPOCH) %q is not a non-negative number of seconds", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// elfMachines maps the architectures the Function is built for (GOARCH, as
// the OCI platform spells them) to their ELF machine.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// readStaticBinary refuses anything but a statically linked linux ELF
// executable for arch: the image has no libc and no dynamic loader, and an
// arm64 image holding an amd64 binary would only fail when a node runs it.
func readStaticBinary(path, arch string) ([]byte, error) {
	machine, ok := elfMachines[arch]
	if !ok {
		return nil, fmt.Errorf("-arch %q: want amd64 or arm64", arch)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s is not an ELF binary: %w", path, err)
	}
	defer f.Close()
	if f.Machine != machine || f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		return nil, fmt.Errorf("%s is %v/%v, want linux/%s (%v)", path, f.OSABI, f.Machine, arch, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("%s is dynamically linked (it has an ELF interpreter): build it with CGO_ENABLED=0", path)
		}
	}
	return data, nil
}

func readCABundle(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("CA bundle %s not found: install Debian's ca-certificates (apt-get install ca-certificates) or point CA_BUNDLE at a PEM bundle", path)
	}
	if err != nil {
		return nil, err
	}
	if n := bytes.Count(data, []byte("-----BEGIN CERTIFICATE-----")); n == 0 {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", path)
	}
	return data, nil
}

type file struct {
	name     string // relative, no leading slash; directories end with /
	mode     int64
	uid, gid int
	data     []byte
}

// baseFiles is the whole base file system: what distroless/static's nonroot
// variant provides that a static Go binary can use.
func baseFiles(ca []byte) []file {
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group := "root:x:0:\n" +
		"nobody:x:65534:\n" +
		"nonroot:x:65532:\n"
	return []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: nonroot, gid: nonroot},
		{name: "tmp/", mode: 0o1777},
	}
}

// layer writes files as a deterministic tar: sorted by name, USTAR headers
// with explicit owner, mode and mtime and no user or group names, then
// gzip-compressed.
func layer(mtime time.Time, files []file) (v1.Layer, error) {
	files = append([]file(nil), files...)
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name:    f.name,
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: mtime,
			Format:  tar.FormatUSTAR,
		}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	// Compress once, here, rather than on every read of the layer: the gzip
	// header carries no name and a zero mtime, so the bytes depend only on
	// the tar and on compress/gzip.
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(buf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	data := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

// imageDigest is the digest of the image in a tarball, as the crossplane CLI
// computes it when it reads the tarball.
func imageDigest(path string) (v1.Hash, error) {
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}
