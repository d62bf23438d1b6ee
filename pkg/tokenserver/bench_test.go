package tokenserver

import (
	"io"
	"net/http"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// BenchmarkTokenWarm is a token request whose login is served by the
// verified cache: parse, ACL, sign (ES256), encode.
func BenchmarkTokenWarm(b *testing.B) {
	a := startAuthenticator(b, account("push", "team/app", 1, "push", "team", "push-pw", bcrypt.DefaultCost))
	s := newTestServer(b, a)
	defer captureKlog(io.Discard)()
	params := scopeParams("repository:team/web:pull,push")
	if w := s.get("team/app/1", "push-pw", params); w.Code != http.StatusOK {
		b.Fatal(w.Code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if w := s.get("team/app/1", "push-pw", params); w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkTokenCold is a token request whose login misses the cache: one
// bcrypt compare at the default cost (10) dominates.
func BenchmarkTokenCold(b *testing.B) {
	a := startAuthenticator(b, account("push", "team/app", 1, "push", "team", "push-pw", bcrypt.DefaultCost))
	s := newTestServer(b, a)
	defer captureKlog(io.Discard)()
	params := scopeParams("repository:team/web:pull,push")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A fresh password digest key per login defeats the cache.
		a.ResetCache()
		if w := s.get("team/app/1", "push-pw", params); w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
