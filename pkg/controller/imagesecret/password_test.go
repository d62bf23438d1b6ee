package imagesecret

import "testing"

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
