package sidecar

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/image-registry-operator/image-registry-operator/pkg/extauth"
)

// socketPath is a short path: Unix socket paths are limited to 108 bytes.
func socketPath(t testing.TB) string {
	dir, err := os.MkdirTemp("", "sidecar")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "authn.sock")
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
		Handler: func(ctx context.Context, req extauth.Request) extauth.Response {
			seen.Store(req)
			if _, ok := ctx.Deadline(); !ok {
				t.Error("handler context has no deadline")
			}
			switch req.User {
			case "allowed":
				return extauth.Response{Status: extauth.Allowed, Body: []byte(`{"labels":{}}` + "\n")}
			case "denied":
				return extauth.Response{Status: extauth.Denied}
			case "nomatch":
				return extauth.Response{Status: extauth.NoMatch}
			case "error":
				return extauth.Response{Status: extauth.Error, Body: []byte("broken")}
			case "unavailable":
				return extauth.Response{Status: extauth.Unavailable, Body: []byte("not synced")}
			default:
				panic("unexpected user")
			}
		},
		ErrorLog: func(msg string, err error) { logged = append(logged, msg+": "+err.Error()) },
	}
	path := startServer(t, srv)
	for _, tc := range []struct {
		user   string
		status extauth.Status
		body   string
	}{
		{"allowed", extauth.Allowed, `{"labels":{}}` + "\n"},
		{"denied", extauth.Denied, ""},
		{"nomatch", extauth.NoMatch, ""},
		{"error", extauth.Error, "broken"},
		{"unavailable", extauth.Unavailable, "not synced"},
		{"panics", extauth.Error, "internal error"},
	} {
		req := extauth.Request{Namespace: "ns", User: tc.user, Password: "the password " + tc.user}
		resp, err := extauth.Ask(path, req, 5*time.Second)
		if err != nil || resp.Status != tc.status || string(resp.Body) != tc.body {
			t.Errorf("%s: %v %q %v, want %v %q", tc.user, resp.Status, resp.Body, err, tc.status, tc.body)
		}
		if got := seen.Load().(extauth.Request); got != req {
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
func rawExchange(t *testing.T, path string, b []byte) (extauth.Response, error) {
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
	return extauth.ReadResponse(c)
}

func TestServerMalformedRequests(t *testing.T) {
	var calls atomic.Int32
	path := startServer(t, &Server{
		Timeout: 300 * time.Millisecond,
		Handler: func(context.Context, extauth.Request) extauth.Response {
			calls.Add(1)
			return extauth.Response{Status: extauth.Allowed}
		},
	})
	for name, tc := range map[string]struct {
		in     []byte
		status extauth.Status
	}{
		"foreign":           {[]byte("GET / HTTP/1.1\r\n\r\n"), extauth.Error},
		"other version":     {frame(7, "ns", "u", "p"), extauth.Unavailable},
		"oversized user":    {frame(1, "ns", strings.Repeat("u", extauth.MaxInput+1), "p"), extauth.Error},
		"oversized ns":      {frame(1, strings.Repeat("n", 300), "u", "p"), extauth.Error},
		"oversized as a 0x": {append([]byte("IRA\x01"), 0xff, 0xff), extauth.Error},
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
	srv := &Server{Handler: func(context.Context, extauth.Request) extauth.Response {
		close(started)
		<-release
		return extauth.Response{Status: extauth.Denied}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	answer := make(chan extauth.Response, 1)
	go func() {
		resp, _ := extauth.Ask(path, extauth.Request{Namespace: "ns", User: "u", Password: "p"}, 10*time.Second)
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
	if resp := <-answer; resp.Status != extauth.Denied {
		t.Errorf("login in flight got %v", resp.Status)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left after Serve: %v", err)
	}
}

// BenchmarkRoundTrip is one forwarder exchange without the process: dial
// the socket, send a login, read the answer.
func BenchmarkRoundTrip(b *testing.B) {
	body := []byte(`{"labels":{"name":["app"],"namespace":["team"],"type":["push"]}}` + "\n")
	path := startServer(b, &Server{Handler: func(context.Context, extauth.Request) extauth.Response {
		return extauth.Response{Status: extauth.Allowed, Body: body}
	}})
	req := extauth.Request{Namespace: "team", User: "team/app/3", Password: strings.Repeat("p", 44)}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if resp, err := extauth.Ask(path, req, 5*time.Second); err != nil || resp.Status != extauth.Allowed {
			b.Fatal(resp.Status, err)
		}
	}
}
