// Package objectmeta merges the labels and annotations a controller owns
// into objects that others may label and annotate too: the controller's
// keys are set, everyone else's are kept.
package objectmeta

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Has tells whether obj carries every label and annotation of desired.
func Has(obj, desired metav1.Object) bool {
	return containsAll(obj.GetLabels(), desired.GetLabels()) &&
		containsAll(obj.GetAnnotations(), desired.GetAnnotations())
}

// Merge sets desired's labels and annotations on obj, which must be a copy
// the caller may change, and tells whether anything changed.
func Merge(obj, desired metav1.Object) bool {
	labels, l := merged(obj.GetLabels(), desired.GetLabels())
	annotations, a := merged(obj.GetAnnotations(), desired.GetAnnotations())
	if l {
		obj.SetLabels(labels)
	}
	if a {
		obj.SetAnnotations(annotations)
	}
	return l || a
}

func containsAll(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// merged returns have with want's entries and whether that differs from
// have; have is changed in place when it exists.
func merged(have, want map[string]string) (map[string]string, bool) {
	changed := false
	for k, v := range want {
		if cur, ok := have[k]; ok && cur == v {
			continue
		}
		if have == nil {
			have = make(map[string]string, len(want))
		}
		have[k] = v
		changed = true
	}
	return have, changed
}
