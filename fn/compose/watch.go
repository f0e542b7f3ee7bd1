package compose

import (
	"cmp"
	"slices"

	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
)

// HoldBackNewKinds works around a watch leak in Crossplane core (v2.2.x and
// v2.3.x). After applying a composite's objects, core starts a watch per
// resourceRef (composite/reconciler.go, "ws[i] = engine.WatchFor"); for a
// kind whose informer its engine has not marked active yet, StartWatches
// decides from a map of active informers taken before its loop, so every
// ref of that kind starts one more event handler, for as long as core runs
// (internal/engine/engine.go StartWatches). Each handler enqueues the
// composite and charges its circuit breaker two tokens per update
// (internal/circuit/token_bucket.go): a project whose first call created 16
// ResourceQuotas spends 32 of its 100 tokens on every quota status update.
// Only the engine's own GetInformer marks a kind active
// (engine/cache.go InformerTrackingCache); core's client Gets and required
// resources read the cache beneath it and do not (cmd/crossplane/core
// core.go: the client's Reader is the untracked cache).
//
// So when the desired state holds several objects of a kind none of which
// is observed, only the first (by namespace and name) is composed in this
// call, and the others in the next, which the new object's watch event
// triggers at once. Objects inside a Namespace held back go with it. It
// returns how many objects it held back. Not covered: composites that
// already compose a kind, after core restarts (their first reconcile starts
// one handler per ref again; README, "Crossplane versions"), and a
// reconcile that fails between applying the first object and starting
// watches (composite/reconciler.go returns before StartWatches), after
// which the rest of that kind goes at once.
func HoldBackNewKinds(observed map[resource.Name]resource.ObservedComposed, desired map[resource.Name]*resource.DesiredComposed) int {
	seen := map[string]bool{}
	for _, o := range observed {
		seen[kindOf(o.Resource)] = true
	}
	held := 0
	// Namespaces first: what a held-back Namespace holds cannot be applied.
	heldNamespaces := map[string]bool{}
	for _, name := range heldBack(seen, desired, namespaceKind) {
		heldNamespaces[desired[name].Resource.GetName()] = true
		delete(desired, name)
		held++
	}
	for name, d := range desired {
		// An observed object is never dropped: core would delete it.
		if _, ok := observed[name]; !ok && heldNamespaces[d.Resource.GetNamespace()] {
			delete(desired, name)
			held++
		}
	}
	for _, name := range heldBack(seen, desired, "") {
		delete(desired, name)
		held++
	}
	return held
}

const namespaceKind = "v1/Namespace"

func kindOf(u *composed.Unstructured) string { return u.GetAPIVersion() + "/" + u.GetKind() }

// heldBack lists, for every kind (or only the kind named) of which several
// objects are desired and none observed, all of them but the first by
// namespace and name.
func heldBack(seen map[string]bool, desired map[resource.Name]*resource.DesiredComposed, only string) []resource.Name {
	byKind := map[string][]resource.Name{}
	for name, d := range desired {
		if k := kindOf(d.Resource); !seen[k] && (only == "" || k == only) {
			byKind[k] = append(byKind[k], name)
		}
	}
	var out []resource.Name
	for _, names := range byKind {
		if len(names) < 2 {
			continue
		}
		first := slices.MinFunc(names, func(a, b resource.Name) int {
			x, y := desired[a].Resource, desired[b].Resource
			return cmp.Or(cmp.Compare(x.GetNamespace(), y.GetNamespace()), cmp.Compare(x.GetName(), y.GetName()))
		})
		for _, name := range names {
			if name != first {
				out = append(out, name)
			}
		}
	}
	return out
}
