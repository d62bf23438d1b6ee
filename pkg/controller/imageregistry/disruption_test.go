package imageregistry

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

func (f *fixture) disruptionBudget(ns, name string) *policyv1.PodDisruptionBudget {
	f.t.Helper()
	b, err := f.kubeClient.PolicyV1().PodDisruptionBudgets(ns).Get(f.ctx, name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// A registry's pods go one at a time in voluntary disruptions and prefer
// different nodes; a budget changed by hand is put back.
func TestPodDisruptionBudgetAndSpread(t *testing.T) {
	reg := readWriteManyRegistry()
	f := newFixture(t, nil, reg)
	f.mustSync(reg)

	b := f.disruptionBudget("team-a", "reg")
	if !metav1.IsControlledBy(b, reg) {
		t.Errorf("PodDisruptionBudget owners %v", b.OwnerReferences)
	}
	if b.Spec.MaxUnavailable == nil || *b.Spec.MaxUnavailable != intstr.FromInt32(1) || b.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget allows %v unavailable, min available %v; want maxUnavailable 1", b.Spec.MaxUnavailable, b.Spec.MinAvailable)
	}
	if !equality.Semantic.DeepEqual(b.Spec.Selector.MatchLabels, selectorLabels(reg)) {
		t.Errorf("PodDisruptionBudget selects %v, want the registry's pods %v", b.Spec.Selector.MatchLabels, selectorLabels(reg))
	}
	if p := b.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
		t.Errorf("unhealthy pod eviction policy %v, want AlwaysAllow", p)
	}

	aff := f.statefulSet(reg).Spec.Template.Spec.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Fatalf("pod affinity %+v, want one preferred anti-affinity term", aff)
	}
	term := aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
	if term.TopologyKey != corev1.LabelHostname || !equality.Semantic.DeepEqual(term.LabelSelector.MatchLabels, selectorLabels(reg)) {
		t.Errorf("anti-affinity term %+v: want the registry's pods per %s", term, corev1.LabelHostname)
	}
	if len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 0 {
		t.Error("required anti-affinity: replicas could not run on a one-node cluster")
	}

	// Drift: someone blocks every eviction.
	zero := intstr.FromInt32(0)
	b.Spec.MaxUnavailable = &zero
	if _, err := f.kubeClient.PolicyV1().PodDisruptionBudgets("team-a").Update(f.ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.clearActions()
	f.mustSync(reg)
	if got := f.disruptionBudget("team-a", "reg").Spec.MaxUnavailable; got == nil || *got != intstr.FromInt32(1) {
		t.Errorf("after the repair maxUnavailable is %v", got)
	}
}

// A budget of the user's that selects the registry's pods takes the place
// of the operator's: the eviction API refuses a pod two budgets select, so
// keeping both would block every drain. A budget of someone else's under
// the operator's name is a Warning, and the rest of the sync goes on.
func TestUserDisruptionBudgetWins(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	theirs := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "registry-budget"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/instance": "reg"}},
			MinAvailable: ptr.To(intstr.FromInt32(1)),
		},
	}
	if _, err := f.kubeClient.PolicyV1().PodDisruptionBudgets("team-a").Create(f.ctx, theirs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.clearActions()
	f.mustSync(reg)
	f.expectActions("delete poddisruptionbudgets team-a/reg")
	f.clearActions()
	f.mustSync(reg)
	f.expectActions()

	// Same name, other pods: a Warning; the registry is still Ready.
	f2 := newFixture(t, []runtime.Object{&policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "reg"},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}}},
	}}, reg)
	f2.mustSync(reg)
	f2.expectWarning(ReasonResourceConflict)
	if b := f2.disruptionBudget("team-a", "reg"); len(b.OwnerReferences) != 0 || b.Spec.Selector.MatchLabels["app"] != "other" {
		t.Errorf("someone else's budget was changed: %+v", b)
	}
	if c := f2.readyCondition(reg); c.Reason == ReasonResourceConflict {
		t.Errorf("Ready %s %s because of someone else's budget", c.Status, c.Reason)
	}
}

// A budget of someone else's, added or removed, brings a sync of the
// namespace's registries: the operator's own budget must go or come back.
// One that selects the running pods by a label only they carry counts.
func TestUserDisruptionBudgetEventsAndPodLabels(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	other := newRegistry("team-b", "reg")
	f := newFixture(t, nil, reg, other)
	c := f.controller()
	theirs := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "registry-budget"},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"injected": "yes"}}},
	}
	c.ownedHandler(c.enqueueNamespace).OnAdd(theirs, false)
	if got := drain(c); len(got) != 1 || got[0] != "team-a/reg" {
		t.Fatalf("a user's budget enqueued %v, want team-a/reg", got)
	}

	f.mustSync(reg)
	if _, err := f.kubeClient.PolicyV1().PodDisruptionBudgets("team-a").Create(f.ctx, theirs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.clearActions()
	f.mustSync(reg)
	f.expectActions() // no pod carries the label yet: both budgets are apart
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "reg-0", Labels: map[string]string{
		"app.kubernetes.io/name": "image-registry", "app.kubernetes.io/instance": "reg", v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, "injected": "yes",
	}}}
	if _, err := f.kubeClient.CoreV1().Pods("team-a").Create(f.ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.clearActions()
	f.mustSync(reg)
	f.expectActions("delete poddisruptionbudgets team-a/reg")
}
