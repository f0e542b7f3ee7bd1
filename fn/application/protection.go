package application

import (
	"fmt"

	"github.com/crossplane/function-sdk-go/resource"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// resProtection is the application's Usage of itself.
const resProtection = resource.Name("usage")

// protect composes the application's reason-only Usage of itself while it
// counts servers (see compose.ApplicationProtectionName for why one per
// application). With none it composes nothing, and Crossplane deletes the
// Usage: the application can then be deleted, a minute at most (its poll)
// after its last server went.
func (c *Composer) protect(d *compose.Desired, servers []server, labels map[string]string) error {
	if len(servers) == 0 {
		return nil
	}
	// The reason names no server, so that servers coming and going do not
	// change the Usage.
	reason := fmt.Sprintf("KalypsoApplication %s/%s serves KalypsoTritonServers (kubectl get kalypsotritonservers -n %s): delete them first, then delete the application again; it notices within a minute that they are gone",
		c.id.Namespace, c.id.Name, c.id.Namespace)
	name := compose.ApplicationProtectionName(c.id)
	if c.id.Claim {
		_, err := d.Add(resProtection, compose.ApplicationClusterUsage(name, labels, c.xrName, reason), compose.Exists)
		return err
	}
	_, err := d.Add(resProtection, compose.ApplicationUsage(name, c.id.Namespace, labels, c.id.Name, reason), compose.Exists)
	return err
}
