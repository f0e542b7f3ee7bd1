package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// stageCmd recreates -root holding exactly the given files (relative paths
// kept, minus -strip) and, with -meta, the package metadata as
// crossplane.yaml. -name renames the package (metadata.name);
// -want-dependency refuses metadata that does not depend on PKG@VERSION.
func stageCmd(args []string) error {
	fs := flag.NewFlagSet("stage", flag.ExitOnError)
	root := fs.String("root", "", "directory to (re)create")
	meta := fs.String("meta", "", "package metadata (crossplane.yaml) to copy into the root")
	rename := fs.String("name", "", "new metadata.name for the copied metadata")
	wantDep := fs.String("want-dependency", "", "PKG@VERSION the metadata must list in spec.dependsOn")
	strip := fs.String("strip", "", "path prefix removed from the staged files' paths")
	_ = fs.Parse(args)
	if *root == "" {
		return errors.New("-root is required")
	}
	if (*rename != "" || *wantDep != "") && *meta == "" {
		return errors.New("-name and -want-dependency need -meta")
	}
	if err := os.RemoveAll(*root); err != nil {
		return err
	}
	if err := os.MkdirAll(*root, 0o755); err != nil {
		return err
	}

	if *meta != "" {
		data, err := os.ReadFile(*meta)
		if err != nil {
			return err
		}
		if *wantDep != "" {
			pkg, version, ok := strings.Cut(*wantDep, "@")
			if !ok {
				return fmt.Errorf("-want-dependency %q: want PKG@VERSION", *wantDep)
			}
			if err := checkDependency(data, pkg, version); err != nil {
				return fmt.Errorf("%s: %w", *meta, err)
			}
		}
		if *rename != "" {
			if data, err = renameMeta(data, *rename); err != nil {
				return fmt.Errorf("%s: %w", *meta, err)
			}
		}
		if err := os.WriteFile(filepath.Join(*root, "crossplane.yaml"), data, 0o644); err != nil {
			return err
		}
	}

	for _, src := range fs.Args() {
		rel := filepath.ToSlash(filepath.Clean(src))
		if filepath.IsAbs(src) || rel == ".." || strings.HasPrefix(rel, "../") {
			return fmt.Errorf("%s: staged files must be relative paths inside the repository", src)
		}
		if *strip != "" {
			p := strings.TrimSuffix(filepath.ToSlash(*strip), "/") + "/"
			if !strings.HasPrefix(rel, p) {
				return fmt.Errorf("%s is not under -strip %s", src, *strip)
			}
			rel = strings.TrimPrefix(rel, p)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		dst := filepath.Join(*root, filepath.FromSlash(rel))
		if _, err := os.Stat(dst); err == nil {
			return fmt.Errorf("%s staged twice", rel)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// renameMeta replaces metadata.name in a package's crossplane.yaml. It works
// on lines so the rest of the file (comments, order, quoting) is kept.
func renameMeta(data []byte, newName string) ([]byte, error) {
	lines := strings.SplitAfter(string(data), "\n")
	inMeta, done := false, false
	for i, l := range lines {
		trimmed := strings.TrimRight(l, "\r\n")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if !strings.HasPrefix(trimmed, " ") { // a top-level key
			inMeta = trimmed == "metadata:"
			continue
		}
		if inMeta && strings.HasPrefix(trimmed, "  name:") {
			old := strings.Trim(strings.TrimSpace(strings.TrimPrefix(trimmed, "  name:")), `"'`)
			if old == newName {
				return nil, fmt.Errorf("metadata.name is already %q", newName)
			}
			lines[i] = "  name: " + newName + "\n"
			done = true
		}
	}
	if !done {
		return nil, errors.New("no metadata.name found")
	}
	return []byte(strings.Join(lines, "")), nil
}

// checkDependency looks for a spec.dependsOn item with package PKG and
// version VERSION in the block-style YAML xrdgen writes.
func checkDependency(data []byte, pkg, version string) error {
	var items []map[string]string
	inDeps := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := sc.Text()
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		indent := len(l) - len(strings.TrimLeft(l, " "))
		if t == "dependsOn:" {
			inDeps = true
			continue
		}
		if !inDeps {
			continue
		}
		if indent <= 2 && !strings.HasPrefix(t, "- ") {
			inDeps = false
			continue
		}
		if strings.HasPrefix(t, "- ") {
			items = append(items, map[string]string{})
			t = strings.TrimPrefix(t, "- ")
		}
		if k, v, ok := strings.Cut(t, ":"); ok && len(items) > 0 {
			items[len(items)-1][strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	var seen []string
	for _, it := range items {
		if it["package"] == pkg && it["version"] == version {
			return nil
		}
		seen = append(seen, it["package"]+"@"+it["version"])
	}
	return fmt.Errorf("spec.dependsOn lists %v, not %s@%s: run make generate with the same PACKAGE_REGISTRY, PACKAGE_ORG and VERSION", seen, pkg, version)
}
