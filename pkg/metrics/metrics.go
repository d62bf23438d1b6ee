// Package metrics holds the operator's and the token server's own
// Prometheus metrics. They live in k8s.io/component-base's legacy registry,
// beside client-go's REST client and workqueue metrics, and are served by
// each binary's /metrics endpoint.
package metrics

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Outcomes of a token request.
const (
	TokenIssued     = "issued"
	TokenDenied     = "denied"
	TokenBadRequest = "bad_request"
	TokenError      = "error"
	// TokenLimited: refused without a check, a failed-login budget is
	// used up (429).
	TokenLimited = "limited"
	// TokenBusy: refused without a check, every bcrypt slot and the wait
	// queue are taken (503).
	TokenBusy = "busy"
)

var (
	// Rotations counts password rotations by kind (push or pull) and cause
	// (scheduled or requested by the rotate annotation), and resets to
	// fresh passwords (cause "reset").
	Rotations = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "image_registry_operator",
		Name:           "rotations_total",
		Help:           "Password rotations of push and pull secrets, by kind and cause (scheduled, requested, reset).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"kind", "cause"})

	// RotationDelay is how late a scheduled rotation started: the time from
	// its due moment (rotationDate + interval + the object's jitter) to the
	// sync that performed it. It shows whether the operator keeps up with
	// its timers.
	RotationDelay = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace:      "image_registry_operator",
		Name:           "rotation_delay_seconds",
		Help:           "Time from a scheduled rotation's due moment to the sync that performed it, by kind.",
		Buckets:        []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 60, 120, 300, 600, 1800, 3600},
		StabilityLevel: metrics.ALPHA,
	}, []string{"kind"})

	// SyncErrors counts syncs that failed and were requeued, by controller.
	SyncErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "image_registry_operator",
		Name:           "sync_errors_total",
		Help:           "Syncs that returned an error and were requeued with back-off, by controller.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"controller"})

	// AccountOperations counts ImageRegistryAccounts the operator created
	// and deleted (revoked on CR deletion, or swept as orphans).
	AccountOperations = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "image_registry_operator",
		Name:           "account_operations_total",
		Help:           "ImageRegistryAccounts created, revoked (owner deleted) and swept (orphaned), by kind.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"kind", "operation"})

	// TokenRequests counts the token server's answers by outcome.
	TokenRequests = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "registry_auth",
		Name:           "token_requests_total",
		Help:           "Token requests by outcome: issued, denied (bad credentials), limited (a failed-login budget used up), busy (no bcrypt slot free), bad_request, error (backend unavailable).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"outcome"})
)

var registerOnce sync.Once

// Register adds the metrics to the legacy registry; safe to call more than once.
func Register() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(Rotations, RotationDelay, SyncErrors, AccountOperations, TokenRequests)
	})
}

// TokenOutcome maps a token response's HTTP status to its outcome label.
func TokenOutcome(status int) string {
	switch {
	case status == 200:
		return TokenIssued
	case status == 401 || status == 403:
		return TokenDenied
	case status == 429:
		return TokenLimited
	case status >= 400 && status < 500:
		return TokenBadRequest
	default:
		return TokenError
	}
}
