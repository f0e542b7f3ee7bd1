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

// WaitTTL is the response TTL while a dependency is awaited.
const WaitTTL = 15 * time.Second
