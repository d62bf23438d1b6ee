package tokenserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"k8s.io/component-base/metrics/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	registryv1alpha1 "github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/authn"
	"github.com/image-registry-operator/image-registry-operator/pkg/metrics"
)

// recordingAuthenticator answers every login with err (or ok) and records
// the client addresses it was given.
type recordingAuthenticator struct {
	mu      sync.Mutex
	clients []netip.Addr
	err     error
}

func (r *recordingAuthenticator) AuthenticateFrom(_ context.Context, client netip.Addr, _, _ string) (bool, map[string][]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clients = append(r.clients, client)
	if r.err != nil {
		return false, nil, r.err
	}
	return true, map[string][]string{}, nil
}

func (r *recordingAuthenticator) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.clients)
}

func errorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	return body.Errors[0].Code + ": " + body.Errors[0].Message
}

// TestRefusedUnchecked: an authenticator that did not check a login
// because it is busy or over a failed-login limit makes a fast 503 or 429
// with Retry-After, not a 401 (the client's password may be right) and
// not a 503 without one.
func TestRefusedUnchecked(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		code  int
		retry string
		msg   string
	}{
		{"busy", authn.ErrBusy, http.StatusServiceUnavailable, "1", "retry later"},
		{"user limit", &authn.LimitError{RetryAfter: 5500 * time.Millisecond}, http.StatusTooManyRequests, "6", "this user name"},
		{"client limit", &authn.LimitError{Client: true, RetryAfter: time.Millisecond}, http.StatusTooManyRequests, "1", "this client address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, &recordingAuthenticator{err: tc.err})
			w := s.get("team/app/1", "pw", scopeParams("repository:team/web:pull"))
			if w.Code != tc.code || w.Header().Get("Retry-After") != tc.retry {
				t.Fatalf("status %d Retry-After %q, want %d %q: %s", w.Code, w.Header().Get("Retry-After"), tc.code, tc.retry, w.Body)
			}
			if msg := errorCode(t, w); !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q, want one about %q", msg, tc.msg)
			}
		})
	}
}

// TestLongPasswordDenied: a password bcrypt would cut is refused with a
// clear message, without asking the authenticator.
func TestLongPasswordDenied(t *testing.T) {
	a := &recordingAuthenticator{}
	s := newTestServer(t, a)
	if w := s.get("team/app/1", strings.Repeat("p", 72), scopeParams()); w.Code != http.StatusOK {
		t.Errorf("72 bytes: %d", w.Code)
	}
	w := s.get("team/app/1", strings.Repeat("p", 73), scopeParams())
	if w.Code != http.StatusUnauthorized || !strings.Contains(errorCode(t, w), "longer than 72 bytes") || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("73 bytes: %d %s", w.Code, w.Body)
	}
	if n := a.calls(); n != 1 {
		t.Errorf("the authenticator was asked %d times, want 1 (the 72-byte login)", n)
	}
}

// TestClientAddress: the client is the connection's peer; X-Forwarded-For
// counts only when the peer is a trusted proxy, and then only the hops
// trusted proxies wrote.
func TestClientAddress(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48")}
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string
		want    string
	}{
		{"peer", nil, "192.0.2.1:1234", nil, "192.0.2.1"},
		{"header ignored by default", nil, "192.0.2.1:1234", []string{"203.0.113.9"}, "192.0.2.1"},
		{"header from an untrusted peer", proxies, "192.0.2.1:1234", []string{"203.0.113.9"}, "192.0.2.1"},
		{"trusted proxy", proxies, "10.1.2.3:1234", []string{"203.0.113.9"}, "203.0.113.9"},
		{"forged left part", proxies, "10.1.2.3:1234", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"two trusted hops", proxies, "10.1.2.3:1234", []string{"203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"two headers", proxies, "10.1.2.3:1234", []string{"198.51.100.1", "203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"malformed hop", proxies, "10.1.2.3:1234", []string{"203.0.113.9, garbage, 10.9.9.9"}, "10.9.9.9"},
		{"all hops trusted", proxies, "10.1.2.3:1234", []string{"10.7.7.7"}, "10.7.7.7"},
		{"no header", proxies, "10.1.2.3:1234", nil, "10.1.2.3"},
		{"IPv6 proxy, mapped client", proxies, "[2001:db8:1::5]:1234", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &recordingAuthenticator{}
			s := newTestServer(t, a)
			s.opts.TrustedProxies = tc.trusted
			r := httptest.NewRequest(http.MethodGet, "/auth?"+scopeParams().Encode(), nil)
			r.RemoteAddr = tc.remote
			r.SetBasicAuth("team/app/1", "pw")
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != http.StatusOK || a.calls() != 1 || a.clients[0] != netip.MustParseAddr(tc.want) {
				t.Errorf("status %d, clients %v, want %s", w.Code, a.clients, tc.want)
			}
		})
	}
}

// startLimitedAuthenticator runs pkg/authn with failed-login budgets of
// burst (twice that per client), refilled once an hour.
func startLimitedAuthenticator(t testing.TB, burst int, accounts ...*registryv1alpha1.ImageRegistryAccount) *authn.Authenticator {
	t.Helper()
	return startAuthenticatorWith(t, func(o *authn.Options) {
		o.UserLimitBurst, o.UserLimitInterval = burst, time.Hour
		o.ClientLimitBurst, o.ClientLimitInterval = 2*burst, time.Hour
	}, accounts...)
}

// TestFailedLoginLimits: with pkg/authn behind it, a user name over its
// budget gets 429 with Retry-After, while the right password of a login
// still in the verified cache gets its token; a client address over its
// budget gets 429 whatever the user.
func TestFailedLoginLimits(t *testing.T) {
	a := startLimitedAuthenticator(t, 2, account("push", "team/app", 1, "push", "team", "push-pw", bcrypt.MinCost))
	s := newTestServer(t, a)
	params := scopeParams("repository:team/web:pull")
	if w := s.get("team/app/1", "push-pw", params); w.Code != http.StatusOK {
		t.Fatal(w.Code)
	}
	for i, want := range []int{401, 401, 429, 429} {
		if w := s.get("team/app/1", "wrong", params); w.Code != want {
			t.Errorf("wrong password #%d: %d, want %d", i, w.Code, want)
		} else if want == 429 && w.Header().Get("Retry-After") != "3600" {
			t.Errorf("Retry-After %q, want 3600", w.Header().Get("Retry-After"))
		}
	}
	if w := s.get("team/app/1", "push-pw", params); w.Code != http.StatusOK {
		t.Errorf("cached login of a user over its limit: %d, want 200", w.Code)
	}
	// The client's budget (4) is spent after two more failures.
	for i, want := range []int{401, 401, 429} {
		if w := s.get("nobody", "x", params); w.Code != want {
			t.Errorf("unknown user #%d: %d, want %d", i, w.Code, want)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/auth?"+params.Encode(), nil)
	r.RemoteAddr = "198.51.100.7:999"
	r.SetBasicAuth("someone-else", "x")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("another client: %d, want 401", w.Code)
	}
}

// TestRefusalsSummarized: logins refused without a check do not write a
// log line each (a flood would flood the log): at most one summary per
// interval, with counts by reason; the requests themselves at -v=2.
func TestRefusalsSummarized(t *testing.T) {
	var buf strings.Builder
	restore := captureKlog(&buf)
	defer restore()
	a := &recordingAuthenticator{err: &authn.LimitError{Client: true, RetryAfter: time.Second}}
	s := newTestServer(t, a)
	for i := 0; i < 50; i++ {
		s.get("team/app/1", "pw", scopeParams())
	}
	a.err = authn.ErrBusy
	for i := 0; i < 5; i++ {
		s.get("team/app/1", "pw", scopeParams())
	}
	s.clock.Step(refusalSummaryInterval)
	s.get("team/app/1", "pw", scopeParams())
	flushKlog()
	out := buf.String()
	if n := strings.Count(out, "token request"); n != 0 {
		t.Errorf("%d access log lines for refused logins at -v=0:\n%s", n, out)
	}
	if n := strings.Count(out, "logins refused without a check"); n != 2 {
		t.Fatalf("%d summaries, want 2 (the first refusal, then one interval later):\n%s", n, out)
	}
	if !strings.Contains(out, "clientLimit=1 userLimit=0 busy=0") || !strings.Contains(out, "clientLimit=49 userLimit=0 busy=6") {
		t.Errorf("summaries do not count by reason:\n%s", out)
	}
}

// TestRefusalHeld: a 429 is held for RefusalDelay (at most its
// Retry-After, which then tells the rest), while fewer than MaxDelayed are
// held; beyond that it is answered at once.
func TestRefusalHeld(t *testing.T) {
	a := &recordingAuthenticator{err: &authn.LimitError{RetryAfter: 5 * time.Second}}
	s := newTestServer(t, a)
	clk := clocktesting.NewFakeClock(time.Now())
	s.opts.DelayClock = clk
	s.SetRefusalDelay(time.Second, 1)
	held := make(chan *httptest.ResponseRecorder, 1)
	go func() { held <- s.get("team/app/1", "pw", scopeParams()) }()
	for deadline := time.Now().Add(5 * time.Second); !clk.HasWaiters(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first refusal is not held")
		}
	}
	// One is held already: the next is answered at once.
	if w := s.get("team/app/1", "pw", scopeParams()); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "5" {
		t.Errorf("second refusal: %d Retry-After %q, want 429 5", w.Code, w.Header().Get("Retry-After"))
	}
	select {
	case w := <-held:
		t.Fatalf("answered before the delay: %d", w.Code)
	default:
	}
	clk.Step(time.Second)
	if w := <-held; w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "4" {
		t.Errorf("held refusal: %d Retry-After %q, want 429 4", w.Code, w.Header().Get("Retry-After"))
	}
	if n := s.delayed.Load(); n != 0 {
		t.Errorf("%d answers still counted as held", n)
	}
}

// TestRefusalOutcomes: logins refused unchecked have outcomes of their own
// in registry_auth_token_requests_total, apart from bad requests and
// backend errors.
func TestRefusalOutcomes(t *testing.T) {
	counter := func(outcome string) float64 {
		v, err := testutil.GetCounterMetricValue(metrics.TokenRequests.WithLabelValues(outcome))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		err     error
		outcome string
	}{
		{&authn.LimitError{RetryAfter: time.Millisecond}, metrics.TokenLimited},
		{&authn.LimitError{Client: true, RetryAfter: time.Millisecond}, metrics.TokenLimited},
		{authn.ErrBusy, metrics.TokenBusy},
	} {
		s := newTestServer(t, &recordingAuthenticator{err: tc.err})
		bad, errs, before := counter(metrics.TokenBadRequest), counter(metrics.TokenError), counter(tc.outcome)
		s.get("team/app/1", "pw", scopeParams("repository:team/web:pull"))
		if got := counter(tc.outcome) - before; got != 1 {
			t.Errorf("%v: %s +%v, want +1", tc.err, tc.outcome, got)
		}
		if counter(metrics.TokenBadRequest) != bad || counter(metrics.TokenError) != errs {
			t.Errorf("%v counted as a bad request or an error", tc.err)
		}
	}
}
