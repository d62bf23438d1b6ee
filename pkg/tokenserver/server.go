// Package tokenserver is the builtin token server: the Docker registry token
// protocol (GET /auth with Basic credentials, answered with a signed JWT),
// as the distribution registry's "token" auth expects it, authenticating
// with pkg/authn and authorizing with a docker_auth ACL (pkg/acl).
package tokenserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/image-registry-operator/image-registry-operator/pkg/acl"
	"github.com/image-registry-operator/image-registry-operator/pkg/authconfig"
	"github.com/image-registry-operator/image-registry-operator/pkg/authn"
	"github.com/image-registry-operator/image-registry-operator/pkg/metrics"
)

// Authenticator checks a login from a client address (pkg/authn's
// Authenticator): ok with the account's labels, or ok false for a refused or
// unknown login (err nil or authn.ErrNoMatch), or another error when it did
// not check it: authn.ErrBusy and *authn.LimitError (answered 503 and 429
// with Retry-After), or any other (the backend is unavailable).
type Authenticator interface {
	AuthenticateFrom(ctx context.Context, client netip.Addr, user, password string) (ok bool, labels map[string][]string, err error)
}

// Options configure a Server.
type Options struct {
	// Issuer is the tokens' "iss"; the registry's auth.token.issuer.
	Issuer string
	// Expiration is the tokens' lifetime.
	Expiration time.Duration
	// Key signs the tokens.
	Key *SigningKey
	// ACL decides what each request is granted.
	ACL *acl.ACL
	// Authenticator checks credentials.
	Authenticator Authenticator
	// Services are the "service" values tokens are issued for: the
	// registry's hostname, which it checks as the token's audience. Empty
	// means any.
	Services []string
	// Ready tells whether the server can answer token requests (the account
	// cache has synced); nil means always.
	Ready func() bool
	// Clock is the time source; nil means the real clock.
	Clock clock.PassiveClock
	// TrustedProxies are the proxies whose X-Forwarded-For header names
	// the client. Empty (the default): the header is ignored, and the
	// client is the connection's peer, which anyone can forge no header
	// to change. The client address keys the failed-login limit per
	// client and is the ACL's ip.
	TrustedProxies []netip.Prefix
	// RefusalDelay holds the answer to a login refused over a failed-login
	// limit for this long (at most its Retry-After), so that a client that
	// does not wait as told gets no more than one answer per delay on each
	// connection: a held request costs a timer, not CPU. 0: answer at once.
	RefusalDelay time.Duration
	// MaxDelayed bounds the answers held at once (and so the memory an
	// attacker with many connections can make them hold); beyond it, they
	// are answered at once.
	MaxDelayed int
	// DelayClock times RefusalDelay; nil means the real clock.
	DelayClock clock.Clock
}

// Defaults of the refusal delay (registry-auth's --refusal-delay and
// --refusal-delay-max).
const (
	DefaultRefusalDelay = time.Second
	DefaultMaxDelayed   = 256
)

// Server serves the token endpoint (/auth) and health endpoints (/healthz,
// /readyz). Metrics are served apart (MetricsHandler), so that the port
// clients reach does not expose them.
type Server struct {
	opts     Options
	issuer   *issuer
	clock    clock.PassiveClock
	mux      *http.ServeMux
	refusals refusals
	// delayed counts the answers held by RefusalDelay.
	delayed atomic.Int64
}

// New makes a Server.
func New(o Options) (*Server, error) {
	switch {
	case o.Issuer == "":
		return nil, errors.New("token issuer is required")
	case o.Expiration <= 0:
		return nil, errors.New("token expiration must be positive")
	case o.Key == nil:
		return nil, errors.New("token signing key is required")
	case o.ACL == nil:
		return nil, errors.New("ACL is required")
	case o.Authenticator == nil:
		return nil, errors.New("authenticator is required")
	}
	is, err := newIssuer(o.Key)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, issuer: is, clock: o.Clock}
	if s.clock == nil {
		s.clock = clock.RealClock{}
	}
	if s.opts.DelayClock == nil {
		s.opts.DelayClock = clock.RealClock{}
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/auth", s.serveToken)
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	metrics.Register()
	s.mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if o.Ready != nil && !o.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("account cache not synced\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return s, nil
}

// MetricsHandler serves token requests by outcome and the authenticator's
// client-go metrics.
func MetricsHandler() http.Handler {
	metrics.Register()
	return legacyregistry.Handler()
}

// NewFromConfig makes a Server from a docker_auth-format configuration: the
// token section (issuer, expiration, signing key pair) and the ACL. The
// caller provides the authenticator that the ext_auth section names.
func NewFromConfig(cfg *authconfig.Config, a Authenticator, ready func() bool, services ...string) (*Server, error) {
	key, err := LoadSigningKey(cfg.Token.Certificate, cfg.Token.Key)
	if err != nil {
		return nil, err
	}
	rules, err := acl.New(cfg.ACL)
	if err != nil {
		return nil, err
	}
	return New(Options{
		Issuer:        cfg.Token.Issuer,
		Expiration:    time.Duration(cfg.Token.Expiration) * time.Second,
		Key:           key,
		ACL:           rules,
		Authenticator: a,
		Ready:         ready,
		Services:      services,
	})
}

// SetTrustedProxies sets Options.TrustedProxies; call it before serving.
func (s *Server) SetTrustedProxies(p []netip.Prefix) {
	s.opts.TrustedProxies = p
}

// SetRefusalDelay sets Options.RefusalDelay and MaxDelayed; call it before
// serving.
func (s *Server) SetRefusalDelay(d time.Duration, maxDelayed int) {
	s.opts.RefusalDelay, s.opts.MaxDelayed = d, maxDelayed
}

// ServeHTTP serves the token and health endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// realmHeader is the Basic challenge of a refused login.
const realmHeader = `Basic realm="registry-auth"`

// accessLog collects what a token request's log line says. It never holds a
// password or a token.
type accessLog struct {
	account string
	client  netip.Addr
	service string
	scopes  []string
	granted []string
	status  int
	reason  string
	// unchecked: the login was refused without a check (busy, or over a
	// failed-login limit); such lines go to -v=2 and a summary.
	unchecked string
}

// refusalSummaryInterval is how often, at most, the log sums up the
// logins refused without a check. A flood of them would otherwise flood
// the log with a line each.
const refusalSummaryInterval = 10 * time.Second

// refusals counts logins refused without a check since the last summary.
type refusals struct {
	mu     sync.Mutex
	last   time.Time
	counts map[string]int
}

// note counts one refusal and logs the summary when the last is
// refusalSummaryInterval old (or there was none).
func (rf *refusals) note(reason string, now time.Time) {
	rf.mu.Lock()
	if rf.counts == nil {
		rf.counts = map[string]int{}
	}
	rf.counts[reason]++
	if !rf.last.IsZero() && now.Sub(rf.last) < refusalSummaryInterval {
		rf.mu.Unlock()
		return
	}
	counts := rf.counts
	rf.counts, rf.last = nil, now
	rf.mu.Unlock()
	kv := []any{"interval", refusalSummaryInterval.String()}
	for _, k := range []string{refusedClientLimit, refusedUserLimit, refusedBusy} {
		kv = append(kv, k, counts[k])
	}
	klog.InfoS("logins refused without a check (each at -v=2)", kv...)
}

// Reasons of refusals without a check.
const (
	refusedClientLimit = "clientLimit"
	refusedUserLimit   = "userLimit"
	refusedBusy        = "busy"
)

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	start := time.Now() // wall time for the duration, whatever the token clock
	al := &accessLog{}
	defer func() {
		outcome := metrics.TokenOutcome(al.status)
		if al.unchecked == refusedBusy {
			outcome = metrics.TokenBusy // a 503 of its own, not a backend error
		}
		metrics.TokenRequests.WithLabelValues(outcome).Inc()
		logger := klog.V(0)
		if al.unchecked != "" {
			s.refusals.note(al.unchecked, s.clock.Now())
			logger = klog.V(2)
		}
		if !logger.Enabled() {
			return
		}
		kv := []any{
			"remote", r.RemoteAddr,
			"account", al.account,
			"service", al.service,
			"scopes", al.scopes,
			"granted", al.granted,
			"status", al.status,
			"reason", al.reason,
			"duration", time.Since(start).String(),
		}
		if al.client.IsValid() && al.client != remoteIP(r.RemoteAddr) {
			kv = append(kv, "client", al.client.String())
		}
		logger.InfoS("token request", kv...)
	}()
	fail := func(code int, reason string) {
		al.status, al.reason = code, reason
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", realmHeader)
		}
		writeError(w, code, reason)
	}

	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		fail(http.StatusMethodNotAllowed, "only GET is supported")
		return
	}
	q := r.URL.Query()
	al.service = q.Get("service")
	if al.service == "" {
		fail(http.StatusBadRequest, "service parameter is required")
		return
	}
	if len(s.opts.Services) > 0 && !slices.Contains(s.opts.Services, al.service) {
		fail(http.StatusBadRequest, "unknown service")
		return
	}
	scopes, err := ParseScopes(q["scope"])
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	for _, sc := range scopes {
		al.scopes = append(al.scopes, sc.String())
	}

	user, password, hasBasic := r.BasicAuth()
	if r.Header.Get("Authorization") != "" && !hasBasic {
		fail(http.StatusUnauthorized, "unsupported Authorization header")
		return
	}
	if hasBasic && user == "" && password != "" {
		fail(http.StatusUnauthorized, "empty user name")
		return
	}
	if acct := q.Get("account"); acct != "" && acct != user {
		fail(http.StatusBadRequest, "account parameter differs from the user name")
		return
	}

	ip := s.clientAddr(r)
	al.client = ip
	var labels map[string][]string
	if user != "" {
		if len(password) > authn.MaxBcryptPasswordLength {
			// Whoever the user: bcrypt would ignore the password's end.
			al.account = "(not checked)"
			fail(http.StatusUnauthorized, fmt.Sprintf("password longer than %d bytes: refused, since bcrypt ignores the rest", authn.MaxBcryptPasswordLength))
			return
		}
		ok, l, err := s.opts.Authenticator.AuthenticateFrom(r.Context(), ip, user, password)
		// The user name is logged only when it names an account: a
		// password pasted into the user field must not reach the log.
		al.account = user
		var limited *authn.LimitError
		switch {
		case errors.Is(err, authn.ErrNoMatch):
			al.account = "(unknown)"
		case errors.As(err, &limited), errors.Is(err, authn.ErrBusy):
			al.account = "(not checked)"
		}
		switch {
		case errors.As(err, &limited):
			al.unchecked = refusedUserLimit
			if limited.Client {
				al.unchecked = refusedClientLimit
			}
			held := s.hold(r.Context(), limited.RetryAfter)
			w.Header().Set("Retry-After", strconv.FormatInt(authn.RetryAfterSeconds(limited.RetryAfter-held), 10))
			fail(http.StatusTooManyRequests, limited.Error())
			return
		case errors.Is(err, authn.ErrBusy):
			al.unchecked = refusedBusy
			w.Header().Set("Retry-After", strconv.FormatInt(authn.RetryAfterSeconds(authn.BusyRetryAfter), 10))
			fail(http.StatusServiceUnavailable, err.Error())
			return
		case err != nil && !errors.Is(err, authn.ErrNoMatch):
			klog.ErrorS(err, "authentication failed", "account", al.account)
			fail(http.StatusServiceUnavailable, "authentication backend unavailable")
			return
		case !ok:
			fail(http.StatusUnauthorized, "invalid credentials")
			return
		}
		labels = l
	}

	var access []ResourceActions
	for _, sc := range scopes {
		d := s.opts.ACL.Authorize(acl.Request{
			Account: user,
			Type:    sc.Type,
			Name:    sc.Name,
			Service: al.service,
			IP:      ip,
			Labels:  labels,
			Actions: sc.Actions,
		})
		if len(d.Actions) == 0 {
			continue
		}
		access = append(access, ResourceActions{Type: sc.Type, Class: sc.Class, Name: sc.Name, Actions: d.Actions})
		al.granted = append(al.granted, Scope{Type: sc.Type, Class: sc.Class, Name: sc.Name, Actions: d.Actions}.String())
	}

	now := s.clock.Now()
	claims := newClaims(s.opts.Issuer, user, al.service, now, s.opts.Expiration, access)
	token, err := s.issuer.sign(claims)
	if err != nil {
		klog.ErrorS(err, "token signing failed")
		fail(http.StatusInternalServerError, "cannot sign token")
		return
	}
	body, err := json.Marshal(tokenResponse{
		Token:       token,
		AccessToken: token,
		ExpiresIn:   int64(s.opts.Expiration / time.Second),
		IssuedAt:    now.UTC().Format(time.RFC3339),
	})
	if err != nil {
		fail(http.StatusInternalServerError, "cannot encode response")
		return
	}
	al.status = http.StatusOK
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

// hold waits up to RefusalDelay (at most retryAfter) before a refusal is
// answered, unless MaxDelayed answers are held already or the request
// ends, and tells how long it waited.
func (s *Server) hold(ctx context.Context, retryAfter time.Duration) time.Duration {
	d := min(s.opts.RefusalDelay, retryAfter)
	if d <= 0 {
		return 0
	}
	if s.delayed.Add(1) > int64(s.opts.MaxDelayed) {
		s.delayed.Add(-1)
		return 0
	}
	defer s.delayed.Add(-1)
	start := s.opts.DelayClock.Now()
	t := s.opts.DelayClock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
	case <-ctx.Done():
	}
	return s.opts.DelayClock.Since(start)
}

// clientAddr is the address of the client that sent r: the connection's
// peer, or, when that is a trusted proxy, the last address in
// X-Forwarded-For that is not one (each proxy appends the address it got
// the request from, so only the addresses right of the first untrusted one
// were written by trusted proxies). A malformed entry ends the walk at the
// trusted proxy right of it.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	addr := remoteIP(r.RemoteAddr)
	if !s.trusted(addr) {
		return addr
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr
		}
		addr = a.Unmap()
		if !s.trusted(addr) {
			return addr
		}
	}
	return addr
}

func (s *Server) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func remoteIP(remoteAddr string) netip.Addr {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// writeError answers with the registry error format.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]string{{"code": strings.ToUpper(strings.ReplaceAll(http.StatusText(code), " ", "_")), "message": msg}},
	})
}

// String describes the server for logs.
func (s *Server) String() string {
	return fmt.Sprintf("token server (issuer %q, key %s %s)", s.opts.Issuer, s.opts.Key.Algorithm, s.opts.Key.KeyID)
}
