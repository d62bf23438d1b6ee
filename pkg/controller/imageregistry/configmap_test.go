package imageregistry

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/authconfig"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

func goldenCases() map[string]*v1alpha1.ImageRegistry {
	def := newRegistry("team-a", "reg")

	acl := newRegistry("team-a", "reg")
	acl.Spec.Auth.TokenExpiration = &metav1.Duration{Duration: 90*time.Second + time.Millisecond}
	acl.Spec.Auth.ACL = []v1alpha1.ACLEntry{
		{Match: v1alpha1.ACLMatch{Account: "ci", Type: "repository", Name: "team-a/*", IP: "10.0.0.0/8", Service: "reg.team-a.svc"}, Actions: []string{"*"}, Comment: "CI outside the cluster"},
		{Match: v1alpha1.ACLMatch{Labels: map[string]string{"type": "pull"}, Name: "shared/*"}, Actions: []string{"pull"}},
		{Match: v1alpha1.ACLMatch{}, Actions: []string{}, Comment: "deny the rest"},
	}

	s3 := newRegistry("team-a", "reg")
	s3.Spec.Storage = &v1alpha1.StorageSpec{S3: &v1alpha1.S3StorageSpec{Endpoint: "https://minio.example.org", Bucket: "images", Region: "eu-1", CredentialsSecret: "s3", RootDirectory: "/registries/team-a"}}

	proxy := newRegistry("team-a", "reg")
	proxy.Spec.Proxy = &v1alpha1.ProxySpec{RemoteURL: "https://registry-1.docker.io", CredentialsSecret: "hub", TTL: &metav1.Duration{Duration: 72 * time.Hour}}
	return map[string]*v1alpha1.ImageRegistry{"default": def, "custom-acl": acl, "s3": s3, "proxy": proxy}
}

func TestGoldenConfigs(t *testing.T) {
	for name, reg := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			auth, err := renderAuthConfig(reg)
			if err != nil {
				t.Fatal(err)
			}
			registry, err := renderRegistryConfig(reg, "reg.team-a.registry.example.org", tokenIssuer(reg), false)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", name+".auth_config.yml"), auth)
			golden(t, filepath.Join("testdata", name+".config.yml"), registry)
		})
	}
	// Read-only maintenance mode, for a garbage collection.
	readOnly, err := renderRegistryConfig(newRegistry("team-a", "reg"), "reg.team-a.registry.example.org", "image-registry-operator/team-a/reg", true)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "read-only.config.yml"), readOnly)
}

func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *updateGolden {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs (run go test -update and review the diff)\n got:\n%s\nwant:\n%s", file, got, want)
	}
}

// The rendered configuration loads in the token servers' strict loader,
// and the registry's side of the token contract matches it.
func TestRenderedConfigsAgree(t *testing.T) {
	for name, reg := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			data, err := renderAuthConfig(reg)
			if err != nil {
				t.Fatal(err)
			}
			auth, err := authconfig.Parse(data)
			if err != nil {
				t.Fatalf("rendered auth config rejected by authconfig.Parse: %v\n%s", err, data)
			}
			if !auth.IsOurExtAuth() || auth.ExtAuth.Args[0] != "--namespace=team-a" {
				t.Errorf("ext_auth %+v", auth.ExtAuth)
			}
			if auth.Server.Addr != ":5001" || auth.Server.Certificate != tlsCertFile || auth.Server.Key != tlsKeyFile {
				t.Errorf("server %+v", auth.Server)
			}
			const host = "reg.team-a.registry.example.org"
			raw, err := renderRegistryConfig(reg, host, auth.Token.Issuer, false)
			if err != nil {
				t.Fatal(err)
			}
			var cfg registryConfig
			if err := yaml.UnmarshalStrict(raw, &cfg); err != nil {
				t.Fatal(err)
			}
			tok := cfg.Auth.Token
			if tok.Issuer != auth.Token.Issuer || tok.JWKS != jwksFile || tok.Service != host || tok.Realm != "https://"+host+":5001/auth" {
				t.Errorf("registry token config %+v does not match auth config %+v", tok, auth.Token)
			}
			if cfg.HTTP.Addr != ":5000" || cfg.HTTP.TLS.Certificate != tlsCertFile {
				t.Errorf("http %+v", cfg.HTTP)
			}
		})
	}
}

func TestTokenExpiration(t *testing.T) {
	for _, tc := range []struct {
		d    *metav1.Duration
		want int64
	}{{nil, 300}, {&metav1.Duration{Duration: time.Hour}, 3600}, {&metav1.Duration{Duration: time.Millisecond}, 1}} {
		reg := newRegistry("ns", "r")
		reg.Spec.Auth.TokenExpiration = tc.d
		data, err := renderAuthConfig(reg)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := authconfig.Parse(data)
		if cfg.Token.Expiration != tc.want {
			t.Errorf("%v: expiration %d, want %d", tc.d, cfg.Token.Expiration, tc.want)
		}
	}
	reg := newRegistry("ns", "r")
	reg.Spec.Auth.TokenExpiration = &metav1.Duration{Duration: -time.Second}
	if _, err := renderAuthConfig(reg); err == nil {
		t.Error("negative expiration accepted")
	}
}
