package imagesecret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/controller/worker"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
)

// ServiceAccounts (ImagePullSecret spec.serviceAccounts). The pull
// controller puts the generated Secret into the imagePullSecrets of the
// selected ServiceAccounts of the object's namespace, where the API server's
// ServiceAccount admission copies it into every new Pod that runs as them.
// It records on each ServiceAccount which entries it added
// (AnnotationAddedImagePullSecrets) and only ever removes those: an entry
// that was there before, the same name added by hand included, stays.
// Writes are merge patches that carry the ServiceAccount's resourceVersion:
// a concurrent change to the list or the record makes the patch fail with
// Conflict instead of being overwritten, and the object is synced again.

// selectsServiceAccount tells whether spec.serviceAccounts selects name.
func selectsServiceAccount(selected []string, name string) bool {
	return slices.Contains(selected, "*") || slices.Contains(selected, name)
}

func hasPullSecret(sa *corev1.ServiceAccount, secret string) bool {
	return slices.ContainsFunc(sa.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == secret })
}

// addedPullSecrets is the operator's record on sa.
func addedPullSecrets(sa *corev1.ServiceAccount) []string {
	v := sa.Annotations[v1alpha1.AnnotationAddedImagePullSecrets]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// countServiceAccounts is status.serviceAccounts: the selected
// ServiceAccounts whose imagePullSecrets name the Secret.
func (c *Controller) countServiceAccounts(cr *imageSecret) int32 {
	if c.serviceAccountLister == nil || len(cr.serviceAccounts) == 0 {
		return 0
	}
	sas, err := c.serviceAccountLister.ServiceAccounts(cr.meta.Namespace).List(labels.Everything())
	if err != nil {
		return 0
	}
	secret := c.secretName(cr)
	var n int32
	for _, sa := range sas {
		if selectsServiceAccount(cr.serviceAccounts, sa.Name) && hasPullSecret(sa, secret) {
			n++
		}
	}
	return n
}

// syncServiceAccounts adds the Secret where spec.serviceAccounts selects a
// ServiceAccount and removes the entries the operator added elsewhere. With
// keep false (the object is being deleted) it removes every entry it added.
// It also removes recorded entries that no ImagePullSecret of the namespace
// names any more: the Secret of one whose spec.secretName changed.
func (c *Controller) syncServiceAccounts(ctx context.Context, cr *imageSecret, keep bool) error {
	if c.serviceAccountLister == nil {
		return nil
	}
	sas, err := c.serviceAccountLister.ServiceAccounts(cr.meta.Namespace).List(labels.Everything())
	if err != nil {
		return err
	}
	secret := c.secretName(cr)
	named, err := c.pullSecretNames(cr.meta.Namespace)
	if err != nil {
		return err
	}
	var errs []error
	for _, sa := range sas {
		selected := keep && selectsServiceAccount(cr.serviceAccounts, sa.Name)
		add := ""
		if selected && !hasPullSecret(sa, secret) {
			add = secret
		}
		var remove []string
		for _, r := range addedPullSecrets(sa) {
			if (r == secret && !selected) || (r != secret && !named[r]) {
				remove = append(remove, r)
			}
		}
		if add != "" || len(remove) > 0 {
			errs = append(errs, c.patchServiceAccount(ctx, sa, add, remove))
		}
	}
	return errors.Join(errs...)
}

// pullSecretNames are the Secret names of the namespace's ImagePullSecrets.
func (c *Controller) pullSecretNames(namespace string) (map[string]bool, error) {
	objs, err := c.objectIndexer.ByIndex(cache.NamespaceIndex, namespace)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, o := range objs {
		if p, ok := o.(*v1alpha1.ImagePullSecret); ok {
			names[credentials.SecretName(credentials.KindPull, p.Name, p.Spec.SecretName)] = true
		}
	}
	return names, nil
}

// patchServiceAccount adds add (unless empty) to sa's imagePullSecrets and
// removes remove, in the list and in the operator's record, in one patch.
// The list is atomic (no strategic merge by name), so the patch is a JSON
// merge patch of the whole list, conditional on the resourceVersion it was
// computed from.
func (c *Controller) patchServiceAccount(ctx context.Context, sa *corev1.ServiceAccount, add string, remove []string) error {
	drop := func(name string) bool { return name == add || slices.Contains(remove, name) }
	record := slices.DeleteFunc(addedPullSecrets(sa), drop)
	list := slices.DeleteFunc(slices.Clone(sa.ImagePullSecrets), func(r corev1.LocalObjectReference) bool { return drop(r.Name) })
	if add != "" {
		record = append(record, add)
		list = append(list, corev1.LocalObjectReference{Name: add})
	}
	var annotation any // null deletes the annotation
	if len(record) > 0 {
		annotation = strings.Join(record, ",")
	}
	if list == nil {
		list = []corev1.LocalObjectReference{}
	}
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"resourceVersion": sa.ResourceVersion,
			"annotations":     map[string]any{v1alpha1.AnnotationAddedImagePullSecrets: annotation},
		},
		"imagePullSecrets": list,
	})
	if err != nil {
		return err
	}
	_, err = c.kubeClient.CoreV1().ServiceAccounts(sa.Namespace).Patch(ctx, sa.Name, types.MergePatchType, body, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("patching the imagePullSecrets of ServiceAccount %s (adding %q, removing %q): %w", klog.KObj(sa), add, remove, err)
	}
	klog.FromContext(ctx).V(2).Info("Patched ServiceAccount", "serviceAccount", klog.KObj(sa), "added", add, "removed", remove)
	return nil
}

// handleServiceAccount enqueues the ImagePullSecrets of the namespace that
// select ServiceAccounts, or whose Secret the operator recorded on this
// one.
func (c *Controller) handleServiceAccount(obj interface{}) {
	sa, ok := worker.MetaObject(obj)
	if !ok {
		return
	}
	objs, err := c.objectIndexer.ByIndex(cache.NamespaceIndex, sa.GetNamespace())
	if err != nil {
		return
	}
	for _, o := range objs {
		if p, ok := o.(*v1alpha1.ImagePullSecret); ok && len(p.Spec.ServiceAccounts) > 0 {
			c.enqueue(p)
		}
	}
}

// serviceAccountChanged filters ServiceAccount updates to those that matter.
func serviceAccountChanged(old, cur interface{}) bool {
	o, ok1 := old.(*corev1.ServiceAccount)
	n, ok2 := cur.(*corev1.ServiceAccount)
	return !ok1 || !ok2 || !slices.Equal(o.ImagePullSecrets, n.ImagePullSecrets) ||
		o.Annotations[v1alpha1.AnnotationAddedImagePullSecrets] != n.Annotations[v1alpha1.AnnotationAddedImagePullSecrets]
}
