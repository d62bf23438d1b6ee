// Package artifacts holds the manifests users apply; its tests check them
// offline the way an API server would, so a broken schema or example fails
// `make test` before it reaches a cluster.
package artifacts

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	crvalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/yaml"

	registryv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/fake"
	registryscheme "github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/scheme"
)

// loadCRDs decodes every CRD manifest strictly and converts it to the
// internal type the API server validates.
func loadCRDs(t *testing.T) map[schema.GroupKind]*apiextensions.CustomResourceDefinition {
	t.Helper()
	files, err := filepath.Glob("crds/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRD manifests found: %v", err)
	}
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := apiextensions.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	crds := map[schema.GroupKind]*apiextensions.CustomResourceDefinition{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := decoder.Decode(data, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		v1crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition)
		if !ok {
			t.Fatalf("%s: got %T, want a v1 CustomResourceDefinition", f, obj)
		}
		var crd apiextensions.CustomResourceDefinition
		if err := scheme.Convert(v1crd, &crd, nil); err != nil {
			t.Fatalf("%s: convert: %v", f, err)
		}
		crds[schema.GroupKind{Group: crd.Spec.Group, Kind: crd.Spec.Names.Kind}] = &crd
	}
	return crds
}

func TestCRDsAreValid(t *testing.T) {
	crds := loadCRDs(t)
	wantKinds := []string{"ImageRegistry", "ImagePushSecret", "ImagePullSecret", "ImageRegistryAccount"}
	for _, kind := range wantKinds {
		crd, ok := crds[registryv1alpha1.Kind(kind)]
		if !ok {
			t.Errorf("no CRD for kind %s", kind)
			continue
		}
		t.Run(kind, func(t *testing.T) {
			// The API server's own CRD validation: structural schema, CEL
			// rules compile within their cost budget, printer columns. It
			// sets storedVersions itself on create.
			crd.Status.StoredVersions = []string{"v1alpha1"}
			if errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), crd); len(errs) > 0 {
				t.Fatalf("CRD rejected: %v", errs.ToAggregate())
			}
			if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != "v1alpha1" {
				t.Fatalf("versions = %+v, want only v1alpha1", crd.Spec.Versions)
			}
			v := crd.Spec.Versions[0]
			subresources, columns := v.Subresources, v.AdditionalPrinterColumns
			if subresources == nil {
				subresources = crd.Spec.Subresources
			}
			if columns == nil {
				columns = crd.Spec.AdditionalPrinterColumns
			}
			if subresources == nil || subresources.Status == nil {
				t.Error("status subresource missing")
			}
			if crd.Spec.Scope != apiextensions.NamespaceScoped {
				t.Errorf("scope = %s, want Namespaced", crd.Spec.Scope)
			}
			if len(crd.Spec.Names.ShortNames) == 0 {
				t.Error("no short names")
			}
			cols := map[string]bool{}
			for _, c := range columns {
				cols[c.Name] = true
			}
			if !cols["Age"] {
				t.Errorf("printer columns %v lack Age", cols)
			}
			if kind != "ImageRegistryAccount" && !cols["Ready"] {
				t.Errorf("printer columns %v lack Ready", cols)
			}
			if openAPISchema(crd).Properties["spec"].Description == "" {
				t.Error("spec has no description: kubectl explain would be empty")
			}
		})
	}
}

// openAPISchema returns the schema of the only version. The internal type
// keeps a schema shared by all versions in spec.validation.
func openAPISchema(crd *apiextensions.CustomResourceDefinition) *apiextensions.JSONSchemaProps {
	if v := crd.Spec.Versions[0]; v.Schema != nil {
		return v.Schema.OpenAPIV3Schema
	}
	return crd.Spec.Validation.OpenAPIV3Schema
}

// validator checks objects like the API server does on create: unknown
// fields (kubectl's strict field validation) and the OpenAPI schema.
type validator struct {
	structural *structuralschema.Structural
	schema     crvalidation.SchemaValidator
}

func newValidator(t *testing.T, crd *apiextensions.CustomResourceDefinition) validator {
	t.Helper()
	s := openAPISchema(crd)
	st, err := structuralschema.NewStructural(s)
	if err != nil {
		t.Fatal(err)
	}
	sv, _, err := crvalidation.NewSchemaValidator(s)
	if err != nil {
		t.Fatal(err)
	}
	return validator{structural: st, schema: sv}
}

func (v validator) validate(t *testing.T, data []byte) []string {
	t.Helper()
	var u map[string]interface{}
	if err := yaml.Unmarshal(data, &u); err != nil {
		t.Fatal(err)
	}
	var problems []string
	for _, p := range pruning.PruneWithOptions(u, v.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}) {
		problems = append(problems, "unknown field "+p)
	}
	for _, e := range crvalidation.ValidateCustomResource(nil, u, v.schema) {
		problems = append(problems, e.Error())
	}
	return problems
}

func exampleFiles(t *testing.T) []string {
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	return files
}

func TestExamplesMatchSchema(t *testing.T) {
	crds := loadCRDs(t)
	for _, f := range exampleFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(data, &tm); err != nil {
			t.Fatal(err)
		}
		crd, ok := crds[tm.GroupVersionKind().GroupKind()]
		if !ok {
			t.Fatalf("%s: no CRD for %s", f, tm.GroupVersionKind())
		}
		if problems := newValidator(t, crd).validate(t, data); len(problems) > 0 {
			t.Errorf("%s: %s", f, strings.Join(problems, "; "))
		}
	}
}

// TestOldManifestsStillApply keeps the fields of the system we replace, so
// that its manifests pass strict field validation unchanged.
func TestOldManifestsStillApply(t *testing.T) {
	crds := loadCRDs(t)
	cases := map[string]string{
		"ImageRegistry": `
apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImageRegistry
metadata: {name: registry, namespace: build}
spec:
  replicas: 1
  auth:
    configMapName: docker-auth-configmap
    issuerRef: {name: registry-selfsigned-issuer, kind: Issuer}
  tls: {}
  persistentVolumeClaim:
    storageClassName: mysc
    accessModes: [ReadWriteOnce]
    resources: {requests: {storage: 8Gi}}
`,
		"ImagePushSecret": `
apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImagePushSecret
metadata: {name: example}
spec:
  registryRef: {name: registry, namespace: infra}
`,
		"ImagePullSecret": `
apiVersion: registry.mgoltzsche.github.com/v1alpha1
kind: ImagePullSecret
metadata: {name: example}
spec:
  registryRef: {name: registry}
`,
	}
	for kind, manifest := range cases {
		v := newValidator(t, crds[registryv1alpha1.Kind(kind)])
		if problems := v.validate(t, []byte(manifest)); len(problems) > 0 {
			t.Errorf("%s: %s", kind, strings.Join(problems, "; "))
		}
	}
	// And the schema is not so loose that anything goes.
	v := newValidator(t, crds[registryv1alpha1.Kind("ImagePushSecret")])
	bad := "apiVersion: registry.mgoltzsche.github.com/v1alpha1\nkind: ImagePushSecret\nmetadata: {name: x}\nspec: {registryRef: {name: r}, origin: cr}\n"
	if problems := v.validate(t, []byte(bad)); len(problems) == 0 {
		t.Error("an unknown spec field was accepted")
	}
}

// TestExamplesRoundTrip decodes each example with the typed scheme (strict),
// creates it through the generated fake clientset and reads it back.
func TestExamplesRoundTrip(t *testing.T) {
	decoder := serializer.NewCodecFactory(registryscheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	client := fake.NewSimpleClientset()
	ctx := context.Background()
	const ns = "default"
	for _, f := range exampleFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		obj, gvk, err := decoder.Decode(data, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var got, want runtime.Object
		switch o := obj.(type) {
		case *registryv1alpha1.ImageRegistry:
			o.Namespace = ns
			want = o
			created, err := client.RegistryV1alpha1().ImageRegistries(ns).Create(ctx, o, metav1.CreateOptions{})
			if err == nil {
				got, err = client.RegistryV1alpha1().ImageRegistries(ns).Get(ctx, created.Name, metav1.GetOptions{})
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		case *registryv1alpha1.ImagePushSecret:
			o.Namespace = ns
			want = o
			created, err := client.RegistryV1alpha1().ImagePushSecrets(ns).Create(ctx, o, metav1.CreateOptions{})
			if err == nil {
				got, err = client.RegistryV1alpha1().ImagePushSecrets(ns).Get(ctx, created.Name, metav1.GetOptions{})
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		case *registryv1alpha1.ImagePullSecret:
			o.Namespace = ns
			want = o
			created, err := client.RegistryV1alpha1().ImagePullSecrets(ns).Create(ctx, o, metav1.CreateOptions{})
			if err == nil {
				got, err = client.RegistryV1alpha1().ImagePullSecrets(ns).Get(ctx, created.Name, metav1.GetOptions{})
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		case *registryv1alpha1.ImageRegistryAccount:
			o.Namespace = ns
			want = o
			created, err := client.RegistryV1alpha1().ImageRegistryAccounts(ns).Create(ctx, o, metav1.CreateOptions{})
			if err == nil {
				got, err = client.RegistryV1alpha1().ImageRegistryAccounts(ns).Get(ctx, created.Name, metav1.GetOptions{})
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		default:
			t.Fatalf("%s: unexpected kind %s", f, gvk)
		}
		// Encode both sides: what was read back must serialize to what the
		// file said.
		wantJSON, _ := yaml.Marshal(want)
		gotJSON, _ := yaml.Marshal(got)
		if !bytes.Equal(normalize(t, wantJSON), normalize(t, gotJSON)) {
			t.Errorf("%s: round trip changed the object:\nwant %s\ngot  %s", f, wantJSON, gotJSON)
		}
	}
}

// normalize drops what the fake tracker may fill in (type meta).
func normalize(t *testing.T, data []byte) []byte {
	var m map[string]interface{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "apiVersion")
	delete(m, "kind")
	out, _ := yaml.Marshal(m)
	return out
}
