package imageregistry

import (
	"crypto"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/pki"
	"github.com/image-registry-operator/image-registry-operator/pkg/tokenkey"
)

// The registry trusts exactly the token keys in the JWKS the operator
// writes into its ConfigMap (key jwksKey, auth.token.jwks); it has no
// rootcertbundle, so a certificate chain in a token (x5c) earns no trust.
// The set holds:
//
//   - the key the token servers sign with (the token Secret's);
//   - the next key of an operator-made token Secret, published one
//     rollout before the token servers sign with it (ensureTokenSecret), so
//     that with several replicas no pod refuses a token another pod signed;
//   - retired keys: keys of the previous set that are neither. A retired key
//     stays while a pod may still sign with it (the rolled-out pod template
//     names another signing key) and then for the longest life of a token
//     it signed (tokenRetention). v1alpha1.AnnotationRetiredTokenKeys on the
//     ConfigMap records until when, so the decision survives a restart.
const (
	// maxRetiredTokenKeys bounds the retired keys kept, newest first, should
	// keys be replaced faster than tokens expire.
	maxRetiredTokenKeys = 4
	// tokenLeeway is how long past its expiry the registry still accepts
	// a token (distribution's clock-skew leeway), plus a margin.
	tokenLeeway = 2 * time.Minute
)

// tokenTrust is the trusted key set one sync decided on.
type tokenTrust struct {
	jwks       []byte
	signingKID string
	// trustedKIDs are the thumbprints of every key in jwks, in order.
	trustedKIDs []string
	// retired is the ConfigMap's v1alpha1.AnnotationRetiredTokenKeys value.
	retired string
}

// publicKeyOf returns the public half of a PEM key pair.
func publicKeyOf(m *keyMaterial) (crypto.PublicKey, error) {
	kp, err := pki.ParseKeyPair(m.certPEM, m.keyPEM)
	if err != nil {
		return nil, err
	}
	return kp.Key.Public(), nil
}

// rolledOut tells whether every pod of sts runs its current template.
func rolledOut(sts *appsv1.StatefulSet) bool {
	if sts == nil || sts.Spec.Replicas == nil {
		return false
	}
	s := sts.Status
	return s.ObservedGeneration >= sts.Generation && s.UpdatedReplicas == *sts.Spec.Replicas &&
		s.CurrentRevision == s.UpdateRevision && s.CurrentRevision != ""
}

// trustsKey tells whether the rolled-out pods of sts all trust kid.
func trustsKey(sts *appsv1.StatefulSet, kid string) bool {
	if !rolledOut(sts) {
		return false
	}
	for _, k := range strings.Split(sts.Spec.Template.Annotations[v1alpha1.AnnotationTrustedTokenKeys], ",") {
		if k == kid {
			return true
		}
	}
	return false
}

// decideTokenTrust builds the trusted set from st.token, st.nextTokenKey,
// the current registry ConfigMap cur (nil if none) and the StatefulSet as
// it runs (nil if none). It asks for a requeue when a retired key expires.
func decideTokenTrust(st *syncState, cur *corev1.ConfigMap, sts *appsv1.StatefulSet, retention time.Duration) (*tokenTrust, error) {
	signing, err := publicKeyOf(st.token)
	if err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	keys := []crypto.PublicKey{signing}
	if st.nextTokenKey != nil {
		keys = append(keys, st.nextTokenKey)
	}
	t := &tokenTrust{}
	inSet := map[string]bool{}
	for _, k := range keys {
		kid, err := tokenkey.Thumbprint(k)
		if err != nil {
			return nil, err
		}
		if !inSet[kid] {
			inSet[kid] = true
			t.trustedKIDs = append(t.trustedKIDs, kid)
		}
	}
	t.signingKID = t.trustedKIDs[0]

	// What the previous set trusted, and since when keys are retired. Both
	// are the operator's own writes; anything unreadable counts as empty.
	var previous []crypto.PublicKey
	recorded := map[string]string{}
	if cur != nil {
		previous, _ = tokenkey.ParseKeySet([]byte(cur.Data[jwksKey]))
		_ = json.Unmarshal([]byte(cur.Annotations[v1alpha1.AnnotationRetiredTokenKeys]), &recorded)
	}
	// No pod signs with a key other than the one the rolled-out template names.
	deployedSigner := "?"
	if rolledOut(sts) {
		deployedSigner = sts.Spec.Template.Annotations[v1alpha1.AnnotationTokenSigningKey]
	}
	retired := map[string]string{}
	for _, k := range previous {
		kid, err := tokenkey.Thumbprint(k)
		if err != nil || inSet[kid] || len(retired) == maxRetiredTokenKeys {
			continue
		}
		until := recorded[kid]
		if until == "" && deployedSigner != kid && deployedSigner != "?" {
			until = st.now.Add(retention).UTC().Format(time.RFC3339)
		}
		if until != "" {
			end, err := time.Parse(time.RFC3339, until)
			if err != nil || !st.now.Before(end) {
				continue
			}
			st.requeueNoLaterThan(end)
		}
		inSet[kid] = true
		retired[kid] = until
		t.trustedKIDs = append(t.trustedKIDs, kid)
		keys = append(keys, k)
	}
	if t.jwks, err = tokenkey.KeySet(keys...); err != nil {
		return nil, err
	}
	b, err := json.Marshal(retired)
	if err != nil {
		return nil, err
	}
	t.retired = string(b)
	return t, nil
}

// trustedKeysAnnotation is v1alpha1.AnnotationTrustedTokenKeys' value.
func (t *tokenTrust) trustedKeysAnnotation() string {
	kids := append([]string(nil), t.trustedKIDs...)
	sort.Strings(kids)
	return strings.Join(kids, ",")
}
