package imageregistry

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// ensureRBAC gives the auth container's ServiceAccount read access to the
// ImageRegistryAccounts of the registry's namespace and nothing else: a
// RoleBinding there to the fixed ClusterRole Options.TokenServerClusterRole
// (get, list, watch imageregistryaccounts). The operator creates no Roles,
// so it needs no right to write any; it may bind only that ClusterRole.
func (c *Controller) ensureRBAC(ctx context.Context, reg *v1alpha1.ImageRegistry, _ *syncState) error {
	ns := reg.Namespace
	sa := &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: authServiceAccountName(reg), Labels: objectLabels(reg)},
	}
	curSA, err := lookup(c.serviceAccountsLister.ServiceAccounts(ns).Get(sa.Name))
	if err != nil {
		return err
	}
	if _, err := ensureObject(ctx, c, reg, "ServiceAccount", curSA, sa, c.kubeClient.CoreV1().ServiceAccounts(ns), func(_, _ *corev1.ServiceAccount) bool { return false }); err != nil {
		return err
	}

	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: authRoleName(reg), Labels: objectLabels(reg)},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: c.opts.TokenServerClusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: ns}},
	}
	curRB, err := lookup(c.roleBindingsLister.RoleBindings(ns).Get(rb.Name))
	if err != nil {
		return err
	}
	if curRB != nil && metav1.IsControlledBy(curRB, reg) && curRB.RoleRef != rb.RoleRef {
		// roleRef is immutable: replace the binding. The UID precondition
		// keeps us from deleting a binding someone recreated meanwhile.
		uid := curRB.UID
		err := c.kubeClient.RbacV1().RoleBindings(ns).Delete(ctx, curRB.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete RoleBinding %s/%s to change its roleRef: %w", ns, curRB.Name, err)
		}
		curRB = nil
	}
	_, err = ensureObject(ctx, c, reg, "RoleBinding", curRB, rb, c.kubeClient.RbacV1().RoleBindings(ns), func(cur, desired *rbacv1.RoleBinding) bool {
		if equality.Semantic.DeepEqual(cur.Subjects, desired.Subjects) {
			return false
		}
		cur.Subjects = desired.Subjects
		return true
	})
	return err
}
