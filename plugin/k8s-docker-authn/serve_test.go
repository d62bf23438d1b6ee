package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/image-registry-operator/image-registry-operator/pkg/authn"
	"github.com/image-registry-operator/image-registry-operator/pkg/extauth"
)

// stubVerifier answers every login with res and err, and counts them.
type stubVerifier struct {
	res   authn.Result
	err   error
	calls int
}

func (s *stubVerifier) HasSynced() bool { return true }

func (s *stubVerifier) Verify(context.Context, string, string) (authn.Result, map[string][]string, error) {
	s.calls++
	return s.res, nil, s.err
}

// TestHandlerRefusals: a login the authenticator refused as busy or over
// its limit is an error (exit 3), never "unavailable", which would send it
// to the one-shot fallback (a list and a bcrypt compare without any
// limit); a password with a space is denied without asking.
func TestHandlerRefusals(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pw       string
		err      error
		want     extauth.Status
		verified bool
	}{
		{"busy", "pw", authn.ErrBusy, extauth.Error, true},
		{"user over its limit", "pw", &authn.LimitError{RetryAfter: 6 * time.Second}, extauth.Error, true},
		{"wrapped limit", "pw", errors.Join(errors.New("x"), &authn.LimitError{}), extauth.Error, true},
		{"password with a space", "correct horse", nil, extauth.Denied, false},
	} {
		v := &stubVerifier{res: authn.Denied, err: tc.err}
		resp := handler(v, ns)(context.Background(), extauth.Request{Namespace: ns, User: "ci-bot", Password: tc.pw})
		if resp.Status != tc.want || (v.calls > 0) != tc.verified {
			t.Errorf("%s: %v after %d checks, want %v", tc.name, resp.Status, v.calls, tc.want)
		}
		if code, ok := extauth.Relay(resp, &lockedBuffer{}, &lockedBuffer{}); !ok || code != int(tc.want) {
			t.Errorf("%s: relayed as exit %d (%v), want %d", tc.name, code, ok, tc.want)
		}
	}
}
