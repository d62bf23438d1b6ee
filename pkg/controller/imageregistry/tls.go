package imageregistry

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/pki"
)

// ensureTLS provides the serving key pair from one of three sources: the
// user's Secret (spec.tls.secretName, read only), a cert-manager Certificate
// (spec.tls.issuerRef), or by default a certificate the operator's CA signs.
func (c *Controller) ensureTLS(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState) error {
	var (
		m   *keyMaterial
		err error
	)
	switch tls := reg.Spec.TLS; {
	case tls != nil && tls.SecretName != "":
		m, err = c.readUserKeyPair(ctx, reg, st, tls.SecretName, ReasonTLSSecretNotFound, ReasonInvalidTLSSecret)
	case tls != nil && tls.IssuerRef != nil:
		m, err = c.ensureCertManagerKeyPair(ctx, reg, certificateRequest{
			name:       tlsSecretName(reg),
			issuer:     tls.IssuerRef,
			commonName: st.hostname,
			// Only the public hostname: ACME issuers refuse cluster-internal names.
			dnsNames: []string{st.hostname},
			usages:   []string{"server auth", "digital signature"},
			duration: servingValidity,
		})
	default:
		var ca *pki.KeyPair
		if ca, err = c.ensureCA(ctx, st.now); err == nil {
			m, err = c.ensureServingSecret(ctx, reg, st, ca)
		}
	}
	if err != nil {
		return err
	}
	st.tls = m
	return nil
}

// servingDNSNames are the names the operator-signed certificate holds: the
// public hostname, the Service's cluster names and the StatefulSet pods'
// headless names. Each ends in the registry's own namespace, so that no
// registry gets a certificate for a name another one owns: no bare name,
// no <name>.<namespace> (a namespace may be named like a zone), no
// localhost (the operator CA is trusted by every node).
func servingDNSNames(reg *v1alpha1.ImageRegistry, hostname string) []string {
	n, ns, hl := reg.Name, reg.Namespace, headlessServiceName(reg)
	names := []string{
		hostname,
		n + "." + ns + ".svc",
		n + "." + ns + ".svc.cluster.local",
		"*." + hl + "." + ns + ".svc",
		"*." + hl + "." + ns + ".svc.cluster.local",
	}
	seen := map[string]bool{}
	out := names[:0]
	for _, name := range names {
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

// ensureServingSecret keeps <name>-tls signed by the operator CA, valid for
// every serving name, and re-issues it at its renewal time.
func (c *Controller) ensureServingSecret(ctx context.Context, reg *v1alpha1.ImageRegistry, st *syncState, ca *pki.KeyPair) (*keyMaterial, error) {
	cur, err := lookup(c.secretsLister.Secrets(reg.Namespace).Get(tlsSecretName(reg)))
	if err != nil {
		return nil, err
	}
	if cur != nil {
		if err := checkControlled(reg, "Secret", cur); err != nil {
			return nil, err
		}
	}
	names := servingDNSNames(reg, st.hostname)
	var kp *pki.KeyPair
	if cur != nil {
		p, err := pki.ParseKeyPair(cur.Data[corev1.TLSCertKey], cur.Data[corev1.TLSPrivateKeyKey])
		switch {
		case err != nil:
			klog.FromContext(ctx).Info("Re-issuing unreadable serving certificate", "secret", klog.KObj(cur), "err", err)
		case !st.now.Before(pki.RenewalTime(p.Cert)):
			klog.FromContext(ctx).Info("Renewing serving certificate", "secret", klog.KObj(cur), "notAfter", p.Cert.NotAfter)
		case pki.VerifyServing(p.Cert, ca.CertPEM, names, st.now) != nil:
			// The CA or the hostname changed.
			klog.FromContext(ctx).Info("Re-issuing serving certificate that no longer verifies", "secret", klog.KObj(cur))
		default:
			kp = p
		}
	}
	if kp == nil {
		kp, err = pki.NewServingCert(ca, pki.CertOptions{CommonName: st.hostname, DNSNames: names, Validity: servingValidity, Now: st.now})
		if err != nil {
			return nil, fmt.Errorf("issue serving certificate for %s: %w", klog.KObj(reg), err)
		}
	}
	desired := tlsSecret(reg, tlsSecretName(reg), kp.CertPEM, kp.KeyPEM, ca.CertPEM)
	if _, err := ensureObject(ctx, c, reg, "Secret", cur, desired, c.kubeClient.CoreV1().Secrets(reg.Namespace), mergeSecretData); err != nil {
		return nil, err
	}
	st.requeueNoLaterThan(pki.RenewalTime(kp.Cert))
	return &keyMaterial{certPEM: kp.CertPEM, keyPEM: kp.KeyPEM, caPEM: ca.CertPEM}, nil
}

// ensureCA returns the operator CA from CASecretName in the operator
// namespace, creating it when missing and replacing it when unusable
// (unparsable or expired). An administrator may put their own CA key pair
// there. The CA is not rotated before it expires: its 10 years outlive
// most clusters, and a rotation needs clients to trust both CAs for a while.
func (c *Controller) ensureCA(ctx context.Context, now time.Time) (*pki.KeyPair, error) {
	ns := c.opts.OperatorNamespace
	cur, err := lookup(c.secretsLister.Secrets(ns).Get(CASecretName))
	if err != nil {
		return nil, err
	}
	if cur != nil {
		kp, err := pki.ParseKeyPair(cur.Data[corev1.TLSCertKey], cur.Data[corev1.TLSPrivateKeyKey])
		if err == nil && kp.Cert.IsCA && now.Before(kp.Cert.NotAfter) {
			return kp, nil
		}
		klog.FromContext(ctx).Info("Replacing unusable operator CA", "secret", klog.KObj(cur), "err", err)
	}
	kp, err := pki.NewCA(pki.CertOptions{CommonName: "image-registry-operator CA", Validity: caValidity, Now: now})
	if err != nil {
		return nil, err
	}
	secrets := c.kubeClient.CoreV1().Secrets(ns)
	if cur != nil {
		upd := cur.DeepCopy()
		upd.Data = map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM}
		// The resourceVersion from the cache makes this a conditional write:
		// a concurrent replacement wins and we retry with it.
		if _, err := secrets.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("replace CA Secret %s/%s: %w", ns, CASecretName, err)
		}
		return kp, nil
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      CASecretName,
			Namespace: ns,
			Labels:    map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM},
	}
	_, err = secrets.Create(ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Another worker (or operator replica) won; use its CA.
		got, err := secrets.Get(ctx, CASecretName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("read CA Secret %s/%s: %w", ns, CASecretName, err)
		}
		return pki.ParseKeyPair(got.Data[corev1.TLSCertKey], got.Data[corev1.TLSPrivateKeyKey])
	}
	if err != nil {
		return nil, fmt.Errorf("create CA Secret %s/%s: %w", ns, CASecretName, err)
	}
	klog.FromContext(ctx).Info("Created operator CA", "secret", klog.KRef(ns, CASecretName))
	return kp, nil
}
