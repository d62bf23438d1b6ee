package authn

import (
	"strconv"
	"strings"
)

// MaxUsernameLength bounds a login name; the API allows 512 characters for
// spec.username, plus "/" and a rotation number.
const MaxUsernameLength = 512 + 1 + 19

// Login is a parsed login name. A login name can name a static account
// (the whole name is its username) and, when it ends in "/<number>", a
// rotation of a rotating account (Base is its username). Both readings are
// tried, because a static account's username may itself contain "/".
type Login struct {
	// Name is the login name as given.
	Name string
	// Base is the rotating account's username; empty when Name has no
	// rotation suffix.
	Base string
	// Rotation is the rotation number named by the suffix.
	Rotation int64
	// HasRotation tells whether Name ends in a valid "/<rotation>" suffix.
	HasRotation bool
}

// ParseLogin parses a login name. ok is false for names that cannot belong
// to any account: empty, too long, or holding a space or control character
// (docker_auth's ext_auth protocol separates user and password by a space).
// The rotation suffix is canonical decimal: no sign, no leading zeros, and
// within int64.
func ParseLogin(name string) (l Login, ok bool) {
	if name == "" || len(name) > MaxUsernameLength {
		return Login{}, false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == 0x7f {
			return Login{}, false
		}
	}
	l.Name = name
	i := strings.LastIndexByte(name, '/')
	if i <= 0 || i == len(name)-1 {
		return l, true
	}
	num := name[i+1:]
	if num[0] == '0' && len(num) > 1 {
		return l, true
	}
	for j := 0; j < len(num); j++ {
		if num[j] < '0' || num[j] > '9' {
			return l, true
		}
	}
	r, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return l, true
	}
	l.Base, l.Rotation, l.HasRotation = name[:i], r, true
	return l, true
}

// RotatingLogin is the login name of rotation r of a rotating account.
func RotatingLogin(username string, r int64) string {
	return username + "/" + strconv.FormatInt(r, 10)
}
