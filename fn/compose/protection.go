package compose

import (
	protectionv1beta1 "github.com/crossplane/crossplane/apis/v2/protection/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kalypsoserving/function-kalypso/apis/v1alpha1"
)

// An application with servers refuses its own deletion through one
// reason-only Usage of itself (the claim flavour: a ClusterUsage of its
// composite), which it composes while it counts servers. Crossplane's Usage
// controller costs the API server a GET and an UPDATE of the used object
// every --poll-interval (1 min) per Usage, whatever the Usage
// (internal/controller/protection/usage/reconciler.go: the in-use label is
// re-applied whenever `!used.OwnedBy(usage)`, which is always), so one per
// application instead of one per server. A server composes its own Usage of
// the application only until it finds this one.
//
// Reason-only, never spec.by: Crossplane keeps a Usage being deleted until
// its `by` object is gone ("Waiting for the using resource"), while a
// foreground delete of the `by` object waits for the Usage it owns with
// blockOwnerDeletion: neither would ever go.
//
// replayDeletion is off: Crossplane's webhook marks a refused object
// (internal/webhook/protection/usage/handler.go) and never clears the mark,
// so a replay would delete the application whenever its last server goes,
// possibly weeks after the refused attempt. A refused delete is repeated by
// the user once the servers are gone, as the reason says.

// ApplicationProtectionName names an application's Usage of itself: in its
// namespace for v2 composites, and for the claim flavour a cluster-wide
// name from the claim's namespace (which holds no dot) and name.
func ApplicationProtectionName(id Identity) string {
	if id.Claim {
		return id.Namespace + "." + id.Name + ".has-servers"
	}
	return id.Name + "-has-servers"
}

// ApplicationUsage is a reason-only Usage of the v2 application appName.
func ApplicationUsage(name, namespace string, labels map[string]string, appName, reason string) *protectionv1beta1.Usage {
	return &protectionv1beta1.Usage{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: protectionv1beta1.UsageSpec{
			Of: protectionv1beta1.NamespacedResource{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.KindApplication,
				ResourceRef: &protectionv1beta1.NamespacedResourceRef{Name: appName},
			},
			Reason:         ptr.To(reason),
			ReplayDeletion: ptr.To(false),
		},
	}
}

// ApplicationClusterUsage is the claim flavour's: both composites are
// cluster scoped, so it is a ClusterUsage of the application's composite.
func ApplicationClusterUsage(name string, labels map[string]string, appXR, reason string) *protectionv1beta1.ClusterUsage {
	return &protectionv1beta1.ClusterUsage{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: protectionv1beta1.ClusterUsageSpec{
			Of: protectionv1beta1.Resource{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.KindXApplication,
				ResourceRef: &protectionv1beta1.ResourceRef{Name: appXR},
			},
			Reason:         ptr.To(reason),
			ReplayDeletion: ptr.To(false),
		},
	}
}
