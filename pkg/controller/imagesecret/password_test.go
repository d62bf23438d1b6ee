package imagesecret

import (
	"fmt"
	"testing"
)

// TestVerifierRemembersFreshHashes: a hash the controller just made verifies
// its password from the cache, without a bcrypt compare. The "hash" here is
// not bcrypt at all, so only the cache can accept it.
func TestVerifierRemembersFreshHashes(t *testing.T) {
	v := newVerifier()
	if v.verify("not-bcrypt", "pw") {
		t.Fatal("verified an unknown pair")
	}
	v.remember("not-bcrypt", "pw")
	if !v.verify("not-bcrypt", "pw") {
		t.Error("a remembered pair did not verify")
	}
	if v.verify("not-bcrypt", "other") {
		t.Error("another password verified")
	}
}

// TestVerifierIsBounded: the memory starts over at maxVerified entries, and
// a real hash still verifies afterwards, by a bcrypt compare.
func TestVerifierIsBounded(t *testing.T) {
	v := newVerifier()
	h, err := hashPassword("pw", 4)
	if err != nil {
		t.Fatal(err)
	}
	v.remember(h, "pw")
	for i := range maxVerified {
		v.remember(fmt.Sprint("hash-", i), "pw")
	}
	if n := len(v.ok); n > maxVerified {
		t.Fatalf("%d entries, bound %d", n, maxVerified)
	}
	if !v.verify(h, "pw") || v.verify(h, "other") {
		t.Error("a real hash must verify its password after the memory started over")
	}
}
