package imageregistry

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

func readWriteManyRegistry() *v1alpha1.ImageRegistry {
	reg := newRegistry("team-a", "reg")
	reg.Spec.Replicas = ptr.To[int32](2)
	reg.Spec.PersistentVolumeClaim.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	return reg
}

func (f *fixture) claim(ns, name string) *corev1.PersistentVolumeClaim {
	f.t.Helper()
	c, err := f.kubeClient.CoreV1().PersistentVolumeClaims(ns).Get(f.ctx, name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// Replicas on a ReadWriteMany volume mount one claim the operator makes,
// not a claim each from a volumeClaimTemplate.
func TestReadWriteManyReplicasShareOneClaim(t *testing.T) {
	reg := readWriteManyRegistry()
	f := newFixture(t, nil, reg)
	f.mustSync(reg)

	sts := f.statefulSet(reg)
	if len(sts.Spec.VolumeClaimTemplates) != 0 {
		t.Fatalf("volumeClaimTemplates %v: every pod would get a volume of its own", sts.Spec.VolumeClaimTemplates)
	}
	var vol *corev1.Volume
	for i, v := range sts.Spec.Template.Spec.Volumes {
		if v.Name == dataVolume {
			vol = &sts.Spec.Template.Spec.Volumes[i]
		}
	}
	if vol == nil || vol.PersistentVolumeClaim == nil || vol.PersistentVolumeClaim.ClaimName != "data-reg-0" {
		t.Fatalf("pod volume %s = %+v, want the claim data-reg-0", dataVolume, vol)
	}
	pvc := f.claim("team-a", "data-reg-0")
	if len(pvc.OwnerReferences) != 0 {
		t.Errorf("the shared claim has owners %v: it must outlive the registry, as StatefulSet claims do", pvc.OwnerReferences)
	}
	if pvc.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue || pvc.Labels["app.kubernetes.io/instance"] != "reg" {
		t.Errorf("claim labels %v", pvc.Labels)
	}
	if got := pvc.Spec.AccessModes; len(got) != 1 || got[0] != corev1.ReadWriteMany {
		t.Errorf("claim access modes %v", got)
	}
	if got := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse(defaultStorageSize)) != 0 {
		t.Errorf("claim size %s, want %s", got.String(), defaultStorageSize)
	}

	// The claim is in the cache now: nothing more to write.
	f.markReady(reg)
	f.mustSync(reg)
	f.clearActions()
	f.mustSync(reg)
	f.expectActions()
}

// A shared claim that exists without ReadWriteMany (the claim of a
// registry that ran one pod on a ReadWriteOnce volume) cannot be shared:
// the registry says so instead of starting pods that cannot attach it.
func TestSharedClaimWithoutReadWriteMany(t *testing.T) {
	reg := readWriteManyRegistry()
	old := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "data-reg-0", Labels: selectorLabels(reg)},
		Spec:       corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}},
	}
	f := newFixture(t, []runtime.Object{old}, reg)
	if _, err := f.sync(reg); err == nil {
		t.Fatal("want error")
	}
	f.expectReady(reg, metav1.ConditionFalse, ReasonSharedClaimNotReadWriteMany)
	f.expectWarning(ReasonSharedClaimNotReadWriteMany)

	// One replica can use it.
	reg = f.registry("team-a", "reg")
	reg.Spec.Replicas = ptr.To[int32](1)
	if _, err := f.client.RegistryV1alpha1().ImageRegistries("team-a").Update(f.ctx, reg, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mustSync(reg)
	if c := f.readyCondition(reg); c.Reason == ReasonSharedClaimNotReadWriteMany {
		t.Errorf("one replica: Ready %s %s", c.Status, c.Reason)
	}
}

// A StatefulSet made with a claim template keeps it (the field is
// immutable, and the operator may not delete StatefulSets): scaled to two
// replicas on ReadWriteMany, each pod still has its own claim, so the
// registry is not Ready and says how to move to one shared claim; every
// object is still kept in shape.
func TestReplicasOnClaimTemplatesAreNotReady(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	reg = f.registry("team-a", "reg")
	reg.Spec.Replicas = ptr.To[int32](2)
	reg.Spec.PersistentVolumeClaim.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	if _, err := f.client.RegistryV1alpha1().ImageRegistries("team-a").Update(f.ctx, reg, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.clearActions()
	f.mustSync(reg)
	f.expectReady(reg, metav1.ConditionFalse, ReasonStorageNotShared)
	f.expectWarning(ReasonStorageNotShared)
	// The claims are ReadWriteOnce: none of them can become the shared one.
	if c := f.readyCondition(reg); !strings.Contains(c.Message, "data-reg-1") || !strings.Contains(c.Message, "ReadWriteMany storage or S3") {
		t.Errorf("Ready message %q does not say where the images are and what to do", c.Message)
	}
	for _, e := range f.events() {
		if strings.Contains(e, EventReasonVolumeClaimTemplateImmutable) {
			t.Errorf("a second Warning for the same cause: %s", e)
		}
	}
	sts := f.statefulSet(reg)
	if *sts.Spec.Replicas != 2 || len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Errorf("StatefulSet: %d replicas, %d claim templates; want 2 and the template kept", *sts.Spec.Replicas, len(sts.Spec.VolumeClaimTemplates))
	}
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.Name == dataVolume {
			t.Errorf("pod volume %s beside the claim template of that name", dataVolume)
		}
	}
	if _, err := f.kubeClient.CoreV1().PersistentVolumeClaims("team-a").Get(f.ctx, "data-reg-0", metav1.GetOptions{}); err == nil {
		t.Error("the operator made a shared claim the pods do not use")
	}
}

// A registry made on one shared claim keeps it when the spec goes back to
// ReadWriteOnce and one replica: its StatefulSet has no claim template, so
// the pods must go on mounting the claim (without a volume, the API server
// would refuse every StatefulSet update).
func TestSharedClaimKeptBackOnReadWriteOnce(t *testing.T) {
	reg := readWriteManyRegistry()
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	reg = f.registry("team-a", "reg")
	reg.Spec.Replicas = ptr.To[int32](1)
	reg.Spec.PersistentVolumeClaim.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	if _, err := f.client.RegistryV1alpha1().ImageRegistries("team-a").Update(f.ctx, reg, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mustSync(reg)
	sts := f.statefulSet(reg)
	if len(sts.Spec.VolumeClaimTemplates) != 0 {
		t.Fatalf("claim templates %v on a StatefulSet made without", sts.Spec.VolumeClaimTemplates)
	}
	found := false
	for _, v := range sts.Spec.Template.Spec.Volumes {
		found = found || (v.Name == dataVolume && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == "data-reg-0")
	}
	if !found {
		t.Errorf("pod volumes %v: want %s on claim data-reg-0", sts.Spec.Template.Spec.Volumes, dataVolume)
	}
	if c := f.readyCondition(reg); c.Reason == ReasonStorageNotShared || c.Reason == ReasonInvalidSpec {
		t.Errorf("Ready %s %s: %s", c.Status, c.Reason, c.Message)
	}
}

// A StatefulSet an earlier operator made with a ReadWriteMany claim
// template can move to the shared claim: its first pod's claim becomes it.
func TestReplicasOnReadWriteManyClaimTemplatesSayHowToShare(t *testing.T) {
	reg := newRegistry("team-a", "reg")
	f := newFixture(t, nil, reg)
	f.mustSync(reg)
	sts := f.statefulSet(reg)
	sts.Spec.VolumeClaimTemplates[0].Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	if _, err := f.kubeClient.AppsV1().StatefulSets("team-a").Update(f.ctx, sts, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	reg = f.registry("team-a", "reg")
	reg.Spec.Replicas = ptr.To[int32](2)
	reg.Spec.PersistentVolumeClaim.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	if _, err := f.client.RegistryV1alpha1().ImageRegistries("team-a").Update(f.ctx, reg, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mustSync(reg)
	f.expectReady(reg, metav1.ConditionFalse, ReasonStorageNotShared)
	if c := f.readyCondition(reg); !strings.Contains(c.Message, "into data-reg-0") || !strings.Contains(c.Message, "kubectl delete statefulset reg --cascade=orphan") {
		t.Errorf("Ready message %q does not say how to move to the shared claim", c.Message)
	}
}
