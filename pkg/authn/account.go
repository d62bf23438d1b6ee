package authn

import (
	"slices"
	"time"

	registryv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// Username is the login name of an account without its rotation suffix:
// spec.username, or metadata.name when that is empty.
func Username(a *registryv1alpha1.ImageRegistryAccount) string {
	if a.Spec.Username != "" {
		return a.Spec.Username
	}
	return a.Name
}

// usable tells whether an account may log in at now: it is neither expired
// nor being deleted (a deletion revokes at once, even while a finalizer
// holds the object).
func usable(a *registryv1alpha1.ImageRegistryAccount, now time.Time) bool {
	if a.DeletionTimestamp != nil {
		return false
	}
	if a.Spec.ExpiresAt != nil && !now.Before(a.Spec.ExpiresAt.Time) {
		return false
	}
	return true
}

// validFor tells whether account a may log in to the registry named
// registry: every account may where registry is unknown (""), and an
// account without spec.registries may log in to every registry of its
// namespace.
func validFor(a *registryv1alpha1.ImageRegistryAccount, registry string) bool {
	return registry == "" || len(a.Spec.Registries) == 0 || slices.Contains(a.Spec.Registries, registry)
}

// hashesFor returns the bcrypt hashes that may verify login l against
// account a, and whether a is an account l names at all.
//
// A rotating account (spec.rotation set) answers to <username>/<r>; its
// passwords list ends with the hash of rotation+1 (the next password), before
// it that of rotation (the current one), before it older ones kept for a
// grace period. So rotation r's hash is at index
// len(passwords)-1-(rotation+1-r); a rotation outside the list is denied.
// A static account answers to <username>, and every hash is tried.
func hashesFor(a *registryv1alpha1.ImageRegistryAccount, l Login) (hashes []string, named bool) {
	pw := a.Spec.Passwords
	if a.Spec.Rotation == nil {
		if Username(a) != l.Name {
			return nil, false
		}
		return pw, true
	}
	if !l.HasRotation || Username(a) != l.Base {
		return nil, false
	}
	rot := *a.Spec.Rotation
	if rot < 0 {
		return nil, true
	}
	// age is rotation+1-r: 0 for the next password, 1 for the current one.
	// Computed as rot-r+1 with both non-negative, so it cannot overflow
	// before the range check.
	d := rot - l.Rotation
	if d < -1 || d >= int64(len(pw))-1 {
		return nil, true
	}
	age := int(d + 1)
	return pw[len(pw)-1-age : len(pw)-age], true
}

func copyLabels(in map[string][]string) map[string][]string {
	out := make(map[string][]string, len(in))
	for k, v := range in {
		out[k] = append([]string(nil), v...)
	}
	return out
}
