package main

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	registryv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	clientset "github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned"
)

// managedOnly limits a list/watch to objects the operator made.
func managedOnly(opts *metav1.ListOptions) {
	opts.LabelSelector = labels.Set{registryv1alpha1.LabelManagedBy: registryv1alpha1.ManagedByValue}.String()
}

// newControllers builds every controller on shared informer factories.
func newControllers(ctx context.Context, o *options, kubeClient kubernetes.Interface, registryClient clientset.Interface) (map[string]runnable, []starter, error) {
	f := newInformerFactories(o, kubeClient, registryClient)
	ctrls := map[string]runnable{}
	if len(ctrls) == 0 {
		return nil, nil, errNoControllers
	}
	return ctrls, []starter{f.kube, f.secrets, f.registry}, nil
}
