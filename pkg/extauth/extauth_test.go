package extauth

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseInput(t *testing.T) {
	for _, tc := range []struct{ in, user, pw string }{
		{"u p", "u", "p"},
		{"u p w\n", "u", "p w"},
		{"u p\r\n", "u", "p"},
		{"u ", "u", ""},
		{" ", "", ""},
		{"u " + strings.Repeat("x", MaxInput-2), "u", strings.Repeat("x", MaxInput-2)},
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

// startServer serves h on a fresh socket until the test ends.
func startServer(t testing.TB, s *Server) string {
	t.Helper()
	path := socketPath(t)
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path
}

func TestServer(t *testing.T) {
	var logged []string
	var seen atomic.Value
	srv := &Server{
		Handler: func(ctx context.Context, req Request) Response {
			seen.Store(req)
			if _, ok := ctx.Deadline(); !ok {
				t.Error("handler context has no deadline")
			}
			switch req.User {
			case "allowed":
				return Response{Status: Allowed, Body: []byte(`{"labels":{}}` + "\n")}
			case "denied":
				return Response{Status: Denied}
			case "nomatch":
				return Response{Status: NoMatch}
			case "error":
				return Response{Status: Error, Body: []byte("broken")}
			case "unavailable":
				return Response{Status: Unavailable, Body: []byte("not synced")}
			default:
				panic("unexpected user")
			}
		},
		ErrorLog: func(msg string, err error) { logged = append(logged, msg+": "+err.Error()) },
	}
	path := startServer(t, srv)
	for _, tc := range []struct {
		user   string
		status Status
		body   string
	}{
		{"allowed", Allowed, `{"labels":{}}` + "\n"},
		{"denied", Denied, ""},
		{"nomatch", NoMatch, ""},
		{"error", Error, "broken"},
		{"unavailable", Unavailable, "not synced"},
		{"panics", Error, "internal error"},
	} {
		req := Request{Namespace: "ns", User: tc.user, Password: "the password " + tc.user}
		resp, err := Ask(path, req, 5*time.Second)
		if err != nil || resp.Status != tc.status || string(resp.Body) != tc.body {
			t.Errorf("%s: %v %q %v, want %v %q", tc.user, resp.Status, resp.Body, err, tc.status, tc.body)
		}
		if got := seen.Load().(Request); got != req {
			t.Errorf("%s: handler saw %#v", tc.user, got)
		}
	}
	for _, l := range logged {
		if strings.Contains(l, "password") {
			t.Errorf("log shows a password: %s", l)
		}
	}
}

// rawExchange writes b to the server and reads its answer.
func rawExchange(t *testing.T, path string, b []byte) (Response, error) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	return ReadResponse(c)
}

func TestServerMalformedRequests(t *testing.T) {
	var calls atomic.Int32
	path := startServer(t, &Server{
		Timeout: 300 * time.Millisecond,
		Handler: func(context.Context, Request) Response {
			calls.Add(1)
			return Response{Status: Allowed}
		},
	})
	for name, tc := range map[string]struct {
		in     []byte
		status Status
	}{
		"foreign":           {[]byte("GET / HTTP/1.1\r\n\r\n"), Error},
		"other version":     {frame(7, "ns", "u", "p"), Unavailable},
		"oversized user":    {frame(1, "ns", strings.Repeat("u", MaxInput+1), "p"), Error},
		"oversized ns":      {frame(1, strings.Repeat("n", 300), "u", "p"), Error},
		"oversized as a 0x": {append([]byte("IRA\x01"), 0xff, 0xff), Error},
	} {
		resp, err := rawExchange(t, path, tc.in)
		if err != nil || resp.Status != tc.status {
			t.Errorf("%s: %v %q %v, want %v", name, resp.Status, resp.Body, err, tc.status)
		}
	}
	// A client that sends half a frame and waits: the server hangs up at
	// its timeout without an answer.
	if _, err := rawExchange(t, path, frame(1, "ns", "u")); err == nil {
		t.Error("answered a truncated request")
	}
	if calls.Load() != 0 {
		t.Errorf("handler called %d times for malformed requests", calls.Load())
	}
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

func TestListen(t *testing.T) {
	path := socketPath(t)
	// A stale socket is replaced.
	old, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close()
	l, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, %v", fi.Mode(), err)
	}
	// A live one is not.
	if l2, err := Listen(path); err == nil {
		l2.Close()
		t.Error("took over a live socket")
	}
	l.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left after close: %v", err)
	}
	// Nor is a file that is not a socket.
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l3, err := Listen(path); err == nil {
		l3.Close()
		t.Error("replaced a regular file")
	}
}

func TestServeStopsWithContext(t *testing.T) {
	path := socketPath(t)
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	started := make(chan struct{})
	srv := &Server{Handler: func(context.Context, Request) Response {
		close(started)
		<-release
		return Response{Status: Denied}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	answer := make(chan Response, 1)
	go func() {
		resp, _ := Ask(path, Request{Namespace: "ns", User: "u", Password: "p"}, 10*time.Second)
		answer <- resp
	}()
	<-started
	cancel()
	// The login in flight is answered before Serve returns.
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) with a login in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if resp := <-answer; resp.Status != Denied {
		t.Errorf("login in flight got %v", resp.Status)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left after Serve: %v", err)
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

// BenchmarkRoundTrip is one forwarder exchange without the process: dial
// the socket, send a login, read the answer.
func BenchmarkRoundTrip(b *testing.B) {
	body := []byte(`{"labels":{"name":["app"],"namespace":["team"],"type":["push"]}}` + "\n")
	path := startServer(b, &Server{Handler: func(context.Context, Request) Response {
		return Response{Status: Allowed, Body: body}
	}})
	req := Request{Namespace: "team", User: "team/app/3", Password: strings.Repeat("p", 44)}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if resp, err := Ask(path, req, 5*time.Second); err != nil || resp.Status != Allowed {
			b.Fatal(resp.Status, err)
		}
	}
}
