package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	// Register client-go's REST client and workqueue metrics (request counts
	// and latencies; queue depth, latency and retries) with the registry
	// that /metrics serves.
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/workqueue"
)

// probes backs /healthz and /readyz.
type probes struct {
	// ready turns true once the controllers' caches have synced, or while
	// this replica waits as a leader-election standby.
	ready atomic.Bool
	// leader reports a leader that stopped renewing its lease as unhealthy.
	leader *leaderelection.HealthzAdaptor
}

func (p *probes) healthz(w http.ResponseWriter, r *http.Request) {
	if p.leader != nil {
		if err := p.leader.Check(r); err != nil {
			http.Error(w, "leader election: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	_, _ = w.Write([]byte("ok"))
}

func (p *probes) readyz(w http.ResponseWriter, _ *http.Request) {
	if !p.ready.Load() {
		http.Error(w, "informer caches not synced", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok"))
}

// serve runs an HTTP server on addr until ctx ends. An empty addr disables it.
func serve(ctx context.Context, name, addr string, handler http.Handler) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	go func() {
		klog.FromContext(ctx).Info("Serving", "endpoint", name, "address", ln.Addr().String())
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.FromContext(ctx).Error(err, "Server failed", "endpoint", name)
		}
	}()
	return nil
}

func startServers(ctx context.Context, o *options, p *probes) error {
	health := http.NewServeMux()
	health.HandleFunc("/healthz", p.healthz)
	health.HandleFunc("/readyz", p.readyz)
	if err := serve(ctx, "health", o.healthAddr, health); err != nil {
		return err
	}
	metrics := http.NewServeMux()
	metrics.Handle("/metrics", legacyregistry.Handler())
	if o.profiling {
		// The standard Go profiles (heap, CPU, goroutines) for measuring
		// the operator; off by default, like kube components' --profiling
		// on an insecure port would be.
		metrics.HandleFunc("/debug/pprof/", pprof.Index)
		metrics.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		metrics.HandleFunc("/debug/pprof/profile", pprof.Profile)
		metrics.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		metrics.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return serve(ctx, "metrics", o.metricsAddr, metrics)
}
