package imageregistry

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
)

// TestAllowedImages: with --allowed-images set, a registry whose
// spec.images names another image gets nothing and says why; allowed
// images and registries without spec.images are served.
func TestAllowedImages(t *testing.T) {
	allowed := []string{"registry.example.org/mirror/*", "docker.io/library/registry:3.0.0"}
	for _, tc := range []struct {
		name   string
		images *v1alpha1.ImagesSpec
		ok     bool
	}{
		{"no spec.images", nil, true},
		{"prefix", &v1alpha1.ImagesSpec{Auth: "registry.example.org/mirror/auth:v1"}, true},
		{"exact", &v1alpha1.ImagesSpec{Registry: "docker.io/library/registry:3.0.0"}, true},
		{"other tag of an exact entry", &v1alpha1.ImagesSpec{Registry: "docker.io/library/registry:latest"}, false},
		{"elsewhere", &v1alpha1.ImagesSpec{DockerAuth: "evil.example.com/docker_auth:1.13"}, false},
		{"prefix without the slash", &v1alpha1.ImagesSpec{Auth: "registry.example.org/mirrorevil/auth"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry("team-a", "reg")
			reg.Spec.Images = tc.images
			f := newFixture(t, nil, reg)
			c := f.controller()
			c.opts.AllowedImages = allowed
			err := c.syncHandler(f.ctx, cache.MetaObjectToName(reg))
			if tc.ok {
				if err != nil {
					t.Fatalf("sync: %v", err)
				}
				f.statefulSet(reg)
				return
			}
			if err == nil {
				t.Error("want an error so that the registry is retried")
			}
			for _, a := range f.actions() {
				if !strings.HasPrefix(a, "update imageregistries/status") {
					t.Errorf("wrote %s for a registry with a disallowed image", a)
				}
			}
			f.expectReady(reg, metav1.ConditionFalse, ReasonImageNotAllowed)
			f.expectWarning(ReasonImageNotAllowed)
		})
	}
}
