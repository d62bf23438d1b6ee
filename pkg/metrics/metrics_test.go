package metrics

import (
	"strings"
	"testing"

	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"
)

func TestRegisteredAndExposed(t *testing.T) {
	Register()
	Register() // twice is fine
	Rotations.WithLabelValues("push", "scheduled").Inc()
	TokenRequests.WithLabelValues(TokenOutcome(401)).Inc()
	want := `
# HELP registry_auth_token_requests_total [ALPHA] Token requests by outcome: issued, denied (bad credentials), limited (a failed-login budget used up), busy (no bcrypt slot free), bad_request, error (backend unavailable).
# TYPE registry_auth_token_requests_total counter
registry_auth_token_requests_total{outcome="denied"} 1
`
	if err := testutil.GatherAndCompare(legacyregistry.DefaultGatherer, strings.NewReader(want), "registry_auth_token_requests_total"); err != nil {
		t.Error(err)
	}
	if v, err := testutil.GetCounterMetricValue(Rotations.WithLabelValues("push", "scheduled")); err != nil || v != 1 {
		t.Errorf("rotations = %v, %v", v, err)
	}
}

func TestTokenOutcome(t *testing.T) {
	for status, want := range map[int]string{200: TokenIssued, 401: TokenDenied, 429: TokenLimited, 400: TokenBadRequest, 405: TokenBadRequest, 503: TokenError, 500: TokenError} {
		if got := TokenOutcome(status); got != want {
			t.Errorf("TokenOutcome(%d) = %s, want %s", status, got, want)
		}
	}
}
