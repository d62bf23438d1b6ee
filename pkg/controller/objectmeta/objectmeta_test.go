package objectmeta

import (
	"maps"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMergeKeepsOthersKeys(t *testing.T) {
	obj := &metav1.ObjectMeta{
		Labels:      map[string]string{"theirs": "x", "ours": "old"},
		Annotations: nil,
	}
	desired := &metav1.ObjectMeta{
		Labels:      map[string]string{"ours": "new"},
		Annotations: map[string]string{"a": "1"},
	}
	if Has(obj, desired) {
		t.Fatal("Has before Merge")
	}
	if !Merge(obj, desired) {
		t.Fatal("Merge reported no change")
	}
	if !maps.Equal(obj.Labels, map[string]string{"theirs": "x", "ours": "new"}) || !maps.Equal(obj.Annotations, map[string]string{"a": "1"}) {
		t.Errorf("merged labels %v, annotations %v", obj.Labels, obj.Annotations)
	}
	if !Has(obj, desired) {
		t.Error("Has after Merge")
	}
	if Merge(obj, desired) {
		t.Error("a second Merge reported a change")
	}
}
