package imagesecret

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/objectmeta"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
	"github.com/image-registry-operator/image-registry-operator/pkg/metrics"
	"github.com/image-registry-operator/image-registry-operator/pkg/objectcache"
)

// desiredAccount mirrors the status into the account the registry's
// authenticator reads.
func (c *Controller) desiredAccount(cr *imageSecret, ref v1alpha1.RegistryRef) *v1alpha1.ImageRegistryAccount {
	return credentials.NewAccount(c.owner(cr), types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, cr.status.Rotation, cr.status.Passwords)
}

// accountOwnedBy tells whether an existing account mirrors this object (or
// an earlier object of the same kind, namespace and name, which it adopts).
func (c *Controller) accountOwnedBy(a *v1alpha1.ImageRegistryAccount, cr *imageSecret) bool {
	return a.Labels[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue &&
		a.Annotations[v1alpha1.AnnotationOwner] == credentials.OwnerKey(c.kind, cr.meta.Namespace, cr.meta.Name)
}

func accountUpToDate(existing, desired *v1alpha1.ImageRegistryAccount) bool {
	return objectmeta.Has(existing, desired) && objectcache.AccountSpecEqual(existing, desired)
}

// mergeAccount returns a copy of existing (which may come trimmed from the
// cache) with the desired spec, labels and annotations.
func mergeAccount(existing, desired *v1alpha1.ImageRegistryAccount) *v1alpha1.ImageRegistryAccount {
	a := existing.DeepCopy()
	a.Annotations = objectcache.WithoutDigest(a.Annotations)
	objectmeta.Merge(a, desired)
	a.Spec = desired.Spec
	return a
}

// deleteAccount removes the object's account in namespace, if it is there
// and ours. The UID precondition keeps it from deleting an account that
// replaced the one it looked at.
func (c *Controller) deleteAccount(ctx context.Context, cr *imageSecret, namespace string) (bool, error) {
	name := credentials.AccountName(c.kind, cr.meta.Namespace, cr.meta.Name)
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
	set := labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelType: string(c.kind)}
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
		kind, ns, name, ok := credentials.ParseOwnerKey(a.Annotations[v1alpha1.AnnotationOwner])
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
