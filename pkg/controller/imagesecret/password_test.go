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

// TestVerifierIsBounded: at most two generations of maxVerified entries;
// a hash remembered one generation ago still verifies without bcrypt, and a
// real hash verifies by a bcrypt compare once it has aged out.
func TestVerifierIsBounded(t *testing.T) {
	v := newVerifier()
	h, err := hashPassword("pw", 4)
	if err != nil {
		t.Fatal(err)
	}
	v.remember(h, "pw")
	v.remember("not-bcrypt", "pw")
	for i := range maxVerified {
		v.remember(fmt.Sprint("hash-", i), "pw")
	}
	if n := len(v.cur) + len(v.old); n > 2*maxVerified {
		t.Fatalf("%d entries, bound %d", n, 2*maxVerified)
	}
	if !v.verify("not-bcrypt", "pw") {
		t.Error("an entry of the old generation was forgotten")
	}
	for i := range 2 * maxVerified {
		v.remember(fmt.Sprint("later-", i), "pw")
	}
	if n := len(v.cur) + len(v.old); n > 2*maxVerified {
		t.Fatalf("%d entries, bound %d", n, 2*maxVerified)
	}
	if v.verify("not-bcrypt", "pw") {
		t.Error("an entry two generations old is still remembered")
	}
	if !v.verify(h, "pw") || v.verify(h, "other") {
		t.Error("a real hash must verify its password after it aged out")
	}
}
