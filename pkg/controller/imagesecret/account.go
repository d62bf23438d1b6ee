package imagesecret

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/metrics"
)

// AccountName is the name of the account mirroring the object of the kind
// in namespace: "<type>.<namespace>.<name>", unique per kind and object,
// since namespaces contain no dots, and a DNS subdomain since name is one.
// Longer than 253 characters it becomes a prefix plus a hash of the whole.
func AccountName(kind Kind, namespace, name string) string {
	full := string(kind) + "." + namespace + "." + name
	if len(full) <= validation.DNS1123SubdomainMaxLength {
		return full
	}
	sum := sha256.Sum256([]byte(full))
	suffix := hex.EncodeToString(sum[:8])
	prefix := strings.TrimRight(full[:validation.DNS1123SubdomainMaxLength-len(suffix)-1], ".-")
	return prefix + "." + suffix
}

// labelValue returns v if it is a valid label value, else a hash of it, so
// that long names never produce an invalid (and then empty) selector.
func labelValue(v string) string {
	if len(validation.IsValidLabelValue(v)) == 0 {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:20])
}

// OwnerKey is the AnnotationOwner value of the object's account.
func OwnerKey(kind Kind, namespace, name string) string {
	return string(kind) + "/" + namespace + "/" + name
}

func parseOwner(s string) (kind Kind, namespace, name string, ok bool) {
	parts := strings.SplitN(s, "/", 3)
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return Kind(parts[0]), parts[1], parts[2], true
}

// desiredAccount mirrors the status into the account the authenticator reads.
func (c *Controller) desiredAccount(cr *imageSecret, registryNamespace string) *v1alpha1.ImageRegistryAccount {
	ns, name := cr.meta.Namespace, cr.meta.Name
	rotation := cr.status.Rotation
	return &v1alpha1.ImageRegistryAccount{
		ObjectMeta: metav1.ObjectMeta{
			Name:      AccountName(c.kind, ns, name),
			Namespace: registryNamespace,
			Labels: map[string]string{
				v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue,
				LabelType:               string(c.kind),
				LabelOwnerNamespace:     labelValue(ns),
				LabelOwnerName:          labelValue(name),
			},
			Annotations: map[string]string{
				AnnotationOwner:    OwnerKey(c.kind, ns, name),
				AnnotationOwnerUID: string(cr.meta.UID),
			},
		},
		Spec: v1alpha1.ImageRegistryAccountSpec{
			Username:  ns + "/" + name,
			Rotation:  &rotation,
			Passwords: append([]string(nil), cr.status.Passwords...),
			Labels: map[string][]string{
				"namespace": {ns},
				"name":      {name},
				"type":      {string(c.kind)},
			},
		},
	}
}

// accountOwnedBy tells whether an existing account mirrors this object (or
// an earlier object of the same kind, namespace and name, which it adopts).
func (c *Controller) accountOwnedBy(a *v1alpha1.ImageRegistryAccount, cr *imageSecret) bool {
	return a.Labels[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue &&
		a.Annotations[AnnotationOwner] == OwnerKey(c.kind, cr.meta.Namespace, cr.meta.Name)
}

func accountUpToDate(existing, desired *v1alpha1.ImageRegistryAccount) bool {
	return hasMetadata(existing, desired) && accountSpecEqual(existing, desired)
}

// mergeAccount returns a copy of existing (which may come trimmed from the
// cache) with the desired spec, labels and annotations.
func mergeAccount(existing, desired *v1alpha1.ImageRegistryAccount) *v1alpha1.ImageRegistryAccount {
	a := existing.DeepCopy()
	delete(a.Annotations, cacheDigestKey)
	mergeMetadata(a, desired)
	a.Spec = desired.Spec
	return a
}

// deleteAccount removes the object's account in namespace, if it is there
// and ours. The UID precondition keeps it from deleting an account that
// replaced the one it looked at.
func (c *Controller) deleteAccount(ctx context.Context, cr *imageSecret, namespace string) (bool, error) {
	name := AccountName(c.kind, cr.meta.Namespace, cr.meta.Name)
	accounts := c.registryClient.RegistryV1alpha1().ImageRegistryAccounts(namespace)
	a, err := accounts.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("getting account %s/%s: %w", namespace, name, err)
	}
	if !c.accountOwnedBy(a, cr) {
		return false, nil
	}
	uid := a.UID
	err = accounts.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("deleting account %s/%s: %w", namespace, name, err)
	}
	return true, nil
}

// managedAccountSelector selects this kind's operator-made accounts. It is
// built from constants only; an empty selector here would match every
// account, so it is refused.
func (c *Controller) managedAccountSelector() (labels.Selector, error) {
	set := labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, LabelType: string(c.kind)}
	sel, err := labels.ValidatedSelectorFromSet(set)
	if err != nil {
		return nil, err
	}
	if sel.Empty() {
		return nil, errors.New("refusing an empty account selector")
	}
	return sel, nil
}

// sweep deletes accounts of this kind whose object no longer exists (for
// instance because its finalizer was removed by hand) or whose object now
// uses a registry in another namespace. The cache only nominates candidates;
// the object's absence is confirmed with a live read, and the delete carries
// UID and resourceVersion preconditions, so an account adopted meanwhile
// survives.
func (c *Controller) sweep(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	sel, err := c.managedAccountSelector()
	if err != nil {
		return err
	}
	accounts, err := c.accountLister.List(sel)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range accounts {
		kind, ns, name, ok := parseOwner(a.Annotations[AnnotationOwner])
		if !ok || kind != c.kind {
			continue
		}
		if cr, err := c.objects.get(ns, name); err == nil && !accountMisplaced(cr, a) {
			continue
		}
		cr, err := c.objects.getLive(ctx, ns, name)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			errs = append(errs, err)
			continue
		case !accountMisplaced(cr, a):
			continue
		}
		uid, rv := a.UID, a.ResourceVersion
		err = c.registryClient.RegistryV1alpha1().ImageRegistryAccounts(a.Namespace).Delete(ctx, a.Name,
			metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting orphan account %s/%s: %w", a.Namespace, a.Name, err))
			continue
		}
		metrics.AccountOperations.WithLabelValues(string(c.kind), "swept").Inc()
		logger.Info("Deleted orphan account", "account", klog.KObj(a), "owner", klog.KRef(ns, name), "kind", c.kind)
	}
	return errors.Join(errs...)
}

// accountMisplaced: the object publishes to a registry in another namespace.
func accountMisplaced(cr *imageSecret, a *v1alpha1.ImageRegistryAccount) bool {
	ref := cr.status.RegistryRef
	return ref != nil && ref.Namespace != "" && ref.Namespace != a.Namespace
}
