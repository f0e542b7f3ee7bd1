// Command pkgtool builds and checks the Kalypso packages without Docker:
//
//	pkgtool image     the function's runtime image as a reproducible image tarball
//	pkgtool stage     a package root (or examples root) from selected files
//	pkgtool inspect   digests, layers and YAML documents of image tarballs and .xpkg files
//	pkgtool pushtest  pushes .xpkg files with the crossplane CLI to an in-memory
//	                  registry on 127.0.0.1 and checks what the registry holds
//
// It lives in its own module so the function's go.mod stays free of
// go-containerregistry.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "image":
		err = imageCmd(os.Args[2:])
	case "stage":
		err = stageCmd(os.Args[2:])
	case "inspect":
		err = inspectCmd(os.Args[2:])
	case "pushtest":
		err = pushtestCmd(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pkgtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: pkgtool image|stage|inspect|pushtest [flags]")
	os.Exit(2)
}
