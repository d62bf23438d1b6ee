package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/image-registry-operator/image-registry-operator/pkg/authconfig"
)

const baseConfig = `server: {addr: ":5001"}
token: {issuer: iss, expiration: 300, certificate: /c, key: /k}
acl:
  - match: {labels: {type: push}, name: "${labels:namespace}/*"}
    actions: [push, pull]
`

func writeConfig(t *testing.T, s string) string {
	f := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLoad(t *testing.T) {
	st, err := load(writeConfig(t, baseConfig+"ext_auth: {command: /ext-auth/k8s-docker-authn, args: [--namespace=reg, --auth-cache-ttl=1m]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if st.opts.Namespace != "reg" || st.opts.CacheTTL != time.Minute {
		t.Errorf("options %+v", st.opts)
	}

	for name, tc := range map[string]struct{ config, want string }{
		"no ext_auth":      {baseConfig, "ext_auth is missing"},
		"foreign ext_auth": {baseConfig + "ext_auth: {command: /bin/ldap-auth}\n", "is not k8s-docker-authn"},
		"bad args":         {baseConfig + "ext_auth: {command: k8s-docker-authn, args: [--namespace=reg, --nope]}\n", "-nope"},
		"unknown key":      {baseConfig + "users: {admin: {password: x}}\n", "unknown field"},
		"misspelt match":   {strings.Replace(baseConfig, "labels: {type: push}", "accessMode: push", 1) + "ext_auth: {command: k8s-docker-authn, args: [--namespace=r]}\n", "unknown field"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(writeConfig(t, tc.config))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := load(""); err == nil {
		t.Error("no --config accepted")
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := parsePrefixes("10.0.0.0/8, 192.0.2.7,2001:db8::/32,::ffff:198.51.100.1,,10.1.2.3/16")
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "198.51.100.1/32", "10.1.0.0/16"}
	if err != nil || len(got) != len(want) {
		t.Fatalf("%v %v", got, err)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("%d: %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example.org", "::ffff:10.0.0.0/104"} {
		if _, err := parsePrefixes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestServeGracefulShutdown: cancelling the context (SIGTERM) lets an
// in-flight request finish and then returns without error.
func TestServeGracefulShutdown(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	started, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		_, _ = w.Write([]byte("ok"))
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, authconfig.ServerConfig{Addr: addr}, h, 5*time.Second) }()

	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ {
		if resp, err = http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	slow := make(chan int, 1)
	go func() {
		r, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			slow <- -1
			return
		}
		r.Body.Close()
		slow <- r.StatusCode
	}()
	<-started
	cancel()
	time.Sleep(100 * time.Millisecond)
	close(release)
	if code := <-slow; code != http.StatusOK {
		t.Errorf("in-flight request: %d", code)
	}
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}
