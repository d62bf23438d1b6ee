// Package fakeactions formats the actions a client-go fake clientset
// recorded, for the controllers' test fixtures: one format for all of them.
package fakeactions

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	core "k8s.io/client-go/testing"
)

// String is "verb resource[/subresource] namespace/name", the name taken
// from the object for a create or an update and from the request otherwise.
func String(a core.Action) string {
	res := a.GetResource().Resource
	if sub := a.GetSubresource(); sub != "" {
		res += "/" + sub
	}
	var name string
	switch a := a.(type) {
	case core.CreateAction: // and core.UpdateAction: same method set
		if o, ok := a.GetObject().(metav1.Object); ok {
			name = o.GetName()
		}
	case interface{ GetName() string }: // get, delete, patch
		name = a.GetName()
	}
	return fmt.Sprintf("%s %s %s/%s", a.GetVerb(), res, a.GetNamespace(), name)
}

// Writes is String of each action but the informers' list and watch (and
// discovery reads), in order.
func Writes(actions ...[]core.Action) []string {
	var out []string
	for _, as := range actions {
		for _, a := range as {
			if a.GetVerb() == "list" || a.GetVerb() == "watch" || a.GetResource().Resource == "resource" {
				continue
			}
			out = append(out, String(a))
		}
	}
	return out
}
