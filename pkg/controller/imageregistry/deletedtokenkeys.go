package imageregistry

import (
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
)

// deletedTokenKeys holds the data of operator-made token Secrets that were
// deleted, from the informer's delete event until the registry's next sync
// has written the Secret back.
//
// Deleting the token Secret asks for a new key, but the running pods keep
// signing with the deleted one, and a registry reads its JWKS only at
// start. Signing with a new key at once would let a restarted pod sign
// tokens the pods not yet restarted refuse. So ensureTokenSecret writes the
// deleted key back as the signing key beside a new next key, and the
// replacement runs as a scheduled renewal does.
//
// The memory is this process's only, on purpose: no second copy of a
// private key is stored. An operator restarted between the deletion and the
// next sync, a window of one queue round trip, signs with a new key at once.
type deletedTokenKeys struct {
	mu   sync.Mutex
	data map[cache.ObjectName]map[string][]byte
}

func newDeletedTokenKeys() *deletedTokenKeys {
	return &deletedTokenKeys{data: map[cache.ObjectName]map[string][]byte{}}
}

// remember keeps the data of the deleted token Secret s of registry.
func (d *deletedTokenKeys) remember(registry cache.ObjectName, s *corev1.Secret) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.data[registry] = maps.Clone(s.Data)
}

// get returns what remember kept for registry.
func (d *deletedTokenKeys) get(registry cache.ObjectName) (map[string][]byte, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	data, ok := d.data[registry]
	return data, ok
}

// forget drops what remember kept for registry.
func (d *deletedTokenKeys) forget(registry cache.ObjectName) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.data, registry)
}
