package compose

import (
	"cmp"
	"slices"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
)

// watchPrimerPrefix names the requirements WatchPrimers adds.
const watchPrimerPrefix = "watch-primer/"

// WatchPrimers works around a watch leak in Crossplane core (v2.2.x and
// v2.3.x, internal/engine/engine.go StartWatches). After applying a
// composite's objects, core starts a watch per resourceRef; for a kind
// whose informer is not yet active it decides "start" from a map of active
// informers taken before its loop, so every ref of that kind adds one more
// event handler for good. All of them enqueue the composite, and each
// Update costs two tokens of its circuit breaker per handler
// (internal/circuit/token_bucket.go): a project of 16 environments, with
// 16 ResourceQuotas created in one call, would spend 32 tokens of its 100
// on each quota status update, for as long as core runs.
//
// Core fetches required resources through the same informer cache
// (composite/composition_functions.go NewExistingRequiredResourcesFetcher
// with the engine's cached client), and a cached Get marks the kind's
// informer active (engine/cache.go InformerTrackingCache.Get). So when the
// desired state holds several objects of a kind none of which is observed
// yet, the function requires one of them by name in the same call: core
// fetches it (absent is fine), calls again with the same requirements,
// applies, and starts a single handler. Observed objects need no primer:
// core Gets every resourceRef through the cache before composing
// (ExistingComposedResourceObserver). The answer is never read.
func WatchPrimers(observed map[resource.Name]resource.ObservedComposed, desired map[resource.Name]*resource.DesiredComposed) map[string]*fnv1.ResourceSelector {
	seen := map[string]bool{}
	for _, o := range observed {
		seen[o.Resource.GetAPIVersion()+"/"+o.Resource.GetKind()] = true
	}
	type ref struct{ apiVersion, kind, namespace, name string }
	byKind := map[string][]ref{}
	for _, d := range desired {
		r := ref{d.Resource.GetAPIVersion(), d.Resource.GetKind(), d.Resource.GetNamespace(), d.Resource.GetName()}
		if k := r.apiVersion + "/" + r.kind; !seen[k] {
			byKind[k] = append(byKind[k], r)
		}
	}
	out := map[string]*fnv1.ResourceSelector{}
	for k, refs := range byKind {
		if len(refs) < 2 {
			continue
		}
		first := slices.MinFunc(refs, func(a, b ref) int {
			return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.name, b.name))
		})
		sel := &fnv1.ResourceSelector{
			ApiVersion: first.apiVersion,
			Kind:       first.kind,
			Match:      &fnv1.ResourceSelector_MatchName{MatchName: first.name},
		}
		if first.namespace != "" {
			sel.Namespace = &first.namespace
		}
		out[watchPrimerPrefix+k] = sel
	}
	return out
}
