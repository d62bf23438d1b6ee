//go:build e2e

package e2e

// One trust domain per registry (issue 18): an account is valid for the
// registries its spec.registries names, and a registry refuses the others
// exactly as it refuses a wrong password.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/dataplane"
)

func TestUserAccountsAreScopedToTheirRegistry(t *testing.T) {
	u := newUserEnv(t)
	u.applyExamples(t)
	u.startDataPlane(t, exampleRegistry)
	u.waitReady(t, readyTimeout, "imageregistry/"+exampleRegistry, "imagepushsecret/example")
	ctx := context.Background()
	ref := u.image("app:v1")
	if _, err := u.crane.PushRandom(ctx, u.creds(t, u.ns, examplePushSecret), ref); err != nil {
		t.Fatal(err)
	}

	// What the operator generates names the one registry of its object.
	acc, err := u.registry.RegistryV1alpha1().ImageRegistryAccounts(u.ns).Get(ctx, credentials.AccountName(credentials.KindPush, u.ns, "example"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(acc.Spec.Registries, []string{exampleRegistry}) {
		t.Errorf("generated account's spec.registries %q, want [%s]", acc.Spec.Registries, exampleRegistry)
	}

	// A static account of a second registry in the same namespace: this
	// registry refuses its right password as it refuses a wrong one.
	const password = "b-bot-password"
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.registry.RegistryV1alpha1().ImageRegistryAccounts(u.ns).Create(ctx, &v1alpha1.ImageRegistryAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "b-bot"},
		Spec: v1alpha1.ImageRegistryAccountSpec{
			Passwords:  []string{string(h)},
			Labels:     map[string][]string{"namespace": {u.ns}, "type": {"pull"}},
			Registries: []string{"registry-b"},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	right := u.staticCreds(t, "b-bot", password)
	wrong := u.staticCreds(t, "b-bot", "not-the-password")
	_, errRight := u.crane.Pull(ctx, right, ref)
	denied(t, "pull as registry-b's account", errRight)
	_, errWrong := u.crane.Pull(ctx, wrong, ref)
	denied(t, "pull with a wrong password", errWrong)
	if a, b := craneStatus(errRight), craneStatus(errWrong); a != b {
		t.Errorf("another registry's account answered %q, a wrong password %q: want the same", a, b)
	}

	// Naming this registry makes the same login work.
	if _, err := u.registry.RegistryV1alpha1().ImageRegistryAccounts(u.ns).Patch(ctx, "b-bot", types.MergePatchType,
		[]byte(`{"spec":{"registries":["registry-b","`+exampleRegistry+`"]}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "b-bot to pull once it names this registry", func(ctx context.Context) (bool, error) {
		_, err := u.crane.Pull(ctx, right, ref)
		return err == nil, nil
	})
}

// staticCreds are crane credentials for a static account's login.
func (u *userEnv) staticCreds(t *testing.T, user, password string) *dataplane.Credentials {
	t.Helper()
	pushSecret := u.secret(t, u.ns, examplePushSecret)
	cfg, err := json.Marshal(map[string]any{"auths": map[string]any{u.dp.Hostname(): map[string]string{
		"username": user, "password": password,
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := u.crane.SaveCredentials(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: u.ns, Name: user},
		Data:       map[string][]byte{"config.json": cfg, "ca.crt": pushSecret.Data["ca.crt"]},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// craneStatus is the status line crane reported for a refused request.
func craneStatus(err error) string {
	var ce *dataplane.CraneError
	if !errors.As(err, &ce) {
		return ""
	}
	return tail(ce.Stderr, 120)
}
