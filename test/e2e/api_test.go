//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	v1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/scheme"
	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// TestExamplesCreateAndReadBack creates every example through the generated
// clientset on the real API server (with its defaulting and validation) and
// reads it back; kubectl then lists the kinds.
func TestExamplesCreateAndReadBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "artifacts", "examples", "*.yaml"))
	if len(files) < 4 {
		t.Fatalf("found %d examples, want one per kind", len(files))
	}
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	c := e.registry.RegistryV1alpha1()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := decoder.Decode(data, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		switch o := obj.(type) {
		case *v1alpha1.ImageRegistry:
			if _, err := c.ImageRegistries(e.ns).Create(ctx, o, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			got, err := c.ImageRegistries(e.ns).Get(ctx, o.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if *got.Spec.Replicas != *o.Spec.Replicas || !reflect.DeepEqual(got.Spec.PersistentVolumeClaim, o.Spec.PersistentVolumeClaim) {
				t.Errorf("%s: read back %+v, want %+v", f, got.Spec, o.Spec)
			}
			// The API server applies the schema's defaults.
			if got.Spec.Auth.Server != v1alpha1.AuthServerBuiltin {
				t.Errorf("auth.server = %q, want the default %q", got.Spec.Auth.Server, v1alpha1.AuthServerBuiltin)
			}
		case *v1alpha1.ImagePushSecret:
			if _, err := c.ImagePushSecrets(e.ns).Create(ctx, o, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			got, err := c.ImagePushSecrets(e.ns).Get(ctx, o.Name, metav1.GetOptions{})
			if err != nil || !reflect.DeepEqual(got.Spec, o.Spec) {
				t.Errorf("%s: read back %+v (%v), want %+v", f, got.Spec, err, o.Spec)
			}
		case *v1alpha1.ImagePullSecret:
			if _, err := c.ImagePullSecrets(e.ns).Create(ctx, o, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			got, err := c.ImagePullSecrets(e.ns).Get(ctx, o.Name, metav1.GetOptions{})
			if err != nil || !reflect.DeepEqual(got.Spec, o.Spec) {
				t.Errorf("%s: read back %+v (%v), want %+v", f, got.Spec, err, o.Spec)
			}
		case *v1alpha1.ImageRegistryAccount:
			if _, err := c.ImageRegistryAccounts(e.ns).Create(ctx, o, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			got, err := c.ImageRegistryAccounts(e.ns).Get(ctx, o.Name, metav1.GetOptions{})
			if err != nil || !reflect.DeepEqual(got.Spec.Passwords, o.Spec.Passwords) || !reflect.DeepEqual(got.Spec.Labels, o.Spec.Labels) {
				t.Errorf("%s: read back %+v (%v), want %+v", f, got.Spec, err, o.Spec)
			}
		default:
			t.Fatalf("%s: unexpected %T", f, obj)
		}
	}
	out, err := e.cp.Kubectl(ctx, "get", "imageregistries,imagepushsecrets,imagepullsecrets,imageregistryaccounts", "-n", e.ns, "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"imageregistry.registry.mgoltzsche.github.com/registry",
		"imagepushsecret.registry.mgoltzsche.github.com/example",
		"imagepullsecret.registry.mgoltzsche.github.com/example",
		"imageregistryaccount.registry.mgoltzsche.github.com/ci-bot",
	} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("kubectl get lacks %s:\n%s", want, out)
		}
	}
	// Every name a user types for one kind finds exactly it, and the
	// category lists all four (issue: "kubectl get imageregistry NAME"
	// failed while the category was named like the kind).
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"imageregistry", "registry"}, "imageregistry.registry.mgoltzsche.github.com/registry\n"},
		{[]string{"imageregistries", "registry"}, "imageregistry.registry.mgoltzsche.github.com/registry\n"},
		{[]string{"imgreg", "registry"}, "imageregistry.registry.mgoltzsche.github.com/registry\n"},
		{[]string{"ireg", "registry"}, "imageregistry.registry.mgoltzsche.github.com/registry\n"},
		{[]string{"imagepushsecret", "example"}, "imagepushsecret.registry.mgoltzsche.github.com/example\n"},
		{[]string{"imgpush", "example"}, "imagepushsecret.registry.mgoltzsche.github.com/example\n"},
		{[]string{"ipush", "example"}, "imagepushsecret.registry.mgoltzsche.github.com/example\n"},
		{[]string{"imagepullsecret", "example"}, "imagepullsecret.registry.mgoltzsche.github.com/example\n"},
		{[]string{"imgpull", "example"}, "imagepullsecret.registry.mgoltzsche.github.com/example\n"},
		{[]string{"ipull", "example"}, "imagepullsecret.registry.mgoltzsche.github.com/example\n"},
		{[]string{"imageregistryaccount", "ci-bot"}, "imageregistryaccount.registry.mgoltzsche.github.com/ci-bot\n"},
		{[]string{"imgacc", "ci-bot"}, "imageregistryaccount.registry.mgoltzsche.github.com/ci-bot\n"},
		{[]string{"iracc", "ci-bot"}, "imageregistryaccount.registry.mgoltzsche.github.com/ci-bot\n"},
	} {
		out, err := e.cp.Kubectl(ctx, append(append([]string{"get"}, tc.args...), "-n", e.ns, "-o", "name")...)
		if err != nil || string(out) != tc.want {
			t.Errorf("kubectl get %v: %q (%v), want %q", tc.args, out, err, tc.want)
		}
	}
	out, err = e.cp.Kubectl(ctx, "get", "image-registry-operator", "-n", e.ns, "-o", "name")
	if err != nil {
		t.Fatalf("kubectl get image-registry-operator: %v", err)
	}
	if n := strings.Count(string(out), "\n"); n != 4 {
		t.Errorf("kubectl get image-registry-operator (the category) listed %d objects, want the 4 examples:\n%s", n, out)
	}
	// The account table shows when it expires as a date, not "<invalid>".
	if _, err := e.cp.Kubectl(ctx, "patch", "imageregistryaccount", "ci-bot", "-n", e.ns, "--type=merge", "-p", `{"spec":{"expiresAt":"2099-01-02T03:04:05Z"}}`); err != nil {
		t.Fatal(err)
	}
	out, err = e.cp.Kubectl(ctx, "get", "imageregistryaccount", "ci-bot", "-n", e.ns)
	if err != nil || !strings.Contains(string(out), "2099-01-02T03:04:05Z") || strings.Contains(string(out), "<invalid>") {
		t.Errorf("account table: %v\n%s", err, out)
	}
	// Old manifests apply unchanged under kubectl's strict field validation.
	old := `apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImageRegistry
metadata: {name: old}
spec:
  replicas: 1
  auth: {configMapName: docker-auth-configmap, issuerRef: {name: registry-selfsigned-issuer, kind: Issuer}}
  tls: {}
  persistentVolumeClaim: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 8Gi}}}
`
	if _, err := e.cp.KubectlWithInput(ctx, []byte(old), "apply", "--validate=strict", "-n", e.ns, "-f", "-"); err != nil {
		t.Errorf("an old system's manifest was refused: %v", err)
	}
}

// TestAPIServerRejectsInvalid checks that the CEL rules and schema reach the
// real API server with their messages.
func TestAPIServerRejectsInvalid(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.registry.RegistryV1alpha1()

	both := &v1alpha1.ImageRegistry{
		ObjectMeta: metav1.ObjectMeta{Name: "both"},
		Spec: v1alpha1.ImageRegistrySpec{TLS: &v1alpha1.TLSSpec{
			SecretName: "mine", IssuerRef: &v1alpha1.IssuerRef{Name: "letsencrypt"},
		}},
	}
	_, err := c.ImageRegistries(e.ns).Create(ctx, both, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "tls.secretName and tls.issuerRef are mutually exclusive") {
		t.Errorf("tls.secretName + tls.issuerRef: got %v, want Invalid with the CEL message", err)
	}

	// A dotted name would put another registry's hostname in this one's
	// serving certificate (security review).
	dotted := &v1alpha1.ImageRegistry{ObjectMeta: metav1.ObjectMeta{Name: "registry.image-registry-operator.svc.cluster.local"}}
	_, err = c.ImageRegistries(e.ns).Create(ctx, dotted, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "DNS-1035 label") {
		t.Errorf("dotted registry name: got %v, want Invalid with the CEL message", err)
	}

	three := int32(3)
	scaled := &v1alpha1.ImageRegistry{
		ObjectMeta: metav1.ObjectMeta{Name: "scaled"},
		Spec:       v1alpha1.ImageRegistrySpec{Replicas: &three},
	}
	_, err = c.ImageRegistries(e.ns).Create(ctx, scaled, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "shared blob storage") {
		t.Errorf("3 replicas on ReadWriteOnce: got %v, want Invalid about shared storage", err)
	}

	for _, dir := range []string{"registries/a", "/registries/../b", "/registries/a/"} {
		prefixed := &v1alpha1.ImageRegistry{
			ObjectMeta: metav1.ObjectMeta{Name: "prefixed"},
			Spec: v1alpha1.ImageRegistrySpec{Storage: &v1alpha1.StorageSpec{S3: &v1alpha1.S3StorageSpec{
				Bucket: "images", Region: "us-east-1", CredentialsSecret: "s3", RootDirectory: dir}}},
		}
		_, err = c.ImageRegistries(e.ns).Create(ctx, prefixed, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "rootDirectory") {
			t.Errorf("storage.s3.rootDirectory %q: got %v, want Invalid", dir, err)
		}
	}

	short := &v1alpha1.ImagePushSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "short"},
		Spec:       v1alpha1.ImageSecretSpec{RotationInterval: &metav1.Duration{Duration: time.Second}},
	}
	_, err = c.ImagePushSecrets(e.ns).Create(ctx, short, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "at least 10s") {
		t.Errorf("1s rotation interval: got %v, want Invalid", err)
	}

	ps := &v1alpha1.ImagePushSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "immutable"},
		Spec:       v1alpha1.ImageSecretSpec{RegistryRef: &v1alpha1.RegistryRef{Name: "registry"}},
	}
	created, err := c.ImagePushSecrets(e.ns).Create(ctx, ps, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Spec.RegistryRef.Name = "another"
	_, err = c.ImagePushSecrets(e.ns).Update(ctx, created, metav1.UpdateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "registryRef is immutable") {
		t.Errorf("changing registryRef: got %v, want Invalid", err)
	}
}

// TestAPIPrinterColumns runs the operator with the rights the namespaced
// install gives it (so the account status it writes is allowed there) and
// reads every kind's table as kubectl prints it from the real API server:
// static and generated accounts, a push secret that is Ready, a pull
// secret whose registry does not exist, and a registry; then each name a
// user types for a kind, in table form, and the category.
func TestAPIPrinterColumns(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.applyNamespacedInstall(t)
	sa := "system:serviceaccount:" + e.ns + ":image-registry-operator"
	if out, _ := e.cp.Kubectl(ctx, "auth", "can-i", "--as="+sa, "update", "imageregistryaccounts.registry.mgoltzsche.github.com/status", "-n", e.ns); strings.TrimSpace(string(out)) != "yes" {
		t.Fatalf("can the operator update account status? %q, want yes", out)
	}
	kubeconfig, _ := serviceAccountKubeconfig(t, e, e.ns, "image-registry-operator")
	e.startOperator(t, "--kubeconfig="+kubeconfig)
	e.startKubelet(t)
	c := e.registry.RegistryV1alpha1()

	h, err := bcrypt.GenerateFromPassword([]byte("unused"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	hash := string(h)
	future := metav1.NewTime(time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC))
	past := metav1.NewTime(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, a := range []*v1alpha1.ImageRegistryAccount{
		{ObjectMeta: metav1.ObjectMeta{Name: "ci-bot"}, Spec: v1alpha1.ImageRegistryAccountSpec{Passwords: []string{hash}, ExpiresAt: &future}},
		{ObjectMeta: metav1.ObjectMeta{Name: "robot"}, Spec: v1alpha1.ImageRegistryAccountSpec{Username: "ci/robot", Passwords: []string{hash}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "old"}, Spec: v1alpha1.ImageRegistryAccountSpec{Passwords: []string{hash}, ExpiresAt: &past}},
		{ObjectMeta: metav1.ObjectMeta{Name: "typo"}, Spec: v1alpha1.ImageRegistryAccountSpec{Passwords: []string{"not-a-hash"}}},
	} {
		if _, err := c.ImageRegistryAccounts(e.ns).Create(ctx, a, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	reg := createRegistry(t, e, "registry")
	waitRegistryReady(t, e, reg.Name)
	if _, err := c.ImagePushSecrets(e.ns).Create(ctx, &v1alpha1.ImagePushSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Spec:       v1alpha1.ImageSecretSpec{RegistryRef: &v1alpha1.RegistryRef{Name: reg.Name}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImagePullSecrets(e.ns).Create(ctx, &v1alpha1.ImagePullSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan"},
		Spec:       v1alpha1.ImagePullSecretSpec{ImageSecretSpec: v1alpha1.ImageSecretSpec{RegistryRef: &v1alpha1.RegistryRef{Name: "missing"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the push secret Ready, the pull secret refused, every static account with a status", func(ctx context.Context) (bool, error) {
		push, err := c.ImagePushSecrets(e.ns).Get(ctx, "app", metav1.GetOptions{})
		if err != nil || !meta.IsStatusConditionTrue(push.Status.Conditions, v1alpha1.ConditionReady) {
			return false, err
		}
		pull, err := c.ImagePullSecrets(e.ns).Get(ctx, "orphan", metav1.GetOptions{})
		if err != nil || meta.FindStatusCondition(pull.Status.Conditions, v1alpha1.ConditionReady) == nil {
			return false, err
		}
		for _, name := range []string{"ci-bot", "robot", "old", "typo"} {
			a, err := c.ImageRegistryAccounts(e.ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil || a.Status.ObservedGeneration != a.Generation || a.Status.LoginName == "" {
				return false, err
			}
		}
		return true, nil
	})
	generated := "push." + e.ns + ".app"
	var acc *v1alpha1.ImageRegistryAccount
	eventually(t, 30*time.Second, "the generated account", func(ctx context.Context) (bool, error) {
		var err error
		acc, err = c.ImageRegistryAccounts(e.ns).Get(ctx, generated, metav1.GetOptions{})
		return err == nil, nil
	})
	// The operator writes no status on generated accounts, so that they
	// stay compact in its cache.
	if !reflect.DeepEqual(acc.Status, v1alpha1.ImageRegistryAccountStatus{}) {
		t.Errorf("generated account has a status: %+v", acc.Status)
	}

	get := func(args ...string) string {
		t.Helper()
		out, err := e.cp.Kubectl(ctx, append(append([]string{"get"}, args...), "-n", e.ns)...)
		if err != nil {
			t.Fatalf("kubectl get %v: %v\n%s", args, err, out)
		}
		if strings.Contains(string(out), "<invalid>") {
			t.Errorf("kubectl get %v shows <invalid>:\n%s", args, out)
		}
		t.Logf("kubectl get %s\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	expectRow := func(table string, header []string, name string, want map[string]string) {
		t.Helper()
		rows := parseTable(t, table, header)
		row, ok := rows[name]
		if !ok {
			t.Errorf("no row %s in\n%s", name, table)
			return
		}
		for col, v := range want {
			if row[col] != v {
				t.Errorf("%s: %s = %q, want %q\n%s", name, col, row[col], v, table)
			}
		}
	}

	accountCols := []string{"NAME", "LOGIN", "GENERATED", "EXPIRES", "READY", "AGE"}
	accounts := get("imageregistryaccounts")
	expectRow(accounts, accountCols, "ci-bot", map[string]string{"LOGIN": "ci-bot", "GENERATED": "", "EXPIRES": "2099-01-02T03:04:05Z", "READY": "True"})
	expectRow(accounts, accountCols, "robot", map[string]string{"LOGIN": "ci/robot", "GENERATED": "", "EXPIRES": "", "READY": "True"})
	expectRow(accounts, accountCols, "old", map[string]string{"LOGIN": "old", "GENERATED": "", "EXPIRES": "2020-01-02T03:04:05Z", "READY": "False"})
	expectRow(accounts, accountCols, "typo", map[string]string{"LOGIN": "typo", "READY": "False"})
	expectRow(accounts, accountCols, generated, map[string]string{"LOGIN": "", "GENERATED": "push", "EXPIRES": "", "READY": ""})
	wideAccountCols := []string{"NAME", "LOGIN", "GENERATED", "EXPIRES", "READY", "REASON", "USERNAME", "ROTATION", "AGE"}
	wide := get("imageregistryaccounts", "-o", "wide")
	expectRow(wide, wideAccountCols, "ci-bot", map[string]string{"REASON": "Active", "USERNAME": "", "ROTATION": ""})
	expectRow(wide, wideAccountCols, "old", map[string]string{"REASON": "Expired"})
	expectRow(wide, wideAccountCols, "typo", map[string]string{"REASON": "InvalidPassword"})
	expectRow(wide, wideAccountCols, generated, map[string]string{"REASON": "", "USERNAME": e.ns + "/app"})
	if r := parseTable(t, wide, wideAccountCols)[generated]["ROTATION"]; r == "" {
		t.Errorf("generated account: ROTATION is empty:\n%s", wide)
	}

	secretCols := []string{"NAME", "REGISTRY", "READY", "REASON", "ROTATION", "NEXT ROTATION", "AGE"}
	push := get("imagepushsecrets")
	expectRow(push, secretCols, "app", map[string]string{"REGISTRY": "registry", "READY": "True", "REASON": "Issued"})
	if next := parseTable(t, push, secretCols)["app"]["NEXT ROTATION"]; next != "" {
		if at, err := time.Parse(time.RFC3339, next); err != nil || !at.After(time.Now()) {
			t.Errorf("NEXT ROTATION %q is not a future RFC 3339 time (%v)", next, err)
		}
	} else {
		t.Errorf("NEXT ROTATION is empty:\n%s", push)
	}
	pullCols := []string{"NAME", "REGISTRY", "READY", "REASON", "SAS", "ROTATION", "NEXT ROTATION", "AGE"}
	expectRow(get("imagepullsecrets"), pullCols, "orphan", map[string]string{"REGISTRY": "", "READY": "False", "REASON": "RegistryNotFound", "NEXT ROTATION": ""})
	registryCols := []string{"NAME", "HOSTNAME", "READY", "REASON", "REPLICAS", "AVAILABLE", "AGE"}
	expectRow(get("imageregistries"), registryCols, "registry", map[string]string{
		"HOSTNAME": "registry." + e.ns + ".svc.cluster.local", "READY": "True", "REASON": "Ready", "REPLICAS": "1", "AVAILABLE": "1",
	})

	// Every name of a kind, with an object name, prints that object's
	// table (the issue: "kubectl get imageregistry NAME" failed while the
	// category was named like the kind).
	for _, tc := range []struct {
		names  []string
		object string
	}{
		{[]string{"imageregistry", "imageregistries", "imgreg", "ireg"}, "registry"},
		{[]string{"imagepushsecret", "imagepushsecrets", "imgpush", "ipush"}, "app"},
		{[]string{"imagepullsecret", "imagepullsecrets", "imgpull", "ipull"}, "orphan"},
		{[]string{"imageregistryaccount", "imageregistryaccounts", "imgacc", "iracc"}, "ci-bot"},
	} {
		for _, n := range tc.names {
			out := get(n, tc.object)
			if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME ") || !strings.HasPrefix(lines[1], tc.object+" ") {
				t.Errorf("kubectl get %s %s: want a header and the one row:\n%s", n, tc.object, out)
			}
		}
	}
	// The category lists all four kinds, each in its own table.
	all := get("image-registry-operator")
	for _, want := range []string{
		"imageregistry.registry.mgoltzsche.github.com/registry ",
		"imagepushsecret.registry.mgoltzsche.github.com/app ",
		"imagepullsecret.registry.mgoltzsche.github.com/orphan ",
		"imageregistryaccount.registry.mgoltzsche.github.com/ci-bot ",
		"imageregistryaccount.registry.mgoltzsche.github.com/" + generated + " ",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("kubectl get image-registry-operator lacks %q:\n%s", want, all)
		}
	}
	if n := strings.Count("\n"+all, "\nNAME "); n != 4 {
		t.Errorf("kubectl get image-registry-operator printed %d tables, want 4:\n%s", n, all)
	}
}

// parseTable splits kubectl's table output into cells by the header's
// column starts (cells may be empty, so splitting at spaces would shift
// them) and returns the rows by NAME.
func parseTable(t *testing.T, out string, header []string) map[string]map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	starts := make([]int, len(header))
	from := 0
	for i, h := range header {
		j := strings.Index(lines[0][from:], h)
		if j < 0 {
			t.Fatalf("header %q lacks %s after column %d:\n%s", lines[0], h, from, out)
		}
		starts[i] = from + j
		from = starts[i] + len(h)
	}
	if rest := strings.TrimSpace(lines[0][from:]); rest != "" {
		t.Fatalf("header %q has more columns than %v", lines[0], header)
	}
	rows := map[string]map[string]string{}
	for _, l := range lines[1:] {
		row := map[string]string{}
		for i, h := range header {
			end := len(l)
			if i+1 < len(header) {
				end = min(starts[i+1], len(l))
			}
			if starts[i] < end {
				row[h] = strings.TrimSpace(l[starts[i]:end])
			} else {
				row[h] = ""
			}
		}
		rows[row["NAME"]] = row
	}
	return rows
}
