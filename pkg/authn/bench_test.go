package authn

import (
	"context"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func benchFixture(b *testing.B, cacheSize int) *fixture {
	h, err := bcrypt.GenerateFromPassword([]byte("secret-password-of-32-characters"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	acc := rotating(b, "push-x", "team/app", 1, pushLabels, "p0", "p1")
	acc.Spec.Passwords[1] = string(h)
	f := newFixture(b, acc)
	f.auth.cache.size = cacheSize
	return f
}

// BenchmarkColdLogin is a login that misses the verified cache: one bcrypt
// compare at the default cost (10).
func BenchmarkColdLogin(b *testing.B) {
	f := benchFixture(b, 0)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ok, _, err := f.auth.Authenticate(ctx, "team/app/2", "secret-password-of-32-characters"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkWarmLogin is a repeated login served by the verified cache.
func BenchmarkWarmLogin(b *testing.B) {
	f := benchFixture(b, DefaultCacheSize)
	ctx := context.Background()
	if ok, _, _ := f.auth.Authenticate(ctx, "team/app/2", "secret-password-of-32-characters"); !ok {
		b.Fatal("login failed")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ok, _, err := f.auth.Authenticate(ctx, "team/app/2", "secret-password-of-32-characters"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
