// Command registry serves go-containerregistry's in-memory OCI registry over
// TLS on loopback, for the e2e lab's packages flavour: Crossplane core pulls
// the Kalypso packages from it (it trusts the lab CA through
// --ca-bundle-path). It is its own module so that the main module's go.mod
// does not pull go-containerregistry v0.22.1 (which would move golang.org/x
// modules there).
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("address", "127.0.0.1:0", "host:port to listen on")
	cert := flag.String("tls-cert", "", "serving certificate (PEM)")
	key := flag.String("tls-key", "", "serving key (PEM)")
	flag.Parse()
	if *cert == "" || *key == "" {
		log.Fatal("usage: registry -address HOST:PORT -tls-cert FILE -tls-key FILE")
	}
	srv := &http.Server{
		Addr:              *addr,
		Handler:           registry.New(registry.Logger(log.New(os.Stderr, "registry: ", log.LstdFlags))),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Printf("serving an in-memory OCI registry on https://%s", *addr)
	log.Fatal(srv.ListenAndServeTLS(*cert, *key))
}
