// Command function runs the Kalypso composition function as a gRPC server.
package main

import (
	"github.com/alecthomas/kong"
	"github.com/crossplane/function-sdk-go"
	grpcprometheus "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"

	"github.com/kalypsoserving/function-kalypso/fn"
)

// version is stamped at build time (-X main.version=…).
var version = "dev"

// CLI of the function.
type CLI struct {
	Version kong.VersionFlag `help:"Print the version and exit."`
	Debug   bool             `help:"Emit debug logs in addition to info logs." short:"d"`

	Network            string `default:"tcp"   help:"Network on which to listen for gRPC connections."`
	Address            string `default:":9443" help:"Address at which to listen for gRPC connections."`
	TLSServerCertsDir  string `env:"TLS_SERVER_CERTS_DIR" help:"Directory containing server certs (tls.key, tls.crt) and the CA used to verify client certificates (ca.crt)."`
	Insecure           bool   `help:"Run without mTLS credentials. If you supply this flag --tls-server-certs-dir will be ignored."`
	MaxRecvMessageSize int    `default:"4" help:"Maximum size of received messages in MB."`
	MetricsAddress     string `default:":8080" help:"Address of the Prometheus metrics endpoint; move it off :8080 when Crossplane core runs on the same host."`
}

// Run the function.
func (c *CLI) Run() error {
	log, err := function.NewLogger(c.Debug)
	if err != nil {
		return err
	}
	return function.Serve(fn.New(log),
		function.Listen(c.Network, c.Address),
		function.MTLSCertificates(c.TLSServerCertsDir),
		function.Insecure(c.Insecure),
		function.MaxRecvMessageSize(c.MaxRecvMessageSize*1024*1024),
		function.WithMetricsServer(c.MetricsAddress),
		// Time per call, beside the counters: what a platform sizes replicas by.
		function.WithMetricsServerOpts(grpcprometheus.WithServerHandlingTimeHistogram()),
	)
}

func main() {
	ctx := kong.Parse(&CLI{},
		kong.Description("The Kalypso composition function: NVIDIA Triton serving on Crossplane."),
		kong.Vars{"version": version})
	ctx.FatalIfErrorf(ctx.Run())
}
