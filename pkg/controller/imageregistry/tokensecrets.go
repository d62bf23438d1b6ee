package imageregistry

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// lastTokenSecrets holds, per registry, the data of the operator-made token
// Secret that its last sync saw or wrote, so that a deleted Secret's key
// pair can come back (ensureTokenSecret).
//
// Deleting the token Secret asks for a new key, but the running pods keep
// signing with the deleted one, and a registry reads its JWKS only at
// start. Signing with a new key at once would let a restarted pod sign
// tokens the pods not yet restarted refuse. So ensureTokenSecret writes the
// deleted key back as the signing key beside a new next key, and the
// replacement runs as a scheduled renewal does.
//
// It holds the data the Secret cache held or the API returned for the
// operator's write, only while the operator runs: no copy of a private key
// is stored anywhere.
// A token Secret deleted while no operator ran, or before the operator's
// first sync of its registry, is replaced by a new key at once. Entries
// carry the registry's UID, so a registry made again under the same name
// never gets its predecessor's key.
type lastTokenSecrets struct {
	mu      sync.Mutex
	entries map[cache.ObjectName]tokenSecretEntry
}

type tokenSecretEntry struct {
	uid  types.UID
	data map[string][]byte
}

func newLastTokenSecrets() *lastTokenSecrets {
	return &lastTokenSecrets{entries: map[cache.ObjectName]tokenSecretEntry{}}
}

// remember records data as the token Secret of the registry key with uid.
func (l *lastTokenSecrets) remember(key cache.ObjectName, uid types.UID, data map[string][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries[key] = tokenSecretEntry{uid: uid, data: data}
}

// get returns what remember recorded for the registry key with uid.
func (l *lastTokenSecrets) get(key cache.ObjectName, uid types.UID) (map[string][]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[key]
	if !ok || e.uid != uid {
		return nil, false
	}
	return e.data, true
}

// forget drops the entry of the registry key.
func (l *lastTokenSecrets) forget(key cache.ObjectName) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, key)
}
