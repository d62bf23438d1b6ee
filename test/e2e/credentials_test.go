//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	v1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// published is one version of the hashes the operator published (in a CR
// status or an account), at an etcd revision.
type published struct {
	rv     int64
	hashes []string
}

// issued is one version of a generated Secret.
type issued struct {
	rv                       int64
	username, password, next string
	data                     map[string][]byte
}

// history records, from watches, every version of the hashes and Secrets.
type history struct {
	mu       sync.Mutex
	status   map[string][]published // by CR kind+name
	accounts map[string][]published // by account username
	secrets  map[string][]issued    // by Secret name
}

func rv(obj metav1.Object) int64 {
	n, _ := strconv.ParseInt(obj.GetResourceVersion(), 10, 64)
	return n
}

// record follows a watch until ctx ends.
func (h *history) record(ctx context.Context, w watch.Interface) {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			h.mu.Lock()
			switch o := ev.Object.(type) {
			case *v1alpha1.ImagePushSecret:
				h.status["push/"+o.Name] = append(h.status["push/"+o.Name], published{rv(o), o.Status.Passwords})
			case *v1alpha1.ImagePullSecret:
				h.status["pull/"+o.Name] = append(h.status["pull/"+o.Name], published{rv(o), o.Status.Passwords})
			case *v1alpha1.ImageRegistryAccount:
				h.accounts[o.Spec.Username] = append(h.accounts[o.Spec.Username], published{rv(o), o.Spec.Passwords})
			case *corev1.Secret:
				h.secrets[o.Name] = append(h.secrets[o.Name], issued{rv(o), string(o.Data["username"]), string(o.Data["password"]), string(o.Data["nextpassword"]), o.Data})
			}
			h.mu.Unlock()
		}
	}
}

// firstPublished returns the revision at which a hash of password first
// appeared in versions, or -1.
func firstPublished(versions []published, password string) int64 {
	for _, v := range versions {
		for _, h := range v.hashes {
			if bcrypt.CompareHashAndPassword([]byte(h), []byte(password)) == nil {
				return v.rv
			}
		}
	}
	return -1
}

// TestCredentialsRotateOnRealControlPlane: push and pull Secrets appear with
// valid docker configs; with a 20s interval three rotations happen; every
// password that reached a Secret had its hash published in the CR status and
// the account at an earlier etcd revision (invariant 1, observed through
// watches; resource versions of one etcd are revisions, hence ordered).
func TestCredentialsRotateOnRealControlPlane(t *testing.T) {
	e := newEnv(t)
	metricsPort, err := framework.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	e.startOperator(t, "--grace-period=5s", fmt.Sprintf("--metrics-addr=127.0.0.1:%d", metricsPort))
	e.startKubelet(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	h := &history{status: map[string][]published{}, accounts: map[string][]published{}, secrets: map[string][]issued{}}
	c := e.registry.RegistryV1alpha1()
	watches := []func() (watch.Interface, error){
		func() (watch.Interface, error) { return c.ImagePushSecrets(e.ns).Watch(ctx, metav1.ListOptions{}) },
		func() (watch.Interface, error) { return c.ImagePullSecrets(e.ns).Watch(ctx, metav1.ListOptions{}) },
		func() (watch.Interface, error) { return c.ImageRegistryAccounts(e.ns).Watch(ctx, metav1.ListOptions{}) },
		func() (watch.Interface, error) {
			return e.cp.Client.CoreV1().Secrets(e.ns).Watch(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelManagedBy + "=" + v1alpha1.ManagedByValue})
		},
	}
	var wg sync.WaitGroup
	for _, start := range watches {
		w, err := start()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); h.record(ctx, w) }()
	}

	reg := createRegistry(t, e, "registry")
	reg = waitRegistryReady(t, e, reg.Name)

	interval := &metav1.Duration{Duration: 20 * time.Second}
	spec := v1alpha1.ImageSecretSpec{RegistryRef: &v1alpha1.RegistryRef{Name: reg.Name}, RotationInterval: interval}
	if _, err := c.ImagePushSecrets(e.ns).Create(ctx, &v1alpha1.ImagePushSecret{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Spec: spec}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImagePullSecrets(e.ns).Create(ctx, &v1alpha1.ImagePullSecret{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Spec: v1alpha1.ImagePullSecretSpec{ImageSecretSpec: spec}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Three rotations of each: 3 × (20s + up to 2s jitter), with slack for
	// a loaded 2-core machine.
	eventually(t, 150*time.Second, "three rotations of push and pull credentials", func(ctx context.Context) (bool, error) {
		push, err := c.ImagePushSecrets(e.ns).Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pull, err := c.ImagePullSecrets(e.ns).Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ready := meta.IsStatusConditionTrue(push.Status.Conditions, v1alpha1.ConditionReady) && meta.IsStatusConditionTrue(pull.Status.Conditions, v1alpha1.ConditionReady)
		return ready && push.Status.Rotation >= 3 && pull.Status.Rotation >= 3, nil
	})
	// Let the watches deliver the last writes.
	time.Sleep(2 * time.Second)
	cancel()
	wg.Wait()

	push, err := c.ImagePushSecrets(e.ns).Get(context.Background(), "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pull, err := c.ImagePullSecrets(e.ns).Get(context.Background(), "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind, secretName string
		status           v1alpha1.ImageSecretStatus
	}{
		{"push", "app-image-push-secret", push.Status},
		{"pull", "app-image-pull-secret", pull.Status},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			versions := h.secrets[tc.secretName]
			if len(versions) == 0 {
				t.Fatalf("no version of Secret %s was seen", tc.secretName)
			}
			passwords := map[string]bool{}
			for _, s := range versions {
				for _, pw := range []string{s.password, s.next} {
					if pw == "" {
						t.Fatalf("Secret version %d lacks a password", s.rv)
					}
					passwords[pw] = true
					inStatus := firstPublished(h.status[tc.kind+"/app"], pw)
					inAccount := firstPublished(h.accounts[e.ns+"/app"], pw)
					if inStatus < 0 || inStatus >= s.rv {
						t.Errorf("Secret revision %d carries a password whose hash reached the CR status at revision %d (must be earlier)", s.rv, inStatus)
					}
					if inAccount < 0 || inAccount >= s.rv {
						t.Errorf("Secret revision %d carries a password whose hash reached the account at revision %d (must be earlier)", s.rv, inAccount)
					}
				}
			}
			// Rotations 0..3 each brought a new password.
			if len(passwords) < 4 {
				t.Errorf("saw %d distinct passwords over %d Secret versions, want at least 4 (three rotations)", len(passwords), len(versions))
			}
			checkSecret(t, tc.kind, e.ns, reg.Status.Hostname, reg.Status.CA, tc.status, versions[len(versions)-1].data)
		})
	}
	t.Logf("observed %d push and %d pull Secret versions", len(h.secrets["app-image-push-secret"]), len(h.secrets["app-image-pull-secret"]))

	// The operator's /metrics counts the rotations, beside client-go's
	// workqueue and REST client metrics.
	m, err := framework.ScrapeMetrics(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"push", "pull"} {
		if n, _ := m.Get(`image_registry_operator_rotations_total{cause="scheduled",kind="` + kind + `"}`); n < 3 {
			t.Errorf("%s rotations in /metrics = %v, want at least 3", kind, n)
		}
	}
	for _, name := range []string{"workqueue_depth", "rest_client_requests_total", "image_registry_operator_account_operations_total"} {
		if !m.HasMetric(name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

// checkSecret verifies the generated Secret's content against the CR status.
func checkSecret(t *testing.T, kind, ns, hostname, ca string, status v1alpha1.ImageSecretStatus, data map[string][]byte) {
	t.Helper()
	wantUser := fmt.Sprintf("%s/app/%d", ns, status.Rotation)
	if string(data["username"]) != wantUser {
		t.Errorf("username = %q, want %q", data["username"], wantUser)
	}
	if string(data["registry"]) != hostname || string(data["ca.crt"]) != ca {
		t.Errorf("registry/ca.crt do not match the registry's status")
	}
	n := len(status.Passwords)
	if n < 2 {
		t.Fatalf("status has %d hashes", n)
	}
	if bcrypt.CompareHashAndPassword([]byte(status.Passwords[n-2]), data["password"]) != nil {
		t.Error("password does not verify against the current hash (second to last) in status.passwords")
	}
	if bcrypt.CompareHashAndPassword([]byte(status.Passwords[n-1]), data["nextpassword"]) != nil {
		t.Error("nextpassword does not verify against the next hash (last) in status.passwords")
	}
	key := "config.json"
	if kind == "pull" {
		key = corev1.DockerConfigJsonKey
	}
	var cfg struct {
		Auths map[string]struct {
			Username, Password, Auth string
		} `json:"auths"`
	}
	if err := json.Unmarshal(data[key], &cfg); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	a, ok := cfg.Auths[hostname]
	if !ok {
		t.Fatalf("%s has no entry for %s", key, hostname)
	}
	if a.Username != wantUser || a.Password != string(data["password"]) || a.Auth != base64.StdEncoding.EncodeToString([]byte(wantUser+":"+string(data["password"]))) {
		t.Errorf("%s entry does not carry the current credentials", key)
	}
}

// TestDeletingCRRevokesAndCollects: deleting a push CR removes its account
// (finalizer) and the garbage collector removes its Secret (owner reference).
func TestDeletingCRRevokesAndCollects(t *testing.T) {
	e := newEnv(t)
	e.startOperator(t)
	e.startKubelet(t)
	ctx := context.Background()
	reg := createRegistry(t, e, "registry")
	waitRegistryReady(t, e, reg.Name)
	c := e.registry.RegistryV1alpha1()
	ps, err := c.ImagePushSecrets(e.ns).Create(ctx, &v1alpha1.ImagePushSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Spec:       v1alpha1.ImageSecretSpec{RegistryRef: &v1alpha1.RegistryRef{Name: reg.Name}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var secret *corev1.Secret
	eventually(t, 60*time.Second, "push Secret", func(ctx context.Context) (bool, error) {
		secret, err = e.cp.Client.CoreV1().Secrets(e.ns).Get(ctx, "app-image-push-secret", metav1.GetOptions{})
		return err == nil, err
	})
	if ref := metav1.GetControllerOf(secret); ref == nil || ref.UID != ps.UID {
		t.Fatalf("Secret controller reference %+v, want the ImagePushSecret", ref)
	}
	accounts, err := c.ImageRegistryAccounts(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(accounts.Items) != 1 {
		t.Fatalf("accounts: %d, %v; want the one mirror", len(accounts.Items), err)
	}

	if err := c.ImagePushSecrets(e.ns).Delete(ctx, ps.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "account removed", func(ctx context.Context) (bool, error) {
		l, err := c.ImageRegistryAccounts(e.ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 0, err
	})
	eventually(t, 90*time.Second, "Secret garbage-collected", func(ctx context.Context) (bool, error) {
		_, err := e.cp.Client.CoreV1().Secrets(e.ns).Get(ctx, secret.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	eventually(t, 30*time.Second, "ImagePushSecret gone (finalizer removed)", func(ctx context.Context) (bool, error) {
		_, err := c.ImagePushSecrets(e.ns).Get(ctx, ps.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}
