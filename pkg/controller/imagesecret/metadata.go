package imagesecret

import (
	"maps"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The controller owns some labels and annotations of the Secrets and
// accounts it writes; others' keys are left alone.

// hasMetadata tells whether existing carries every label and annotation of desired.
func hasMetadata(existing, desired metav1.Object) bool {
	return containsAll(existing.GetLabels(), desired.GetLabels()) &&
		containsAll(existing.GetAnnotations(), desired.GetAnnotations())
}

func containsAll(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// mergeMetadata sets desired's labels and annotations on obj, which must be
// a copy the caller may change.
func mergeMetadata(obj, desired metav1.Object) {
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, desired.GetLabels())
	obj.SetLabels(labels)
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	maps.Copy(annotations, desired.GetAnnotations())
	obj.SetAnnotations(annotations)
}
