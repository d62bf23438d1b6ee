// Package sidecar serves pkg/extauth's socket protocol: the ext_auth
// sidecar's side (k8s-docker-authn --serve). It is apart from pkg/extauth,
// whose client the forwarder links, because it needs package net, which
// the forwarder does without: every package initialized costs start-up
// time on every login.
package sidecar

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/image-registry-operator/image-registry-operator/pkg/extauth"
)

// Handler answers a request. ctx ends at the connection's deadline.
type Handler func(ctx context.Context, req extauth.Request) extauth.Response

// Defaults of a Server.
const (
	DefaultServerTimeout = 10 * time.Second
	DefaultMaxConns      = 64
)

// Server answers requests on a listener, one per connection.
type Server struct {
	// Handler answers the requests.
	Handler Handler
	// Timeout bounds a connection from accept to the answer written
	// (default DefaultServerTimeout).
	Timeout time.Duration
	// MaxConns bounds the connections served at once; more wait to be
	// accepted (default DefaultMaxConns).
	MaxConns int
	// ErrorLog, if set, is told about malformed requests and accept
	// errors. The messages and errors never hold a password.
	ErrorLog func(msg string, err error)
}

// Serve accepts connections until ctx ends, then closes l and waits for the
// connections in flight. It returns nil after ctx ended, else the error
// that stopped it.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultServerTimeout
	}
	maxConns := s.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	slots := make(chan struct{}, maxConns)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		conn, err := l.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait, then retry.
			s.logError("accept", err)
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			s.serveConn(ctx, conn, timeout)
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, conn net.Conn, timeout time.Duration) {
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	if err := conn.SetDeadline(deadline); err != nil {
		return
	}
	req, err := extauth.ReadRequest(bufio.NewReaderSize(conn, 4096))
	if err != nil {
		var pe *extauth.ProtocolError
		if !errors.As(err, &pe) {
			return // an I/O error: nobody to answer
		}
		s.logError("malformed request", err)
		resp := extauth.Response{Status: extauth.Error, Body: []byte("malformed request")}
		if pe.Version != 0 {
			resp = extauth.Response{Status: extauth.Unavailable, Body: []byte(fmt.Sprintf("the server speaks protocol version %d", extauth.Version))}
		}
		_ = extauth.WriteResponse(conn, resp)
		return
	}
	hctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	resp := s.handle(hctx, req)
	if err := extauth.WriteResponse(conn, resp); err != nil {
		s.logError("write response", err)
	}
}

// handle runs the handler; a panic becomes an Error answer, so that one
// bad request does not take the server (and every login's fast path) down.
func (s *Server) handle(ctx context.Context, req extauth.Request) (resp extauth.Response) {
	defer func() {
		if r := recover(); r != nil {
			s.logError("handler panicked", fmt.Errorf("%v", r))
			resp = extauth.Response{Status: extauth.Error, Body: []byte("internal error")}
		}
	}()
	return s.Handler(ctx, req)
}

func (s *Server) logError(msg string, err error) {
	if s.ErrorLog != nil {
		s.ErrorLog(msg, err)
	}
}

// Listen listens on a Unix socket at path, readable and writable by the
// owner and group only. A socket file left by an earlier process (the
// emptyDir outlives a container restart) is replaced; a live one, or a file
// that is not a socket, is an error.
func Listen(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another process serves %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
