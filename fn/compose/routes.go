package compose

// Route names an application's route to one of its servers: the
// application composes it, a server with a canary reads it back to know
// when the gateway stopped sending to the canary.
func RouteName(application, server, protocol string) string {
	return application + "-" + server + "-" + protocol
}

// Route protocols.
const (
	RouteHTTP = "http"
	RouteGRPC = "grpc"
)

// LabelTrack marks a canary's pods and objects; the stable track's carry
// none, so that a server without a canary composes what it always did.
const (
	LabelTrack  = "kalypso-serving.io/track"
	TrackCanary = "canary"
)

// CanaryName is the name of a server's canary track: the value of its
// pods' tritonserver label and the prefix of its objects' names.
func CanaryName(server string) string { return server + "-canary" }
