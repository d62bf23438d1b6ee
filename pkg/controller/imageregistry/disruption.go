package imageregistry

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// Voluntary disruptions (a node drain, a cluster upgrade) take the
// registry's pods one at a time: a PodDisruptionBudget with maxUnavailable
// 1, made for every registry so that its shape does not depend on the
// replica count (with one replica it allows the eviction, as there is no
// other pod to keep). Pods of one registry also prefer different nodes
// (podAntiAffinity, statefulset.go), so that losing one node leaves the
// other replicas serving.

func podDisruptionBudgetName(r *v1alpha1.ImageRegistry) string { return r.Name }

// ensurePodDisruptionBudget keeps the registry's budget, unless a budget
// of someone else's already selects its pods: the eviction API refuses to
// evict a pod that two budgets select, which would block every drain. Then
// the operator's own budget, if any, goes. A budget of someone else's under
// the operator's name is a Warning, not a stop: the registry serves as well
// without.
func (c *Controller) ensurePodDisruptionBudget(ctx context.Context, reg *v1alpha1.ImageRegistry, _ *syncState) error {
	budgets, err := c.disruptionBudgetsLister.PodDisruptionBudgets(reg.Namespace).List(labels.Everything())
	if err != nil {
		return err
	}
	// The pods' labels: the template's, and those the StatefulSet
	// controller and admission added to the pods that run.
	podLabels := []labels.Set{objectLabels(reg)}
	pods, err := c.podsLister.Pods(reg.Namespace).List(labels.SelectorFromSet(selectorLabels(reg)))
	if err != nil {
		return err
	}
	for _, p := range pods {
		podLabels = append(podLabels, p.Labels)
	}
	var ours, foreign *policyv1.PodDisruptionBudget
	for _, b := range budgets {
		if metav1.IsControlledBy(b, reg) {
			ours = b
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil || foreign != nil {
			continue
		}
		if slices.ContainsFunc(podLabels, func(l labels.Set) bool { return sel.Matches(l) }) {
			foreign = b
		}
	}
	if foreign != nil {
		klog.FromContext(ctx).V(4).Info("A PodDisruptionBudget of someone else's selects the registry's pods", "podDisruptionBudget", klog.KObj(foreign))
		if ours == nil {
			return nil
		}
		err := c.kubeClient.PolicyV1().PodDisruptionBudgets(reg.Namespace).Delete(ctx, ours.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &ours.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete PodDisruptionBudget %s/%s: %w", ours.Namespace, ours.Name, err)
		}
		c.recorder.Eventf(reg, corev1.EventTypeNormal, EventReasonDisruptionBudgetLeftToUser,
			"Deleted PodDisruptionBudget %s: PodDisruptionBudget %s selects the registry's pods too, and the eviction API refuses pods two budgets select", ours.Name, foreign.Name)
		return nil
	}
	desired := podDisruptionBudget(reg)
	cur, err := lookup(c.disruptionBudgetsLister.PodDisruptionBudgets(reg.Namespace).Get(desired.Name))
	if err != nil {
		return err
	}
	if cur != nil && !metav1.IsControlledBy(cur, reg) {
		c.recorder.Eventf(reg, corev1.EventTypeWarning, ReasonResourceConflict,
			"PodDisruptionBudget %s exists and is not controlled by ImageRegistry %s: the registry runs without a budget", cur.Name, reg.Name)
		return nil
	}
	_, err = ensureObject(ctx, c, reg, "PodDisruptionBudget", cur, desired, c.kubeClient.PolicyV1().PodDisruptionBudgets(reg.Namespace), mergePodDisruptionBudget)
	return err
}

func podDisruptionBudget(reg *v1alpha1.ImageRegistry) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: podDisruptionBudgetName(reg), Labels: objectLabels(reg)},
		Spec: policyv1.PodDisruptionBudgetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: selectorLabels(reg)},
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			// A pod that is not Ready serves nothing: evicting it costs
			// nothing, and a drain must not wait for it.
			UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
		},
	}
}

func mergePodDisruptionBudget(cur, desired *policyv1.PodDisruptionBudget) bool {
	if equality.Semantic.DeepEqual(cur.Spec, desired.Spec) {
		return false
	}
	cur.Spec = desired.Spec
	return true
}

// podAntiAffinity asks the scheduler to put a registry's pods on different
// nodes where it can.
func podAntiAffinity(reg *v1alpha1.ImageRegistry) *corev1.Affinity {
	return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{
				LabelSelector: &metav1.LabelSelector{MatchLabels: selectorLabels(reg)},
				TopologyKey:   corev1.LabelHostname,
			},
		}},
	}}
}
