package imageregistry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/pki"
	"github.com/image-registry-operator/image-registry-operator/pkg/tokenkey"
)

// Certificate lifetimes. Certificates are renewed after two thirds of their
// lifetime (pki.RenewalTime), on a queue timer.
const (
	caValidity        = 10 * 365 * 24 * time.Hour
	servingValidity   = 90 * 24 * time.Hour
	tokenCertValidity = 365 * 24 * time.Hour
	// httpSecretBytes of randomness sign the registry's upload state; every
	// replica must share it.
	httpSecretBytes = 32
)

// keyMaterial is a PEM key pair the pod mounts, and for serving
// certificates the PEM CA bundle that verifies it.
type keyMaterial struct {
	certPEM, keyPEM, caPEM []byte
}

// ensureTokenKey provides the key pair the token server signs tokens with;
// the registry trusts its public key through the JWKS (trust.go).
func (c *Controller) ensureTokenKey(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState) error {
	auth := reg.Spec.Auth
	issuer := auth.IssuerRef
	if issuer == nil && auth.CA != nil {
		issuer = auth.CA.IssuerRef
	}
	var (
		m   *keyMaterial
		err error
	)
	if (auth.CA != nil && auth.CA.SecretName != "") || issuer != nil {
		// Not an operator-made key: nothing of it to bring back.
		c.tokenSecrets.forget(cache.MetaObjectToName(reg))
	}
	switch {
	case auth.CA != nil && auth.CA.SecretName != "":
		m, err = c.readUserKeyPair(ctx, reg, st, auth.CA.SecretName, ReasonTokenSecretNotFound, ReasonInvalidTokenSecret)
	case issuer != nil:
		m, err = c.ensureCertManagerKeyPair(ctx, reg, certificateRequest{
			name:       tokenSecretName(reg),
			issuer:     issuer,
			commonName: st.hostname + " token signing",
			usages:     []string{"digital signature"},
			duration:   tokenCertValidity,
		})
	default:
		m, err = c.ensureTokenSecret(ctx, reg, st)
	}
	if err != nil {
		return err
	}
	st.token = m
	return nil
}

// Keys of the operator-made token Secret beside tls.crt and tls.key: the
// next key pair, made at the renewal time and signed with once every pod
// trusts it (trust.go).
const (
	nextTokenCertKey = "next.crt"
	nextTokenKeyKey  = "next.key"
)

// ensureTokenSecret keeps the operator-made token signing key pair. A key
// is renewed in two steps, so that no registry pod refuses a token another
// pod signed: at the renewal time a next key is added and published in the
// registry's JWKS; once the rolled-out pod template trusts it, it replaces
// the signing key. A deleted Secret starts a renewal at once: its key pair
// comes back from c.tokenSecrets as the signing key (tokensecrets.go). A
// missing (and not remembered) or broken key pair is replaced at once.
func (c *Controller) ensureTokenSecret(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState) (*keyMaterial, error) {
	cur, err := lookup(c.secretsLister.Secrets(reg.Namespace).Get(tokenSecretName(reg)))
	if err != nil {
		return nil, err
	}
	sts, err := lookup(c.statefulSetsLister.StatefulSets(reg.Namespace).Get(statefulSetName(reg)))
	if err != nil {
		return nil, err
	}
	regKey := cache.MetaObjectToName(reg)
	restored := false
	var data map[string][]byte
	if cur == nil {
		if last, ok := c.tokenSecrets.get(regKey, reg.UID); ok {
			// Not in the cache: deleted, or not there yet (just written, or
			// without the label the cache filters on). Only the API tells.
			live, err := c.kubeClient.CoreV1().Secrets(reg.Namespace).Get(ctx, tokenSecretName(reg), metav1.GetOptions{})
			switch {
			case err == nil:
				cur = live
			case apierrors.IsNotFound(err):
				data, restored = last, true
			default:
				return nil, err
			}
		}
	}
	if cur != nil {
		if err := checkControlled(reg, "Secret", cur); err != nil {
			return nil, err
		}
		data = cur.Data
	}
	var kp, next *pki.KeyPair
	if p, err := pki.ParseKeyPair(data[corev1.TLSCertKey], data[corev1.TLSPrivateKeyKey]); err == nil {
		kp = p
		if n, err := pki.ParseKeyPair(data[nextTokenCertKey], data[nextTokenKeyKey]); err == nil {
			next = n
		}
	}
	newKey := func() (*pki.KeyPair, error) {
		return pki.NewSigningCert(pki.CertOptions{CommonName: st.hostname + " token signing", Validity: tokenCertValidity, Now: st.now})
	}
	switch {
	case kp == nil:
		if kp, err = newKey(); err != nil {
			return nil, err
		}
		next = nil
	case next != nil:
		kid, err := tokenkey.Thumbprint(next.Key.Public())
		if err != nil {
			return nil, err
		}
		if trustsKey(sts, kid) {
			kp, next = next, nil
		}
	case restored || !st.now.Before(pki.RenewalTime(kp.Cert)):
		if next, err = newKey(); err != nil {
			return nil, err
		}
	}
	if restored {
		klog.FromContext(ctx).Info("Token Secret deleted: writing it back with its signing key and a next key, which replaces it once every pod trusts it", "secret", klog.KRef(reg.Namespace, tokenSecretName(reg)))
	}
	desired := tlsSecret(reg, tokenSecretName(reg), kp.CertPEM, kp.KeyPEM, nil)
	if next != nil {
		desired.Data[nextTokenCertKey], desired.Data[nextTokenKeyKey] = next.CertPEM, next.KeyPEM
		st.nextTokenKey = next.Key.Public()
	} else {
		st.requeueNoLaterThan(pki.RenewalTime(kp.Cert))
	}
	written, err := ensureObject(ctx, c, reg, "Secret", cur, desired, c.kubeClient.CoreV1().Secrets(reg.Namespace), mergeTokenSecretData)
	if err != nil {
		return nil, err
	}
	c.tokenSecrets.remember(regKey, reg.UID, written.Data)
	return &keyMaterial{certPEM: kp.CertPEM, keyPEM: kp.KeyPEM}, nil
}

// mergeTokenSecretData is mergeSecretData that also drops a next key pair
// the desired Secret no longer has.
func mergeTokenSecretData(cur, desired *corev1.Secret) bool {
	changed := mergeSecretData(cur, desired)
	for _, k := range []string{nextTokenCertKey, nextTokenKeyKey} {
		if _, ok := desired.Data[k]; !ok {
			if _, ok := cur.Data[k]; ok {
				delete(cur.Data, k)
				changed = true
			}
		}
	}
	return changed
}

// ensureHTTPSecret keeps the random http.secret all replicas share. It
// reaches the registry as an environment variable, never through the ConfigMap.
func (c *Controller) ensureHTTPSecret(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState) error {
	cur, err := lookup(c.secretsLister.Secrets(reg.Namespace).Get(httpSecretName(reg)))
	if err != nil {
		return err
	}
	var value []byte
	if cur != nil {
		if err := checkControlled(reg, "Secret", cur); err != nil {
			return err
		}
		if v := cur.Data[httpSecretKey]; len(v) >= httpSecretBytes {
			value = v
		}
	}
	if value == nil {
		b := make([]byte, httpSecretBytes)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		value = []byte(base64.RawURLEncoding.EncodeToString(b))
	}
	desired := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: httpSecretName(reg), Labels: objectLabels(reg)},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{httpSecretKey: value},
	}
	if _, err := ensureObject(ctx, c, reg, "Secret", cur, desired, c.kubeClient.CoreV1().Secrets(reg.Namespace), mergeSecretData); err != nil {
		return err
	}
	st.httpSecret = value
	return nil
}

// readUserKeyPair reads a key pair Secret the user maintains. The
// operator's Secret informer cannot see it (no managed-by label), so it is
// read from the API and re-read every UserSecretRecheckInterval.
func (c *Controller) readUserKeyPair(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState, name, notFoundReason, invalidReason string) (*keyMaterial, error) {
	st.requeueNoLaterThan(st.now.Add(c.opts.UserSecretRecheckInterval))
	s, err := c.kubeClient.CoreV1().Secrets(reg.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, badInput(notFoundReason, "Secret %s/%s not found", reg.Namespace, name)
	}
	if err != nil {
		return nil, err
	}
	if _, err := pki.ParseKeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]); err != nil {
		return nil, badInput(invalidReason, "Secret %s/%s holds no valid %s/%s key pair: %v", reg.Namespace, name, corev1.TLSCertKey, corev1.TLSPrivateKeyKey, err)
	}
	return &keyMaterial{certPEM: s.Data[corev1.TLSCertKey], keyPEM: s.Data[corev1.TLSPrivateKeyKey], caPEM: s.Data[caCertKey]}, nil
}

func tlsSecret(reg *v1alpha1.ImageRegistry, name string, certPEM, keyPEM, caPEM []byte) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: objectLabels(reg)},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       certPEM,
			corev1.TLSPrivateKeyKey: keyPEM,
		},
	}
	if caPEM != nil {
		s.Data[caCertKey] = caPEM
	}
	return s
}

// mergeSecretData puts back the keys we own; a Secret's type is immutable,
// so a changed type is left for the user to resolve.
func mergeSecretData(cur, desired *corev1.Secret) bool {
	changed := false
	for k, v := range desired.Data {
		if !bytes.Equal(cur.Data[k], v) {
			if cur.Data == nil {
				cur.Data = map[string][]byte{}
			}
			cur.Data[k] = v
			changed = true
		}
	}
	return changed
}
