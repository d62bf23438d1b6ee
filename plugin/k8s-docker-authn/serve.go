package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/image-registry-operator/image-registry-operator/pkg/authn"
	"github.com/image-registry-operator/image-registry-operator/pkg/extauth"
	"github.com/image-registry-operator/image-registry-operator/pkg/extauth/sidecar"
)

// serve runs the ext_auth sidecar until ctx ends: an informer of
// opts.Namespace's accounts, the verified-login cache, and the socket server
// the ext_auth processes ask. It starts answering at once; until the
// informer has synced it answers Unavailable, and the ext_auth process
// checks the login on its own.
func serve(ctx context.Context, opts *authn.Options, socket, healthAddr string) error {
	restCfg, err := opts.RESTConfig()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a, err := authn.Start(ctx, restCfg, opts)
	if err != nil {
		return err
	}
	l, err := sidecar.Listen(socket)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", socket, err)
	}
	errc := make(chan error, 2)
	if healthAddr != "" {
		hl, err := net.Listen("tcp", healthAddr)
		if err != nil {
			l.Close()
			return fmt.Errorf("health endpoint: %w", err)
		}
		hs := &http.Server{Handler: healthHandler(a), ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- hs.Serve(hl) }()
		defer hs.Close()
	}
	srv := &sidecar.Server{
		Handler: handler(a, opts.Namespace),
		Timeout: opts.RequestTimeout,
		ErrorLog: func(msg string, err error) {
			klog.ErrorS(err, msg)
		},
	}
	concurrency := opts.CompareConcurrency
	if concurrency == 0 {
		concurrency = authn.DefaultCompareConcurrency()
	}
	klog.InfoS("ext_auth sidecar serving", "socket", socket, "namespace", opts.Namespace, "cacheSize", opts.CacheSize, "cacheTTL", opts.CacheTTL, "healthAddr", healthAddr,
		"compareConcurrency", concurrency, "compareQueue", opts.CompareQueue, "compareWait", opts.CompareWait,
		"userLimit", fmt.Sprintf("%d, then 1/%s", opts.UserLimitBurst, opts.UserLimitInterval))
	go func() { errc <- srv.Serve(ctx, l) }()
	select {
	case <-ctx.Done():
		// Serve closes the listener, which removes the socket, and waits
		// for the logins in flight.
		cancel()
		return <-errc
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		return err
	}
}

// verifier is what the handler needs of *authn.Authenticator.
type verifier interface {
	HasSynced() bool
	Verify(ctx context.Context, user, password string) (authn.Result, map[string][]string, error)
}

// handler answers the ext_auth processes' requests with the authenticator.
// Every login resolves the account in the informer cache first (pkg/authn),
// so a revoked account fails at once whatever the verified cache holds.
//
// docker_auth tells ext_auth nothing of the client, so the sidecar limits
// failed logins per user name only. A login refused as busy or over its
// limit is an Error (exit 3), never Unavailable: that would send it to the
// one-shot fallback, which lists the accounts and runs bcrypt with no
// limit at all.
func handler(a verifier, namespace string) sidecar.Handler {
	return func(ctx context.Context, req extauth.Request) extauth.Response {
		if req.Namespace != namespace {
			return extauth.Response{Status: extauth.Unavailable, Body: []byte("this sidecar serves namespace " + namespace)}
		}
		if !a.HasSynced() {
			return extauth.Response{Status: extauth.Unavailable, Body: []byte("account cache not synced yet")}
		}
		// The ext_auth process split "<user> <password>" at its only
		// space: a password with one was ambiguous input (extauth.ParseInput
		// refuses it; this is for any other client).
		if strings.Contains(req.Password, " ") {
			return extauth.Response{Status: extauth.Denied}
		}
		res, labels, err := a.Verify(ctx, req.User, req.Password)
		var limited *authn.LimitError
		switch {
		case errors.Is(err, authn.ErrBusy) || errors.As(err, &limited):
			// Not an error of ours, and a flood must not flood the log.
			klog.V(2).InfoS("login not checked", "reason", err.Error())
			return extauth.Response{Status: extauth.Error, Body: []byte(err.Error())}
		case err != nil:
			klog.ErrorS(err, "login not checked")
			return extauth.Response{Status: extauth.Error, Body: []byte(err.Error())}
		}
		if res != authn.NoMatch {
			// Only names of accounts: a user name that names none may be a
			// password typed into the wrong field.
			klog.V(4).InfoS("login", "user", req.User, "result", res)
		}
		switch res {
		case authn.Allowed:
			out, err := labelsOutput(labels)
			if err != nil {
				return extauth.Response{Status: extauth.Error, Body: []byte(err.Error())}
			}
			return extauth.Response{Status: extauth.Allowed, Body: out}
		case authn.Denied:
			return extauth.Response{Status: extauth.Denied}
		default:
			return extauth.Response{Status: extauth.NoMatch}
		}
	}
}

func healthHandler(a *authn.Authenticator) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.HasSynced() {
			http.Error(w, "account cache not synced", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}
