package tokenserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/bcrypt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/image-registry-operator/image-registry-operator/pkg/acl"
	registryv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/authn"
	"github.com/image-registry-operator/image-registry-operator/pkg/generated/clientset/versioned/fake"
	informers "github.com/image-registry-operator/image-registry-operator/pkg/generated/informers/externalversions"
	"github.com/image-registry-operator/image-registry-operator/pkg/metrics"
)

const (
	testNS      = "registry"
	testIssuer  = "registry-auth.registry"
	testService = "myreg.registry.svc.cluster.local"
)

func account(name, username string, rotation int64, typ, ns, pw string, cost int) *registryv1alpha1.ImageRegistryAccount {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		panic(err)
	}
	return &registryv1alpha1.ImageRegistryAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS},
		Spec: registryv1alpha1.ImageRegistryAccountSpec{
			Username:  username,
			Rotation:  &rotation,
			Passwords: []string{string(h), "$2a$04$invalidinvalidinvalidinvalidinvalidinvalidinvalidinval"},
			Labels:    map[string][]string{"namespace": {ns}, "name": {"app"}, "type": {typ}},
		},
	}
}

// startAuthenticator runs pkg/authn over a fake clientset holding accounts.
func startAuthenticator(t testing.TB, accounts ...*registryv1alpha1.ImageRegistryAccount) *authn.Authenticator {
	t.Helper()
	return startAuthenticatorWith(t, nil, accounts...)
}

// startAuthenticatorWith is startAuthenticator with the default options
// changed by opts.
func startAuthenticatorWith(t testing.TB, opts func(*authn.Options), accounts ...*registryv1alpha1.ImageRegistryAccount) *authn.Authenticator {
	t.Helper()
	client := fake.NewClientset()
	for _, a := range accounts {
		if _, err := client.RegistryV1alpha1().ImageRegistryAccounts(testNS).Create(context.Background(), a, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(testNS))
	o := authn.NewOptions()
	o.Namespace = testNS
	if opts != nil {
		opts(o)
	}
	a, err := authn.New(factory.Registry().V1alpha1().ImageRegistryAccounts(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), a.HasSynced) {
		t.Fatal("not synced")
	}
	return a
}

type testServer struct {
	*Server
	key   *SigningKey
	clock *clocktesting.FakeClock
}

func newTestServer(t testing.TB, a Authenticator) *testServer {
	t.Helper()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, err := NewSigningKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := acl.New(acl.Default())
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Now().Truncate(time.Second))
	s, err := New(Options{Issuer: testIssuer, Expiration: 5 * time.Minute, Key: key, ACL: rules, Authenticator: a, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: s, key: key, clock: clk}
}

func (s *testServer) get(user, pw string, params url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/auth?"+params.Encode(), nil)
	if user != "" || pw != "" {
		r.SetBasicAuth(user, pw)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func scopeParams(scopes ...string) url.Values {
	return url.Values{"service": {testService}, "scope": scopes}
}

// decode verifies the token's signature with the server's public key and
// returns its header and claims.
func (s *testServer) decode(t *testing.T, w *httptest.ResponseRecorder) (jose.Header, *Claims) {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var resp tokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Token == "" || resp.Token != resp.AccessToken || resp.ExpiresIn != 300 {
		t.Fatalf("bad response %+v", resp)
	}
	if issued, err := time.Parse(time.RFC3339, resp.IssuedAt); err != nil || !issued.Equal(s.clock.Now()) {
		t.Errorf("issued_at %q, want %s", resp.IssuedAt, s.clock.Now())
	}
	jws, err := jose.ParseSigned(resp.Token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(s.key.Public())
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header, &c
}

func TestTokenClaims(t *testing.T) {
	a := startAuthenticator(t,
		account("push", "team/app", 1, "push", "team", "push-pw", bcrypt.MinCost),
		account("pull", "team/reader", 1, "pull", "team", "pull-pw", bcrypt.MinCost),
	)
	s := newTestServer(t, a)

	w := s.get("team/app/1", "push-pw", scopeParams("repository:team/web:pull,push", "repository:other/web:pull,push", "repository:team/a/b:pull"))
	h, c := s.decode(t, w)
	if h.KeyID != s.key.KeyID || h.KeyID == "" {
		t.Errorf("kid %q, want %q", h.KeyID, s.key.KeyID)
	}
	if h.Algorithm != "ES256" {
		t.Errorf("alg %s", h.Algorithm)
	}
	if typ, _ := h.ExtraHeaders["typ"].(string); typ != "JWT" {
		t.Errorf("typ %v", h.ExtraHeaders["typ"])
	}
	now := s.clock.Now().Unix()
	if c.Issuer != testIssuer || c.Audience != testService || c.Subject != "team/app/1" {
		t.Errorf("iss/aud/sub = %q/%q/%q", c.Issuer, c.Audience, c.Subject)
	}
	if c.Expiration != now+300 || c.IssuedAt != now || c.NotBefore != now || c.JWTID == "" {
		t.Errorf("exp/iat/nbf/jti = %d/%d/%d/%q, now %d", c.Expiration, c.IssuedAt, c.NotBefore, c.JWTID, now)
	}
	want := []ResourceActions{{Type: "repository", Name: "team/web", Actions: []string{"pull", "push"}}}
	if !reflect.DeepEqual(c.Access, want) {
		t.Errorf("access %+v, want %+v", c.Access, want)
	}

	// Pull account: pull only.
	_, c = s.decode(t, s.get("team/reader/1", "pull-pw", scopeParams("repository:team/web:pull,push")))
	want = []ResourceActions{{Type: "repository", Name: "team/web", Actions: []string{"pull"}}}
	if !reflect.DeepEqual(c.Access, want) {
		t.Errorf("pull account access %+v, want %+v", c.Access, want)
	}

	// Login without scope (docker login): a token without access.
	_, c = s.decode(t, s.get("team/app/1", "push-pw", url.Values{"service": {testService}, "account": {"team/app/1"}}))
	if len(c.Access) != 0 {
		t.Errorf("login token grants %+v", c.Access)
	}
	if !strings.Contains(s.get("team/app/1", "push-pw", scopeParams()).Body.String(), `"access_token"`) {
		t.Error("no access_token")
	}

	// Anonymous: the default ACL grants nothing, but a token is issued.
	_, c = s.decode(t, s.get("", "", scopeParams("repository:team/web:pull")))
	if c.Subject != "" || len(c.Access) != 0 {
		t.Errorf("anonymous: sub %q, access %+v", c.Subject, c.Access)
	}
}

func TestTokenErrors(t *testing.T) {
	a := startAuthenticator(t, account("push", "team/app", 1, "push", "team", "push-pw", bcrypt.MinCost))
	s := newTestServer(t, a)
	for _, tc := range []struct {
		name     string
		user, pw string
		params   url.Values
		method   string
		header   string
		want     int
	}{
		{"wrong password", "team/app/1", "nope", scopeParams("repository:team/web:pull"), "", "", http.StatusUnauthorized},
		{"wrong rotation", "team/app/0", "push-pw", scopeParams("repository:team/web:pull"), "", "", http.StatusUnauthorized},
		{"unknown user", "someone", "pw", scopeParams("repository:team/web:pull"), "", "", http.StatusUnauthorized},
		{"password without user", "", "pw", scopeParams(), "", "", http.StatusUnauthorized},
		{"bearer header", "", "", scopeParams(), "", "Bearer abc", http.StatusUnauthorized},
		{"bad scope", "team/app/1", "push-pw", scopeParams("repository:team/web"), "", "", http.StatusBadRequest},
		{"scope with glob", "team/app/1", "push-pw", scopeParams("repository:team/*:pull"), "", "", http.StatusBadRequest},
		{"no service", "team/app/1", "push-pw", url.Values{"scope": {"repository:team/web:pull"}}, "", "", http.StatusBadRequest},
		{"account mismatch", "team/app/1", "push-pw", url.Values{"service": {testService}, "account": {"other"}}, "", "", http.StatusBadRequest},
		{"POST", "team/app/1", "push-pw", scopeParams(), http.MethodPost, "", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			r := httptest.NewRequest(method, "/auth?"+tc.params.Encode(), nil)
			if tc.user != "" || tc.pw != "" {
				r.SetBasicAuth(tc.user, tc.pw)
			}
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if strings.Contains(w.Body.String(), "token") {
				t.Errorf("error response holds a token: %s", w.Body)
			}
			if tc.want == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

type failingAuthenticator struct{}

func (failingAuthenticator) AuthenticateFrom(context.Context, netip.Addr, string, string) (bool, map[string][]string, error) {
	return false, nil, errors.New("API server unreachable")
}

func TestBackendError(t *testing.T) {
	s := newTestServer(t, failingAuthenticator{})
	if w := s.get("team/app/1", "pw", scopeParams()); w.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", w.Code)
	}
}

func TestHealth(t *testing.T) {
	ready := false
	s := newTestServer(t, failingAuthenticator{})
	s.opts.Ready = func() bool { return ready }
	s2, _ := New(s.opts)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503} {
		w := httptest.NewRecorder()
		s2.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
	ready = true
	w := httptest.NewRecorder()
	s2.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if w.Code != 200 {
		t.Errorf("/readyz when ready: %d", w.Code)
	}
}

// TestNoSecretsInLogs checks the access log of a request: it names the
// account but never the password or the issued token.
func TestNoSecretsInLogs(t *testing.T) {
	var buf strings.Builder
	restore := captureKlog(&buf)
	defer restore()
	a := startAuthenticator(t, account("push", "team/app", 1, "push", "team", "push-pw-SECRET", bcrypt.MinCost))
	s := newTestServer(t, a)
	w := s.get("team/app/1", "push-pw-SECRET", scopeParams("repository:team/web:pull"))
	s.get("team/app/1", "wrong-pw-SECRET", scopeParams("repository:team/web:pull"))
	var resp tokenResponse
	_ = json.Unmarshal(w.Body.Bytes(), &resp)
	flushKlog()
	out := buf.String()
	if !strings.Contains(out, "team/app/1") || !strings.Contains(out, "token request") {
		t.Fatalf("access log missing: %q", out)
	}
	if strings.Contains(out, "SECRET") || strings.Contains(out, resp.Token) || strings.Contains(out, strings.Split(resp.Token, ".")[2]) {
		t.Errorf("secret in the log: %s", out)
	}
}

// TestMetricsCountOutcomes: /metrics counts token requests by outcome.
func TestMetricsCountOutcomes(t *testing.T) {
	a := startAuthenticator(t, account("push", "team/app", 1, "push", "team", "push-pw", bcrypt.MinCost))
	s := newTestServer(t, a)
	counter := func(outcome string) float64 {
		v, err := testutil.GetCounterMetricValue(metrics.TokenRequests.WithLabelValues(outcome))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	issued, denied, bad := counter(metrics.TokenIssued), counter(metrics.TokenDenied), counter(metrics.TokenBadRequest)
	s.get("team/app/1", "push-pw", scopeParams("repository:team/web:pull"))
	s.get("team/app/1", "wrong", scopeParams("repository:team/web:pull"))
	s.get("team/app/1", "push-pw", url.Values{}) // no service
	if got := counter(metrics.TokenIssued) - issued; got != 1 {
		t.Errorf("issued +%v, want +1", got)
	}
	if got := counter(metrics.TokenDenied) - denied; got != 1 {
		t.Errorf("denied +%v, want +1", got)
	}
	if got := counter(metrics.TokenBadRequest) - bad; got != 1 {
		t.Errorf("bad_request +%v, want +1", got)
	}
	w := httptest.NewRecorder()
	MetricsHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `registry_auth_token_requests_total{outcome="issued"}`) {
		t.Errorf("/metrics: %d\n%s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), "push-pw") {
		t.Error("/metrics shows a password")
	}
	// Not on the token port, which the LoadBalancer exposes.
	w = httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("/metrics on the token server's handler: %d, want 404", w.Code)
	}
}

// TestUnknownServiceRefused: with Services set, a token for another
// audience is not issued, whoever asks.
func TestUnknownServiceRefused(t *testing.T) {
	a := startAuthenticator(t, account("push", "team/app", 1, "push", "team", "push-pw", bcrypt.MinCost))
	s := newTestServer(t, a)
	s.opts.Services = []string{testService}
	if w := s.get("team/app/1", "push-pw", scopeParams("repository:team/web:pull")); w.Code != http.StatusOK {
		t.Fatalf("own service: %d %s", w.Code, w.Body)
	}
	p := scopeParams("repository:team/web:pull")
	p.Set("service", "other-registry.example.org")
	if w := s.get("team/app/1", "push-pw", p); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "unknown service") {
		t.Errorf("other service: %d %s, want 400 unknown service", w.Code, w.Body)
	}
}
