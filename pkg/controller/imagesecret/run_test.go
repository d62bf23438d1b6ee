package imagesecret

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubeinformers "k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/fake"
	informers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions"
)

// TestRunWiresInformersToSync runs the controller as main.go would, with
// informers on fake clients, and waits for the Secret of a new object.
func TestRunWiresInformersToSync(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kube := k8sfake.NewClientset()
	client := fake.NewSimpleClientset(registry(regNS, regName, true)) //nolint:staticcheck
	kubeFactory := kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0, kubeinformers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = v1alpha1.LabelManagedBy + "=" + v1alpha1.ManagedByValue
	}))
	factory := informers.NewSharedInformerFactory(client, 0)
	v := factory.Registry().V1alpha1()
	c, err := NewController(ctx, kube, client, kubeFactory.Core().V1().Secrets(), v.ImageRegistries(), v.ImageRegistryAccounts(),
		v.ImagePushSecrets(), nil, Options{Kind: KindPush, BcryptCost: bcrypt.MinCost, DefaultRegistry: types.NamespacedName{Namespace: regNS, Name: regName}})
	if err != nil {
		t.Fatal(err)
	}
	kubeFactory.Start(ctx.Done())
	factory.Start(ctx.Done())
	done := make(chan error)
	go func() { done <- c.Run(ctx, 1) }()

	if _, err := client.RegistryV1alpha1().ImagePushSecrets("team").Create(ctx, newObject(KindPush, "team", "ci").(*v1alpha1.ImagePushSecret), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := kube.CoreV1().Secrets("team").Get(ctx, "ci-image-push-secret", metav1.GetOptions{})
		if err == nil {
			o, err := client.RegistryV1alpha1().ImagePushSecrets("team").Get(ctx, "ci", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if statusAccepts(&o.Status, string(s.Data[KeyUsername]), string(s.Data[KeyPassword])) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no working Secret")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
