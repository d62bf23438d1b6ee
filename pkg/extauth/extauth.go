// Package extauth is docker_auth's ext_auth contract as our authenticator
// speaks it, and the Unix-socket protocol between the process docker_auth
// starts for every login and the long-running authenticator beside it
// (`k8s-docker-authn --serve`, a sidecar in the auth pod).
//
// docker_auth runs its ext_auth command once per token request. Starting a
// binary that links client-go costs milliseconds of package initialization
// alone, and a one-shot process can keep no informer and no verified-login
// cache. So the command docker_auth runs is a small forwarder
// (plugin/k8s-docker-authn-forward): it reads "<user> <password>", asks the
// sidecar over a Unix socket, and relays the answer as its exit status and
// standard output. When the sidecar cannot answer (no socket, no process
// behind it, a protocol it does not speak, not synced yet) the forwarder
// execs the full authenticator, which answers on its own.
//
// This package imports the standard library only, and on Linux not even
// package net (its client makes plain system calls), so that the forwarder
// starts fast. The server side is pkg/extauth/sidecar.
//
// # Protocol, version 1
//
// One request and one response per connection, all integers big-endian:
//
//	request:  "IRA" 0x01 | u16 n + namespace | u16 n + user | u16 n + password
//	response: "IRA" 0x01 | u8 status | u32 n + body
//
// Every length is bounded (MaxNamespaceLength, MaxInput, MaxBody) and
// checked before anything is allocated. The status is an ext_auth exit code
// (Allowed, Denied, NoMatch, Error) or Unavailable, which tells the client to
// answer on its own. The body is, for Allowed, the ext_auth standard output
// ({"labels":{...}}); for Error and Unavailable a short reason; else empty.
// A server that gets a request of another version answers Unavailable in
// version 1, so the client falls back rather than guess. Nothing in the
// protocol's errors or reasons contains the password.
package extauth

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Status is an ext_auth answer. Allowed to Error are docker_auth's exit
// codes.
type Status uint8

const (
	// Allowed: the password verified; the body is the standard output.
	Allowed Status = 0
	// Denied: an account answers to the user name, but the login fails.
	Denied Status = 1
	// NoMatch: no account answers to the user name.
	NoMatch Status = 2
	// Error: the login could not be checked.
	Error Status = 3
	// Unavailable is never an exit code: the server cannot decide (its
	// account cache is not synced, it serves another namespace, it does not
	// speak the request's version), and the client answers on its own.
	Unavailable Status = 4
)

func (s Status) String() string {
	switch s {
	case Allowed:
		return "allowed"
	case Denied:
		return "denied"
	case NoMatch:
		return "no match"
	case Error:
		return "error"
	case Unavailable:
		return "unavailable"
	default:
		return fmt.Sprintf("status %d", uint8(s))
	}
}

// DefaultSocket is where the sidecar listens and the ext_auth process
// connects unless --socket says otherwise: an emptyDir that only the auth
// pod's docker_auth and sidecar containers mount.
const DefaultSocket = "/run/ext-auth/authn.sock"

// Names of the binaries. The forwarder is built as ForwarderBinary and
// installed where docker_auth's ext_auth.command points (named
// k8s-docker-authn, as the config requires); the full authenticator is
// installed beside it as FullBinary, the forwarder's fallback.
const (
	ForwarderBinary = "k8s-docker-authn-forward"
	FullBinary      = "k8s-docker-authn-full"
)

// Input bounds. They equal pkg/authn's MaxUsernameLength and
// MaxPasswordLength (a test keeps them so); this package cannot import
// pkg/authn, which links client-go.
const (
	MaxUsernameLength = 512 + 1 + 19
	MaxPasswordLength = 1024
	// MaxBcryptPasswordLength is pkg/authn's: a longer password is
	// denied, since bcrypt ignores what follows its first 72 bytes.
	MaxBcryptPasswordLength = 72
	// MaxInput bounds what an ext_auth process reads from its standard
	// input: a user name, a space, a password and a line end.
	MaxInput = MaxUsernameLength + 1 + MaxPasswordLength + 2
	// MaxNamespaceLength is a Kubernetes namespace's limit, with room.
	MaxNamespaceLength = 253
	// MaxBody bounds a response body (the labels of an account).
	MaxBody = 1 << 20
)

// ErrAmbiguous is ParseInput's answer to input with more than one space:
// docker_auth writes "<user> <password>" and its user names may contain
// spaces, so "a b c" is user "a" with password "b c" or user "a b" with
// password "c". The user names of ImageRegistryAccounts contain no space,
// so only the first reading could name one of ours, but the second may be
// what docker_auth was asked: docker_auth user "ci-bot correct" with
// password "horse" would log in as our "ci-bot" with password "correct
// horse", and get ci-bot's labels under another name. Such input is denied
// (exit 1), whatever the user: a password with a space cannot be used
// through docker_auth.
var ErrAmbiguous = errors.New("credentials hold more than one space, so user and password cannot be told apart (our user names hold no space; a password with a space is refused)")

// ErrPasswordTooLong is the answer to a password of more than
// MaxBcryptPasswordLength bytes: denied (exit 1), whatever the user.
var ErrPasswordTooLong = fmt.Errorf("password longer than %d bytes: refused, since bcrypt ignores the rest", MaxBcryptPasswordLength)

// ReadInput reads docker_auth's "<user> <password>", split at its only
// space. A trailing newline, as a shell's echo adds, is dropped; docker_auth
// sends none. It reads at most MaxInput+1 bytes. The errors never contain
// the input; ErrAmbiguous and ErrPasswordTooLong mean "deny", any other
// error "malformed".
func ReadInput(r io.Reader) (user, password string, err error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxInput+1))
	if err != nil {
		return "", "", fmt.Errorf("read credentials: %w", err)
	}
	return ParseInput(b)
}

// ParseInput parses input as ReadInput does.
func ParseInput(b []byte) (user, password string, err error) {
	if len(b) > MaxInput {
		return "", "", fmt.Errorf("credentials longer than %d bytes", MaxInput)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	user, password, ok := strings.Cut(s, " ")
	if !ok {
		return "", "", errors.New("credentials are not \"<user> <password>\"")
	}
	if strings.Contains(password, " ") {
		return "", "", ErrAmbiguous
	}
	if len(password) > MaxBcryptPasswordLength {
		return "", "", ErrPasswordTooLong
	}
	return user, password, nil
}

// Denies tells whether a ReadInput error is a denial (exit 1) rather than
// malformed input (exit 3).
func Denies(err error) bool {
	return errors.Is(err, ErrAmbiguous) || errors.Is(err, ErrPasswordTooLong)
}

// Relay turns a server's answer into what docker_auth reads from an
// ext_auth process: it writes the standard output (Allowed) or the reason
// (Error) and returns the exit code. ok is false for Unavailable and for an
// unknown status: the caller must answer on its own.
func Relay(resp Response, stdout, stderr io.Writer) (code int, ok bool) {
	switch resp.Status {
	case Allowed:
		if _, err := stdout.Write(resp.Body); err != nil {
			fmt.Fprintln(stderr, "write labels:", err)
			return int(Error), true
		}
		return int(Allowed), true
	case Denied, NoMatch:
		return int(resp.Status), true
	case Error:
		fmt.Fprintf(stderr, "ext_auth sidecar: %s\n", resp.Body)
		return int(Error), true
	default:
		return 0, false
	}
}
