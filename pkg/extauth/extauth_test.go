package extauth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseInput(t *testing.T) {
	for _, tc := range []struct{ in, user, pw string }{
		{"u p", "u", "p"},
		{"u p\r\n", "u", "p"},
		{"u ", "u", ""},
		{" ", "", ""},
		{"u\tv p\tw", "u\tv", "p\tw"}, // only a space separates
		{"u " + strings.Repeat("x", MaxBcryptPasswordLength), "u", strings.Repeat("x", MaxBcryptPasswordLength)},
	} {
		u, p, err := ReadInput(strings.NewReader(tc.in))
		if err != nil || u != tc.user || p != tc.pw {
			t.Errorf("%.20q: %.20q %.20q %v", tc.in, u, p, err)
		}
	}
	for name, in := range map[string]string{
		"no separator": "nospace",
		"empty":        "",
		"oversized":    "u " + strings.Repeat("x", MaxInput),
	} {
		_, _, err := ReadInput(strings.NewReader(in))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "xxxx") || (in != "" && strings.Contains(err.Error(), in)) {
			t.Errorf("%s: the error shows the input: %v", name, err)
		}
	}
	// Denied, not malformed: more than one space (user "a b" or password
	// "b c"?) and passwords bcrypt would cut.
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"password with a space", "ci-bot correct horse", ErrAmbiguous},
		{"password with a space, newline", "u p w\n", ErrAmbiguous},
		{"password starting with a space", "u  p", ErrAmbiguous},
		{"password ending with a space", "u p ", ErrAmbiguous},
		{"password of 73 bytes", "u " + strings.Repeat("x", MaxBcryptPasswordLength+1), ErrPasswordTooLong},
		{"longest input", "u " + strings.Repeat("x", MaxInput-2), ErrPasswordTooLong},
	} {
		u, p, err := ParseInput([]byte(tc.in))
		if !errors.Is(err, tc.want) || !Denies(err) || u != "" || p != "" {
			t.Fatalf("%s: %q %q %v, want %v", tc.name, u, p, err, tc.want)
		}
		if strings.Contains(err.Error(), "horse") || strings.Contains(err.Error(), "xxx") {
			t.Errorf("%s: the error shows the input: %v", tc.name, err)
		}
	}
	if _, _, err := ParseInput([]byte("nospace")); Denies(err) {
		t.Error("malformed input counted as a denial")
	}
	// Bounded: an endless input is cut after MaxInput+1 bytes.
	r := &countingReader{}
	if _, _, err := ReadInput(r); err == nil || r.n > MaxInput+1+4096 {
		t.Errorf("endless input: %v after %d bytes", err, r.n)
	}
}

type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	r.n += len(p)
	return len(p), nil
}

func TestProtocolRoundTrip(t *testing.T) {
	req := Request{Namespace: "team-a", User: "team/app/3", Password: "pass word\x00with anything"}
	var buf bytes.Buffer
	if err := WriteRequest(&buf, req); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRequest(&buf)
	if err != nil || got != req {
		t.Fatalf("request %#v, %v", got, err)
	}
	for _, resp := range []Response{
		{Status: Allowed, Body: []byte(`{"labels":{"type":["push"]}}` + "\n")},
		{Status: Denied},
		{Status: NoMatch},
		{Status: Error, Body: []byte("API server unreachable")},
		{Status: Unavailable, Body: []byte("not synced")},
	} {
		buf.Reset()
		if err := WriteResponse(&buf, resp); err != nil {
			t.Fatal(err)
		}
		got, err := ReadResponse(&buf)
		if err != nil || got.Status != resp.Status || !bytes.Equal(got.Body, resp.Body) {
			t.Errorf("response %v %q, %v; want %v %q", got.Status, got.Body, err, resp.Status, resp.Body)
		}
	}
	for _, s := range []string{req.String(), fmt.Sprintf("%v %+v %#v %s", req, req, req, req)} {
		if strings.Contains(s, "pass") {
			t.Errorf("formatted request shows the password: %s", s)
		}
	}
}

// frame builds a request frame by hand.
func frame(version byte, fields ...string) []byte {
	b := append([]byte("IRA"), version)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b
}

// strictReader fails the test if more than limit bytes are read: bounds
// must be checked before a field is read.
type strictReader struct {
	t     *testing.T
	r     io.Reader
	limit int
	n     int
}

func (s *strictReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += n
	if s.n > s.limit {
		s.t.Errorf("read %d bytes, more than the %d of the header and lengths", s.n, s.limit)
	}
	return n, err
}

func TestReadRequestRejects(t *testing.T) {
	long := strings.Repeat("n", MaxNamespaceLength+1)
	for name, tc := range map[string]struct {
		in      []byte
		version byte
	}{
		"foreign":             {[]byte("GET / HTTP/1.1\r\n\r\n"), 0},
		"other version":       {frame(2, "ns", "u", "p"), 2},
		"truncated":           {frame(1, "ns", "u")[:9], 0},
		"empty":               {nil, 0},
		"namespace too long":  {frame(1, long, "u", "p"), 0},
		"user too long":       {frame(1, "ns", strings.Repeat("u", MaxInput+1), "p"), 0},
		"password too long":   {frame(1, "ns", "u", strings.Repeat("p", MaxInput+1)), 0},
		"missing password":    {frame(1, "ns", "u"), 0},
		"length beyond frame": {append(frame(1, "ns", "u"), 0, 50, 'p'), 0},
	} {
		_, err := ReadRequest(bytes.NewReader(tc.in))
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Version != tc.version {
			t.Errorf("%s: %v, want a protocol error (version %d)", name, err, tc.version)
		}
	}
	// An oversized length is refused before the field is read.
	in := frame(1, strings.Repeat("n", MaxNamespaceLength+1))
	if _, err := ReadRequest(&strictReader{t: t, r: bytes.NewReader(in), limit: 4 + 2 + 64}); err == nil {
		t.Error("accepted an oversized namespace")
	}
	if err := WriteRequest(io.Discard, Request{Namespace: "ns", User: "u", Password: strings.Repeat("p", MaxInput+1)}); err == nil {
		t.Error("wrote an oversized password")
	}
}

func TestReadResponseRejects(t *testing.T) {
	head := func(version, status byte, n uint32) []byte {
		return binary.BigEndian.AppendUint32([]byte{'I', 'R', 'A', version, status}, n)
	}
	for name, in := range map[string][]byte{
		"foreign":        []byte("HTTP/1.1 200 OK\r\n"),
		"other version":  head(2, 0, 0),
		"unknown status": head(1, 9, 0),
		"body too large": head(1, 0, MaxBody+1),
		"truncated body": append(head(1, 0, 10), "abc"...),
		"empty":          nil,
	} {
		if _, err := ReadResponse(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := WriteResponse(io.Discard, Response{Body: make([]byte, MaxBody+1)}); err == nil {
		t.Error("wrote an oversized body")
	}
}

// socketPath is a short path: Unix socket paths are limited to 108 bytes.
func socketPath(t testing.TB) string {
	dir, err := os.MkdirTemp("", "extauth")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "authn.sock")
}

func TestAskWithoutServer(t *testing.T) {
	req := Request{Namespace: "ns", User: "u", Password: "p"}
	// No socket file.
	if _, err := Ask(filepath.Join(t.TempDir(), "missing.sock"), req, time.Second); err == nil {
		t.Error("no socket: no error")
	}
	// A socket file left by a process that is gone.
	path := socketPath(t)
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := Ask(path, req, time.Second); err == nil {
		t.Error("stale socket: no error")
	}
	// Someone listens but never answers: the timeout ends the wait.
	path = socketPath(t)
	l, err = net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	if _, err := Ask(path, req, 200*time.Millisecond); err == nil {
		t.Error("silent server: no error")
	}
}

func TestRelay(t *testing.T) {
	for _, tc := range []struct {
		resp           Response
		code           int
		ok             bool
		stdout, stderr string
	}{
		{Response{Status: Allowed, Body: []byte("{}\n")}, 0, true, "{}\n", ""},
		{Response{Status: Denied}, 1, true, "", ""},
		{Response{Status: NoMatch}, 2, true, "", ""},
		{Response{Status: Error, Body: []byte("boom")}, 3, true, "", "ext_auth sidecar: boom\n"},
		{Response{Status: Unavailable}, 0, false, "", ""},
	} {
		var stdout, stderr bytes.Buffer
		code, ok := Relay(tc.resp, &stdout, &stderr)
		if code != tc.code || ok != tc.ok || stdout.String() != tc.stdout || stderr.String() != tc.stderr {
			t.Errorf("%v: %d %v %q %q", tc.resp.Status, code, ok, stdout.String(), stderr.String())
		}
	}
}
