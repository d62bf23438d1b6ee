//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/image-registry-operator/image-registry-operator/test/e2e/framework"
)

// TestUserPushesOperatorImage pushes the operator's own image (make images:
// an OCI layout built without a Docker engine) into a registry the operator
// runs, with the generated push Secret, and pulls it back with the pull
// Secret: the digest stays the one make images printed.
func TestUserPushesOperatorImage(t *testing.T) {
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(root, "_output", "images", "image-registry-operator")
	data, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatalf("the operator image layout is missing (make images builds it): %v", err)
	}
	var index struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if err := json.Unmarshal(data, &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v, %d manifests, want one image", err, len(index.Manifests))
	}
	want := index.Manifests[0].Digest

	u := newUserEnv(t)
	u.applyExamples(t)
	u.startDataPlane(t, exampleRegistry)
	u.waitReady(t, readyTimeout, "imageregistry/"+exampleRegistry, "imagepushsecret/example", "imagepullsecret/example")
	ctx := context.Background()

	ref := u.image("image-registry-operator:e2e")
	if _, err := u.crane.Run(ctx, u.creds(t, u.ns, examplePushSecret), "push", layout, ref); err != nil {
		t.Fatalf("push of the operator image with the push Secret: %v", err)
	}
	got, err := u.crane.Pull(ctx, u.creds(t, u.ns, examplePullSecret), ref)
	if err != nil {
		t.Fatalf("pull with the pull Secret: %v", err)
	}
	if got != want {
		t.Fatalf("pulled digest %s, the layout's image is %s", got, want)
	}
	t.Logf("pushed and pulled %s@%s", ref, got)
	u.scanLogs(t)
}
