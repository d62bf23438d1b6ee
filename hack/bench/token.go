package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/acl"
	"github.com/image-registry-operator/image-registry-operator/pkg/authn"
	"github.com/image-registry-operator/image-registry-operator/pkg/credentials"
	"github.com/image-registry-operator/image-registry-operator/pkg/tokenserver"
)

type login struct{ user, password string }

// tokenBench measures token issuance by pkg/tokenserver in this process,
// over an authenticator whose informer reads the accounts the operator made
// in ns, with the passwords from the generated Secrets.
func (b *bench) tokenBench(ctx context.Context, ns string, res *results) error {
	secrets, err := b.kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{Limit: 64, LabelSelector: "app.kubernetes.io/managed-by=image-registry-operator"})
	if err != nil {
		return err
	}
	var logins []login
	for _, s := range secrets.Items {
		if u, p := string(s.Data[credentials.KeyUsername]), string(s.Data[credentials.KeyPassword]); u != "" && p != "" {
			logins = append(logins, login{u, p})
		}
	}
	if len(logins) == 0 {
		return fmt.Errorf("no generated Secrets with credentials in %s", ns)
	}
	// The token server logs each request; measure with the formatting but
	// without a terminal.
	fs := newKlogDiscard()
	defer fs()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	sk, err := tokenserver.NewSigningKey(key)
	if err != nil {
		return err
	}
	rules, err := acl.New(acl.Default())
	if err != nil {
		return err
	}
	server := func(cacheSize int) (*tokenserver.Server, error) {
		o := authn.NewOptions()
		o.Namespace = ns
		o.CacheSize = cacheSize
		o.RequestTimeout = time.Minute
		a, err := authn.NewForConfig(ctx, b.cp.RestConfig, o)
		if err != nil {
			return nil, err
		}
		return tokenserver.New(tokenserver.Options{Issuer: "bench", Expiration: 5 * time.Minute, Key: sk, ACL: rules, Authenticator: a})
	}
	warm, err := server(authn.DefaultCacheSize)
	if err != nil {
		return err
	}
	cold, err := server(0)
	if err != nil {
		return err
	}
	get := func(s *tokenserver.Server, l login) error {
		q := url.Values{"service": {"registry"}, "scope": {"repository:" + ns + "/app:pull"}}
		r := httptest.NewRequest(http.MethodGet, "/auth?"+q.Encode(), nil)
		r.SetBasicAuth(l.user, l.password)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			return fmt.Errorf("token request for %s: %d %s", l.user, w.Code, strings.TrimSpace(w.Body.String()))
		}
		return nil
	}
	for _, l := range logins { // fill the warm cache
		if err := get(warm, l); err != nil {
			return err
		}
	}
	for _, conc := range []int{1, 8, 32} {
		for _, mode := range []struct {
			name string
			s    *tokenserver.Server
			reqs int
		}{{"warm", warm, 4000}, {"cold", cold, 200}} {
			if mode.name == "warm" {
				// Entries live authn.DefaultCacheTTL from their last bcrypt
				// compare: fill the cache again right before measuring.
				for _, l := range logins {
					if err := get(warm, l); err != nil {
						return err
					}
				}
			}
			lat, elapsed, err := hammer(ctx, conc, mode.reqs, func(i int) error { return get(mode.s, logins[i%len(logins)]) })
			if err != nil {
				return err
			}
			tr := tokenResult{mode: mode.name, conc: conc, reqs: mode.reqs, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), rps: float64(mode.reqs) / elapsed.Seconds()}
			res.token = append(res.token, tr)
			logf("token %s c=%d: p50 %s p99 %s, %.0f/s", tr.mode, conc, tr.p50, tr.p99, tr.rps)
		}
	}

	// ext_auth: one process per login, as docker_auth runs it, without a
	// sidecar (each login lists the accounts and runs bcrypt).
	bin := filepath.Join(b.cfg.binDir, "k8s-docker-authn")
	var lat []time.Duration
	for i := 0; i < 20; i++ {
		l := logins[i%len(logins)]
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		cmd := exec.CommandContext(cctx, bin, "--namespace="+ns, "--kubeconfig="+b.cp.Kubeconfig, "--socket=")
		cmd.Stdin = strings.NewReader(l.user + " " + l.password + "\n")
		t := time.Now()
		out, err := cmd.Output()
		lat = append(lat, time.Since(t))
		cancel()
		if err != nil {
			return fmt.Errorf("ext_auth login %s: %v: %s", l.user, err, out)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.extAuthP50, res.extAuthP99 = percentile(lat, 0.5), percentile(lat, 0.99)
	logf("ext_auth: p50 %s p99 %s per login", res.extAuthP50, res.extAuthP99)
	return b.dockerAuthBench(ctx, ns, logins, res)
}

// hammer runs reqs calls of f on conc goroutines and returns the sorted
// latencies and the elapsed time.
func hammer(ctx context.Context, conc, reqs int, f func(i int) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, reqs)
	var mu sync.Mutex
	start := time.Now()
	err := parallel(ctx, reqs, conc, func(i int) error {
		t := time.Now()
		err := f(i)
		d := time.Since(t)
		mu.Lock()
		lat[i] = d
		mu.Unlock()
		return err
	})
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, elapsed, err
}

func newKlogDiscard() (restore func()) {
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	return func() { klog.LogToStderr(true) }
}
