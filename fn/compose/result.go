package compose

import (
	"time"

	"github.com/crossplane/function-sdk-go/resource"
)

// Condition is a custom condition on the composite (and its claim). Every
// call sends every type a kind owns: Crossplane turns a custom condition that
// is not re-sent into Unknown.
type Condition struct {
	Type    string
	Status  bool
	Reason  string
	Message string
}

// Result is what a kind decides in one call. The function turns it into a
// RunFunctionResponse.
type Result struct {
	// Desired composed objects, keyed by their stable pipeline name.
	Desired map[resource.Name]*resource.DesiredComposed
	// Ready is the composite's own readiness, set explicitly: a composite
	// that composes nothing would otherwise read Ready.
	Ready bool
	// Status is the typed status the function owns (status.* of the XR).
	Status any
	// Conditions are sent on every call, also with Fatal.
	Conditions []Condition
	// TTL asks Crossplane to call again sooner, e.g. while waiting on a
	// required resource (which triggers no watch). Zero keeps the default.
	TTL time.Duration
	// Fatal refuses the call: Crossplane keeps every existing composed
	// object and discards this call's desired state and status.
	Fatal error
}

// How soon a composite asks to be called again. With realtime compositions
// (on by default) Crossplane core requeues a composite on every change of
// itself and of its composed objects, and otherwise only after the
// response TTL: its poll interval is then zero (v2.2.1
// internal/controller/apiextensions/definition/reconciler.go). So the TTL
// only bounds how long a change to a required resource, which no watch
// follows, takes to reach the composite. Every call costs the API server
// about seven requests per composite (the composed objects' server-side
// applies, the composite's patch and two status writes, a Secret GET past
// core's cache; v2.3 skips the status update when nothing changed), so the
// TTL is the idle cost. A TTL is always returned, so the v2.3
// crossplane.io/poll-interval annotation has no effect on these composites.
const (
	// WaitTTL: a required resource is awaited before something can be
	// created (an application for its first server, a quota's room).
	WaitTTL = 15 * time.Second
	// PollTTL: a composite follows required resources that change while it
	// runs: an application's count of its servers, a project's removed
	// environments and release, a Deployment not yet available (whose
	// events a tripped circuit breaker may drop; TTL requeues bypass it).
	PollTTL = time.Minute
	// IdleTTL: a settled composite. A change to an application's storage
	// settings or to the platform's EnvironmentConfig reaches a running
	// server within this; any change to the server itself applies at once.
	IdleTTL = 10 * time.Minute
)

// BreakerTTL bounds the TTL of a composite whose watch circuit Crossplane
// core has opened (its Responsive condition False): core then drops its
// watch events, its own spec changes included, but one per 30 s
// (internal/circuit/mapfunc.go, half-open), and closes the circuit only
// at an event after the cooldown (v2.2.1 internal/circuit/token_bucket.go
// RecordEvent; GetState never looks at the cooldown), while a TTL requeue
// bypasses it (the breaker wraps only the watches' map functions,
// internal/controller/apiextensions/definition/reconciler.go). Meanwhile
// a composite that is not Ready, whose progress its composed objects'
// events would drive, polls every WaitTTL; a Ready one every PollTTL: a
// spec change (a project's release, a removed environment) takes effect
// within a minute during the cooldown, and at once after it (the change's
// event closes the circuit). Not faster: Responsive stays False after the
// cooldown until such an event, so a settled composite would poll at this
// rate for good. The breaker opens mostly for projects of several
// environments, through core's duplicate watches (README, "Crossplane
// versions").
func BreakerTTL(xr map[string]any, ttl time.Duration, ready bool) time.Duration {
	if ConditionStatus(xr, "Responsive") != "False" {
		return ttl
	}
	limit := PollTTL
	if !ready {
		limit = WaitTTL
	}
	if ttl > 0 && ttl <= limit {
		return ttl
	}
	return limit
}
